"""The prepared-data cache: every split tokenized once, read memory-mapped.

A split is encoded with the run's sentencepiece model into flat arrays (what
``fairseq-preprocess`` writes as ``.bin`` / ``.idx``)::

    CACHE/<split>-<key>/src.ids      source ids + EOS of every kept pair, back to
                                     back (int16 below 32,768 pieces, else int32)
                        src.idx      (pairs + 1,) int64 offsets into src.ids
                        tgt.ids/.idx BOS + target ids + EOS, likewise
                        src.txt/.idx the kept sentences' UTF-8 text and offsets
                        tgt.txt/.idx (subword sampling, validation references)
                        meta.json    what it was made from, counts (written last)
    CACHE/tokenizer-<key>/           a sentencepiece model trained on the corpus

CACHE is ``$SEQ2SEQ_CACHE_DIR``, else ``$XDG_CACHE_HOME/seq2seq`` (by default
``~/.cache/seq2seq``). The key is a hash of everything the arrays depend on: the
content of the corpus files, the split's config (columns, ``lines``), the
length limits, ``data.on_bad_lines`` and the tokenizer model bytes. A content
hash (not a path or a modification time) lets a copied corpus hit the cache and
an edited one miss it; to avoid reading a large corpus at every start, the digest
of each file is remembered with its (size, mtime_ns, inode) in
``CACHE/file-digests.json`` and recomputed only when those change, as git's index
does.

A cache is written into ``CACHE/.tmp-...`` and renamed into place when complete,
so a run killed while preparing leaves nothing a later run trusts (the later run
removes the leftover). On opening, the array sizes are checked against
``meta.json``; a damaged or stale entry is rebuilt with one log line saying why.

Encoding streams the corpus in chunks through a pool of worker processes (one
per core): memory stays bounded whatever the corpus size.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import itertools
import json
import logging
import multiprocessing
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import sentencepiece as spm

from seq2seq.errors import UserError
from seq2seq.tokenizer import BOS_ID, EOS_ID, TRAIN_SENTENCES, Tokenizer

if TYPE_CHECKING:  # data.py imports torch: the worker processes need not
    from seq2seq.config import Config, CorpusConfig
    from seq2seq.data import FlatPairs

log = logging.getLogger(__name__)

VERSION = 1  # of the layout; a new one misses every older cache
CACHE_ENV = "SEQ2SEQ_CACHE_DIR"
CHUNK_PAIRS = 16_384  # pairs a worker encodes per task
INLINE_BYTES = 4 << 20  # corpus files smaller than this are encoded in-process
HASH_BLOCK = 1 << 22


def cache_root() -> Path:
    """``$SEQ2SEQ_CACHE_DIR``, else ``$XDG_CACHE_HOME/seq2seq`` (~/.cache/seq2seq)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "seq2seq"


def _writable(cache: Path) -> Path:
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(
            f"cannot create the prepared-data cache {cache} ({err.strerror}); set "
            f"{CACHE_ENV} to a writable directory"
        ) from None
    return cache


# ---------------------------------------------------------------- keys


def file_digest(path: Path, root: Path) -> str:
    """blake2b of a file's content, remembered by (size, mtime_ns, inode)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    memo_path = root / "file-digests.json"
    try:
        memo = json.loads(memo_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        memo = {}
    name = str(path.resolve())
    signature = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
    if name in memo and memo[name][:3] == signature:
        return memo[name][3]
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while block := handle.read(HASH_BLOCK):
            digest.update(block)
    memo[name] = [*signature, digest.hexdigest()]
    _write_atomically(memo_path, json.dumps(memo, indent=0))
    return digest.hexdigest()


def _bytes_digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _key(inputs: dict) -> str:
    text = json.dumps(inputs, sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=10).hexdigest()


def _corpus_inputs(corpus: CorpusConfig, root: Path, cache: Path) -> dict:
    from seq2seq.data import corpus_files

    files = {p.name: file_digest(p, cache) for p in corpus_files(corpus, root)}
    return {"files": files, "corpus": asdict(corpus)}


def split_inputs(cfg: Config, split: str, tokenizer: Tokenizer, cache: Path) -> dict:
    """Everything split ``split``'s prepared arrays depend on."""
    corpus = getattr(cfg.data, split)
    return {
        "version": VERSION,
        "split": split,
        **_corpus_inputs(corpus, Path(cfg.data.root), cache),
        "on_bad_lines": cfg.data.on_bad_lines,
        "max_src_len": cfg.data.max_src_len,
        "max_tgt_len": cfg.data.max_tgt_len,
        "src_model": _bytes_digest(tokenizer.src_model),
        "tgt_model": _bytes_digest(tokenizer.tgt_model),
    }


