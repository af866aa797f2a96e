"""Atomic saves, safe loading, and refusal of checkpoints that would run code."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from seq2seq.checkpoint import load_checkpoint, resolve_checkpoint, save_checkpoint
from seq2seq.errors import UserError


def test_round_trip_keeps_tensors_and_plain_data(tmp_path):
    state = {
        "model": {"w": torch.arange(6.0).view(2, 3)},
        "config": {"a": [1, 2.5, None]},
        "tokenizer": {"src": b"\x00bytes", "tgt": None},
        "rng": {"python": [3, [1, 2]]},
    }
    save_checkpoint(state, tmp_path / "c.pt")
    loaded = load_checkpoint(tmp_path / "c.pt")
    torch.testing.assert_close(loaded["model"]["w"], state["model"]["w"])
    assert loaded["config"] == state["config"]
    assert loaded["tokenizer"] == state["tokenizer"]
    # no temporary left; the sha256 file beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt", "c.pt.sha256"]


def test_a_failure_during_the_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "latest.pt"
    save_checkpoint({"step": 1}, path)

    def failing_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint({"step": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "latest.pt",
        "latest.pt.sha256",
    ]


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


# the crafted file is a plain pickle (protocol 4), which torch.load notes
@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_checkpoint_carrying_code_is_refused_and_runs_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    torch.save({"format": "seq2seq-checkpoint-v1", "payload": _RunsCode()}, path)
    with pytest.raises(UserError, match="refused to load"):
        load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(_RunsCode()))
    with pytest.raises(UserError):
        load_checkpoint(raw)
    assert not (tmp_path / "pwned").exists()


def test_truncated_checkpoint_is_reported(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint({"model": {"w": torch.randn(100, 100)}}, path)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(UserError, match="corrupt or truncated"):
        load_checkpoint(path)


def test_run_directory_resolves_to_best_then_latest(tmp_path):
    with pytest.raises(UserError, match="no checkpoint"):
        resolve_checkpoint(tmp_path)
    save_checkpoint({}, tmp_path / "checkpoints" / "latest.pt")
    assert resolve_checkpoint(tmp_path).name == "latest.pt"
    save_checkpoint({}, tmp_path / "checkpoints" / "best.pt")
    assert resolve_checkpoint(tmp_path).name == "best.pt"
    with pytest.raises(UserError, match="no such run directory"):
        resolve_checkpoint(tmp_path / "missing")
