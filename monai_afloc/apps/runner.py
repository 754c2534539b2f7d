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
"Images × prompts → files": the one runner behind ``monai-afloc localize`` and the bundle's ``inference.json``.

For each image, a :class:`~monai_afloc.inferers.TextPromptLocalizer` gives one heatmap per prompt in the image's
own geometry; the runner decodes each image once (the localizer and the overlay share the decoded pixels) and
writes, with :mod:`monai_afloc.apps.outputs`::

    <output_dir>/<image stem>/heatmaps.nii.gz     all prompts' heatmaps, [-1, 1] (NIfTI, one volume slice per prompt)
    <output_dir>/<image stem>/overlay_KK.png      heatmap over the image with boxes, prompt as title
    <output_dir>/<image stem>/mask_KK.png         heatmap > threshold
    <output_dir>/<image stem>/result.json         prompts, scores, boxes, file names
    <output_dir>/results.json                     every image's result, the failures and the run's provenance

Every output path in ``result.json`` and ``results.json`` is relative to ``output_dir`` (``cxr/overlay_00.png``), so
the folder can be moved or shared as a whole; ``image`` is the input path as given.

A repeated stem gets a suffix (``cxr``, ``cxr_1``, ...). Each image's files are written into a hidden
``<output_dir>/.<stem>.partial/`` folder that is renamed to ``<stem>/`` once complete, so a crash or a failing image
never leaves half a folder. Heatmaps, masks and overlays have the localizer's output size (bounded by its
``max_output_size``); boxes and ``result.json``'s ``size`` are in original pixels (``output_size``: the files').
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from monai_afloc.apps.outputs import save_heatmaps_nifti, save_mask_png, save_overlay, save_result_json
from monai_afloc.inferers.localizer import TextPromptLocalizer, scale_boxes
from monai_afloc.utils.enums import LocalizerKeys as K

__all__ = ["IMAGE_SUFFIXES", "image_stem", "image_like", "expand_image_paths", "run_provenance",
           "PromptLocalizationRunner"]

#: image file endings removed to name each image's output folder
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".dcm", ".dicom", ".nii", ".nii.gz")


def image_stem(path: str) -> str:
    """The output folder name of an image: its base name without a known image ending (``a.nii.gz`` -> ``a``)."""
    base = os.path.basename(path)
    for ext in sorted(IMAGE_SUFFIXES, key=len, reverse=True):
        if base.lower().endswith(ext):
            return base[: -len(ext)] or base
    return base


def expand_image_paths(paths: Sequence[str | os.PathLike]) -> list[str]:
    """
    The command line's image arguments as files: each folder becomes its image files (the endings
    :class:`~monai_afloc.transforms.LoadGrayscaleImage` reads by suffix, not recursive, hidden files skipped), sorted
    by name; anything else is kept as given (a missing file is reported when it is processed, like any bad image).

    Raises:
        ValueError: a folder without any image file (nothing would be done for it, silently).
    """
    from monai_afloc.transforms.image.io import IMAGE_FILE_SUFFIXES

    out: list[str] = []
    for path in paths:
        path = os.fspath(path)
        if not os.path.isdir(path):
            out.append(path)
            continue
        found = sorted(
            os.path.join(path, name) for name in os.listdir(path)
            if not name.startswith(".") and name.lower().endswith(IMAGE_FILE_SUFFIXES)
            and os.path.isfile(os.path.join(path, name))
        )
        if not found:
            endings = ", ".join(IMAGE_FILE_SUFFIXES)
            raise ValueError(f"folder {path!r} holds no image file (expected endings {endings}).")
        out.extend(found)
    return out


def image_like(image: Any, size: Sequence[int]) -> Any:
    """The loaded ``[1, H, W]`` image area-resized to ``size`` when the outputs were reduced (else as is)."""
    import torch
    import torch.nn.functional as F

    if tuple(image.shape[-2:]) == tuple(size):
        return image
    pixels = image.as_tensor() if hasattr(image, "as_tensor") else torch.as_tensor(image)
    return F.interpolate(pixels[None].float(), size=tuple(size), mode="area")[0]


