"""Download corpora (Multi30k task 1, Tatoeba pairs) with checks and atomic writes.

pooch (``pooch.retrieve``) streams every file to a temporary file next to its
destination, verifies its sha256 and only then moves it onto the destination;
the downloader given to it here also runs the file's own check (a complete gzip
of the published line count) and flushes it to disk before that move. An interrupted or
corrupt download therefore never leaves a partial file where the data loader
looks for it. What pooch does not do is kept here: ``file://`` mirrors, the
checks of files without a pinned checksum, and one-line errors that name the URL
and what to do (see docs/DATA_DOWNLOAD.md).

Multi30k files whose sha256 is recorded below are checked against it, and a second
run skips every file already present with that checksum. For the other official
files no checksum could be recorded here (they were never at hand offline), so none
is invented: such a file must decompress completely as gzip and, where the number of
sentences is published, have that many lines; its computed sha256 is logged so that
users can pin it. Tatoeba pairs change upstream, so they have no fixed checksum at
all: the zip is checked for the expected member and its tab-separated lines.

Machines without internet access can point ``--mirror DIR`` (``mirror=``) at a local
directory holding the same file names; it is read through ``file://`` URLs with the
same code path and the same checks.
"""

from __future__ import annotations

import argparse
import gzip
import logging
import os
import re
import secrets
import shlex
import shutil
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from seq2seq.errors import UserError
from seq2seq.files import fsync_directory
from seq2seq.progress import stderr_is_terminal

logger = logging.getLogger(__name__)

MULTI30K_BASE_URL = (
    "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw"
)
"""Raw task-1 files in the dataset's own repository, github.com/multi30k/dataset."""

MULTI30K_LANGS: tuple[str, ...] = ("de", "en", "fr", "cs")
"""Every language of task 1 (Czech has no 2017 test sets)."""
MULTI30K_SPLITS: tuple[str, ...] = (
    "train",
    "val",
    "test_2016_flickr",
    "test_2017_flickr",
    "test_2017_mscoco",
    "test_2018_flickr",
)
"""Every split of task 1: training, validation and the official test sets."""
MULTI30K_DEFAULT_LANGS: tuple[str, ...] = ("de", "en", "fr")
MULTI30K_DEFAULT_SPLITS: tuple[str, ...] = ("train", "val", "test_2016_flickr")
"""What ``seq2seq data download multi30k DIR`` fetches without ``--langs/--splits``."""

TATOEBA_BASE_URL = "https://www.manythings.org/anki"
"""Tatoeba pairs as zip files, ``{lang}-eng.zip``, the classic tutorial's source."""
TATOEBA_USER_AGENT = "Mozilla/5.0 (compatible; seq2seq-download)"
"""manythings.org answers HTTP 406 to clients that do not look like a browser."""

URL_SCHEMES: frozenset[str] = frozenset({"http", "https", "file"})
"""URL schemes ``fetch`` accepts."""

CHUNK_SIZE = 1 << 16
"""Bytes read from the network and written to disk per step."""


@dataclass(frozen=True)
class RemoteFile:
    """What the official copy of one dataset file looks like."""

    sha256: str | None
    """Hex sha256 of the compressed ``.gz`` file as published; None: not known here,
    the file is checked as gzip (and by line count) instead."""
    lines: int | None
    """Number of lines (sentences) after decompression; None: not published."""


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
    # Not pinned: no copy was at hand to hash. Line counts are those the dataset's
    # README publishes; test_2018_flickr's are not published there.
    "train.cs.gz": RemoteFile(None, 29000),
    "val.cs.gz": RemoteFile(None, 1014),
    "test_2016_flickr.cs.gz": RemoteFile(None, 1000),
    "test_2017_flickr.de.gz": RemoteFile(None, 1000),
    "test_2017_flickr.en.gz": RemoteFile(None, 1000),
    "test_2017_flickr.fr.gz": RemoteFile(None, 1000),
    "test_2017_mscoco.de.gz": RemoteFile(None, 461),
    "test_2017_mscoco.en.gz": RemoteFile(None, 461),
    "test_2017_mscoco.fr.gz": RemoteFile(None, 461),
    "test_2018_flickr.cs.gz": RemoteFile(None, None),
    "test_2018_flickr.de.gz": RemoteFile(None, None),
    "test_2018_flickr.en.gz": RemoteFile(None, None),
    "test_2018_flickr.fr.gz": RemoteFile(None, None),
}
"""The official Multi30k task-1 raw files (data/task1/raw), keyed by file name."""

