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
Model selection on localization instead of the validation loss (which does not follow the heatmaps' quality):
:class:`LocalizationValidationHandler` scores the current network's heatmaps on a small annotated validation split
at each validation, writes the metrics into the evaluator's ``state.metrics`` (where a best-model saver reads them)
and logs heatmap overlays to TensorBoard.

The scoring is the demo's evaluation (:func:`monai_afloc.apps.evaluation.evaluate_localization`, AFLoc maps only,
no controls, no bootstrap). It lives in ``apps`` (it reads annotation files and builds the controls), so it is
imported inside the methods that use it, never when this module is imported.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from monai.utils import optional_import

from monai_afloc.engines.handlers import unwrap_network
from monai_afloc.inference_settings import grid_scaled_sigma
from monai_afloc.utils.validation import check_bool, check_int, check_number

Events, _ = optional_import("ignite.engine", name="Events")
SummaryWriter, _has_tensorboard = optional_import("torch.utils.tensorboard", name="SummaryWriter")

__all__ = [
    "LOCALIZATION_METRICS",
    "CNR_CLIP",
    "localization_key_metric",
    "heatmap_overlay",
    "LocalizationValidationHandler",
    "FollowTrainer",
]

#: the metrics of :func:`~monai_afloc.metrics.localization_report` the handler can write (means over categories)
LOCALIZATION_METRICS = ("pointing_game", "cnr", "iou", "dice")
#: the CNR is clipped to ``[-CNR_CLIP, CNR_CLIP]`` in the key metric, so that it never outweighs the pointing game
CNR_CLIP = 1.0


def localization_key_metric(pointing_game: float, cnr: float, cnr_weight: float = 0.1) -> float:
    """
    The one number that selects the best model: ``pointing_game + cnr_weight * clip(cnr, -1, 1)``.

    The pointing game is the headline metric (the README's ladder ranks by it), but on a small validation split it
    moves in steps of ``1 / n`` and ties often; the CNR is continuous: it breaks those ties and rewards contrast while
    the pointing game stalls. Clipped to ``[-1, 1]`` (:data:`CNR_CLIP`) and weighted by 0.1 it adds at most ±0.1, so
    a pointing-game lead of more than 0.2 always wins. A NaN CNR (no pixel inside or outside a mask) adds nothing; a
    NaN pointing game gives NaN (a best-model saver then skips the epoch). ``cnr_weight=0`` selects on the pointing
    game alone.

    Example::

        >>> localization_key_metric(0.25, 0.6)
        0.31
        >>> localization_key_metric(0.25, 3.0)  # the CNR is clipped to 1
        0.35
    """
    cnr_weight = check_number("cnr_weight", cnr_weight, minimum=0)
    pointing_game, cnr = float(pointing_game), float(cnr)
    if not math.isfinite(cnr):
        return pointing_game
    return round(pointing_game + cnr_weight * min(max(cnr, -CNR_CLIP), CNR_CLIP), 12)


def _jet(x: torch.Tensor) -> torch.Tensor:
    """``[H, W]`` values in [0, 1] -> ``[3, H, W]`` colours of the "jet" colormap (blue -> cyan -> yellow -> red)."""
    return torch.stack([(1.5 - (4 * x - c).abs()).clamp(0, 1) for c in (3.0, 2.0, 1.0)])


