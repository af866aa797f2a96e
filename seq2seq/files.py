"""File-system helpers shared by checkpoints and downloads."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_directory(directory: Path) -> None:
    """Persist a rename in ``directory`` where the platform allows it (where a
    directory cannot be opened or synced, as on Windows, this does nothing)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
