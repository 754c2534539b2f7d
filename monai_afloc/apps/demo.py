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
The one-command demo: synthetic chest X-rays -> AFLoc pre-training through the MONAI Bundle -> evaluation beside the
prompt-only prior and the image-shuffled control (and, on request, the global-only and word+global ablations) ->
overlays, a results table, ``metrics.json`` and the checkpoint in monai_afloc's own format.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = ["find_bundle", "train_with_bundle", "run_demo", "DEMO_SETTINGS", "DEFAULT_STEPS", "ABLATIONS"]

logger = logging.getLogger("monai_afloc.demo")

BUNDLE_NAME = "afloc_chest_xray_localization"

#: bundle overrides of the demo: small enough to learn something in minutes on 2 CPU cores
DEMO_SETTINGS: dict[str, Any] = {
    "backbone": "resnet10",
    "image_size": 128,
    "encoder_input_size": None,
    "freeze_text_encoder": True,
    "projection_dim": 256,
    "center_text_features": True,  # frozen MiniLM report vectors are near-parallel (mean cosine 0.87): centre them
    # the short-budget recipe (each measured with the calibration ladder; see the bundle's docs/experiments.md):
    "layer3_stride": 1,  # a 16x16 sentence grid at 128 px (8x8 caps even mask supervision near the prior)
    "position_encoding": 4,  # region embeddings can learn where reports' location words and findings point to
    "normalize_regions": True,  # the heatmap is the cosine the multiple-instance loss trains
    "report_pooling": "words",  # prompts and reports pooled alike (no [CLS]/[SEP]/padding weight)
    "local_mode": "mil",  # multiple-instance local terms: each word / sentence matched to its best regions
    "train_center_crop": False,  # train on the frame the heatmaps are read in (no 256/224 zoom)
    "negation_mode": "drop_mentions",  # remove negated (and uncertain) findings, keep the affirmed rest of a sentence
    "sentence_sample_prob": 0.0,  # a random sentence subset often drops the one finding of a synthetic report
    "batch_size": 32,
    "learning_rate": 1e-3,
    "epochs": 1000,  # the step budget (run_demo's steps) ends training
    "num_workers": 0,
    "val_interval": 1,
}

#: bundle settings that run_demo sets itself -> the run_demo argument that controls them
_RUN_ARGUMENTS: dict[str, str] = {
    "dataset_dir": "out_dir",
    "generate_synthetic": "out_dir",
    "budget_minutes": "minutes",
    "max_steps": "steps",
    "text_model": "text_model",
    "seed": "seed",
}

#: ablation name -> bundle overrides of the demo recipe (trained on the same data and budget)
ABLATIONS: dict[str, dict[str, Any]] = {
    "global_only": {"global_weight": 1.0, "sentence_weight": 0.0, "word_weight": 0.0},
    "word_global": {"global_weight": 1.0, "sentence_weight": 0.0, "word_weight": 1.0},
    # the reference's local terms (softmax-over-words attention) in place of the multiple-instance ones
    "attention_local": {"local_mode": "attention", "normalize_regions": False},
}


def find_bundle(name: str = BUNDLE_NAME) -> str:
    """The bundle folder: ``$MONAI_AFLOC_BUNDLES/<name>`` or ``<source checkout>/bundles/<name>``."""
    candidates = []
    if os.environ.get("MONAI_AFLOC_BUNDLES"):
        candidates.append(os.path.join(os.environ["MONAI_AFLOC_BUNDLES"], name))
    candidates.append(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "bundles", name))
    for c in candidates:
        if os.path.isfile(os.path.join(c, "configs", "train.json")):
            return c
    raise FileNotFoundError(
        f"bundle {name!r} not found in {candidates}; run from a source checkout (pip install -e .) or set "
        "MONAI_AFLOC_BUNDLES to the folder that holds the bundles."
    )


def train_with_bundle(bundle_dir: str, output_dir: str, overrides: Mapping[str, Any]) -> str:
    """Run the bundle's ``train.json`` with ``overrides`` through ``monai.bundle.ConfigWorkflow``; return the model."""
    from monai.bundle import ConfigWorkflow

    os.makedirs(output_dir, exist_ok=True)
    workflow = ConfigWorkflow(
        config_file=os.path.join(bundle_dir, "configs", "train.json"),
        meta_file=os.path.join(bundle_dir, "configs", "metadata.json"),
        logging_file=os.path.join(bundle_dir, "configs", "logging.conf"),
        workflow_type="train",
        bundle_root=bundle_dir,
        output_dir=output_dir,
        **dict(overrides),
    )
    workflow.initialize()
    workflow.run()
    workflow.finalize()
    for name in ("last", "best"):
        path = os.path.join(output_dir, "models", name)
        if os.path.isdir(path):
            return path
    raise RuntimeError(f"training finished without a saved model under {os.path.join(output_dir, 'models')}.")


