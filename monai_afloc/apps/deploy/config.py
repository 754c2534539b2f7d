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
The deploy app's configuration (findings and prompts, thresholds, series selection, outputs), read from YAML or a
dict and validated up front, so a bad config fails before any study is read.

Example YAML (``sample_apps/deploy_afloc/afloc_app_config.yaml``)::

    findings: [Pleural effusion, Pneumothorax]      # label = the finding, prompt = its lower-cased name
    prompts:                                        # free-text prompts with their own labels
      - {label: Left effusion, prompt: small left pleural effusion}
    threshold: 0.5                                  # omit (or null) threshold/sigma/image_size: the model's own
    modalities: [CR, DX]
    views: [PA, AP, ""]                             # "" = ViewPosition absent; lateral views are skipped
    outputs: {seg: true, sr: true, png: true, json: true}
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["DEFAULT_APP_CONFIG", "load_app_config", "findings_of"]

#: defaults of every key; a user config overrides them key by key (``outputs`` item by item)
DEFAULT_APP_CONFIG: dict[str, Any] = {
    "findings": ["Pleural effusion", "Pneumothorax", "Consolidation", "Cardiomegaly", "Nodule", "Atelectasis",
                 "Edema"],
    "prompts": [],
    "threshold": None,  # None: the model's saved inference settings (see AFLocPredictor)
    "sigma": None,
    "image_size": None,
    "device": "cpu",
    "modalities": ["CR", "DX"],
    "views": ["PA", "AP", ""],
    "outputs": {"seg": True, "sr": True, "png": True, "json": True},
    "model_name": "AFLoc chest X-ray localization",
    "model_version": "0.1.0",
}

_KNOWN = set(DEFAULT_APP_CONFIG)
_OUTPUTS = set(DEFAULT_APP_CONFIG["outputs"])


def _str_list(value: Any, key: str, allow_empty_items: bool = False) -> list[str]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValueError(f"config '{key}' must be a list of str, got {value!r}.")
    out = []
    for v in value:
        if not isinstance(v, str) or (not allow_empty_items and not v.strip()):
            raise ValueError(f"config '{key}' must hold non-empty str items, got {v!r}.")
        out.append(v.strip())
    return out


def load_app_config(config: str | os.PathLike | Mapping[str, Any] | None = None) -> dict[str, Any]:
    """
    Read (YAML file or mapping) and validate the app config; unknown keys are an error (typos do not pass silently).

    Returns:
        the full config (defaults filled in) with ``findings`` normalised to ``[(label, prompt), ...]`` under
        ``"finding_prompts"``.

    Raises:
        FileNotFoundError: a config path that does not exist.
        ValueError: unknown keys, wrong types, no finding at all, duplicate labels, a threshold outside [-1, 1].
    """
    if config is None:
        user: Mapping[str, Any] = {}
    elif isinstance(config, (str, os.PathLike)):
        path = os.fspath(config)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"app config not found: '{path}'.")
        import yaml

        with open(path) as f:
            user = yaml.safe_load(f) or {}
        if not isinstance(user, Mapping):
            raise ValueError(f"app config '{path}' must hold a mapping at the top level, got {type(user).__name__}.")
    elif isinstance(config, Mapping):
        user = config
    else:
        raise TypeError(f"config must be a path, a mapping or None, got {type(config).__name__}.")
    unknown = sorted(set(user) - _KNOWN)
    if unknown:
        raise ValueError(f"unknown app config keys {unknown}; known keys: {sorted(_KNOWN)}.")
    cfg = copy.deepcopy(DEFAULT_APP_CONFIG)
    for key, value in user.items():
        if key == "outputs":
            if not isinstance(value, Mapping) or set(value) - _OUTPUTS:
                raise ValueError(f"config 'outputs' must map some of {sorted(_OUTPUTS)} to bool, got {value!r}.")
            for k, v in value.items():
                if not isinstance(v, bool):
                    raise ValueError(f"config 'outputs.{k}' must be a bool, got {v!r}.")
                cfg["outputs"][k] = v
        else:
            cfg[key] = value
    if "findings" in user and "prompts" not in user:
        cfg["prompts"] = []
    if "prompts" in user and "findings" not in user:
        cfg["findings"] = []
    cfg["findings"] = _str_list(cfg["findings"] or [], "findings")
    prompts = cfg["prompts"] or []
    if not isinstance(prompts, list):
        raise ValueError(f"config 'prompts' must be a list of {{label, prompt}} mappings, got {prompts!r}.")
    for p in prompts:
        if not isinstance(p, Mapping) or set(p) != {"label", "prompt"} or not all(
            isinstance(p[k], str) and p[k].strip() for k in ("label", "prompt")
        ):
            raise ValueError(f"each config 'prompts' item must be {{label: str, prompt: str}}, got {p!r}.")
    cfg["finding_prompts"] = findings_of(cfg["findings"], prompts)
    from monai_afloc.utils.validation import check_int, check_number

    for key, check in (("threshold", lambda k, v: check_number(k, v, -1, 1)),
                       ("sigma", lambda k, v: check_number(k, v, minimum=0)),
                       ("image_size", lambda k, v: check_int(k, v, minimum=32))):
        if cfg[key] is not None:
            try:
                check(f"config '{key}'", cfg[key])
            except TypeError as e:  # a config file's wrong type is a bad value of the file: one error kind
                raise ValueError(str(e)) from None
    cfg["modalities"] = [m.upper() for m in _str_list(cfg["modalities"], "modalities")]
    if not cfg["modalities"] or not all(re.fullmatch(r"[A-Z0-9]{1,16}", m) for m in cfg["modalities"]):
        raise ValueError(f"config 'modalities' must be DICOM modality codes such as CR, DX; got {cfg['modalities']}.")
    cfg["views"] = [v.upper() for v in _str_list(cfg["views"], "views", allow_empty_items=True)]
    for key in ("device", "model_name", "model_version"):
        if not isinstance(cfg[key], str) or not cfg[key].strip():
            raise ValueError(f"config '{key}' must be a non-empty str, got {cfg[key]!r}.")
    return cfg


def findings_of(findings: list[str], prompts: list[Mapping[str, str]]) -> list[tuple[str, str]]:
    """``[(label, prompt), ...]``: a finding name gives (name, its lower-cased name); prompts keep their labels."""
    pairs = [(f, f.lower()) for f in findings] + [(p["label"].strip(), p["prompt"].strip()) for p in prompts]
    if not pairs:
        raise ValueError("the app config names no finding and no prompt: give 'findings' and/or 'prompts'.")
    labels = [a for a, _ in pairs]
    dupes = sorted({a for a in labels if labels.count(a) > 1})
    if dupes:
        raise ValueError(f"finding/prompt labels must be unique, got duplicates {dupes}.")
    return pairs