# ---------------------------------------------------------------- splits

ARRAYS = ("src.ids", "src.idx", "tgt.ids", "tgt.idx")
TEXTS = ("src.txt", "src.txt.idx", "tgt.txt", "tgt.txt.idx")


def load_or_prepare(
    cfg: Config,
    split: str,
    tokenizer: Tokenizer,
    cache: Path | None = None,
    workers: int | None = None,
) -> FlatPairs:
    """Split ``split`` as memory-mapped :class:`~seq2seq.data.FlatPairs`, prepared
    first when the cache lacks it (or holds a stale or damaged copy)."""
    cache = _writable(cache or cache_root())
    corpus = getattr(cfg.data, split)
    if corpus is None:
        raise UserError(f"data.{split}: not set in the config")
    inputs = split_inputs(cfg, split, tokenizer, cache)
    directory = cache / f"{split}-{_key(inputs)}"
    if directory.is_dir():
        problem = check_prepared(directory, inputs)
        if problem is None:
            log.info("data.%s is prepared in %s", split, directory)
            return open_prepared(directory)
        log.warning(
            "data.%s's prepared cache %s is damaged (%s): preparing it again",
            split,
            directory,
            problem,
        )
        shutil.rmtree(directory, ignore_errors=True)
    else:
        log.info("preparing data.%s in %s (%s)", split, directory, _why(cache, inputs))
    prepare_split(cfg, split, tokenizer, directory, inputs, workers)
    return open_prepared(directory)


def _why(cache: Path, inputs: dict) -> str:
    """Why a split has no cache yet: what changed since it was last prepared from
    the same files (remembered in CACHE/last/), removing a copy that no corpus
    can hit again."""
    names = sorted(inputs["files"])
    where = _key({"split": inputs["split"], "files": names})
    last_path = cache / "last" / f"{where}.json"
    try:
        last = json.loads(last_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        last = None
    last_path.parent.mkdir(exist_ok=True)
    _write_atomically(last_path, json.dumps(inputs))
    if last is None:
        return "not prepared before"
    changed = [n for n in names if last["files"].get(n) != inputs["files"][n]]
    if changed:
        shutil.rmtree(cache / f"{inputs['split']}-{_key(last)}", ignore_errors=True)
        return f"{', '.join(changed)} changed since it was prepared"
    if (last["src_model"], last["tgt_model"]) != (
        inputs["src_model"],
        inputs["tgt_model"],
    ):
        return "another tokenizer"
    keys = [k for k in sorted(inputs) if last.get(k) != inputs[k]]
    return f"{', '.join(keys) or 'the cache'} changed since it was prepared"


def check_prepared(directory: Path, inputs: dict | None = None) -> str | None:
    """None if ``directory`` holds a complete prepared split (made from
    ``inputs``, when given); else what is wrong with it."""
    try:
        meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    except OSError:
        return "no meta.json"
    except ValueError:
        return "meta.json is not valid JSON"
    if inputs is not None and meta.get("inputs") != inputs:
        return "meta.json describes other inputs"
    try:
        itemsize = np.dtype(meta["dtype"]).itemsize
        expected = {
            "src.ids": meta["src_tokens"] * itemsize,
            "tgt.ids": meta["tgt_tokens"] * itemsize,
            "src.txt": meta["src_text_bytes"],
            "tgt.txt": meta["tgt_text_bytes"],
        }
        for name in ("src.idx", "tgt.idx", "src.txt.idx", "tgt.txt.idx"):
            expected[name] = (meta["pairs"] + 1) * 8
    except (KeyError, TypeError):
        return "meta.json lacks fields"
    for name, size in expected.items():
        path = directory / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, not {size}"
    for ids, idx in (("src.ids", "src.idx"), ("tgt.ids", "tgt.idx")):
        offsets = np.memmap(directory / idx, dtype=np.int64, mode="r")
        if offsets[0] != 0 or offsets[-1] * itemsize != expected[ids]:
            return f"{idx} does not end at the end of {ids}"
    return None


def open_prepared(directory: Path) -> FlatPairs:
    """A prepared split, its arrays memory-mapped (read-only)."""
    from seq2seq.data import FlatPairs, TextColumn

    meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))

    def array(name: str, dtype: Any) -> np.ndarray:
        # A plain ndarray over the mapping: slices of an np.memmap are memmaps
        # too, each paying for its __array_finalize__.
        return np.memmap(directory / name, dtype=dtype, mode="r").view(np.ndarray)

    return FlatPairs(
        array("src.ids", meta["dtype"]),
        array("src.idx", np.int64),
        array("tgt.ids", meta["dtype"]),
        array("tgt.idx", np.int64),
        TextColumn(array("src.txt", np.uint8), array("src.txt.idx", np.int64)),
        TextColumn(array("tgt.txt", np.uint8), array("tgt.txt.idx", np.int64)),
        pairs_read=meta["pairs_read"],
        source=directory,
    )


