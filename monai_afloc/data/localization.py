# Copyright (c) monai_afloc contributors
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#     http://www.apache.org/licenses/LICENSE-2.0
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""
Readers of the chest X-ray localization data sets in their published formats: MS-CXR, RSNA Pneumonia, SIIM-ACR
Pneumothorax, CheXlocalize, ChestX-ray8 boxes and COVID Rural.

Every item carries ``"image"`` (a path for ``LoadImaged``), ``"category"`` and ``"prompt"`` (the source's phrase,
else :data:`~monai_afloc.data.DEFAULT_PROMPT_TEMPLATE` filled with the category), and its ground truth: ``"boxes"``
(a list of ``[x, y, w, h]`` in original image pixels) or ``"mask"`` (``np.bool_ [H, W]``, or a mask file path).

The number of boxes varies from item to item, so PyTorch's default collation cannot stack ``"boxes"`` of several
items: evaluate one item at a time (``batch_size=1``) or pass ``collate_fn=monai.data.utils.no_collation``.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import numpy as np
from monai.utils import optional_import

from monai_afloc.data.rle import coco_rle_decode, rle_decode_relative
from monai_afloc.data.utils import (
    DEFAULT_PROMPT_TEMPLATE,
    MissingFiles,
    check_bool,
    check_dir,
    check_str,
    clip_box_to_image,
    default_prompt,
    index_files,
    open_csv,
    parse_box,
)

pydicom, _ = optional_import("pydicom")

__all__ = [
    "ms_cxr_datalist",
    "rsna_pneumonia_datalist",
    "siim_pneumothorax_datalist",
    "chexlocalize_datalist",
    "chexlocalize_image_path",
    "chestxray8_bbox_datalist",
    "covid_rural_datalist",
]


def _load_json(path: str | os.PathLike, what: str) -> Any:
    check_str(what, path)
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} not found: '{path}'.")
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{what} '{path}' is not valid JSON: {e}.") from e


def _require_keys(obj: Any, keys: tuple[str, ...], where: str) -> None:
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(obj).__name__}.")
    missing = [k for k in keys if k not in obj]
    if missing:
        raise ValueError(f"{where} lacks the key(s) {missing}; keys found: {sorted(obj)}.")


