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
Ignite handlers for AFLoc training with MONAI engines (each has ``attach(engine)``, as MONAI's handlers do):

- :class:`WallClockBudgetHandler`: stops training when a wall-clock budget is spent (the final checkpoints are then
  written by the savers listening to ``Events.COMPLETED``).
- :class:`CosineLRHandler`: per-iteration cosine learning-rate decay over the run, or over the wall-clock budget
  when one is set, so that a time-limited run still ends at a low learning rate.
- :class:`ResumableCheckpointHandler`: saves model, optimizer, scheduler and trainer state every few epochs and at
  the end, and with ``resume=True`` restores the newest of them before training starts.
- :class:`AFLocModelSaver`: writes the best and/or last network in monai_afloc's own checkpoint format
  (:func:`monai_afloc.checkpoint.save_afloc_checkpoint`), loadable with ``load_afloc_checkpoint``.
- :class:`AFLocProgressBar`: a tqdm progress bar showing the loss terms.
"""

from __future__ import annotations

import glob
import logging
import math
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.distributed as dist
from monai.utils import look_up_option, optional_import

from monai_afloc.checkpoint import CONFIG_FILENAME, save_afloc_checkpoint

Events, _ = optional_import("ignite.engine", name="Events")
ProgressBar, _has_pbar = optional_import("ignite.handlers", name="ProgressBar")

__all__ = [
    "unwrap_network",
    "distributed_rank",
    "latest_checkpoint",
    "saved_training_settings",
    "WallClockBudgetHandler",
    "ResumableCheckpointHandler",
    "AFLocModelSaver",
    "AFLocProgressBar",
]

_TRAINER_KEY = "trainer"


def unwrap_network(network: torch.nn.Module) -> torch.nn.Module:
    """The module inside ``DistributedDataParallel``/``DataParallel``/``torch.compile`` wrappers (else itself)."""
    while True:
        if isinstance(network, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)):
            network = network.module
        elif hasattr(network, "_orig_mod") and isinstance(network._orig_mod, torch.nn.Module):
            network = network._orig_mod
        else:
            return network


def distributed_rank() -> int:
    """This process's rank in the default process group, 0 when ``torch.distributed`` is not initialised."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _check_dir(name: str, value: Any) -> str:
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise TypeError(f"{name} must be a non-empty path (str or os.PathLike), got {value!r}.")
    return os.fspath(value)


def _check_positive_int(name: str, value: Any, allow_zero: bool = False) -> int:
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}.")
    return value


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _atomic_torch_save(obj: Any, path: str, tmp_mark: str = ".tmp-") -> None:
    """
    ``torch.save(obj, path)`` that never leaves a partial file at ``path``: the bytes go to a hidden temporary file
    beside it, are flushed to disk (``fsync``), then the temporary file is renamed over ``path`` (atomic on POSIX and
    Windows). A crash mid-write leaves ``path`` as it was (and a temporary file to clean up).
    """
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f".{name}{tmp_mark}{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
        fd = os.open(folder or ".", os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def latest_checkpoint(ckpt_dir: str | os.PathLike, pattern: str = "*.pt") -> str | None:
    """
    The training-state checkpoint to resume from: among the files matching ``pattern`` in ``ckpt_dir`` that load
    (``torch.load(weights_only=True)``) and hold a ``"trainer"`` entry, the one with the highest trainer iteration
    (ties: the newest file). Unreadable files (e.g. cut short by a crash) are skipped with a warning.

    Args:
        ckpt_dir: the folder the checkpoints were saved to (may not exist yet).
        pattern: glob pattern of checkpoint files inside ``ckpt_dir``.

    Returns:
        the path, or ``None`` when there is no usable checkpoint.

    Example::

        >>> latest_checkpoint("runs/afloc/checkpoints")  # doctest: +SKIP
        'runs/afloc/checkpoints/checkpoint_final.pt'
    """
    ckpt_dir = _check_dir("ckpt_dir", ckpt_dir)
    if not isinstance(pattern, str) or not pattern:
        raise TypeError(f"pattern must be a non-empty str, got {pattern!r}.")
    if not os.path.isdir(ckpt_dir):
        return None
    best: tuple[int, float, str] | None = None
    for path in glob.glob(os.path.join(glob.escape(ckpt_dir), pattern)):
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            iteration = int(ckpt[_TRAINER_KEY]["iteration"])
        except Exception as e:  # a partial or foreign file: skip it, keep looking
            logging.getLogger(__name__).warning(f"latest_checkpoint: skipping {path!r} ({type(e).__name__}: {e}).")
            continue
        key = (iteration, os.path.getmtime(path), path)
        if best is None or key > best:
            best = key
    return None if best is None else best[2]


def saved_training_settings(checkpoint: str | os.PathLike) -> dict[str, Any]:
    """
    The training settings an :class:`AFLocModelSaver` stored in a monai_afloc checkpoint folder (its ``extra``
    entry, e.g. ``{"image_size": 224, "epoch": 12, ...}``); ``{}`` for other checkpoints (e.g. a release ``.ckpt``).

    Example::

        >>> saved_training_settings("models/best").get("image_size", 224)  # doctest: +SKIP
        224
    """
    import json

    path = _check_dir("checkpoint", checkpoint)
    config = os.path.join(path, CONFIG_FILENAME) if os.path.isdir(path) else path
    if os.path.basename(config) != CONFIG_FILENAME or not os.path.isfile(config):
        return {}
    with open(config, encoding="utf-8") as f:
        extra = json.load(f).get("extra")
    return dict(extra) if isinstance(extra, Mapping) else {}


class WallClockBudgetHandler:
    """
    Terminate training once ``minutes`` of wall-clock time have passed since the engine started.

    The check runs after every ``check_every`` iterations; the engine then finishes the current iteration and fires
    ``Events.TERMINATE`` and ``Events.COMPLETED``, so savers listening to ``COMPLETED`` (e.g.
    :class:`ResumableCheckpointHandler`, :class:`AFLocModelSaver`) write the final state. The time spent includes
    validation runs. Sets ``engine.state.budget_exhausted`` (False until the budget is spent) and
    ``engine.state.budget_progress`` (the spent fraction of the budget, 0 to 1, updated at each check; ``None``
    without a budget), which :class:`CosineLRHandler` follows. Under
    ``torch.distributed`` rank 0's clock decides for every rank (one ``broadcast`` per check), so all ranks stop at the
    same iteration and no collective is left waiting.

    Args:
        minutes: the budget in minutes (> 0); ``None`` disables the handler (no limit).
        check_every: iterations between checks.

    Example::

        WallClockBudgetHandler(minutes=10).attach(trainer)

    Raises:
        ValueError: on a non-positive or non-finite ``minutes`` or a ``check_every`` < 1.
    """

    def __init__(self, minutes: float | None, check_every: int = 1) -> None:
        if minutes is not None and (
            isinstance(minutes, bool)
            or not isinstance(minutes, (int, float))
            or not math.isfinite(minutes)
            or minutes <= 0
        ):
            raise ValueError(f"minutes must be None (no limit) or a finite number > 0, got {minutes!r}.")
        self.minutes = None if minutes is None else float(minutes)
        self.check_every = _check_positive_int("check_every", check_every)
        self.logger = logging.getLogger(__name__)
        self._start: float | None = None

    @property
    def elapsed_minutes(self) -> float:
        """Minutes since the engine started (0 before)."""
        return 0.0 if self._start is None else (time.monotonic() - self._start) / 60.0

    def attach(self, engine: Any) -> None:
        engine.state.budget_exhausted = False
        engine.state.budget_progress = None
        if self.minutes is None:
            return
        engine.add_event_handler(Events.STARTED, self._started)
        engine.add_event_handler(Events.ITERATION_COMPLETED(every=self.check_every), self._check)

    def _started(self, engine: Any) -> None:
        self._start = time.monotonic()
        engine.state.budget_exhausted = False
        engine.state.budget_progress = 0.0

    def _progress(self, engine: Any) -> float:
        """The spent fraction of the budget; rank 0's clock decides under ``torch.distributed``."""
        progress = self.elapsed_minutes / self.minutes  # type: ignore[operator]
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            device = torch.device(getattr(engine.state, "device", None) or "cpu")
            if dist.get_backend() == "nccl" and device.type != "cuda":
                device = torch.device("cuda", torch.cuda.current_device())
            value = torch.tensor([progress], dtype=torch.float64, device=device)
            dist.broadcast(value, src=0)
            progress = float(value.item())
        return progress

    def _check(self, engine: Any) -> None:
        progress = self._progress(engine)
        engine.state.budget_progress = min(progress, 1.0)
        if progress >= 1.0:
            engine.state.budget_exhausted = True
            self.logger.info(
                f"wall-clock budget of {self.minutes:g} min spent after {self.elapsed_minutes:.2f} min "
                f"(epoch {engine.state.epoch}, iteration {engine.state.iteration}): terminating training."
            )
            engine.terminate()


class StepBudgetHandler:
    """
    Terminate training after exactly ``max_steps`` iterations, whatever the epochs: the budget of a run that must give
    the same result on any machine (a wall-clock budget stops a slow machine earlier).

    The engine finishes iteration ``max_steps`` and fires ``Events.TERMINATE`` and ``Events.COMPLETED`` (savers then
    write the final state). Sets ``engine.state.step_progress`` (``iteration / max_steps``, 0 to 1), which
    :class:`CosineLRHandler` follows. Give the engine enough epochs (``ceil(max_steps / epoch_length)``, or more). A
    resumed run counts the iterations already done.

    Args:
        max_steps: the number of training iterations (>= 1); ``None`` disables the handler.

    Example::

        StepBudgetHandler(max_steps=300).attach(trainer)

    Raises:
        ValueError: on a ``max_steps`` that is not ``None`` or an int >= 1.
    """

    def __init__(self, max_steps: int | None) -> None:
        self.max_steps = None if max_steps is None else _check_positive_int("max_steps", max_steps)
        self.logger = logging.getLogger(__name__)

    def attach(self, engine: Any) -> None:
        engine.state.step_progress = None
        if self.max_steps is None:
            return
        engine.add_event_handler(Events.STARTED, self._update)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._check)

    def _update(self, engine: Any) -> None:
        engine.state.step_progress = min(engine.state.iteration / self.max_steps, 1.0)  # type: ignore[operator]

    def _check(self, engine: Any) -> None:
        self._update(engine)
        if engine.state.iteration >= self.max_steps:  # type: ignore[operator]
            self.logger.info(f"step budget of {self.max_steps} iterations reached (epoch {engine.state.epoch}).")
            engine.terminate()


