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
Training and validation iterations of AFLoc for MONAI's Ignite engines.

:class:`AFLocTrainIteration` and :class:`AFLocEvalIteration` are ``iteration_update`` callables for
``monai.engines.SupervisedTrainer`` / ``SupervisedEvaluator``: the network takes an image *and* a text, and the loss
takes the network's whole output dictionary (``loss_fn(**network(image, input_ids, attention_mask, ...))``), which
MONAI's default ``(inputs, targets)`` iteration cannot express. Each returns a dict of Python floats, one per loss
term, so ``StatsHandler``/``TensorBoardStatsHandler``/Ignite metrics read it directly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from typing import Any

import torch
from monai.engines.utils import IterationEvents

from monai_afloc.utils.enums import LossKeys

__all__ = ["TEXT_INPUT_KEYS", "prepare_afloc_batch", "AFLocTrainIteration", "AFLocEvalIteration"]

#: the tokenizer outputs the network takes, in its ``forward`` order (``token_type_ids`` optional)
TEXT_INPUT_KEYS: tuple[str, str, str] = ("input_ids", "attention_mask", "token_type_ids")


def _check_key(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}.")
    return value


def _plain(x: torch.Tensor) -> torch.Tensor:
    """A MetaTensor's plain tensor (the network needs no metadata; it only slows the forward)."""
    return x.as_tensor() if hasattr(x, "as_tensor") else x


def prepare_afloc_batch(
    batch: Mapping[str, Any],
    device: torch.device | str | None = None,
    non_blocking: bool = False,
    image_key: str = "image",
    text_prefix: str = "",
    trim_padding: bool = False,
) -> dict[str, Any]:
    """
    Pick the network inputs from a collated batch and move them to ``device``.

    Args:
        batch: a collated dict holding ``image_key`` (``[B, C, H, W]`` float) and the tokenizer outputs
            ``f"{text_prefix}input_ids"``, ``f"{text_prefix}attention_mask"`` (``[B, L]`` integers) and optionally
            ``f"{text_prefix}token_type_ids"`` (as written by :class:`monai_afloc.transforms.text.TokenizeTextd`).
        device: target device (``None`` keeps each tensor where it is).
        non_blocking: passed to ``Tensor.to``.
        image_key: key of the image batch.
        text_prefix: prefix of the token keys.
        trim_padding: cut the token tensors after the last column that holds a real token in any row (texts padded
            to ``max_length`` are often much shorter) and add ``report_length`` = the padded length, so that
            ``AFLoc.forward`` gives the same report vector as on the padded batch while the text model and the local
            losses run on the shorter sequences (exact: the text outputs are then ``[B, D, T']`` with ``T'`` the
            longest text, and every length stays the same). Not for distributed training, where the ranks' text
            tensors must share one length to be gathered.

    Returns:
        ``{"image", "input_ids", "attention_mask"[, "token_type_ids"][, "report_length"]}``, keyword arguments of
        ``AFLoc.forward``.

    Raises:
        TypeError: when ``batch`` is not a mapping or an input is not a tensor of the right kind.
        KeyError: when a required key is missing (the message names it and lists the batch's keys).
        ValueError: on wrong ranks or batch sizes that differ between image and text.

    Example::

        >>> batch = {"image": torch.zeros(2, 3, 64, 64), "input_ids": torch.ones(2, 8, dtype=torch.long),
        ...          "attention_mask": torch.ones(2, 8, dtype=torch.long)}
        >>> sorted(prepare_afloc_batch(batch, "cpu"))
        ['attention_mask', 'image', 'input_ids']
    """
    if not isinstance(batch, Mapping):
        raise TypeError(f"batch must be a dict of collated tensors, got {type(batch).__name__}.")
    image_key, text_prefix = _check_key("image_key", image_key), _check_key("text_prefix", text_prefix)
    names = {"image": image_key, **{k: f"{text_prefix}{k}" for k in TEXT_INPUT_KEYS}}
    out: dict[str, torch.Tensor] = {}
    for name, key in names.items():
        if key not in batch:
            if name == "token_type_ids":
                continue
            raise KeyError(
                f"the batch has no '{key}' (needed as the network's {name}); got keys {sorted(map(str, batch))}."
            )
        value = batch[key]
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"batch['{key}'] must be a torch.Tensor, got {type(value).__name__}.")
        value = _plain(value)
        out[name] = value if device is None else value.to(device, non_blocking=non_blocking)
    image, ids = out["image"], out["input_ids"]
    if image.ndim != 4 or not image.is_floating_point():
        raise ValueError(
            f"batch['{image_key}'] must be a float [B, C, H, W] tensor, got {image.dtype} {tuple(image.shape)}."
        )
    for name in TEXT_INPUT_KEYS:
        if name in out and (out[name].ndim != 2 or out[name].is_floating_point()):
            got = f"{out[name].dtype} {tuple(out[name].shape)}"
            raise ValueError(f"batch['{names[name]}'] must be an integer [B, L] tensor, got {got}.")
        if name in out and out[name].shape != ids.shape:
            raise ValueError(
                f"batch['{names[name]}'] is shaped {tuple(out[name].shape)}, input_ids {tuple(ids.shape)}."
            )
    if image.shape[0] != ids.shape[0]:
        raise ValueError(f"image and text batch sizes differ: {image.shape[0]} images, {ids.shape[0]} texts.")
    if not isinstance(trim_padding, bool):
        raise TypeError(f"trim_padding must be a bool, got {type(trim_padding).__name__}.")
    if trim_padding:
        seq_len = ids.shape[1]
        used = out["attention_mask"].bool().any(0).nonzero()
        keep = int(used.max()) + 1 if used.numel() else seq_len
        if keep < seq_len:
            for name in TEXT_INPUT_KEYS:
                if name in out:
                    out[name] = out[name][:, :keep]
        out["report_length"] = seq_len
    return out


