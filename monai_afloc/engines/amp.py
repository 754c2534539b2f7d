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
Mixed-precision settings for AFLoc training: one bundle key, ``amp``, resolved for the device at hand.

``"auto"`` (the bundle default) runs the image encoder and the losses under ``torch.autocast`` in bfloat16 where the
hardware computes it natively — a CPU with AVX512-BF16 or AMX, a CUDA GPU with bfloat16 support — and in float16 with
a gradient scaler on older CUDA GPUs; elsewhere it stays float32. ``True`` forces autocast (bfloat16 on CPU even
without native support, which is slower than float32 there), ``False`` is the float32 reference mode. Inside the
losses the attention logits, softmaxes, log-sum-exp, norms and cross-entropies stay in float32 (see
:mod:`monai_afloc.losses.local_contrastive`).
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["AMP_MODES", "cpu_has_native_bf16", "resolve_amp"]

#: the accepted values of the ``amp`` setting
AMP_MODES: tuple[Any, ...] = ("auto", True, False)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 matrix products natively (AVX512-BF16 or AMX tiles), checked at run time."""
    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        fn = getattr(cpu, probe, None)
        try:
            if fn is not None and bool(fn()):
                return True
        except RuntimeError:  # a build without the probe's backend
            continue
    return False


def resolve_amp(amp: bool | str, device: torch.device | str) -> tuple[bool, dict[str, Any]]:
    """
    ``(enabled, amp_kwargs)`` for MONAI's ``SupervisedTrainer(amp=..., amp_kwargs=...)`` from an ``amp`` setting.

    Args:
        amp: ``"auto"``, ``True`` or ``False`` (see the module docstring).
        device: the training device.

    Returns:
        ``(False, {})`` for float32; else ``(True, {"dtype": torch.bfloat16 | torch.float16})``. Float16 is chosen only
        on CUDA without bfloat16 support; :class:`~monai_afloc.engines.AFLocTrainIteration` then uses the engine's
        gradient scaler.

    Raises:
        ValueError: when ``amp`` is not one of ``"auto"``, ``True``, ``False``.
        TypeError: when ``device`` is not a ``torch.device`` or a device string.

    Example::

        >>> resolve_amp(False, "cpu")
        (False, {})
    """
    if not (isinstance(amp, bool) or (isinstance(amp, str) and amp == "auto")):
        raise ValueError(f"amp must be 'auto', True or False, got {amp!r}.")
    if not isinstance(device, (torch.device, str)):
        raise TypeError(f"device must be a torch.device or a str, got {type(device).__name__}.")
    device = torch.device(device)
    if amp is False:
        return False, {}
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return True, {"dtype": dtype}
    if device.type == "cpu":
        if amp == "auto" and not cpu_has_native_bf16():
            return False, {}
        return True, {"dtype": torch.bfloat16}
    if amp == "auto":  # other backends (mps, xpu, ...): keep the float32 reference
        return False, {}
    return True, {"dtype": torch.bfloat16}
