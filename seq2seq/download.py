"""Download the Multi30k task-1 corpus, with checksums and atomic writes.

Every file is streamed to a temporary file next to its destination, hashed while it
is written, checked against the sha256 recorded below, flushed to disk and only then
renamed onto the destination. An interrupted or corrupt download therefore never
leaves a partial file where the data loader looks for it, and a second run skips
every file that is already present with the right checksum.

Machines without internet access can point ``--mirror DIR`` (``mirror=``) at a local
directory holding the same file names; it is read through ``file://`` URLs with the
same code path and the same checks.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import logging
import os
import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import IO

from seq2seq.errors import UserError

logger = logging.getLogger(__name__)

MULTI30K_BASE_URL = (
    "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw"
)
"""Raw task-1 files in the dataset's own repository, github.com/multi30k/dataset."""

MULTI30K_LANGS: tuple[str, ...] = ("de", "en", "fr")
MULTI30K_SPLITS: tuple[str, ...] = ("train", "val", "test_2016_flickr")

URL_SCHEMES: frozenset[str] = frozenset({"http", "https", "file"})
"""URL schemes ``fetch`` accepts."""

CHUNK_SIZE = 1 << 16
"""Bytes read from the network and written to disk per step."""


@dataclass(frozen=True)
class RemoteFile:
    """What the official copy of one dataset file looks like."""

    sha256: str
    """Hex sha256 of the compressed ``.gz`` file as published."""
    lines: int
    """Number of lines (sentences) after decompression."""


MULTI30K_FILES: dict[str, RemoteFile] = {
    "test_2016_flickr.de.gz": RemoteFile(
        "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8", 1000
    ),
    "test_2016_flickr.en.gz": RemoteFile(
        "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9", 1000
    ),
    "test_2016_flickr.fr.gz": RemoteFile(
        "6d326e188d259fb1d04ac19eae3af956559b3a0b93d7635e56c90987c40c8b90", 1000
    ),
    "train.de.gz": RemoteFile(
        "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6", 29000
    ),
    "train.en.gz": RemoteFile(
        "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f", 29000
    ),
    "train.fr.gz": RemoteFile(
        "622e75069e9f4c577425c4f277116ce66e63a2401c0a2312d90073cb12379a3c", 29000
    ),
    "val.de.gz": RemoteFile(
        "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a", 1014
    ),
    "val.en.gz": RemoteFile(
        "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28", 1014
    ),
    "val.fr.gz": RemoteFile(
        "ca3106f1a72390591d25f6c45cb4cd39dec4cd3f123e099748a3ce5256c160e9", 1014
    ),
}
"""The official Multi30k task-1 raw files, keyed by file name."""

FileReport = Callable[[Path, bool], None]
"""Called once per file with its path and whether it was downloaded (else skipped)."""


