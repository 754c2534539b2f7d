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
Safe loading of AFLoc checkpoints: the published release (a PyTorch Lightning ``.ckpt``) and monai_afloc's own
self-contained format (``model.safetensors`` + ``afloc_config.json`` + the text model's config and tokenizer).

Safety: no code from a checkpoint is ever executed. Torch files are read with ``torch.load(weights_only=True)``;
the only classes allowed beyond torch's defaults are the OmegaConf containers that hold the release's
hyper-parameters (see :data:`OMEGACONF_SAFE_GLOBAL_NAMES`) and inert stand-ins for the PyTorch Lightning callback
classes that old Lightning versions store as dictionary keys (see :data:`LIGHTNING_PLACEHOLDER_NAMES`; never
imported, never called). Any other global is refused by name with :class:`UnsafeCheckpointError`. The own format
holds no pickle at all.

Release layout (checked against the AFLoc source, ``afloc/lightning/pretrain_model.py``, ``afloc/builder.py``,
``afloc/models/{afloc_model,vision_model,text_model,cnn_backbones}.py``, ``afloc/config.yaml``):

- ``state_dict``: ``afloc.img_encoder.model.<torchvision ResNet-50 keys, no fc>``,
  ``afloc.img_encoder.global_embedder.{weight,bias}``, ``afloc.img_encoder.local_embedder.weight``,
  ``afloc.img_encoder.local2_embedder.weight`` (when ``model.afloc.use_local_word_loss``), optionally
  ``afloc.img_encoder.local_f_embedder.weight`` (when ``model.afloc.use_ce_loss``; unused at inference) and
  ``afloc.text_encoder.model.<Hugging Face BertModel keys>`` (with ``embeddings.position_ids`` under the
  transformers 4.2 the release pins).
- ``hyper_parameters``: the OmegaConf training config (``model.text.bert_type``, ``model.text.last_n_layers``,
  ``model.text.aggregate_method``, ``model.text.norm``, ``model.text.agg_tokens``, ``model.vision.model_name``,
  ``data.text.word_num``).
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import os
import re
import typing
import zipfile
from collections.abc import Mapping
from typing import Any

import torch
from monai.utils import optional_import

import monai_afloc
from monai_afloc.networks.nets.afloc import AFLoc
from monai_afloc.networks.nets.image_encoder import AFLocImageEncoder
from monai_afloc.networks.nets.text_encoder import AFLocTextEncoder
from monai_afloc.inference_settings import InferenceSettings, default_inference_settings

omegaconf, _has_omegaconf = optional_import("omegaconf")
safetensors_torch, _has_safetensors = optional_import("safetensors.torch")

__all__ = [
    "CHECKPOINT_FORMAT_VERSION",
    "CONFIG_FILENAME",
    "WEIGHTS_FILENAME",
    "TEXT_MODEL_SUBFOLDER",
    "OMEGACONF_SAFE_GLOBAL_NAMES",
    "LIGHTNING_PLACEHOLDER_NAMES",
    "UnsafeCheckpointError",
    "safe_torch_load",
    "convert_release_state_dict",
    "load_afloc_checkpoint",
    "load_inference_settings",
    "load_afloc_for_inference",
    "save_afloc_checkpoint",
    "network_architecture",
    "load_bundle_state_dict",
    "bundle_text_model",
    "load_bundle_weights",
    "load_bundle_network",
    "checkpoint_to_bundle_state_dict",
    "bundle_state_dict_to_checkpoint",
]

logger = logging.getLogger(__name__)

#: version of monai_afloc's own checkpoint format written by :func:`save_afloc_checkpoint`
CHECKPOINT_FORMAT_VERSION = 1
#: file names of the own format
CONFIG_FILENAME = "afloc_config.json"
WEIGHTS_FILENAME = "model.safetensors"
TEXT_MODEL_SUBFOLDER = "text_model"
_FORMAT_NAME = "monai_afloc.checkpoint"

#: the globals an OmegaConf ``DictConfig`` pickle needs (OmegaConf 2.0 to 2.4), allowed while reading a release file
OMEGACONF_SAFE_GLOBAL_NAMES: tuple[str, ...] = (
    "omegaconf.dictconfig.DictConfig",
    "omegaconf.listconfig.ListConfig",
    "omegaconf.base.ContainerMetadata",
    "omegaconf.base.Metadata",
    "omegaconf.nodes.AnyNode",
    "omegaconf.nodes.StringNode",
    "omegaconf.nodes.IntegerNode",
    "omegaconf.nodes.FloatNode",
    "omegaconf.nodes.BooleanNode",
    "builtins.dict",
    "builtins.list",
    "builtins.int",
    "builtins.float",
    "builtins.str",
    "builtins.bool",
    "collections.defaultdict",
    "typing.Any",
    "typing.Dict",
    "typing.List",
)

#: Lightning < 1.5 keys ``checkpoint["callbacks"]`` by the callback *class*; these names are mapped to inert
#: placeholders (the real classes are never imported) so that such files read without pytorch_lightning
LIGHTNING_PLACEHOLDER_NAMES: tuple[str, ...] = (
    "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint",
    "pytorch_lightning.callbacks.early_stopping.EarlyStopping",
)

# release state-dict names (after the Lightning "afloc." prefix) -> monai_afloc names
_RELEASE_TO_OWN = (
    ("img_encoder.model.", "image_encoder.backbone."),
    ("img_encoder.global_embedder.", "image_encoder.global_embedder."),
    ("img_encoder.local_embedder.", "image_encoder.local_embedder."),
    ("img_encoder.local2_embedder.", "image_encoder.local2_embedder."),
    ("text_encoder.model.", "text_encoder.model."),
)
# release entries that monai_afloc does not use: ignored with a logged note
_RELEASE_IGNORED = re.compile(r"^(img_encoder\.local_f_embedder\.|text_encoder\.model\.embeddings\.position_ids$)")
_RELEASE_VISION_MODELS = {"resnet_50": "resnet50"}
_MAX_LISTED = 30


class UnsafeCheckpointError(ValueError):
    """A checkpoint needs a Python global (class or function) outside the allow-list; it was not loaded."""


class _LightningPlaceholder:
    """Inert stand-in for a PyTorch Lightning class referenced by a checkpoint (never instantiated with effects)."""

    __slots__ = ()


def _lightning_placeholders() -> list[tuple[Any, str]]:
    out = []
    for name in LIGHTNING_PLACEHOLDER_NAMES:
        cls = type(name.rsplit(".", 1)[1], (_LightningPlaceholder,), {"__slots__": (), "reference": name})
        out.append((cls, name))
    return out


def _resolve(name: str) -> Any | None:
    module, _, attr = name.rpartition(".")
    if module == "builtins":
        import builtins

        return getattr(builtins, attr, None)
    if module == "collections":
        return getattr(collections, attr, None)
    if module == "typing":
        return getattr(typing, attr, None)
    if not _has_omegaconf:
        return None
    mod, ok = optional_import(module)
    return getattr(mod, attr, None) if ok else None


def _allowed_globals() -> list[Any]:
    allowed: list[Any] = _lightning_placeholders()
    if not _has_omegaconf:  # OmegaConf objects are then refused, with a hint to install omegaconf
        return allowed
    for name in OMEGACONF_SAFE_GLOBAL_NAMES:
        obj = _resolve(name)
        if obj is not None:
            allowed.append((obj, name))
    return allowed


def _refusal(path: str, names: list[str]) -> UnsafeCheckpointError:
    names = sorted(set(names))
    hint = ""
    if any(n.startswith("omegaconf.") for n in names) and not _has_omegaconf:
        hint = " The file holds OmegaConf hyper-parameters: install omegaconf (pip install omegaconf) to read it."
    return UnsafeCheckpointError(
        f"refused to load {path!r}: it needs the Python global(s) {names}, which are not in the allow-list of "
        f"weights-only loading (tensors, containers, OmegaConf configs). Loading them could run arbitrary code; "
        f"if you trust the file, convert it in a trusted environment.{hint}"
    )


def safe_torch_load(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """
    Read a ``torch.save`` file without executing code from it.

    The file is first scanned for the globals it references; any outside torch's weights-only defaults and the
    allow-list (:data:`OMEGACONF_SAFE_GLOBAL_NAMES`, :data:`LIGHTNING_PLACEHOLDER_NAMES`) is refused before
    unpickling. Reading then uses ``torch.load(weights_only=True)`` within ``torch.serialization.safe_globals``.

    Args:
        path: a file written by ``torch.save`` (zip format, or torch's legacy format).
        map_location: passed to ``torch.load``.

    Returns:
        the unpickled object (OmegaConf containers come back as OmegaConf objects).

    Raises:
        UnsafeCheckpointError: (a ``ValueError``) naming each refused global.
        ValueError: when the file cannot be read as a torch file.

    Example::

        >>> ckpt = safe_torch_load("afloc.ckpt")
        >>> sorted(ckpt)[:2]
        ['callbacks', 'epoch']
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint file not found: {path!r}.")
    with torch.serialization.safe_globals(_allowed_globals()):
        if zipfile.is_zipfile(path):
            try:
                unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
            except Exception as e:  # a malformed archive: let torch.load report it below
                logger.debug("could not scan %s for globals: %s", path, e)
                unsafe = []
            if unsafe:
                raise _refusal(path, unsafe)
        try:
            return torch.load(path, map_location=map_location, weights_only=True)
        except Exception as e:
            names = re.findall(r"GLOBAL ([\w\.]+)", str(e))
            if names:
                raise _refusal(path, names) from None
            raise ValueError(f"could not read {path!r} as a torch checkpoint: {type(e).__name__}: {e}") from e


def _to_plain(config: Any) -> Any:
    """OmegaConf/dict hyper-parameters -> plain dicts and lists (interpolations are *not* resolved, for safety)."""
    if _has_omegaconf and isinstance(config, (omegaconf.DictConfig, omegaconf.ListConfig)):
        return omegaconf.OmegaConf.to_container(config, resolve=False)
    if isinstance(config, Mapping):
        return {k: _to_plain(v) for k, v in config.items()}
    if isinstance(config, (list, tuple)):
        return [_to_plain(v) for v in config]
    return config


def _config_get(config: Mapping, dotted: str, default: Any) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    if isinstance(node, str) and "${" in node:
        raise ValueError(
            f"hyper-parameter {dotted} is an unresolved interpolation {node!r}; monai_afloc does not resolve "
            "interpolations from checkpoints. Pass the value explicitly (e.g. text_model_name_or_path=...)."
        )
    return node


def _fmt(keys: list[str]) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:_MAX_LISTED])
    more = f", ... and {len(keys) - _MAX_LISTED} more" if len(keys) > _MAX_LISTED else ""
    return f"{len(keys)}: [{shown}{more}]"


def _check_state_dict(state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], what: str) -> None:
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshapen = [
        f"{k} (checkpoint {tuple(state[k].shape)}, model {tuple(expected[k].shape)})"
        for k in expected
        if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    not_tensors = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if missing or unexpected or misshapen or not_tensors:
        parts = []
        for label, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("misshapen keys", misshapen),
            ("non-tensor entries", not_tensors),
        ):
            if keys:
                parts.append(f"{label} {_fmt(keys)}")
        raise ValueError(f"{what} does not match the network; nothing was loaded. " + "; ".join(parts) + ".")


def convert_release_state_dict(state_dict: Mapping[str, Any]) -> tuple[dict[str, Any], list[str], list[str]]:
    """
    Rename an AFLoc release state dict to monai_afloc's :class:`~monai_afloc.networks.nets.AFLoc` names.

    Args:
        state_dict: the release's ``checkpoint["state_dict"]`` (keys ``afloc.img_encoder...`` /
            ``afloc.text_encoder...``; the ``afloc.`` prefix is optional).

    Returns:
        ``(converted, ignored, unknown)``: the renamed tensors, the release keys deliberately ignored (heads unused
        at inference, e.g. ``local_f_embedder``, and ``embeddings.position_ids``) and the keys that have no
        counterpart (the caller reports them).

    Example::

        >>> conv, ignored, unknown = convert_release_state_dict({"afloc.img_encoder.model.conv1.weight": w})
        >>> list(conv)
        ['image_encoder.backbone.conv1.weight']
    """
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict must be a mapping of names to tensors, got {type(state_dict).__name__}.")
    converted: dict[str, Any] = {}
    ignored: list[str] = []
    unknown: list[str] = []
    for key, value in state_dict.items():
        if not isinstance(key, str):
            unknown.append(repr(key))
            continue
        name = key[len("afloc.") :] if key.startswith("afloc.") else key
        if _RELEASE_IGNORED.match(name):
            ignored.append(key)
            continue
        for src, dst in _RELEASE_TO_OWN:
            if name.startswith(src):
                converted[dst + name[len(src) :]] = value
                break
        else:
            unknown.append(key)
    return converted, ignored, unknown


def _device_of(map_location: Any) -> torch.device | None:
    if isinstance(map_location, torch.device):
        return map_location
    if isinstance(map_location, str):
        return torch.device(map_location)
    return None


def _release_settings(hparams: Mapping, text_model_name_or_path: str | None) -> dict[str, Any]:
    bert_type = text_model_name_or_path or _config_get(hparams, "model.text.bert_type", None)
    if bert_type is None:
        raise ValueError(
            "the checkpoint names no text model (hyper_parameters.model.text.bert_type is absent): pass "
            "text_model_name_or_path= a Hugging Face id or a local folder with the text model's config and tokenizer."
        )
    vision = _config_get(hparams, "model.vision.model_name", "resnet_50")
    if vision not in _RELEASE_VISION_MODELS:
        raise ValueError(
            f"model.vision.model_name={vision!r} is not supported in reference mode; supported: "
            f"{sorted(_RELEASE_VISION_MODELS)}."
        )
    last_n = _config_get(hparams, "model.text.last_n_layers", 4)
    if not isinstance(last_n, int) or isinstance(last_n, bool) or last_n < 2:
        # the release uses the last layer and BERT's pooler output when last_n_layers == 1: not reproduced here
        raise ValueError(f"model.text.last_n_layers must be an int >= 2 in reference mode, got {last_n!r}.")
    aggregation = _config_get(hparams, "model.text.aggregate_method", "sum")
    if aggregation not in ("sum", "mean"):
        raise ValueError(f"model.text.aggregate_method must be 'sum' or 'mean', got {aggregation!r}.")
    if _config_get(hparams, "model.text.norm", False):
        raise ValueError("model.text.norm=True (L2-normalised text embeddings) is not supported in reference mode.")
    if not _config_get(hparams, "model.text.agg_tokens", True):
        raise ValueError("model.text.agg_tokens=False (no word-piece aggregation) is not supported in reference mode.")
    word_num = _config_get(hparams, "data.text.word_num", 97)
    if not isinstance(word_num, int) or isinstance(word_num, bool) or word_num < 2:
        raise ValueError(f"data.text.word_num must be an int >= 2, got {word_num!r}.")
    return {
        "text_model": str(bert_type),
        "backbone": _RELEASE_VISION_MODELS[vision],
        "last_n_layers": last_n,
        "aggregation": aggregation,
        "max_length": word_num,
        "embedding_dim": _config_get(hparams, "model.text.embedding_dim", None),
    }


def _load_release(path: str, text_model_name_or_path: str | None, map_location: Any, local_files_only: bool) -> AFLoc:
    ckpt = safe_torch_load(path, map_location=map_location)
    if isinstance(ckpt, Mapping) and "state_dict" in ckpt:
        state, hparams = ckpt["state_dict"], ckpt.get("hyper_parameters", None) or {}
    elif isinstance(ckpt, Mapping) and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        state, hparams = ckpt, {}
    else:
        raise ValueError(
            f"{path!r} is not an AFLoc checkpoint: expected a dict with 'state_dict' (and 'hyper_parameters') or a "
            f"state dict, got {type(ckpt).__name__}"
            + (f" with keys {sorted(map(str, ckpt))[:10]}." if isinstance(ckpt, Mapping) else ".")
        )
    hparams = _to_plain(hparams)
    if not isinstance(hparams, Mapping):
        raise ValueError(f"hyper_parameters must be a mapping, got {type(hparams).__name__}.")
    settings = _release_settings(hparams, text_model_name_or_path)
    converted, ignored, unknown = convert_release_state_dict(state)
    if ignored:
        logger.info("%s: ignoring release entries unused by monai_afloc: %s", path, sorted(ignored))

    text = AFLocTextEncoder(
        settings["text_model"],
        last_n_layers=settings["last_n_layers"],
        aggregation=settings["aggregation"],
        max_length=settings["max_length"],
        pretrained=False,
        local_files_only=local_files_only,
    )
    w = converted.get("image_encoder.global_embedder.weight")
    embed_dim = int(w.shape[0]) if isinstance(w, torch.Tensor) and w.ndim == 2 else text.embed_dim
    if embed_dim != text.embed_dim:
        raise ValueError(
            f"the checkpoint's image embedding width ({embed_dim}, from img_encoder.global_embedder.weight) differs "
            f"from the text model's hidden size ({text.embed_dim}, {settings['text_model']!r}): wrong text model?"
        )
    if settings["embedding_dim"] is not None and settings["embedding_dim"] != embed_dim:
        raise ValueError(
            f"model.text.embedding_dim={settings['embedding_dim']!r} differs from the weights' width {embed_dim}."
        )
    # validate names and shapes against a weightless (meta) image encoder before paying for a real one
    with torch.device("meta"):
        meta_image = AFLocImageEncoder(settings["backbone"], embed_dim=embed_dim, input_size=299)
    expected = {f"image_encoder.{k}": v for k, v in meta_image.state_dict().items()}
    expected.update({f"text_encoder.{k}": v for k, v in text.state_dict().items()})
    try:
        _check_state_dict(converted, expected, f"the state dict of {path!r}")
    except ValueError as e:
        if unknown:
            raise ValueError(f"{e} Release keys with no monai_afloc counterpart {_fmt(unknown)}.") from None
        raise
    if unknown:
        raise ValueError(
            f"the state dict of {path!r} has keys with no monai_afloc counterpart {_fmt(unknown)}; nothing was loaded."
        )
    image = AFLocImageEncoder(settings["backbone"], embed_dim=embed_dim, input_size=299)
    net = AFLoc(image, text)
    net.load_state_dict(converted, strict=True)
    device = _device_of(map_location)
    if device is not None:
        net = net.to(device)
    return net.eval()


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_int(name: str, value: Any, minimum: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be {'None or ' if allow_none else ''}an int >= {minimum}, got {value!r}.")


#: the keys every format-1 ``afloc_config.json`` holds (all written by :func:`save_afloc_checkpoint`), per section.
#: Later additions are optional (older folders lack them; their defaults are the architecture those folders had):
#: :data:`_OPTIONAL_IMAGE_KEYS`, :data:`_OPTIONAL_TEXT_KEYS` and the top-level ``inference`` section, which
#: :func:`load_inference_settings` reads strictly when present.
_FORMAT1_KEYS: dict[str, tuple[str, ...]] = {
    "": ("format", "format_version", "monai_afloc_version", "torch_version", "image_encoder", "text_encoder",
         "weights", "extra"),
    "image_encoder": ("backbone", "embed_dim", "in_channels", "input_size"),
    "text_encoder": ("model_subfolder", "source", "last_n_layers", "aggregation", "projection_dim", "max_length",
                     "center", "center_momentum"),
    "weights": ("file", "sha256"),
}


#: optional architecture keys of the ``image_encoder`` / ``text_encoder`` sections -> the value of folders without them
_OPTIONAL_IMAGE_KEYS: dict[str, Any] = {
    "stem_pool": True, "layer3_stride": 2, "position_encoding": 0, "normalize_regions": False,
}
_OPTIONAL_TEXT_KEYS: dict[str, Any] = {"projection_bias": True, "report_pooling": "reference"}


def _optional(section: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The optional keys of a config section, with the defaults of folders written before each existed."""
    return {k: section.get(k, v) for k, v in defaults.items()}


def _check_format1_config(config: Mapping[str, Any], where: str) -> None:
    """
    Require every key of a format-1 config: a missing one would otherwise fall back to a default that silently
    changes the network (e.g. ``image_encoder.input_size`` -> 299). Raises one ``ValueError`` naming all of them.
    """
    missing, wrong = [], []
    for section, keys in _FORMAT1_KEYS.items():
        node = config if not section else config.get(section)
        if not isinstance(node, Mapping):
            wrong.append(f"{section} (a JSON object expected, got {type(node).__name__})")
            continue
        missing += [f"{section}.{k}" if section else k for k in keys if k not in node]
    if missing or wrong:
        parts = ([f"missing keys {missing}"] if missing else []) + ([f"malformed {wrong}"] if wrong else [])
        raise ValueError(
            f"{CONFIG_FILENAME} in {where!r} is not a complete format-1 config: {'; '.join(parts)}. Every key is "
            "required (a default could silently change the network); re-save the model with save_afloc_checkpoint."
        )


def _load_own(directory: str, text_model_name_or_path: str | None, map_location: Any, local_files_only: bool) -> AFLoc:
    if not _has_safetensors:
        raise ImportError("reading monai_afloc checkpoints needs the 'safetensors' package.")
    with open(os.path.join(directory, CONFIG_FILENAME), encoding="utf-8") as f:
        config = json.load(f)
    if not isinstance(config, dict) or config.get("format") != _FORMAT_NAME:
        raise ValueError(f"{CONFIG_FILENAME} in {directory!r} is not a monai_afloc checkpoint config.")
    version = config.get("format_version")
    if not isinstance(version, int) or version < 1 or version > CHECKPOINT_FORMAT_VERSION:
        raise ValueError(
            f"{directory!r} has checkpoint format_version {version!r}; this monai_afloc "
            f"({monai_afloc.__version__}) reads versions 1..{CHECKPOINT_FORMAT_VERSION}."
        )
    _check_format1_config(config, directory)
    img_cfg, txt_cfg, weights = config["image_encoder"], config["text_encoder"], config["weights"]
    weights_path = os.path.join(directory, str(weights["file"]))
    if os.path.dirname(os.path.abspath(weights_path)) != os.path.abspath(directory):
        raise ValueError(f"weights file must lie in the checkpoint directory, got {weights.get('file')!r}.")
    if not os.path.isfile(weights_path):
        raise FileNotFoundError(f"weights file not found: {weights_path!r}.")
    digest = weights["sha256"]
    if digest is not None and _sha256(weights_path) != digest:
        raise ValueError(f"{weights_path!r} does not match the sha256 recorded in {CONFIG_FILENAME} ({digest}).")
    text_dir = text_model_name_or_path or os.path.join(directory, str(txt_cfg["model_subfolder"]))
    text = AFLocTextEncoder(
        text_dir,
        last_n_layers=txt_cfg["last_n_layers"],
        aggregation=txt_cfg["aggregation"],
        projection_dim=txt_cfg["projection_dim"],
        **_optional(txt_cfg, _OPTIONAL_TEXT_KEYS),
        max_length=txt_cfg["max_length"],
        center=txt_cfg["center"],
        center_momentum=txt_cfg["center_momentum"],
        pretrained=False,
        local_files_only=True if text_model_name_or_path is None else local_files_only,
    )
    image = AFLocImageEncoder(
        img_cfg["backbone"],
        embed_dim=img_cfg["embed_dim"],
        in_channels=img_cfg["in_channels"],
        input_size=img_cfg["input_size"],
        **_optional(img_cfg, _OPTIONAL_IMAGE_KEYS),
    )
    net = AFLoc(image, text)
    state = safetensors_torch.load_file(weights_path, device="cpu")
    _check_state_dict(state, net.state_dict(), f"{weights_path!r}")
    net.load_state_dict(state, strict=True)
    device = _device_of(map_location)
    if device is not None:
        net = net.to(device)
    return net.eval()


def load_afloc_checkpoint(
    path: str | os.PathLike,
    text_model_name_or_path: str | None = None,
    map_location: Any = "cpu",
    local_files_only: bool = True,
) -> AFLoc:
    """
    Load an AFLoc network from the release checkpoint or from monai_afloc's own format, without running any code
    stored in the file.

    Release ``.ckpt`` files (PyTorch Lightning) give an :class:`~monai_afloc.networks.nets.AFLoc` in reference mode:
    ResNet-50 image encoder with 299×299 input resizing, ``embed_dim`` read from the weights, the text model named
    by ``hyper_parameters.model.text.bert_type`` (built from its config only: all weights come from the checkpoint),
    ``last_n_layers``/``aggregate_method``/``word_num`` from the config (defaults 4 / ``"sum"`` / 97).
    Loading is all-or-nothing: missing, unexpected or misshapen keys raise one error listing them. Release heads
    unused at inference (``img_encoder.local_f_embedder``) and ``embeddings.position_ids`` are ignored with a
    logged note.

    Args:
        path: a release ``.ckpt``/``.pt`` file (or a bare release state dict saved with ``torch.save``), or a
            directory written by :func:`save_afloc_checkpoint` (or its ``afloc_config.json``).
        text_model_name_or_path: overrides the text model: a local folder with the text model's ``config.json`` and
            tokenizer files (offline use) or a Hugging Face id. For the own format it replaces the saved subfolder.
        map_location: passed to ``torch.load``; when it is a device (``str``/``torch.device``) the returned network
            is moved there.
        local_files_only: forbid downloads of the text model's config/tokenizer named by the release config or by
            ``text_model_name_or_path`` (default True: a local folder or the Hugging Face cache). The own format's
            saved subfolder is always read offline.

    Returns:
        the network in ``eval()`` mode.

    Raises:
        UnsafeCheckpointError: when the file needs a Python global outside the allow-list (see
            :func:`safe_torch_load`).
        ValueError: on missing/unexpected/misshapen keys, unsupported release settings (e.g. ``model.text.norm``),
            a width mismatch between the image heads and the text model, or an unknown own-format version.
        FileNotFoundError: when ``path`` does not exist.

    Example::

        >>> net = load_afloc_checkpoint("afloc.ckpt", text_model_name_or_path="/models/Bio_ClinicalBERT")
        >>> out = net.encode_image(torch.rand(1, 3, 224, 224))
        >>> out["image_sentences"].shape
        torch.Size([1, 768, 19, 19])
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}.")
    if text_model_name_or_path is not None and not isinstance(text_model_name_or_path, (str, os.PathLike)):
        raise TypeError(
            f"text_model_name_or_path must be None, a str or os.PathLike, got {type(text_model_name_or_path).__name__}."
        )
    if not isinstance(local_files_only, bool):
        raise TypeError(f"local_files_only must be a bool, got {type(local_files_only).__name__}.")
    path = os.fspath(path)
    text_path = None if text_model_name_or_path is None else os.fspath(text_model_name_or_path)
    if os.path.basename(path) == CONFIG_FILENAME and os.path.isfile(path):
        path = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, CONFIG_FILENAME)):
            raise ValueError(f"{path!r} is a directory without {CONFIG_FILENAME}: not a monai_afloc checkpoint.")
        return _load_own(path, text_path, map_location, local_files_only)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint not found: {path!r}.")
    return _load_release(path, text_path, map_location, local_files_only)


def load_inference_settings(path: str | os.PathLike, network: AFLoc) -> InferenceSettings:
    """
    The inference settings of a checkpoint (see :class:`~monai_afloc.inference_settings.InferenceSettings`).

    - monai_afloc folders: the ``inference`` section :func:`save_afloc_checkpoint` wrote (every field required); a
      folder written before that section existed gets :func:`~monai_afloc.inference_settings.default_inference_settings`
      at the ``image_size`` its trainer recorded in ``extra`` (224 when none).
    - release ``.ckpt`` files: the release's inference settings: a 224 px frame (the release's ``inference.py``),
      σ = 1.5 cells on its 19×19 grid, threshold 0.5, ``max_length`` = ``data.text.word_num``.

    Args:
        path: what :func:`load_afloc_checkpoint` was given.
        network: the network it returned (its backbone's strides give the sentence grid).

    Raises:
        ValueError: an ``inference`` section with missing, unknown or invalid keys.
    """
    path = os.fspath(path)
    if os.path.basename(path) == CONFIG_FILENAME and os.path.isfile(path):
        path = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(path):
        return default_inference_settings(network, None)
    with open(os.path.join(path, CONFIG_FILENAME), encoding="utf-8") as f:
        config = json.load(f)
    saved = config.get("inference")
    if saved is not None:
        return InferenceSettings.from_dict(saved, what=f"the 'inference' section of {CONFIG_FILENAME} in {path!r}")
    extra = config.get("extra") if isinstance(config.get("extra"), Mapping) else {}
    size = extra.get("image_size")
    return default_inference_settings(network, size if isinstance(size, int) and size >= 32 else None)


def load_afloc_for_inference(
    path: str | os.PathLike,
    device: str | torch.device | None = None,
    text_model_name_or_path: str | None = None,
    local_files_only: bool = True,
    **overrides: Any,
) -> tuple[AFLoc, InferenceSettings]:
    """
    The network of a checkpoint, in ``eval()`` mode on ``device`` (``None``: CPU), and its inference settings
    (:func:`load_inference_settings`) with ``overrides`` applied (``None`` values keep the saved ones; a new
    ``image_size`` alone rescales σ to the new grid). The one loader behind ``TextPromptLocalizer.from_checkpoint``
    and ``ZeroShotClassifier.from_checkpoint``.

    Raises:
        TypeError: an override that is not an inference setting (the message lists the known ones).
    """
    settings_names = InferenceSettings.field_names()
    unknown = sorted(k for k in overrides if k not in settings_names)
    if unknown:
        raise TypeError(f"unknown inference setting(s) {unknown}; known: {list(settings_names)}.")
    try:
        target = torch.device("cpu" if device is None else device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda', got {device!r}.") from None
    net = load_afloc_checkpoint(path, text_model_name_or_path=text_model_name_or_path, map_location="cpu",
                                local_files_only=local_files_only)
    settings = load_inference_settings(path, net).replace(net, **overrides)
    return net.to(target).eval(), settings


def save_afloc_checkpoint(
    net: AFLoc,
    directory: str | os.PathLike,
    extra: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    inference: InferenceSettings | Mapping[str, Any] | None = None,
) -> str:
    """
    Save ``net`` as a self-contained, pickle-free directory that :func:`load_afloc_checkpoint` reads offline::

        directory/
            afloc_config.json      format name and version, monai_afloc/torch versions, encoder constructor
                                   arguments, weights file name and sha256, inference settings, ``extra``
            model.safetensors      every parameter and persistent buffer of ``net``
            text_model/            the text model's config.json and tokenizer files (no weights)

    Args:
        net: an :class:`~monai_afloc.networks.nets.AFLoc` made of an :class:`AFLocImageEncoder` and an
            :class:`AFLocTextEncoder`.
        directory: destination folder (created).
        extra: optional JSON-serialisable metadata stored under ``"extra"`` (e.g. training settings, metrics).
        overwrite: allow writing into a non-empty directory.
        inference: the settings every entry point builds its localizer with (``TextPromptLocalizer.from_checkpoint``);
            a mapping is read as :class:`~monai_afloc.inference_settings.InferenceSettings` fields (missing ones take
            the defaults below). ``None``: :func:`~monai_afloc.inference_settings.default_inference_settings` at the
            training frame ``extra["image_size"]`` when given (224 otherwise): σ scaled to the network's grid.

    Returns:
        the directory path.

    Raises:
        TypeError: when ``net`` is not such an AFLoc or ``extra`` is not a JSON-serialisable mapping.
        ValueError: when ``directory`` is a non-empty folder and ``overwrite`` is False.

    Example::

        >>> save_afloc_checkpoint(net, "out/afloc_v1", extra={"epochs": 6})
        >>> net2 = load_afloc_checkpoint("out/afloc_v1")
    """
    if not _has_safetensors:
        raise ImportError("saving monai_afloc checkpoints needs the 'safetensors' package.")
    if not isinstance(net, AFLoc):
        raise TypeError(f"net must be a monai_afloc AFLoc, got {type(net).__name__}.")
    image, text = net.image_encoder, net.text_encoder
    if not isinstance(image, AFLocImageEncoder) or not isinstance(text, AFLocTextEncoder):
        raise TypeError(
            "net must hold an AFLocImageEncoder and an AFLocTextEncoder, got "
            f"{type(image).__name__} and {type(text).__name__}."
        )
    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"directory must be a str or os.PathLike, got {type(directory).__name__}.")
    if extra is not None and not isinstance(extra, Mapping):
        raise TypeError(f"extra must be None or a mapping, got {type(extra).__name__}.")
    try:
        extra_json = None if extra is None else json.loads(json.dumps(dict(extra)))
    except (TypeError, ValueError) as e:
        raise TypeError(f"extra must be JSON-serialisable: {e}") from e
    if isinstance(inference, InferenceSettings):
        settings = inference
    elif inference is None or isinstance(inference, Mapping):
        size = (extra or {}).get("image_size")
        settings = default_inference_settings(net, size if isinstance(size, int) and size >= 32 else None)
        settings = settings.replace(net, **dict(inference or {}))
    else:
        raise TypeError(f"inference must be None, an InferenceSettings or a mapping, got {type(inference).__name__}.")
    directory = os.fspath(directory)
    if os.path.isfile(directory):
        raise ValueError(f"directory must be a folder, got the file {directory!r}.")
    if os.path.isdir(directory) and os.listdir(directory) and not overwrite:
        raise ValueError(f"{directory!r} is not empty; pass overwrite=True to write into it.")
    os.makedirs(directory, exist_ok=True)

    text_dir = os.path.join(directory, TEXT_MODEL_SUBFOLDER)
    os.makedirs(text_dir, exist_ok=True)
    text.model.config.save_pretrained(text_dir)
    text.tokenizer.save_pretrained(text_dir)

    # clone: safetensors refuses tensors sharing storage; the file then holds plain, contiguous copies
    state = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in net.state_dict().items()}
    weights_path = os.path.join(directory, WEIGHTS_FILENAME)
    safetensors_torch.save_file(
        state, weights_path, metadata={"format": "pt", "monai_afloc_format_version": str(CHECKPOINT_FORMAT_VERSION)}
    )
    architecture = network_architecture(net)
    config = {
        "format": _FORMAT_NAME,
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "monai_afloc_version": monai_afloc.__version__,
        "torch_version": torch.__version__,
        "image_encoder": architecture["image_encoder"],
        "text_encoder": {
            "model_subfolder": TEXT_MODEL_SUBFOLDER,
            "source": text.model_name_or_path,
            **architecture["text_encoder"],
        },
        "weights": {"file": WEIGHTS_FILENAME, "sha256": _sha256(weights_path)},
        "inference": settings.to_dict(),
        "extra": extra_json,
    }
    with open(os.path.join(directory, CONFIG_FILENAME), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    return directory


# --- the MONAI Bundle's weights: models/model.pt, a plain state dict of the bundle's `network_def` --------------------


def network_architecture(net: AFLoc) -> dict[str, dict[str, Any]]:
    """
    The constructor arguments of an :class:`~monai_afloc.networks.nets.AFLoc` that its weights do not show (the
    ``image_encoder`` / ``text_encoder`` sections of ``afloc_config.json``, without the text model's source): two
    networks with equal architectures and equal state dicts compute the same thing.

    Raises:
        TypeError: ``net`` is not an AFLoc of an :class:`AFLocImageEncoder` and an :class:`AFLocTextEncoder`.
    """
    if not isinstance(net, AFLoc) or not isinstance(net.image_encoder, AFLocImageEncoder) or not isinstance(
        net.text_encoder, AFLocTextEncoder
    ):
        raise TypeError(f"net must be a monai_afloc AFLoc (AFLocImageEncoder + AFLocTextEncoder), got {net!r:.80}.")
    image, text = net.image_encoder, net.text_encoder
    return {
        "image_encoder": {
            "backbone": image.backbone_name,
            "embed_dim": image.embed_dim,
            "in_channels": image.in_channels,
            "input_size": image.input_size,
            "stem_pool": image.stem_pool,
            "layer3_stride": image.layer3_stride,
            "position_encoding": image.position_encoding,
            "normalize_regions": image.normalize_regions,
        },
        "text_encoder": {
            "last_n_layers": text.last_n_layers,
            "aggregation": text.aggregation,
            "projection_dim": None if text.projection is None else int(text.projection.out_features),
            "projection_bias": text.projection is None or text.projection.bias is not None,
            "report_pooling": text.report_pooling,
            "max_length": text.max_length,
            "center": text.center,
            "center_momentum": text.center_momentum,
        },
    }


def bundle_text_model(checkpoint: str | os.PathLike | None, text_model: str | os.PathLike | None = None) -> str | None:
    """
    The text model folder (or hub id) a bundle's ``network_def`` is described with: ``text_model`` when given; else,
    for a monai_afloc checkpoint folder, the ``text_model/`` subfolder it saved (the text model's config and
    tokenizer: the architecture it was trained with); else ``None`` (the offline default, all-MiniLM-L6-v2). Only
    the path is read: no weights are loaded.
    """
    if text_model is not None:
        return os.fspath(text_model)
    if checkpoint is None:
        return None
    path = os.fspath(checkpoint)
    if os.path.isfile(os.path.join(path, CONFIG_FILENAME)):
        with open(os.path.join(path, CONFIG_FILENAME), encoding="utf-8") as f:
            sub = json.load(f).get("text_encoder", {}).get("model_subfolder", TEXT_MODEL_SUBFOLDER)
        folder = os.path.join(path, str(sub))
        if os.path.isdir(folder):
            return folder
    return None


def load_bundle_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """
    Read a bundle's ``models/model.pt``: a plain state dict (``{name: tensor}``, as ``torch.save(net.state_dict())``
    writes it) loaded with ``weights_only=True``; no code in the file runs.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a plain state dict (e.g. a nested ``{"model": ...}`` training checkpoint).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"bundle weights not found: {path!r}.")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping) or not state or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        keys = _fmt([str(k) for k in state]) if isinstance(state, Mapping) else ""
        kind = f"a mapping with keys {keys}" if isinstance(state, Mapping) else type(state).__name__
        raise ValueError(
            f"{path!r} must hold a plain state dict {{name: tensor}} of the bundle's network_def, got {kind}."
        )
    return dict(state)


