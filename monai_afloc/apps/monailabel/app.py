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
A MONAI Label app (``MONAILabelApp`` subclass) serving AFLoc text-prompted pre-annotation.

Its ``main.py`` can be one line (see ``sample_apps/monailabel_afloc``)::

    from monai_afloc.apps.monailabel import AFLocMONAILabelApp as MyApp

App configuration (``--conf KEY VALUE`` of ``python -m monailabel.main start_server``):

==================  ===================================================================================================
``checkpoint``      an AFLoc release ``.ckpt`` or a monai_afloc checkpoint folder (required unless ``bundle`` or
                    ``network_factory``; with ``bundle`` it overrides the bundle's ``checkpoint``)
``bundle``          a MONAI Bundle folder such as ``bundles/afloc_chest_xray_localization``: its
                    ``configs/inference.json`` is parsed with MONAI's ``ConfigParser`` and its ``inferer`` (the
                    localizer: network, sigma, image size), ``prompts`` and ``threshold`` are served as the task
                    ``afloc_bundle`` (prompts shown in the task's config, like MONAI Label's ``displayable_configs``)
``text_model``      override the checkpoint's text model (a local folder; nothing is downloaded)
``findings``        comma-separated finding names of the ``afloc_findings`` task (default: 14 CheXpert-style
                    findings; with ``bundle``: no such task unless given); ``findings_NAME`` adds a task
                    ``afloc_NAME`` with another list