FileReport = Callable[[Path, bool], None]
"""Called once per file with its path and whether it was downloaded (else skipped)."""

FileCheck = Callable[[Path], None]
"""Raises :class:`UserError` if the file at the path is not what was expected."""


def multi30k_file_name(split: str, lang: str) -> str:
    """Return the published file name of one split in one language."""
    return f"{split}.{lang}.gz"


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of the file at ``path``."""
    import pooch  # imported when used: it costs every CLI command ~0.1 s

    return pooch.file_hash(str(path), alg="sha256")


def fetch(
    url: str,
    dest: Path,
    sha256: str | None,
    *,
    progress: bool = False,
    timeout: float = 60,
    check: FileCheck | None = None,
    user_agent: str = "seq2seq-download",
) -> bool:
    """Download ``url`` to ``dest`` unless ``dest`` already has checksum ``sha256``.

    pooch streams the body into a temporary file in ``dest``'s directory, checks
    it against ``sha256`` and only then moves it onto ``dest``, so ``dest`` is
    either untouched or complete; here the temporary file is also run through
    ``check`` and flushed to disk before that move. An existing ``dest`` whose
    checksum differs is downloaded again. With ``sha256=None`` the checksum
    cannot be verified: an existing ``dest`` is kept if it passes ``check`` (or
    as it is, without ``check``), and a new download is checked for truncation
    (against the server's Content-Length) and by ``check``; its sha256 is logged.

    Args:
        url: Source URL (``http``, ``https`` or ``file``).
        dest: Destination file; its directory must exist.
        sha256: Expected hex sha256, or ``None`` to skip verification.
        progress: Show a tqdm progress bar on stderr.
        timeout: Seconds to wait for the connection and for each read.
        check: Called on the downloaded file before it is moved onto ``dest``
            (and on an existing ``dest`` when ``sha256`` is None).
        user_agent: The User-Agent header sent with http(s) requests.

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
            if check is None:
                logger.info("%s: already present, not verified (no checksum)", dest)
                return False
            try:
                check(dest)
            except UserError as exc:
                logger.warning("%s; downloading it again", exc)
            else:
                return False
        else:
            actual = sha256_file(dest)
            if actual == expected:
                return False
            logger.warning(
                "%s: checksum mismatch (expected %s, got %s); downloading it again",
                dest,
                expected,
                actual,
            )
        dest.unlink()  # pooch would keep an unpinned one

    import pooch

    downloader = _Downloader(url, dest, progress, timeout, user_agent, check)
    pooch_logger = pooch.get_logger()
    pooch_level = pooch_logger.level
    pooch_logger.setLevel(logging.WARNING)  # its "Downloading data from" lines
    try:
        pooch.retrieve(
            url,
            None if expected is None else f"sha256:{expected}",
            fname=dest.name,
            path=dest.parent,
            downloader=downloader,
        )
    except ValueError as exc:  # pooch: the checksum does not match
        if downloader.sha256 is None or expected is None:
            raise UserError(f"cannot download {url}: {_reason(exc)}") from exc
        raise UserError(
            f"checksum mismatch for {url}: expected sha256 {expected}, got "
            f"{downloader.sha256}; the file may be corrupt or changed upstream, "
            f"download it manually to {dest} or use --mirror DIR"
        ) from exc
    except OSError as exc:
        raise UserError(
            f"cannot write {dest}: {exc.strerror or exc}; "
            f"free some space or choose another directory"
        ) from exc
    finally:
        pooch_logger.setLevel(pooch_level)
    dest.chmod(0o666 & ~_umask())  # pooch's temporary file was private (0600)
    fsync_directory(dest.parent)
    if expected is None:
        logger.info("%s: sha256 %s (no pinned checksum)", dest, downloader.sha256)
    return True


class _Downloader:
    """pooch's downloader for one URL: HTTP(S) through pooch, ``file://`` read
    here; one-line errors; the temporary file hashed, checked and fsynced before
    pooch moves it onto the destination."""

    def __init__(
        self,
        url: str,
        dest: Path,
        progress: bool,
        timeout: float,
        user_agent: str,
        check: FileCheck | None,
    ) -> None:
        self.url, self.dest, self.check = url, dest, check
        self.progress = progress
        import pooch

        self.http = pooch.HTTPDownloader(
            headers={"User-Agent": user_agent}, timeout=timeout
        )
        self.sha256: str | None = None

    def __call__(self, url: str, output_file: str, _pooch: object) -> None:
        tmp = Path(output_file)
        if urllib.parse.urlsplit(url).scheme == "file":
            _copy_file_url(url, tmp)
        else:
            self._http(url, output_file)
        self.sha256 = sha256_file(tmp)
        if self.check is not None:
            self.check(tmp)
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())

    def _http(self, url: str, output_file: str) -> None:
        import requests  # pooch's HTTP client

        bar = None
        if self.progress:
            from tqdm import tqdm

            name = url.rsplit("/", 1)[-1]
            # total=1 until pooch sets the Content-Length: a bar of total 0 is
            # false, and pooch would skip it
            bar = tqdm(desc=name, total=1, unit="B", unit_scale=True, leave=False)
        self.http.progressbar = bar or False
        try:
            self.http(url, output_file, None)
        except requests.HTTPError as exc:
            response = exc.response
            raise UserError(
                f"cannot download {url}: HTTP {response.status_code} "
                f"{response.reason}; {_network_hint(url)}"
            ) from exc
        except requests.RequestException as exc:
            received = Path(output_file).stat().st_size
            raise UserError(_request_error(url, exc, received)) from exc
        finally:
            if bar is not None:
                bar.close()


