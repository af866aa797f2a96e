"""``seq2seq serve RUN``: translate over HTTP, batching concurrent requests.

An ASGI app (Starlette) run by uvicorn, both from the ``serve`` extra
(``pip install -e ".[serve]"``):

- ``POST /translate`` with ``{"text": ["Ein Hund rennt.", ...]}`` and optionally
  ``"beam"``, ``"n_best"``, ``"alpha"``, ``"attention"`` returns
  ``{"translations": [{"text": ..., "score": ...}, ...]}`` in input order (with
  ``"nbest"`` when n_best > 1, ``"attention"`` when asked).
- ``GET /health``: the model, its training step, the decoding defaults and limits.
- ``GET /metrics``: requests, sentences, errors, batches, latency percentiles.

Requests are checked in full before they are queued (:func:`parse_request`): a bad
one gets a 4xx with ``{"error": "one line"}`` and never reaches the model. The
sentences of concurrent requests are decoded together by one decoding thread
(:class:`~seq2seq.batching.DynamicBatcher`); a batch that fails gets a 500 with one
line and the server goes on. SIGTERM (and Ctrl-C) stop accepting connections,
answer the requests in flight, then exit with status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import difflib
import json
import logging
import math
import os
import signal
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from seq2seq.batching import (
    Decoder,
    DecodingError,
    DynamicBatcher,
    Settings,
    ShuttingDown,
)
from seq2seq.errors import UserError

log = logging.getLogger(__name__)

FIELDS = ("text", "beam", "n_best", "alpha", "attention")
LATENCY_WINDOW = 10_000  # the last requests the latency percentiles cover
EXAMPLE = '{"text": ["Ein Hund rennt."]}'


# ---------------------------------------------------------------- requests


@dataclass(frozen=True)
class Limits:
    """What one request may ask for: sentences, characters (all sentences
    together), beam size; the body's size follows from the characters."""

    max_sentences: int = 64
    max_chars: int = 20_000
    max_beam: int = 16

    @property
    def max_body_bytes(self) -> int:
        # Up to 6 bytes a character (a \\uXXXX escape), plus the other fields.
        return 6 * self.max_chars + 4096


@dataclass(frozen=True)
class TranslateRequest:
    """A checked ``POST /translate`` body."""

    sentences: list[str]
    settings: Settings
    attention: bool = False


class BadRequest(Exception):
    """A request refused before decoding: an HTTP status and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_request(body: bytes, defaults: Settings, limits: Limits) -> TranslateRequest:
    """Check a ``POST /translate`` body; raise :class:`BadRequest` (400, or 413
    for a request over the limits) naming the first problem found."""
    if len(body) > limits.max_body_bytes:
        raise BadRequest(
            413,
            f"the body has {len(body):,} bytes; the limit is {limits.max_body_bytes:,}",
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadRequest(
            400,
            f"the body is not valid UTF-8 (byte {body[err.start]:#04x} at offset "
            f"{err.start})",
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise BadRequest(
            400,
            f"the body is not valid JSON: {err.msg} at line {err.lineno} column "
            f"{err.colno}",
        ) from None
    if not isinstance(data, dict):
        raise BadRequest(
            400, f"the body must be a JSON object like {EXAMPLE}, not {_kind(data)}"
        )
    for name in data:
        if name not in FIELDS:
            close = difflib.get_close_matches(name, FIELDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise BadRequest(
                400,
                f"unknown field {name!r}{hint}; the fields are {', '.join(FIELDS)}",
            )
    sentences = _sentences(data, limits)
    beam = _integer(data, "beam", defaults.beam, 1, limits.max_beam, "--max-beam")
    # A beam smaller than the server's default n-best lowers n-best with it.
    default_n_best = min(defaults.n_best, beam)
    n_best = _integer(data, "n_best", default_n_best, 1, beam, "the beam size")
    alpha = data.get("alpha", defaults.alpha)
    if (
        isinstance(alpha, bool)
        or not isinstance(alpha, int | float)
        or not (0 <= alpha < math.inf)
    ):
        raise BadRequest(
            400,
            f"alpha {json.dumps(alpha)}: must be a number >= 0 (0: no length penalty)",
        )
    attention = data.get("attention", False)
    if not isinstance(attention, bool):
        raise BadRequest(
            400, f"attention {json.dumps(attention)}: must be true or false"
        )
    return TranslateRequest(sentences, Settings(beam, float(alpha), n_best), attention)


def _sentences(data: dict, limits: Limits) -> list[str]:
    if "text" not in data:
        raise BadRequest(400, f"missing field 'text', a list of sentences: {EXAMPLE}")
    text = data["text"]
    if isinstance(text, str):
        raise BadRequest(
            400,
            "text must be a list of strings; put one sentence in a list: " + EXAMPLE,
        )
    if not isinstance(text, list):
        raise BadRequest(400, f"text must be a list of strings, not {_kind(text)}")
    if not text:
        raise BadRequest(400, "text is an empty list; give at least one sentence")
    if len(text) > limits.max_sentences:
        raise BadRequest(
            413,
            f"text has {len(text)} sentences; the limit is "
            f"{limits.max_sentences} a request (send several requests)",
        )
    chars = 0
    for index, sentence in enumerate(text):
        if not isinstance(sentence, str):
            raise BadRequest(400, f"text[{index}] is {_kind(sentence)}, not a string")
        try:
            sentence.encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest(
                400,
                f"text[{index}] is not valid Unicode (an unpaired surrogate "
                "escape such as \\ud800)",
            ) from None
        chars += len(sentence)
    if chars > limits.max_chars:
        raise BadRequest(
            413,
            f"text has {chars:,} characters; the limit is "
            f"{limits.max_chars:,} a request",
        )
    return text


def _integer(
    data: dict, name: str, default: int, low: int, high: int, high_name: str
) -> int:
    value = data.get(name, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not (low <= value <= high)
    ):
        raise BadRequest(
            400,
            f"{name} {json.dumps(value)}: must be a whole number from {low} to "
            f"{high} ({high_name})",
        )
    return value


def _kind(value: Any) -> str:
    """A JSON value's kind, for messages: 'a number', 'null', ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


