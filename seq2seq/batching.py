"""Dynamic batching for the server: one decoding thread translates the sentences of
concurrent requests together.

Requests are :class:`Job` s on a queue. The thread takes the first one waiting,
then gathers more for at most ``max_wait_s`` or until ``max_batch_sentences``
sentences are in hand (jobs that queued while the previous batch was decoding are
taken at once), groups them by decoding settings (beam size, length penalty,
n-best: only requests with equal settings share a search), and decodes each group
as one list of sentences, which the translator sorts by length into padded
batches. Each job's translations go back to it through a
:class:`concurrent.futures.Future`, which an asyncio handler awaits with
:func:`asyncio.wrap_future`; a job whose future was cancelled (its client left)
is not decoded.

The decoded text of a sentence does not depend on the sentences it is batched
with: padding is masked in the encoder and the attention, and each sentence leaves
the search when it is done.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """Decoding settings of a request: only requests with equal settings are
    decoded in one search."""

    beam: int
    alpha: float
    n_best: int


@dataclass
class Job:
    """One request's sentences, its settings, whether it wants attention, and the
    future its translations (one per sentence, in order) are set on."""

    sentences: list[str]
    settings: Settings
    attention: bool = False
    future: Future = field(default_factory=Future)


class DecodingError(Exception):
    """Decoding a batch failed; the message is one line for the client."""


class ShuttingDown(Exception):
    """The batcher no longer takes jobs."""


# (sentences, settings, return_attention) -> one translation per sentence
Decoder = Callable[[list[str], Settings, bool], list[Any]]

_STOP = object()


class DynamicBatcher:
    """Gathers :class:`Job` s from any thread and decodes them on one thread.

    ``decoder`` translates a list of sentences with given settings (see
    :data:`Decoder`). ``max_batch_sentences``: gathering stops once this many
    sentences are in hand (a job is never split, so a batch may pass it by one
    job's sentences). ``max_wait_s``: how long the first job of a batch waits for
    others.
    """

    def __init__(
        self, decoder: Decoder, max_batch_sentences: int = 64, max_wait_s: float = 0.005
    ) -> None:
        if max_batch_sentences < 1:
            raise ValueError(f"max_batch_sentences={max_batch_sentences} < 1")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s={max_wait_s} < 0")
        self.decoder = decoder
        self.max_batch_sentences = max_batch_sentences
        self.max_wait_s = max_wait_s
        self.batches = 0  # searches run (one per settings group of a batch)
        self.sentences = 0  # sentences decoded
        self.largest_batch = 0  # most sentences decoded in one search
        self.decode_seconds = 0.0  # wall time spent in the decoder
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._lock = threading.Lock()  # orders submit() against close()

    def start(self) -> None:
        """Start the decoding thread."""
        if self._thread is not None:
            raise RuntimeError("the batcher is started already")
        self._thread = threading.Thread(
            target=self._run, name="seq2seq-decoder", daemon=True
        )
        self._thread.start()

    def submit(
        self, sentences: list[str], settings: Settings, attention: bool = False
    ) -> Future:
        """Queue sentences for decoding; the future gets one translation per
        sentence, or a :class:`DecodingError`. Raises :class:`ShuttingDown` after
        :meth:`close`."""
        job = Job(list(sentences), settings, attention)
        with self._lock:
            if self._closed:
                raise ShuttingDown("the server is shutting down")
            self._queue.put(job)
        return job.future

    @property
    def pending(self) -> int:
        """Jobs waiting for the decoding thread."""
        return self._queue.qsize()

    def close(self, timeout: float | None = None) -> None:
        """Take no more jobs, decode those queued, then stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            jobs, stopping = self._gather(first)
            self._decode(jobs)

    def _gather(self, first: Job) -> tuple[list[Job], bool]:
        """``first`` and the jobs that arrive within ``max_wait_s`` of it (or are
        queued already), up to ``max_batch_sentences`` sentences; and whether the
        stop mark came."""
        jobs, count = [first], len(first.sentences)
        deadline = time.monotonic() + self.max_wait_s
        while count < self.max_batch_sentences:
            remaining = deadline - time.monotonic()
            try:
                job = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            if job is _STOP:
                return jobs, True
            jobs.append(job)
            count += len(job.sentences)
        return jobs, False

    def _decode(self, jobs: list[Job]) -> None:
        """Decode the jobs whose clients still wait, one search per settings
        group; a failure fails that group's jobs only."""
        groups: dict[Settings, list[Job]] = {}
        for job in jobs:
            if job.future.set_running_or_notify_cancel():  # False: cancelled
                groups.setdefault(job.settings, []).append(job)
        for settings, group in groups.items():
            sentences = [s for job in group for s in job.sentences]
            attention = any(job.attention for job in group)
            start = time.perf_counter()
            try:
                translations = self.decoder(sentences, settings, attention)
                if len(translations) != len(sentences):
                    raise RuntimeError(
                        f"{len(translations)} translations for {len(sentences)} "
                        "sentences"
                    )
            except Exception as err:  # noqa: BLE001  (the server must keep serving)
                log.exception("decoding %d sentences failed", len(sentences))
                message = " ".join(f"{type(err).__name__}: {err}".split())
                for job in group:
                    job.future.set_exception(
                        DecodingError(f"decoding failed: {message}")
                    )
                continue
            finally:
                self.decode_seconds += time.perf_counter() - start
            self.batches += 1
            self.sentences += len(sentences)
            self.largest_batch = max(self.largest_batch, len(sentences))
            start = 0
            for job in group:
                end = start + len(job.sentences)
                job.future.set_result(translations[start:end])
                start = end