def _request_error(url: str, exc: Exception, received: int) -> str:
    """The one line for a failed request: truncated, timed out, refused, ..."""
    text = str(exc)
    truncated = re.search(
        r"IncompleteRead\((\d+) bytes read, (\d+) more expected", text
    )
    if truncated:
        got, more = map(int, truncated.groups())
        return (
            f"download of {url} truncated: got {got} of {got + more} bytes; "
            f"{_network_hint(url)}"
        )
    import requests

    if isinstance(exc, requests.Timeout):
        reason = "timed out"
    elif received:
        return (
            f"download of {url} interrupted after {received} bytes: "
            f"{_reason(exc)}; {_network_hint(url)}"
        )
    else:
        reason = _reason(exc)
    return f"cannot download {url}: {reason}; {_network_hint(url)}"


def _copy_file_url(url: str, dest: Path) -> None:
    """Copy the file a ``file://`` URL names (a mirror) to ``dest``."""
    source = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
    try:
        with source.open("rb") as reader, dest.open("wb") as writer:
            shutil.copyfileobj(reader, writer, CHUNK_SIZE)
    except OSError as exc:
        raise UserError(
            f"cannot download {url}: {_reason(exc)}; {_network_hint(url)}"
        ) from exc


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _commit(tmp_path: Path, tmp_file: IO[bytes], dest: Path) -> None:
    """Flush ``tmp_file`` to disk and rename ``tmp_path`` onto ``dest``."""
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
    fsync_directory(dest.parent)


