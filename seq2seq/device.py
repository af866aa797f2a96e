"""Which torch device a command runs on."""

from __future__ import annotations

import torch

from seq2seq.errors import UserError


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device: cuda was requested but no CUDA GPU is available")
    return torch.device(name)