def _labels(items: list[dict], findings: list[str]) -> tuple[list[str], np.ndarray]:
    images = list(dict.fromkeys(it["image"] for it in items))
    present = {(it["image"], it["category"]) for it in items}
    return images, np.array([[int((p, f) in present) for f in findings] for p in images])


def _comparison_figure(cases: list[tuple[dict, Any, Any]], priors: dict, path: str, n: int = 3) -> str:
    """
    One PNG: for the first ``n`` of ``cases`` (``(item, image, AFLoc heatmap)`` as :func:`_overlays` computed them),
    AFLoc's heatmap of the location-free prompt beside the prompt-only prior, one row per case.
    """
    import tempfile

    import torch.nn.functional as F
    from PIL import Image

    from monai_afloc.apps.outputs import save_overlay

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (it, image, heat) in enumerate(cases[:n]):
            prior = priors["location_free"].get(it["prompt_location_free"].lower())
            if prior is None:
                continue
            # the prior lives in the square training frame; the synthetic images are square, so a resize maps it back
            prior = F.interpolate(torch.as_tensor(prior, dtype=torch.float32)[None, None], size=tuple(heat.shape[-2:]),
                                  mode="bilinear", align_corners=False)[0, 0]
            prior = 2 * (prior - prior.min()) / (prior.max() - prior.min()).clamp_min(1e-12) - 1
            panels = []
            for name, m in (("AFLoc", heat), ("prompt-only prior", prior)):
                panel = os.path.join(tmp, f"{i}_{len(panels)}.png")
                save_overlay(panel, image, m, title=f"{name}: {it['prompt_location_free']}", truth_boxes=it["boxes"])
                panels.append(Image.open(panel).convert("RGB"))
            rows.append(panels)
        if not rows:
            raise ValueError("no test case has a prompt-only prior to compare with.")
        w, h = max(p.width for r in rows for p in r), max(p.height for r in rows for p in r)
        sheet = Image.new("RGB", (2 * w, h * len(rows)), "white")
        for r, panels in enumerate(rows):
            for c, panel in enumerate(panels):
                sheet.paste(panel, (c * w, r * h))
        sheet.save(path)
    return path


def _overlays(loc: Any, items: list[dict], out_dir: str, n: int = 4) -> tuple[list[str], list[tuple[dict, Any, Any]]]:
    """Overlay PNGs of the first ``n`` items; also returns ``(item, image, heatmap)`` of each for other figures."""
    from monai_afloc.apps.outputs import save_overlay

    paths, cases = [], []
    for i, it in enumerate(items[:n]):
        image = loc.preprocess.loader(it["image"])  # decoded once: the heatmap and the overlay
        out = loc([image], [it["prompt_location_free"]], return_boxes=True)
        path = os.path.join(out_dir, f"overlay_{i:02d}.png")
        title = f"{it['prompt_location_free']}  (truth: {it['prompt']})"
        save_overlay(path, image, out["heatmaps"][0, 0], title=title,
                     boxes=out["boxes"][0][0][:3], truth_boxes=it["boxes"])
        paths.append(path)
        cases.append((it, image, out["heatmaps"][0, 0]))
    return paths, cases


#: training steps of each model in the default demo (the whole demo then fits in 10 minutes on 2 CPU cores)
DEFAULT_STEPS = 300