def ids_dtype(tokenizer: Tokenizer) -> str:
    """int16 when every id fits (half the disk and page cache), else int32."""
    largest = max(tokenizer.src_vocab_size, tokenizer.tgt_vocab_size)
    return "int16" if largest <= np.iinfo(np.int16).max + 1 else "int32"


def prepare_split(
    cfg: Config,
    split: str,
    tokenizer: Tokenizer,
    directory: Path,
    inputs: dict,
    workers: int | None = None,
) -> dict:
    """Encode split ``split`` into ``directory`` (atomically); returns its meta."""
    from seq2seq.data import corpus_files, iter_corpus, log_dropped, no_pairs_left

    corpus = getattr(cfg.data, split)
    root = Path(cfg.data.root)
    _remove_leftovers(directory.parent)
    temporary = directory.parent / f".tmp-{directory.name}-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    dtype = ids_dtype(tokenizer)
    limits = (cfg.data.max_src_len, cfg.data.max_tgt_len)
    size = sum(p.stat().st_size for p in corpus_files(corpus, root))
    if workers is None:
        workers = 1 if size < INLINE_BYTES else max(os.cpu_count() or 1, 1)
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    pairs = iter_corpus(corpus, root, split, cfg.data.on_bad_lines)
    chunks = _chunks(pairs, CHUNK_PAIRS)
    models = (tokenizer.src_model, tokenizer.tgt_model, *limits, dtype)
    writer = _SplitWriter(temporary)
    try:
        for encoded in _encode_all(chunks, models, workers):
            writer.add(encoded)
        writer.close()
    except BaseException:
        writer.close()
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    counts = writer.counts
    log_dropped(
        split, counts["pairs_read"], counts["empty"], counts["too_long"], limits
    )
    if not counts["pairs"]:
        shutil.rmtree(temporary, ignore_errors=True)
        raise no_pairs_left(split, counts["empty"], counts["too_long"])
    seconds = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu_started  # the workers' too: the pool has ended
    meta = {
        "inputs": inputs,
        "dtype": dtype,
        **counts,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
    }
    (temporary / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    _fsync_directory(temporary)
    try:
        os.rename(temporary, directory)
    except OSError:  # another process (a DDP rank) finished the same split first
        shutil.rmtree(temporary, ignore_errors=True)
        if check_prepared(directory, inputs) is not None:
            raise
    log.info(
        "data.%s is prepared: %s pairs (%s read) in %.1f s, %s pairs/s, %d encoding "
        "process(es), %.1f CPU s",
        split,
        f"{counts['pairs']:,}",
        f"{counts['pairs_read']:,}",
        seconds,
        f"{counts['pairs_read'] / max(seconds, 1e-9):,.0f}",
        workers,
        cpu,
    )
    return meta


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its ended children."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _chunks(
    pairs: Iterator[tuple[str, str]], size: int
) -> Iterator[tuple[list[str], list[str]]]:
    while chunk := list(itertools.islice(pairs, size)):
        sources, targets = zip(*chunk)
        yield list(sources), list(targets)