# ---------------------------------------------------------------- responses


def translation_record(translation: Any, attention: bool, tokenizer: Any) -> dict:
    """One sentence's answer: text and score; ``nbest`` (text and score of each
    alternative, best first) with n-best; with ``attention``, the weights
    (target pieces x source pieces, 4 decimals) and both pieces' labels."""
    from seq2seq.inference import attention_labels

    record: dict[str, Any] = {"text": translation.text, "score": translation.score}
    if len(translation.nbest) > 1:
        record["nbest"] = [
            {"text": text, "score": score} for text, score in translation.nbest
        ]
    if attention:
        src, tgt = attention_labels(tokenizer, translation.source, translation.best())
        weights = translation.attention
        record["attention"] = {
            "source_tokens": src,
            "target_tokens": tgt,
            "weights": []
            if weights is None
            else [[round(w, 4) for w in row] for row in weights.tolist()],
        }
    return record


# ---------------------------------------------------------------- metrics


@dataclass
class Metrics:
    """Counts since start and the latencies of the last requests answered."""

    requests: int = 0  # POST /translate requests received
    sentences: int = 0  # sentences translated
    client_errors: int = 0  # 4xx answers
    server_errors: int = 0  # 5xx answers
    started: float = field(default_factory=time.monotonic)
    latencies: deque = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))

    def report(self, batcher: DynamicBatcher) -> dict:
        """The ``GET /metrics`` object (latencies in milliseconds)."""
        ordered = sorted(self.latencies)
        decoding = getattr(batcher.decoder, "pid", None)  # a decoding process
        return {
            "requests": self.requests,
            "sentences": self.sentences,
            "errors": {
                "client": self.client_errors,
                "server": self.server_errors,
            },
            "batches": batcher.batches,
            "sentences_per_batch": round(batcher.sentences / batcher.batches, 2)
            if batcher.batches
            else 0.0,
            "largest_batch": batcher.largest_batch,
            "decode_seconds": round(batcher.decode_seconds, 3),
            "queued_requests": batcher.pending,
            "latency_ms": {
                "window": len(ordered),
                **{
                    f"p{q}": round(1000 * percentile(ordered, q), 2)
                    for q in (50, 95, 99)
                },
            },
            "rss_bytes": rss_bytes(),
            "decoding_rss_bytes": rss_bytes(decoding) if decoding else None,
            "decoding_restarts": getattr(batcher.decoder, "restarts", 0),
            "uptime_s": round(time.monotonic() - self.started, 1),
        }


