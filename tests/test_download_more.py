"""Multi30k files without pinned checksums, and Tatoeba pairs (seq2seq.download).

Everything is served by a local HTTP server or read from a ``file://`` mirror with
small fake files; nothing touches the network.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import logging
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from seq2seq import download
from seq2seq.cli import main
from seq2seq.config import CorpusConfig
from seq2seq.data import read_corpus
from seq2seq.download import (
    MULTI30K_FILES,
    TATOEBA_USER_AGENT,
    RemoteFile,
    check_gzip_lines,
    download_multi30k,
    download_tatoeba,
    tatoeba_language,
)
from seq2seq.errors import UserError

TATOEBA_LINES = [
    "Go.\tVa !\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272 (CM)",
    "Hi.\tSalut !\tCC-BY 2.0 (France) Attribution: tatoeba.org #538123 (CM)",
    "I'm cold.\tJ'ai froid.\tCC-BY 2.0 (France) Attribution: tatoeba.org #1 (x)",
]


def _gz(lines: int, name: str = "x") -> bytes:
    return gzip.compress(
        "".join(f"{name} {i}\n" for i in range(lines)).encode(), mtime=0
    )


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _tatoeba_zip(lang: str = "fra", lines: list[str] = TATOEBA_LINES) -> bytes:
    text = "".join(line + "\n" for line in lines).encode()
    return _zip({"_about.txt": b"about the file\n", f"{lang}.txt": text})


@dataclass
class Server:
    root: Path
    base_url: str
    requests: list[str] = field(default_factory=list)
    user_agents: list[str] = field(default_factory=list)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A local HTTP server for ``tmp_path/served``, recording paths and agents."""
    root = tmp_path / "served"
    root.mkdir()
    record = Server(root, "")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[misc, arg-type]

        def do_GET(self) -> None:
            record.requests.append(self.path)
            record.user_agents.append(self.headers.get("User-Agent", ""))
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    record.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield record
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# the table -------------------------------------------------------------------


def test_table_lists_every_official_task1_file() -> None:
    """22 raw files: cs has no 2017 test sets; only the 9 shared files are pinned."""
    expected = {
        f"{split}.{lang}.gz"
        for split in ("train", "val", "test_2016_flickr", "test_2018_flickr")
        for lang in ("de", "en", "fr", "cs")
    } | {
        f"{split}.{lang}.gz"
        for split in ("test_2017_flickr", "test_2017_mscoco")
        for lang in ("de", "en", "fr")
    }
    assert set(MULTI30K_FILES) == expected
    pinned = {name for name, remote in MULTI30K_FILES.items() if remote.sha256}
    assert pinned == {
        f"{split}.{lang}.gz"
        for split in ("train", "val", "test_2016_flickr")
        for lang in ("de", "en", "fr")
    }
    assert all(len(MULTI30K_FILES[name].sha256 or "") == 64 for name in pinned)


# gzip check --------------------------------------------------------------------


def test_check_gzip_lines(tmp_path: Path) -> None:
    path = tmp_path / "a.gz"
    path.write_bytes(gzip.compress(b"one\ntwo\nthree without newline"))
    assert check_gzip_lines(path, 3, "a.gz") == 3
    assert check_gzip_lines(path, None, "a.gz") == 3
    with pytest.raises(UserError, match=r"a\.gz: 3 lines after decompression, exp"):
        check_gzip_lines(path, 4, "a.gz")
    path.write_bytes(_gz(50)[:-12])  # cut off the end: truncated stream
    with pytest.raises(UserError, match=r"a\.gz: not a complete gzip file"):
        check_gzip_lines(path, None, "a.gz")
    path.write_bytes(b"<html>rate limited</html>")
    with pytest.raises(UserError, match=r"not a complete gzip file"):
        check_gzip_lines(path, None, "a.gz")


# Multi30k without a pinned checksum -------------------------------------------


def test_unpinned_file_downloads_logs_sha256_then_skips(
    server: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = _gz(1000)
    (server.root / "test_2017_flickr.de.gz").write_bytes(data)
    dest_dir = tmp_path / "out"

    with caplog.at_level(logging.INFO, logger="seq2seq.download"):
        paths = download_multi30k(
            dest_dir,
            langs=["de"],
            splits=["test_2017_flickr"],
            base_url=server.base_url,
        )
    assert paths == [dest_dir / "test_2017_flickr.de.gz"]
    assert paths[0].read_bytes() == data
    assert hashlib.sha256(data).hexdigest() in caplog.text
    assert "no pinned checksum" in caplog.text

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="seq2seq.download"):
        download_multi30k(
            dest_dir, ["de"], ["test_2017_flickr"], base_url=server.base_url
        )
    assert server.requests == ["/test_2017_flickr.de.gz"]  # not fetched again
    assert "skipped (already present, gzip and lines ok)" in caplog.text


