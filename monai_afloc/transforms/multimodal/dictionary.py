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
Dictionary-based transforms acting on an image and its report together.

Example (a training pipeline: the flip runs on the device, after ``ToDeviced``)::

    from monai.transforms import Compose, ToDeviced
    from monai_afloc.transforms.image import AFLocImagePreprocessd
    from monai_afloc.transforms.multimodal import RandLateralFlipd
    from monai_afloc.transforms.text import JoinSentencesd, ReportToSentencesd

    train_transforms = Compose([
        AFLocImagePreprocessd(keys="image"),
        ToDeviced(keys="image", device="cuda"),
        RandLateralFlipd(image_keys="image", text_keys="report", prob=0.5),
        ReportToSentencesd(keys="report"),
        JoinSentencesd(keys="report"),
    ])
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data.meta_obj import get_track_meta
from monai.transforms import Flip, InvertibleTransform, MapTransform, RandomizableTransform
from monai.utils import TraceKeys, convert_to_tensor, ensure_tuple

from monai_afloc.transforms.text.array import LATERALITY_PAIRS, SwapLaterality
from monai_afloc.utils.validation import check_int, check_number

__all__ = ["RandLateralFlipd", "RandLateralFlipD", "RandLateralFlipDict"]


def _check_keys(name: str, keys: Any) -> tuple[Hashable, ...]:
    keys = ensure_tuple(keys)
    if not keys:
        raise ValueError(f"{name} must name at least one key, got an empty collection.")
    bad = [k for k in keys if k is None or not isinstance(k, Hashable)]
    if bad:
        raise TypeError(f"{name} must be hashable keys (e.g. str), got {bad[0]!r}.")
    return keys


