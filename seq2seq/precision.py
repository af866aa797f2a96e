"""Mixed precision: which autocast dtype ``train.amp`` means on a device, and the
autocast context that training, validation and decoding share."""

from __future__ import annotations

import contextlib

import torch

from seq2seq.errors import UserError


def autocast_dtype(
    amp: str, device: torch.device, key: str = "train.amp"
) -> torch.dtype | None:
    """The autocast dtype for ``amp`` (the value of ``key``: ``train.amp`` or a
    command's ``--amp``) on ``device``; None: full precision."""
    if amp == "none":
        return None
    if amp == "auto":
        # CUDA: a GRU step is many small kernels, and autocast adds a cast per weight
        # per step; measured on an H100 (scripts/cuda_check.sh), fp32 trained 1.5x
        # faster than bf16 or fp16 at both 64-sentence and 8k-token batches.
        return torch.bfloat16 if device.type == "cpu" and _cpu_has_bf16() else None
    if amp == "fp16" and device.type == "cpu":
        raise UserError(f"{key}: fp16 needs a CUDA device; use bf16 on CPU")
    return torch.bfloat16 if amp == "bf16" else torch.float16


def _cpu_has_bf16() -> bool:
    try:
        return bool(
            torch.backends.mkldnn.is_available()
            and torch.ops.mkldnn._is_mkldnn_bf16_supported()
        )
    except (AttributeError, RuntimeError):
        return False


def autocast(
    device: torch.device, dtype: torch.dtype | None
) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to ``dtype`` on ``device``; nothing when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
