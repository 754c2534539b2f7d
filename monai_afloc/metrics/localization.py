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
Heatmap localization metrics (docs/design.md §5): IoU, Dice, contrast-to-noise ratio (CNR) and the pointing game.

Every metric is computed over the *valid* pixels of a map only. A pixel is valid when the optional ``valid`` map
says so (default: all pixels) and the heatmap value there is not NaN; everything else is ignored, as in the
MS-CXR protocol where the ignored border and the padding are set to NaN. Undefined values (an empty truth, an
empty prediction, an empty outside region) are NaN, never a silent number.

The functional forms (``compute_*``) take one 2D map; the metric classes take batches ``[B, 1, H, W]`` or
``[B, H, W]`` and accumulate per-map values like MONAI's cumulative metrics. All of them share one vectorized
batched implementation (float64).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from monai.metrics.metric import CumulativeIterationMetric

__all__ = [
    "compute_iou",
    "compute_dice",
    "compute_cnr",
    "compute_pointing_game",
    "IoUMetric",
    "HeatmapDiceMetric",
    "CNRMetric",
    "PointingGameMetric",
]

# --------------------------------------------------------------------------------------------------------------------
# input checks (shared with report.py)
# --------------------------------------------------------------------------------------------------------------------


def _to_tensor(x: Any, name: str, device: torch.device | None = None) -> torch.Tensor:
    """``np.ndarray``/``torch.Tensor`` -> detached tensor (no copy when possible); anything else is a TypeError."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
    elif isinstance(x, np.ndarray):
        if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
            raise TypeError(f"{name} must hold numbers or booleans, got a numpy array of dtype {x.dtype}.")
        if x.dtype in (np.uint16, np.uint32, np.uint64):
            x = x.astype(np.int64)
        t = torch.from_numpy(np.ascontiguousarray(x))
    else:
        raise TypeError(f"{name} must be a numpy.ndarray or a torch.Tensor, got {type(x).__name__}.")
    if t.is_complex():
        raise TypeError(f"{name} must be real, got dtype {t.dtype}.")
    return t if device is None else t.to(device)


def _check_heatmap(heatmap: torch.Tensor, name: str = "heatmap") -> torch.Tensor:
    """The heatmap as float64 (a copy unless it already is); NaN is allowed (an invalid pixel), +-inf is not."""
    if heatmap.dtype == torch.bool:
        raise TypeError(f"{name} must be a real-valued map, got dtype torch.bool.")
    if heatmap.shape[-1] == 0 or heatmap.shape[-2] == 0:
        raise ValueError(f"{name} must have at least one pixel, got shape {tuple(heatmap.shape)}.")
    h = heatmap.to(torch.float64)
    if torch.isinf(h).any():
        raise ValueError(f"{name} must not contain +-inf (use NaN to mark invalid pixels), got infinite values.")
    return h


def _check_binary(x: torch.Tensor, name: str) -> torch.Tensor:
    """Bool view of a boolean-like map: dtype bool, or numbers that are all 0 or 1."""
    if x.dtype == torch.bool:
        return x
    if x.is_floating_point() and torch.isnan(x).any():
        raise ValueError(f"{name} must be boolean-like (only 0 and 1), got NaN values.")
    ok = (x == 0) | (x == 1)
    if not bool(ok.all()):
        bad = torch.unique(x[~ok])[:5].tolist()
        raise ValueError(f"{name} must be boolean-like (only 0 and 1), got other values such as {bad}.")
    return x != 0


def _check_threshold(threshold: Any, name: str = "threshold") -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(threshold).__name__}.")
    value = float(threshold)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}.")
    return value


def _nan_encode(h: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Heatmaps with NaN at every invalid pixel (the representation the batched maths below works on)."""
    return h if valid is None else torch.where(valid, h, h.new_tensor(float("nan")))


