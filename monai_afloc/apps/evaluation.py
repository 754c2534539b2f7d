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
Evaluation that cannot be fooled: AFLoc heatmaps scored with the MS-CXR protocol beside controls.

- ``afloc``: the model's heatmaps.
- ``prior``: for each prompt, the mean ground-truth mask of that prompt over the *training* cases (it never sees the
  test image); prompts unseen in training fall back to their category's mean mask.
- ``shuffled``: each prompt's heatmap computed on a *different* test image (a cyclic shift of the unique images).

Both location-free ("pleural effusion") and location-bearing ("small left pleural effusion") prompts are scored,
and detection AUROC (finding present vs absent) of the heatmap maximum and of the zero-shot score.
"""

from __future__ import annotations

import csv
import json
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

from monai_afloc.inferers.localizer import TextPromptLocalizer, prepare_images
from monai_afloc.inferers.similarity import gaussian_smooth2d, similarity_map, upsample_maps
from monai_afloc.metrics.report import localization_report
from monai_afloc.metrics.zero_shot import compute_zero_shot_metrics
from monai_afloc.inferers.zero_shot import zero_shot_probabilities
from monai_afloc.transforms.image.geometry import (
    geometry_for_size,
    original_boxes_to_frame,
    original_mask_to_frame,
    valid_frame_mask,
    valid_frame_masks,
)

__all__ = [
    "read_synthetic_annotations",
    "synthetic_prompt_priors",
    "item_frame_mask",
    "evaluate_localization",
    "detection_auroc",
    "format_table",
    "format_category_table",
]


def read_synthetic_annotations(json_path: str) -> list[dict[str, Any]]:
    """
    Read the synthetic MS-CXR-like COCO JSON into one item per (image, finding): ``image`` (absolute path),
    ``category``, ``prompt`` (location-bearing ``label_text``), ``prompt_location_free``, ``boxes`` and ``mask``
    (the union of the annotation masks, bool ``[H, W]``), ``width``, ``height``.
    """
    if not os.path.isfile(json_path):
        raise FileNotFoundError(f"annotation JSON not found: {json_path}")
    with open(json_path, encoding="utf-8") as f:
        coco = json.load(f)
    for key in ("images", "annotations", "categories"):
        if key not in coco:
            raise ValueError(f"{json_path} is not a COCO JSON: missing {key!r}.")
    root = os.path.dirname(os.path.abspath(json_path))
    images = {im["id"]: im for im in coco["images"]}
    names = {c["id"]: c["name"] for c in coco["categories"]}
    grouped: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for ann in coco["annotations"]:
        grouped[(ann["image_id"], ann["category_id"])].append(ann)
    items = []
    for (image_id, cat_id), anns in grouped.items():
        im = images[image_id]
        h, w = int(im["height"]), int(im["width"])
        mask = np.zeros((h, w), dtype=bool)
        for ann in anns:
            if ann.get("mask_path"):
                mask |= np.asarray(Image.open(os.path.join(root, ann["mask_path"]))) > 127
            else:
                x, y, bw, bh = (int(round(v)) for v in ann["bbox"])
                mask[y : y + bh, x : x + bw] = True
        items.append(
            {
                "image": os.path.join(root, im["path"]),
                "image_id": image_id,
                "category": names[cat_id],
                "prompt": anns[0]["label_text"],
                "prompt_location_free": anns[0].get("label_text_location_free", names[cat_id].lower()),
                "boxes": [a["bbox"] for a in anns],
                "mask": mask,
                "width": w,
                "height": h,
            }
        )
    return items


def synthetic_prompt_priors(
    pretraining_csv: str, generator: Any, frame_size: int = 224, split: str = "train", max_cases: int | None = None
) -> dict[str, dict[str, np.ndarray]]:
    """
    Mean ground-truth masks in the ``frame_size`` frame over the training cases of the synthetic pre-training split,
    per prompt text: ``{"location_free": {...}, "location_bearing": {...}, "category": {...}}`` (keys lower-cased).
    The masks are regenerated from the seeded generator (the training images carry no annotations).
    """
    sums: dict[str, dict[str, np.ndarray]] = {"location_free": {}, "location_bearing": {}, "category": {}}
    counts: dict[str, dict[str, int]] = {k: defaultdict(int) for k in sums}
    with open(pretraining_csv, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r.get("split") == split]
    if not rows:
        raise ValueError(f"no {split!r} rows in {pretraining_csv}.")
    for row in rows[:max_cases]:
        case = generator.generate_case(int(row["case_index"]))
        h, w = case["image"].shape
        g = geometry_for_size(h, w, frame_size)
        for f in case["findings"]:
            frame = original_mask_to_frame(f["mask"], g).numpy().astype(np.float64)
            for kind, key in (
                ("location_free", f["phrase_location_free"]),
                ("location_bearing", f["phrase"]),
                ("category", f["name"]),
            ):
                key = key.lower()
                sums[kind][key] = sums[kind].get(key, 0.0) + frame
                counts[kind][key] += 1
    return {kind: {k: v / counts[kind][k] for k, v in table.items()} for kind, table in sums.items()}


def _frames(items: Sequence[Mapping], localizer: TextPromptLocalizer, chunk: int = 32):
    """Unique images -> region embeddings [U, D, h, w], report vectors [U, D], geometries, image index per item."""
    paths = list(dict.fromkeys(it["image"] for it in items))
    regions, reports, geometries = [], [], []
    for s in range(0, len(paths), chunk):
        frames, geoms, _ = prepare_images(paths[s : s + chunk], localizer.preprocess)
        r, v = localizer.encode_frames(frames)
        regions.append(r)
        reports.append(v)
        geometries.extend(geoms)
    index = {p: i for i, p in enumerate(paths)}
    return torch.cat(regions), torch.cat(reports), geometries, [index[it["image"]] for it in items]


def _raw_maps(
    regions: torch.Tensor, prompt_vectors: torch.Tensor, image_idx: Sequence[int], sigma: float, size: int
) -> np.ndarray:
    """Raw (un-rescaled) frame heatmaps, one per item: item ``i`` pairs image ``image_idx[i]`` with prompt ``i``."""
    out = []
    for s in range(0, len(image_idx), 64):
        reg = regions[torch.as_tensor(list(image_idx[s : s + 64]))]  # [n, D, h, w]
        sim = torch.einsum("ndhw,nd->nhw", reg, prompt_vectors[s : s + 64].to(reg.device))
        sim = gaussian_smooth2d(sim, sigma)[:, None]
        out.append(upsample_maps(sim, size)[:, 0].cpu().numpy())
    return np.concatenate(out)


def item_frame_mask(item: Mapping[str, Any], geometry: Any) -> np.ndarray:
    """
    The ground truth of an annotated item in the ``S x S`` frame of ``geometry`` (bool ``[S, S]``):

    - an item with a ``mask`` (original pixels): :func:`~monai_afloc.transforms.image.geometry.original_mask_to_frame`;
    - an item with ``boxes`` only (``[x, y, w, h]`` in original pixels, as :func:`~monai_afloc.data.ms_cxr_datalist`
      gives them): the AFLoc release's MS-CXR protocol: each box mapped into the frame and floored
      (``original_boxes_to_frame(..., floor=True)``, the release's ``box_mapping``), then filled as
      ``mask[y : y + h, x : x + w]``. No full-size mask is made, so a large set never holds them all.

    Raises:
        KeyError: an item with neither ``mask`` nor ``boxes``.
    """
    if "mask" in item:
        return original_mask_to_frame(item["mask"], geometry).numpy()
    if "boxes" not in item:
        raise KeyError(f"an annotated item needs a 'mask' or 'boxes'; {item.get('image')!r} has neither.")
    size = geometry.frame_size if hasattr(geometry, "frame_size") else int(geometry["frame_size"])
    mask = np.zeros((size, size), dtype=bool)
    boxes = np.asarray(item["boxes"], dtype=np.float64).reshape(-1, 4)
    for x, y, w, h in original_boxes_to_frame(boxes, geometry, floor=True).astype(np.int64):
        mask[max(y, 0) : max(y + h, 0), max(x, 0) : max(x + w, 0)] = True
    return mask


def evaluate_localization(
    network: nn.Module,
    items: Sequence[Mapping[str, Any]],
    priors: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    prompt_keys: Sequence[str] = ("prompt_location_free", "prompt"),
    sigma: float = 1.5,
    frame_size: int = 224,
    shuffled: bool = True,
    n_bootstrap: int = 200,
    seed: int = 0,
) -> dict[str, Any]:
    """
    Score ``network``'s heatmaps on annotated ``items`` (see :func:`read_synthetic_annotations`; MS-CXR items of
    :func:`~monai_afloc.data.ms_cxr_datalist` with ``prompt_keys=("prompt",)``, see :func:`item_frame_mask`) with
    :func:`~monai_afloc.metrics.localization_report`, beside the prompt-only prior and the image-shuffled control.

    Returns ``{"afloc": report, "shuffled": report, "prior": report}`` for the first of ``prompt_keys`` (the
    location-free prompts); each report carries the second key's (location-bearing) report under
    ``"location_bearing"``.
    """
    if len(items) == 0:
        raise ValueError("no annotated items to evaluate.")
    localizer = TextPromptLocalizer(network, sigma=sigma, image_size=frame_size)
    network.eval()
    regions, _, geometries, image_idx = _frames(items, localizer)
    truth = [item_frame_mask(it, geometries[i]) for it, i in zip(items, image_idx)]
    valid = [valid_frame_mask(geometries[i]).cpu().numpy() for i in image_idx]
    categories = [it["category"] for it in items]
    n_images = regions.shape[0]
    shift = [(i + 1) % n_images for i in image_idx]  # always another image when there are >= 2
    kinds = {"prompt_location_free": "location_free", "prompt": "location_bearing"}
    results: dict[str, dict[str, Any]] = {}
    for key in prompt_keys:
        vectors = localizer.prompt_encoder([it[key] for it in items])
        runs = {"afloc": _raw_maps(regions, vectors, image_idx, sigma, frame_size)}
        if shuffled and n_images > 1:
            runs["shuffled"] = _raw_maps(regions, vectors, shift, sigma, frame_size)
        if priors is not None:
            table, fallback = priors.get(kinds.get(key, "location_free"), {}), priors.get("category", {})
            maps = []
            for it in items:
                m = table.get(it[key].lower())
                if m is None:
                    m = fallback.get(it["category"].lower(), np.zeros((frame_size, frame_size)))
                maps.append(m)
            runs["prior"] = np.stack(maps)
        for name, maps in runs.items():
            report = localization_report(list(maps), truth, categories, valid=valid, n_bootstrap=n_bootstrap, seed=seed)
            if key == prompt_keys[0]:
                results.setdefault(name, {}).update(report)
            else:
                results.setdefault(name, {})["location_bearing"] = report
    return results


def detection_auroc(
    network: nn.Module,
    image_paths: Sequence[str],
    labels: np.ndarray,
    findings: Sequence[str],
    phrases: Mapping[str, str] | None = None,
    sigma: float = 1.5,
    frame_size: int = 224,
) -> dict[str, Any]:
    """
    Detection AUROC (present vs absent) per finding of (a) the heatmap maximum of the finding's phrase and (b) the
    zero-shot score ``softmax(10 · [cos(img, "phrase"), cos(img, "no phrase")])[0]``.

    Args:
        labels: ``[N, F]`` 0/1 presence of each finding in each image.
        phrases: finding -> prompt phrase (default: the lower-cased finding name).
    """
    labels = np.asarray(labels)
    if labels.shape != (len(image_paths), len(findings)):
        raise ValueError(f"labels must be [{len(image_paths)}, {len(findings)}], got {labels.shape}.")
    localizer = TextPromptLocalizer(network, sigma=sigma, image_size=frame_size)
    network.eval()
    regions, reports, geometries, _ = _frames([{"image": p} for p in image_paths], localizer)
    phrases = {f: (phrases or {}).get(f, f.lower()) for f in findings}
    pos = localizer.prompt_encoder([phrases[f] for f in findings])
    neg = localizer.prompt_encoder([f"no {phrases[f]}" for f in findings])
    sim = upsample_maps(similarity_map(regions, pos.to(regions.device), sigma=sigma), frame_size)
    valid = valid_frame_masks(geometries, device=sim.device)
    heat = torch.where(valid, sim, torch.full_like(sim, -torch.inf)).amax(dim=(-2, -1)).cpu().numpy()
    zero_shot = zero_shot_probabilities(reports, pos, neg, logit_scale=10.0).cpu().numpy()
    return {
        "heatmap_max": compute_zero_shot_metrics(heat, labels, list(findings)),
        "zero_shot": compute_zero_shot_metrics(zero_shot, labels, list(findings)),
    }


def _fmt(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.3f}"


def format_table(metrics: Mapping[str, Mapping[str, Any]]) -> str:
    """A Markdown table of pointing game / mIoU / Dice / CNR per run, for location-free and location-bearing prompts."""
    lines = ["| run | prompts | pointing game | mIoU | Dice | CNR |", "|---|---|---|---|---|---|"]
    for name, report in metrics.items():
        if not isinstance(report, Mapping) or "mean" not in report:
            continue
        for label, rep in (("location-free", report), ("location-bearing", report.get("location_bearing"))):
            if rep is None:
                continue
            m = rep["mean"]
            lines.append(
                f"| {name} | {label} | {_fmt(m['pointing_game'])} | {_fmt(m['iou'])} | {_fmt(m['dice'])} | "
                f"{_fmt(m['cnr'])} |"
            )
    return "\n".join(lines)


def _with_ci(report: Mapping[str, Any], key: str) -> str:
    lo, hi = (report.get("ci95") or {}).get(key, [float("nan")] * 2)
    ci = "" if np.isnan(lo) or np.isnan(hi) else f" [{_fmt(lo)}, {_fmt(hi)}]"
    return f"{_fmt(report['mean'][key])}{ci}"


def format_category_table(metrics: Mapping[str, Mapping[str, Any]]) -> str:
    """
    A Markdown table per run and category (``per_category`` of each report: pointing game, mIoU, Dice, CNR and the
    number of cases), with an ``all`` row per run: the means and their 95% bootstrap intervals.
    """
    lines = ["| run | category | n | pointing game | mIoU | Dice | CNR |", "|---|---|---|---|---|---|---|"]
    for name, report in metrics.items():
        if not isinstance(report, Mapping) or "per_category" not in report:
            continue
        for category, row in sorted(report["per_category"].items()):
            lines.append(f"| {name} | {category} | {row['n']} | {_fmt(row['pointing_game'])} | {_fmt(row['iou'])} | "
                         f"{_fmt(row['dice'])} | {_fmt(row['cnr'])} |")
        lines.append(f"| {name} | all (95% CI) | {report['n']} | {_with_ci(report, 'pointing_game')} | "
                     f"{_with_ci(report, 'iou')} | {_with_ci(report, 'dice')} | {_with_ci(report, 'cnr')} |")
    return "\n".join(lines)
