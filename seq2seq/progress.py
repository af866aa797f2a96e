"""Progress display: tqdm bars for people, plain lines for logs.

A bar goes to stderr only when stderr is a terminal (or when asked for); in CI jobs
and ``nohup`` logs the trainer writes a plain progress line instead, at most once per
:data:`PLAIN_EVERY_S` seconds, so the log stays readable.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import IO

PLAIN_EVERY_S = 60.0


def is_terminal(stream: IO | None) -> bool:
    """Whether ``stream`` is a terminal (False when closed, missing or a pipe)."""
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):
        return False


def stderr_is_terminal() -> bool:
    """Whether a progress bar on stderr would be seen by a person."""
    return is_terminal(sys.stderr)


def bars_enabled(progress: bool | None) -> bool:
    """``progress``: True shows bars, False (``--quiet``) hides them, None shows
    them when stderr is a terminal."""
    return stderr_is_terminal() if progress is None else progress


@contextlib.contextmanager
def progress_bar(
    total: int | None, desc: str, enabled: bool, unit: str = "sent"
) -> Iterator[Callable[[int], None]]:
    """Yield ``update(n)``, advancing a bar of ``total`` items (a no-op when
    disabled). The bar is removed when done."""
    if not enabled:
        yield lambda n: None
        return
    from tqdm import tqdm  # only when a bar is shown

    with tqdm(
        total=total,
        desc=desc,
        unit=unit,
        leave=False,
        dynamic_ncols=True,
        file=sys.stderr,
    ) as bar:
        yield bar.update


def format_minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"