def _encode_all(
    chunks: Iterator[tuple[list[str], list[str]]], models: tuple, workers: int
) -> Iterator[dict]:
    """The encoded chunks, in order; several worker processes when ``workers`` > 1,
    with at most two chunks per worker in flight (bounded memory)."""
    if workers <= 1:
        _init_worker(*models)
        for sources, targets in chunks:
            yield _encode_chunk(sources, targets)
        return
    context = multiprocessing.get_context("spawn")  # no fork of torch's threads
    with concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=models
    ) as pool:
        pending: deque[concurrent.futures.Future] = deque()
        for sources, targets in chunks:
            pending.append(pool.submit(_encode_chunk, sources, targets))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


_WORKER: dict[str, Any] = {}


def _init_worker(
    src_model: bytes,
    tgt_model: bytes,
    max_src_len: int | None,
    max_tgt_len: int | None,
    dtype: str,
) -> None:
    src = spm.SentencePieceProcessor(model_proto=src_model)
    tgt = (
        src
        if tgt_model == src_model
        else spm.SentencePieceProcessor(model_proto=tgt_model)
    )
    _WORKER.update(
        src=src, tgt=tgt, max_src=max_src_len, max_tgt=max_tgt_len, dtype=dtype
    )


def _encode_chunk(sources: list[str], targets: list[str]) -> dict:
    """Encode a chunk of pairs and drop the empty and over-long ones (the rules of
    :func:`seq2seq.data.keep_pair`); returns flat arrays of the kept ones."""
    w = _WORKER
    n = len(sources)
    src_ids = w["src"].encode(sources)
    tgt_ids = w["tgt"].encode(targets)
    src_lengths = np.fromiter(map(len, src_ids), np.int64, n) + 1  # + EOS
    tgt_lengths = np.fromiter(map(len, tgt_ids), np.int64, n) + 1  # + EOS, not BOS
    empty = np.fromiter((not s or not t for s, t in zip(sources, targets)), bool, n)
    too_long = np.zeros(n, dtype=bool)
    if w["max_src"] is not None:
        too_long |= src_lengths > w["max_src"]
    if w["max_tgt"] is not None:
        too_long |= tgt_lengths > w["max_tgt"]
    too_long &= ~empty
    keep = ~(empty | too_long)
    kept = keep.tolist()
    return {
        "read": n,
        "empty": int(empty.sum()),
        "too_long": int(too_long.sum()),
        "src": _frame(itertools.compress(src_ids, kept), src_lengths[keep], False),
        "tgt": _frame(itertools.compress(tgt_ids, kept), tgt_lengths[keep], True),
        "src_text": _texts(itertools.compress(sources, kept)),
        "tgt_text": _texts(itertools.compress(targets, kept)),
    }


