"""The shipped configs from a fresh clone, before any data is downloaded: one
line naming the download command, the same from every command that reads data,
and nothing written; and a Tatoeba download the shipped config reads as it is."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import pytest

from seq2seq.cli import main
from seq2seq.download import download_command, download_tatoeba
from tests.conftest import ROOT

MISSING = {
    "multi30k_de_en.yaml": (
        "error: data/multi30k/train.de.gz: file not found (and 5 more); download "
        "Multi30k with `seq2seq data download multi30k data/multi30k` (or set "
        "data.root to the directory that holds it)\n"
    ),
    "tatoeba_en_fr.yaml": (
        "error: data/tatoeba/fra-eng.tsv: file not found; download Tatoeba with "
        "`seq2seq data download tatoeba data/tatoeba` (or set data.root to the "
        "directory that holds it)\n"
    ),
}
COMMANDS = [["validate"], ["train"], ["train", "--dry-run"], ["data", "stats"]]


@pytest.fixture
def clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory holding the shipped configs and no data, as the working one."""
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("name", sorted(MISSING))
def test_missing_public_corpus_is_one_line_with_the_download_command(
    clone: Path, capsys: pytest.CaptureFixture[str], command: list[str], name: str
) -> None:
    assert main([*command, f"configs/{name}"]) == 2
    captured = capsys.readouterr()
    assert captured.err == MISSING[name]
    assert captured.out == ""
    assert str(clone) not in captured.err  # no path the user never typed
    assert sorted(p.name for p in clone.iterdir()) == ["configs"]  # no runs/


def test_the_download_command_follows_data_root(
    clone: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["validate", "configs/multi30k_de_en.yaml", "data.root=my data/m30k"]
    assert main(argv) == 2
    assert "`seq2seq data download multi30k 'my data/m30k'`" in capsys.readouterr().err


def test_one_missing_file_of_a_present_corpus_names_the_command_too(
    clone: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = clone / "data" / "multi30k"
    root.mkdir(parents=True)
    for name in ("train", "val", "test_2016_flickr"):
        for lang in ("de", "en"):
            (root / f"{name}.{lang}.gz").write_bytes(b"")
    (root / "val.en.gz").unlink()
    assert main(["validate", "configs/multi30k_de_en.yaml"]) == 2
    assert capsys.readouterr().err.startswith(
        "error: data/multi30k/val.en.gz: file not found; download Multi30k with "
    )


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["train.de.gz"], ("Multi30k", "seq2seq data download multi30k d")),
        (
            ["test_2017_mscoco.de.gz", "val.cs.gz"],
            (
                "Multi30k",
                "seq2seq data download multi30k d --langs de cs --splits "
                "test_2017_mscoco val",
            ),
        ),
        (["fra-eng.tsv"], ("Tatoeba", "seq2seq data download tatoeba d")),
        (
            ["deu-eng.tsv"],
            ("Tatoeba", "seq2seq data download tatoeba d --pair eng-deu"),
        ),
        (["fra-eng.tsv", "deu-eng.tsv"], None),
        (["train.de.gz", "fra-eng.tsv"], None),
        (["my.tsv"], None),
        (["eng-fra.first5000.tsv"], None),
        ([], None),
    ],
)
def test_download_command(names: list[str], expected: tuple[str, str] | None) -> None:
    assert download_command("d", names) == expected


def test_custom_corpora_keep_their_own_errors(
    clone: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["validate", "configs/tatoeba_en_fr.yaml", "data.train.tsv=mine.tsv"]
    assert main(argv) == 2
    assert "download" not in capsys.readouterr().err


def _tatoeba_zip(lines: int) -> bytes:
    """A fra-eng.zip as manythings.org serves it, with ``lines`` numbered pairs."""
    text = "".join(f"Go {i}.\tVa {i} !\tCC-BY 2.0 (France)\n" for i in range(lines))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("_about.txt", "about\n")
        archive.writestr("fra.txt", text)
    return buffer.getvalue()


def test_tatoeba_download_is_what_the_shipped_config_reads(
    clone: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = clone / "mirror"
    mirror.mkdir()
    (mirror / "fra-eng.zip").write_bytes(_tatoeba_zip(6000))
    download_tatoeba(Path("data/tatoeba"), mirror=mirror)
    assert main(["validate", "configs/tatoeba_en_fr.yaml"]) == 0
    assert capsys.readouterr().out == (
        "ok: configs/tatoeba_en_fr.yaml: train 4,500 pairs, valid 250 pairs, "
        "test 250 pairs\n"
    )


def test_tatoeba_download_through_the_cli_then_validate(
    clone: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command the error names, run as printed (with a mirror), is enough."""
    mirror = clone / "mirror"
    mirror.mkdir()
    (mirror / "fra-eng.zip").write_bytes(_tatoeba_zip(5000))
    assert main(["validate", "configs/tatoeba_en_fr.yaml"]) == 2
    command = capsys.readouterr().err.split("`")[1].split()
    assert command[:3] == ["seq2seq", "data", "download"]
    assert main([*command[1:], "--mirror", str(mirror)]) == 0
    capsys.readouterr()
    assert main(["validate", "configs/tatoeba_en_fr.yaml"]) == 0
    assert "train 4,500 pairs" in capsys.readouterr().out