class RandLateralFlipd(RandomizableTransform, MapTransform, InvertibleTransform):
    """
    Laterality-aware random horizontal flip of image–report pairs: with probability ``prob`` every image key is
    flipped along ``spatial_axis`` (:class:`monai.transforms.Flip`) **and** every text key gets its laterality words
    swapped (:class:`monai_afloc.transforms.text.SwapLaterality`, "left" <-> "right"); otherwise both are left as
    they are. One draw per call decides for all the keys together, so an image is never flipped without its report.

    The image flip runs on the tensor's device (CPU or CUDA: put the transform after ``ToDeviced``) and, as MONAI's
    ``Flip``, returns a ``MetaTensor`` when meta tracking is on (the default): its meta data are kept, its affine
    updated and the flip traced, so :meth:`inverse` (and ``Invertd`` / ``Compose.inverse``) undoes it. Not flipped,
    an image is converted to a tensor in the same way, so the output type never depends on the draw.

    Text keys must hold the report before tokenizing: a str, or its sentences as a list/tuple of str (same type
    out). See :class:`~monai_afloc.transforms.text.SwapLaterality` for which words are swapped, and its limits.

    Args:
        image_keys: keys of the channel-first images (``[C, H, W]``; ``[C, H, W, D]`` for 3D), torch tensors,
            MetaTensors or numpy arrays.
        text_keys: keys of the reports (str) or sentence lists (list/tuple of str); must differ from ``image_keys``.
        prob: probability of flipping, in [0, 1].
        spatial_axis: the spatial axis to flip (0 is the first axis after the channel; negative counts from the
            last). Default ``-1``: the last axis, the width ``W`` of a 2D ``[C, H, W]`` image, i.e. a horizontal
            flip. For a 3D volume name the left-right axis of its orientation.
        pairs: the word pairs to swap in the text (default ``(("left", "right"),)``; e.g. add ``("lt", "rt")``).
        allow_missing_keys: don't raise an exception if a key is missing.

    Raises:
        ValueError: when a key set is empty or the two overlap, ``prob`` is outside [0, 1], ``pairs`` is invalid,
            or (in ``__call__``) an image has no spatial axis ``spatial_axis``.
        TypeError: for arguments of the wrong type, or (in ``__call__``) an image that is not a tensor/array or a
            text that is not a str or list/tuple of str.

    Example::

        >>> import torch
        >>> flip = RandLateralFlipd(image_keys="image", text_keys="report", prob=1.0)
        >>> out = flip({"image": torch.arange(6.0).reshape(1, 2, 3), "report": "Left basilar opacity."})
        >>> out["image"][0].tolist(), out["report"]
        ([[2.0, 1.0, 0.0], [5.0, 4.0, 3.0]], 'Right basilar opacity.')
    """

    backend = Flip.backend

    def __init__(
        self,
        image_keys: KeysCollection,
        text_keys: KeysCollection,
        prob: float = 0.5,
        spatial_axis: int = -1,
        pairs: Sequence[tuple[str, str]] = LATERALITY_PAIRS,
        allow_missing_keys: bool = False,
    ) -> None:
        image_keys = _check_keys("image_keys", image_keys)
        text_keys = _check_keys("text_keys", text_keys)
        both = [k for k in image_keys if k in text_keys]
        if both:
            raise ValueError(
                f"a key cannot be both an image and a text key, got {both[0]!r} in image_keys and text_keys."
            )
        MapTransform.__init__(self, image_keys + text_keys, allow_missing_keys)
        RandomizableTransform.__init__(self, check_number("prob", prob, minimum=0.0, maximum=1.0))
        self.image_keys = image_keys
        self.text_keys = text_keys
        self.spatial_axis = check_int("spatial_axis", spatial_axis)
        self.flipper = Flip(spatial_axis=self.spatial_axis)
        self.swapper = SwapLaterality(pairs=pairs)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None) -> RandLateralFlipd:
        super().set_random_state(seed, state)
        return self

    def _check_image(self, key: Hashable, img: Any) -> Any:
        if not isinstance(img, (torch.Tensor, np.ndarray)):
            raise TypeError(
                f"image key {key!r} must hold a channel-first torch.Tensor/MetaTensor or numpy array, "
                f"got {type(img).__name__}."
            )
        num_spatial = img.ndim - 1
        if num_spatial < 1:
            raise ValueError(
                f"image key {key!r} of shape {tuple(img.shape)} has no spatial axis: expected a channel-first image "
                "[C, H, W] (add a channel axis, e.g. with EnsureChannelFirstd)."
            )
        if not -num_spatial <= self.spatial_axis < num_spatial:
            raise ValueError(
                f"spatial_axis={self.spatial_axis} is out of range for image key {key!r} of shape {tuple(img.shape)} "
                f"(channel first: {num_spatial} spatial axes, so spatial_axis in [{-num_spatial}, {num_spatial - 1}])."
            )
        return img

    @staticmethod
    def _check_text(key: Hashable, text: Any) -> Any:
        if isinstance(text, str) or (isinstance(text, (list, tuple)) and all(isinstance(s, str) for s in text)):
            return text
        if isinstance(text, (list, tuple)):
            item = next(s for s in text if not isinstance(s, str))
            detail = f"a {type(text).__name__} holding a {type(item).__name__}"
        else:
            detail = type(text).__name__
        raise TypeError(
            f"text key {key!r} must hold a str or a list/tuple of str (the report before tokenizing), got {detail}."
        )

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """
        Args:
            data: a dict holding the ``image_keys`` (channel-first images) and the ``text_keys`` (reports).

        Returns:
            a new dict: the images flipped and the texts swapped, or both unchanged (images as tensors); other keys
            as they were.
        """
        d = dict(data)
        self.randomize(None)
        for key in self.key_iterator(d):
            if key in self.image_keys:
                img = self._check_image(key, d[key])
                if self._do_transform:
                    d[key] = self.flipper(img)
                else:
                    d[key] = convert_to_tensor(img, track_meta=get_track_meta())
                self.push_transform(d[key], replace=True)
            else:
                text = self._check_text(key, d[key])
                d[key] = self.swapper(text) if self._do_transform else text
        return d

    def inverse(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """
        Undoes the last call: flips the images back (read from their traces) and, if they had been flipped, swaps
        the texts back.

        Raises:
            RuntimeError: when text keys are present but no image key is, so the draw cannot be read.
        """
        d = dict(data)
        flipped: bool | None = None
        for key in self.key_iterator(d):
            if key not in self.image_keys:
                continue
            xform = self.pop_transform(d[key])
            flipped = bool(xform[TraceKeys.DO_TRANSFORM])
            if flipped:
                with self.flipper.trace_transform(False):
                    d[key] = self.flipper(d[key])
        text_keys = [key for key in self.key_iterator(d) if key not in self.image_keys]
        if text_keys and flipped is None:
            raise RuntimeError(
                f"cannot invert the text keys {text_keys}: no image key of {list(self.image_keys)} is present, and the "
                "flip decision is read from an image's trace."
            )
        if flipped:
            for key in text_keys:
                d[key] = self.swapper(self._check_text(key, d[key]))
        return d


RandLateralFlipD = RandLateralFlipDict = RandLateralFlipd
