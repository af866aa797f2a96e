"""Tests for seq2seq.download against a local HTTP server and file:// mirrors."""

from __future__ import annotations

import argparse
import gzip
import hashlib
import http.server
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from seq2seq import download
from seq2seq.download import (
    MULTI30K_FILES,
    RemoteFile,
    add_download_arguments,
    download_multi30k,
    fetch,
    run_download,
)
from seq2seq.errors import UserError

REAL_MIRROR = Path(__file__).resolve().parents[1].parent / "shared/data/multi30k"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fake_gz(text: str) -> bytes:
    """A small, byte-for-byte reproducible gzip file."""
    return gzip.compress(text.encode(), mtime=0)


@dataclass
class Server:
    """A local HTTP server serving ``root``, recording the paths requested."""

    root: Path
    base_url: str
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    root = tmp_path / "served"
    root.mkdir()
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[misc, arg-type]

        def do_GET(self) -> None:
            requests.append(self.path)
            if self.path == "/truncated.gz":
                # Promise more bytes than are sent, then close the connection.
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.write(b"only a few bytes")
                self.close_connection = True
                return
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield Server(root, f"http://127.0.0.1:{httpd.server_address[1]}", requests)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def fake_multi30k(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """Small fake pinned Multi30k files, the checksum table patched to match them."""
    files = {
        name: _fake_gz("".join(f"{name} line {i}\n" for i in range(3)))
        for name, remote in MULTI30K_FILES.items()
        if remote.sha256 is not None
    }
    table = {name: RemoteFile(_sha256(data), 3) for name, data in files.items()}
    monkeypatch.setattr(download, "MULTI30K_FILES", table)
    return files


def _write_all(directory: Path, files: dict[str, bytes]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (directory / name).write_bytes(data)


# fetch -------------------------------------------------------------------------


def test_fetch_downloads_then_skips_without_a_request(
    server: Server, tmp_path: Path
) -> None:
    data = _fake_gz("ein Hund\nzwei Katzen\n")
    (server.root / "train.de.gz").write_bytes(data)
    out = tmp_path / "out"
    out.mkdir()
    dest = out / "train.de.gz"
    url = f"{server.base_url}/train.de.gz"

    assert fetch(url, dest, _sha256(data)) is True
    assert dest.read_bytes() == data
    assert server.requests == ["/train.de.gz"]

    assert fetch(url, dest, _sha256(data)) is False
    assert server.requests == ["/train.de.gz"]  # no second request
    assert sorted(p.name for p in out.iterdir()) == ["train.de.gz"]


def test_fetch_redownloads_a_corrupt_file(
    server: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = _fake_gz("a dog\n")
    (server.root / "val.en.gz").write_bytes(data)
    dest = tmp_path / "val.en.gz"
    dest.write_bytes(b"corrupt")

    with caplog.at_level(logging.WARNING, logger="seq2seq.download"):
        assert fetch(f"{server.base_url}/val.en.gz", dest, _sha256(data)) is True

    assert dest.read_bytes() == data
    assert server.requests == ["/val.en.gz"]
    assert "checksum mismatch" in caplog.text
    assert "downloading it again" in caplog.text


def test_fetch_checksum_mismatch_leaves_nothing_behind(
    server: Server, tmp_path: Path
) -> None:
    data = _fake_gz("served\n")
    (server.root / "train.fr.gz").write_bytes(data)
    out = tmp_path / "out"
    out.mkdir()
    dest = out / "train.fr.gz"
    url = f"{server.base_url}/train.fr.gz"
    wrong = "0" * 64

    with pytest.raises(UserError) as info:
        fetch(url, dest, wrong)

    message = str(info.value)
    assert url in message
    assert wrong in message
    assert _sha256(data) in message
    assert "\n" not in message
    assert list(out.iterdir()) == []  # neither dest nor a temporary file


def test_fetch_http_404_names_the_url(server: Server, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    url = f"{server.base_url}/missing.gz"
    with pytest.raises(UserError) as info:
        fetch(url, out / "missing.gz", "0" * 64)

    message = str(info.value)
    assert url in message
    assert "HTTP 404" in message
    assert "--mirror DIR" in message
    assert list(out.iterdir()) == []


def test_fetch_truncated_body_is_rejected(server: Server, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    url = f"{server.base_url}/truncated.gz"
    with pytest.raises(UserError, match="truncated: got 16 of 1000 bytes"):
        fetch(url, out / "truncated.gz", None)
    assert list(out.iterdir()) == []


def test_fetch_connection_refused(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/train.de.gz"  # nothing listens there now

    with pytest.raises(UserError) as info:
        fetch(url, tmp_path / "train.de.gz", None, timeout=5)

    assert url in str(info.value)
    assert "--mirror DIR" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_fetch_timeout(tmp_path: Path) -> None:
    # A socket that listens but never answers: the request waits for a response.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/train.de.gz"
        with pytest.raises(UserError) as info:
            fetch(url, tmp_path / "train.de.gz", None, timeout=0.2)

    assert url in str(info.value)
    assert "timed out" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_fetch_rejects_unsupported_scheme(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"ftp://example\.org/x\.gz: unsupported URL"):
        fetch("ftp://example.org/x.gz", tmp_path / "x.gz", None)
    assert list(tmp_path.iterdir()) == []


def test_fetch_without_checksum_keeps_an_existing_file(
    server: Server, tmp_path: Path
) -> None:
    (server.root / "f.gz").write_bytes(b"new")
    dest = tmp_path / "f.gz"
    url = f"{server.base_url}/f.gz"

    assert fetch(url, dest, None) is True
    assert dest.read_bytes() == b"new"
    dest.write_bytes(b"edited locally")
    assert fetch(url, dest, None) is False
    assert dest.read_bytes() == b"edited locally"
    assert server.requests == ["/f.gz"]


def test_fetch_with_progress_bar(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = bytes(range(256)) * 1024  # several chunks
    (server.root / "big.gz").write_bytes(data)
    dest = tmp_path / "big.gz"

    assert fetch(f"{server.base_url}/big.gz", dest, _sha256(data), progress=True)
    assert dest.read_bytes() == data
    assert "big.gz" in capsys.readouterr().err


# download_multi30k ---------------------------------------------------------------


def test_download_multi30k_over_http_then_skips(
    server: Server,
    tmp_path: Path,
    fake_multi30k: dict[str, bytes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    _write_all(server.root, fake_multi30k)
    dest_dir = tmp_path / "data" / "multi30k"  # created by the call

    with caplog.at_level(logging.INFO, logger="seq2seq.download"):
        paths = download_multi30k(
            dest_dir,
            langs=["de", "en"],
            splits=["train", "val"],
            base_url=server.base_url,
        )

    names = ["train.de.gz", "train.en.gz", "val.de.gz", "val.en.gz"]
    assert paths == [dest_dir / name for name in names]
    for path in paths:
        assert path.read_bytes() == fake_multi30k[path.name]
    assert sorted(server.requests) == sorted(f"/{name}" for name in names)
    assert caplog.text.count("downloaded") == 4

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="seq2seq.download"):
        again = download_multi30k(
            dest_dir,
            langs=["de", "en"],
            splits=["train", "val"],
            base_url=server.base_url,
        )
    assert again == paths
    assert len(server.requests) == 4  # nothing fetched the second time
    assert caplog.text.count("skipped (already present, checksum ok)") == 4


def test_download_multi30k_from_file_mirror(
    tmp_path: Path, fake_multi30k: dict[str, bytes]
) -> None:
    mirror = tmp_path / "mirror"
    _write_all(mirror, fake_multi30k)
    dest_dir = tmp_path / "out"

    paths = download_multi30k(dest_dir, mirror=mirror)

    assert [p.name for p in paths] == [
        f"{split}.{lang}.gz"
        for split in ("train", "val", "test_2016_flickr")
        for lang in ("de", "en", "fr")
    ]
    for path in paths:
        assert path.read_bytes() == fake_multi30k[path.name]
    assert sorted(p.name for p in dest_dir.iterdir()) == sorted(fake_multi30k)


def test_download_multi30k_mirror_with_a_corrupt_file(
    tmp_path: Path, fake_multi30k: dict[str, bytes]
) -> None:
    mirror = tmp_path / "mirror"
    _write_all(mirror, fake_multi30k)
    (mirror / "val.de.gz").write_bytes(b"not the real file")
    dest_dir = tmp_path / "out"

    with pytest.raises(UserError, match=r"checksum mismatch for file://.*/val\.de\.gz"):
        download_multi30k(dest_dir, langs=["de"], splits=["val"], mirror=mirror)
    assert list(dest_dir.iterdir()) == []


def test_download_multi30k_missing_mirror_file(
    tmp_path: Path, fake_multi30k: dict[str, bytes]
) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with pytest.raises(UserError, match=r"train\.de\.gz not found; copy"):
        download_multi30k(
            tmp_path / "out", langs=["de"], splits=["train"], mirror=mirror
        )


def test_download_multi30k_missing_mirror_directory(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"mirror directory .* does not exist"):
        download_multi30k(tmp_path / "out", mirror=tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"langs": ["de", "xx"]},
            "unknown Multi30k language 'xx'; choose from de, en, fr, cs",
        ),
        (
            {"splits": ["test_2019_flickr"]},
            (
                "unknown Multi30k split 'test_2019_flickr'; choose from train, val, "
                "test_2016_flickr, test_2017_flickr, test_2017_mscoco, "
                "test_2018_flickr"
            ),
        ),
    ],
)
def test_download_multi30k_rejects_unknown_choices(
    tmp_path: Path, kwargs: dict[str, list[str]], expected: str
) -> None:
    with pytest.raises(UserError) as info:
        download_multi30k(tmp_path / "out", base_url="http://127.0.0.1:9", **kwargs)  # type: ignore[arg-type]
    assert str(info.value) == expected
    assert not (tmp_path / "out").exists()  # validated before anything happens


# CLI helpers -------------------------------------------------------------------


def test_run_download_prints_one_line_per_file(
    tmp_path: Path, fake_multi30k: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = tmp_path / "mirror"
    _write_all(mirror, fake_multi30k)
    dest_dir = tmp_path / "out"
    parser = argparse.ArgumentParser()
    add_download_arguments(parser)
    argv = ["multi30k", str(dest_dir), "--langs", "de", "en", "--splits", "val"]
    args = parser.parse_args([*argv, "--mirror", str(mirror)])

    assert args.base_url == download.MULTI30K_BASE_URL
    assert run_download(args) == 0
    assert capsys.readouterr().out.splitlines() == [
        "ok   val.de.gz (downloaded)",
        "ok   val.en.gz (downloaded)",
    ]

    assert run_download(args) == 0
    assert capsys.readouterr().out.splitlines() == [
        "ok   val.de.gz (skipped, checksum ok)",
        "ok   val.en.gz (skipped, checksum ok)",
    ]


def test_download_arguments_defaults() -> None:
    parser = argparse.ArgumentParser()
    add_download_arguments(parser)
    args = parser.parse_args(["multi30k", "data/multi30k"])
    assert args.dataset == "multi30k"
    assert args.dest == Path("data/multi30k")
    assert args.langs == ["de", "en", "fr"]
    assert args.splits == ["train", "val", "test_2016_flickr"]
    assert args.base_url == download.MULTI30K_BASE_URL
    assert args.mirror is None


# The real files ------------------------------------------------------------------


@pytest.mark.skipif(
    not REAL_MIRROR.is_dir(),
    reason=f"no local copy of the official Multi30k files at {REAL_MIRROR}",
)
def test_real_multi30k_files_from_shared_mirror(tmp_path: Path) -> None:
    dest_dir = tmp_path / "multi30k"
    paths = download_multi30k(dest_dir, mirror=REAL_MIRROR)

    pinned = [name for name, file in MULTI30K_FILES.items() if file.sha256]
    assert sorted(p.name for p in paths) == sorted(pinned)
    for path in paths:
        expected = MULTI30K_FILES[path.name]
        assert _sha256(path.read_bytes()) == expected.sha256
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            assert sum(1 for _ in handle) == expected.lines, path.name