def _prepare_single(heatmap: Any, mask: Any, valid: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """One 2D map -> batch of one: NaN-encoded heatmap ``[1, H, W]`` float64 and mask ``[1, H, W]`` bool."""
    h = _to_tensor(heatmap, "heatmap")
    if h.ndim != 2:
        raise ValueError(f"heatmap must be a 2D map [H, W], got shape {tuple(h.shape)}.")
    m = _to_tensor(mask, "mask", h.device)
    if tuple(m.shape) != tuple(h.shape):
        raise ValueError(f"mask must have the heatmap's shape {tuple(h.shape)}, got {tuple(m.shape)}.")
    h = _check_heatmap(h)
    m = _check_binary(m, "mask")
    v = None
    if valid is not None:
        v = _to_tensor(valid, "valid", h.device)
        if tuple(v.shape) != tuple(h.shape):
            raise ValueError(f"valid must have the heatmap's shape {tuple(h.shape)}, got {tuple(v.shape)}.")
        v = _check_binary(v, "valid")
    return _nan_encode(h, v)[None], m[None]


def _prepare_batch(y_pred: torch.Tensor, y: Any, valid: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched maps ``[B, 1, H, W]`` or ``[B, H, W]`` -> NaN-encoded ``[B, H, W]`` float64 heatmaps, bool masks."""

    def _squeeze(t: torch.Tensor, name: str) -> torch.Tensor:
        if t.ndim == 4 and t.shape[1] == 1:
            return t[:, 0]
        if t.ndim == 3:
            return t
        raise ValueError(f"{name} must have shape [B, 1, H, W] or [B, H, W], got {tuple(t.shape)}.")

    if y is None:
        raise ValueError("the ground-truth mask y is required, got None.")
    h = _squeeze(_to_tensor(y_pred, "y_pred"), "y_pred")
    m = _squeeze(_to_tensor(y, "y", h.device), "y")
    if tuple(m.shape) != tuple(h.shape):
        raise ValueError(f"y must match y_pred's shape {tuple(h.shape)} (channel dim removed), got {tuple(m.shape)}.")
    h = _check_heatmap(h, "y_pred")
    m = _check_binary(m, "y")
    v = None
    if valid is not None:
        v = _squeeze(_to_tensor(valid, "valid", h.device), "valid")
        if tuple(v.shape) != tuple(h.shape):
            raise ValueError(f"valid must match y_pred's shape {tuple(h.shape)}, got {tuple(v.shape)}.")
        v = _check_binary(v, "valid")
    return _nan_encode(h, v), m


# --------------------------------------------------------------------------------------------------------------------
# batched maths on NaN-encoded heatmaps [B, H, W] float64 (NaN = invalid pixel, no +-inf) and bool masks [B, H, W].
# The work is memory-bound: boolean-mask selects (where / masked_fill) are slow on CPU and every fresh [B, P] float64
# temporary costs page faults, so the maths uses NaN-aware arithmetic, 0/1 float weights and a reused scratch
# buffer; all of it is vectorized over the batch and the pixels.
# --------------------------------------------------------------------------------------------------------------------


def _count(flags: torch.Tensor) -> torch.Tensor:
    """Row-wise number of True in a ``[B, P]`` bool tensor, as float64 (the fast path: a byte view summed as int)."""
    acc = torch.int32 if flags.shape[1] < 2**31 else torch.int64
    return flags.view(torch.uint8).sum(1, dtype=acc).to(torch.float64)


def _valid(heatmaps: torch.Tensor) -> torch.Tensor:
    """Valid pixels ``[B, P]`` (bool) of NaN-encoded heatmaps ``[B, H, W]``."""
    return ~torch.isnan(heatmaps.flatten(1))


def _overlap(
    heatmaps: torch.Tensor, masks: torch.Tensor, valid: torch.Tensor, thresholds: Sequence[float]
) -> tuple[torch.Tensor, torch.Tensor]:
    """IoU and Dice of ``heatmap > t`` against the mask, over valid pixels: two ``[B, T]`` float64 tensors."""
    x = heatmaps.flatten(1)
    truth = masks.flatten(1) & valid
    n_truth = _count(truth)  # [B]
    n_pred, inter = [], []
    for t in thresholds:  # a handful of thresholds; everything else is vectorized over the batch and pixels
        pred = x > t  # NaN (invalid) is never > t
        n_pred.append(_count(pred))
        pred &= truth
        inter.append(_count(pred))
    n_p, n_i = torch.stack(n_pred, dim=1), torch.stack(inter, dim=1)  # [B, T]
    n_t = n_truth[:, None].expand_as(n_p)
    defined = (n_p > 0) & (n_t > 0)
    nan = torch.full_like(n_i, float("nan"))
    iou = torch.where(defined, n_i / (n_p + n_t - n_i).clamp_min(1), nan)
    dice = torch.where(defined, 2 * n_i / (n_p + n_t).clamp_min(1), nan)
    return iou, dice


def _region_stats(
    x: torch.Tensor, w: torch.Tensor, work: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """
    Per-map count, mean and population variance (two-pass) of ``x`` over a region given by 0/1 float weights ``w``
    (``[B, P]``; ``x`` finite everywhere). ``work`` is a ``[B, P]`` scratch buffer (large temporaries are costly).

    A region whose values are all equal gets exactly that value as its mean and exactly 0 as its variance: rows
    whose variance is within round-off of 0 are checked exactly (min == max), so a constant region never leaves
    a tiny positive variance that would blow the CNR up.
    """
    n = w.sum(1)
    safe_n = n.clamp_min(1)
    mean = torch.mul(x, w, out=work).sum(1) / safe_n
    var = torch.sub(x, mean[:, None], out=work).square_().mul_(w).sum(1) / safe_n
    suspect = (n > 0) & (var <= (1e-6 * mean).square())  # round-off of a sum of <= 1e10 values stays far below
    if bool(suspect.any()):
        rows = suspect.nonzero()[:, 0]
        xs, rs = x[rows], w[rows] > 0
        lo = torch.where(rs, xs, float("inf")).amin(1)
        hi = torch.where(rs, xs, float("-inf")).amax(1)
        constant = lo == hi
        mean[rows] = torch.where(constant, hi, mean[rows])
        var[rows] = torch.where(constant, torch.zeros_like(hi), var[rows])
    return n, mean, var


def _cnr(heatmaps: torch.Tensor, masks: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``(mean_in - mean_out) / sqrt(var_in + var_out)`` per map (population variances): ``[B]`` float64."""
    x = torch.nan_to_num(heatmaps.flatten(1), nan=0.0)
    w_valid = valid.to(x.dtype)
    w_in = masks.flatten(1).to(x.dtype).mul_(w_valid)
    work = torch.empty_like(x)
    n_in, mean_in, var_in = _region_stats(x, w_in, work)
    n_out, mean_out, var_out = _region_stats(x, w_valid.sub_(w_in), work)  # exact: 0/1 weights
    defined = (n_in > 0) & (n_out > 0)
    stats = torch.stack([mean_in, mean_out, var_in + var_out])
    if bool((defined & ~torch.isfinite(stats).all(0)).any()):
        raise ValueError("heatmap values are too large for the CNR statistics (float64 overflow); rescale the map.")
    denom = torch.sqrt(var_in + var_out)
    cnr = torch.where(denom > 0, (mean_in - mean_out) / torch.where(denom > 0, denom, 1.0), torch.zeros_like(denom))
    return torch.where(defined, cnr, torch.full_like(cnr, float("nan")))


def _pointing_game(heatmaps: torch.Tensor, masks: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """1.0 when the first (row-major) valid maximum lies in the mask, else 0.0; NaN for an empty truth: ``[B]``."""
    truth = masks.flatten(1) & valid
    x = torch.nan_to_num(heatmaps.flatten(1), nan=float("-inf"))
    idx = torch.argmax(x, dim=1, keepdim=True)  # the first maximal index
    hit = truth.gather(1, idx)[:, 0].to(torch.float64)
    return torch.where(truth.any(1), hit, torch.full_like(hit, float("nan")))


# --------------------------------------------------------------------------------------------------------------------
# functional API: one 2D map
# --------------------------------------------------------------------------------------------------------------------


def compute_iou(heatmap: Any, mask: Any, threshold: float, valid: Any = None) -> float:
    """
    Intersection over union of the prediction ``heatmap > threshold`` and the truth ``mask``, over valid pixels.

    Args:
        heatmap: one map ``[H, W]`` (numpy or torch, any real dtype). NaN pixels are invalid; +-inf is an error.
        mask: the truth ``[H, W]``, boolean-like (bool, or numbers that are all 0 or 1).
        threshold: a pixel is predicted when ``heatmap > threshold`` (strictly).
        valid: optional boolean-like ``[H, W]``; False pixels are ignored. Default: every non-NaN pixel.

    Returns:
        ``|pred ∩ truth| / |pred ∪ truth|`` as a Python float; NaN when the prediction or the truth is empty
        over the valid pixels.

    Raises:
        TypeError: when an input is not a numpy array / torch tensor, or ``threshold`` is not a real number.
        ValueError: when the maps are not 2D or their shapes differ, a mask is not boolean-like, the heatmap has
            infinite values, or ``threshold`` is not finite.

    Example::

        >>> import numpy as np
        >>> heatmap = np.array([[0.9, 0.8], [0.1, 0.0]])
        >>> mask = np.array([[True, False], [False, False]])
        >>> compute_iou(heatmap, mask, threshold=0.5)
        0.5
    """
    t = _check_threshold(threshold)
    h, m = _prepare_single(heatmap, mask, valid)
    return float(_overlap(h, m, _valid(h), [t])[0][0, 0])


def compute_dice(heatmap: Any, mask: Any, threshold: float, valid: Any = None) -> float:
    """
    Dice coefficient of the prediction ``heatmap > threshold`` and the truth ``mask``, over valid pixels.

    Args:
        heatmap: one map ``[H, W]`` (numpy or torch, any real dtype). NaN pixels are invalid; +-inf is an error.
        mask: the truth ``[H, W]``, boolean-like (bool, or numbers that are all 0 or 1).
        threshold: a pixel is predicted when ``heatmap > threshold`` (strictly).
        valid: optional boolean-like ``[H, W]``; False pixels are ignored. Default: every non-NaN pixel.

    Returns:
        ``2 |pred ∩ truth| / (|pred| + |truth|)`` as a Python float; NaN when the prediction or the truth is
        empty over the valid pixels.

    Raises:
        TypeError: when an input is not a numpy array / torch tensor, or ``threshold`` is not a real number.
        ValueError: when the maps are not 2D or their shapes differ, a mask is not boolean-like, the heatmap has
            infinite values, or ``threshold`` is not finite.

    Example::

        >>> import numpy as np
        >>> heatmap = np.array([[0.9, 0.8], [0.1, 0.0]])
        >>> mask = np.array([[True, False], [False, False]])
        >>> round(compute_dice(heatmap, mask, threshold=0.5), 4)
        0.6667
    """
    t = _check_threshold(threshold)
    h, m = _prepare_single(heatmap, mask, valid)
    return float(_overlap(h, m, _valid(h), [t])[1][0, 0])


def compute_cnr(heatmap: Any, mask: Any, valid: Any = None) -> float:
    """
    Contrast-to-noise ratio ``(mean_in - mean_out) / sqrt(var_in + var_out)`` of a heatmap, over valid pixels.

    ``in`` is the truth ``mask``, ``out`` its complement; the variances are *population* variances (``np.var``'s
    default, ``ddof=0``). The sign is kept (no absolute value), as in the AFLoc release: a map that is hotter
    outside the truth has a negative CNR.

    Args:
        heatmap: one map ``[H, W]`` (numpy or torch, any real dtype). NaN pixels are invalid; +-inf is an error.
        mask: the truth ``[H, W]``, boolean-like (bool, or numbers that are all 0 or 1).
        valid: optional boolean-like ``[H, W]``; False pixels are ignored. Default: every non-NaN pixel.

    Returns:
        the CNR as a Python float; 0.0 when both variances are 0 (e.g. a constant heatmap, or one constant
        inside and another constant outside); NaN when the inside or the outside is empty over the valid pixels.

    Raises:
        TypeError: when an input is not a numpy array / torch tensor.
        ValueError: when the maps are not 2D or their shapes differ, a mask is not boolean-like, or the heatmap
            has infinite values.

    Example::

        >>> import numpy as np
        >>> heatmap = np.array([[1.0, 0.8], [0.0, 0.2]])
        >>> mask = np.array([[True, True], [False, False]])
        >>> round(compute_cnr(heatmap, mask), 4)
        5.6569
    """
    h, m = _prepare_single(heatmap, mask, valid)
    return float(_cnr(h, m, _valid(h))[0])


def compute_pointing_game(heatmap: Any, mask: Any, valid: Any = None) -> float:
    """
    Pointing game: 1.0 when the heatmap's maximum over the valid pixels falls inside the truth, else 0.0.

    Ties: the *first* maximal pixel in row-major order decides (``torch.argmax`` semantics). The AFLoc research
    code counts a hit when *any* tied maximum is inside; the two differ only for exactly tied maxima.

    Args:
        heatmap: one map ``[H, W]`` (numpy or torch, any real dtype). NaN pixels are invalid; +-inf is an error.
        mask: the truth ``[H, W]``, boolean-like (bool, or numbers that are all 0 or 1).
        valid: optional boolean-like ``[H, W]``; False pixels are ignored. Default: every non-NaN pixel.

    Returns:
        1.0 or 0.0 as a Python float; NaN when the truth is empty over the valid pixels.

    Raises:
        TypeError: when an input is not a numpy array / torch tensor.
        ValueError: when the maps are not 2D or their shapes differ, a mask is not boolean-like, or the heatmap
            has infinite values.

    Example::

        >>> import numpy as np
        >>> heatmap = np.array([[0.2, 0.9], [0.1, 0.0]])
        >>> compute_pointing_game(heatmap, np.array([[0, 1], [0, 0]]))
        1.0
    """
    h, m = _prepare_single(heatmap, mask, valid)
    return float(_pointing_game(h, m, _valid(h))[0])


# --------------------------------------------------------------------------------------------------------------------
# cumulative metric classes
# --------------------------------------------------------------------------------------------------------------------


class _HeatmapMetric(CumulativeIterationMetric):
    """
    Base of the heatmap metrics: per-map values ``[B, 1]`` are buffered; ``aggregate`` gives their nan-mean.

    Call with batch-first tensors ``y_pred`` (heatmaps ``[B, 1, H, W]`` or ``[B, H, W]``), ``y`` (boolean-like
    masks of the same shape) and optionally ``valid=`` (boolean-like, same shape). Lists of channel-first maps
    ``[1, H, W]`` are accepted without ``valid``.
    """

    def __init__(self, get_not_nans: bool = False) -> None:
        super().__init__()
        if not isinstance(get_not_nans, bool):
            raise TypeError(f"get_not_nans must be a bool, got {type(get_not_nans).__name__}.")
        self.get_not_nans = get_not_nans

    def _per_map(self, heatmaps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"Subclass {self.__class__.__name__} must implement this method.")

    def _compute_tensor(  # type: ignore[override]
        self, y_pred: torch.Tensor, y: torch.Tensor | None = None, valid: Any = None
    ) -> torch.Tensor:
        h, m = _prepare_batch(y_pred, y, valid)
        return self._per_map(h, m)[:, None]

    def aggregate(self) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        """
        Nan-mean of the buffered per-map values (a 0-dim float64 tensor; NaN when no value is defined).

        Returns ``(value, not_nans)`` when ``get_not_nans`` is True, ``not_nans`` being the number of defined
        values. Unlike MONAI's ``do_metric_reduction``, an all-NaN buffer gives NaN, not 0.

        Raises:
            ValueError: when nothing has been accumulated.
        """
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor) or data.numel() == 0:
            raise ValueError(
                f"{self.__class__.__name__} has no accumulated values to aggregate; call it on data first."
            )
        data = data.to(torch.float64)
        defined = ~torch.isnan(data)
        not_nans = defined.sum()
        value = (
            torch.where(defined, data, 0.0).sum() / not_nans if bool(not_nans > 0) else data.new_tensor(float("nan"))
        )
        return (value, not_nans.to(torch.float64)) if self.get_not_nans else value


class _ThresholdMetric(_HeatmapMetric):
    def __init__(self, threshold: float, get_not_nans: bool = False) -> None:
        super().__init__(get_not_nans=get_not_nans)
        self.threshold = _check_threshold(threshold)


class IoUMetric(_ThresholdMetric):
    """
    Cumulative IoU of ``heatmap > threshold`` against boolean masks (see :func:`compute_iou`); nan-mean aggregate.

    Args:
        threshold: a pixel is predicted when ``heatmap > threshold``.
        get_not_nans: when True, ``aggregate`` also returns the number of defined (non-NaN) values.

    Example::

        >>> import torch
        >>> metric = IoUMetric(threshold=0.3)
        >>> heatmaps = torch.rand(4, 1, 32, 32)
        >>> masks = torch.zeros(4, 1, 32, 32, dtype=torch.bool)
        >>> masks[..., 8:20, 8:20] = True
        >>> per_map = metric(heatmaps, masks)  # [4, 1]
        >>> mean_iou = metric.aggregate()  # 0-dim tensor
    """

    def _per_map(self, heatmaps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        return _overlap(heatmaps, masks, _valid(heatmaps), [self.threshold])[0][:, 0]


class HeatmapDiceMetric(_ThresholdMetric):
    """
    Cumulative Dice of ``heatmap > threshold`` against boolean masks (see :func:`compute_dice`); nan-mean
    aggregate. (Named so as not to clash with MONAI's segmentation ``DiceMetric``.)

    Args:
        threshold: a pixel is predicted when ``heatmap > threshold``.
        get_not_nans: when True, ``aggregate`` also returns the number of defined (non-NaN) values.

    Example::

        >>> import torch
        >>> metric = HeatmapDiceMetric(threshold=0.3)
        >>> masks = torch.zeros(2, 16, 16, dtype=torch.bool)
        >>> masks[:, 4:8, 4:8] = True
        >>> _ = metric(masks.double(), masks)  # a perfect prediction
        >>> float(metric.aggregate())
        1.0
    """

    def _per_map(self, heatmaps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        return _overlap(heatmaps, masks, _valid(heatmaps), [self.threshold])[1][:, 0]


class CNRMetric(_HeatmapMetric):
    """
    Cumulative contrast-to-noise ratio of heatmaps against boolean masks (see :func:`compute_cnr`); nan-mean
    aggregate.

    Args:
        get_not_nans: when True, ``aggregate`` also returns the number of defined (non-NaN) values.

    Example::

        >>> import torch
        >>> metric = CNRMetric()
        >>> masks = torch.zeros(2, 1, 16, 16, dtype=torch.bool)
        >>> masks[..., 4:8, 4:8] = True
        >>> _ = metric(torch.rand(2, 1, 16, 16), masks)
        >>> cnr = metric.aggregate()
    """

    def _per_map(self, heatmaps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        return _cnr(heatmaps, masks, _valid(heatmaps))


class PointingGameMetric(_HeatmapMetric):
    """
    Cumulative pointing-game hit rate of heatmaps against boolean masks (see :func:`compute_pointing_game`);
    nan-mean aggregate (maps with an empty truth are left out).

    Args:
        get_not_nans: when True, ``aggregate`` also returns the number of defined (non-NaN) values.

    Example::

        >>> import torch
        >>> metric = PointingGameMetric()
        >>> heatmaps = torch.zeros(1, 1, 8, 8)
        >>> heatmaps[0, 0, 2, 3] = 1.0
        >>> masks = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
        >>> masks[0, 0, 1:4, 1:4] = True
        >>> _ = metric(heatmaps, masks)
        >>> float(metric.aggregate())
        1.0
    """

    def _per_map(self, heatmaps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        return _pointing_game(heatmaps, masks, _valid(heatmaps))