def check_gzip_lines(path: Path, lines: int | None, name: str) -> int:
    """Decompress ``path`` completely and return its line count.

    Raises:
        UserError: If ``path`` is not a complete gzip file, or ``lines`` is given
            and the count differs.
    """
    count = 0
    last = b"\n"
    try:
        with gzip.open(path, "rb") as handle:
            while chunk := handle.read(CHUNK_SIZE):
                count += chunk.count(b"\n")
                last = chunk[-1:]
    except (OSError, EOFError, zlib.error) as exc:
        raise UserError(
            f"{name}: not a complete gzip file ({_reason(exc)}); the download is "
            f"corrupt or truncated, try again or use --mirror DIR"
        ) from exc
    if last != b"\n":
        count += 1  # a last line without a newline
    if lines is not None and count != lines:
        raise UserError(
            f"{name}: {count} lines after decompression, expected {lines}; the file "
            f"may be corrupt or changed upstream, try again or use --mirror DIR"
        )
    return count


def download_multi30k(
    dest_dir: Path,
    langs: Sequence[str] = MULTI30K_DEFAULT_LANGS,
    splits: Sequence[str] = MULTI30K_DEFAULT_SPLITS,
    base_url: str = MULTI30K_BASE_URL,
    mirror: Path | None = None,
    progress: bool = False,
    *,
    report: FileReport | None = None,
) -> list[Path]:
    """Fetch ``{split}.{lang}.gz`` for every split and language into ``dest_dir``.

    A file with a recorded checksum is checked against it and skipped when already
    present with it. A file without one (see :data:`MULTI30K_FILES`) must
    decompress completely and, where known, have the published number of lines;
    its sha256 is logged. ``mirror`` is a local directory with the same file
    names, used instead of ``base_url`` (as a ``file://`` base) on machines
    without internet access.

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
        UserError: For an unknown language or split, a split that does not exist
            in a language, a missing mirror or mirror file, or any failure of
            ``fetch``.
    """
    langs = _validated("language", langs, MULTI30K_LANGS)
    splits = _validated("split", splits, MULTI30K_SPLITS)
    names = [multi30k_file_name(split, lang) for split in splits for lang in langs]
    missing = [name for name in names if name not in MULTI30K_FILES]
    if missing:
        raise UserError(
            f"Multi30k has no {', '.join(missing)}; "
            + "; ".join(
                f"{split} exists in {', '.join(_multi30k_langs_of(split))}"
                for split in splits
                if any(name.startswith(f"{split}.") for name in missing)
            )
        )
    if mirror is not None:
        _check_mirror(mirror, "the Multi30k .gz files")
        base_url = mirror.resolve().as_uri()
    _make_directory(dest_dir)

    paths: list[Path] = []
    for name in names:
        if mirror is not None and not (mirror / name).is_file():
            raise UserError(
                f"{mirror / name} not found; copy {name} into the mirror "
                f"directory {mirror} (from {MULTI30K_BASE_URL}/{name})"
            )
        dest = dest_dir / name
        url = f"{base_url.rstrip('/')}/{name}"
        remote = MULTI30K_FILES[name]
        check = _gzip_check(remote.lines, name) if remote.sha256 is None else None
        downloaded = fetch(url, dest, remote.sha256, progress=progress, check=check)
        if downloaded:
            logger.info("%s: downloaded from %s", dest, url)
        elif remote.sha256 is None:
            logger.info("%s: skipped (already present, gzip and lines ok)", dest)
        else:
            logger.info("%s: skipped (already present, checksum ok)", dest)
        if report is not None:
            report(dest, downloaded)
        paths.append(dest)
    return paths


def _gzip_check(lines: int | None, name: str) -> FileCheck:
    """A :data:`FileCheck` running :func:`check_gzip_lines`."""

    def check(path: Path) -> None:
        check_gzip_lines(path, lines, name)

    return check