def heatmap_overlay(
    frame: torch.Tensor,
    heatmap: torch.Tensor,
    mask: Any = None,
    valid: torch.Tensor | None = None,
    alpha: float = 0.4,
) -> torch.Tensor:
    """
    An RGB picture of a heatmap over its image, for TensorBoard (``add_image``, ``CHW``); no matplotlib needed.

    The frame is shown in gray (``(frame + 1) / 2``: the ``[-1, 1]`` range of :class:`AFLocImagePreprocess`), the
    heatmap min-max rescaled over the valid pixels and coloured with the "jet" colormap, blended with weight
    ``alpha`` on the valid pixels (the padding stays gray), and the outline of ``mask`` drawn in green.

    Args:
        frame: the network input ``[H, W]`` or ``[C, H, W]`` (the first channel is shown), values in [-1, 1].
        heatmap: ``[H, W]`` (any scale).
        mask: optional ground truth ``[H, W]`` (bool-like; numpy or torch).
        valid: optional ``[H, W]`` bool map of the real image pixels (not the padding).
        alpha: weight of the colour, in [0, 1].

    Returns:
        a float32 ``[3, H, W]`` tensor with values in [0, 1], on the CPU.

    Raises:
        ValueError: shapes that do not match or a bad ``alpha``.

    Example::

        >>> img = heatmap_overlay(torch.zeros(3, 64, 64), torch.rand(64, 64))
        >>> img.shape, img.dtype
        (torch.Size([3, 64, 64]), torch.float32)
    """
    alpha = check_number("alpha", alpha, minimum=0, maximum=1)
    frame = torch.as_tensor(frame).detach().float().cpu()
    if frame.ndim == 3:
        frame = frame[0]
    heatmap = torch.as_tensor(heatmap).detach().float().cpu()
    if frame.ndim != 2 or heatmap.shape != frame.shape:
        raise ValueError(
            f"frame must be [H, W] or [C, H, W] and heatmap [H, W] of the same size, got {tuple(frame.shape)} and "
            f"{tuple(heatmap.shape)}."
        )
    shape = tuple(frame.shape)
    valid_t = torch.ones(shape, dtype=torch.bool) if valid is None else torch.as_tensor(valid).cpu().bool()
    if tuple(valid_t.shape) != shape:
        raise ValueError(f"valid must be {list(shape)}, got {list(valid_t.shape)}.")
    gray = ((frame + 1) / 2).clamp(0, 1).expand(3, *shape)
    finite = valid_t & torch.isfinite(heatmap)
    if bool(finite.any()):
        lo, hi = heatmap[finite].min(), heatmap[finite].max()
        level = ((heatmap - lo) / (hi - lo)).clamp(0, 1) if hi > lo else torch.zeros_like(heatmap)
    else:
        level = torch.zeros_like(heatmap)
    out = torch.where(finite, (1 - alpha) * gray + alpha * _jet(level), gray)
    if mask is not None:
        truth = torch.as_tensor(mask).cpu().bool()
        if tuple(truth.shape) != shape:
            raise ValueError(f"mask must be {list(shape)}, got {list(truth.shape)}.")
        inner = -F.max_pool2d(-truth[None, None].float(), 3, stride=1, padding=1)[0, 0] > 0.5  # 3x3 erosion
        edge = truth & ~inner
        out = torch.where(edge, torch.tensor([0.0, 1.0, 0.0])[:, None, None], out)
    return out.contiguous()


def _check_items(items: Any, prompt_key: str) -> list[Mapping[str, Any]]:
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence) or len(items) == 0:
        raise ValueError(
            "annotations must be an annotation JSON path or a non-empty sequence of annotated items, got "
            f"{type(items).__name__}{' (empty)' if isinstance(items, Sequence) and len(items) == 0 else ''}."
        )
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise TypeError(f"annotations[{i}] must be a mapping (an annotated item), got {type(item).__name__}.")
        missing = [k for k in ("image", "category", prompt_key) if k not in item]
        if "mask" not in item and "boxes" not in item:
            missing.append("mask or boxes")
        if missing:
            raise ValueError(f"annotations[{i}] lacks {missing}; it has {sorted(map(str, item))}.")
    return list(items)


