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
Writers for the synthetic chest X-ray data in real formats: a MIMIC-CXR-JPG-like pretraining split (images + CSV),
an MS-CXR-like annotated split (COCO JSON + images + mask PNGs) and DX DICOM files.

Index ranges. Case ``i`` of a generator is a pure function of ``(seed, i)``. Pretraining cases use indices
``PRETRAINING_START_INDEX + k``, annotated test cases ``ANNOTATED_START_INDEX + k`` and annotated validation cases
(optional) ``ANNOTATED_VAL_START_INDEX + k``; :func:`make_synthetic_dataset` refuses a pretraining split that would
reach the annotated range and, with a validation split, keeps the test split's indices below
``ANNOTATED_VAL_START_INDEX``, so no two splits share a case. Identifiers follow
MIMIC-CXR: ``subject_id = 10000000 + index``, ``study_id = 50000000 + index``, ``dicom_id`` five groups of eight hex
digits hashed from ``(seed, index)``; the image of a case lies at ``files/pXX/p<subject_id>/s<study_id>/<dicom_id>.png``
(``XX`` the first two digits of the subject id), a path relative to the split's folder.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

import numpy as np
from monai.utils import optional_import

from monai_afloc.apps.synthetic.generator import SYNTHETIC_FINDINGS, SyntheticCXRGenerator, _check_int
from monai_afloc.utils.dicom import save_dicom

Image, _has_pil = optional_import("PIL.Image")
pydicom, _has_pydicom = optional_import("pydicom")

__all__ = [
    "PRETRAINING_START_INDEX",
    "ANNOTATED_START_INDEX",
    "ANNOTATED_VAL_START_INDEX",
    "write_pretraining_split",
    "write_annotated_split",
    "write_dicom",
    "make_synthetic_dataset",
]

#: first generator index of the pretraining (image-report) split
PRETRAINING_START_INDEX: int = 0
#: first generator index of the annotated (localization) split; pretraining indices stay below it
ANNOTATED_START_INDEX: int = 5_000_000
#: first generator index of the annotated *validation* split (model selection); annotated test indices stay below it
ANNOTATED_VAL_START_INDEX: int = 8_000_000

PRETRAINING_CSV = "synthetic-cxr-metadata.csv"
ANNOTATED_JSON = "synthetic-cxr-annotations.json"
INFO_JSON = "synthetic-cxr-info.json"
_FORMATS = {"png": "png", "jpg": "jpg", "jpeg": "jpg"}
_SPLITS = ("train", "validate", "test")


def _positive_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _require_pil() -> None:
    if not _has_pil:
        raise ImportError("writing synthetic images needs Pillow: pip install pillow (or monai_afloc[plot]).")


def _check_generator(generator: Any) -> SyntheticCXRGenerator:
    if not isinstance(generator, SyntheticCXRGenerator):
        raise TypeError(f"generator must be a SyntheticCXRGenerator, got {type(generator).__name__}.")
    return generator


def _check_fmt(fmt: Any) -> str:
    if not isinstance(fmt, str) or fmt.lower() not in _FORMATS:
        raise ValueError(f"fmt must be one of 'png', 'jpg', got {fmt!r}.")
    return _FORMATS[fmt.lower()]


def _ids(seed: int, index: int) -> tuple[int, int, str]:
    digest = hashlib.sha1(f"monai_afloc-synthetic-cxr:{seed}:{index}".encode()).hexdigest()
    dicom_id = "-".join(digest[i : i + 8] for i in range(0, 40, 8))
    return 10_000_000 + index, 50_000_000 + index, dicom_id


def _relpath(subject_id: int, study_id: int, dicom_id: str, ext: str) -> str:
    return f"files/p{str(subject_id)[:2]}/p{subject_id}/s{study_id}/{dicom_id}.{ext}"


