"""Real data, end to end through the CLI: a small slice of Multi30k de->en."""

from __future__ import annotations

import gzip
import re

import pytest

from seq2seq.cli import main
from tests.conftest import MULTI30K, write_config

pytestmark = pytest.mark.skipif(
    not MULTI30K.is_dir(), reason=f"Multi30k not found at {MULTI30K} (../shared/data)"
)


def _slice(name: str, dest, lines: int) -> None:
    with gzip.open(MULTI30K / name, "rt", encoding="utf-8") as handle:
        head = [next(handle) for _ in range(lines)]
    dest.write_text("".join(head), encoding="utf-8")


def test_multi30k_slice_trains_evaluates_and_translates(tmp_path, capsys):
    for split, n in (("train", 3000), ("val", 100), ("test_2016_flickr", 100)):
        for lang in ("de", "en"):
            _slice(f"{split}.{lang}.gz", tmp_path / f"{split}.{lang}", n)
    cfg = {
        "run_dir": str(tmp_path / "run"),
        "device": "cpu",
        "data": {
            "root": str(tmp_path),
            "src_lang": "de",
            "tgt_lang": "en",
            "train": {"src": "train.de", "tgt": "train.en"},
            "valid": {"src": "val.de", "tgt": "val.en"},
            "test": {"src": "test_2016_flickr.de", "tgt": "test_2016_flickr.en"},
        },
        "tokenizer": {"vocab_size": 1000},
        "model": {
            "embed_size": 32,
            "encoder_hidden_size": 32,
            "decoder_hidden_size": 64,
        },
        "train": {
            "batch_tokens": 1500,
            "epochs": 1,
            "max_steps": 40,
            "valid_every": 20,
            "lr": 0.003,
        },
    }
    config = write_config(tmp_path / "m.yaml", cfg)
    assert main(["train", str(config), "--quiet"]) == 0
    train_out = capsys.readouterr()
    assert "done: 40 steps" in train_out.out
    assert re.search(r"step 40 .* valid loss \d+\.\d+ ppl", train_out.err)

    assert (
        main(["evaluate", str(tmp_path / "run"), "--split", "test", "--beam", "2"]) == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert re.match(r"BLEU = \d+\.\d+ ", out[0])
    assert "tok:13a" in out[1]

    assert main(["translate", str(tmp_path / "run"), "Ein Mann fährt Fahrrad."]) == 0
    translation = capsys.readouterr().out.splitlines()
    assert len(translation) == 1 and translation[0].strip()


@pytest.mark.slow
def test_quickstart_config_trains_a_model_that_translates(tmp_path, capsys):
    """The README's main job, as shipped (about 1.5 minutes on 2 cores)."""
    from tests.conftest import ROOT

    config = ROOT / "configs" / "quickstart.yaml"
    run = tmp_path / "quickstart"
    assert (
        main(
            [
                "train",
                str(config),
                f"run_dir={run}",
                f"data.root={ROOT / 'data/quickstart'}",
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["translate", str(run), "I am cold.", "Where is the station?"]) == 0
    cold, station = capsys.readouterr().out.splitlines()
    assert cold == "J'ai froid."
    # the final punctuation of the question varies with the numerics of the run
    assert re.fullmatch(r"Où est la gare ?[?.]", station), station
    assert main(["evaluate", str(run), "--split", "test"]) == 0
    bleu = float(capsys.readouterr().out.split()[2])
    assert bleu > 70.0