def load_bundle_network(
    network: AFLoc,
    checkpoint: str | os.PathLike,
    text_model_name_or_path: str | None = None,
    device: str | torch.device | None = None,
) -> AFLoc:
    """
    The bundle's checkpoint-loading step: ``network`` (the bundle's ``network_def``) with the weights of
    ``checkpoint``, in ``eval()`` mode on ``device`` (``None``: CPU).

    - a file ending in ``.pt`` / ``.pth`` that holds a plain state dict (the bundle's ``models/model.pt``): loaded
      into ``network`` all-or-nothing (missing, unexpected or misshapen keys raise one error listing them). A state
      dict records no architecture: ``network_def``'s keys (``backbone``, ``stem_pool``, ``encoder_input_size``, the
      text model ...) must be those the weights were trained with, as in ``train.json``.
    - a monai_afloc checkpoint folder or an AFLoc release ``.ckpt`` records its own architecture: the network is
      built from it (:func:`load_afloc_checkpoint`) and returned; ``network`` is then not used, and a difference
      between the two architectures is logged as a warning, so that the weights always run in the network they
      were trained in.

    Raises:
        TypeError: ``network`` is not a monai_afloc AFLoc.
        FileNotFoundError, ValueError: as :func:`load_bundle_state_dict` and :func:`load_afloc_checkpoint`.
    """
    wanted = network_architecture(network)
    path = os.fspath(checkpoint)
    target = torch.device("cpu" if device is None else device)
    state = _bundle_state_or_none(path)
    if state is not None:
        _check_state_dict(state, network.state_dict(), f"{path!r}")
        network.load_state_dict(state, strict=True)
        return network.to(target).eval()
    net = load_afloc_checkpoint(path, text_model_name_or_path=text_model_name_or_path)
    diff = _architecture_diff(network_architecture(net), wanted)
    if diff:
        logger.warning(f"{path!r} records its own architecture, which is used; it differs from network_def in {diff}.")
    return net.to(target).eval()