``free_text``       ``true`` (default) / ``false``: serve the free-text task ``afloc_prompt``
``threshold``       default heatmap threshold in ``[-1, 1]`` (default: the checkpoint's, see below)
``sigma``           Gaussian smoothing in sentence-grid cells (default: the checkpoint's)
``image_size``      the localizer's frame size (default: the checkpoint's)
``device``          ``cpu`` / ``cuda`` / ``cuda:1`` (default: cuda when available)
``network_factory`` advanced/testing hook: ``module:callable`` returning an AFLoc-like network, used instead of a
                    checkpoint (e.g. the tests' hand-built brightness network). Only the server operator sets it.
==================  ===================================================================================================

The localizer is built by ``TextPromptLocalizer.from_checkpoint``, like every other entry point: a checkpoint's saved
inference settings (frame size, σ, threshold) apply unless a ``--conf`` value overrides them.

Beyond MONAI Label's defaults, the app answers bad requests with 4xx and a message instead of 500: unknown model
(404), unknown image (404), an image path outside the datastore (403), ``params`` that is not JSON (400) or not a JSON
object (422), bad prompt/threshold/output (400), an unreadable image (422). The ``params`` check needs a small guard
in front of MONAI Label's ``POST /infer/{model}`` route (:mod:`monai_afloc.apps.monailabel.server`), installed when
the server starts; everything else then runs MONAI Label's own endpoint code.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

import torch
from monai.utils import optional_import

import monai_afloc
from monai_afloc.apps.monailabel.infer import UPLOADED_IMAGE, AFLocPromptInferTask, http_error, is_inside
from monai_afloc.apps.monailabel.params import AFLocRequestError, parse_threshold
from monai_afloc.data.mimic import CHEXPERT_FINDINGS
from monai_afloc.inferers.localizer import TextPromptLocalizer

MONAILabelApp, has_monailabel = optional_import("monailabel.interfaces.app", name="MONAILabelApp", as_type="base")

__all__ = [
    "AFLocMONAILabelApp",
    "AFLocAppSettings",
    "DEFAULT_FINDINGS",
    "BUNDLE_TASK",
    "build_network",
    "build_localizer",
    "build_bundle_localizer",
    "UPLOADED_IMAGE",
]

logger = logging.getLogger(__name__)

#: the findings of the ``afloc_findings`` task: the CheXpert labels that name a finding, plus Nodule (14)
DEFAULT_FINDINGS: tuple[str, ...] = tuple(f for f in CHEXPERT_FINDINGS if f != "No Finding") + ("Nodule",)


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}
_KNOWN_KEYS = {"checkpoint", "text_model", "findings", "free_text", "threshold", "sigma", "image_size", "device",
               "network_factory", "bundle"}
BUNDLE_TASK = "afloc_bundle"


def _split_names(value: str, key: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise ValueError(f"--conf {key}: expected comma-separated finding names, got {value!r}.")
    if len(set(n.lower() for n in names)) != len(names):
        raise ValueError(f"--conf {key}: repeated finding names in {value!r}.")
    return names


class AFLocAppSettings:
    """
    The app's ``--conf`` values, checked (``ValueError`` naming the key, the expected and the received value).

    Args:
        conf: MONAI Label's app conf (``{key: str}``); other MONAI Label keys are ignored.
    """

    def __init__(self, conf: Mapping[str, Any]) -> None:
        if not isinstance(conf, Mapping):
            raise TypeError(f"conf must be a mapping of --conf keys to values, got {type(conf).__name__}.")
        self.checkpoint = conf.get("checkpoint") or None
        self.text_model = conf.get("text_model") or None
        self.network_factory = conf.get("network_factory") or None
        self.bundle = conf.get("bundle") or None
        if self.checkpoint is None and self.network_factory is None and self.bundle is None:
            raise ValueError("no network: start the server with --conf checkpoint PATH (an AFLoc .ckpt or a "
                             "monai_afloc checkpoint folder) or --conf bundle PATH.")
        if self.network_factory is not None and (self.checkpoint is not None or self.bundle is not None):
            raise ValueError("--conf network_factory excludes --conf checkpoint and --conf bundle; give one.")
        if self.bundle is not None and not os.path.isfile(os.path.join(self.bundle, "configs", "inference.json")):
            raise ValueError(f"--conf bundle: expected a MONAI Bundle folder with configs/inference.json, got "
                             f"{self.bundle!r}.")
        if self.checkpoint is not None and not os.path.exists(self.checkpoint):
            raise ValueError(f"--conf checkpoint: no such file or folder {self.checkpoint!r}.")
        if self.network_factory is not None and (":" not in self.network_factory):
            raise ValueError(f"--conf network_factory: expected 'module:callable', got {self.network_factory!r}.")
        self.finding_sets: dict[str, list[str]] = {}
        if conf.get("findings") or self.bundle is None:
            self.finding_sets["afloc_findings"] = (
                _split_names(conf["findings"], "findings") if conf.get("findings") else list(DEFAULT_FINDINGS)
            )
        for key in sorted(conf):
            if key.startswith("findings_"):
                name = key[len("findings_") :]
                if not name.replace("_", "").isalnum():
                    raise ValueError(f"--conf {key}: the task name {name!r} must be letters, digits and '_'.")
                self.finding_sets[f"afloc_{name}"] = _split_names(str(conf[key]), key)
        free_text = str(conf.get("free_text", "true")).strip().lower()
        if free_text not in _TRUE | _FALSE:
            raise ValueError(f"--conf free_text: expected true or false, got {conf.get('free_text')!r}.")
        self.free_text = free_text in _TRUE
        self.threshold_given = conf.get("threshold") not in (None, "")
        try:
            self.threshold = parse_threshold(conf.get("threshold", 0.5))
        except AFLocRequestError as e:
            raise ValueError(f"--conf threshold: {e}") from None
        self.sigma = None
        if conf.get("sigma") not in (None, ""):
            try:
                self.sigma = float(conf["sigma"])
            except (TypeError, ValueError):
                self.sigma = -1.0
            if not self.sigma >= 0:
                raise ValueError(f"--conf sigma: expected a number >= 0, got {conf['sigma']!r}.")
        self.image_size = None
        if conf.get("image_size") not in (None, ""):
            size = str(conf["image_size"]).strip()
            if not size.isdigit() or int(size) < 32:
                raise ValueError(f"--conf image_size: expected an integer >= 32, got {conf['image_size']!r}.")
            self.image_size = int(size)
        device = conf.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError):
            raise ValueError(f"--conf device: expected a torch device such as cpu or cuda, got {device!r}.") from None


def _factory_network(settings: AFLocAppSettings) -> torch.nn.Module:
    module_name, _, attr = settings.network_factory.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"--conf network_factory {settings.network_factory!r}: {e}") from None
    net = factory()
    if not isinstance(net, torch.nn.Module) or not hasattr(net, "encode_image") or not hasattr(net, "encode_text"):
        raise ValueError(f"the network must be an AFLoc-like module (encode_image, encode_text), got "
                         f"{type(net).__name__}.")
    return net.to(settings.device).eval()