def multi30k_file_name(split: str, lang: str) -> str:
    """Return the published file name of one split in one language."""
    return f"{split}.{lang}.gz"


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of the file at ``path``, read in chunks."""
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            hasher.update(chunk)
    return hasher.hexdigest()


def fetch(
    url: str,
    dest: Path,
    sha256: str | None,
    *,
    progress: bool = False,
    timeout: float = 60,
) -> bool:
    """Download ``url`` to ``dest`` unless ``dest`` already has checksum ``sha256``.

    The body is streamed into a temporary file in ``dest``'s directory, hashed on
    the way, checked against ``sha256``, fsynced and renamed onto ``dest``, so
    ``dest`` is either untouched or complete. An existing ``dest`` whose checksum
    differs is downloaded again. With ``sha256=None`` nothing can be verified: an
    existing ``dest`` is kept as it is, and a new download is only checked for
    truncation against the server's Content-Length.

    Args:
        url: Source URL (``http``, ``https`` or ``file``).
        dest: Destination file; its directory must exist.
        sha256: Expected hex sha256, or ``None`` to skip verification.
        progress: Show a tqdm progress bar on stderr.
        timeout: Seconds to wait for the connection and for each read.

    Returns:
        True if the file was downloaded, False if an existing file was kept.

    Raises:
        UserError: On network errors, HTTP errors, a checksum mismatch or an
            unwritable destination.
    """
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in URL_SCHEMES:
        raise UserError(
            f"cannot download {url}: unsupported URL scheme {scheme!r}; "
            f"use an http://, https:// or file:// URL"
        )
    expected = sha256.lower() if sha256 is not None else None
    if dest.is_dir():
        raise UserError(f"{dest} is a directory; pass a file path to download {url}")
    if dest.exists():
        if expected is None:
            logger.info("%s: already present, not verified (no checksum)", dest)
            return False
        actual = sha256_file(dest)
        if actual == expected:
            return False
        logger.warning(
            "%s: checksum mismatch (expected %s, got %s); downloading it again",
            dest,
            expected,
            actual,
        )

    with _temporary_file(dest) as (tmp_path, tmp_file):
        actual = _stream(url, tmp_file, progress=progress, timeout=timeout)
        if expected is not None and actual != expected:
            raise UserError(
                f"checksum mismatch for {url}: expected sha256 {expected}, got "
                f"{actual}; the file may be corrupt or changed upstream, "
                f"download it manually to {dest} or use --mirror DIR"
            )
        try:
            tmp_file.flush()
            os.fsync(tmp_file.fileno())
            tmp_file.close()
            os.replace(tmp_path, dest)
        except OSError as exc:
            raise UserError(
                f"cannot write {dest}: {exc.strerror or exc}; "
                f"free some space or choose another directory"
            ) from exc
    _fsync_directory(dest.parent)
    return True


def download_multi30k(
    dest_dir: Path,
    langs: Sequence[str] = MULTI30K_LANGS,
    splits: Sequence[str] = MULTI30K_SPLITS,
    base_url: str = MULTI30K_BASE_URL,
    mirror: Path | None = None,
    progress: bool = False,
    *,
    report: FileReport | None = None,
) -> list[Path]:
    """Fetch ``{split}.{lang}.gz`` for every split and language into ``dest_dir``.

    Files already present with the official checksum are skipped. ``mirror`` is a
    local directory with the same file names, used instead of ``base_url`` (as a
    ``file://`` base) on machines without internet access.

    Args:
        dest_dir: Directory to write the files to; created if missing.
        langs: Languages, a subset of ``MULTI30K_LANGS``.
        splits: Splits, a subset of ``MULTI30K_SPLITS``.
        base_url: URL of the directory holding the files.
        mirror: Local directory to copy the files from instead of ``base_url``.
        progress: Show a tqdm progress bar per file.
        report: Called after each file with its path and whether it was downloaded.

    Returns:
        The destination paths, split-major in the order given.

    Raises:
        UserError: For an unknown language or split, a missing mirror or mirror
            file, or any failure of ``fetch``.
    """
    langs = _validated("language", langs, MULTI30K_LANGS)
    splits = _validated("split", splits, MULTI30K_SPLITS)
    if mirror is not None:
        if not mirror.is_dir():
            raise UserError(
                f"mirror directory {mirror} does not exist; pass a directory "
                f"holding the Multi30k .gz files"
            )
        base_url = mirror.resolve().as_uri()
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"cannot create {dest_dir}: {exc.strerror or exc}; choose another directory"
        ) from exc

    paths: list[Path] = []
    for split in splits:
        for lang in langs:
            name = multi30k_file_name(split, lang)
            if mirror is not None and not (mirror / name).is_file():
                raise UserError(
                    f"{mirror / name} not found; copy {name} into the mirror "
                    f"directory {mirror} (from {MULTI30K_BASE_URL}/{name})"
                )
            dest = dest_dir / name
            url = f"{base_url.rstrip('/')}/{name}"
            downloaded = fetch(
                url, dest, MULTI30K_FILES[name].sha256, progress=progress
            )
            if downloaded:
                logger.info("%s: downloaded from %s", dest, url)
            else:
                logger.info("%s: skipped (already present, checksum ok)", dest)
            if report is not None:
                report(dest, downloaded)
            paths.append(dest)
    return paths


def add_download_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of the ``download`` command to ``parser``."""
    parser.add_argument("dataset", choices=["multi30k"], help="dataset to download")
    parser.add_argument("dest", type=Path, help="directory to write the files to")
    parser.add_argument(
        "--langs",
        nargs="+",
        default=list(MULTI30K_LANGS),
        metavar="LANG",
        help=f"languages to fetch (default: {' '.join(MULTI30K_LANGS)})",
    )
    parser.add_argument(
        "--splits",
        nargs="+",
        default=list(MULTI30K_SPLITS),
        metavar="SPLIT",
        help=f"splits to fetch (default: {' '.join(MULTI30K_SPLITS)})",
    )
    parser.add_argument(
        "--base-url",
        default=MULTI30K_BASE_URL,
        metavar="URL",
        help="URL of the directory holding the files (default: the official one)",
    )
    parser.add_argument(
        "--mirror",
        type=Path,
        default=None,
        metavar="DIR",
        help="local directory holding the same files, for offline machines",
    )


def run_download(args: argparse.Namespace) -> int:
    """Run the ``download`` command: fetch the files and print one line per file."""

    def print_file(path: Path, downloaded: bool) -> None:
        status = "downloaded" if downloaded else "skipped, checksum ok"
        print(f"ok   {path.name} ({status})", flush=True)

    download_multi30k(
        args.dest,
        langs=args.langs,
        splits=args.splits,
        base_url=args.base_url,
        mirror=args.mirror,
        progress=_stderr_is_terminal(),
        report=print_file,
    )
    return 0


def _validated(kind: str, values: Sequence[str], valid: Sequence[str]) -> list[str]:
    """Return ``values`` without duplicates, or raise if one is not in ``valid``."""
    unknown = [value for value in values if value not in valid]
    if unknown:
        raise UserError(
            f"unknown Multi30k {kind} {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(valid)}"
        )
    if not values:
        raise UserError(f"no Multi30k {kind} given; choose from {', '.join(valid)}")
    return list(dict.fromkeys(values))


def _network_hint(url: str) -> str:
    """Return the advice appended to every error while reading ``url``."""
    if urllib.parse.urlsplit(url).scheme == "file":
        return "check that the file exists and is readable"
    return (
        "check the network, or download the file manually and pass its directory "
        "with --mirror DIR"
    )


@contextmanager
def _temporary_file(dest: Path) -> Iterator[tuple[Path, IO[bytes]]]:
    """Create a hidden temporary file next to ``dest``; delete it unless renamed.

    The file is created with the usual umask-derived permissions (unlike
    ``tempfile``'s 0600), so the renamed result looks like any other file.
    """
    tmp_path = dest.with_name(f".{dest.name}.{secrets.token_hex(6)}.part")
    try:
        fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise UserError(
            f"cannot write to {dest.parent}: {exc.strerror or exc}; "
            f"choose a writable directory"
        ) from exc
    tmp_file = os.fdopen(fd, "wb")
    try:
        yield tmp_path, tmp_file
    finally:
        tmp_file.close()
        tmp_path.unlink(missing_ok=True)


def _stream(url: str, out: IO[bytes], *, progress: bool, timeout: float) -> str:
    """Copy the body of ``url`` into ``out`` and return its hex sha256."""
    request = urllib.request.Request(url, headers={"User-Agent": "seq2seq-download"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise UserError(
            f"cannot download {url}: HTTP {exc.code} {exc.reason}; {_network_hint(url)}"
        ) from exc
    except urllib.error.URLError as exc:
        raise UserError(
            f"cannot download {url}: {_reason(exc.reason)}; {_network_hint(url)}"
        ) from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise UserError(
            f"cannot download {url}: {_reason(exc)}; {_network_hint(url)}"
        ) from exc

    with response:
        length = _content_length(response.headers)
        hasher = hashlib.sha256()
        received = 0
        with _progress_bar(progress, length, url.rsplit("/", 1)[-1]) as update:
            while True:
                try:
                    chunk = response.read(CHUNK_SIZE)
                except (OSError, http.client.HTTPException) as exc:
                    raise UserError(
                        f"download of {url} interrupted after {received} bytes: "
                        f"{_reason(exc)}; {_network_hint(url)}"
                    ) from exc
                if not chunk:
                    break
                hasher.update(chunk)
                try:
                    out.write(chunk)
                except OSError as exc:
                    raise UserError(
                        f"cannot write the download of {url}: "
                        f"{exc.strerror or exc}; free some space or choose another "
                        f"directory"
                    ) from exc
                received += len(chunk)
                update(len(chunk))
    if length is not None and received != length:
        raise UserError(
            f"download of {url} truncated: got {received} of {length} bytes; "
            f"{_network_hint(url)}"
        )
    return hasher.hexdigest()


def _content_length(headers: Message) -> int | None:
    """Return the body size declared in ``headers``, or None if unknown."""
    value = headers.get("Content-Length")
    if value is None or headers.get("Content-Encoding"):
        return None
    try:
        return int(value)
    except ValueError:
        return None


@contextmanager
def _progress_bar(
    enabled: bool, total: int | None, desc: str
) -> Iterator[Callable[[int], object]]:
    """Yield a callback advancing a tqdm bar by a byte count (a no-op if disabled)."""
    if not enabled:
        yield lambda _n: None
        return
    from tqdm import tqdm

    with tqdm(
        total=total,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        leave=False,
    ) as bar:
        yield bar.update


def _reason(reason: object) -> str:
    """Turn an exception or URLError reason into a short readable phrase."""
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__


def _fsync_directory(directory: Path) -> None:
    """Persist a rename in ``directory`` where the platform allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _stderr_is_terminal() -> bool:
    """Whether a progress bar on stderr would be seen by a person."""
    return sys.stderr.isatty()