def test_unpinned_file_with_wrong_line_count_is_rejected(
    server: Server, tmp_path: Path
) -> None:
    (server.root / "test_2017_mscoco.en.gz").write_bytes(_gz(460))
    dest_dir = tmp_path / "out"
    with pytest.raises(UserError, match=r"460 lines after decompression, expected 461"):
        download_multi30k(
            dest_dir, ["en"], ["test_2017_mscoco"], base_url=server.base_url
        )
    assert _names(dest_dir) == []  # neither the file nor a temporary one


def test_unpinned_truncated_gzip_is_rejected(server: Server, tmp_path: Path) -> None:
    (server.root / "test_2018_flickr.cs.gz").write_bytes(_gz(200)[:-30])
    dest_dir = tmp_path / "out"
    with pytest.raises(UserError, match=r"not a complete gzip file"):
        download_multi30k(
            dest_dir, ["cs"], ["test_2018_flickr"], base_url=server.base_url
        )
    assert _names(dest_dir) == []


def test_unpinned_broken_existing_file_is_downloaded_again(
    server: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = _gz(1014)
    (server.root / "val.cs.gz").write_bytes(data)
    dest_dir = tmp_path / "out"
    dest_dir.mkdir()
    (dest_dir / "val.cs.gz").write_bytes(_gz(1014)[:40])  # an interrupted copy

    with caplog.at_level(logging.WARNING, logger="seq2seq.download"):
        download_multi30k(dest_dir, ["cs"], ["val"], base_url=server.base_url)
    assert (dest_dir / "val.cs.gz").read_bytes() == data
    assert "downloading it again" in caplog.text


def test_split_missing_in_a_language_fails_before_anything(tmp_path: Path) -> None:
    with pytest.raises(UserError) as info:
        download_multi30k(
            tmp_path / "out",
            langs=["de", "cs"],
            splits=["val", "test_2017_mscoco"],
            base_url="http://127.0.0.1:9",
        )
    assert str(info.value) == (
        "Multi30k has no test_2017_mscoco.cs.gz; test_2017_mscoco exists in de, en, fr"
    )
    assert not (tmp_path / "out").exists()


def test_mixed_pinned_and_unpinned_from_mirror(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Through the CLI: pinned files are verified, unpinned ones report a sha256."""
    pinned = _gz(3, "val")
    table = dict(MULTI30K_FILES)
    table["val.en.gz"] = RemoteFile(hashlib.sha256(pinned).hexdigest(), 3)
    table["val.cs.gz"] = RemoteFile(None, 3)
    monkeypatch.setattr(download, "MULTI30K_FILES", table)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "val.en.gz").write_bytes(pinned)
    unpinned = _gz(3, "cs")
    (mirror / "val.cs.gz").write_bytes(unpinned)
    dest = tmp_path / "out"
    argv = ["data", "download", "multi30k", str(dest), "--langs", "en", "cs"]
    argv += ["--splits", "val", "--mirror", str(mirror)]

    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines() == [
        "ok   val.en.gz (downloaded)",
        f"ok   val.cs.gz (downloaded, sha256 {hashlib.sha256(unpinned).hexdigest()}"
        ", not pinned)",
    ]
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines() == [
        "ok   val.en.gz (skipped, checksum ok)",
        "ok   val.cs.gz (skipped, gzip ok, not pinned)",
    ]


def test_multi30k_cli_defaults_are_unchanged() -> None:
    from seq2seq.cli import build_parser

    args = build_parser().parse_args(["data", "download", "multi30k", "d"])
    assert (args.dataset, args.dest) == ("multi30k", Path("d"))
    assert args.langs == ["de", "en", "fr"]
    assert args.splits == ["train", "val", "test_2016_flickr"]


# Tatoeba -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pair", "lang"), [("eng-fra", "fra"), ("fra-eng", "fra"), ("DEU-eng", "deu")]
)
def test_tatoeba_language(pair: str, lang: str) -> None:
    assert tatoeba_language(pair) == lang


@pytest.mark.parametrize("pair", ["fra-deu", "eng-eng", "english-fra", "fra", "e-f"])
def test_tatoeba_language_rejects(pair: str) -> None:
    with pytest.raises(UserError, match="expected English and one other language"):
        tatoeba_language(pair)


def test_tatoeba_over_http(
    server: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    archive = _tatoeba_zip()
    (server.root / "fra-eng.zip").write_bytes(archive)
    dest_dir = tmp_path / "tatoeba"

    with caplog.at_level(logging.INFO, logger="seq2seq.download"):
        path = download_tatoeba(dest_dir, "eng-fra", base_url=server.base_url)

    assert path == dest_dir / "fra-eng.tsv"
    assert path.read_text(encoding="utf-8").splitlines() == TATOEBA_LINES
    assert _names(dest_dir) == ["fra-eng.tsv"]  # no zip, no temporary file
    assert server.requests == ["/fra-eng.zip"]
    assert server.user_agents == [TATOEBA_USER_AGENT]
    assert hashlib.sha256(archive).hexdigest() in caplog.text
    assert "3 pairs" in caplog.text

    # It loads as a TSV corpus, English in column 0.
    sources, targets = read_corpus(CorpusConfig(tsv=path.name), dest_dir, "train")
    assert sources[2] == "I'm cold." and targets[2] == "J'ai froid."

    # Present: kept as it is, no request (there is no checksum to compare).
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="seq2seq.download"):
        assert download_tatoeba(dest_dir, "fra-eng", base_url=server.base_url) == path
    assert server.requests == ["/fra-eng.zip"]
    assert "delete the file to fetch the current version" in caplog.text


def test_tatoeba_from_mirror_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "deu-eng.zip").write_bytes(_tatoeba_zip("deu", ["Hi.\tHallo!\tx"]))
    dest = tmp_path / "out"
    argv = ["data", "download", "tatoeba", str(dest), "--pair", "eng-deu"]

    assert main([*argv, "--mirror", str(mirror)]) == 0
    assert capsys.readouterr().out == "ok   deu-eng.tsv (downloaded)\n"
    assert (dest / "deu-eng.tsv").read_text(encoding="utf-8") == "Hi.\tHallo!\tx\n"
    assert main([*argv, "--mirror", str(mirror)]) == 0
    assert capsys.readouterr().out == "ok   deu-eng.tsv (skipped, already present)\n"


def test_tatoeba_missing_mirror_file(tmp_path: Path, capsys) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    argv = ["data", "download", "tatoeba", str(tmp_path / "out"), "--pair", "ita-eng"]
    assert main([*argv, "--mirror", str(mirror)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "ita-eng.zip not found; copy ita-eng.zip into the mirror" in err
    assert "https://www.manythings.org/anki/ita-eng.zip" in err


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        (b"<html>Not Acceptable</html>", r"fra-eng\.zip: not a zip archive"),
        (_zip({"_about.txt": b"x"}), r"the zip holds no fra\.txt \(it holds _about"),
        (_zip({"fra.txt": b""}), r"fra\.txt is empty"),
        (_zip({"fra.txt": b"Go.\tVa !\nno tab here\n"}), r"fra\.txt:2: expected engl"),
        (
            _zip({"fra.txt": b"Go.\tVa \xe9\n"}),
            r"fra\.txt:1: not valid UTF-8 \(byte 0xe9",
        ),
    ],
)
def test_tatoeba_bad_archives_leave_nothing(
    server: Server, tmp_path: Path, archive: bytes, message: str
) -> None:
    (server.root / "fra-eng.zip").write_bytes(archive)
    dest_dir = tmp_path / "out"
    with pytest.raises(UserError, match=message):
        download_tatoeba(dest_dir, "eng-fra", base_url=server.base_url)
    assert _names(dest_dir) == []


def test_tatoeba_http_error_names_the_url(server: Server, tmp_path: Path) -> None:
    with pytest.raises(UserError) as info:
        download_tatoeba(tmp_path / "out", "eng-spa", base_url=server.base_url)
    assert f"{server.base_url}/spa-eng.zip: HTTP 404" in str(info.value)
    assert "--mirror DIR" in str(info.value)
    assert _names(tmp_path / "out") == []


def test_downloaded_files_get_the_usual_permissions(
    server: Server, tmp_path: Path
) -> None:
    """Not the private 0600 of the temporary file they were written to."""
    import os
    import stat

    (server.root / "f.gz").write_bytes(_gz(3))
    dest = tmp_path / "f.gz"
    assert download.fetch(f"{server.base_url}/f.gz", dest, None)
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o666 & ~umask