def _bundle_state_or_none(path: str) -> dict[str, torch.Tensor] | None:
    """The plain state dict of a ``.pt``/``.pth`` bundle weights file, else ``None`` (a folder, a release file)."""
    if not (os.path.isfile(path) and path.lower().endswith((".pt", ".pth"))):
        return None
    try:
        state = load_bundle_state_dict(path)
    except ValueError:  # e.g. a release Lightning checkpoint named .pt: load_afloc_checkpoint reads it
        return None
    # a bare release state dict saved with torch.save keeps the release's names
    return None if any(k.startswith(("afloc.", "img_encoder.")) for k in state) else state


def _architecture_diff(recorded: Mapping[str, Mapping[str, Any]], wanted: Mapping[str, Mapping[str, Any]]) -> str:
    return "; ".join(
        f"{part}.{k}: checkpoint {v!r}, network_def {wanted[part][k]!r}"
        for part in recorded for k, v in recorded[part].items() if wanted[part][k] != v
    )


def load_bundle_weights(
    network: AFLoc, checkpoint: str | os.PathLike, text_model_name_or_path: str | None = None
) -> AFLoc:
    """
    Load the weights of ``checkpoint`` into ``network`` itself (the bundle's ``network_def``; what ``finetune.json``
    needs, where the optimizer and the savers hold that very module) and return it.

    ``checkpoint`` is the bundle's plain ``models/model.pt``, a monai_afloc checkpoint folder or an AFLoc release
    ``.ckpt``; for the last two the architecture they record must equal ``network``'s.

    Raises:
        ValueError: the architectures differ (the message names each differing constructor argument) or the
            weights do not match (missing, unexpected, misshapen keys); nothing is loaded then.
    """
    wanted = network_architecture(network)
    path = os.fspath(checkpoint)
    state = _bundle_state_or_none(path)
    if state is None:
        source = load_afloc_checkpoint(path, text_model_name_or_path=text_model_name_or_path)
        diff = _architecture_diff(network_architecture(source), wanted)
        if diff:
            raise ValueError(f"{path!r} was trained with another architecture than network_def ({diff}); set the "
                             "bundle keys (backbone, stem_pool, encoder_input_size, text_model, ...) to match.")
        state = source.state_dict()
    _check_state_dict(state, network.state_dict(), f"{path!r}")
    network.load_state_dict(state, strict=True)
    return network