def ms_cxr_datalist(
    json_path: str | os.PathLike,
    image_root: str | os.PathLike,
    lowercase: bool = True,
    strict: bool = False,
) -> list[dict[str, Any]]:
    """
    MS-CXR phrase grounding (``MS_CXR_Local_Alignment_v1.x.json``, COCO format) as MONAI data dicts.

    The json holds ``images`` (``id, file_name, path, width, height``; ``path`` is relative to the MIMIC-CXR-JPG
    root, e.g. ``files/p15/p15.../s5.../<dicom_id>.jpg``), ``annotations`` (``image_id, bbox [x, y, w, h],
    category_id, label_text``) and ``categories`` (``id, name``). As in the AFLoc reference, the boxes of one image
    with the same phrase (``label_text.lower()``, otherwise verbatim) are merged into one item, whose category is
    that of the phrase's last box; items come in the order of each image's first annotation, then of each phrase's
    first box.

    Args:
        json_path: the MS-CXR json.
        image_root: the MIMIC-CXR-JPG root that ``path`` is relative to (``file_name`` when ``path`` is absent).
        lowercase: give the prompt in lower case, as the reference does (the text pipeline lower-cases anyway).
        strict: raise on a missing image instead of skipping it.

    Returns:
        list of ``{"image", "prompt", "category", "boxes": [[x, y, w, h], ...], "width", "height"}`` (boxes in
        original image pixels; a box partly outside the image is clipped to it, with a warning naming it, and a box
        entirely outside is a ``ValueError``).

    Example::

        data = ms_cxr_datalist("ms-cxr/MS_CXR_Local_Alignment_v1.0.0.json", "/data/mimic-cxr-jpg/2.0.0")
    """
    root = check_dir("image_root", image_root)
    check_bool("lowercase", lowercase)
    coco = _load_json(json_path, "MS-CXR json")
    _require_keys(coco, ("images", "annotations", "categories"), f"MS-CXR json '{os.fspath(json_path)}'")
    categories = {}
    for i, cat in enumerate(coco["categories"]):
        _require_keys(cat, ("id", "name"), f"MS-CXR json categories[{i}]")
        categories[cat["id"]] = str(cat["name"])
    images = {}
    for i, img in enumerate(coco["images"]):
        _require_keys(img, ("id",), f"MS-CXR json images[{i}]")
        if "path" not in img and "file_name" not in img:
            raise ValueError(f"MS-CXR json images[{i}] lacks both 'path' and 'file_name'.")
        images[img["id"]] = img
    skips = MissingFiles("ms_cxr_datalist", strict)
    # image_id -> lower-cased phrase -> merged group; dicts keep first-appearance order (the reference's order)
    groups: dict[Any, dict[str, dict[str, Any]]] = {}
    for i, ann in enumerate(coco["annotations"]):
        where = f"MS-CXR json annotations[{i}]"
        _require_keys(ann, ("image_id", "bbox", "category_id", "label_text"), where)
        if ann["image_id"] not in images:
            raise ValueError(f"{where}: image_id {ann['image_id']!r} is not among the json's images.")
        if ann["category_id"] not in categories:
            raise ValueError(f"{where}: category_id {ann['category_id']!r} is not among the json's categories.")
        text = str(ann["label_text"])
        if not text.strip():
            raise ValueError(f"{where}: empty label_text.")
        phrases = groups.setdefault(ann["image_id"], {})
        group = phrases.setdefault(text.lower(), {"prompt": text.lower() if lowercase else text, "boxes": []})
        group["boxes"].append(parse_box(ann["bbox"], where))
        group["category"] = categories[ann["category_id"]]
        group["ann"] = ann
    data = []
    for image_id, phrases in groups.items():
        img = images[image_id]
        path = os.path.join(root, str(img.get("path", img.get("file_name"))))
        if not skips.exists(path, "image"):
            continue
        for group in phrases.values():
            size = {}
            for k in ("width", "height"):
                v = img.get(k, group["ann"].get(k))
                if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                    raise ValueError(f"MS-CXR json: image {image_id!r} has no valid '{k}' (got {v!r}).")
                size[k] = int(v)
            boxes = []
            for box in group["boxes"]:
                where = f"MS-CXR image {image_id!r} phrase {group['prompt']!r}"
                box, clipped = clip_box_to_image(box, size["width"], size["height"], where)
                if clipped:
                    skips.count("boxes partly outside the image (clipped to it)", example=where)
                boxes.append(box)
            data.append(
                {
                    "image": path,
                    "prompt": group["prompt"],
                    "category": group["category"],
                    "boxes": boxes,
                    "width": size["width"],
                    "height": size["height"],
                }
            )
    skips.report(len(data))
    return data