def build_localizer(settings: AFLocAppSettings) -> TextPromptLocalizer:
    """
    The localizer of ``settings``: ``TextPromptLocalizer.from_checkpoint(checkpoint)`` (the checkpoint's frame size,
    σ and threshold; the ``--conf`` values given win), or, for ``network_factory``, that network with the settings
    :func:`~monai_afloc.inference_settings.default_inference_settings` gives it.
    """
    overrides = {"sigma": settings.sigma, "image_size": settings.image_size,
                 "threshold": settings.threshold if settings.threshold_given else None}
    if settings.network_factory is None:
        return TextPromptLocalizer.from_checkpoint(settings.checkpoint, device=settings.device,
                                                   text_model_name_or_path=settings.text_model, **overrides)
    from monai_afloc.inference_settings import default_inference_settings

    net = _factory_network(settings)
    defaults = default_inference_settings(net, settings.image_size, sigma=overrides["sigma"],
                                          threshold=overrides["threshold"])
    return TextPromptLocalizer(net, **defaults.to_dict())


def build_network(settings: AFLocAppSettings) -> torch.nn.Module:
    """The network of :func:`build_localizer` (kept for callers that need the network alone)."""
    return build_localizer(settings).network


def build_bundle_localizer(settings: AFLocAppSettings) -> tuple[TextPromptLocalizer, list[str], float]:
    """
    Parse ``settings.bundle``'s ``configs/inference.json`` with MONAI's ``ConfigParser`` (``checkpoint``,
    ``text_model`` and ``device`` overridden from the app conf when given) and return its ``inferer`` (a
    :class:`TextPromptLocalizer`), its ``prompts`` and its ``threshold``.
    """
    from monai.bundle import ConfigParser

    root = os.path.abspath(settings.bundle)
    parser = ConfigParser()
    parser.read_config(os.path.join(root, "configs", "inference.json"))
    parser["bundle_root"] = root
    if settings.checkpoint is not None:
        parser["checkpoint"] = os.path.abspath(settings.checkpoint)
    if settings.text_model is not None:
        parser["text_model"] = settings.text_model
    parser["device"] = f"$torch.device({str(settings.device)!r})"
    localizer = parser.get_parsed_content("inferer")
    if not isinstance(localizer, TextPromptLocalizer):
        raise ValueError(f"--conf bundle: the bundle's 'inferer' must be a TextPromptLocalizer, got "
                         f"{type(localizer).__name__}.")
    prompts = parser.get_parsed_content("prompts")
    if isinstance(prompts, str) or not isinstance(prompts, (list, tuple)) or not prompts:
        raise ValueError(f"--conf bundle: the bundle's 'prompts' must be a non-empty list, got {prompts!r}.")
    threshold = settings.threshold if settings.threshold_given else localizer.threshold
    return localizer, [str(p) for p in prompts], parse_threshold(threshold)