class PromptLocalizationRunner:
    """
    Run a :class:`~monai_afloc.inferers.TextPromptLocalizer` over images and save heatmaps, overlays, masks and JSON.

    Args:
        inferer: the localizer (holds the network, smoothing and threshold).
        dataset: a sequence of ``{"image": path}`` dicts (e.g. ``monai.data.Dataset``) or of paths.
        prompts: the free-text prompts (each image gets one heatmap per prompt).
        output_dir: where the files go (created).
        save_overlays: write overlay PNGs (needs matplotlib).
        save_nifti: write the heatmaps as NIfTI.
        save_masks: write thresholded masks as PNG.
        threshold: mask/box threshold on the [-1, 1] heatmaps (``None``: the localizer's).
        on_error: called with ``(path, message)`` for each image that fails (default: logged); the others go on.
        progress: wraps the list of paths (e.g. ``tqdm``); default none.
        provenance: JSON-ready facts about the run (checkpoint, settings, versions) saved in ``results.json``
            (default: the localizer's inference settings and the package versions).

    Example::

        runner = PromptLocalizationRunner(TextPromptLocalizer.from_checkpoint("ckpt"), ["scan.png"],
                                          ["pleural effusion"], "out")
        summary = runner.run()
    """

    def __init__(
        self,
        inferer: TextPromptLocalizer,
        dataset: Sequence[Any],
        prompts: Sequence[str],
        output_dir: str,
        save_overlays: bool = True,
        save_nifti: bool = True,
        save_masks: bool = True,
        threshold: float | None = None,
        on_error: Callable[[str, str], None] | None = None,
        progress: Callable[[list[str]], Iterable[str]] | None = None,
        provenance: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(inferer, TextPromptLocalizer):
            raise TypeError(f"inferer must be a TextPromptLocalizer, got {type(inferer).__name__}.")
        if isinstance(prompts, str) or not prompts or not all(isinstance(p, str) and p.strip() for p in prompts):
            raise ValueError(f"prompts must be a non-empty list of non-blank str, got {prompts!r}.")
        if not isinstance(output_dir, (str, os.PathLike)):
            raise TypeError(f"output_dir must be a path, got {type(output_dir).__name__}.")
        self.inferer = inferer
        self.dataset = dataset
        self.prompts = list(prompts)
        self.output_dir = os.fspath(output_dir)
        self.save_overlays, self.save_nifti, self.save_masks = bool(save_overlays), bool(save_nifti), bool(save_masks)
        self.threshold = threshold
        self.logger = logging.getLogger(__name__)
        self.on_error = on_error if on_error is not None else (lambda path, msg: self.logger.error(f"{path}: {msg}"))
        self.progress = progress
        if provenance is not None and not isinstance(provenance, dict):
            raise TypeError(f"provenance must be a dict or None, got {type(provenance).__name__}.")
        self.provenance = dict(provenance) if provenance is not None else run_provenance(inferer)

    def _paths(self) -> list[str]:
        paths = []
        for i in range(len(self.dataset)):
            item = self.dataset[i]
            path = item.get("image") if isinstance(item, dict) else item
            if not isinstance(path, (str, os.PathLike)):
                raise TypeError(f"dataset item {i} must be a path or a dict with an 'image' path, got {item!r}.")
            paths.append(os.fspath(path))
        return paths

    def process(self, path: str, name: str) -> dict[str, Any]:
        """Localize every prompt on one image and write its files into ``output_dir/name``; returns its result."""
        image = self.inferer.preprocess.loader(path)  # decoded once: the localizer's frames and the overlay
        out = self.inferer([image], self.prompts, return_masks=True, return_boxes=True, threshold=self.threshold)
        final = os.path.join(self.output_dir, name)
        folder = os.path.join(self.output_dir, f".{name}.partial")  # renamed to `final` once complete
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        try:
            result = self._write(out, image, path, folder, final)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        if os.path.isdir(final):
            shutil.rmtree(final)
        os.replace(folder, final)
        return result

    def _write(self, out: dict[str, Any], image: Any, path: str, folder: str, final: str) -> dict[str, Any]:
        """Write one image's files into ``folder``; the result names them where they lie once renamed to ``final``."""
        heatmaps, masks = out[K.HEATMAPS][0], out[K.MASKS][0]
        size = out[K.GEOMETRIES][0].original_size

        where = os.path.relpath(final, self.output_dir)

        def saved(name: str) -> str:  # relative to output_dir, with "/" on every platform
            return f"{where}/{name}".replace(os.sep, "/")

        files: dict[str, Any] = {}
        if self.save_nifti:
            save_heatmaps_nifti(os.path.join(folder, "heatmaps.nii.gz"), heatmaps)
            files["heatmaps"] = saved("heatmaps.nii.gz")
        shown = image_like(image, heatmaps.shape[-2:]) if self.save_overlays else None
        entries = []
        for k, prompt in enumerate(self.prompts):
            entry: dict[str, Any] = {"prompt": prompt, "score": float(out[K.SCORES][0, k]), "boxes": out[K.BOXES][0][k]}
            if self.save_masks:
                save_mask_png(os.path.join(folder, f"mask_{k:02d}.png"), masks[k])
                entry["mask"] = saved(f"mask_{k:02d}.png")
            if self.save_overlays:
                drawn = scale_boxes(entry["boxes"], size, heatmaps.shape[-2:])  # the overlay has the output size
                save_overlay(os.path.join(folder, f"overlay_{k:02d}.png"), shown, heatmaps[k], title=prompt, boxes=drawn)
                entry["overlay"] = saved(f"overlay_{k:02d}.png")
            entries.append(entry)
        result = {
            "image": path,
            "size": list(size),
            "output_size": list(heatmaps.shape[-2:]),
            "threshold": out[K.THRESHOLD],
            "files": files,
            "prompts": entries,
        }
        save_result_json(os.path.join(folder, "result.json"), result)
        return result

    def run(self) -> dict[str, Any]:
        """Process every image (a failing image is reported and listed, the others go on); write ``results.json``."""
        os.makedirs(self.output_dir, exist_ok=True)
        results, failures, used = [], {}, set()
        paths = self._paths()
        for path in self.progress(paths) if self.progress is not None else paths:
            name, n = image_stem(path), 1
            stem = name
            while name in used:
                name, n = f"{stem}_{n}", n + 1
            used.add(name)
            try:
                results.append(self.process(path, name))
            except Exception as e:  # one bad image must not stop the folder
                failures[path] = f"{type(e).__name__}: {e}"
                self.on_error(path, failures[path])
        summary = {"prompts": self.prompts, "n_images": len(results), "results": results, "failures": failures,
                   "provenance": self.provenance}
        save_result_json(os.path.join(self.output_dir, "results.json"), summary)
        self.logger.info(
            f"localized {len(results)} image(s), {len(failures)} failure(s); outputs in {self.output_dir!r}."
        )
        return summary


def run_provenance(inferer: Any, checkpoint: str | os.PathLike | None = None, **extra: Any) -> dict[str, Any]:
    """
    What produced a run's outputs: the package versions (monai_afloc, MONAI, torch), the inferer's inference settings
    and device, the checkpoint's absolute path when given, and ``extra`` (e.g. the command line).
    """
    import monai
    import torch

    import monai_afloc

    out: dict[str, Any] = {
        "monai_afloc_version": monai_afloc.__version__,
        "monai_version": monai.__version__,
        "torch_version": torch.__version__,
    }
    if checkpoint is not None:
        out["checkpoint"] = os.path.abspath(os.fspath(checkpoint))
    settings = getattr(inferer, "settings", None)
    if settings is not None:
        out["settings"] = settings.to_dict()
    if getattr(inferer, "max_output_size", None) is not None:
        out["max_output_size"] = inferer.max_output_size
    network = getattr(inferer, "network", None)
    if isinstance(network, torch.nn.Module):
        out["device"] = str(next(network.parameters()).device)
    out.update(extra)
    return out