def rsna_pneumonia_datalist(
    labels_csv: str | os.PathLike,
    image_dir: str | os.PathLike,
    positive_only: bool = False,
    image_suffix: str = ".dcm",
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE,
    strict: bool = False,
) -> list[dict[str, Any]]:
    """
    RSNA Pneumonia Detection Challenge (``stage_2_train_labels.csv`` + ``<patientId>.dcm``) as MONAI data dicts.

    The table has one row per box (``patientId, x, y, width, height, Target``); a patient without pneumonia has one
    row with ``Target`` 0 and empty box cells. Rows of one patient are merged (first-appearance order).

    Args:
        labels_csv: ``stage_2_train_labels.csv`` (or ``.csv.gz``).
        image_dir: folder of the images (``stage_2_train_images``), named ``<patientId><image_suffix>``.
        positive_only: keep only patients with ``Target`` 1 (the localization benchmark).
        image_suffix: image file suffix, ``".dcm"`` for the published DICOMs (``".png"`` for a converted copy).
        prompt_template: the prompt's template.
        strict: raise on a missing image instead of skipping it.

    Returns:
        list of ``{"image", "category": "Pneumonia", "prompt", "boxes": [[x, y, w, h], ...], "label": 0 | 1,
        "patient_id"}`` (boxes in the 1024x1024 DICOM pixels; ``[]`` for ``Target`` 0).

    Raises:
        ValueError: a missing column, a ``Target`` other than 0/1, a positive row without a box, a negative row
            with one, or a patient with both.

    Example::

        data = rsna_pneumonia_datalist("rsna/stage_2_train_labels.csv", "rsna/stage_2_train_images")
    """
    image_dir = check_dir("image_dir", image_dir)
    check_str("labels_csv", labels_csv)
    check_bool("positive_only", positive_only)
    if not isinstance(image_suffix, str) or not image_suffix.startswith("."):
        raise ValueError(f"image_suffix must be a file suffix such as '.dcm', got {image_suffix!r}.")
    prompt = default_prompt("Pneumonia", prompt_template)
    patients: dict[str, dict[str, Any]] = {}
    columns = ("patientId", "x", "y", "width", "height", "Target")
    with open_csv(labels_csv, columns) as (rows, _):
        for row in rows:
            where = f"RSNA labels line {row['__line__']}"
            pid = row["patientId"].strip()
            target = row["Target"].strip()
            if not pid or target not in ("0", "1"):
                raise ValueError(f"{where}: expected a patientId and Target 0 or 1, got {pid!r}, {target!r}.")
            cells = [row[k].strip() for k in ("x", "y", "width", "height")]
            entry = patients.setdefault(pid, {"label": int(target), "boxes": []})
            if entry["label"] != int(target):
                raise ValueError(f"{where}: patient {pid} has rows with both Target 0 and Target 1.")
            if target == "1":
                if not all(cells):
                    raise ValueError(f"{where}: a Target 1 row needs x, y, width, height, got {cells}.")
                entry["boxes"].append(parse_box(cells, where))
            elif any(cells):
                raise ValueError(f"{where}: a Target 0 row must have empty x, y, width, height, got {cells}.")
    skips = MissingFiles("rsna_pneumonia_datalist", strict)
    data = []
    for pid, entry in patients.items():
        if positive_only and entry["label"] == 0:
            continue
        path = os.path.join(image_dir, pid + image_suffix)
        if not skips.exists(path, "image"):
            continue
        data.append(
            {
                "image": path,
                "category": "Pneumonia",
                "prompt": prompt,
                "boxes": entry["boxes"],
                "label": entry["label"],
                "patient_id": pid,
            }
        )
    skips.report(len(data))
    return data


def _dicom_size(path: str) -> tuple[int, int]:
    ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Rows", "Columns"])
    rows, cols = ds.get("Rows"), ds.get("Columns")
    if not rows or not cols:
        raise ValueError(f"DICOM '{path}' has no Rows/Columns.")
    return int(rows), int(cols)