def _save_image(path: str, image: np.ndarray, ext: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pil = Image.fromarray(np.ascontiguousarray(image))
    if ext == "jpg":
        pil.save(path, format="JPEG", quality=95)
    else:
        pil.save(path, format="PNG")


def _split_counts(n_cases: int, splits: Sequence[float]) -> list[int]:
    if isinstance(splits, (str, bytes)) or not isinstance(splits, Sequence) or len(splits) != 3:
        raise ValueError(f"splits must be three fractions (train, validate, test), got {splits!r}.")
    fr = []
    for f in splits:
        if isinstance(f, bool) or not isinstance(f, Real) or not math.isfinite(f) or f < 0:
            raise ValueError(f"splits must be finite fractions >= 0, got {splits!r}.")
        fr.append(float(f))
    if abs(sum(fr) - 1.0) > 1e-6:
        raise ValueError(f"splits must sum to 1, got {splits!r} (sum {sum(fr)}).")
    bounds = [int(math.floor(c * n_cases + 0.5)) for c in np.cumsum(fr)]
    bounds[-1] = n_cases
    return [bounds[0], bounds[1] - bounds[0], bounds[2] - bounds[1]]


def write_pretraining_split(
    out_dir: str,
    n_cases: int,
    generator: SyntheticCXRGenerator,
    fmt: str = "png",
    splits: Sequence[float] = (0.8, 0.1, 0.1),
    start_index: int = PRETRAINING_START_INDEX,
) -> str:
    """
    Write a MIMIC-CXR-JPG-like image-report split: ``files/pXX/p<subject>/s<study>/<dicom_id>.<fmt>`` and a CSV.

    The CSV ``synthetic-cxr-metadata.csv`` (in ``out_dir``) has the columns ``path`` (relative to ``out_dir``),
    ``subject_id``, ``study_id``, ``dicom_id``, ``view`` (PA/AP), ``split`` (train/validate/test), ``report``, then
    one 0/1 column per finding of :data:`SYNTHETIC_FINDINGS`, then ``case_index``, ``width``, ``height`` and
    ``pixel_spacing`` (mm). Cases ``start_index .. start_index + n_cases - 1`` are assigned in order: the first
    ``round(train * n)`` to train, then validate, then test. One image per study and one study per subject.

    Args:
        out_dir: folder to write (created if needed).
        n_cases: number of cases (>= 1).
        generator: the :class:`SyntheticCXRGenerator` to draw from.
        fmt: "png" (lossless) or "jpg" (quality 95).
        splits: (train, validate, test) fractions, each >= 0, summing to 1.
        start_index: the generator index of the first case (>= 0).

    Returns:
        the CSV path.

    Example::

        csv_path = write_pretraining_split("/tmp/synth/pretraining", 32, SyntheticCXRGenerator(seed=0))
    """
    generator = _check_generator(generator)
    n_cases = _check_int("n_cases", n_cases, 1)
    start_index = _check_int("start_index", start_index, 0)
    ext = _check_fmt(fmt)
    counts = _split_counts(n_cases, splits)
    _require_pil()
    os.makedirs(out_dir, exist_ok=True)
    split_of = [name for name, c in zip(_SPLITS, counts) for _ in range(c)]
    columns = ["path", "subject_id", "study_id", "dicom_id", "view", "split", "report", *SYNTHETIC_FINDINGS,
               "case_index", "width", "height", "pixel_spacing"]
    csv_path = os.path.join(out_dir, PRETRAINING_CSV)
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for k in range(n_cases):
            index = start_index + k
            case = generator.generate_case(index)
            subject_id, study_id, dicom_id = _ids(generator.seed, index)
            rel = _relpath(subject_id, study_id, dicom_id, ext)
            _save_image(os.path.join(out_dir, rel), case["image"], ext)
            row = {
                "path": rel, "subject_id": subject_id, "study_id": study_id, "dicom_id": dicom_id,
                "view": case["view"], "split": split_of[k], "report": case["report"], "case_index": index,
                "width": case["image"].shape[1], "height": case["image"].shape[0],
                "pixel_spacing": case["pixel_spacing"][0],
            }
            row.update(case["labels"])
            writer.writerow(row)
    return csv_path


def write_annotated_split(
    out_dir: str,
    n_cases: int,
    generator: SyntheticCXRGenerator,
    fmt: str = "png",
    start_index: int = ANNOTATED_START_INDEX,
    skip_normal: bool = True,
    with_dicom: bool = False,
    stop_index: int | None = None,
) -> str:
    """
    Write an MS-CXR-like localization split: images, one mask PNG per annotation and a COCO JSON.

    ``synthetic-cxr-annotations.json`` (in ``out_dir``) holds ``images`` (``id``, ``file_name``, ``path`` relative to
    ``out_dir``, ``width``, ``height``; extra: ``dicom_id``, ``case_index``, ``view``, ``pixel_spacing``, ``report``
    and, with ``with_dicom``, ``dicom_path``), ``annotations`` (``id``, ``image_id``, ``category_id``, ``bbox``
    ``[x, y, w, h]`` in pixels, ``area`` (= w * h), ``iscrowd`` 0, ``label_text`` (the location-bearing phrase of the
    report); extra: ``label_text_location_free``, ``mask_path`` (a 0/255 PNG of the finding's pixels inside this box),
    ``mask_area``, ``laterality``, ``zone``, ``severity``) and ``categories`` (``id``, ``name``, ``supercategory``),
    one per :data:`SYNTHETIC_FINDINGS` with ids from 1. A bilateral finding gives one annotation per side with the same
    ``label_text`` (as MS-CXR does); annotations of one finding share ``image_id`` and ``category_id``.

    Args:
        out_dir: folder to write (created if needed).
        n_cases: number of images to write (>= 1).
        generator: the :class:`SyntheticCXRGenerator` to draw from.
        fmt: "png" or "jpg" for the images (masks are always PNG).
        start_index: the generator index to start from; keep it away from the pretraining range.
        skip_normal: skip cases without findings (MS-CXR holds abnormal images only); the indices used are then not
            contiguous (each image records its ``case_index``).
        with_dicom: also write each image as a DX DICOM (``.dcm`` beside it, 8-bit, MONOCHROME2).
        stop_index: the generator indices used stay below it (``None``: no bound but the search limit of
            ``start_index + 1000 * n_cases + 1000``), so that another split can start there.

    Returns:
        the JSON path.

    Raises:
        ValueError: bad arguments, or ``skip_normal`` with a generator that only makes normal cases.
        RuntimeError: fewer than ``n_cases`` abnormal cases below the search limit (or ``stop_index``).

    Example::

        json_path = write_annotated_split("/tmp/synth/annotated", 16, SyntheticCXRGenerator(seed=0))
    """
    generator = _check_generator(generator)
    n_cases = _check_int("n_cases", n_cases, 1)
    start_index = _check_int("start_index", start_index, 0)
    if stop_index is not None and _check_int("stop_index", stop_index, 0) <= start_index:
        raise ValueError(f"stop_index must be None or > start_index ({start_index}), got {stop_index!r}.")
    ext = _check_fmt(fmt)
    if not isinstance(skip_normal, bool) or not isinstance(with_dicom, bool):
        raise TypeError(f"skip_normal and with_dicom must be bool, got {skip_normal!r}, {with_dicom!r}.")
    if skip_normal and (generator.normal_fraction >= 1.0 or not any(generator.finding_weights.values())):
        raise ValueError("skip_normal=True needs a generator that makes abnormal cases (normal_fraction < 1).")
    _require_pil()
    os.makedirs(out_dir, exist_ok=True)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    index = start_index
    max_index = start_index + 1000 * n_cases + 1000
    if stop_index is not None:
        max_index = min(max_index, stop_index)
    while len(images) < n_cases:
        if index >= max_index:
            raise RuntimeError(f"found only {len(images)} abnormal cases in [{start_index}, {max_index}).")
        case = generator.generate_case(index)
        index += 1
        if skip_normal and not case["findings"]:
            continue
        subject_id, study_id, dicom_id = _ids(generator.seed, case["index"])
        rel = _relpath(subject_id, study_id, dicom_id, ext)
        _save_image(os.path.join(out_dir, rel), case["image"], ext)
        image_id = len(images) + 1
        h, w = case["image"].shape
        entry = {
            "id": image_id, "file_name": os.path.basename(rel), "path": rel, "width": w, "height": h,
            "dicom_id": dicom_id, "case_index": case["index"], "view": case["view"],
            "pixel_spacing": list(case["pixel_spacing"]), "report": case["report"],
        }
        if with_dicom:
            dcm_rel = rel.rsplit(".", 1)[0] + ".dcm"
            write_dicom(os.path.join(out_dir, dcm_rel), case["image"], pixel_spacing=case["pixel_spacing"],
                        view=case["view"], patient_id=f"SYN{subject_id}", uid_entropy=(generator.seed, case["index"]))
            entry["dicom_path"] = dcm_rel
        images.append(entry)
        for finding in case["findings"]:
            for box in finding["boxes"]:
                ann_id = len(annotations) + 1
                x, y, bw, bh = box
                part = np.zeros_like(finding["mask"])
                part[y : y + bh, x : x + bw] = finding["mask"][y : y + bh, x : x + bw]
                mask_rel = f"masks/{dicom_id}_{ann_id:06d}.png"
                os.makedirs(os.path.join(out_dir, "masks"), exist_ok=True)
                Image.fromarray(part.astype(np.uint8) * 255).save(os.path.join(out_dir, mask_rel), format="PNG")
                annotations.append({
                    "id": ann_id, "image_id": image_id,
                    "category_id": SYNTHETIC_FINDINGS.index(finding["name"]) + 1,
                    "bbox": [int(v) for v in box], "area": int(bw * bh), "iscrowd": 0,
                    "label_text": finding["phrase"], "label_text_location_free": finding["phrase_location_free"],
                    "mask_path": mask_rel, "mask_area": int(part.sum()), "laterality": finding["laterality"],
                    "zone": finding["zone"], "severity": finding["severity"],
                })
    coco = {
        "info": {
            "description": "monai_afloc synthetic chest X-ray localization split (MS-CXR-like)",
            "seed": generator.seed, "start_index": start_index, "image_size": list(generator.image_size),
        },
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": n, "supercategory": "finding"} for i, n in enumerate(SYNTHETIC_FINDINGS)],
    }
    json_path = os.path.join(out_dir, ANNOTATED_JSON)
    with open(json_path, "w", encoding="utf-8") as fh:
        json.dump(coco, fh, indent=1)
    return json_path


def write_dicom(
    path: str,
    image: np.ndarray,
    pixel_spacing: Sequence[float] = (0.2, 0.2),
    bits_stored: int = 8,
    view: str = "PA",
    patient_id: str = "SYNTHETIC",
    photometric_interpretation: str = "MONOCHROME2",
    uid_entropy: Sequence[Any] | None = None,
) -> str:
    """
    Write a 2D grayscale image as a Digital X-Ray (DX, for presentation) DICOM file.

    The file has a valid file meta header (explicit VR little endian), ``PixelSpacing`` and ``ImagerPixelSpacing``
    (mm, ``(row, col)``), ``ViewPosition``, ``PatientOrientation`` ``L\\F``, a window and deterministic UIDs when
    ``uid_entropy`` is given. Works with pydicom 3 (and 2.4).

    Args:
        path: output file (its folder is created).
        image: ``[H, W]`` ``uint8`` (or ``uint16`` when ``bits_stored`` > 8), MONOCHROME2 values (bright = dense).
        pixel_spacing: (row, col) spacing in mm, each > 0.
        bits_stored: 8 (8-bit pixels) or 10, 12, 14, 16 (16-bit pixels; a ``uint8`` image is rescaled to the
            full range ``[0, 2**bits_stored - 1]``).
        view: "PA" or "AP".
        patient_id: PatientID (and PatientName).
        photometric_interpretation: "MONOCHROME2", or "MONOCHROME1" to store inverted values (bright = air) for
            testing readers.
        uid_entropy: values hashed into the UIDs (same entropy, same UIDs); None: random UIDs.

    Returns:
        ``path``.

    Example::

        write_dicom("/tmp/case.dcm", SyntheticCXRGenerator().generate_case(0)["image"], pixel_spacing=(1.6, 1.6))
    """
    if not _has_pydicom:
        raise ImportError("write_dicom needs pydicom: pip install pydicom.")
    img = np.asarray(image)
    if img.ndim != 2 or img.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"image must be a 2D uint8 or uint16 array, got shape {img.shape} and dtype {img.dtype}.")
    if bits_stored not in (8, 10, 12, 14, 16) or isinstance(bits_stored, bool):
        raise ValueError(f"bits_stored must be one of 8, 10, 12, 14, 16, got {bits_stored!r}.")
    spacing_ok = isinstance(pixel_spacing, Sequence) and not isinstance(pixel_spacing, (str, bytes))
    spacing_ok = spacing_ok and len(pixel_spacing) == 2 and all(_positive_number(s) for s in pixel_spacing)
    if not spacing_ok:
        raise ValueError(f"pixel_spacing must be two positive numbers (row, col) in mm, got {pixel_spacing!r}.")
    if view not in ("PA", "AP"):
        raise ValueError(f"view must be 'PA' or 'AP', got {view!r}.")
    if photometric_interpretation not in ("MONOCHROME2", "MONOCHROME1"):
        raise ValueError(
            f"photometric_interpretation must be MONOCHROME2 or MONOCHROME1, got {photometric_interpretation!r}."
        )
    if not isinstance(patient_id, str) or not patient_id:
        raise ValueError(f"patient_id must be a non-empty str, got {patient_id!r}.")
    max_val = 2**bits_stored - 1
    if bits_stored == 8:
        if img.dtype != np.uint8:
            raise ValueError(f"bits_stored=8 needs a uint8 image, got {img.dtype}.")
        pixels = img.copy()
    elif img.dtype == np.uint8:
        pixels = np.round(img.astype(np.float64) * (max_val / 255.0)).astype(np.uint16)
    else:
        if int(img.max(initial=0)) > max_val:
            raise ValueError(f"image values must be <= {max_val} for bits_stored={bits_stored}, got {int(img.max())}.")
        pixels = img.copy()
    if photometric_interpretation == "MONOCHROME1":
        pixels = (max_val - pixels.astype(np.int64)).astype(pixels.dtype)

    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID, generate_uid

    def uid(tag: str) -> str:
        if uid_entropy is None:
            return generate_uid()
        return generate_uid(entropy_srcs=[str(v) for v in uid_entropy] + [tag])

    dx_class = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = dx_class
    meta.MediaStorageSOPInstanceUID = uid("sop")
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = FileDataset(path, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = dx_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = uid("study")
    ds.SeriesInstanceUID = uid("series")
    ds.FrameOfReferenceUID = uid("frame")
    ds.PatientName = patient_id
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyDate = "20000101"
    ds.StudyTime = "000000"
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.Modality = "DX"
    ds.Manufacturer = "monai_afloc synthetic"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = view
    ds.PatientOrientation = ["L", "F"]
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.PixelIntensityRelationship = "LOG"
    # -1: higher pixel values correspond to less X-ray beam intensity (bone bright), as MONOCHROME2 stores them
    ds.PixelIntensityRelationshipSign = -1 if photometric_interpretation == "MONOCHROME2" else 1
    ds.RescaleIntercept = 0
    ds.RescaleSlope = 1
    ds.RescaleType = "US"
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"
    ds.ImagerPixelSpacing = [float(pixel_spacing[0]), float(pixel_spacing[1])]
    ds.PixelSpacing = [float(pixel_spacing[0]), float(pixel_spacing[1])]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric_interpretation
    ds.Rows, ds.Columns = int(pixels.shape[0]), int(pixels.shape[1])
    ds.BitsAllocated = 8 if bits_stored == 8 else 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    ds.WindowCenter = (max_val + 1) // 2
    ds.WindowWidth = max_val + 1
    ds.PixelData = np.ascontiguousarray(pixels.astype("<u2" if bits_stored > 8 else np.uint8)).tobytes()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return save_dicom(ds, path)


def make_synthetic_dataset(
    out_dir: str,
    n_train: int = 256,
    n_val: int = 32,
    n_test_annotated: int = 64,
    image_size: int | Sequence[int] = 256,
    seed: int = 0,
    fmt: str = "png",
    with_dicom: bool = False,
    finding_probs: Mapping[str, float] | None = None,
    max_findings: int = 3,
    normal_fraction: float = 0.2,
    n_val_annotated: int = 0,
) -> dict[str, str]:
    """
    Write a complete synthetic data set: a pretraining split (train + validate), an annotated test split and,
    optionally, an annotated validation split (to select the model on a localization metric).

    Layout: ``out_dir/pretraining/`` (:func:`write_pretraining_split`, indices ``0 .. n_train + n_val - 1``),
    ``out_dir/annotated/`` (:func:`write_annotated_split`, abnormal cases from index ``ANNOTATED_START_INDEX``),
    with ``n_val_annotated > 0`` ``out_dir/annotated_val/`` (the same format, abnormal cases from index
    ``ANNOTATED_VAL_START_INDEX``; the test split's indices then stay below it; no DICOM files) and
    ``out_dir/synthetic-cxr-info.json`` (the settings and paths, for reproducibility). ``n_val_annotated=0`` (the
    default) writes exactly what earlier versions wrote.

    Args:
        out_dir: root folder (created if needed).
        n_train: pretraining training cases (>= 1).
        n_val: pretraining validation cases (>= 0).
        n_test_annotated: annotated test images (>= 1).
        image_size: int or ``(H, W)``.
        seed: generator seed.
        fmt: "png" or "jpg".
        with_dicom: also write the annotated images as DX DICOM.
        finding_probs, max_findings, normal_fraction: passed to :class:`SyntheticCXRGenerator`.
        n_val_annotated: annotated validation images (>= 0; 0: no annotated validation split).

    Returns:
        ``{"root", "pretraining_csv", "annotated_json", "info_json"}`` paths, and ``"annotated_val_json"`` when
        ``n_val_annotated > 0``.

    Example::

        paths = make_synthetic_dataset("/tmp/synth", n_train=64, n_val=16, n_test_annotated=16, image_size=256,
                                       n_val_annotated=8)
        paths["annotated_val_json"]  # '/tmp/synth/annotated_val/synthetic-cxr-annotations.json'
    """
    n_train = _check_int("n_train", n_train, 1)
    n_val = _check_int("n_val", n_val, 0)
    n_test_annotated = _check_int("n_test_annotated", n_test_annotated, 1)
    n_val_annotated = _check_int("n_val_annotated", n_val_annotated, 0)
    if PRETRAINING_START_INDEX + n_train + n_val > ANNOTATED_START_INDEX:
        raise ValueError(f"n_train + n_val must be <= {ANNOTATED_START_INDEX - PRETRAINING_START_INDEX} so that the "
                         f"pretraining and annotated index ranges do not overlap, got {n_train + n_val}.")
    if not isinstance(out_dir, (str, os.PathLike)):
        raise TypeError(f"out_dir must be a path, got {type(out_dir).__name__}.")
    generator = SyntheticCXRGenerator(image_size=image_size, seed=seed, finding_probs=finding_probs,
                                      max_findings=max_findings, normal_fraction=normal_fraction)
    out_dir = os.fspath(out_dir)
    total = n_train + n_val
    csv_path = write_pretraining_split(os.path.join(out_dir, "pretraining"), total, generator, fmt=fmt,
                                       splits=(n_train / total, n_val / total, 0.0))
    # with a validation split the test split must stay below its range (without one: today's output, unchanged)
    stop = ANNOTATED_VAL_START_INDEX if n_val_annotated > 0 else None
    json_path = write_annotated_split(os.path.join(out_dir, "annotated"), n_test_annotated, generator, fmt=fmt,
                                      with_dicom=with_dicom, stop_index=stop)
    paths = {"root": out_dir, "pretraining_csv": csv_path, "annotated_json": json_path}
    if n_val_annotated > 0:
        paths["annotated_val_json"] = write_annotated_split(
            os.path.join(out_dir, "annotated_val"), n_val_annotated, generator, fmt=fmt,
            start_index=ANNOTATED_VAL_START_INDEX,
        )
    paths["info_json"] = os.path.join(out_dir, INFO_JSON)
    info = {
        "generator": {"image_size": list(generator.image_size), "seed": generator.seed,
                      "finding_weights": generator.finding_weights, "max_findings": generator.max_findings,
                      "normal_fraction": generator.normal_fraction},
        "pretraining": {"start_index": PRETRAINING_START_INDEX, "n_train": n_train, "n_val": n_val},
        "annotated": {"start_index": ANNOTATED_START_INDEX, "n_images": n_test_annotated},
    }
    if n_val_annotated > 0:
        info["annotated_val"] = {"start_index": ANNOTATED_VAL_START_INDEX, "n_images": n_val_annotated}
    info["findings"] = list(SYNTHETIC_FINDINGS)
    info["paths"] = {k: os.path.relpath(v, out_dir) for k, v in paths.items() if k != "root"}
    with open(paths["info_json"], "w", encoding="utf-8") as fh:
        json.dump(info, fh, indent=1)
    return paths
