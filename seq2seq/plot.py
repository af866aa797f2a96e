"""Attention heatmaps as figures, PNG files or pixel arrays (matplotlib's Agg
canvas: no display needed).

Only the object-oriented API is used (``Figure`` + ``FigureCanvasAgg``), so
importing this module changes no global matplotlib state such as the backend.
"""

from __future__ import annotations

import textwrap
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

# DejaVu Sans ships with matplotlib and covers Latin (umlauts, accents), Greek,
# Cyrillic and sentencepiece's "▁"; the others are tried, in order, for glyphs it
# lacks (CJK), when installed.
FONT_CANDIDATES = (
    "DejaVu Sans",
    "Noto Sans CJK JP",
    "Noto Sans CJK SC",
    "Noto Sans CJK TC",
    "Noto Sans CJK KR",
    "Source Han Sans",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Droid Sans Fallback",
    "AR PL UMing CN",
    "Noto Sans",
)
CELL_INCHES = 0.32  # size of one heatmap cell
TITLE_CHARS_PER_INCH = 11  # title characters per line, per inch of figure width
DPI = 100


@cache
def font_families() -> list[str]:
    """The installed fonts of :data:`FONT_CANDIDATES`, in order (at least one:
    matplotlib's default sans-serif when none is found)."""
    installed = {font.name for font in font_manager.fontManager.ttflist}
    found = [name for name in FONT_CANDIDATES if name in installed]
    return found or ["sans-serif"]


def plot_attention(
    weights: Any,
    src_pieces: list[str],
    tgt_pieces: list[str],
    path: str | Path,
    title: str = "",
) -> Path:
    """Save the heatmap of :func:`attention_figure` as a PNG file (its folder must
    exist) and return its path."""
    path = Path(path)
    attention_figure(weights, src_pieces, tgt_pieces, title).savefig(
        path, format="png", dpi=DPI
    )
    return path


def figure_pixels(figure: Figure) -> np.ndarray:
    """The figure drawn at :data:`DPI`: a (H, W, 3) uint8 RGB array (TensorBoard's
    ``add_image(..., dataformats="HWC")`` takes it without a file)."""
    figure.set_dpi(DPI)
    canvas = figure.canvas
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()  # (H, W, 3)


def attention_figure(
    weights: Any,
    src_pieces: list[str],
    tgt_pieces: list[str],
    title: str = "",
) -> Figure:
    """The heatmap of an attention matrix.

    Args:
        weights: (T, S) array-like (numpy array, torch tensor, nested lists): row t
            is the attention of target piece t over the source pieces.
        src_pieces: S source subwords, shown on the x axis (rotated).
        tgt_pieces: T target subwords (``</s>`` included), shown on the y axis.
        title: shown above the plot (wrapped), e.g. the translation.

    Characters no installed font has are drawn as boxes, without warnings.
    """
    matrix = np.asarray(weights, dtype=np.float32)  # (T, S)
    if matrix.ndim != 2 or matrix.shape != (len(tgt_pieces), len(src_pieces)):
        raise ValueError(
            f"attention of shape {matrix.shape} does not match "
            f"{len(tgt_pieces)} target x {len(src_pieces)} source pieces"
        )
    rows, columns = matrix.shape
    # Room for the cells, the rotated source labels, the target labels, the colour
    # bar and the wrapped title.
    longest_src = max((len(p) for p in src_pieces), default=1)
    longest_tgt = max((len(p) for p in tgt_pieces), default=1)
    width = max(4.0, CELL_INCHES * columns + 0.08 * longest_tgt + 2.2)
    title = textwrap.fill(title, max(20, int(TITLE_CHARS_PER_INCH * width)))
    title_lines = title.count("\n") + 1 if title else 0
    height = max(3.0, CELL_INCHES * rows + 0.07 * longest_src + 0.2 * title_lines + 1.3)
    rc = {"font.family": font_families(), "font.size": 9}
    with matplotlib.rc_context(rc), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph .* missing from")
        figure = Figure(figsize=(width, height), layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        image = axes.imshow(
            matrix,
            cmap="viridis",
            vmin=0.0,
            vmax=1.0,
            aspect="equal",
            interpolation="nearest",
        )
        axes.set_xticks(range(columns), labels=src_pieces)
        axes.set_yticks(range(rows), labels=tgt_pieces)
        axes.tick_params(axis="x", labelrotation=60)
        for label in axes.get_xticklabels():
            label.set_horizontalalignment("right")
            label.set_rotation_mode("anchor")
        axes.set_xlabel("source")
        axes.set_ylabel("target")
        if title:
            axes.set_title(title, fontsize=10)
        figure.colorbar(image, ax=axes, shrink=0.8, label="attention weight")
        figure.canvas.draw()  # lay out now, while the glyph warnings are silenced
    return figure