def checkpoint_to_bundle_state_dict(
    checkpoint: str | os.PathLike | AFLoc,
    path: str | os.PathLike,
    text_model_name_or_path: str | None = None,
) -> dict[str, Any]:
    """
    Write a monai_afloc checkpoint folder, an AFLoc release ``.ckpt`` or a network as the bundle's plain state dict
    (``models/model.pt``, ``torch.save(state_dict)``). Returns the architecture (:func:`network_architecture`) the
    bundle's ``network_def`` keys must describe for those weights (the release: ``backbone`` ``resnet50``,
    ``encoder_input_size`` 299, Bio_ClinicalBERT as ``text_model``).

    Example::

        >>> arch = checkpoint_to_bundle_state_dict("demo_out/models/afloc", "bundle/models/model.pt")
    """
    net = checkpoint if isinstance(checkpoint, AFLoc) else load_afloc_checkpoint(
        checkpoint, text_model_name_or_path=text_model_name_or_path)
    architecture = network_architecture(net)
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save({k: v.detach().to("cpu", copy=True).contiguous() for k, v in net.state_dict().items()}, path)
    return architecture


def bundle_state_dict_to_checkpoint(
    path: str | os.PathLike,
    network: AFLoc,
    directory: str | os.PathLike,
    inference: InferenceSettings | Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> str:
    """
    The other way: the bundle's ``models/model.pt`` loaded into ``network`` (its ``network_def``, all-or-nothing)
    and saved as a monai_afloc checkpoint folder (:func:`save_afloc_checkpoint`, which records the architecture and
    the inference settings). Returns the folder.
    """
    state = load_bundle_state_dict(path)
    network_architecture(network)  # the type check, before anything is written
    _check_state_dict(state, network.state_dict(), f"{os.fspath(path)!r}")
    network.load_state_dict(state, strict=True)
    return save_afloc_checkpoint(network.eval(), directory, extra=extra, overwrite=overwrite, inference=inference)