def siim_pneumothorax_datalist(
    rle_csv: str | os.PathLike,
    image_dir: str | os.PathLike,
    positive_only: bool = False,
    decode_masks: bool = True,
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE,
    strict: bool = False,
) -> list[dict[str, Any]]:
    """
    SIIM-ACR Pneumothorax Segmentation (``train-rle.csv`` + DICOMs) as MONAI data dicts.

    The table has columns ``ImageId`` and ``EncodedPixels`` (the published header is ``"ImageId, EncodedPixels"``,
    with a space; both spellings are accepted), one row per pneumothorax component in the challenge's *relative*
    run-length code (see :func:`~monai_afloc.data.rle_decode_relative`), ``-1`` for none; the rows of one image are
    united. DICOMs are found recursively under ``image_dir`` as ``<ImageId>.dcm``; the mask size is the DICOM's
    ``Rows`` x ``Columns`` (header read only).

    Args:
        rle_csv: ``train-rle.csv`` (or ``.csv.gz``); stage 1 relative encoding.
        image_dir: folder searched recursively for ``<ImageId>.dcm`` (``dicom-images-train``).
        positive_only: keep only images with a pneumothorax.
        decode_masks: decode the masks now (``np.bool_ [H, W]``); False keeps ``{"size": [H, W], "rle": [...]}``
            for :class:`~monai_afloc.data.DecodeRLEMaskd` (a 1024x1024 mask takes 1 MiB; 12k of them 12 GiB).
        prompt_template: the prompt's template.
        strict: raise on a missing image instead of skipping it.

    Returns:
        list of ``{"image", "mask", "label": 0 | 1, "category": "Pneumothorax", "prompt", "image_id"}``.

    Example::

        data = siim_pneumothorax_datalist("siim/train-rle.csv", "siim/dicom-images-train")
    """
    check_str("rle_csv", rle_csv)
    image_dir = check_dir("image_dir", image_dir)
    check_bool("positive_only", positive_only)
    check_bool("decode_masks", decode_masks)
    prompt = default_prompt("Pneumothorax", prompt_template)
    codes: dict[str, list[str]] = {}
    with open_csv(rle_csv, ("ImageId", "EncodedPixels")) as (rows, _):
        for row in rows:
            image_id = row["ImageId"].strip()
            code = row["EncodedPixels"].strip()
            if not image_id:
                raise ValueError(f"SIIM table line {row['__line__']}: empty ImageId.")
            if code and code != "-1" and not re.fullmatch(r"[0-9 ]+", code):
                raise ValueError(f"SIIM table line {row['__line__']}: malformed EncodedPixels {code[:40]!r}.")
            entry = codes.setdefault(image_id, [])
            if code and code != "-1":
                entry.append(code)
    index = index_files(image_dir, (".dcm",))
    skips = MissingFiles("siim_pneumothorax_datalist", strict)
    data = []
    for image_id, rle in codes.items():
        if positive_only and not rle:
            continue
        path = index.get(image_id, os.path.join(image_dir, image_id + ".dcm"))
        if not skips.exists(path, "image"):
            continue
        height, width = _dicom_size(path)
        try:
            mask = rle_decode_relative(rle, height, width)
        except ValueError as e:
            raise ValueError(f"SIIM image {image_id} ({height}x{width}): {e}") from e
        data.append(
            {
                "image": path,
                "mask": mask if decode_masks else {"size": [height, width], "rle": list(rle)},
                "label": int(bool(rle)),
                "category": "Pneumothorax",
                "prompt": prompt,
                "image_id": image_id,
            }
        )
    skips.report(len(data))
    return data


_CXR_ID = re.compile(r"^(patient\d+)_(study\d+)_(view\d+_(?:frontal|lateral))$")


def chexlocalize_image_path(image_root: str | os.PathLike, cxr_id: str) -> str:
    """
    The CheXpert image of a CheXlocalize ``cxr_id``.

    ``"patient64541_study1_view1_frontal"`` -> ``"<image_root>/patient64541/study1/view1_frontal.jpg"``, where
    ``image_root`` is the CheXpert ``val`` or ``test`` folder.

    Raises:
        ValueError: ``cxr_id`` is not ``patient<N>_study<N>_view<N>_frontal|lateral``.
    """
    m = _CXR_ID.match(cxr_id) if isinstance(cxr_id, str) else None
    if m is None:
        raise ValueError(f"expected a cxr_id like 'patient64541_study1_view1_frontal', got {cxr_id!r}.")
    return os.path.join(os.fspath(image_root), m.group(1), m.group(2), m.group(3) + ".jpg")