def _multi30k_langs_of(split: str) -> list[str]:
    """The languages ``split`` is published in."""
    return [
        lang
        for lang in MULTI30K_LANGS
        if multi30k_file_name(split, lang) in MULTI30K_FILES
    ]


def download_command(root: str, names: Sequence[str]) -> tuple[str, str] | None:
    """The ``seq2seq data download`` command that writes ``names`` into ``root``.

    Returns ``(corpus, command)``, e.g. ``("Multi30k", "seq2seq data download
    multi30k data/multi30k")``, or None unless every name is a file of one corpus
    this module downloads (Multi30k task 1, or one Tatoeba pair's TSV). ``root``
    appears in the command as given, so the command writes where the config reads.
    """
    if not names:
        return None
    dest = shlex.quote(root)
    if all(name in MULTI30K_FILES for name in names):
        splits = list(dict.fromkeys(name.rsplit(".", 2)[0] for name in names))
        langs = list(dict.fromkeys(name.rsplit(".", 2)[1] for name in names))
        command = f"seq2seq data download multi30k {dest}"
        if not set(langs) <= set(MULTI30K_DEFAULT_LANGS) or not set(splits) <= set(
            MULTI30K_DEFAULT_SPLITS
        ):
            command += f" --langs {' '.join(langs)} --splits {' '.join(splits)}"
        return "Multi30k", command
    langs = {_tatoeba_tsv_language(name) for name in names}
    if len(langs) == 1 and None not in langs:
        (lang,) = langs
        command = f"seq2seq data download tatoeba {dest}"
        if lang != "fra":
            command += f" --pair eng-{lang}"
        return "Tatoeba", command
    return None


def _tatoeba_tsv_language(name: str) -> str | None:
    """``"fra-eng.tsv"`` -> ``"fra"``: the file :func:`download_tatoeba` writes."""
    lang, dash, rest = name.partition("-")
    if dash and rest == "eng.tsv" and len(lang) == 3 and lang.isascii():
        return lang if lang.isalpha() and lang.islower() and lang != "eng" else None
    return None


def tatoeba_language(pair: str) -> str:
    """``"eng-fra"`` or ``"fra-eng"`` -> ``"fra"``: the language paired with English.

    Raises:
        UserError: Unless ``pair`` is two three-letter codes, one of them ``eng``.
    """
    codes = pair.strip().lower().split("-")
    if (
        len(codes) != 2
        or not all(
            len(code) == 3 and code.isascii() and code.isalpha() for code in codes
        )
        or codes.count("eng") != 1
    ):
        raise UserError(
            f"--pair {pair!r}: expected English and one other language as "
            f"three-letter codes, e.g. eng-fra or deu-eng (Tatoeba pairs every "
            f"language with English)"
        )
    return codes[0] if codes[1] == "eng" else codes[1]