def percentile(ordered: list[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile of sorted values (0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def rss_bytes(pid: int | str = "self") -> int | None:
    """Resident set size of a process from ``/proc`` (None where unreadable)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


# ---------------------------------------------------------------- the app


@dataclass
class Service:
    """What the app serves: a started-on-demand batcher (whose decoder returns
    answer records), the request defaults and limits, and ``info`` for
    ``/health``."""

    batcher: DynamicBatcher
    defaults: Settings
    limits: Limits = field(default_factory=Limits)
    info: dict = field(default_factory=dict)
    metrics: Metrics = field(default_factory=Metrics)


def create_app(service: Service):
    """The Starlette app: routes, JSON errors, and a lifespan that starts the
    batcher and, at shutdown, lets it finish the jobs queued."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    metrics = service.metrics

    def error(status: int, message: str) -> JSONResponse:
        if status >= 500:
            metrics.server_errors += 1
        else:
            metrics.client_errors += 1
        return JSONResponse({"error": message}, status_code=status)

    async def translate(request: Request) -> JSONResponse:
        started = time.perf_counter()
        metrics.requests += 1
        try:
            body = await _read_body(request, service.limits.max_body_bytes)
            parsed = parse_request(body, service.defaults, service.limits)
        except BadRequest as err:
            return error(err.status, err.message)
        try:
            future = service.batcher.submit(
                parsed.sentences, parsed.settings, parsed.attention
            )
        except ShuttingDown as err:
            return error(503, str(err))
        try:
            records = await asyncio.wrap_future(future)
        except DecodingError as err:
            return error(500, str(err))
        if not parsed.attention:  # another request of its batch asked for it
            records = [
                {k: v for k, v in r.items() if k != "attention"} for r in records
            ]
        metrics.sentences += len(records)
        metrics.latencies.append(time.perf_counter() - started)
        return JSONResponse({"translations": records})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "status": "ok",
                **service.info,
                "decoding_pid": getattr(service.batcher.decoder, "pid", None),
                "defaults": asdict(service.defaults),
                "limits": {
                    **asdict(service.limits),
                    "max_body_bytes": service.limits.max_body_bytes,
                },
                "batching": {
                    "max_batch_sentences": service.batcher.max_batch_sentences,
                    "max_wait_ms": round(1000 * service.batcher.max_wait_s, 3),
                },
            }
        )

    async def metrics_route(request: Request) -> JSONResponse:
        return JSONResponse(metrics.report(service.batcher))

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        message = f"{request.method} {request.url.path}: {exc.detail}"
        if exc.status_code == 405:
            message += f"; use {(exc.headers or {}).get('Allow', 'another method')}"
        if exc.status_code == 404:
            message += "; the paths are POST /translate, GET /health, GET /metrics"
        return error(exc.status_code, message)

    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        message = " ".join(f"{type(exc).__name__}: {exc}".split())
        return error(500, f"internal error: {message}")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        service.batcher.start()
        try:
            yield
        finally:
            # Uvicorn has answered the requests in flight by now; the jobs left
            # are those of clients that went away.
            await asyncio.get_running_loop().run_in_executor(
                None, service.batcher.close
            )

    return Starlette(
        routes=[
            Route("/translate", translate, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/metrics", metrics_route, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error, Exception: internal_error},
        lifespan=lifespan,
    )


async def _read_body(request: Any, limit: int) -> bytes:
    """The request body, refused with 413 once it passes ``limit`` bytes (read
    no further than that)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BadRequest(
            413, f"the body has {int(declared):,} bytes; the limit is {limit:,}"
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(413, f"the body passes the limit of {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


# ---------------------------------------------------------------- the command


def model_decoder(
    model: Any,
    tokenizer: Any,
    decode: Any,
    device: Any,
    amp_dtype: Any,
    batch_size: int,
) -> Decoder:
    """A :data:`~seq2seq.batching.Decoder` over a model: a
    :class:`~seq2seq.inference.Translator` with the request's settings, whose
    length-sorted padded batches hold up to ``batch_size`` sentences (as
    ``translate --batch-size``). It returns each sentence's answer record
    (:func:`translation_record`, with attention when asked)."""
    from seq2seq.config import replace
    from seq2seq.inference import Translator

    decode = replace(decode, batch_size=batch_size)

    def decoder(sentences: list[str], settings: Settings, attention: bool) -> list:
        translator = Translator(
            model,
            tokenizer,
            decode,
            device,
            amp_dtype,
            beam_size=settings.beam,
            alpha=settings.alpha,
            n_best=settings.n_best,
        )
        translations = translator.translate_lines(sentences, return_attention=attention)
        return [translation_record(t, attention, tokenizer) for t in translations]

    return decoder


def served_decoder(load: Callable, args: argparse.Namespace) -> tuple[Decoder, dict]:
    """The decoder ``serve`` runs (in the decoding process, or in-process with
    ``--in-process``) and what the server needs to know of it: the model
    ``load(args)`` gives, on ``--threads`` threads, checked against the
    serving limits, its first search (which pays one-off costs) done."""
    model, tokenizer, decode, device, amp_dtype, _ = load(args)
    beam = args.beam if args.beam is not None else decode.beam_size
    alpha = args.alpha if args.alpha is not None else decode.length_penalty
    check_beam(args, beam)
    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    decoder = model_decoder(
        model, tokenizer, decode, device, amp_dtype, args.batch_size
    )
    decoder(["warm up"], Settings(beam, float(alpha), args.n_best), False)
    described = {
        "beam": beam,
        "alpha": float(alpha),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "max_len_a": decode.max_len_a,
        "max_len_b": decode.max_len_b,
    }
    return decoder, described


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``seq2seq serve`` (the decoding ones come from the CLI)."""
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1, this host only; see "
        "docs/SERVING.md before exposing it)",
    )
    parser.add_argument(
        "--port", type=int, default=8000, help="port (default 8000; 0: any free one)"
    )
    parser.add_argument(
        "--n-best",
        type=int,
        default=1,
        metavar="K",
        help="alternatives per sentence when a request does not say (default 1)",
    )
    parser.add_argument(
        "--max-batch-sentences",
        type=int,
        default=256,
        metavar="N",
        help="stop gathering requests into a batch at N sentences (default 256); "
        "they are sorted by length into searches of --batch-size",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=64,
        metavar="N",
        help="sentences per padded search, length-sorted, as for translate "
        "(default 64)",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="decode on a thread of the server process instead of a process of "
        "its own (which keeps the event loop from slowing the decoding)",
    )
    parser.add_argument(
        "--max-wait-ms",
        type=float,
        default=5.0,
        metavar="M",
        help="how long a request waits for others to batch with (default 5 ms)",
    )
    parser.add_argument(
        "--max-sentences",
        type=int,
        default=Limits.max_sentences,
        metavar="N",
        help=f"sentences a request may hold (default {Limits.max_sentences})",
    )
    parser.add_argument(
        "--max-chars",
        type=int,
        default=Limits.max_chars,
        metavar="N",
        help=f"characters a request may hold (default {Limits.max_chars:,})",
    )
    parser.add_argument(
        "--max-beam",
        type=int,
        default=Limits.max_beam,
        metavar="N",
        help=f"largest beam a request may ask for (default {Limits.max_beam})",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="PyTorch CPU threads of the decoding (default: PyTorch's, one per "
        "core); the HTTP side runs on one more thread",
    )
    parser.add_argument(
        "--access-log", action="store_true", help="log every request on stderr"
    )


def check_serve_arguments(args: argparse.Namespace) -> None:
    """One-line errors for serving options out of range."""
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads {args.threads}: must be >= 1")
    for name in (
        "max_batch_sentences",
        "batch_size",
        "max_sentences",
        "max_chars",
        "max_beam",
    ):
        if getattr(args, name) < 1:
            flag = "--" + name.replace("_", "-")
            raise UserError(f"{flag} {getattr(args, name)}: must be >= 1")
    if not 0 <= args.max_wait_ms <= 10_000:
        raise UserError(f"--max-wait-ms {args.max_wait_ms:g}: must be from 0 to 10000")
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port}: must be from 0 to 65535")
    if args.n_best < 1:
        raise UserError(f"--n-best {args.n_best}: must be >= 1")


def check_beam(args: argparse.Namespace, beam: int) -> None:
    """``beam`` (``--beam``, else the run's ``decode.beam_size``) against
    ``--max-beam`` and ``--n-best``."""
    if beam > args.max_beam:
        raise UserError(f"--beam {beam} is larger than --max-beam {args.max_beam}")
    if args.n_best > beam:
        raise UserError(f"--n-best {args.n_best} is larger than --beam {beam}")


def import_server() -> Any:
    """The uvicorn module; a one-line error naming the extra when it is missing."""
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError as err:
        raise UserError(
            f"seq2seq serve needs the serve extra ({err.name} is missing): "
            'pip install -e ".[serve]"'
        ) from None
    return uvicorn


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket (``port`` 0: a free one), so the address is known
    before the server starts."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise UserError(f"--host {host}: cannot resolve ({err.strerror})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as err:
        sock.close()
        raise UserError(
            f"--host {host} --port {port}: cannot listen ({err.strerror})"
        ) from None
    return sock


def run_server(
    service: Service,
    sock: socket.socket,
    access_log: bool = False,
    on_ready: Callable[[str], None] | None = None,
) -> int:
    """Serve until SIGTERM or Ctrl-C, then answer the requests in flight and
    return 0."""
    uvicorn = import_server()
    config = uvicorn.Config(
        create_app(service),
        log_level="warning",
        access_log=access_log,
        lifespan="on",
        timeout_graceful_shutdown=None,  # finish every request in flight
    )
    server = uvicorn.Server(config)
    host, port = sock.getsockname()[:2]
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    if on_ready is not None:
        on_ready(url)
    # Uvicorn catches SIGTERM and SIGINT while it runs, drains, then raises the
    # signal again under the handler found before it started: a no-op one here,
    # so a drained shutdown ends with status 0 instead of dying of the signal.
    previous = {
        sig: signal.signal(sig, lambda *_: None)
        for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def serve_command(args: argparse.Namespace, load: Callable) -> int:
    """``seq2seq serve``: ``load(args)`` gives (model, tokenizer, decode settings,
    device, amp dtype, config) as the CLI loads them for translate; it runs in
    the decoding process (the server process never holds the model), or here
    with ``--in-process``."""
    import_server()
    check_serve_arguments(args)
    limits = Limits(args.max_sentences, args.max_chars, args.max_beam)
    if args.beam is not None:  # before loading anything
        check_beam(args, args.beam)
    sock = listening_socket(args.host, args.port)  # a port in use: said at once
    if args.in_process:
        decoder, described = served_decoder(load, args)
    else:
        from seq2seq.decode_process import ProcessDecoder

        decoder = ProcessDecoder(served_decoder, load, args)
        described = decoder.described
    beam, alpha = described["beam"], described["alpha"]
    defaults = Settings(beam, alpha, args.n_best)
    batcher = DynamicBatcher(decoder, args.max_batch_sentences, args.max_wait_ms / 1000)
    runs = [args.run, *args.ensemble]
    info = {
        "model": [str(Path(run).resolve()) for run in runs],
        "step": [checkpoint_step(run) for run in runs],
        "device": described["device"],
        "amp": args.amp,
        "threads": described["threads"],
        "decoding": "in-process" if args.in_process else "process",
        "max_len_a": described["max_len_a"],
        "max_len_b": described["max_len_b"],
        "pid": os.getpid(),
    }
    service = Service(batcher, defaults, limits, info)

    def ready(url: str) -> None:
        log.info(
            "serving %s on %s (beam %d, alpha %g; batches of up to %d sentences, "
            "%g ms wait): POST /translate, GET /health, GET /metrics",
            " + ".join(runs),
            url,
            beam,
            alpha,
            args.max_batch_sentences,
            args.max_wait_ms,
        )

    try:
        status = run_server(service, sock, args.access_log, ready)
    finally:
        if not args.in_process:
            decoder.close()
    log.info("stopped: %d translate requests received", service.metrics.requests)
    return status


def checkpoint_step(run: str | Path) -> int | None:
    """The training step a run's (or checkpoint's) model was saved at; None for
    an ONNX export or a checkpoint without one."""
    from seq2seq import checkpoint as ckpt

    path = Path(run)
    if path.is_dir() and (path / "config.json").is_file():
        return None  # an export
    state = ckpt.load_checkpoint(ckpt.resolve_checkpoint(path))
    step = state.get("train_state", {}).get("step")
    return int(step) if step is not None else None