class CosineLRHandler:
    """
    Set the learning rate at every iteration on a cosine from each parameter group's base rate down to
    ``min_lr_ratio`` times it, after an optional linear warm-up.

    Progress is the largest of the run's iteration fraction (``iteration / (max_epochs * epoch_length)``), the
    spent fraction of a wall-clock budget (``engine.state.budget_progress``, written by a
    :class:`WallClockBudgetHandler` attached to the same engine) and of a step budget (``engine.state.step_progress``,
    written by :class:`StepBudgetHandler`). So with ``max_epochs`` large and a budget of
    ``N`` minutes the learning rate decays over the ``N`` minutes, whatever the machine's speed; without a budget it
    decays over the epochs. Base rates are the optimizer's ``initial_lr`` (set by torch schedulers) or its ``lr``
    when the engine starts. On resume a budgeted run starts a new budget, as :class:`WallClockBudgetHandler` does.

    Args:
        optimizer: the optimizer whose parameter groups are updated.
        min_lr_ratio: final learning rate as a fraction of the base rate, in [0, 1].
        warmup_fraction: fraction of the progress spent in a linear warm-up from 0, in [0, 1).

    Example::

        WallClockBudgetHandler(minutes=10).attach(trainer)
        CosineLRHandler(optimizer, min_lr_ratio=0.01).attach(trainer)

    Raises:
        TypeError: when ``optimizer`` is not a ``torch.optim.Optimizer``.
        ValueError: on a ratio or fraction outside its range.
    """

    def __init__(
        self, optimizer: torch.optim.Optimizer, min_lr_ratio: float = 0.01, warmup_fraction: float = 0.0
    ) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}.")
        checks = (("min_lr_ratio", min_lr_ratio, False), ("warmup_fraction", warmup_fraction, True))
        for name, value, high_open in checks:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                0.0 <= value < 1.0 if high_open else 0.0 <= value <= 1.0
            ):
                bound = "[0, 1)" if high_open else "[0, 1]"
                raise ValueError(f"{name} must be a number in {bound}, got {value!r}.")
        self.optimizer = optimizer
        self.min_lr_ratio = float(min_lr_ratio)
        self.warmup_fraction = float(warmup_fraction)
        self.base_lrs: list[float] = []

    def attach(self, engine: Any) -> None:
        engine.add_event_handler(Events.STARTED, self._started)
        engine.add_event_handler(Events.ITERATION_STARTED, self._update)

    def _started(self, engine: Any) -> None:
        self.base_lrs = [float(g.get("initial_lr", g["lr"])) for g in self.optimizer.param_groups]

    def progress(self, engine: Any) -> float:
        """The run's progress in [0, 1] before the current iteration."""
        state = engine.state
        total = (state.max_epochs or 0) * (state.epoch_length or 0)
        progress = (state.iteration - 1) / total if total > 0 else 0.0
        for budget in (getattr(state, "budget_progress", None), getattr(state, "step_progress", None)):
            if budget is not None:
                progress = max(progress, float(budget))
        return min(max(progress, 0.0), 1.0)

    def factor(self, progress: float) -> float:
        """The learning-rate multiplier at ``progress``."""
        if progress < self.warmup_fraction:
            return progress / self.warmup_fraction
        t = (progress - self.warmup_fraction) / (1.0 - self.warmup_fraction)
        return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))

    def _update(self, engine: Any) -> None:
        factor = self.factor(self.progress(engine))
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * factor


