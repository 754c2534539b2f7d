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
MONAI Label infer task: text-prompted pre-annotation with an AFLoc network (through
:class:`~monai_afloc.inferers.TextPromptLocalizer`, never a re-implementation of it).

One task class serves two uses:

- a *finding* task (``findings=[...]``): ``prompt`` names some of its findings (default: all), each localized with
  its canonical prompt text (``"Pleural Effusion"`` -> ``"pleural effusion"``);
- a *free-text* task (``findings=None``): ``prompt`` is any text, one string or a list.

The answer is a label file in the source image's geometry (rows x columns, as a viewer shows the PNG/JPG/DICOM) and
a JSON dict with, per prompt, the label value, the score (cosine of image and prompt vectors) and the boxes
``[x, y, w, h]`` in original pixels. Bad requests raise ``fastapi.HTTPException`` with a 4xx status and a message,
which MONAI Label's server answers as such.

MONAI Label is imported through ``optional_import``: this module imports without it, the task cannot be built.
"""

from __future__ import annotations

import contextvars
import os
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.utils import optional_import

from monai_afloc.apps.monailabel.params import (
    AFLocRequestError,
    OutputKind,
    check_request_mapping,
    parse_output_kind,
    parse_prompts,
    parse_threshold,
)
from monai_afloc.inferers.localizer import TextPromptLocalizer
from monai_afloc.inferers.prompts import DEFAULT_FINDING_PROMPTS
from monai_afloc.transforms.image.io import original_size_of

InferTask, has_monailabel = optional_import("monailabel.interfaces.tasks.infer_v2", name="InferTask", as_type="base")
InferType, _ = optional_import("monailabel.interfaces.tasks.infer_v2", name="InferType")
HTTPException, has_fastapi = optional_import("fastapi", name="HTTPException")
Image, _ = optional_import("PIL.Image")

__all__ = [
    "UPLOADED_IMAGE",
    "AFLocPromptInferTask",
    "finding_prompt_text",
    "label_from_heatmaps",
    "label_from_boxes",
    "http_error",
    "is_inside",
]

#: set by the ``/infer`` guard (:mod:`~monai_afloc.apps.monailabel.server`) while a request with an uploaded file
#: runs (its temporary copy is then allowed); here, below both the app and the guard, so neither imports the other
UPLOADED_IMAGE: contextvars.ContextVar[bool] = contextvars.ContextVar("afloc_uploaded_image", default=False)


def finding_prompt_text(finding: str) -> str:
    """The localization prompt of a finding name: its first positive default prompt, else the lower-cased name."""
    if not isinstance(finding, str) or not finding.strip():
        raise ValueError(f"finding must be a non-empty string, got {finding!r}.")
    known = {k.lower(): v for k, v in DEFAULT_FINDING_PROMPTS.items()}
    entry = known.get(finding.strip().lower())
    return entry["positive"][0] if entry else " ".join(finding.lower().split())


def http_error(error: AFLocRequestError) -> Exception:
    """``fastapi.HTTPException(status, message)`` for a request error (the error itself without fastapi)."""
    return HTTPException(status_code=error.status, detail=str(error)) if has_fastapi else error


def is_inside(path: str, roots: Sequence[str]) -> bool:
    """Whether ``path`` (symlinks resolved) lies inside one of the folders ``roots`` (resolved too)."""
    real = os.path.realpath(path)
    for root in roots:
        r = os.path.realpath(root)
        if real == r or real.startswith(r.rstrip(os.sep) + os.sep):
            return True
    return False


def label_from_heatmaps(heatmaps: torch.Tensor, threshold: float) -> np.ndarray:
    """
    ``heatmaps [K, H, W]`` -> a ``uint8 [H, W]`` label: ``k + 1`` where prompt ``k`` has the highest heatmap value
    among the prompts above ``threshold``, 0 where none is (NaN counts as below).
    """
    if not isinstance(heatmaps, torch.Tensor) or heatmaps.ndim != 3:
        raise ValueError(f"heatmaps must be a [K, H, W] tensor, got {getattr(heatmaps, 'shape', type(heatmaps))}.")
    if heatmaps.shape[0] > 255:
        raise ValueError(f"at most 255 prompts fit a uint8 label, got {heatmaps.shape[0]}.")
    maps = heatmaps.float()
    best = torch.full(maps.shape[1:], float(threshold), dtype=maps.dtype, device=maps.device)
    label = torch.zeros(maps.shape[1:], dtype=torch.uint8, device=maps.device)
    for k in range(maps.shape[0]):  # a running maximum: one pass per prompt (argmax over dim 0 is ~10x slower)
        better = maps[k] > best  # strictly: the first prompt wins ties; NaN compares False
        best = torch.where(better, maps[k], best)
        label.masked_fill_(better, k + 1)
    return label.cpu().numpy()


def label_from_boxes(boxes: Sequence[Sequence[Mapping[str, Any]]], shape: Sequence[int]) -> np.ndarray:
    """
    ``boxes[k]`` (``{"box": [x, y, w, h]}``, original pixels) filled with ``k + 1`` in a ``uint8`` label of
    ``shape``; a later prompt's box overwrites an earlier one where they overlap.
    """
    label = np.zeros(tuple(int(s) for s in shape), np.uint8)
    if len(boxes) > 255:
        raise ValueError(f"at most 255 prompts fit a uint8 label, got {len(boxes)}.")
    for k, per_prompt in enumerate(boxes):
        for b in per_prompt:
            x, y, w, h = (int(round(float(v))) for v in b["box"])
            label[max(y, 0) : max(y + h, 0), max(x, 0) : max(x + w, 0)] = k + 1
    return label


class AFLocPromptInferTask(InferTask):
    """
    A MONAI Label infer task answering text prompts with AFLoc heatmaps, masks and boxes.

    Request keys (the ``params`` JSON object of ``POST /infer/{model}``; defaults from :meth:`config`):
    ``prompt`` (a string or a list of strings; finding names for a finding task), ``threshold`` (in ``[-1, 1]``),
    ``output`` (``mask`` | ``heatmap`` | ``boxes``). See :mod:`monai_afloc.apps.monailabel.params`.

    Args:
        localizer: the :class:`TextPromptLocalizer` to use (share one between tasks: prompt vectors are cached).
        findings: finding names for a finding task, or a mapping name -> prompt text; ``None`` for a free-text task.
        description: shown by MONAI Label clients.
        threshold: default threshold on the ``[-1, 1]`` heatmaps.
        output: default output kind.
        allowed_roots: when given, image paths outside these folders are refused (403). The
            :class:`~monai_afloc.apps.monailabel.app.AFLocMONAILabelApp` checks paths itself and passes ``None``.
        lock: a lock serialising calls into the shared network (a new one when ``None``).

    Example::

        >>> task = AFLocPromptInferTask(TextPromptLocalizer(net), findings=["Pleural Effusion", "Pneumothorax"])
        >>> label_file, result = task({"image": "/data/cxr.png", "prompt": ["Pneumothorax"], "threshold": 0.4})
        >>> result["prompts"][0]["boxes"]  # [{"box": [x, y, w, h], "score": ..., "area": ...}, ...]
    """

    def __init__(
        self,
        localizer: TextPromptLocalizer,
        findings: Sequence[str] | Mapping[str, str] | None = None,
        description: str = "",
        threshold: float = 0.5,
        output: str = OutputKind.MASK,
        allowed_roots: Sequence[str] | None = None,
        lock: Any = None,
    ) -> None:
        if not isinstance(localizer, TextPromptLocalizer):
            raise TypeError(f"localizer must be a TextPromptLocalizer, got {type(localizer).__name__}.")
        if findings is not None:
            if isinstance(findings, str) or not isinstance(findings, (Sequence, Mapping)) or len(findings) == 0:
                raise ValueError(f"findings must be None or a non-empty list/mapping of names, got {findings!r}.")
            pairs = findings.items() if isinstance(findings, Mapping) else ((f, None) for f in findings)
            table = {}
            for name, text in pairs:
                if not isinstance(name, str) or not name.strip():
                    raise ValueError(f"finding names must be non-empty strings, got {name!r}.")
                if text is not None and (not isinstance(text, str) or not text.strip()):
                    raise ValueError(f"the prompt of finding {name!r} must be a non-empty string, got {text!r}.")
                table[name.strip()] = text.strip() if text else finding_prompt_text(name)
            if len(table) > 255:
                raise ValueError(f"at most 255 findings fit a uint8 label, got {len(table)}.")
            findings = table
        try:
            threshold = parse_threshold(threshold)
            output = parse_output_kind(output)
        except AFLocRequestError as e:
            raise ValueError(str(e)) from None
        if allowed_roots is not None and (isinstance(allowed_roots, str) or not all(
            isinstance(r, (str, os.PathLike)) for r in allowed_roots
        )):
            raise TypeError(f"allowed_roots must be None or a list of folders, got {allowed_roots!r}.")
        if not description:
            description = (
                f"AFLoc: localize findings ({', '.join(findings)}) from text prompts"
                if findings
                else "AFLoc: localize any free-text prompt (params: prompt, threshold, output)"
            )
        config = {"prompt": list(findings) if findings else "", "threshold": threshold, "output": output.value}
        super().__init__(
            type=InferType.SEGMENTATION,
            labels=list(findings) if findings else [],
            dimension=2,
            description=description,
            config=config,
        )
        self.localizer = localizer
        self.findings: dict[str, str] | None = findings
        self.threshold = threshold
        self.output = output
        self.allowed_roots = [os.fspath(r) for r in allowed_roots] if allowed_roots is not None else None
        self.lock = lock if lock is not None else threading.Lock()

    def is_valid(self) -> bool:
        return True

    def info(self) -> dict[str, Any]:
        out = super().info()
        out["afloc"] = {"kind": "findings" if self.findings else "free_text", "outputs": [k.value for k in OutputKind]}
        if self.findings:
            out["afloc"]["prompts"] = dict(self.findings)
        return out

    def _image_path(self, image: Any) -> str:
        if not isinstance(image, (str, os.PathLike)) or not os.fspath(image):
            raise AFLocRequestError(400, f"'image' must name an image of the datastore, got {image!r}.")
        path = os.fspath(image)
        if self.allowed_roots is not None and not is_inside(path, self.allowed_roots):
            raise AFLocRequestError(403, f"image {path!r} is outside the datastore; only its images are served.")
        if not os.path.isfile(path):
            raise AFLocRequestError(404, f"image {path!r} not found.")
        return path

    def _read_image(self, path: str) -> Any:
        """Decode the image once, with the localizer's own loader (its output is what the localizer is given): 422
        with the reason when it cannot be read as 2D."""
        try:
            return self.localizer.preprocess.loader(path)
        except Exception as e:  # a corrupt or unsupported file is the client's problem, not a server error
            raise AFLocRequestError(422, f"cannot read image {os.path.basename(path)!r} as a 2D image: "
                                         f"{type(e).__name__}: {e}") from None

    def parse(self, request: Any) -> tuple[list[str], float, OutputKind]:
        """The request's prompts (as sent), threshold and output kind, with this task's defaults."""
        data = dict(self.config())
        data.update(check_request_mapping(request))
        raw = data.get("prompt")
        if self.findings is not None and (raw is None or raw == "" or raw == []):
            raw = list(self.findings)
        prompts = parse_prompts(raw, choices=list(self.findings) if self.findings is not None else None)
        return prompts, parse_threshold(data.get("threshold")), parse_output_kind(data.get("output"))

    def __call__(self, request: Any) -> tuple[str | None, dict[str, Any]]:
        start = time.perf_counter()
        try:
            prompts, threshold, kind = self.parse(request)
            path = self._image_path(request.get("image"))
            image = self._read_image(path)
            shape = original_size_of(image)  # the file's size (a very large image is decoded reduced)
        except AFLocRequestError as e:
            raise http_error(e) from None
        texts = [self.findings[p] for p in prompts] if self.findings is not None else prompts
        t_read = time.perf_counter()
        with self.lock:
            out = self.localizer([image], texts, return_boxes=True, threshold=threshold)
        t_infer = time.perf_counter()
        heatmaps = out["heatmaps"][0]
        if tuple(heatmaps.shape[-2:]) != shape:
            raise RuntimeError(f"heatmaps {tuple(heatmaps.shape[-2:])} do not match the image {shape}.")
        boxes = out["boxes"][0]
        if kind == OutputKind.HEATMAP:
            from monai_afloc.apps.outputs import save_heatmaps_nifti

            label_file = tempfile.NamedTemporaryFile(suffix=".nii.gz", delete=False).name
            save_heatmaps_nifti(label_file, heatmaps)
        else:
            if kind == OutputKind.BOXES:
                label = label_from_boxes(boxes, shape)
            else:
                label = label_from_heatmaps(heatmaps, threshold)
            label_file = tempfile.NamedTemporaryFile(suffix=".png", delete=False).name
            Image.fromarray(label).save(label_file)
        from monai_afloc.apps.outputs import to_jsonable

        entries = [
            {"prompt": p, "text": t, "label": k + 1, "score": float(out["scores"][0, k]), "boxes": boxes[k]}
            for k, (p, t) in enumerate(zip(prompts, texts))
        ]
        result = {
            "model_kind": "findings" if self.findings is not None else "free_text",
            "output": kind.value,
            "threshold": threshold,
            "image_size": list(shape),
            "label_names": {p: k + 1 for k, p in enumerate(prompts)},
            "prompts": entries,
            "latencies": {
                "read": round(t_read - start, 4),
                "infer": round(t_infer - t_read, 4),
                "write": round(time.perf_counter() - t_infer, 4),
                "total": round(time.perf_counter() - start, 4),
            },
        }
        return label_file, to_jsonable(result)
