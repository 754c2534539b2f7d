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
MS-CXR-style localization report over a data set (docs/design.md §5): border, min-max rescale, per-threshold IoU and
Dice, CNR, pointing game, category-then-mean averaging and bootstrap 95% confidence intervals.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from monai.utils import OptionalImportError, optional_import

from .localization import _check_threshold, _cnr, _nan_encode, _overlap, _pointing_game, _to_tensor, _valid

__all__ = ["localization_report", "to_dataframe", "DEFAULT_THRESHOLDS"]

#: the MS-CXR evaluation thresholds on the [-1, 1] rescaled heatmap
DEFAULT_THRESHOLDS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5)

_METRICS = ("iou", "dice", "cnr", "pointing_game")
_CHUNK = 4  # maps per vectorized step: the work is memory-bound; small chunks stay in cache (8+ was slower here)
_BOOT_CHUNK = 256  # bootstrap resamples per vectorized step (fixed: the draws depend on it)


def _as_list(x: Any, name: str) -> list:
    """A sequence of maps (or a stacked ``[N, H, W]`` array/tensor) -> list."""
    if isinstance(x, (np.ndarray, torch.Tensor)):
        if x.ndim != 3:
            raise ValueError(f"{name} as one array must be stacked maps [N, H, W], got shape {tuple(x.shape)}.")
        return list(x)
    if isinstance(x, (str, bytes)) or not isinstance(x, Sequence):
        raise TypeError(f"{name} must be a sequence (list/tuple) of 2D maps, got {type(x).__name__}.")
    return list(x)


