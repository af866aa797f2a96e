"""The server's decoding in a process of its own.

In one process the decoding thread and the event loop (HTTP, JSON) take turns
holding Python's GIL: a greedy search runs a few Python statements between
every tensor operation, and each time the event loop holds the GIL the search
waits. Measured on 2 cores, the same batches decoded 40% slower inside the
server than alone (docs/SERVING.md). :class:`ProcessDecoder` runs the model in
a child process and is called like any :data:`~seq2seq.batching.Decoder`: the
batching thread sends a batch through a pipe and blocks (without the GIL) until
the records come back. A batch that fails in the child fails alone; a child that
dies (killed, out of memory) fails its batch and is started again.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
from collections.abc import Callable
from typing import Any

from seq2seq.batching import Settings
from seq2seq.errors import UserError

log = logging.getLogger(__name__)

START_TIMEOUT_S = 600.0  # loading a large ensemble from a slow disk


class ProcessDecoder:
    """A :data:`~seq2seq.batching.Decoder` whose model lives in a child process.

    ``make_decoder(*arguments)`` runs in the child (a module-level function, so
    that it can be named there) and returns (the decoder to serve with, a
    picklable description of it), the latter kept as :attr:`described`. A
    :class:`~seq2seq.errors.UserError` it raises is raised here, as it is.
    """

    def __init__(self, make_decoder: Callable[..., Any], *arguments: Any) -> None:
        self._make = make_decoder
        self._arguments = arguments
        self._context = multiprocessing.get_context("spawn")  # no fork of torch
        self._lock = threading.Lock()
        self.restarts = 0
        self._start()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def _start(self) -> None:
        self._conn, child = self._context.Pipe()
        self._process = self._context.Process(
            target=_child_main,
            args=(child, self._make, self._arguments),
            name="seq2seq-decoding",
            daemon=True,
        )
        self._process.start()
        child.close()
        if not self._conn.poll(START_TIMEOUT_S):
            self._process.kill()
            raise RuntimeError(
                f"the decoding process did not start in {START_TIMEOUT_S:.0f} s"
            )
        try:
            status, payload = self._conn.recv()
        except EOFError:
            raise RuntimeError(self._died("starting")) from None
        if status == "user-error":
            self._process.join(10)
            raise UserError(payload)
        if status != "ready":
            self._process.join(10)
            raise RuntimeError(f"the decoding process could not start: {payload}")
        self.described = payload

    def __call__(
        self, sentences: list[str], settings: Settings, attention: bool
    ) -> list[Any]:
        with self._lock:
            try:
                self._conn.send((sentences, settings, attention))
                status, payload = self._conn.recv()
            except (EOFError, OSError):
                message = self._died("decoding")
                self._conn.close()
                self.restarts += 1
                log.error("%s; starting it again", message)
                self._start()
                raise RuntimeError(message) from None
        if status != "ok":
            raise RuntimeError(payload)
        return payload

    def _died(self, doing: str) -> str:
        self._process.join(5)
        code = self._process.exitcode
        how = f"signal {-code}" if code is not None and code < 0 else f"status {code}"
        return f"the decoding process ended with {how} while {doing}"

    def close(self, timeout: float = 30.0) -> None:
        """Stop the child (after the batch it is decoding)."""
        with self._lock:
            try:
                self._conn.send(None)
            except OSError:
                pass
            self._process.join(timeout)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
            self._conn.close()


def _child_main(conn: Any, make_decoder: Callable[..., Any], arguments: tuple) -> None:
    # The server process handles Ctrl-C and SIGTERM (draining first); a signal
    # sent to the whole process group must not end the decoding under it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        decoder, described = make_decoder(*arguments)
    except UserError as err:
        conn.send(("user-error", str(err)))
        return
    except BaseException as err:  # noqa: BLE001  (reported to the server)
        conn.send(("error", _one_line(err)))
        return
    conn.send(("ready", described))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the server is gone
            return
        if message is None:
            return
        try:
            conn.send(("ok", decoder(*message)))
        except Exception as err:  # noqa: BLE001  (that batch fails, not the child)
            conn.send(("error", _one_line(err)))


def _one_line(err: BaseException) -> str:
    return " ".join(f"{type(err).__name__}: {err}".split())
