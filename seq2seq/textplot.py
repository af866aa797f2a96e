"""Attention heatmaps as text, for terminals (``translate --show-attention``).

Rows are target subwords, columns source subwords; each cell is as wide as its
column's label and filled with a shade of the weight (``█`` most, blank under 0.05)::

          ▁Ein ▁Hund ▁läuft .  </s>
    ▁A    ████
    ▁dog       ▓▓▓▓▓
    ▁runs            ██████
    .                       ▓▓ ░░░░
    </s>                    ░░ ████
"""

from __future__ import annotations

import bisect
import unicodedata
from collections.abc import Sequence

SHADES = " ·░▒▓█"
LEVELS = (0.05, 0.15, 0.35, 0.6, 0.85)  # a weight >= LEVELS[i] gets SHADES[i + 1]


def shade(weight: float) -> str:
    return SHADES[bisect.bisect_right(LEVELS, weight)]


def display_width(text: str) -> int:
    """Terminal columns: wide (CJK) characters take two, combining marks none."""
    width = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def _pad(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))


def text_heatmap(
    weights: Sequence[Sequence[float]],
    source: Sequence[str],
    target: Sequence[str],
    corner: str = "",
) -> str:
    """The heatmap of ``weights`` (one row per target piece, one column per source
    piece) as lines of text, trailing blanks removed. ``corner``: a label written
    in the header line above the target pieces (which n-best alternative)."""
    widths = [max(display_width(piece), 1) for piece in source]
    label = max([display_width(piece) for piece in target] + [display_width(corner)])
    header = " ".join(_pad(p, w) for p, w in zip(source, widths))
    lines = [_pad(corner, label) + " " + header]
    for piece, row in zip(target, weights):
        cells = " ".join(shade(float(w)) * width for w, width in zip(row, widths))
        lines.append(_pad(piece, label) + " " + cells)
    return "\n".join(line.rstrip() for line in lines)