class LocalizationValidationHandler:
    """
    Score the network's heatmaps on annotated validation items at each validation and put the result where a
    best-model saver reads it: ``engine.state.metrics[prefix + name]`` for each of ``metric_names`` (e.g.
    ``"val_pointing_game"``, ``"val_cnr"``) and the key metric ``prefix + "localization"`` (``"val_localization"``,
    :func:`localization_key_metric`: pointing game + 0.1 · CNR clipped to [-1, 1]; higher is better).

    Attach it to the evaluator, *before* the best-model saver (e.g. first in ``val_handlers``): Ignite calls the
    handlers of one event in the order they were attached, so the saver then reads this epoch's value. At the
    evaluator's ``EPOCH_COMPLETED`` the network is put in eval mode, the items are scored under ``torch.no_grad()``
    exactly as the demo evaluates (:func:`~monai_afloc.apps.evaluation.evaluate_localization` with ``priors=None,
    shuffled=False, n_bootstrap=0``: the same heatmaps, masks, frame, border and category-then-mean averaging), and
    every module's train/eval mode is restored afterwards.

    TensorBoard (with ``summary_writer`` or ``log_dir``): the metrics as scalars ``localization/<key>`` and, for the
    first ``n_images`` items, the frame with its heatmap overlaid and the truth outlined in green
    (:func:`heatmap_overlay`) as images ``localization/<prefix>heatmap_<i>``. The step is the trainer's iteration
    when the handler follows the trainer (:meth:`follow_trainer`, or :class:`FollowTrainer` among the trainer's
    handlers), else the evaluator's epoch (the trainer's epoch under MONAI's ``ValidationHandler``).

    Args:
        annotations: annotated items (:func:`~monai_afloc.apps.evaluation.read_synthetic_annotations` or
            :func:`~monai_afloc.data.ms_cxr_datalist` items: ``image`` path, ``category``, the prompt under
            ``prompt_key``, ``mask`` or ``boxes`` in original pixels), or the path of a synthetic (COCO) annotation
            JSON, read with ``read_synthetic_annotations``. May be ``None`` only when ``enabled`` is False.
        network: the AFLoc network being trained (a ``DistributedDataParallel`` wrapper is unwrapped).
        image_size: the square frame the network is trained at (the bundle's ``image_size``), >= 32.
        sigma: Gaussian σ in sentence-grid cells; ``None``: :func:`~monai_afloc.inference_settings.grid_scaled_sigma`
            of the network at ``image_size`` (what its checkpoint will be evaluated with).
        prompt_key: the item key of the prompt (``"prompt_location_free"``; ``"prompt"`` for location-bearing ones).
        metric_names: which of :data:`LOCALIZATION_METRICS` to write besides the key metric.
        cnr_weight: weight of the clipped CNR in the key metric (0: the pointing game alone).
        prefix: prefix of the metric names in ``state.metrics``.
        summary_writer: a TensorBoard ``SummaryWriter`` (anything with ``add_scalar`` and ``add_image``).
        log_dir: or a folder for a ``SummaryWriter`` made on first use (needs ``tensorboard``).
        n_images: heatmaps logged per validation (0: none), at most the number of items.
        interval: score every ``interval`` evaluator epochs; in between (and never before the first score) the last
            values stay in ``state.metrics``, so a saver sees no improvement and keeps its model.
        enabled: False makes ``attach`` a no-op (e.g. no annotated split, or ``rank > 0``).

    Example::

        handler = LocalizationValidationHandler("data/annotated_val/synthetic-cxr-annotations.json", net,
                                                image_size=128, log_dir="runs/afloc/logs")
        saver = AFLocModelSaver("runs/afloc/models", net, key_metric_name="val_localization", mode="max")
        evaluator = SupervisedEvaluator(..., val_handlers=[handler, saver])  # the handler first
        handler.follow_trainer(trainer)  # optional: TensorBoard steps are then the trainer's iterations

    Raises:
        TypeError, ValueError: on invalid arguments (the message names the argument, what it expects and what it
            got); FileNotFoundError: an annotation JSON that does not exist; ImportError: ``log_dir`` without
            ``tensorboard``.
    """

    def __init__(
        self,
        annotations: str | os.PathLike | Sequence[Mapping[str, Any]] | None,
        network: torch.nn.Module,
        image_size: int,
        sigma: float | None = None,
        prompt_key: str = "prompt_location_free",
        metric_names: Sequence[str] = LOCALIZATION_METRICS,
        cnr_weight: float = 0.1,
        prefix: str = "val_",
        summary_writer: Any = None,
        log_dir: str | os.PathLike | None = None,
        n_images: int = 4,
        interval: int = 1,
        enabled: bool = True,
    ) -> None:
        self.enabled = check_bool("enabled", enabled)
        if not isinstance(network, torch.nn.Module) or not hasattr(unwrap_network(network), "encode_image"):
            raise TypeError(f"network must be an AFLoc network (with encode_image), got {type(network).__name__}.")
        self.network = network
        self.image_size = check_int("image_size", image_size, minimum=32)
        if sigma is None:
            sigma = grid_scaled_sigma(unwrap_network(network), self.image_size)
        self.sigma = check_number("sigma", sigma, minimum=0)
        if not isinstance(prompt_key, str) or not prompt_key:
            raise TypeError(f"prompt_key must be a non-empty str, got {type(prompt_key).__name__} {prompt_key!r}.")
        self.prompt_key = prompt_key
        if isinstance(metric_names, str) or not isinstance(metric_names, Sequence):
            raise TypeError(f"metric_names must be a sequence of str, got {type(metric_names).__name__}.")
        unknown = [m for m in metric_names if m not in LOCALIZATION_METRICS]
        if unknown or len(set(metric_names)) != len(metric_names):
            raise ValueError(
                f"metric_names must be distinct names among {list(LOCALIZATION_METRICS)}, got {list(metric_names)}."
            )
        self.metric_names = tuple(metric_names)
        self.cnr_weight = check_number("cnr_weight", cnr_weight, minimum=0)
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, got {type(prefix).__name__}.")
        self.prefix = prefix
        self.key_metric_name = f"{prefix}localization"
        if summary_writer is not None and log_dir is not None:
            raise ValueError("give summary_writer or log_dir, not both.")
        if summary_writer is not None and not all(
            callable(getattr(summary_writer, m, None)) for m in ("add_scalar", "add_image")
        ):
            raise TypeError(
                f"summary_writer must have add_scalar and add_image (a SummaryWriter), got {type(summary_writer).__name__}."
            )
        if log_dir is not None:
            if not isinstance(log_dir, (str, os.PathLike)) or not os.fspath(log_dir):
                raise TypeError(f"log_dir must be None or a non-empty path, got {log_dir!r}.")
            if not _has_tensorboard:
                raise ImportError("log_dir needs tensorboard (torch.utils.tensorboard): pip install tensorboard.")
        self.summary_writer = summary_writer
        self.log_dir = None if log_dir is None else os.fspath(log_dir)
        self._own_writer = False
        self.n_images = check_int("n_images", n_images, minimum=0)
        self.interval = check_int("interval", interval, minimum=1)
        if isinstance(annotations, (str, os.PathLike)):
            from monai_afloc.apps.evaluation import read_synthetic_annotations  # apps: imported on use only

            annotations = read_synthetic_annotations(os.fspath(annotations))
        if annotations is None and self.enabled:
            raise ValueError("annotations must be given (a JSON path or annotated items) when enabled is True.")
        self.items = [] if annotations is None else _check_items(annotations, prompt_key)
        self.trainer: Any = None
        self.last_metrics: dict[str, float] | None = None
        self.last_report: dict[str, Any] | None = None
        self.logger = logging.getLogger(__name__)

    def follow_trainer(self, trainer: Any) -> None:
        """Use ``trainer``'s iteration as the TensorBoard step (:class:`FollowTrainer` calls it when attached)."""
        if not hasattr(trainer, "state"):
            raise TypeError(f"trainer must be an Ignite engine (with .state), got {type(trainer).__name__}.")
        self.trainer = trainer

    def attach(self, engine: Any) -> None:
        """Score at each ``EPOCH_COMPLETED`` of ``engine`` (the evaluator)."""
        if not self.enabled:
            return
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Any) -> None:
        epoch = int(engine.state.epoch)
        if self.last_metrics is None or epoch % self.interval == 0:
            self.last_metrics = self.compute(global_step=self._global_step(engine))
        engine.state.metrics.update(self.last_metrics)

    def _global_step(self, engine: Any) -> int:
        return int(self.trainer.state.iteration if self.trainer is not None else engine.state.epoch)

    def compute(self, global_step: int | None = None) -> dict[str, float]:
        """
        Score the network now (eval mode, no gradients, modes restored) and log to TensorBoard at ``global_step``
        (``None``: no logging). Returns the ``{metric name: value}`` written into ``state.metrics``; the full
        :func:`~monai_afloc.metrics.localization_report` is kept in ``self.last_report``.
        """
        from monai_afloc.apps.evaluation import evaluate_localization  # apps: imported on use only

        net = unwrap_network(self.network)
        modes = [(m, m.training) for m in net.modules()]
        try:
            with torch.no_grad():
                report = evaluate_localization(
                    net, self.items, priors=None, prompt_keys=(self.prompt_key,), sigma=self.sigma,
                    frame_size=self.image_size, shuffled=False, n_bootstrap=0,
                )["afloc"]
                writer = self._writer() if global_step is not None else None
                overlays = self.overlays(net) if writer is not None and self.n_images > 0 else []
        finally:
            for module, training in modes:  # each module's own flag: a frozen part stays in eval mode
                module.training = training
        mean = report["mean"]
        metrics = {f"{self.prefix}{name}": float(mean[name]) for name in self.metric_names}
        metrics[self.key_metric_name] = localization_key_metric(mean["pointing_game"], mean["cnr"], self.cnr_weight)
        self.last_report = report
        self.logger.info(
            f"localization on {len(self.items)} annotated items: "
            + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items())
        )
        if writer is not None:
            for key, value in metrics.items():
                writer.add_scalar(f"localization/{key}", value, global_step)
            for i, image in enumerate(overlays):
                writer.add_image(f"localization/{self.prefix}heatmap_{i}", image, global_step, dataformats="CHW")
            if callable(getattr(writer, "flush", None)):
                writer.flush()
        return metrics

    def overlays(self, network: torch.nn.Module | None = None) -> list[torch.Tensor]:
        """
        The first ``n_images`` items' heatmaps over their frames (:func:`heatmap_overlay`, ``[3, S, S]`` in [0, 1]),
        computed as the scored ones (same network, frame, σ and prompt). Call under ``torch.no_grad()`` in eval mode.
        """
        from monai_afloc.apps.evaluation import item_frame_mask  # apps: imported on use only
        from monai_afloc.inferers.localizer import TextPromptLocalizer, prepare_images

        net = unwrap_network(self.network) if network is None else network
        chosen = self.items[: self.n_images]
        if not chosen:
            return []
        localizer = TextPromptLocalizer(net, sigma=self.sigma, image_size=self.image_size)
        frames, geometries, _ = prepare_images([it["image"] for it in chosen], localizer.preprocess)
        regions, _ = localizer.encode_frames(frames)
        vectors = localizer.prompt_encoder([it[self.prompt_key] for it in chosen])
        images = []
        for i, item in enumerate(chosen):
            maps, valid = localizer.frame_heatmaps(regions[i : i + 1], vectors[i : i + 1], geometries[i : i + 1])
            truth = item_frame_mask(item, geometries[i])
            images.append(heatmap_overlay(frames[i], maps[0, 0], mask=truth, valid=valid[0, 0]))
        return images

    def _writer(self) -> Any:
        if self.summary_writer is None and self.log_dir is not None:
            self.summary_writer, self._own_writer = SummaryWriter(log_dir=self.log_dir), True
        return self.summary_writer

    def close(self) -> None:
        """Close the ``SummaryWriter`` this handler made from ``log_dir`` (a given ``summary_writer`` is left open)."""
        if self._own_writer and self.summary_writer is not None:
            self.summary_writer.close()
            self.summary_writer, self._own_writer = None, False