def download_tatoeba(
    dest_dir: Path,
    pair: str = "eng-fra",
    base_url: str = TATOEBA_BASE_URL,
    mirror: Path | None = None,
    progress: bool = False,
    *,
    report: FileReport | None = None,
    timeout: float = 60,
) -> Path:
    """Fetch ``{lang}-eng.zip`` and write its ``{lang}.txt`` to ``{lang}-eng.tsv``.

    The file holds ``english<TAB>other<TAB>attribution`` lines. It is updated
    upstream, so there is no checksum to verify: the zip must hold ``{lang}.txt``,
    valid UTF-8 with at least two tab-separated columns on every non-empty line;
    the zip's sha256 and the line count are logged. An existing ``{lang}-eng.tsv``
    is kept (delete it to fetch the current version). The TSV is written to a
    temporary file and renamed, so it is never left half-written.

    Args:
        dest_dir: Directory to write the TSV to; created if missing.
        pair: The language pair, e.g. ``eng-fra`` (order does not matter).
        base_url: URL of the directory holding the zip files.
        mirror: Local directory holding ``{lang}-eng.zip``, used instead.
        progress: Show a tqdm progress bar for the zip.
        report: Called with the TSV's path and whether it was downloaded.
        timeout: Seconds to wait for the connection and for each read.

    Returns:
        The path of the TSV file.

    Raises:
        UserError: For a bad pair, a missing mirror (file), a network error, or a
            zip that is not what is described above.
    """
    lang = tatoeba_language(pair)
    zip_name = f"{lang}-eng.zip"
    if mirror is not None:
        _check_mirror(mirror, f"Tatoeba zip files such as {zip_name}")
        if not (mirror / zip_name).is_file():
            raise UserError(
                f"{mirror / zip_name} not found; copy {zip_name} into the mirror "
                f"directory {mirror} (from {TATOEBA_BASE_URL}/{zip_name})"
            )
        base_url = mirror.resolve().as_uri()
    _make_directory(dest_dir)
    dest = dest_dir / f"{lang}-eng.tsv"
    if dest.is_dir():
        raise UserError(f"{dest} is a directory; remove it or choose another DEST")
    if dest.exists():
        logger.info(
            "%s: skipped (already present; Tatoeba has no fixed checksum, delete "
            "the file to fetch the current version)",
            dest,
        )
        if report is not None:
            report(dest, False)
        return dest

    url = f"{base_url.rstrip('/')}/{zip_name}"
    zip_path = dest_dir / f".{zip_name}.{secrets.token_hex(6)}.part"
    try:
        with _quiet_logger(logging.INFO):  # fetch's "sha256 ... not pinned" line
            fetch(
                url,
                zip_path,
                None,
                progress=progress,
                timeout=timeout,
                user_agent=TATOEBA_USER_AGENT,
            )
        zip_sha256 = sha256_file(zip_path)
        lines = _extract_tatoeba(zip_path, f"{lang}.txt", dest, url)
    finally:
        zip_path.unlink(missing_ok=True)
    logger.info(
        "%s: %d pairs from %s (zip sha256 %s; not pinned, the file changes upstream)",
        dest,
        lines,
        url,
        zip_sha256,
    )
    if report is not None:
        report(dest, True)
    return dest


def _extract_tatoeba(zip_path: Path, member: str, dest: Path, url: str) -> int:
    """Check ``member`` of the zip line by line and write it to ``dest`` atomically.

    Returns the number of lines written.
    """
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UserError(
            f"{url}: not a zip archive ({exc}); the download may be an error page, "
            f"download it manually and use --mirror DIR"
        ) from exc
    with archive:
        if member not in archive.namelist():
            raise UserError(
                f"{url}: the zip holds no {member} (it holds "
                f"{', '.join(archive.namelist()) or 'nothing'})"
            )
        lines = 0
        with _temporary_file(dest) as (tmp_path, tmp_file):
            try:
                with archive.open(member) as source:
                    for lines, raw in enumerate(source, start=1):
                        _check_tatoeba_line(raw, f"{url}:{member}:{lines}")
                        tmp_file.write(raw)
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise UserError(
                    f"{url}: corrupt zip ({exc}); try again or use --mirror DIR"
                ) from exc
            except OSError as exc:
                raise UserError(
                    f"cannot write {dest}: {exc.strerror or exc}; free some space "
                    f"or choose another directory"
                ) from exc
            if lines == 0:
                raise UserError(f"{url}: {member} is empty")
            _commit(tmp_path, tmp_file, dest)
    return lines