def _frame(
    rows: Iterable[list[int]], lengths: np.ndarray, bos: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(flat ids with EOS after each row and BOS before it when ``bos``, the
    framed rows' lengths); ``lengths`` count the ids + EOS."""
    dtype = _WORKER["dtype"]
    framed = lengths + (1 if bos else 0)  # (rows,)
    ends = np.cumsum(framed)
    out = np.full(int(ends[-1]) if len(ends) else 0, EOS_ID, dtype=dtype)
    body = np.ones(len(out), dtype=bool)
    body[ends - 1] = False
    if bos:
        out[ends - framed] = BOS_ID
        body[ends - framed] = False
    out[body] = np.fromiter(itertools.chain.from_iterable(rows), dtype)
    return out, framed


def _texts(strings: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
    """(UTF-8 bytes of the strings back to back, each string's byte length);
    the strings hold no newline (they are lines), so one join and a search for
    the separators measure them all."""
    joined = np.frombuffer(("\n".join(strings) + "\n").encode(), dtype=np.uint8)
    separators = np.flatnonzero(joined == 10)
    lengths = np.diff(separators, prepend=-1) - 1
    return joined[joined != 10], lengths


class _SplitWriter:
    """Appends encoded chunks to a split's files, offsets running on."""

    def __init__(self, directory: Path) -> None:
        self.files = {name: open(directory / name, "wb") for name in ARRAYS + TEXTS}
        self.ends = dict.fromkeys(
            ("src.idx", "tgt.idx", "src.txt.idx", "tgt.txt.idx"), 0
        )
        for name in self.ends:
            np.zeros(1, dtype=np.int64).tofile(self.files[name])
        self.counts = dict.fromkeys(
            ("pairs", "pairs_read", "empty", "too_long", "src_tokens", "tgt_tokens"), 0
        )
        self.counts.update(src_text_bytes=0, tgt_text_bytes=0)

    def add(self, chunk: dict) -> None:
        for side in ("src", "tgt"):
            ids, lengths = chunk[side]
            self._append(f"{side}.ids", f"{side}.idx", ids, lengths)
            text, text_lengths = chunk[f"{side}_text"]
            self._append(f"{side}.txt", f"{side}.txt.idx", text, text_lengths)
            self.counts[f"{side}_tokens"] += len(ids)
            self.counts[f"{side}_text_bytes"] += len(text)
        self.counts["pairs"] += len(chunk["src"][1])
        self.counts["pairs_read"] += chunk["read"]
        self.counts["empty"] += chunk["empty"]
        self.counts["too_long"] += chunk["too_long"]

    def _append(self, data: str, index: str, values: np.ndarray, lengths) -> None:
        values.tofile(self.files[data])
        offsets = self.ends[index] + np.cumsum(lengths, dtype=np.int64)
        offsets.tofile(self.files[index])
        if len(offsets):
            self.ends[index] = int(offsets[-1])

    def close(self) -> None:
        for handle in self.files.values():
            if not handle.closed:
                handle.flush()
                os.fsync(handle.fileno())
                handle.close()


def _remove_leftovers(cache: Path) -> None:
    """Remove ``.tmp-*`` directories of preparations whose process is gone."""
    for path in cache.glob(".tmp-*"):
        try:
            pid = int(path.name.rsplit("-", 1)[1])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
            log.info("removed %s, left by a preparation that did not finish", path)
        except (ValueError, IndexError, PermissionError):
            continue


def _fsync_directory(directory: Path) -> None:
    for path in directory.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


# ---------------------------------------------------------------- tokenizer


class CorpusSide:
    """One side of a split's sentences, read from disk afresh at each iteration
    (sentencepiece training and the target-vocabulary cut read them as streams)."""

    def __init__(self, open_pairs: Callable[[], Iterator[tuple[str, str]]], side: int):
        self.open_pairs, self.side = open_pairs, side

    def __iter__(self) -> Iterator[str]:
        return (pair[self.side] for pair in self.open_pairs())


def load_or_train_tokenizer(
    cfg: Config, cache: Path | None = None, run_log: bool = True
) -> Tokenizer:
    """The run's tokenizer: the models the config names (a joint one cut to the
    target side, as :func:`~seq2seq.tokenizer.build_tokenizer` does), trained on
    the training corpus once and kept in the cache for later runs on it."""
    from seq2seq.config import to_dict
    from seq2seq.data import iter_corpus
    from seq2seq.tokenizer import build_tokenizer, read_model_file

    tok = cfg.tokenizer
    root = Path(cfg.data.root)
    resolve = lambda p: root / p  # noqa: E731
    if tok.src_model is not None:  # per-language models, used as they are
        return build_tokenizer(tok, resolve=resolve)
    if tok.model is not None and not tok.restrict_target_vocab:
        return build_tokenizer(tok, resolve=resolve)
    cache = _writable(cache or cache_root())
    settings = to_dict(tok)
    if tok.model is not None:  # the named model's bytes, not its path
        model = read_model_file(resolve(tok.model), "tokenizer.model")
        settings["model"] = _bytes_digest(model)
    # The target-vocabulary cut reads n-best lists when sampling is on, whatever
    # alpha: another alpha must not train the tokenizer (and prepare) again.
    settings["sampling_alpha"] = tok.sampling_alpha > 0
    if not tok.sampling_alpha:
        settings["sampling_nbest"] = None  # the cut reads no n-best lists then
    inputs = {
        "version": VERSION,
        "tokenizer": settings,
        "train_sentences": TRAIN_SENTENCES,
        **_corpus_inputs(cfg.data.train, root, cache),
        "on_bad_lines": cfg.data.on_bad_lines,
        "sentencepiece": spm.__version__,
    }
    directory = cache / f"tokenizer-{_key(inputs)}"
    found = _load_tokenizer(directory, inputs)
    if found is not None:
        kind = "joint" if tok.joint else "per-language"
        log.info(
            "using the %s sentencepiece model trained earlier on this corpus (%s)",
            kind,
            directory,
        )
        return found

    def pairs() -> Iterator[tuple[str, str]]:
        return iter_corpus(cfg.data.train, root, "train", cfg.data.on_bad_lines)

    tokenizer = build_tokenizer(
        tok, CorpusSide(pairs, 0), CorpusSide(pairs, 1), resolve
    )
    temporary = cache / f".tmp-{directory.name}-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    (temporary / "src.model").write_bytes(tokenizer.src_model)
    (temporary / "tgt.model").write_bytes(tokenizer.tgt_model)
    (temporary / "meta.json").write_text(json.dumps({"inputs": inputs}), "utf-8")
    _fsync_directory(temporary)
    shutil.rmtree(directory, ignore_errors=True)
    try:
        os.rename(temporary, directory)
    except OSError:  # another process saved the same model first
        shutil.rmtree(temporary, ignore_errors=True)
    return tokenizer


def _load_tokenizer(directory: Path, inputs: dict) -> Tokenizer | None:
    try:
        meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
        if meta.get("inputs") != inputs:
            return None
        src = (directory / "src.model").read_bytes()
        tgt = (directory / "tgt.model").read_bytes()
        return Tokenizer(src, None if tgt == src else tgt)
    except (OSError, ValueError, UserError) as err:
        if directory.exists():
            log.warning(
                "the cached tokenizer %s is damaged (%s): training it again",
                directory,
                err,
            )
        return None


# ---------------------------------------------------------------- command


def add_prepare_arguments(parser) -> None:
    """``seq2seq data prepare CONFIG [key.path=value ...]``."""
    parser.add_argument("config", help="the run's YAML config")
    parser.add_argument("overrides", nargs="*", metavar="key.path=value")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="encoding processes (default: one per core; small corpora: 1)",
    )


def run_prepare(args) -> int:
    """Train (or load) the tokenizer and prepare the train and valid splits, as
    ``train`` would; print what was written where."""
    from seq2seq.config import load_config, replace

    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers {args.workers}: must be >= 1")
    cfg = load_config(args.config, args.overrides)
    cfg = replace(cfg, data=replace(cfg.data, root=str(Path(cfg.data.root).resolve())))
    cache = cache_root()
    tokenizer = load_or_train_tokenizer(cfg, cache)
    for split in ("train", "valid"):
        data = load_or_prepare(cfg, split, tokenizer, cache, args.workers)
        directory = (
            cache / f"{split}-{_key(split_inputs(cfg, split, tokenizer, cache))}"
        )
        size = sum(p.stat().st_size for p in directory.iterdir())
        print(
            f"{split}: {len(data):,} pairs kept of {data.pairs_read:,} read; "
            f"{int(data.src_lengths.sum()):,} source / "
            f"{int(data.tgt_lengths.sum()):,} target tokens "
            f"({data.src_ids.dtype}); {size / 2**20:,.1f} MiB in {directory}"
        )
        if split == "train":
            _draw_first_epoch(cfg, tokenizer, data, args.workers)
    return 0


def _draw_first_epoch(cfg, tokenizer: Tokenizer, data: FlatPairs, workers) -> None:
    """With subword sampling, epoch 0's segmentation lengths, which the first
    ``train`` (or ``--dry-run``) plans its batches on (:mod:`seq2seq.sampled`)."""
    from seq2seq.run_setup import make_sampler
    from seq2seq.sampled import stored_path

    sampler = make_sampler(cfg, tokenizer, data)
    if sampler is None:
        return
    start = time.perf_counter()
    sampler.lengths(0, workers=workers)
    print(
        f"subword sampling (alpha {sampler.alpha:g}): epoch 0's segmentation "
        f"lengths in {stored_path(sampler, 0)} ({time.perf_counter() - start:.1f} s)"
    )
