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
Text-prompted localization and zero-shot classification with an :class:`~monai_afloc.networks.nets.AFLoc` network.

Inferers in MONAI style: settings in ``__init__``, ``__call__(images, prompts)``. Each image is encoded once for
all its prompts; prompt embeddings are cached by their cleaned text. The maths lives in
:mod:`monai_afloc.inferers.similarity` (pure functions).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
from monai.data import MetaTensor

from monai_afloc.inferers.prompts import clean_prompts
from monai_afloc.networks.nets.text_encoder import AFLocTextEncoder
from monai_afloc.inferers.similarity import rescale_to_unit_range, similarity_map, upsample_maps
from monai_afloc.transforms.image.array import AFLocImagePreprocess
from monai_afloc.transforms.image.geometry import (
    GEOMETRY_META_KEY,
    PreprocessGeometry,
    frame_to_original,
    valid_frame_masks,
)
from monai_afloc.transforms.post.array import heatmap_to_boxes
from monai_afloc.inference_settings import InferenceSettings
from monai_afloc.utils.enums import AFLocKeys, LocalizerKeys
from monai_afloc.utils.validation import check_int, check_number

__all__ = ["PromptEncoder", "prepare_images", "encode_frames", "bounded_output_geometry", "scale_boxes", "TextPromptLocalizer"]


