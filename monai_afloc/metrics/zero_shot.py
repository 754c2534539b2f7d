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

"""Zero-shot multi-label classification metrics: per-finding AUROC and best-threshold F1, with macro means."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from monai.metrics import compute_roc_auc
from monai.metrics.metric import CumulativeIterationMetric

from .localization import _check_binary, _to_tensor

__all__ = ["compute_zero_shot_metrics", "ZeroShotMetric"]


def _check_names(finding_names: Any, n_findings: int | None = None) -> list[str]:
    if isinstance(finding_names, (str, bytes)) or not isinstance(finding_names, Sequence):
        raise TypeError(f"finding_names must be a sequence of str, got {type(finding_names).__name__}.")
    names = list(finding_names)
    if not names:
        raise ValueError("finding_names must hold at least one name, got an empty sequence.")
    if not all(isinstance(x, str) for x in names):
        raise TypeError(f"finding_names must all be str, got {[type(x).__name__ for x in names]}.")
    if len(set(names)) != len(names):
        raise ValueError(f"finding_names must be distinct, got {names}.")
    if n_findings is not None and len(names) != n_findings:
        raise ValueError(f"finding_names must name the {n_findings} score columns, got {len(names)} names.")
    return names


def _best_f1(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """
    Best F1 over all thresholds, per column, vectorized: ``scores``/``labels`` ``[N, F]`` -> F1 and threshold ``[F]``.

    A sample is predicted positive when ``score >= threshold``; the candidate thresholds are the distinct scores.
    Among equally good thresholds the highest is returned.
    """
    n = scores.shape[0]
    order = np.argsort(-scores, axis=0, kind="stable")
    s_sorted = np.take_along_axis(scores, order, axis=0)
    tp = np.cumsum(np.take_along_axis(labels, order, axis=0), axis=0)  # true positives among the top k+1
    predicted = np.arange(1, n + 1, dtype=np.float64)[:, None]
    positives = labels.sum(axis=0, keepdims=True)
    f1 = 2.0 * tp / (predicted + positives)
    last_of_tie = np.ones_like(s_sorted, dtype=bool)
    last_of_tie[:-1] = s_sorted[:-1] != s_sorted[1:]  # a threshold keeps every sample tied with it
    f1 = np.where(last_of_tie, f1, -np.inf)
    best = np.argmax(f1, axis=0)
    cols = np.arange(scores.shape[1])
    return f1[best, cols], s_sorted[best, cols]


def compute_zero_shot_metrics(scores: Any, labels: Any, finding_names: Sequence[str]) -> dict[str, Any]:
    """
    Per-finding AUROC (MONAI's :func:`~monai.metrics.compute_roc_auc`) and F1 at the best threshold, with macro
    means, for zero-shot multi-label classification.

    F1 is maximised over every threshold (a sample is positive when ``score >= threshold``, the candidates being
    the distinct scores of that finding; ties between thresholds go to the highest); this is an optimistic,
    in-sample figure, as in the usual zero-shot CXR reports. A finding whose labels hold one class only has
    ``auroc`` and ``f1`` NaN and is left out of the macro means; ``n_pos``/``n_neg`` are always recorded.

    Args:
        scores: ``[N, F]`` finite real scores (numpy or torch), e.g. prompt similarities or probabilities.
        labels: ``[N, F]`` boolean-like labels (bool, or numbers all 0/1); map uncertain labels beforehand.
        finding_names: ``F`` distinct names, one per column.

    Returns:
        A JSON-serialisable dict::

            {
                "per_finding": {name: {"auroc", "f1", "threshold", "n_pos", "n_neg"}, ...},
                "mean": {"auroc", "f1"},   # macro means over the findings with both classes
                "n_findings": number of findings in the means,
            }

    Raises:
        TypeError: when an input has the wrong type.
        ValueError: when the shapes differ or are not ``[N, F]`` with ``N >= 1``, a score is NaN or infinite, a
            label is not 0/1, or the names do not match the columns.

    Example::

        >>> import numpy as np
        >>> scores = np.array([[0.9, 0.2], [0.8, 0.7], [0.1, 0.6], [0.3, 0.1]])
        >>> labels = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
        >>> out = compute_zero_shot_metrics(scores, labels, ["Edema", "Pneumonia"])
        >>> out["mean"]["auroc"], out["per_finding"]["Edema"]["f1"]
        (1.0, 1.0)
    """
    s = _to_tensor(scores, "scores").cpu()
    y = _to_tensor(labels, "labels").cpu()
    if s.ndim != 2 or s.shape[0] < 1:
        raise ValueError(f"scores must have shape [N, F] with N >= 1, got {tuple(s.shape)}.")
    if tuple(y.shape) != tuple(s.shape):
        raise ValueError(f"labels must have the shape of scores {tuple(s.shape)}, got {tuple(y.shape)}.")
    if s.dtype == torch.bool:
        raise TypeError("scores must be real-valued, got dtype torch.bool.")
    s = s.to(torch.float64)
    if not bool(torch.isfinite(s).all()):
        raise ValueError("scores must be finite, got NaN or infinite values.")
    y = _check_binary(y, "labels").to(torch.float64)
    names = _check_names(finding_names, s.shape[1])

    n_pos = y.sum(dim=0)
    n_neg = y.shape[0] - n_pos
    both = (n_pos > 0) & (n_neg > 0)
    f1, thr = _best_f1(s.numpy(), y.numpy())
    per_finding: dict[str, dict[str, Any]] = {}
    aurocs, f1s = [], []
    for j, name in enumerate(names):  # F findings (a handful); AUROC per column, as MONAI computes it
        if bool(both[j]):
            auc = float(compute_roc_auc(s[:, j], y[:, j]))
            best = float(f1[j])
            aurocs.append(auc)
            f1s.append(best)
            threshold = float(thr[j])
        else:
            auc = best = threshold = float("nan")
        per_finding[name] = {
            "auroc": auc,
            "f1": best,
            "threshold": threshold,
            "n_pos": int(n_pos[j]),
            "n_neg": int(n_neg[j]),
        }
    return {
        "per_finding": per_finding,
        "mean": {
            "auroc": float(np.mean(aurocs)) if aurocs else float("nan"),
            "f1": float(np.mean(f1s)) if f1s else float("nan"),
        },
        "n_findings": len(aurocs),
    }


class ZeroShotMetric(CumulativeIterationMetric):
    """
    Cumulative zero-shot classification metric: buffers ``[B, F]`` scores and labels, and ``aggregate`` returns
    :func:`compute_zero_shot_metrics` over everything seen.

    Args:
        finding_names: ``F`` distinct names, one per score column.

    Example::

        >>> import torch
        >>> metric = ZeroShotMetric(["Edema", "Pneumonia"])
        >>> _ = metric(torch.tensor([[0.9, 0.2], [0.1, 0.7]]), torch.tensor([[1, 0], [0, 1]]))
        >>> _ = metric(torch.tensor([[0.8, 0.1]]), torch.tensor([[1, 1]]))
        >>> round(metric.aggregate()["mean"]["auroc"], 3)
        0.75
    """

    def __init__(self, finding_names: Sequence[str]) -> None:
        super().__init__()
        self.finding_names = _check_names(finding_names)

    def _compute_tensor(  # type: ignore[override]
        self, y_pred: torch.Tensor, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        f = len(self.finding_names)
        if y is None:
            raise ValueError("labels y are required, got None.")
        if y_pred.ndim != 2 or y_pred.shape[1] != f:
            raise ValueError(f"y_pred must have shape [B, {f}] (one column per finding), got {tuple(y_pred.shape)}.")
        if tuple(y.shape) != tuple(y_pred.shape):
            raise ValueError(f"y must have the shape of y_pred {tuple(y_pred.shape)}, got {tuple(y.shape)}.")
        return y_pred.to(torch.float64), _check_binary(y, "y").to(torch.float64)

    def aggregate(self) -> dict[str, Any]:  # type: ignore[override]
        """:func:`compute_zero_shot_metrics` over the buffered scores and labels.

        Raises:
            ValueError: when nothing has been accumulated.
        """
        buffers = self.get_buffer()
        if not isinstance(buffers, (list, tuple)) or not all(isinstance(b, torch.Tensor) for b in buffers):
            raise ValueError("ZeroShotMetric has no accumulated values to aggregate; call it on data first.")
        scores, labels = buffers
        return compute_zero_shot_metrics(scores, labels, self.finding_names)