class FollowTrainer:
    """
    Tell objects attached to the evaluator which engine is the trainer: attached to the trainer, it calls
    ``follow_trainer(trainer)`` on each of ``handlers`` (e.g. a :class:`LocalizationValidationHandler`, which then logs
    at the trainer's iteration). A MONAI bundle needs it because the evaluator and its handlers are built before the
    trainer (which holds the evaluator), so they cannot be given the trainer as an argument; list it among the
    trainer's handlers.

    Args:
        handlers: objects with a ``follow_trainer(trainer)`` method.

    Example::

        FollowTrainer([localization_handler]).attach(trainer)

    Raises:
        TypeError: ``handlers`` is not a sequence of objects with ``follow_trainer``.
    """

    def __init__(self, handlers: Sequence[Any]) -> None:
        if isinstance(handlers, (str, bytes)) or not isinstance(handlers, Sequence):
            raise TypeError(f"handlers must be a sequence, got {type(handlers).__name__}.")
        lacking = [type(h).__name__ for h in handlers if not callable(getattr(h, "follow_trainer", None))]
        if lacking:
            raise TypeError(f"handlers must have a follow_trainer(trainer) method; {lacking} do not.")
        self.handlers = list(handlers)

    def attach(self, engine: Any) -> None:
        for handler in self.handlers:
            handler.follow_trainer(engine)
