"""Shared fixtures: tiny corpora and configs that train in seconds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
MULTI30K = SHARED_DATA / "multi30k"


def shared_data_root(name: str, tmp_path: Path) -> Path | None:
    """The ``data.root`` override that points a shipped config at the test copy of
    its public corpus (the configs' default is a download folder), or None."""
    if name == "multi30k_de_en.yaml":
        return SHARED_DATA / "multi30k"
    if name == "tatoeba_en_fr.yaml":
        # The test copy is the download's first 5,000 lines under another name.
        (tmp_path / "fra-eng.tsv").symlink_to(
            SHARED_DATA / "tatoeba" / "eng-fra.first5000.tsv"
        )
        return tmp_path
    return None


PAIRS = [
    ("I am cold.", "J'ai froid."),
    ("I am hot.", "J'ai chaud."),
    ("I am hungry.", "J'ai faim."),
    ("You are cold.", "Tu as froid."),
    ("He is tired.", "Il est fatigué."),
    ("She is tired.", "Elle est fatiguée."),
    ("We are happy.", "Nous sommes heureux."),
    ("They are here.", "Ils sont ici."),
    ("I like apples.", "J'aime les pommes."),
    ("He eats bread.", "Il mange du pain."),
    ("Where is the station?", "Où est la gare ?"),
    ("It is cold.", "Il fait froid."),
]


@pytest.fixture(scope="session", autouse=True)
def _prepared_data_cache(tmp_path_factory):
    """The prepared-data cache of every run in the tests (and of the processes
    they start), instead of the user's ~/.cache/seq2seq."""
    from seq2seq.prepared import CACHE_ENV

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV, str(tmp_path_factory.mktemp("prepared")))
        yield


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


@pytest.fixture
def tiny_tsv(tmp_path: Path) -> Path:
    """A TSV corpus: the pairs above, repeated so sentencepiece has enough text."""
    path = tmp_path / "pairs.tsv"
    path.write_text(
        "".join(f"{en}\t{fr}\tattr\n" for en, fr in PAIRS * 4), encoding="utf-8"
    )
    return path


def tiny_config(tmp_path: Path, tsv: Path, **sections) -> dict:
    """A config dict for a model that trains in seconds on ``tsv``."""
    cfg = {
        "run_dir": str(tmp_path / "run"),
        "seed": 7,
        "device": "cpu",
        "data": {
            "root": str(tsv.parent),
            "train": {"tsv": tsv.name},
            "valid": {"tsv": tsv.name},
            "test": {"tsv": tsv.name},
            "max_src_len": 24,
            "max_tgt_len": 24,
        },
        "tokenizer": {"vocab_size": 60, "model_type": "char"},
        "model": {
            "embed_size": 16,
            "encoder_hidden_size": 16,
            "decoder_hidden_size": 32,
            "dropout": 0.0,
        },
        "train": {
            "lr": 0.01,
            "batch_size": 8,
            "epochs": 2,
            "log_every": 5,
            "log_examples": 0,  # heatmaps cost seconds; one test turns them on
        },
        "decode": {"batch_size": 5},
    }
    for name, values in sections.items():
        if isinstance(values, dict):
            cfg.setdefault(name, {}).update(values)
        else:
            cfg[name] = values
    return cfg


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path