def _check_tatoeba_line(raw: bytes, where: str) -> None:
    """Raise unless ``raw`` is UTF-8 and empty or ``english<TAB>other[<TAB>...]``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{where}: not valid UTF-8 (byte {raw[exc.start]:#04x})"
        ) from None
    if text.strip() and "\t" not in text:
        raise UserError(
            f"{where}: expected english<TAB>translation<TAB>attribution, found no tab"
        )


def _check_mirror(mirror: Path, holding: str) -> None:
    if not mirror.is_dir():
        raise UserError(
            f"mirror directory {mirror} does not exist; pass a directory "
            f"holding {holding}"
        )


def _make_directory(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"cannot create {directory}: {exc.strerror or exc}; "
            f"choose another directory"
        ) from exc


def add_download_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``download`` command's datasets, each with its arguments."""
    datasets = parser.add_subparsers(dest="dataset", required=True, metavar="DATASET")
    multi30k = datasets.add_parser(
        "multi30k", help="Multi30k task 1 (raw, official), de/en/fr/cs"
    )
    multi30k.add_argument("dest", type=Path, help="directory to write the files to")
    multi30k.add_argument(
        "--langs",
        nargs="+",
        default=list(MULTI30K_DEFAULT_LANGS),
        metavar="LANG",
        help=f"languages to fetch, of {' '.join(MULTI30K_LANGS)} "
        f"(default: {' '.join(MULTI30K_DEFAULT_LANGS)})",
    )
    multi30k.add_argument(
        "--splits",
        nargs="+",
        default=list(MULTI30K_DEFAULT_SPLITS),
        metavar="SPLIT",
        help=f"splits to fetch, of {' '.join(MULTI30K_SPLITS)} "
        f"(default: {' '.join(MULTI30K_DEFAULT_SPLITS)})",
    )
    multi30k.add_argument(
        "--base-url",
        default=MULTI30K_BASE_URL,
        metavar="URL",
        help="URL of the directory holding the files (default: the official one)",
    )
    _add_mirror_argument(multi30k)

    tatoeba = datasets.add_parser(
        "tatoeba", help="Tatoeba sentence pairs with English (manythings.org)"
    )
    tatoeba.add_argument("dest", type=Path, help="directory to write {lang}-eng.tsv to")
    tatoeba.add_argument(
        "--pair",
        default="eng-fra",
        metavar="PAIR",
        help="English and another language, e.g. eng-fra, deu-eng (default eng-fra)",
    )
    tatoeba.add_argument(
        "--base-url",
        default=TATOEBA_BASE_URL,
        metavar="URL",
        help="URL of the directory holding {lang}-eng.zip (default: the official one)",
    )
    _add_mirror_argument(tatoeba)


def _add_mirror_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mirror",
        type=Path,
        default=None,
        metavar="DIR",
        help="local directory holding the same files, for offline machines",
    )


def run_download(args: argparse.Namespace) -> int:
    """Run the ``download`` command: fetch the files and print one line per file."""
    if args.dataset == "tatoeba":

        def print_tsv(path: Path, downloaded: bool) -> None:
            status = "downloaded" if downloaded else "skipped, already present"
            print(f"ok   {path.name} ({status})", flush=True)

        download_tatoeba(
            args.dest,
            pair=args.pair,
            base_url=args.base_url,
            mirror=args.mirror,
            progress=stderr_is_terminal(),
            report=print_tsv,
        )
        return 0

    def print_file(path: Path, downloaded: bool) -> None:
        if MULTI30K_FILES[path.name].sha256 is not None:
            status = "downloaded" if downloaded else "skipped, checksum ok"
        elif downloaded:
            status = f"downloaded, sha256 {sha256_file(path)}, not pinned"
        else:
            status = "skipped, gzip ok, not pinned"
        print(f"ok   {path.name} ({status})", flush=True)

    download_multi30k(
        args.dest,
        langs=args.langs,
        splits=args.splits,
        base_url=args.base_url,
        mirror=args.mirror,
        progress=stderr_is_terminal(),
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
def _quiet_logger(level: int) -> Iterator[None]:
    """Drop this module's log records at ``level`` and below for a while."""
    previous = logger.level
    logger.setLevel(level + 1)
    try:
        yield
    finally:
        logger.setLevel(previous)


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


def _reason(reason: object) -> str:
    """Turn an exception or URLError reason into a short readable phrase."""
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__
