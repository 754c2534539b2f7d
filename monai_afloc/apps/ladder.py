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
A calibration ladder for the synthetic demo: what localization the same backbone reaches on the same data in the same
number of steps, from full supervision down to no image at all.

Rungs (each trained with the demo recipe's backbone, input size, batch size and step count):
  1. ``supervised_segmentation``: a 1x1 head on the sentence-level (layer3) features trained on the ground-truth masks
     (per-cell binary cross-entropy against the masks area-pooled to the grid) — the upper bound of that grid;
  2. ``label_cam``: the same head trained from the image-level finding labels only (binary cross-entropy of the
     class maps' spatial mean: a class activation map);
  3. ``afloc``, 4. ``attention_local``, ``global_only``, ``word_global``: the demo's AFLoc and its ablations (the
     reference's attention local terms instead of the multiple-instance ones; global term only; words + global);
     no boxes, no labels;
  6. ``prior``: the prompt-only prior (the mean training mask of each prompt; it never sees the test image);
  7. ``shuffled``: AFLoc's heatmap computed on another test image.
Every rung is scored with the same protocol (:func:`monai_afloc.metrics.localization_report`, location-free prompts)
and, where it has a score per image, the detection AUROC of the heatmap maximum. :func:`run_ladder` repeats all of it
for several training seeds and reports mean and standard deviation.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "LADDER_RUNGS",
    "MAP_BASELINES",
    "ClassMapNet",
    "train_class_map_baseline",
    "evaluate_class_maps",
    "run_ladder",
    "summarize_ladder",
]

logger = logging.getLogger("monai_afloc.ladder")

#: the rungs, top (most supervision) to bottom
LADDER_RUNGS: tuple[str, ...] = (
    "supervised_segmentation", "label_cam", "afloc", "attention_local", "global_only", "word_global", "prior",
    "shuffled",
)
#: the rungs trained here (the others come from the demo)
MAP_BASELINES: tuple[str, ...] = ("supervised_segmentation", "label_cam")
_METRICS = ("pointing_game", "iou", "dice", "cnr")


class ClassMapNet(nn.Module):
    """
    The demo's image encoder whose sentence-level 1x1 head outputs one map per class: ``[B, C, h3, w3]`` logits.

    Args:
        n_classes: number of classes ``C`` (>= 1).
        backbone, stem_pool, input_size, layer3_stride: as :class:`monai_afloc.networks.nets.AFLocImageEncoder`.
    """

    def __init__(self, n_classes: int, backbone: str = "resnet10", stem_pool: bool = True,
                 input_size: int | None = None, layer3_stride: int = 2) -> None:
        super().__init__()
        from monai_afloc.networks.nets import AFLocImageEncoder

        if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 1:
            raise ValueError(f"n_classes must be an int >= 1, got {n_classes!r}.")
        self.encoder = AFLocImageEncoder(backbone, embed_dim=n_classes, input_size=input_size, stem_pool=stem_pool,
                                         layer3_stride=layer3_stride)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        from monai_afloc.utils.enums import AFLocKeys

        return self.encoder(image)[AFLocKeys.IMAGE_SENTENCES]


def train_class_map_baseline(
    kind: str,
    frames: torch.Tensor,
    targets: torch.Tensor,
    steps: int,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    seed: int = 0,
    backbone: str = "resnet10",
    stem_pool: bool = True,
    layer3_stride: int = 2,
    amp: bool | str = "auto",
) -> ClassMapNet:
    """
    Train a ladder baseline for ``steps`` AdamW steps (cosine learning rate to 1 %), random batches drawn with
    ``seed``.

    Args:
        kind: ``"supervised_segmentation"`` (``targets [N, C, h3, w3]`` in [0, 1], the masks area-pooled to the
            sentence grid) or ``"label_cam"`` (``targets [N, C]`` 0/1 labels).
        frames: ``[N, 3, S, S]`` preprocessed training images.
        amp: as the bundle's ``amp`` (see :func:`monai_afloc.engines.resolve_amp`).

    Raises:
        ValueError: on an unknown ``kind`` or targets that do not fit ``frames``.
    """
    from monai_afloc.engines.amp import resolve_amp

    if kind not in MAP_BASELINES:
        raise ValueError(f"kind must be one of {MAP_BASELINES}, got {kind!r}.")
    if frames.ndim != 4 or targets.shape[0] != frames.shape[0]:
        raise ValueError(f"frames [N, 3, S, S] and targets [N, ...] must share N, got {tuple(frames.shape)} and "
                         f"{tuple(targets.shape)}.")
    if (kind == "label_cam") != (targets.ndim == 2):
        raise ValueError(f"{kind} needs targets shaped {'[N, C]' if kind == 'label_cam' else '[N, C, h, w]'}, got "
                         f"{tuple(targets.shape)}.")
    torch.manual_seed(seed)
    net = ClassMapNet(targets.shape[1], backbone=backbone, stem_pool=stem_pool, layer3_stride=layer3_stride)
    device = frames.device
    enabled, amp_kwargs = resolve_amp(amp, device)
    opt = torch.optim.AdamW(net.parameters(), lr=learning_rate, weight_decay=1e-6)
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = learning_rate * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        idx = torch.randint(frames.shape[0], (min(batch_size, frames.shape[0]),), generator=gen)
        with torch.autocast(device.type, enabled=enabled, **amp_kwargs):
            maps = net(frames[idx]).float()
        target = targets[idx].to(maps)
        if kind == "label_cam":
            loss = F.binary_cross_entropy_with_logits(maps.mean(dim=(2, 3)), target)
        else:
            if target.shape[-2:] != maps.shape[-2:]:
                raise ValueError(f"mask targets are {tuple(target.shape[-2:])}, the grid is {tuple(maps.shape[-2:])}.")
            loss = F.binary_cross_entropy_with_logits(maps, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net.eval()


def evaluate_class_maps(
    maps: torch.Tensor,
    items: Sequence[Mapping[str, Any]],
    image_index: Sequence[int],
    class_index: Mapping[str, int],
    truth: Sequence[np.ndarray],
    valid: Sequence[np.ndarray],
    sigma: float,
    frame_size: int,
) -> dict[str, Any]:
    """
    Score class maps ``[U, C, h, w]`` of the ``U`` test images as heatmaps: item ``i`` uses map
    ``class_index[items[i]["category"]]`` of image ``image_index[i]``, smoothed (``sigma`` cells) and upsampled to
    the frame as AFLoc's heatmaps are. ``truth``/``valid``: the items' frame masks and valid-pixel masks.
    """
    from monai_afloc.inferers.similarity import gaussian_smooth2d, upsample_maps
    from monai_afloc.metrics.report import localization_report

    rows = torch.as_tensor(list(image_index))
    cols = torch.as_tensor([class_index[it["category"]] for it in items])
    raw = maps[rows, cols].float()  # [n, h, w]
    heat = upsample_maps(gaussian_smooth2d(raw, sigma)[:, None], frame_size)[:, 0].cpu().numpy()
    return localization_report(list(heat), list(truth), [it["category"] for it in items], valid=list(valid),
                               n_bootstrap=0)


def _frames(paths: Sequence[str], size: int, chunk: int = 64):
    from monai_afloc.inferers.localizer import prepare_images
    from monai_afloc.transforms.image import AFLocImagePreprocess

    pre = AFLocImagePreprocess(size=size)
    frames, geometries = [], []
    for s in range(0, len(paths), chunk):
        f, g, _ = prepare_images(list(paths[s : s + chunk]), pre)
        frames.append(f)
        geometries.extend(g)
    return torch.cat(frames), geometries


def _training_targets(pretraining_csv: str, generator: Any, findings: Sequence[str], size: int, grid: int):
    """Training frames, mask targets on the grid ``[N, C, grid, grid]`` and labels ``[N, C]`` of the train split."""
    from monai_afloc.transforms.image.geometry import original_mask_to_frame

    with open(pretraining_csv, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r.get("split") == "train"]
    root = os.path.dirname(pretraining_csv)
    frames, geometries = _frames([os.path.join(root, r["path"]) for r in rows], size)
    masks = torch.zeros(len(rows), len(findings), size, size)
    labels = torch.zeros(len(rows), len(findings))
    col = {f: i for i, f in enumerate(findings)}
    for n, (row, geom) in enumerate(zip(rows, geometries)):
        for finding in generator.generate_case(int(row["case_index"]))["findings"]:
            c = col[finding["name"]]
            masks[n, c] = torch.maximum(masks[n, c], original_mask_to_frame(finding["mask"], geom).float())
            labels[n, c] = 1.0
    return frames, F.adaptive_avg_pool2d(masks, grid), labels


def _mean_sd(values: Sequence[float]) -> dict[str, float]:
    arr = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if arr.size == 0:
        return {"mean": float("nan"), "sd": float("nan"), "n": 0}
    return {"mean": float(arr.mean()), "sd": float(arr.std(ddof=1)) if arr.size > 1 else 0.0, "n": int(arr.size)}


def summarize_ladder(per_seed: Sequence[Mapping[str, Mapping[str, Any]]]) -> dict[str, dict[str, dict[str, float]]]:
    """``{rung: {metric: {"mean", "sd", "n"}}}`` over seeds from per-seed ``{rung: {metric: value}}`` rows."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for rung in LADDER_RUNGS:
        rows = [r[rung] for r in per_seed if rung in r]
        if rows:
            out[rung] = {m: _mean_sd([row.get(m) for row in rows]) for m in rows[0]}
    return out


def format_ladder(summary: Mapping[str, Mapping[str, Mapping[str, float]]], steps: int, seeds: Sequence[int]) -> str:
    """A Markdown table of the ladder: mean ± sd over the seeds."""
    cols = ("pointing_game", "iou", "dice", "cnr", "detection_auroc")
    lines = [f"Calibration ladder: {steps} training steps, seeds {list(seeds)}, location-free prompts, mean ± sd.", "",
             "| rung | pointing game | mIoU | Dice | CNR | detection AUROC (map max) |", "|---|---|---|---|---|---|"]
    for rung, metrics in summary.items():
        cells = []
        for c in cols:
            v = metrics.get(c)
            cells.append("n/a" if v is None or not np.isfinite(v["mean"]) else f"{v['mean']:.3f} ± {v['sd']:.3f}")
        lines.append(f"| {rung} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_ladder(
    out_dir: str,
    steps: int,
    seeds: Sequence[int] = (0, 1, 2),
    n_train: int = 800,
    n_val: int = 64,
    n_test: int = 120,
    image_size: int = 256,
    overrides: Mapping[str, Any] | None = None,
    ablations: bool = True,
) -> dict[str, Any]:
    """
    Run every rung for each seed at ``steps`` training steps on one synthetic data set (data seed 0); write
    ``ladder.json`` and ``ladder.md`` into ``out_dir`` and return ``{"per_seed": [...], "summary": {...}}``.
    AFLoc, its ablations, the prior and the shuffled control come from :func:`monai_afloc.apps.demo.run_demo`
    (with ``ablations``; without, the ``global_only`` and ``word_global`` rungs are left out, which saves two thirds
    of the time); the two map baselines are trained here with the same backbone, size, batch and steps.
    """
    from monai_afloc.apps.demo import ABLATIONS, DEMO_SETTINGS, _labels, run_demo
    from monai_afloc.apps.evaluation import read_synthetic_annotations
    from monai_afloc.apps.synthetic import SYNTHETIC_FINDINGS, SyntheticCXRGenerator, make_synthetic_dataset
    from monai_afloc.inference_settings import grid_scaled_sigma, sentence_grid_size
    from monai_afloc.metrics.zero_shot import compute_zero_shot_metrics
    from monai_afloc.transforms.image.geometry import original_mask_to_frame, valid_frame_mask

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}.")
    if not seeds:
        raise ValueError("seeds must name at least one training seed.")
    out_dir = os.path.abspath(out_dir)
    data_dir = os.path.join(out_dir, "data")
    info_json = os.path.join(data_dir, "synthetic-cxr-info.json")
    if not os.path.isfile(info_json):
        make_synthetic_dataset(data_dir, n_train=n_train, n_val=n_val, n_test_annotated=n_test,
                               image_size=image_size, seed=0)
    with open(info_json, encoding="utf-8") as f:
        info = json.load(f)
    paths = {k: os.path.join(data_dir, v) for k, v in info["paths"].items()}
    settings = dict(DEMO_SETTINGS, **(overrides or {}))
    size, batch = int(settings["image_size"]), int(settings["batch_size"])
    backbone, stem_pool = settings["backbone"], bool(settings.get("stem_pool", True))
    layer3_stride = int(settings.get("layer3_stride", 2))
    gen = info["generator"]
    generator = SyntheticCXRGenerator(image_size=tuple(gen["image_size"]), seed=gen["seed"],
                                      max_findings=gen["max_findings"], normal_fraction=gen["normal_fraction"])
    findings = list(SYNTHETIC_FINDINGS)
    # the grid and its smoothing by stride arithmetic, exactly as every AFLoc entry point derives them
    encoder = ClassMapNet(len(findings), backbone=backbone, stem_pool=stem_pool, layer3_stride=layer3_stride).encoder
    grid, sigma = sentence_grid_size(encoder, size), grid_scaled_sigma(encoder, size)
    frames, mask_targets, label_targets = _training_targets(paths["pretraining_csv"], generator, findings, size, grid)
    items = read_synthetic_annotations(paths["annotated_json"])
    test_paths = list(dict.fromkeys(it["image"] for it in items))
    test_frames, test_geoms = _frames(test_paths, size)
    where = {p: i for i, p in enumerate(test_paths)}
    image_index = [where[it["image"]] for it in items]
    truth = [original_mask_to_frame(it["mask"], test_geoms[i]).numpy() for it, i in zip(items, image_index)]
    valid = [valid_frame_mask(test_geoms[i]).cpu().numpy() for i in image_index]
    test_findings = sorted({it["category"] for it in items})
    _, labels = _labels(items, test_findings)
    class_index = {f: i for i, f in enumerate(findings)}

    per_seed = []
    for seed in seeds:
        logger.warning("ladder: seed %d, %d steps", seed, steps)
        row: dict[str, dict[str, Any]] = {}
        run_dir = os.path.join(out_dir, f"seed{seed}")
        os.makedirs(run_dir, exist_ok=True)
        if not os.path.exists(os.path.join(run_dir, "data")):
            os.symlink(data_dir, os.path.join(run_dir, "data"))
        demo = run_demo(run_dir, ablations=ablations, seed=seed, steps=steps, overrides=overrides)
        row["demo_minutes"] = {"minutes": demo["minutes_total"]}
        for rung in ("afloc", *ABLATIONS, "prior", "shuffled"):
            if rung not in demo:
                continue
            mean = demo[rung]["mean"]
            row[rung] = {m: mean[m] for m in _METRICS}
            if "detection" in demo[rung]:
                row[rung]["detection_auroc"] = demo[rung]["detection"]["heatmap_max"]["mean"]["auroc"]
        for kind in MAP_BASELINES:
            targets = mask_targets if kind == "supervised_segmentation" else label_targets
            net = train_class_map_baseline(kind, frames, targets, steps, batch_size=batch,
                                           learning_rate=float(settings["learning_rate"]), seed=seed,
                                           backbone=backbone, stem_pool=stem_pool, layer3_stride=layer3_stride,
                                           amp=settings.get("amp", "auto"))
            with torch.no_grad():
                maps = torch.cat([net(test_frames[s : s + 64]) for s in range(0, len(test_frames), 64)]).float()
            report = evaluate_class_maps(maps, items, image_index, class_index, truth, valid, sigma, size)
            row[kind] = {m: report["mean"][m] for m in _METRICS}
            score = maps.flatten(2).amax(-1)[:, [class_index[f] for f in test_findings]].numpy()
            row[kind]["detection_auroc"] = compute_zero_shot_metrics(score, labels, test_findings)["mean"]["auroc"]
        per_seed.append(row)
    summary = summarize_ladder(per_seed)
    minutes = _mean_sd([row["demo_minutes"]["minutes"] for row in per_seed])
    table = format_ladder(summary, steps, seeds) + (
        f"\n\nWhole demo (data, training, evaluation) per seed: {minutes['mean']:.1f} ± {minutes['sd']:.1f} min."
    )
    result = {"steps": steps, "seeds": list(seeds), "settings": dict(settings), "per_seed": per_seed,
              "summary": summary, "demo_minutes": minutes, "table": table}
    with open(os.path.join(out_dir, "ladder.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1, default=str)
    with open(os.path.join(out_dir, "ladder.md"), "w", encoding="utf-8") as f:
        f.write(result["table"] + "\n")
    return result