class ResumableCheckpointHandler:
    """
    Save the training state for resumption, crash-safely, and restore it when asked.

    On ``attach(trainer)`` the trainer itself is added to ``save_dict`` under ``"trainer"`` (so a bundle config need
    not reference the trainer from inside its own handler list). Then:

    - with ``resume=True``, the newest checkpoint of ``save_dir`` that loads (:func:`latest_checkpoint`) is restored
      by a ``monai.handlers.CheckpointLoader`` when the trainer starts: weights, optimizer and scheduler state, and
      the trainer's epoch/iteration counters, so training continues where it stopped (also in the middle of an
      epoch). ``max_epochs`` stays the current run's. When checkpoint files exist but none of them loads, ``attach``
      raises ``RuntimeError`` instead of silently training from scratch; no checkpoint file at all: training starts
      from scratch (logged).
    - ``checkpoint_epoch=N.pt`` is written every ``save_interval`` epochs (keeping the newest ``n_saved``) and
      ``final_filename`` when the trainer completes, is terminated (e.g. by :class:`WallClockBudgetHandler`) or
      raises.

    Crash safety: each file is written to a hidden temporary file in ``save_dir``, flushed to disk and renamed over
    its target (an atomic replace), and older checkpoints are removed only after the new one is complete. So a
    process killed hard, even in the middle of a write, loses at most the epochs since the last complete save, and
    the previous checkpoint still loads. Leftovers of interrupted runs are cleaned up: temporary files when the
    handler attaches, and (after this run's first complete save) checkpoint files it did not resume from and did
    not write (e.g. those of an older run in the same folder, or unreadable ones).

    Entries of ``save_dict`` with a ``follow_trainer(trainer)`` method (e.g. an :class:`AFLocModelSaver` attached to
    the evaluator) are told the trainer on attach, so they can record the trainer's counters.

    Only rank 0 should save (disable the handler's saving on other ranks with ``save=False``; every rank must load).
    Attach it *after* the scheduler and validation handlers: handlers of one event run in attachment order, so the
    interval checkpoint then holds the state after the epoch's scheduler step and validation (and the loader still
    runs before training starts).

    Args:
        save_dir: folder of the ``.pt`` checkpoints.
        save_dict: objects with ``state_dict``/``load_state_dict`` (network, optimizer, scheduler, ...); the network
            should be the bare module (not a ``DistributedDataParallel`` wrapper) so keys have no ``module.`` prefix.
        resume: restore the latest checkpoint of ``save_dir`` at start.
        save: write checkpoints (False on ranks > 0).
        save_interval: epochs between interval checkpoints (0: only the final one).
        n_saved: interval checkpoints kept.
        final_filename: file name of the final checkpoint (ends with ``.pt``).
        map_location: ``map_location`` of the loader (e.g. the training device).

    Example::

        ResumableCheckpointHandler("out/checkpoints", {"model": net, "optimizer": opt}, resume=True).attach(trainer)

    Raises:
        TypeError/ValueError: on invalid arguments, or a ``save_dict`` entry without ``state_dict``.
        RuntimeError: (on ``attach`` with ``resume=True``) when checkpoint files exist and none of them loads.
    """

    _INTERVAL_PREFIX = "checkpoint_epoch="
    _TMP_MARK = ".tmp-"

    def __init__(
        self,
        save_dir: str | os.PathLike,
        save_dict: Mapping[str, Any],
        resume: bool = False,
        save: bool = True,
        save_interval: int = 1,
        n_saved: int = 1,
        final_filename: str = "checkpoint_final.pt",
        map_location: Any = None,
    ) -> None:
        self.save_dir = _check_dir("save_dir", save_dir)
        if not isinstance(save_dict, Mapping) or not save_dict:
            raise TypeError(f"save_dict must be a non-empty mapping of name -> object, got {save_dict!r}.")
        if _TRAINER_KEY in save_dict:
            raise ValueError(f"save_dict must not hold '{_TRAINER_KEY}': the trainer is added on attach().")
        lacking = [k for k, v in save_dict.items() if not hasattr(v, "state_dict") or not hasattr(v, "load_state_dict")]
        if lacking:
            raise TypeError(f"save_dict entries need state_dict()/load_state_dict(); these lack them: {lacking}.")
        for name, flag in (("resume", resume), ("save", save)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool, got {type(flag).__name__}.")
        self.save_dict = dict(save_dict)
        self.resume = resume
        self.save = save
        self.save_interval = _check_positive_int("save_interval", save_interval, allow_zero=True)
        self.n_saved = _check_positive_int("n_saved", n_saved)
        if (
            not isinstance(final_filename, str)
            or not final_filename.endswith(".pt")
            or os.sep in final_filename
            or final_filename.startswith((".", self._INTERVAL_PREFIX))
        ):
            raise ValueError(
                f"final_filename must be a plain file name ending with '.pt' (not starting with '.' or "
                f"'{self._INTERVAL_PREFIX}'), got {final_filename!r}."
            )
        self.final_filename = final_filename
        self.map_location = map_location
        self.resumed_from: str | None = None
        self.logger = logging.getLogger(__name__)
        self._objects: dict[str, Any] = {}
        self._written: list[str] = []  # interval checkpoints of this run (and the one resumed from), oldest first
        self._stale: list[str] = []  # files found at attach that this run neither resumed from nor wrote

    def _checkpoint_files(self) -> list[str]:
        if not os.path.isdir(self.save_dir):
            return []
        return sorted(glob.glob(os.path.join(glob.escape(self.save_dir), "*.pt")))

    def _remove_temporaries(self) -> None:
        for path in glob.glob(os.path.join(glob.escape(self.save_dir), f".*{self._TMP_MARK}*")):
            self.logger.info(f"removing {path!r}, a checkpoint write interrupted in an earlier run.")
            _remove_quietly(path)

    def attach(self, engine: Any) -> None:
        from monai.handlers import CheckpointLoader

        if dist.is_available() and dist.is_initialized():
            # Ignite's Checkpoint queries ignite.distributed, whose first use creates a process group: a collective
            # every rank must join, so join it here on all ranks (also those that do not save), or rank 0 hangs.
            import ignite.distributed as idist

            idist.sync()
        objects = dict(self.save_dict)
        objects[_TRAINER_KEY] = engine
        self._objects = objects
        for obj in self.save_dict.values():
            if callable(getattr(obj, "follow_trainer", None)):
                obj.follow_trainer(engine)
        if self.save and os.path.isdir(self.save_dir):
            self._remove_temporaries()
        existing = self._checkpoint_files()
        if self.resume:
            path = latest_checkpoint(self.save_dir)
            if path is None and existing:
                raise RuntimeError(
                    f"resume: checkpoint files exist in {self.save_dir!r} but none of them loads "
                    f"({[os.path.basename(p) for p in existing]}); refusing to train from scratch over them. "
                    "Move them away (or fix them) and start again, or set resume to False."
                )
            if path is None:
                self.logger.info(f"resume: no checkpoint in {self.save_dir!r}, training from scratch.")
            else:
                self.resumed_from = path
                CheckpointLoader(load_path=path, load_dict=objects, map_location=self.map_location).attach(engine)
                self.logger.info(f"resume: restoring {sorted(objects)} from {path!r} when training starts.")
                if os.path.basename(path).startswith(self._INTERVAL_PREFIX):
                    self._written.append(path)
        final = os.path.join(self.save_dir, self.final_filename)
        self._stale = [p for p in existing if p != self.resumed_from and p != final]
        if self.save:
            if self.save_interval > 0:
                engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.save_interval), self._save_interval)
            engine.add_event_handler(Events.COMPLETED, self._save_final)
            engine.add_event_handler(Events.EXCEPTION_RAISED, self._save_on_exception)

    def _state(self) -> dict[str, Any]:
        return {name: obj.state_dict() for name, obj in self._objects.items()}

    def _write(self, path: str) -> None:
        """Write the state to ``path`` atomically (temporary file, fsync, rename), then drop stale files."""
        os.makedirs(self.save_dir, exist_ok=True)
        _atomic_torch_save(self._state(), path, self._TMP_MARK)
        if self._stale:
            self.logger.info(
                f"removing checkpoints not of this run from {self.save_dir!r}: "
                f"{[os.path.basename(p) for p in self._stale]}."
            )
            for stale in self._stale:
                _remove_quietly(stale)
            self._stale = []

    def _save_interval(self, engine: Any) -> None:
        path = os.path.join(self.save_dir, f"{self._INTERVAL_PREFIX}{engine.state.epoch}.pt")
        self._write(path)
        if path in self._written:
            self._written.remove(path)
        self._written.append(path)
        while len(self._written) > self.n_saved:  # the new file is complete: older ones can go
            _remove_quietly(self._written.pop(0))

    def _save_final(self, engine: Any) -> None:
        self._write(os.path.join(self.save_dir, self.final_filename))

    def _save_on_exception(self, engine: Any, e: Exception) -> None:
        self._save_final(engine)
        raise e


