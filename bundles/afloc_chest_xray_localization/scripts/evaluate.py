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
Bundle evaluation: the localization report of a trained AFLoc on an annotated (MS-CXR-like) set, beside the
prompt-only prior and the image-shuffled control, plus detection AUROC — all computed by
:mod:`monai_afloc.apps.evaluation`; this module only gathers the inputs and writes ``metrics.json`` and
``table.md``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from monai_afloc.apps.evaluation import (
    detection_auroc,
    evaluate_localization,
    format_category_table,
    format_table,
    synthetic_prompt_priors,
)
from monai_afloc.apps.outputs import to_jsonable
from monai_afloc.apps.synthetic import SyntheticCXRGenerator

__all__ = ["synthetic_generator_from_info", "detection_labels", "LocalizationEvaluation"]


def synthetic_generator_from_info(info_json: str) -> SyntheticCXRGenerator:
    """The :class:`SyntheticCXRGenerator` that wrote a synthetic set, rebuilt from its ``synthetic-cxr-info.json``."""
    if not os.path.isfile(info_json):
        raise FileNotFoundError(f"synthetic info JSON not found: {info_json!r}.")
    with open(info_json, encoding="utf-8") as f:
        g = json.load(f)["generator"]
    return SyntheticCXRGenerator(
        image_size=tuple(g["image_size"]),
        seed=g["seed"],
        finding_probs=g.get("finding_weights"),
        max_findings=g["max_findings"],
        normal_fraction=g["normal_fraction"],
    )


def detection_labels(items: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str], np.ndarray, dict[str, str]]:
    """
    Per-image presence labels from annotated items (one item per image and finding): the image paths, the findings
    (sorted), ``labels [N, F]`` (1 where the image has an annotation of the finding) and each finding's
    location-free phrase.
    """
    paths = list(dict.fromkeys(it["image"] for it in items))
    findings = sorted({it["category"] for it in items})
    row, col = {p: i for i, p in enumerate(paths)}, {f: j for j, f in enumerate(findings)}
    labels = np.zeros((len(paths), len(findings)), dtype=np.int64)
    phrases: dict[str, str] = {}
    for it in items:
        labels[row[it["image"]], col[it["category"]]] = 1
        phrases.setdefault(it["category"], it.get("prompt_location_free", it["category"].lower()))
    return paths, findings, labels, phrases


class LocalizationEvaluation:
    """
    Score ``network`` on annotated items and write ``<output_dir>/metrics.json`` and ``<output_dir>/table.md``.

    Args:
        network: the AFLoc network (in eval mode on its device).
        items: annotated items from :func:`monai_afloc.apps.evaluation.read_synthetic_annotations`.
        output_dir: where the results go.
        sigma: Gaussian σ in grid cells.
        frame_size: the square frame of the preprocessing (the training image size).
        pretraining_csv: the synthetic pretraining CSV; with ``info_json`` it gives the prompt-only prior (``None``:
            no prior).
        info_json: the synthetic set's ``synthetic-cxr-info.json`` (rebuilds the generator for the prior).
        shuffled: also score the image-shuffled control.
        detection: also compute detection AUROC (needs two classes per finding).
        n_bootstrap: bootstrap resamples of the 95% intervals.
        prior_max_cases: training cases averaged into the prior (``None``: all).
        prompt_keys: the item keys holding the prompts: ``("prompt_location_free", "prompt")`` for the synthetic set
            (the second gives the ``location_bearing`` report), ``("prompt",)`` for MS-CXR (its phrases).
    """

    def __init__(
        self,
        network: torch.nn.Module,
        items: Sequence[Mapping[str, Any]],
        output_dir: str,
        sigma: float = 1.5,
        frame_size: int = 224,
        pretraining_csv: str | None = None,
        info_json: str | None = None,
        shuffled: bool = True,
        detection: bool = True,
        n_bootstrap: int = 200,
        prior_max_cases: int | None = None,
        prompt_keys: Sequence[str] = ("prompt_location_free", "prompt"),
    ) -> None:
        if not isinstance(network, torch.nn.Module):
            raise TypeError(f"network must be an AFLoc network, got {type(network).__name__}.")
        if len(items) == 0:
            raise ValueError("items must hold at least one annotated finding, got none.")
        if (pretraining_csv is None) != (info_json is None):
            raise ValueError("give both pretraining_csv and info_json for the prior, or neither.")
        self.network, self.items, self.output_dir = network, list(items), os.fspath(output_dir)
        self.sigma, self.frame_size = float(sigma), int(frame_size)
        self.pretraining_csv, self.info_json = pretraining_csv, info_json
        self.shuffled, self.detection, self.n_bootstrap = bool(shuffled), bool(detection), int(n_bootstrap)
        self.prior_max_cases = prior_max_cases
        if isinstance(prompt_keys, str) or not prompt_keys:
            raise ValueError(f"prompt_keys must be a non-empty sequence of item keys, got {prompt_keys!r}.")
        self.prompt_keys = tuple(prompt_keys)
        self.logger = logging.getLogger(__name__)

    def run(self) -> dict[str, Any]:
        priors = None
        if self.pretraining_csv is not None:
            generator = synthetic_generator_from_info(self.info_json)  # type: ignore[arg-type]
            priors = synthetic_prompt_priors(
                self.pretraining_csv, generator, frame_size=self.frame_size, max_cases=self.prior_max_cases
            )
        metrics: dict[str, Any] = evaluate_localization(
            self.network,
            self.items,
            priors=priors,
            sigma=self.sigma,
            frame_size=self.frame_size,
            shuffled=self.shuffled,
            n_bootstrap=self.n_bootstrap,
            prompt_keys=self.prompt_keys,
        )
        if self.detection:
            paths, findings, labels, phrases = detection_labels(self.items)
            metrics["detection"] = detection_auroc(
                self.network, paths, labels, findings, phrases=phrases, sigma=self.sigma, frame_size=self.frame_size
            )
        os.makedirs(self.output_dir, exist_ok=True)
        with open(os.path.join(self.output_dir, "metrics.json"), "w", encoding="utf-8") as f:
            json.dump(to_jsonable(metrics), f, indent=1)
        runs = {k: v for k, v in metrics.items() if k != "detection"}
        table = format_table(runs) + "\n\nPer category (location-free prompts, or MS-CXR's phrases):\n\n"
        table += format_category_table(runs)
        with open(os.path.join(self.output_dir, "table.md"), "w", encoding="utf-8") as f:
            f.write(table + "\n")
        self.logger.info("localization report (location-free and location-bearing prompts):\n" + table)
        return metrics