class AFLocMONAILabelApp(MONAILabelApp):
    """
    MONAI Label app with one infer task per finding list (``afloc_findings``, ``afloc_NAME``) and a free-text task
    (``afloc_prompt``), all sharing one network and one :class:`TextPromptLocalizer` (prompt vectors cached).

    Args:
        app_dir: the app folder (MONAI Label passes it).
        studies: the datastore folder (PNG/JPG/DICOM chest radiographs) or a DICOMweb URL.
        conf: the ``--conf`` values (see the module docstring).
        name, description: shown in ``/info/``.
    """

    def __init__(
        self,
        app_dir: str,
        studies: str,
        conf: Mapping[str, str],
        name: str = "monai_afloc",
        description: str = "AFLoc text-prompted pre-annotation of chest radiographs (masks, boxes, heatmaps)",
    ) -> None:
        self.afloc_settings = AFLocAppSettings(conf or {})
        unknown = sorted(k for k in (conf or {}) if k not in _KNOWN_KEYS and not k.startswith("findings_"))
        if unknown:
            logger.info(f"conf keys not used by the AFLoc app (MONAI Label's own?): {unknown}")
        self.bundle_prompts: list[str] | None = None
        if self.afloc_settings.bundle is not None:
            self.localizer, self.bundle_prompts, self.bundle_threshold = build_bundle_localizer(self.afloc_settings)
            self.network = self.localizer.network
        else:
            self.localizer = build_localizer(self.afloc_settings)
            self.network = self.localizer.network
        s = self.afloc_settings
        self.task_threshold = s.threshold if s.threshold_given else self.localizer.threshold
        self._afloc_lock = threading.Lock()
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=dict(conf or {}),
            name=name,
            description=description,
            version=monai_afloc.__version__,
            labels=None,
        )

    # --- MONAI Label hooks -------------------------------------------------------------------------------------
    def init_datastore(self):
        if self.studies.startswith(("http://", "https://")):
            return super().init_datastore()
        from monailabel.config import settings
        from monailabel.datastore.local import LocalDatastore

        extensions = list(settings.MONAI_LABEL_DATASTORE_FILE_EXT)
        extensions += [e for e in ("*.png", "*.jpg", "*.jpeg", "*.dcm") if e not in extensions]
        return LocalDatastore(
            self.studies,
            extensions=extensions,
            auto_reload=settings.MONAI_LABEL_DATASTORE_AUTO_RELOAD,
            read_only=settings.MONAI_LABEL_DATASTORE_READ_ONLY,
        )

    def init_infers(self) -> dict[str, Any]:
        s = self.afloc_settings
        infers: dict[str, Any] = {
            name: AFLocPromptInferTask(self.localizer, findings=findings, threshold=self.task_threshold,
                                       lock=self._afloc_lock)
            for name, findings in s.finding_sets.items()
        }
        if self.bundle_prompts is not None:
            infers[BUNDLE_TASK] = AFLocPromptInferTask(
                self.localizer,
                findings={p: p for p in self.bundle_prompts},
                threshold=self.bundle_threshold,
                description=f"AFLoc bundle {os.path.basename(os.path.abspath(s.bundle))}: its prompts "
                f"({', '.join(self.bundle_prompts)})",
                lock=self._afloc_lock,
            )
        if s.free_text:
            infers["afloc_prompt"] = AFLocPromptInferTask(self.localizer, None, threshold=self.task_threshold,
                                                          lock=self._afloc_lock)
        return infers

    def init_trainers(self) -> dict[str, Any]:
        return {}  # AFLoc pre-trains on image-report pairs (the bundle), not on MONAI Label's labels

    def init_strategies(self) -> dict[str, Any]:
        from monailabel.tasks.activelearning.random import Random

        return {"random": Random()}

    def init_scoring_methods(self) -> dict[str, Any]:
        return {}

    def on_init_complete(self) -> None:
        super().on_init_complete()
        from monai_afloc.apps.monailabel.server import install_infer_params_guard

        install_infer_params_guard()

    def infer(self, request, datastore=None):
        """Check the model and the image (known id, or a path inside the datastore) before MONAI Label's ``infer``."""
        try:
            if not isinstance(request, Mapping):
                raise AFLocRequestError(422, f"the request must be a JSON object, got {type(request).__name__}.")
            model = request.get("model")
            if model not in self._infers:
                raise AFLocRequestError(404, f"unknown model {model!r}; available: {sorted(self._infers)}.")
            if not UPLOADED_IMAGE.get():
                self._check_image(request.get("image"), datastore if datastore is not None else self.datastore())
        except AFLocRequestError as e:
            raise http_error(e) from None
        return super().infer(request, datastore)

    def _check_image(self, image: Any, datastore: Any) -> None:
        from monailabel.datastore.local import LocalDatastore

        if not isinstance(image, str) or not image.strip():
            raise AFLocRequestError(400, f"'image' must be an image id of the datastore, got {image!r}.")
        if isinstance(datastore, LocalDatastore):
            if datastore.get_image_uri(image):
                return  # a known id
            looks_like_path = os.path.isabs(image) or os.sep in image or "/" in image or os.path.exists(image)
            if looks_like_path and not is_inside(image, [self.studies]):
                raise AFLocRequestError(403, f"image path {image!r} is outside the datastore; send an image id "
                                             f"(GET /datastore/?output=all lists them).")
            if not os.path.isfile(image):
                raise AFLocRequestError(404, f"unknown image {image!r}: not an id or file of the datastore.")
        elif os.path.exists(image):  # a remote datastore serves ids only, never server paths
            raise AFLocRequestError(403, f"image {image!r} is a server path; this datastore serves image ids only.")