def _nanmean(x: np.ndarray, axis: int) -> np.ndarray:
    """``np.nanmean`` without the all-NaN warning (an all-NaN slice gives NaN)."""
    defined = ~np.isnan(x)
    count = defined.sum(axis=axis)
    total = np.where(defined, x, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _rescale_(heatmaps: torch.Tensor, index: np.ndarray) -> torch.Tensor:
    """
    In place: min-max rescale each NaN-encoded map ``[B, H, W]`` to [-1, 1] over its valid (non-NaN) pixels, as
    the AFLoc release does it, ``(x - min) / (max - min) * 2 - 1``. A constant map becomes all zeros; NaN stays.
    ``index`` (case numbers of the rows) only names the culprit in errors.
    """
    x = heatmaps.flatten(1)
    work = torch.nan_to_num(x, nan=float("inf"))
    lo = work.amin(1, keepdim=True)
    hi = torch.nan_to_num(x, nan=float("-inf"), out=work).amax(1, keepdim=True)
    span = hi - lo
    overflow = torch.isinf(span) & (span > 0)
    if bool(overflow.any()):
        bad = int(index[int(overflow[:, 0].nonzero()[0])])
        raise ValueError(f"heatmaps[{bad}] values span more than the float64 range (max - min overflows); rescale it.")
    ok = torch.isfinite(span) & (span > 0)  # no valid pixel: span = -inf; constant: span = 0
    x.sub_(torch.where(ok, lo, 0.0)).div_(torch.where(ok, span, 1.0)).mul_(2).sub_(1)
    if not bool(ok.all()):
        rows = (~ok[:, 0]).nonzero()[:, 0]
        x[rows] = x[rows] * 0.0  # 0 on valid pixels, NaN stays NaN
    return heatmaps


def _stack_binary(maps: list, index: np.ndarray, name: str) -> torch.Tensor:
    """Stack boolean-like maps of one shape into a bool tensor; a map with values other than 0/1 is a ValueError."""
    ts = [_to_tensor(x, f"{name}[{i}]").cpu() for x, i in zip(maps, index)]
    if all(t.dtype == torch.bool for t in ts):
        return torch.stack(ts)
    stacked = torch.stack([t.to(torch.float64) for t in ts])
    bad = ~((stacked == 0) | (stacked == 1))  # NaN counts as bad
    if bad.any():
        i = int(index[int(bad.flatten(1).any(1).nonzero()[0])])
        raise ValueError(f"{name}[{i}] must be boolean-like (only 0 and 1), got other values.")
    return stacked != 0


def _case_metrics(
    heatmaps: list, masks: list, valid: list | None, index: np.ndarray, thresholds: Sequence[float], border: int
) -> np.ndarray:
    """Per-case values ``[len(index), 2T + 2]`` (IoU per threshold, Dice per threshold, CNR, pointing game)."""
    first = _to_tensor(heatmaps[index[0]], "heatmaps")
    h = torch.empty((len(index), *first.shape), dtype=torch.float64)
    for j, i in enumerate(index):  # one conversion copy per map; the maths below is vectorized over the chunk
        hi = _to_tensor(heatmaps[i], f"heatmaps[{i}]")
        if hi.dtype == torch.bool:
            raise TypeError(f"heatmaps[{i}] must be a real-valued map, got dtype torch.bool.")
        h[j].copy_(hi)
    suspect = ~torch.isfinite(h.flatten(1).nansum(1))  # cheap filter: an infinite value makes its row's nansum so
    if bool(suspect.any()) and bool(torch.isinf(h[suspect]).any()):
        rows = index[suspect.nonzero()[:, 0].numpy()]
        bad = int(rows[int(torch.isinf(h[suspect]).flatten(1).any(1).nonzero()[0])])
        raise ValueError(f"heatmaps[{bad}] must not contain +-inf (use NaN for invalid pixels), got infinite values.")
    m = _stack_binary([masks[i] for i in index], index, "masks")
    if valid is not None:
        vs = [valid[i] if valid[i] is not None else torch.ones(h.shape[1:], dtype=torch.bool) for i in index]
        for i, vi in zip(index, vs):
            shape = tuple(_to_tensor(vi, f"valid[{i}]").shape)
            if shape != tuple(h.shape[1:]):
                raise ValueError(f"valid[{i}] must have shape {tuple(h.shape[1:])}, got {shape}.")
        h = _nan_encode(h, _stack_binary(vs, index, "valid"))
    if border > 0:  # the ignored border is NaN, as in the reference evaluation
        h[:, :border] = float("nan")
        h[:, -border:] = float("nan")
        h[:, :, :border] = float("nan")
        h[:, :, -border:] = float("nan")
    scaled = _rescale_(h, index)
    valid_px = _valid(scaled)
    iou, dice = _overlap(scaled, m, valid_px, thresholds)
    cnr = _cnr(scaled, m, valid_px)
    pg = _pointing_game(scaled, m, valid_px)
    return torch.cat([iou, dice, cnr[:, None], pg[:, None]], dim=1).numpy()


def _category_means(values: np.ndarray, onehot: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """
    Nan-means per category for each row of case multiplicities.

    Args:
        values: per-case values ``[N, M]`` (NaN = undefined, skipped).
        onehot: category membership ``[N, K]`` (0/1 float).
        weights: case multiplicities ``[R, N]`` (ones for the point estimate, counts for bootstrap resamples).

    Returns:
        ``[R, K, M]``; NaN where a category has no defined value in a resample.
    """
    n, m = values.shape
    k = onehot.shape[1]
    defined = ~np.isnan(values)
    filled = np.where(defined, values, 0.0)
    num = weights @ (onehot[:, :, None] * filled[:, None, :]).reshape(n, k * m)
    den = weights @ (onehot[:, :, None] * defined[:, None, :]).reshape(n, k * m)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(den > 0, num / np.maximum(den, 1e-300), np.nan)
    return means.reshape(-1, k, m)


def _summary(cat_means: np.ndarray, n_thresholds: int) -> dict[str, np.ndarray]:
    """``[R, K, 2T + 2]`` category means -> overall statistics ``[R]`` (and ``[R, T]`` per threshold)."""
    t = n_thresholds
    over_cat = _nanmean(cat_means, axis=1)  # [R, M]: nan-mean over categories
    return {
        "iou_t": over_cat[:, :t],
        "dice_t": over_cat[:, t : 2 * t],
        "iou": over_cat[:, :t].mean(axis=1),  # plain mean over thresholds, as the reference
        "dice": over_cat[:, t : 2 * t].mean(axis=1),
        "cnr": over_cat[:, 2 * t],
        "pointing_game": over_cat[:, 2 * t + 1],
    }


def localization_report(
    heatmaps: Sequence[Any] | np.ndarray | torch.Tensor,
    masks: Sequence[Any] | np.ndarray | torch.Tensor,
    categories: Sequence[str],
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    border: int = 14,
    n_bootstrap: int = 1000,
    seed: int | None = 0,
    valid: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """
    Localization report over a data set, following the MS-CXR protocol of the AFLoc release (docs/design.md §5).

    For each case ``i``:

    1. the valid pixels are those of ``valid[i]`` (default: all) that are not NaN in ``heatmaps[i]`` and not
       within ``border`` pixels of the map's edge;
    2. the raw heatmap is min-max rescaled to ``[-1, 1]`` over its valid pixels, as
       ``(x - min) / (max - min) * 2 - 1``; a constant map (``max == min``) becomes all zeros (then no pixel
       exceeds a positive threshold, so IoU/Dice are NaN, and CNR is 0);
    3. for each threshold ``t``: IoU and Dice of ``heatmap > t`` against the mask (NaN when the prediction or the
       truth is empty); CNR (population variances; 0 when both are 0; NaN when inside or outside is empty);
       pointing game (first row-major maximum; NaN for an empty truth).

    Aggregation: nan-mean per category, then nan-mean over categories (categories whose values are all NaN are
    skipped), then a plain mean over thresholds (NaN when a threshold is undefined for every category), as in the
    AFLoc release. ``per_category`` values are nan-means over thresholds of that category's per-threshold means.

    Confidence intervals: ``n_bootstrap`` resamples of the cases, with replacement, from the whole set (so category
    sizes vary); each resample recomputes the same category-then-mean statistic; ``ci95`` holds the 2.5th and
    97.5th percentiles (resamples where the statistic is undefined are skipped). Vectorized with numpy and
    deterministic for a given ``seed``.

    Args:
        heatmaps: ``N`` raw 2D maps (any scale; numpy or torch), or one stacked ``[N, H, W]`` array. Maps in the
            224 input frame, as the masks; any ``H x W`` works, maps may differ in size between cases.
        masks: ``N`` boolean-like masks (bool, or numbers all 0/1), each of its heatmap's shape.
        categories: ``N`` category names (str), one per case.
        thresholds: thresholds on the rescaled heatmap; default ``(0.1, 0.2, 0.3, 0.4, 0.5)``.
        border: pixels ignored along each edge (14 in the 224 frame for MS-CXR); 0 disables it.
        n_bootstrap: number of bootstrap resamples; 0 skips the intervals (they are then ``[nan, nan]``).
        seed: seed of ``numpy.random.default_rng`` for the resamples.
        valid: optional ``N`` boolean-like maps (or ``None`` entries) marking the pixels to evaluate, e.g. to
            exclude the padding of an image padded into the square frame.

    Returns:
        A JSON-serialisable dict of Python floats/ints/strs::

            {
                "mean": {"iou", "dice", "cnr", "pointing_game"},
                "ci95": {"iou": [lo, hi], "dice": [...], "cnr": [...], "pointing_game": [...]},
                "per_threshold": {"0.1": {"iou", "dice"}, ...},
                "per_category": {name: {"iou", "dice", "cnr", "pointing_game", "n"}, ...},
                "n": N, "thresholds": [...], "border": border, "n_bootstrap": n_bootstrap, "seed": seed,
            }

        Undefined values are ``float("nan")`` (``json.dumps`` writes them as ``NaN``).

    Raises:
        TypeError: when an argument has the wrong type (e.g. a single string for ``categories``).
        ValueError: when the lengths differ, a map is not 2D, a mask or valid map does not match its heatmap's
            shape or is not boolean-like, a heatmap has +-inf values, the border leaves no pixel, or a
            threshold is not finite or repeated.

    Example::

        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> heatmaps = [rng.normal(size=(224, 224)) for _ in range(4)]
        >>> masks = [np.zeros((224, 224), bool) for _ in range(4)]
        >>> for m in masks:
        ...     m[60:120, 50:140] = True
        >>> report = localization_report(heatmaps, masks, ["Pneumonia", "Pneumonia", "Edema", "Edema"], n_bootstrap=100)
        >>> sorted(report["mean"])
        ['cnr', 'dice', 'iou', 'pointing_game']
    """
    maps = _as_list(heatmaps, "heatmaps")
    truths = _as_list(masks, "masks")
    if isinstance(categories, (str, bytes)) or not isinstance(categories, Sequence):
        raise TypeError(f"categories must be a sequence of str (one per case), got {type(categories).__name__}.")
    cats = list(categories)
    n = len(maps)
    if n == 0:
        raise ValueError("heatmaps must hold at least one map, got an empty sequence.")
    if len(truths) != n or len(cats) != n:
        raise ValueError(
            f"heatmaps, masks and categories must have the same length, got {n}, {len(truths)} and {len(cats)}."
        )
    non_str = [type(c).__name__ for c in cats if not isinstance(c, str)]
    if non_str:
        raise TypeError(f"categories must be str, got {non_str[0]} among them.")
    valid_list: list | None = None
    if valid is not None:
        valid_list = _as_list(valid, "valid")
        if len(valid_list) != n:
            raise ValueError(f"valid must hold one entry per case ({n}), got {len(valid_list)}.")
    if isinstance(thresholds, (str, bytes)) or not isinstance(thresholds, (Sequence, np.ndarray)):
        raise TypeError(f"thresholds must be a sequence of numbers, got {type(thresholds).__name__}.")
    ts = [_check_threshold(t, "thresholds[]") for t in thresholds]
    if not ts:
        raise ValueError("thresholds must hold at least one value, got an empty sequence.")
    keys = [f"{t:g}" for t in ts]
    if len(set(keys)) != len(keys):
        raise ValueError(f"thresholds must be distinct, got {ts}.")
    for name, value in (("border", border), ("n_bootstrap", n_bootstrap)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}.")
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}.")
    border, n_bootstrap = int(border), int(n_bootstrap)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__}.")

    # shapes (per-case checks only; the maths below is vectorized per group of equally sized maps)
    shapes = []
    for i in range(n):
        h_shape = tuple(_to_tensor(maps[i], f"heatmaps[{i}]").shape)
        m_shape = tuple(_to_tensor(truths[i], f"masks[{i}]").shape)
        if len(h_shape) != 2:
            raise ValueError(f"heatmaps[{i}] must be a 2D map [H, W], got shape {h_shape}.")
        if m_shape != h_shape:
            raise ValueError(f"masks[{i}] must have the shape of heatmaps[{i}] {h_shape}, got {m_shape}.")
        if 2 * border >= min(h_shape):
            raise ValueError(f"border={border} leaves no pixel of heatmaps[{i}] with shape {h_shape}.")
        shapes.append(h_shape)

    n_t = len(ts)
    values = np.empty((n, 2 * n_t + 2), dtype=np.float64)
    shape_ids = {s: j for j, s in enumerate(dict.fromkeys(shapes))}
    shape_of = np.array([shape_ids[s] for s in shapes])
    for j in range(len(shape_ids)):
        group = np.flatnonzero(shape_of == j)
        for start in range(0, len(group), _CHUNK):
            index = group[start : start + _CHUNK]
            values[index] = _case_metrics(maps, truths, valid_list, index, ts, border)

    names = list(dict.fromkeys(cats))
    lookup = {c: k for k, c in enumerate(names)}
    cat_index = np.array([lookup[c] for c in cats])
    onehot = np.zeros((n, len(names)), dtype=np.float64)
    onehot[np.arange(n), cat_index] = 1.0

    cat_means = _category_means(values, onehot, np.ones((1, n)))  # [1, K, M]
    point = _summary(cat_means, n_t)

    ci = {key: [float("nan"), float("nan")] for key in _METRICS}
    if n_bootstrap > 0:
        rng = np.random.default_rng(seed)
        stats: dict[str, list[np.ndarray]] = {key: [] for key in _METRICS}
        for start in range(0, n_bootstrap, _BOOT_CHUNK):
            r = min(_BOOT_CHUNK, n_bootstrap - start)
            draws = rng.integers(0, n, size=(r, n))
            weights = np.bincount((draws + n * np.arange(r)[:, None]).ravel(), minlength=r * n).reshape(r, n)
            boot = _summary(_category_means(values, onehot, weights.astype(np.float64)), n_t)
            for key in _METRICS:
                stats[key].append(boot[key])
        for key in _METRICS:
            s = np.concatenate(stats[key])
            s = s[~np.isnan(s)]
            if s.size:
                lo, hi = np.percentile(s, [2.5, 97.5])
                ci[key] = [float(lo), float(hi)]

    per_category = {}
    for k, name in enumerate(names):
        row = cat_means[0, k]
        per_category[name] = {
            "iou": float(_nanmean(row[:n_t], axis=0)),
            "dice": float(_nanmean(row[n_t : 2 * n_t], axis=0)),
            "cnr": float(row[2 * n_t]),
            "pointing_game": float(row[2 * n_t + 1]),
            "n": int(onehot[:, k].sum()),
        }
    return {
        "mean": {key: float(point[key][0]) for key in _METRICS},
        "ci95": ci,
        "per_threshold": {
            key: {"iou": float(point["iou_t"][0, j]), "dice": float(point["dice_t"][0, j])}
            for j, key in enumerate(keys)
        },
        "per_category": per_category,
        "n": n,
        "thresholds": ts,
        "border": border,
        "n_bootstrap": n_bootstrap,
        "seed": None if seed is None else int(seed),
    }


def to_dataframe(report: dict[str, Any]) -> Any:
    """
    A ``pandas.DataFrame`` view of a :func:`localization_report`: one row per category plus a ``"mean"`` row;
    columns ``iou``, ``dice``, ``cnr``, ``pointing_game``, ``n`` (and ``*_ci_lo`` / ``*_ci_hi`` on the mean row).

    Needs pandas (an optional dependency).

    Raises:
        OptionalImportError: when pandas is not installed.
        ValueError: when ``report`` lacks the keys :func:`localization_report` writes, or has a category named
            ``"mean"``.
    """
    pd, has_pandas = optional_import("pandas")  # imported here: a module-level stub trips up introspection
    if not has_pandas:
        raise OptionalImportError("to_dataframe needs pandas; install it with `pip install pandas`.")
    if not isinstance(report, dict) or not all(k in report for k in ("mean", "per_category", "ci95", "n")):
        raise ValueError("report must be the dict returned by localization_report (keys mean, per_category, ci95, n).")
    if "mean" in report["per_category"]:
        raise ValueError('a category named "mean" would clash with the summary row; rename that category.')
    rows = {name: dict(vals) for name, vals in report["per_category"].items()}
    mean_row: dict[str, Any] = dict(report["mean"], n=report["n"])
    for key, (lo, hi) in report["ci95"].items():
        mean_row[f"{key}_ci_lo"], mean_row[f"{key}_ci_hi"] = lo, hi
    rows["mean"] = mean_row
    return pd.DataFrame.from_dict(rows, orient="index")