def _engine_inputs(
    engine: Any, batchdata: Mapping[str, Any], device: torch.device, image_key: str, text_prefix: str, trim: bool
) -> dict[str, Any]:
    """:func:`prepare_afloc_batch` with the engine's ``non_blocking`` setting."""
    non_blocking = bool(getattr(engine, "non_blocking", False))
    return prepare_afloc_batch(batchdata, device, non_blocking, image_key, text_prefix, trim_padding=trim)


def _forward(engine: Any, inputs: dict[str, torch.Tensor]) -> Mapping[str, torch.Tensor]:
    """``engine.inferer(image, network, input_ids=..., ...)`` when the engine has an inferer, else the network."""
    image = inputs["image"]
    text = {k: v for k, v in inputs.items() if k != "image"}
    inferer = getattr(engine, "inferer", None)
    if inferer is not None:
        return inferer(image, engine.network, **text)
    return engine.network(image, **text)


def _to_float32(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """Reduced-precision floating outputs (from autocast) -> float32; other entries unchanged."""
    return {
        k: v.float() if isinstance(v, torch.Tensor) and v.is_floating_point() and v.dtype != torch.float64 else v
        for k, v in outputs.items()
    }


def _check_losses(losses: Any) -> Mapping[str, torch.Tensor]:
    if not isinstance(losses, Mapping) or LossKeys.LOSS.value not in losses:
        raise TypeError(
            "the loss function must return a dict with a 'loss' entry (e.g. monai_afloc.losses.AFLocLoss), got "
            f"{type(losses).__name__}{'' if not isinstance(losses, Mapping) else ' with keys ' + str(sorted(losses))}."
        )
    return losses


def _as_floats(losses: Mapping[str, torch.Tensor], iteration: int) -> dict[str, float]:
    values = {str(k): float(v.detach()) if isinstance(v, torch.Tensor) else float(v) for k, v in losses.items()}
    bad = {k: v for k, v in values.items() if not math.isfinite(v)}
    if bad:
        raise FloatingPointError(
            f"non-finite loss at iteration {iteration}: {bad} (all terms: {values}); lower the learning rate, "
            "enable max_grad_norm, or check the inputs."
        )
    return values


def _fire(engine: Any, event: IterationEvents) -> None:
    """Fire a MONAI iteration event when the engine registered it (MONAI workflows do; a bare Ignite engine not)."""
    if event in getattr(engine, "_allowed_events", ()):
        engine.fire_event(event)


def _autocast(engine: Any, device: torch.device):
    kwargs = dict(getattr(engine, "amp_kwargs", None) or {})
    return torch.autocast(device_type=device.type, **kwargs)


def _autocast_dtype(engine: Any) -> torch.dtype | None:
    """The dtype the engine's ``amp_kwargs`` ask for (``None``: autocast's default for the device)."""
    return dict(getattr(engine, "amp_kwargs", None) or {}).get("dtype")


def _engine_device(engine: Any) -> torch.device:
    device = getattr(engine.state, "device", None)
    if device is None:
        try:
            device = next(engine.network.parameters()).device
        except StopIteration:
            device = torch.device("cpu")
    return torch.device(device)


class AFLocTrainIteration:
    """
    One AFLoc training step, usable as ``monai.engines.SupervisedTrainer(iteration_update=AFLocTrainIteration())``.

    Per batch: move the inputs to the engine's device; ``outputs = network(image, input_ids, attention_mask,
    token_type_ids)`` (through ``engine.inferer`` when set, e.g. ``SimpleInferer``); ``losses = loss_fn(**outputs)``;
    ``losses["loss"].backward()``; optional gradient clipping; ``optimizer.step()``. With ``engine.amp`` the network's
    forward runs under ``torch.autocast`` on the engine's device type (``engine.amp_kwargs`` passed through, e.g.
    ``{"dtype": torch.bfloat16}``), its outputs are cast back to float32 and the loss is called under the same
    autocast: the AFLoc losses then run their attention-weighted matrix products in the reduced dtype and keep logits,
    softmaxes, log-sum-exp and logit scales in float32. With float16 on CUDA the engine's ``GradScaler`` scales the
    loss (bfloat16 needs no scaling); :func:`monai_afloc.engines.resolve_amp` picks the settings for a device. MONAI's
    ``IterationEvents`` (forward, loss, backward, model completed) are fired as ``SupervisedTrainer`` does, with
    ``engine.state.output`` holding the loss tensors.

    Args:
        loss_function: the loss called as ``loss_function(**outputs)`` returning a dict with ``"loss"`` (e.g.
            :class:`monai_afloc.losses.AFLocLoss`); ``None`` uses ``engine.loss_function``.
        image_key: key of the images in the batch.
        text_prefix: prefix of the token keys in the batch (``TokenizeTextd(output_prefix=...)``).
        max_grad_norm: clip the global gradient norm to this value (``None``: no clipping).
        trim_padding: run the text model and the losses on the batch's longest text instead of the padded length
            (same losses, less work; see :func:`prepare_afloc_batch`). Leave False for distributed training.

    Returns (``__call__``):
        a dict of Python floats: ``loss`` and each term (``global_loss``, ``sentence_loss``, ``word_loss``).

    Raises:
        FloatingPointError: when a loss term is NaN or infinite (the message names the iteration and the terms).
        ValueError: when the engine accumulates gradients (``accumulation_steps > 1``): a contrastive loss takes its
            negatives from the batch, so accumulation would not enlarge them and is refused.

    Example::

        trainer = monai.engines.SupervisedTrainer(
            device=device, max_epochs=10, train_data_loader=loader, network=net, optimizer=opt,
            loss_function=monai_afloc.losses.AFLocLoss(), iteration_update=AFLocTrainIteration(), decollate=False,
        )
        trainer.run()  # trainer.state.output == {"loss": 3.2, "global_loss": 1.1, ...}
    """

    def __init__(
        self,
        loss_function: Callable[..., Mapping[str, torch.Tensor]] | None = None,
        image_key: str = "image",
        text_prefix: str = "",
        max_grad_norm: float | None = None,
        trim_padding: bool = False,
    ) -> None:
        if loss_function is not None and not callable(loss_function):
            raise TypeError(f"loss_function must be callable or None, got {type(loss_function).__name__}.")
        if max_grad_norm is not None and (
            isinstance(max_grad_norm, bool)
            or not isinstance(max_grad_norm, (int, float))
            or not math.isfinite(max_grad_norm)
            or max_grad_norm <= 0
        ):
            raise ValueError(f"max_grad_norm must be None or a finite number > 0, got {max_grad_norm!r}.")
        self.loss_function = loss_function
        self.image_key = _check_key("image_key", image_key)
        self.text_prefix = _check_key("text_prefix", text_prefix)
        self.max_grad_norm = None if max_grad_norm is None else float(max_grad_norm)
        if not isinstance(trim_padding, bool):
            raise TypeError(f"trim_padding must be a bool, got {type(trim_padding).__name__}.")
        self.trim_padding = trim_padding

    def __call__(self, engine: Any, batchdata: Mapping[str, Any]) -> dict[str, float]:
        if batchdata is None:
            raise ValueError("must provide batch data for the current iteration, got None.")
        if getattr(engine, "accumulation_steps", 1) != 1:
            raise ValueError(
                f"AFLocTrainIteration does not accumulate gradients (got accumulation_steps="
                f"{engine.accumulation_steps}): contrastive negatives come from one batch; use a larger batch size."
            )
        loss_fn = self.loss_function if self.loss_function is not None else getattr(engine, "loss_function", None)
        if loss_fn is None:
            raise ValueError("no loss function: pass loss_function= or give the engine a loss_function.")
        device = _engine_device(engine)
        inputs = _engine_inputs(engine, batchdata, device, self.image_key, self.text_prefix, self.trim_padding)
        amp = bool(getattr(engine, "amp", False))
        scaler = None
        if amp and device.type == "cuda" and _autocast_dtype(engine) in (None, torch.float16):
            scaler = getattr(engine, "scaler", None)

        engine.network.train()
        engine.optimizer.zero_grad(set_to_none=bool(getattr(engine, "optim_set_to_none", False)))
        with _autocast(engine, device) if amp else nullcontext():
            outputs = _forward(engine, inputs)
            if amp:
                outputs = _to_float32(outputs)
            engine.state.output = {"pred": outputs}
            _fire(engine, IterationEvents.FORWARD_COMPLETED)
            # under autocast the losses choose their own precision (see monai_afloc.losses)
            losses = _check_losses(loss_fn(**outputs))
        engine.state.output = dict(losses)
        _fire(engine, IterationEvents.LOSS_COMPLETED)
        values = _as_floats(losses, engine.state.iteration)  # raises before a NaN reaches the weights
        loss = losses[LossKeys.LOSS.value]
        if scaler is not None:
            scaler.scale(loss).backward()
            _fire(engine, IterationEvents.BACKWARD_COMPLETED)
            if self.max_grad_norm is not None:
                scaler.unscale_(engine.optimizer)
                self._clip(engine)
            scaler.step(engine.optimizer)
            scaler.update()
        else:
            loss.backward()
            _fire(engine, IterationEvents.BACKWARD_COMPLETED)
            if self.max_grad_norm is not None:
                self._clip(engine)
            engine.optimizer.step()
        _fire(engine, IterationEvents.MODEL_COMPLETED)
        engine.state.output = values
        return values

    def _clip(self, engine: Any) -> None:
        params = [p for group in engine.optimizer.param_groups for p in group["params"] if p.grad is not None]
        torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm)