def chexlocalize_datalist(
    json_path: str | os.PathLike,
    image_root: str | os.PathLike,
    positive_only: bool = False,
    decode_masks: bool = True,
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE,
    strict: bool = False,
) -> list[dict[str, Any]]:
    """
    CheXlocalize ground-truth segmentations (``gt_segmentations_{val,test}.json``) as MONAI data dicts.

    The json maps ``cxr_id -> {pathology: {"size": [h, w], "counts": "<COCO compressed RLE>"}}``; each
    (image, pathology) pair gives one item, with ``label`` 1 when its mask is non-empty. The image path comes from
    :func:`chexlocalize_image_path`. Images present in the CheXpert folder but absent from the json are not listed
    (the AFLoc reference adds them as negatives for all ten pathologies).

    Args:
        json_path: the ground-truth json.
        image_root: the CheXpert ``val`` or ``test`` image folder.
        positive_only: keep only pairs with a non-empty mask.
        decode_masks: decode the masks now (``np.bool_ [H, W]``, full resolution: ~6 MiB each); False keeps the
            ``{"size", "counts"}`` dict for :class:`~monai_afloc.data.DecodeRLEMaskd` (``label`` is still exact).
        prompt_template: the prompt's template.
        strict: raise on a missing image instead of skipping it.

    Returns:
        list of ``{"image", "category", "prompt", "mask", "label", "cxr_id", "height", "width"}``.

    Example::

        data = chexlocalize_datalist("CheXlocalize/gt_segmentations_val.json", "CheXpert/val")
    """
    root = check_dir("image_root", image_root)
    check_bool("positive_only", positive_only)
    check_bool("decode_masks", decode_masks)
    default_prompt("x", prompt_template)  # validates the template
    gt = _load_json(json_path, "CheXlocalize json")
    if not isinstance(gt, dict):
        raise ValueError(f"CheXlocalize json: expected an object keyed by cxr_id, got {type(gt).__name__}.")
    skips = MissingFiles("chexlocalize_datalist", strict)
    data = []
    for cxr_id, pathologies in gt.items():
        path = chexlocalize_image_path(root, cxr_id)
        if not isinstance(pathologies, dict):
            raise ValueError(f"CheXlocalize json['{cxr_id}']: expected {{pathology: rle}}, got {pathologies!r:.60}.")
        if not skips.exists(path, "image"):
            continue
        for pathology, rle in pathologies.items():
            _require_keys(rle, ("size", "counts"), f"CheXlocalize json['{cxr_id}']['{pathology}']")
            try:
                mask = coco_rle_decode(rle)
            except ValueError as e:
                raise ValueError(f"CheXlocalize json['{cxr_id}']['{pathology}']: {e}") from e
            label = int(mask.any())
            if positive_only and not label:
                continue
            data.append(
                {
                    "image": path,
                    "category": pathology,
                    "prompt": default_prompt(pathology, prompt_template),
                    "mask": mask if decode_masks else {"size": list(rle["size"]), "counts": rle["counts"]},
                    "label": label,
                    "cxr_id": cxr_id,
                    "height": int(mask.shape[0]),
                    "width": int(mask.shape[1]),
                }
            )
    skips.report(len(data))
    return data


def chestxray8_bbox_datalist(
    bbox_csv: str | os.PathLike,
    image_dir: str | os.PathLike,
    recursive: bool = False,
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE,
    strict: bool = False,
) -> list[dict[str, Any]]:
    """
    NIH ChestX-ray8 boxes (``BBox_List_2017.csv``) as MONAI data dicts, one per (image, finding).

    The published header is ``Image Index, Finding Label, Bbox [x, y, w, h]`` followed by empty columns, which a
    CSV reader splits into ``"Bbox [x"``, ``"y"``, ``"w"``, ``"h]"``; both that and plain ``x, y, w, h`` headers are
    accepted. Findings keep the table's spelling (``Infiltrate`` here, ``Infiltration`` in ``Data_Entry_2017``).

    Args:
        bbox_csv: ``BBox_List_2017.csv``.
        image_dir: folder of the PNGs; with ``recursive`` the PNGs are searched below it (``images_001/images/...``).
        recursive: search ``image_dir`` recursively.
        prompt_template: the prompt's template.
        strict: raise on a missing image instead of skipping it.

    Returns:
        list of ``{"image", "category", "prompt", "boxes": [[x, y, w, h], ...], "label": 1}``.

    Example::

        data = chestxray8_bbox_datalist("nih/BBox_List_2017.csv", "nih/images")
    """
    check_str("bbox_csv", bbox_csv)
    image_dir = check_dir("image_dir", image_dir)
    check_bool("recursive", recursive)
    default_prompt("x", prompt_template)
    aliases = {"Bbox [x": "x", "h]": "h"}
    groups: dict[tuple[str, str], list[list[float]]] = {}
    with open_csv(bbox_csv, ("Image Index", "Finding Label", "x", "y", "w", "h"), aliases) as (rows, _):
        for row in rows:
            where = f"ChestX-ray8 bbox table line {row['__line__']}"
            name, finding = row["Image Index"].strip(), row["Finding Label"].strip()
            if not name or not finding:
                raise ValueError(f"{where}: empty Image Index or Finding Label.")
            box = parse_box([row[k].strip() for k in ("x", "y", "w", "h")], where)
            groups.setdefault((name, finding), []).append(box)
    index = index_files(image_dir, ("",)) if recursive else {}
    skips = MissingFiles("chestxray8_bbox_datalist", strict)
    data = []
    for (name, finding), boxes in groups.items():
        path = index.get(name, os.path.join(image_dir, name))
        if not skips.exists(path, "image"):
            continue
        data.append(
            {
                "image": path,
                "category": finding,
                "prompt": default_prompt(finding, prompt_template),
                "boxes": boxes,
                "label": 1,
            }
        )
    skips.report(len(data))
    return data


