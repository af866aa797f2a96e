"""Load-test a ``seq2seq serve`` server on this host, and compare with ``translate``.

    python scripts/load_test.py http://127.0.0.1:8000 --input SRC_FILE \\
        --clients 32 --requests 5000 [--malformed 0.1] [--run RUN]

``--clients`` concurrent clients (asyncio + httpx) send a fixed plan of
``--requests`` requests, each of 1 to 8 sentences drawn (seeded) from ``--input``,
and stop early after ``--max-seconds``. With ``--malformed P`` a fraction P of the
requests are bad ones (invalid JSON, invalid UTF-8, wrong types, an empty list, an
unknown field, a beam out of range, too many sentences), each of which must get
its 4xx with a one-line ``{"error": ...}``; every good one must get one
translation per sentence. Reported: sentences/s, latency p50/p95/p99 of the good
requests, errors, the server's RSS at start, end and peak (the server process,
its pid from ``/health`` or ``--server-pid``, plus its decoding process, if
``/health`` names one), and the server's ``/metrics``.

With ``--run RUN``, the same sentences are then decoded offline as ``seq2seq
translate RUN --batch-size 64 --beam 1`` decodes them (the Translator, streamed in
chunks), timed without model loading, and the texts compared with the server's.

Only loopback URLs are accepted: this is a load generator, not a tool to aim at
other hosts.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@dataclass
class Planned:
    """One request of the plan: its body, and for a bad one its kind and the
    status it must get."""

    body: bytes
    sentences: list[str] = field(default_factory=list)
    bad_kind: str | None = None
    expected_status: int = 200


@dataclass
class Outcome:
    status: int
    seconds: float
    ok: bool
    texts: list[str] = field(default_factory=list)
    problem: str = ""


def bad_requests(max_sentences: int) -> list[tuple[str, bytes, int]]:
    """(kind, body, status it must get) of each malformed request."""
    return [
        ("invalid JSON", b'{"text": ["Ein Hund', 400),
        ("invalid UTF-8", b'{"text": ["Ein \xff Hund."]}', 400),
        ("not an object", b'["Ein Hund."]', 400),
        ("text not a list", b'{"text": "Ein Hund."}', 400),
        ("sentence not a string", b'{"text": ["Ein Hund.", 7]}', 400),
        ("empty list", b'{"text": []}', 400),
        ("unknown field", b'{"text": ["Ein Hund."], "beams": 2}', 400),
        ("beam out of range", b'{"text": ["Ein Hund."], "beam": 0}', 400),
        ("negative alpha", b'{"text": ["Ein Hund."], "alpha": -1}', 400),
        (
            "too many sentences",
            json.dumps({"text": ["Ein Hund."] * (max_sentences + 1)}).encode(),
            413,
        ),
    ]


def make_plan(
    lines: list[str],
    count: int,
    low: int,
    high: int,
    malformed: float,
    max_sentences: int,
    beam: int | None,
    seed: int,
) -> list[Planned]:
    """``count`` requests: good ones of ``low``-``high`` sentences drawn from
    ``lines``, a ``malformed`` fraction of bad ones (kinds in turn)."""
    rng = random.Random(seed)
    bad = bad_requests(max_sentences)
    plan = []
    for _ in range(count):
        if rng.random() < malformed:
            kind, body, status = bad[
                sum(p.bad_kind is not None for p in plan) % len(bad)
            ]
            plan.append(Planned(body, bad_kind=kind, expected_status=status))
            continue
        sentences = [rng.choice(lines) for _ in range(rng.randint(low, high))]
        payload: dict = {"text": sentences}
        if beam is not None:
            payload["beam"] = beam
        plan.append(Planned(json.dumps(payload).encode(), sentences))
    return plan


def check_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        sys.exit(f"error: {url}: only loopback servers (127.0.0.1, ::1, localhost)")


def rss_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


async def send(client, url: str, planned: Planned) -> Outcome:
    start = time.perf_counter()
    try:
        response = await client.post(
            f"{url}/translate",
            content=planned.body,
            headers={"content-type": "application/json"},
        )
    except Exception as err:  # noqa: BLE001  (every failure is an error to count)
        return Outcome(0, time.perf_counter() - start, False, problem=repr(err))
    seconds = time.perf_counter() - start
    try:
        data = response.json()
    except ValueError:
        return Outcome(response.status_code, seconds, False, problem="not JSON")
    if planned.bad_kind is not None:
        error = data.get("error") if isinstance(data, dict) else None
        ok = (
            response.status_code == planned.expected_status
            and isinstance(error, str)
            and "\n" not in error
        )
        problem = "" if ok else f"{planned.bad_kind}: {response.status_code} {data}"
        return Outcome(response.status_code, seconds, ok, problem=problem)
    if response.status_code != 200:
        return Outcome(response.status_code, seconds, False, problem=str(data))
    texts = [t["text"] for t in data["translations"]]
    ok = len(texts) == len(planned.sentences)
    return Outcome(200, seconds, ok, texts, "" if ok else "wrong count")


def tree_rss(pids: list[int]) -> int | None:
    """RSS of the server and its decoding process together (None: none left)."""
    values = [v for v in map(rss_bytes, pids) if v]
    return sum(values) if values else None


async def load(args: argparse.Namespace, plan: list[Planned], pids: list[int]) -> dict:
    import httpx

    outcomes: list[Outcome | None] = [None] * len(plan)
    next_index = 0
    rss: list[int] = []
    deadline = time.monotonic() + args.max_seconds

    async def client_loop(client) -> None:
        nonlocal next_index
        while next_index < len(plan) and time.monotonic() < deadline:
            index = next_index
            next_index += 1
            outcomes[index] = await send(client, args.url, plan[index])

    async def sample_rss() -> None:
        while True:
            value = tree_rss(pids)
            if value:
                rss.append(value)
            await asyncio.sleep(1.0)

    limits = httpx.Limits(max_connections=args.clients)
    timeout = httpx.Timeout(args.request_timeout)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
        sampler = asyncio.create_task(sample_rss())
        await asyncio.sleep(0)  # the first sample: RSS at start
        start = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(args.clients)))
        elapsed = time.perf_counter() - start
        sampler.cancel()
        metrics = (await client.get(f"{args.url}/metrics")).json()
    end = tree_rss(pids)
    if end:
        rss.append(end)
    return {"outcomes": outcomes, "elapsed": elapsed, "rss": rss, "metrics": metrics}


def percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return 0.0
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def offline(
    run: str, sentences: list[str], batch_size: int, beam: int, threads: int | None
) -> tuple:
    """(texts, seconds) of ``seq2seq translate RUN --batch-size B --beam N`` on
    the sentences: the same Translator and chunks, timed after loading."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    from seq2seq.config import replace
    from seq2seq.inference import Translator, load_model

    model, tokenizer, cfg = load_model(run, torch.device("cpu"))
    decode = replace(cfg.decode, batch_size=batch_size)
    translator = Translator(model, tokenizer, decode, torch.device("cpu"), None, beam)
    start = time.perf_counter()
    texts = [
        t.text for t in translator.stream_translations(sentences, chunk=batch_size * 8)
    ]
    return texts, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the server, e.g. http://127.0.0.1:8000")
    parser.add_argument("--input", required=True, help="sentences, one a line")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--min-sentences", type=int, default=1)
    parser.add_argument("--max-sentences", type=int, default=8)
    parser.add_argument(
        "--max-seconds", type=float, default=900, help="stop sending after this"
    )
    parser.add_argument(
        "--malformed", type=float, default=0.0, help="fraction of bad requests"
    )
    parser.add_argument(
        "--beam", type=int, default=None, help="send this beam (default: the server's)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--request-timeout", type=float, default=60.0)
    parser.add_argument("--server-pid", type=int, help="default: /health's pid")
    parser.add_argument("--run", help="decode the same sentences offline with it")
    parser.add_argument("--offline-batch-size", type=int, default=64)
    parser.add_argument(
        "--offline-threads",
        type=int,
        help="torch threads of the offline decoding (default: torch's)",
    )
    parser.add_argument("--json", metavar="FILE", help="write the report here too")
    args = parser.parse_args(argv)
    check_loopback(args.url)
    args.url = args.url.rstrip("/")
    if not 1 <= args.min_sentences <= args.max_sentences:
        sys.exit("error: need 1 <= --min-sentences <= --max-sentences")
    if args.clients < 1 or args.requests < 1 or not 0 <= args.malformed <= 1:
        sys.exit("error: need --clients >= 1, --requests >= 1, 0 <= --malformed <= 1")

    import httpx

    from seq2seq.data import iter_lines

    lines = [line.strip() for line in iter_lines(Path(args.input)) if line.strip()]
    if not lines:
        sys.exit(f"error: {args.input}: no sentences")
    try:
        health = httpx.get(f"{args.url}/health", timeout=30).json()
    except httpx.HTTPError as err:
        sys.exit(f"error: {args.url}/health: {err}")
    pids = [args.server_pid or health.get("pid"), health.get("decoding_pid")]
    pids = [pid for pid in pids if pid]
    beam = args.beam if args.beam is not None else health["defaults"]["beam"]
    plan = make_plan(
        lines,
        args.requests,
        args.min_sentences,
        args.max_sentences,
        args.malformed,
        health["limits"]["max_sentences"],
        args.beam,
        args.seed,
    )
    result = asyncio.run(load(args, plan, pids))
    outcomes = result["outcomes"]
    sent = [(p, o) for p, o in zip(plan, outcomes) if o is not None]
    good = [(p, o) for p, o in sent if p.bad_kind is None]
    bad = [(p, o) for p, o in sent if p.bad_kind is not None]
    errors = [o for _, o in sent if not o.ok]
    latencies = sorted(o.seconds for _, o in good)
    sentences = sum(len(p.sentences) for p, o in good if o.ok)
    elapsed = result["elapsed"]
    rss = result["rss"]
    report = {
        "url": args.url,
        "clients": args.clients,
        "requests": len(sent),
        "good_requests": len(good),
        "malformed_requests": len(bad),
        "malformed_answered_4xx": sum(o.ok for _, o in bad),
        "errors": len(errors),
        "first_errors": [o.problem for o in errors[:5]],
        "sentences": sentences,
        "seconds": round(elapsed, 2),
        "sentences_per_s": round(sentences / elapsed, 1),
        "latency_ms": {
            f"p{q}": round(1000 * percentile(latencies, q), 1) for q in (50, 95, 99)
        },
        "server_rss_mb": {
            "start": round(rss[0] / 2**20, 1) if rss else None,
            "end": round(rss[-1] / 2**20, 1) if rss else None,
            "peak": round(max(rss) / 2**20, 1) if rss else None,
        },
        "server_metrics": result["metrics"],
    }
    if args.run:
        server_sentences = [s for p, o in good if o.ok for s in p.sentences]
        server_texts = [t for _, o in good if o.ok for t in o.texts]
        texts, seconds = offline(
            args.run,
            server_sentences,
            args.offline_batch_size,
            beam,
            args.offline_threads,
        )
        threads = args.offline_threads or "default"
        report["offline_translate"] = {
            "command": f"seq2seq translate {args.run} --batch-size "
            f"{args.offline_batch_size} --beam {beam} (decoding time only, torch "
            f"threads: {threads})",
            "seconds": round(seconds, 2),
            "sentences_per_s": round(len(texts) / seconds, 1),
            "server_vs_offline": round(sentences / elapsed / (len(texts) / seconds), 3),
            "identical_texts": sum(a == b for a, b in zip(texts, server_texts)),
            "of": len(texts),
        }
    print(json.dumps(report, indent=1, ensure_ascii=False))
    if args.json:
        Path(args.json).write_text(
            json.dumps(report, indent=1) + "\n", encoding="utf-8"
        )
    return 1 if errors or len(sent) < len(plan) else 0


if __name__ == "__main__":
    sys.exit(main())
