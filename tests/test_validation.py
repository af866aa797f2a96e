"""The pieces validation hands to the trainer: heatmaps drawn in memory for
TensorBoard, and the checkpoint keeper's ranking of the best scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.image import imread

from seq2seq.checkpoint import CheckpointKeeper
from seq2seq.plot import attention_figure, figure_pixels, plot_attention


def test_heatmap_pixels_in_memory_match_the_png(tmp_path):
    weights = np.eye(3, 4)
    src, tgt = ["▁Ein", "▁Hund", ".", "</s>"], ["▁A", "▁dog", "</s>"]
    pixels = figure_pixels(attention_figure(weights, src, tgt, "A dog"))
    png = imread(plot_attention(weights, src, tgt, tmp_path / "a.png", "A dog"))
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3
    assert pixels.shape[:2] == png.shape[:2]
    # the same picture (PNG: floats in [0, 1], RGBA)
    assert np.abs(pixels / 255.0 - png[..., :3]).mean() < 0.01


def test_the_keeper_ranks_scores_and_names_the_files_that_fall_off():
    keeper = CheckpointKeeper(Path("ckpt"), keep_last=1, keep_best=2)
    kept, made_it, dropped = keeper.rank_best([], 10.0, 100)
    assert (kept, made_it, dropped) == ([[10.0, 100]], True, [])
    kept, made_it, dropped = keeper.rank_best(kept, 12.0, 200)
    assert (kept, made_it, dropped) == ([[12.0, 200], [10.0, 100]], True, [])
    kept, made_it, dropped = keeper.rank_best(kept, 9.0, 300)
    assert (kept, made_it) == ([[12.0, 200], [10.0, 100]], False)
    assert dropped == [Path("ckpt/step300.pt")]  # never saved: nothing to delete
    kept, made_it, dropped = keeper.rank_best(kept, 11.0, 400)
    assert kept == [[12.0, 200], [11.0, 400]] and made_it
    assert dropped == [Path("ckpt/step100.pt")]
    # keep_best 1: best.pt alone, no step files
    assert CheckpointKeeper(Path("c"), 1, 1).rank_best([], 5.0, 1) == ([], False, [])


def test_snapshots_are_due_once_each_when_their_minute_passes():
    keeper = CheckpointKeeper(Path("c"), 1, 1, snapshot_minutes=[15, 30])
    assert keeper.snapshots_due([], 14 * 60) == []
    assert keeper.snapshots_due([], 31 * 60) == [15, 30]
    assert keeper.snapshots_due([15], 31 * 60) == [30]