def _mask_is_empty(path: str) -> bool:
    from monai.transforms import LoadImage

    return not np.asarray(LoadImage(image_only=True)(path)).any()


def covid_rural_datalist(
    root: str | os.PathLike,
    csv_path: str | os.PathLike | None = None,
    image_subdir: str = "jpgs",
    mask_subdir: str = "pngs_masks",
    category: str = "COVID-19",
    prompt: str | None = "Findings suggesting pneumonia.",
    skip_empty: bool = True,
    strict: bool = False,
) -> list[dict[str, Any]]:
    """
    COVID Rural (opacity masks drawn on TCIA's COVID-19-AR chest X-rays) as MONAI data dicts.

    Two layouts are read:

    - the annotation release used by the AFLoc reference (``covid_rural_annot``): ``<root>/jpgs/<name>.jpg`` and
      ``<root>/pngs_masks/<name>.png``, paired by file name (images without a mask are left out);
    - a CSV (``csv_path``) with columns ``image`` and ``mask``: paths relative to ``root`` (or absolute).

    The masks are returned as paths (load them with ``LoadImaged``; a pixel > 0 is opacity). As in the reference,
    the category is ``"COVID-19"`` and the prompt ``"Findings suggesting pneumonia."``; ``prompt=None`` gives
    the default template filled with ``category`` instead.

    Args:
        root: the data folder.
        csv_path: optional CSV of ``image, mask`` pairs; when given, the sub-folders are not scanned.
        image_subdir: image folder inside ``root`` (folder layout).
        mask_subdir: mask folder inside ``root`` (folder layout).
        category: the category name given to every item.
        prompt: the localization prompt; None for ``DEFAULT_PROMPT_TEMPLATE`` with ``category``.
        skip_empty: read each mask and leave out the empty ones (the reference does); this loads every mask once.
        strict: raise on a missing image or mask instead of skipping it.

    Returns:
        list of ``{"image", "mask": path, "category", "prompt", "label": 1}``.

    Example::

        data = covid_rural_datalist("/data/covid_rural_annot")
    """
    root = check_dir("root", root)
    check_str("csv_path", csv_path, allow_none=True)
    check_bool("skip_empty", skip_empty)
    if not isinstance(category, str) or not category.strip():
        raise ValueError(f"category must be a non-empty string, got {category!r}.")
    text = default_prompt(category) if prompt is None else prompt
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"prompt must be a non-empty string or None, got {prompt!r}.")
    skips = MissingFiles("covid_rural_datalist", strict)
    pairs: list[tuple[str, str]] = []
    if csv_path is not None:
        with open_csv(csv_path, ("image", "mask")) as (rows, _):
            for row in rows:
                image, mask = row["image"].strip(), row["mask"].strip()
                if not image or not mask:
                    raise ValueError(f"COVID Rural table line {row['__line__']}: empty image or mask path.")
                pairs.append((os.path.join(root, image), os.path.join(root, mask)))
    else:
        image_dir = check_dir("image folder", os.path.join(root, image_subdir))
        mask_dir = check_dir("mask folder", os.path.join(root, mask_subdir))
        masks = {os.path.splitext(n)[0] for n in os.listdir(mask_dir) if n.lower().endswith(".png")}
        for name in sorted(os.listdir(image_dir)):
            stem, ext = os.path.splitext(name)
            if ext.lower() not in (".jpg", ".jpeg"):
                continue
            if stem not in masks:
                skips.count("images without a mask")
                continue
            pairs.append((os.path.join(image_dir, name), os.path.join(mask_dir, stem + ".png")))
    data = []
    for image, mask in pairs:
        if not (skips.exists(image, "image") and skips.exists(mask, "mask")):
            continue
        if skip_empty and _mask_is_empty(mask):
            skips.count("empty masks")
            continue
        data.append({"image": image, "mask": mask, "category": category, "prompt": text, "label": 1})
    skips.report(len(data))
    return data