class AFLocModelSaver:
    """
    Save an AFLoc network in monai_afloc's own format (a folder written by
    :func:`~monai_afloc.checkpoint.save_afloc_checkpoint`, read by ``load_afloc_checkpoint``).

    - Best model (``key_metric_name`` given): attach it to the evaluator; after each evaluation epoch the metric
      ``engine.state.metrics[key_metric_name]`` is compared with the best so far (``mode``: ``"min"`` for a loss,
      ``"max"`` for a score) and an improvement is written to ``save_dir/best_name``.
    - Last model (``save_final=True``): attach it to the trainer; the network is written to ``save_dir/final_name``
      when the trainer completes or is terminated (and every ``save_interval`` epochs when > 0).

    Each folder is first written beside its target and then swapped in, so a crash never leaves a half-written model
    where the previous one was. ``extra`` (JSON-serialisable; e.g. the image size and loss weights) is stored in the
    checkpoint with the epoch, iteration and metric; :func:`saved_training_settings` reads it back. The epoch and
    iteration are the *trainer's*: a saver attached to the evaluator learns the trainer through
    :meth:`follow_trainer` (a :class:`ResumableCheckpointHandler` holding the saver in its ``save_dict`` calls it);
    without it the evaluator's epoch is recorded and the iteration left out (the evaluator counts its own).

    The best value is part of :meth:`state_dict`, so put the saver in the resumable checkpoint to keep it across a
    resume. Besides, before its first comparison the saver reads the value recorded in an existing
    ``save_dir/best_name`` (same metric): a restarted run, resumed or not, only replaces that model with a better one.

    Args:
        save_dir: parent folder of the model folders.
        network: the AFLoc network (a ``DistributedDataParallel``/``DataParallel`` wrapper is unwrapped).
        key_metric_name: the evaluator metric that selects the best model (``None``: no best model).
        mode: ``"min"`` or ``"max"``.
        save_final: write the last model when the attached engine completes.
        save_interval: also write the last model every this many epochs (0: only at the end).
        best_name: folder name of the best model.
        final_name: folder name of the last model.
        extra: JSON-serialisable settings stored with the model.
        enabled: False makes ``attach`` a no-op (e.g. ``rank > 0``).

    Example::

        AFLocModelSaver("out/models", net, key_metric_name="val_loss", mode="min", save_final=False).attach(evaluator)
        AFLocModelSaver("out/models", net, save_final=True).attach(trainer)

    Raises:
        TypeError/ValueError: on invalid arguments (e.g. neither a best nor a final model requested).
    """

    def __init__(
        self,
        save_dir: str | os.PathLike,
        network: torch.nn.Module,
        key_metric_name: str | None = None,
        mode: str = "min",
        save_final: bool = False,
        save_interval: int = 0,
        best_name: str = "best",
        final_name: str = "last",
        extra: Mapping[str, Any] | None = None,
        enabled: bool = True,
    ) -> None:
        self.save_dir = _check_dir("save_dir", save_dir)
        if not isinstance(network, torch.nn.Module):
            raise TypeError(f"network must be a torch.nn.Module (an AFLoc), got {type(network).__name__}.")
        if key_metric_name is not None and (not isinstance(key_metric_name, str) or not key_metric_name):
            raise ValueError(f"key_metric_name must be None or a non-empty str, got {key_metric_name!r}.")
        self.mode = look_up_option(mode, ("min", "max"))
        for name, flag in (("save_final", save_final), ("enabled", enabled)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool, got {type(flag).__name__}.")
        if key_metric_name is None and not save_final and save_interval == 0:
            raise ValueError(
                "nothing to save: give key_metric_name (best model), save_final=True or save_interval > 0."
            )
        for name, value in (("best_name", best_name), ("final_name", final_name)):
            if not isinstance(value, str) or not value or os.sep in value or value.startswith("."):
                raise ValueError(f"{name} must be a plain folder name, got {value!r}.")
        if extra is not None and not isinstance(extra, Mapping):
            raise TypeError(f"extra must be None or a mapping, got {type(extra).__name__}.")
        self.network = network
        self.key_metric_name = key_metric_name
        self.save_final = save_final
        self.save_interval = _check_positive_int("save_interval", save_interval, allow_zero=True)
        self.best_name = best_name
        self.final_name = final_name
        self.extra = {} if extra is None else dict(extra)
        self.enabled = enabled
        self.best_metric: float | None = None
        self.best_epoch: int | None = None
        self.trainer: Any = None
        self.logger = logging.getLogger(__name__)
        self._checked_disk = False

    @property
    def best_path(self) -> str:
        return os.path.join(self.save_dir, self.best_name)

    @property
    def final_path(self) -> str:
        return os.path.join(self.save_dir, self.final_name)

    def state_dict(self) -> dict[str, Any]:
        return {"best_metric": self.best_metric, "best_epoch": self.best_epoch}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        self.best_metric = state_dict.get("best_metric")
        self.best_epoch = state_dict.get("best_epoch")

    def follow_trainer(self, trainer: Any) -> None:
        """Record ``trainer``'s epoch and iteration in the saved models (for a saver attached to the evaluator)."""
        if not hasattr(trainer, "state"):
            raise TypeError(f"trainer must be an Ignite engine (with .state), got {type(trainer).__name__}.")
        self.trainer = trainer

    def _best_on_disk(self) -> float | None:
        """The metric value recorded in an existing best model for this saver's metric, else None."""
        settings = saved_training_settings(self.best_path) if os.path.isdir(self.best_path) else {}
        value = settings.get("key_metric_value")
        if settings.get("key_metric") != self.key_metric_name or isinstance(value, bool):
            return None
        return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None

    def attach(self, engine: Any) -> None:
        if not self.enabled:
            return
        for name in (self.best_name, self.final_name):  # folders left by a write interrupted in an earlier run
            for leftover in (f"{name}.tmp", f"{name}.old"):
                if os.path.isdir(os.path.join(self.save_dir, leftover)):
                    shutil.rmtree(os.path.join(self.save_dir, leftover))
        if self.key_metric_name is not None:
            engine.add_event_handler(Events.EPOCH_COMPLETED, self._maybe_save_best)
        if self.save_final:
            engine.add_event_handler(Events.COMPLETED, self._save_final)
        if self.save_interval > 0:
            engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.save_interval), self._save_final)

    def _improved(self, value: float) -> bool:
        if self.best_metric is None:
            return True
        return value < self.best_metric if self.mode == "min" else value > self.best_metric

    def _maybe_save_best(self, engine: Any) -> None:
        metrics = engine.state.metrics
        if self.key_metric_name not in metrics:
            raise KeyError(
                f"AFLocModelSaver: metric '{self.key_metric_name}' not computed by this engine; got {sorted(metrics)}."
            )
        value = metrics[self.key_metric_name]
        value = float(value.item() if isinstance(value, torch.Tensor) else value)
        if not self._checked_disk:
            self._checked_disk = True
            on_disk = self._best_on_disk()
            if on_disk is not None and self._improved(on_disk):
                self.logger.info(
                    f"AFLocModelSaver: {self.best_path!r} holds {self.key_metric_name}={on_disk:.5g}; only a better "
                    "model replaces it."
                )
                self.best_metric = on_disk
        if not math.isfinite(value):
            self.logger.warning(f"AFLocModelSaver: {self.key_metric_name}={value} is not finite; best model not saved.")
            return
        if self._improved(value):
            self.best_metric, self.best_epoch = value, int(self._counters(engine)["epoch"])
            info = {"kind": "best", "key_metric": self.key_metric_name, "key_metric_value": value}
            self._write(self.best_path, engine, info)
            where = f"epoch {self.best_epoch}"
            self.logger.info(f"best model ({self.key_metric_name}={value:.5g}, {where}) saved to {self.best_path!r}.")

    def _save_final(self, engine: Any) -> None:
        self._write(self.final_path, engine, {"kind": "last"})
        self.logger.info(
            f"model of epoch {engine.state.epoch}, iteration {engine.state.iteration} saved to {self.final_path!r}."
        )

    def _counters(self, engine: Any) -> dict[str, int]:
        """The trainer's epoch and iteration (the engine's own when it is the trainer or none is followed)."""
        if self.trainer is not None:
            return {"epoch": int(self.trainer.state.epoch), "iteration": int(self.trainer.state.iteration)}
        from monai.engines import Evaluator

        if isinstance(engine, Evaluator):  # its iteration counts validation batches, not training
            return {"epoch": int(engine.state.epoch)}
        return {"epoch": int(engine.state.epoch), "iteration": int(engine.state.iteration)}

    def _write(self, path: str, engine: Any, info: dict[str, Any]) -> None:
        os.makedirs(self.save_dir, exist_ok=True)
        extra = dict(self.extra)
        extra.update(info)
        extra.update(self._counters(engine))
        tmp, old = f"{path}.tmp", f"{path}.old"
        for leftover in (tmp, old):
            if os.path.isdir(leftover):
                shutil.rmtree(leftover)
        save_afloc_checkpoint(unwrap_network(self.network), tmp, extra=extra)
        if os.path.isdir(path):
            os.replace(path, old)
        os.replace(tmp, path)
        if os.path.isdir(old):
            shutil.rmtree(old)