def run_demo(
    out_dir: str,
    steps: int = DEFAULT_STEPS,
    minutes: float | None = None,
    ablations: bool = False,
    n_train: int = 800,
    n_val: int = 64,
    n_test: int = 120,
    image_size: int = 256,
    seed: int = 0,
    text_model: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """
    Run the whole demo into ``out_dir``; returns the metrics dictionary that is also written to ``metrics.json``.

    Args:
        steps: training iterations of each trained model (AFLoc, and each ablation with ``ablations``): the budget,
            so one seed gives the same figures on any machine.
        minutes: optional wall-clock cap per trained model (``None``: none); a run stopped by it ends early, with
            the learning rate decayed over the cap.
        n_train, n_val, n_test: synthetic pre-training, validation and annotated test cases.
        image_size: side of the synthetic images.
        text_model: text model folder or hub id; default the offline all-MiniLM-L6-v2.
        overrides: extra bundle overrides (e.g. ``{"backbone": "resnet50"}``).
    """
    from monai_afloc.apps.evaluation import (
        detection_auroc,
        evaluate_localization,
        format_table,
        read_synthetic_annotations,
        synthetic_prompt_priors,
    )
    from monai_afloc.apps.outputs import to_jsonable
    from monai_afloc.apps.synthetic import SyntheticCXRGenerator, make_synthetic_dataset
    from monai_afloc.inferers.localizer import TextPromptLocalizer

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}.")
    if minutes is not None and (isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not minutes > 0):
        raise ValueError(f"minutes must be None (no cap) or a number > 0, got {minutes!r}.")
    reserved = sorted(set(overrides or {}) & set(_RUN_ARGUMENTS))
    if reserved:
        raise ValueError(
            f"overrides {reserved} are set by run_demo's own arguments; pass "
            + ", ".join(f"{_RUN_ARGUMENTS[k]}=..." for k in reserved) + " instead."
        )
    t_start = time.time()
    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    data_dir = os.path.join(out_dir, "data")
    info_json = os.path.join(data_dir, "synthetic-cxr-info.json")
    if not os.path.isfile(info_json):
        logger.warning("generating the synthetic data set in %s", data_dir)
        make_synthetic_dataset(data_dir, n_train=n_train, n_val=n_val, n_test_annotated=n_test,
                               image_size=image_size, seed=seed)
    with open(info_json, encoding="utf-8") as f:
        info = json.load(f)
    paths = {k: os.path.join(data_dir, v) for k, v in info["paths"].items()}
    bundle = find_bundle()
    settings = dict(DEMO_SETTINGS, **(overrides or {}))
    settings.update(
        {
            "dataset_dir": data_dir,
            "generate_synthetic": False,
            "budget_minutes": None if minutes is None else float(minutes),
            "max_steps": steps,
            "text_model": text_model,
            "seed": seed,
        }
    )
    runs = {"afloc": {}}
    if ablations:
        runs.update(ABLATIONS)
    models = {}
    for name, weights in runs.items():
        logger.warning("training %s for %d steps%s", name, steps, "" if minutes is None else f" (cap {minutes} min)")
        models[name] = train_with_bundle(bundle, os.path.join(out_dir, "runs", name), dict(settings, **weights))

    items = read_synthetic_annotations(paths["annotated_json"])
    gen = info["generator"]
    generator = SyntheticCXRGenerator(image_size=tuple(gen["image_size"]), seed=gen["seed"],
                                      max_findings=gen["max_findings"], normal_fraction=gen["normal_fraction"])
    priors = synthetic_prompt_priors(paths["pretraining_csv"], generator, frame_size=settings["image_size"])
    metrics: dict[str, Any] = {}
    findings = sorted({it["category"] for it in items})
    images, labels = _labels(items, findings)
    phrases = {it["category"]: it["prompt_location_free"] for it in items}
    table_rows = {}
    for name, model_dir in models.items():
        # the checkpoint's own inference settings (frame size, grid-scaled sigma), as every entry point uses them
        loc = TextPromptLocalizer.from_checkpoint(model_dir)
        net, sigma, frame = loc.network, loc.sigma, loc.image_size
        res = evaluate_localization(net, items, priors=priors if name == "afloc" else None,
                                    shuffled=name == "afloc", sigma=sigma, frame_size=frame)
        det = detection_auroc(net, images, labels, findings, phrases=phrases, sigma=sigma, frame_size=frame)
        res["afloc"]["detection"] = det
        metrics[name] = res.pop("afloc")
        metrics.update(res)
        table_rows[name] = metrics[name]
        if name == "afloc":
            overlay_dir = os.path.join(out_dir, "overlays")
            os.makedirs(overlay_dir, exist_ok=True)
            metrics["overlays"], cases = _overlays(loc, items, overlay_dir)
            metrics["comparison_figure"] = _comparison_figure(
                cases, priors, os.path.join(overlay_dir, "afloc_vs_prior.png")
            )
            final = os.path.join(out_dir, "models", "afloc")
            if os.path.isdir(final):
                shutil.rmtree(final)
            shutil.copytree(model_dir, final)
            metrics["checkpoint"] = final
            metrics["sigma"] = sigma
    for control in ("prior", "shuffled"):
        if control in metrics:
            table_rows[control] = metrics[control]
    table = format_table(table_rows)
    det_lines = ["| run | detection AUROC (heatmap max) | detection AUROC (zero-shot) |", "|---|---|---|"]
    for name in models:
        d = metrics[name]["detection"]
        det_lines.append(f"| {name} | {d['heatmap_max']['mean']['auroc']:.3f} | {d['zero_shot']['mean']['auroc']:.3f} |")
    metrics["table"] = table + "\n\n" + "\n".join(det_lines)
    metrics["settings"] = {k: v for k, v in settings.items() if k != "dataset_dir"}
    metrics["minutes_total"] = (time.time() - t_start) / 60.0
    with open(os.path.join(out_dir, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump(to_jsonable(metrics), f, indent=1)
    with open(os.path.join(out_dir, "results.md"), "w", encoding="utf-8") as f:
        f.write(metrics["table"] + "\n")
    return metrics