class AFLocEvalIteration:
    """
    AFLoc validation loss, usable as ``monai.engines.SupervisedEvaluator(iteration_update=AFLocEvalIteration(loss))``.

    The network runs in ``eval()`` mode without gradients (under ``torch.autocast`` when ``engine.amp``); the loss is
    computed as in training, so the validation loss is comparable with the training loss of the same batch size.
    Validation data should be deterministic (no random sentence sampling) for a stable key metric.

    Args:
        loss_function: called as ``loss_function(**outputs)``, returning a dict with ``"loss"``.
        image_key: key of the images in the batch.
        text_prefix: prefix of the token keys in the batch.
        trim_padding: run on the batch's longest text instead of the padded length (same losses, less work; see
            :func:`prepare_afloc_batch`). Leave False for distributed evaluation.

    Returns (``__call__``):
        a dict of Python floats: ``loss`` and each term; read them with Ignite metrics such as
        ``ignite.metrics.Average(output_transform=monai.handlers.from_engine(["loss"], first=True))``.

    Raises:
        FloatingPointError: when a loss term is NaN or infinite.

    Example::

        evaluator = monai.engines.SupervisedEvaluator(
            device=device, val_data_loader=val_loader, network=net, decollate=False,
            iteration_update=AFLocEvalIteration(monai_afloc.losses.AFLocLoss()),
            key_val_metric={"val_loss": ignite.metrics.Average(monai.handlers.from_engine(["loss"], first=True))},
        )
    """

    def __init__(
        self,
        loss_function: Callable[..., Mapping[str, torch.Tensor]],
        image_key: str = "image",
        text_prefix: str = "",
        trim_padding: bool = False,
    ) -> None:
        if not callable(loss_function):
            raise TypeError(f"loss_function must be callable, got {type(loss_function).__name__}.")
        if not isinstance(trim_padding, bool):
            raise TypeError(f"trim_padding must be a bool, got {type(trim_padding).__name__}.")
        self.loss_function = loss_function
        self.image_key = _check_key("image_key", image_key)
        self.text_prefix = _check_key("text_prefix", text_prefix)
        self.trim_padding = trim_padding

    def __call__(self, engine: Any, batchdata: Mapping[str, Any]) -> dict[str, float]:
        if batchdata is None:
            raise ValueError("must provide batch data for the current iteration, got None.")
        device = _engine_device(engine)
        inputs = _engine_inputs(engine, batchdata, device, self.image_key, self.text_prefix, self.trim_padding)
        engine.network.eval()
        amp = bool(getattr(engine, "amp", False))
        with torch.no_grad(), _autocast(engine, device) if amp else nullcontext():
            outputs = _forward(engine, inputs)
            if amp:
                outputs = _to_float32(outputs)
            losses = _check_losses(self.loss_function(**outputs))
        engine.state.output = dict(losses)
        _fire(engine, IterationEvents.FORWARD_COMPLETED)
        values = _as_floats(losses, engine.state.iteration)
        engine.state.output = values
        _fire(engine, IterationEvents.MODEL_COMPLETED)
        return values