class PromptEncoder:
    """
    Encode free-text prompts to ``[K, D]`` vectors with an AFLoc text encoder, caching by cleaned text.

    Args:
        network: an ``AFLoc`` (its ``encode_text`` is used) or an ``AFLocTextEncoder``.
        tokenizer: a Hugging Face tokenizer; default the text encoder's own.
        max_length: token sequence length (97 in the reference).
        text_key: which text output is the prompt vector (``text_report`` in the reference).
        cache_size: number of prompt vectors kept (least recently used dropped); 0 disables the cache.
        keep_unicode: keep non-ASCII characters in prompts (for a text model with a Unicode vocabulary; the
            release's vocabulary is ASCII, so by default they are removed as the reference does).

    A prompt whose words change under cleaning, or that is cut at ``max_length`` tokens, gets a ``UserWarning`` that
    says what the model sees.

    Thread-safe: one encoder (e.g. in a shared :class:`TextPromptLocalizer`) may serve several threads; the cache is
    read and updated under a lock, and prompts are encoded one call at a time (tokenizers are not thread-safe).
    """

    def __init__(
        self,
        network: nn.Module,
        tokenizer: Any = None,
        max_length: int = 97,
        text_key: str = AFLocKeys.TEXT_REPORT,
        cache_size: int = 4096,
        keep_unicode: bool = False,
    ) -> None:
        if not isinstance(network, nn.Module):
            raise TypeError(f"network must be an AFLoc or AFLocTextEncoder module, got {type(network).__name__}.")
        self.network = network
        self.tokenizer = tokenizer if tokenizer is not None else getattr(network, "tokenizer", None)
        if self.tokenizer is None:
            raise ValueError("no tokenizer: pass tokenizer= or use a network whose text encoder has one.")
        if not isinstance(max_length, int) or max_length < 2:
            raise ValueError(f"max_length must be an int >= 2, got {max_length!r}.")
        if not isinstance(cache_size, int) or cache_size < 0:
            raise ValueError(f"cache_size must be an int >= 0, got {cache_size!r}.")
        self.max_length = max_length
        self.text_key = text_key
        self.cache_size = cache_size
        if not isinstance(keep_unicode, bool):
            raise TypeError(f"keep_unicode must be a bool, got {type(keep_unicode).__name__}.")
        self.keep_unicode = keep_unicode
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._encode_lock = threading.Lock()

    def _warn_truncated(self, texts: list[str], input_ids: torch.Tensor) -> None:
        """Warn about each prompt longer than ``max_length`` tokens, with the text that the model sees."""
        full = self.tokenizer(texts, truncation=False, padding=False)["input_ids"]
        for i, (text, ids) in enumerate(zip(texts, full)):
            if len(ids) > self.max_length:
                seen = self.tokenizer.decode(input_ids[i].tolist(), skip_special_tokens=True)
                warnings.warn(
                    f"prompt {text!r} has {len(ids)} tokens and is cut at max_length={self.max_length}: the model "
                    f"sees {seen!r}.",
                    UserWarning,
                    stacklevel=4,
                )

    def _encode(self, texts: list[str]) -> torch.Tensor:
        # The reference pads prompts to max_length; attention masks make real tokens' states independent of the
        # padding, so AFLoc text encoders pad to the longest prompt and average the report over max_length
        # positions (report_length): the same vectors, several times faster. Other encoders get the full padding.
        encode = getattr(self.network, "encode_text", self.network)
        text_encoder = getattr(self.network, "text_encoder", self.network)
        dynamic = isinstance(text_encoder, AFLocTextEncoder) and self.text_key == AFLocKeys.TEXT_REPORT
        enc = self.tokenizer(
            texts,
            padding="longest" if dynamic else "max_length",
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        if enc["input_ids"].shape[1] >= self.max_length:  # some prompt may have been cut
            self._warn_truncated(texts, enc["input_ids"])
        device = next(self.network.parameters()).device
        batch = {k: enc[k].to(device) for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
        if dynamic:
            batch["report_length"] = self.max_length
        with torch.no_grad():
            return encode(**batch)[self.text_key].float()

    def __call__(self, prompts: str | Sequence[str]) -> torch.Tensor:
        """Return ``[K, D]`` prompt vectors (cleaned as the reference cleans an inference prompt)."""
        cleaned = clean_prompts(prompts, keep_unicode=self.keep_unicode)
        with self._cache_lock:  # a snapshot: another thread may evict entries once the lock is released
            vectors = {t: self._cache[t] for t in cleaned if t in self._cache}
        missing = list(dict.fromkeys(t for t in cleaned if t not in vectors))
        if missing:
            with self._encode_lock:
                vectors.update(zip(missing, self._encode(missing)))
        out = torch.stack([vectors[t] for t in cleaned])
        if self.cache_size:
            with self._cache_lock:
                for t in dict.fromkeys(cleaned):
                    self._cache[t] = vectors[t]
                    self._cache.move_to_end(t)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return out

    def clear_cache(self) -> None:
        with self._cache_lock:
            self._cache.clear()


def _to_gray(image: torch.Tensor) -> torch.Tensor:
    """[C, H, W] -> [1, H, W] (ITU-R 601 luminance for 3 channels), rescaled by its max to uint8 values [0, 255]."""
    image = image.float()
    if image.shape[0] == 3:
        image = (0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2]).unsqueeze(0)
    elif image.shape[0] != 1:
        raise ValueError(f"tensor images must have 1 or 3 channels, got {image.shape[0]}.")
    if bool(torch.isnan(image).any()):
        raise ValueError("tensor image holds NaN values.")
    image = image - image.amin().clamp_max(0)  # negative values shifted to 0
    peak = image.amax()
    return torch.round(image * (255.0 / peak)).clamp(0, 255) if peak > 0 else image


def _is_path_or_loaded(item: Any) -> bool:
    return isinstance(item, (str, os.PathLike)) or (isinstance(item, MetaTensor) and item.ndim == 3)


def prepare_images(
    images: Any, preprocess: AFLocImagePreprocess, rescale_tensors: bool = True
) -> tuple[torch.Tensor, list[PreprocessGeometry], list[str | None]]:
    """
    Turn a path, a list of paths (or of images loaded by the preprocessing's loader,
    :class:`~monai_afloc.transforms.image.array.LoadGrayscaleImage`), or a tensor batch ``[B, C, H, W]`` of raw
    images into network frames.

    Tensor images are in their original geometry; with ``rescale_tensors`` each is rescaled by its maximum to
    [0, 255] (the rule the reference applies to DICOM pixel data), so any intensity range works.

    Returns:
        ``frames [B, 3, S, S]``, one :class:`PreprocessGeometry` per image, and the source names (paths or None).
    """
    if isinstance(images, (str, os.PathLike)):
        images = [images]
    if isinstance(images, torch.Tensor):
        if images.ndim == 3:
            images = images.unsqueeze(0)
        if images.ndim != 4:
            raise ValueError(f"tensor images must be [B, C, H, W] or [C, H, W], got shape {tuple(images.shape)}.")
        items: list[Any] = [_to_gray(im) if rescale_tensors else im.float()[:1] for im in images]
        names: list[str | None] = [None] * len(items)
    elif isinstance(images, Sequence) and len(images) > 0 and all(_is_path_or_loaded(p) for p in images):
        # paths are decoded by the preprocessing's loader; loaded images (its output) skip that step, so a caller
        # that needs the decoded image too (for an overlay) decodes once and gets the same frames
        items = [p if isinstance(p, MetaTensor) else os.fspath(p) for p in images]
        names = [p.meta.get("filename_or_obj") if isinstance(p, MetaTensor) else p for p in items]
    else:
        raise TypeError(
            "images must be a path, a non-empty list of paths or of loaded images (LoadGrayscaleImage output), or a "
            f"[B, C, H, W] tensor, got {type(images).__name__}."
        )
    frames, geometries = [], []
    for item in items:
        out = preprocess(item)
        geometries.append(PreprocessGeometry.from_dict(out.meta[GEOMETRY_META_KEY]))
        frames.append(out.as_tensor() if hasattr(out, "as_tensor") else out)
    return torch.stack(frames), geometries, names


def encode_frames(
    network: nn.Module, frames: torch.Tensor, batch_size: int = 8, region_key: str = AFLocKeys.IMAGE_SENTENCES
) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Encode ``frames [B, 3, S, S]`` with ``network.encode_image`` in batches of ``batch_size``, on the network's
    device, without gradients: returns (``region_key`` embeddings ``[B, D, h, w]``, report vectors ``[B, D]``).
    """
    device = next(network.parameters()).device
    regions, reports = [], []
    with torch.no_grad():
        for start in range(0, frames.shape[0], batch_size):
            out = network.encode_image(frames[start : start + batch_size].to(device))
            regions.append(out[region_key].float())
            reports.append(out[AFLocKeys.IMAGE_REPORT].float())
    return torch.cat(regions), torch.cat(reports)


def bounded_output_geometry(geometry: PreprocessGeometry, max_size: int | None) -> PreprocessGeometry:
    """``geometry`` with its original size scaled down so that its longest side is at most ``max_size``."""
    height, width = geometry.original_size
    if max_size is None or max(height, width) <= max_size:
        return geometry
    factor = max_size / max(height, width)
    size = (max(1, round(height * factor)), max(1, round(width * factor)))
    return dataclasses.replace(geometry, original_size=size)


def scale_boxes(boxes: list[dict], from_size: Sequence[int], to_size: Sequence[int]) -> list[dict]:
    """``{"box": [x, y, w, h], "area", ...}`` boxes of an image of ``from_size`` ``(H, W)`` in the pixels of the same
    image at ``to_size`` (e.g. boxes found on a reduced heatmap, in original pixels, or back for a reduced overlay)."""
    if tuple(from_size) == tuple(to_size):
        return boxes
    sy, sx = to_size[0] / from_size[0], to_size[1] / from_size[1]
    scaled = []
    for b in boxes:
        x, y, w, h = b["box"]
        scaled.append({**b, "box": [x * sx, y * sy, w * sx, h * sy], "area": b["area"] * sx * sy})
    return scaled


def _boxes_to_original(boxes: list[dict], output: PreprocessGeometry, original: PreprocessGeometry) -> list[dict]:
    """Boxes found on a reduced-size heatmap, in the original image's pixels."""
    return scale_boxes(boxes, output.original_size, original.original_size)


class TextPromptLocalizer:
    """
    Text-prompted heatmaps, masks and boxes in the original image geometry (docs/design.md §5).

    For each image and prompt: the dot product of the prompt's report vector with each sentence-level region
    embedding, Gaussian smoothing (``sigma`` grid cells), bilinear upsampling to the ``image_size`` frame, min–max
    rescaling to [-1, 1] over the image's valid pixels, then the padding is cut and the resize undone.

    Args:
        network: an ``AFLoc`` network (put it on the device you want; inputs follow it).
        tokenizer: the prompt tokenizer; default the network's own.
        sigma: Gaussian σ in grid cells (1.5 for the reference 19×19 grid).
        image_size: the square frame of the preprocessing (224).
        threshold: default mask/box threshold on the [-1, 1] heatmaps (used when masks or boxes are asked for).
        region_key: which image output is compared with prompts (``image_sentences`` in the reference).
        text_key: which text output is the prompt vector (``text_report`` in the reference).
        batch_size: images encoded per forward pass.
        preprocess: the image chain; default :class:`AFLocImagePreprocess` (``image_size``).
        max_length: prompt token length (97 in the reference).
        max_output_size: bound on the longest side of the returned heatmaps and masks (pixels): a larger image gets
            them at a reduced size (aspect kept), so memory no longer grows with the image (a 12000 x 12000 image
            with 14 prompts would need 8 GB of float32 heatmaps). Boxes stay in original pixels. ``None`` (default)
            keeps full-size outputs. A run-time bound, not one of the checkpoint's inference settings.

    The six settings (``image_size``, ``sigma``, ``threshold``, ``region_key``, ``text_key``, ``max_length``) are
    checked once, as :class:`~monai_afloc.inference_settings.InferenceSettings` (``self.settings``).

    ``images`` are paths, images loaded by ``self.preprocess.loader`` (decode once, reuse for display) or a tensor
    batch. ``localizer(images, prompts)`` returns a dict (keys: :class:`~monai_afloc.utils.enums.LocalizerKeys`)
    with ``heatmaps`` (a ``[B, K, H, W]`` tensor when all images
    share a size, else a list of ``[K, H_i, W_i]``), ``frame_heatmaps [B, K, S, S]``, ``scores [B, K]`` (cosine
    similarity of the image and prompt report vectors), ``geometries``, ``output_sizes`` (the ``(H, W)`` of each
    image's heatmaps: its original size, or less under ``max_output_size``) and ``prompts``; with
    ``return_masks``/``return_boxes``, ``masks`` (same layout as ``heatmaps``) and ``boxes`` (per image, per prompt,
    a list of ``{"box": [x, y, w, h], "score", "area"}`` in original pixels).

    Build it from a checkpoint with :meth:`from_checkpoint`: every entry point (CLI, bundle, MONAI Label, Deploy,
    demo) does, so one checkpoint gives one heatmap whichever way it is run.

    Example::

        >>> loc = TextPromptLocalizer.from_checkpoint("models/best", device="cuda")
        >>> out = loc("cxr.dcm", ["small left pleural effusion", "pneumothorax"], return_boxes=True)
        >>> out["heatmaps"].shape  # [1, 2, H, W] in the DICOM's own geometry
    """

    def __init__(
        self,
        network: nn.Module,
        tokenizer: Any = None,
        sigma: float = 1.5,
        image_size: int = 224,
        threshold: float = 0.5,
        region_key: str = AFLocKeys.IMAGE_SENTENCES,
        text_key: str = AFLocKeys.TEXT_REPORT,
        batch_size: int = 8,
        preprocess: AFLocImagePreprocess | None = None,
        max_length: int = 97,
        max_output_size: int | None = None,
    ) -> None:
        if not isinstance(network, nn.Module) or not hasattr(network, "encode_image"):
            raise TypeError(f"network must be an AFLoc network (with encode_image), got {type(network).__name__}.")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
        self.settings = InferenceSettings(image_size=image_size, sigma=sigma, threshold=threshold,
                                          region_key=region_key, text_key=text_key, max_length=max_length)
        self.max_output_size = None if max_output_size is None else check_int("max_output_size", max_output_size, 1)
        self.network = network
        self.prompt_encoder = PromptEncoder(network, tokenizer, max_length=max_length, text_key=text_key)
        self.sigma = self.settings.sigma
        self.image_size = self.settings.image_size
        self.threshold = self.settings.threshold
        self.region_key = self.settings.region_key
        self.batch_size = batch_size
        self.preprocess = preprocess if preprocess is not None else AFLocImagePreprocess(size=self.image_size)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        device: str | torch.device | None = None,
        text_model_name_or_path: str | None = None,
        tokenizer: Any = None,
        batch_size: int = 8,
        preprocess: AFLocImagePreprocess | None = None,
        max_output_size: int | None = None,
        **overrides: Any,
    ) -> TextPromptLocalizer:
        """
        The localizer a checkpoint was saved for: its network on ``device`` (``None``: CPU) and its inference
        settings (frame size, σ in sentence-grid cells, threshold, keys, max length; see
        :func:`~monai_afloc.checkpoint.load_inference_settings`). A release ``.ckpt`` gives the release's settings.

        Args:
            path: a monai_afloc checkpoint folder or a release ``.ckpt``.
            device: where the network runs.
            text_model_name_or_path: overrides the checkpoint's text model (see ``load_afloc_checkpoint``).
            tokenizer, batch_size, preprocess, max_output_size: as in the constructor.
            overrides: ``image_size``, ``sigma``, ``threshold``, ``region_key``, ``text_key``, ``max_length``;
                explicit values win, ``None`` keeps the checkpoint's; a new ``image_size`` without ``sigma`` rescales
                σ to the new grid (same width in pixels).

        Example::

            >>> loc = TextPromptLocalizer.from_checkpoint("demo_out/models/afloc", threshold=0.3)
            >>> loc.settings.image_size, loc.settings.sigma  # what the demo trained and evaluated at
            (128, 0.631578947368421)
        """
        from monai_afloc.checkpoint import load_afloc_for_inference

        net, settings = load_afloc_for_inference(path, device, text_model_name_or_path, **overrides)
        return cls(net, tokenizer=tokenizer, batch_size=batch_size, preprocess=preprocess,
                   max_output_size=max_output_size, **settings.to_dict())

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    def encode_frames(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``frames [B, 3, S, S]`` -> (region embeddings ``[B, D, h, w]``, report vectors ``[B, D]``), batched."""
        return encode_frames(self.network, frames, self.batch_size, self.region_key)

    def frame_heatmaps(
        self, regions: torch.Tensor, prompt_vectors: torch.Tensor, geometries: Sequence[PreprocessGeometry]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Heatmaps ``[B, K, S, S]`` in [-1, 1] and the valid-pixel masks ``[B, 1, S, S]`` of the frame."""
        sim = similarity_map(regions, prompt_vectors.to(regions.device), sigma=self.sigma)
        maps = upsample_maps(sim, self.image_size)
        valid = valid_frame_masks(geometries, device=maps.device)
        return rescale_to_unit_range(maps, valid), valid

    def __call__(
        self,
        images: Any,
        prompts: str | Sequence[str],
        return_masks: bool = False,
        return_boxes: bool = False,
        threshold: float | None = None,
    ) -> dict[str, Any]:
        prompt_vectors = self.prompt_encoder(prompts)
        prompt_list = [prompts] if isinstance(prompts, str) else list(prompts)
        frames, geometries, names = prepare_images(images, self.preprocess)
        regions, reports = self.encode_frames(frames)
        frame_maps, valid = self.frame_heatmaps(regions, prompt_vectors, geometries)
        outputs = [bounded_output_geometry(g, self.max_output_size) for g in geometries]
        per_image = [frame_to_original(frame_maps[i], g) for i, g in enumerate(outputs)]
        same_size = len({tuple(m.shape) for m in per_image}) == 1
        scores = torch.nn.functional.normalize(reports, dim=1) @ torch.nn.functional.normalize(
            prompt_vectors.to(reports.device), dim=1
        ).T
        K = LocalizerKeys
        out: dict[str, Any] = {
            K.HEATMAPS: torch.stack(per_image) if same_size else per_image,
            K.FRAME_HEATMAPS: frame_maps,
            K.FRAME_VALID: valid,
            K.SCORES: scores,
            K.GEOMETRIES: geometries,
            K.OUTPUT_SIZES: [g.original_size for g in outputs],
            K.PROMPTS: prompt_list,
            K.SOURCES: names,
        }
        t = self.threshold if threshold is None else check_number("threshold", threshold, -1, 1)
        if return_masks:
            masks = [m > t for m in per_image]
            out[K.MASKS] = torch.stack(masks) if same_size else masks
        if return_boxes:
            out[K.BOXES] = [
                [_boxes_to_original(heatmap_to_boxes(m[k], t), o, g) for k in range(m.shape[0])]
                for m, o, g in zip(per_image, outputs, geometries)
            ]
        out[K.THRESHOLD] = t
        return out