class AFLocProgressBar:
    """
    A tqdm progress bar over the training iterations showing the loss terms (Ignite's ``ProgressBar``).

    Args:
        output_keys: entries of ``engine.state.output`` shown (those present).
        persist: keep each epoch's finished bar on screen.
        enabled: False makes ``attach`` a no-op (e.g. ``rank > 0``, or no terminal).
        desc: label of the bar.

    Example::

        AFLocProgressBar().attach(trainer)

    Raises:
        TypeError: on invalid arguments.
    """

    def __init__(
        self,
        output_keys: Sequence[str] = ("loss", "global_loss", "sentence_loss", "word_loss"),
        persist: bool = False,
        enabled: bool = True,
        desc: str = "train",
    ) -> None:
        if isinstance(output_keys, str) or not all(isinstance(k, str) for k in output_keys):
            raise TypeError(f"output_keys must be a sequence of str, got {output_keys!r}.")
        for name, flag in (("persist", persist), ("enabled", enabled)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool, got {type(flag).__name__}.")
        if not isinstance(desc, str):
            raise TypeError(f"desc must be a str, got {type(desc).__name__}.")
        self.output_keys = tuple(output_keys)
        self.persist = persist
        self.enabled = enabled
        self.desc = desc

    def _select(self, output: Any) -> dict[str, float]:
        if not isinstance(output, Mapping):
            return {}
        return {k.replace("_loss", ""): output[k] for k in self.output_keys if k in output}

    def attach(self, engine: Any) -> None:
        if not self.enabled:
            return
        if not _has_pbar:
            raise ImportError("AFLocProgressBar needs pytorch-ignite's ProgressBar (and tqdm).")
        ProgressBar(persist=self.persist, desc=self.desc).attach(engine, output_transform=self._select)
