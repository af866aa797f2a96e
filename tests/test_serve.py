"""``seq2seq serve``: the HTTP API in-process (Starlette's test client) and as a
subprocess on a free loopback port: round trip in input order, n-best and scores,
attention, the same text batched as alone, every class of bad request refused
before the model, a failing batch that leaves the server serving, /health,
/metrics, and SIGTERM draining the requests in flight."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import torch

from seq2seq.batching import DynamicBatcher, Settings
from seq2seq.cli import main
from seq2seq.inference import Translator, load_model
from seq2seq.serve import (
    BadRequest,
    Limits,
    Service,
    create_app,
    model_decoder,
    parse_request,
    percentile,
)
from tests.conftest import PAIRS, ROOT, tiny_config, write_config

pytest.importorskip("starlette", reason="the serve extra is not installed")
pytest.importorskip("uvicorn", reason="the serve extra is not installed")
from starlette.testclient import TestClient  # noqa: E402

SENTENCES = ["I am cold.", "", "He eats bread.", "Where is the station?", "It is"]
DEFAULTS = Settings(beam=1, alpha=1.0, n_best=1)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny trained run shared by this module's tests."""
    tmp = tmp_path_factory.mktemp("serve")
    tsv = tmp / "pairs.tsv"
    tsv.write_text("".join(f"{en}\t{fr}\n" for en, fr in PAIRS * 4), encoding="utf-8")
    cfg = write_config(
        tmp / "c.yaml", tiny_config(tmp, tsv, train={"epochs": 8, "valid_every": 0})
    )
    assert main(["train", str(cfg), "--quiet"]) == 0
    return str(tmp / "run")


@pytest.fixture(scope="module")
def loaded(run):
    """(model, tokenizer, decode settings) of the run."""
    model, tokenizer, cfg = load_model(run, torch.device("cpu"))
    return model, tokenizer, cfg.decode


class Spy:
    """A decoder that counts its calls and fails on a sentence ``boom``."""

    def __init__(self, decoder) -> None:
        self.decoder = decoder
        self.calls: list[list[str]] = []

    def __call__(self, sentences, settings, attention):
        self.calls.append(list(sentences))
        if "boom" in sentences:
            raise RuntimeError("the model broke\non two lines")
        return self.decoder(sentences, settings, attention)


def make_service(loaded, max_wait_s: float = 0.0, **limits) -> tuple[Service, Spy]:
    model, tokenizer, decode = loaded
    spy = Spy(model_decoder(model, tokenizer, decode, torch.device("cpu"), None, 64))
    batcher = DynamicBatcher(spy, max_batch_sentences=64, max_wait_s=max_wait_s)
    info = {"model": ["tiny"], "step": [1]}
    return Service(batcher, DEFAULTS, Limits(**limits), info), spy


@pytest.fixture
def client(loaded):
    service, spy = make_service(loaded)
    with TestClient(create_app(service)) as test_client:
        test_client.spy = spy
        yield test_client


def offline(loaded, lines, beam=1, alpha=1.0, n_best=1, attention=False):
    model, tokenizer, decode = loaded
    translator = Translator(
        model, tokenizer, decode, torch.device("cpu"), None, beam, alpha, n_best
    )
    return translator.translate_lines(lines, return_attention=attention)


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("beam", [1, 3])
def test_translations_come_back_in_input_order_as_translate_gives_them(
    client, loaded, beam
):
    response = client.post("/translate", json={"text": SENTENCES, "beam": beam})
    assert response.status_code == 200
    got = response.json()["translations"]
    expected = offline(loaded, SENTENCES, beam=beam)
    assert [t["text"] for t in got] == [t.text for t in expected]
    assert [t["score"] for t in got] == pytest.approx([t.score for t in expected])
    assert got[1] == {"text": "", "score": 0.0}  # a blank sentence stays blank
    assert set(got[0]) == {"text", "score"}
    assert len({t["text"] for t in got}) >= 3


def test_n_best_lists_the_alternatives_best_first(client):
    body = {"text": ["I am cold.", "He eats bread."], "beam": 4, "n_best": 3}
    got = client.post("/translate", json=body).json()["translations"]
    for translation in got:
        nbest = translation["nbest"]
        assert len(nbest) == 3
        assert nbest[0] == {"text": translation["text"], "score": translation["score"]}
        scores = [alt["score"] for alt in nbest]
        assert scores == sorted(scores, reverse=True) and scores[0] < 0


def test_attention_has_one_row_per_target_piece_and_one_column_per_source(client):
    body = {"text": ["I am cold.", ""], "attention": True, "beam": 2}
    got = client.post("/translate", json=body).json()["translations"]
    attention = got[0]["attention"]
    weights = torch.tensor(attention["weights"])  # (T, S)
    assert weights.shape == (
        len(attention["target_tokens"]),
        len(attention["source_tokens"]),
    )
    assert attention["source_tokens"][-1] == "</s>"
    torch.testing.assert_close(
        weights.sum(dim=1), torch.ones(len(weights)), atol=2e-3, rtol=0
    )
    assert got[1]["attention"] == {
        "source_tokens": [],
        "target_tokens": [],
        "weights": [],
    }


def test_a_sentence_decodes_the_same_batched_as_alone(loaded):
    """Jobs queued together are gathered into one search per settings group, and
    each sentence's text and score equal its translation alone."""
    model, tokenizer, decode = loaded
    decoder = Spy(
        model_decoder(model, tokenizer, decode, torch.device("cpu"), None, 64)
    )
    batcher = DynamicBatcher(decoder, max_batch_sentences=64, max_wait_s=0.5)
    jobs = [
        (["I am cold.", "Where is the station?"], DEFAULTS),
        (["He eats bread."], Settings(2, 1.0, 1)),
        (["It is cold.", "We are happy.", "x"], DEFAULTS),
        (["They are here."], Settings(2, 1.0, 1)),
    ]
    futures = [batcher.submit(sentences, settings) for sentences, settings in jobs]
    batcher.start()
    results = [future.result(timeout=60) for future in futures]
    batcher.close()
    # One gathered batch, two settings groups: two searches of 5 and 2 sentences.
    assert sorted(len(call) for call in decoder.calls) == [2, 5]
    assert batcher.batches == 2 and batcher.largest_batch == 5
    for (sentences, settings), got in zip(jobs, results):
        for sentence, translation in zip(sentences, got):
            (alone,) = offline(loaded, [sentence], beam=settings.beam)
            assert translation["text"] == alone.text
            assert translation["score"] == pytest.approx(alone.score, abs=1e-5)


def test_concurrent_http_requests_share_batches_and_keep_their_answers(loaded):
    service, spy = make_service(loaded, max_wait_s=0.3)
    lines = [[pair[0]] * (1 + i % 3) for i, pair in enumerate(PAIRS[:8])]
    answers: dict[int, list[str]] = {}
    with TestClient(create_app(service)) as client:

        def ask(i: int) -> None:
            response = client.post("/translate", json={"text": lines[i]})
            answers[i] = [t["text"] for t in response.json()["translations"]]

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(lines))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert len(spy.calls) < len(lines)  # some requests were decoded together
    for i, texts in answers.items():
        assert texts == [t.text for t in offline(loaded, lines[i])]
    assert len(answers) == len(lines)


# ---------------------------------------------------------------- bad requests


BAD_REQUESTS = [
    (b'{"text": ["I am cold."]', 400, "not valid JSON"),
    (b'["I am cold."]', 400, "must be a JSON object"),
    (b"{}", 400, "missing field 'text'"),
    (b'{"text": "I am cold."}', 400, "put one sentence in a list"),
    (b'{"text": {"a": 1}}', 400, "must be a list of strings"),
    (b'{"text": []}', 400, "empty list"),
    (b'{"text": ["ok", 3]}', 400, "text[1] is a number"),
    (b'{"text": [null]}', 400, "text[0] is null"),
    (b'{"text": ["\xff\xfe"]}', 400, "not valid UTF-8 (byte 0xff at offset 11)"),
    (b'{"text": ["\\ud800"]}', 400, "unpaired surrogate"),
    (b'{"text": ["a"], "txt": 1}', 400, "unknown field 'txt' (did you mean 'text'?)"),
    (b'{"text": ["a"], "beam": 0}', 400, "beam 0: must be a whole number from 1"),
    (b'{"text": ["a"], "beam": 17}', 400, "from 1 to 16 (--max-beam)"),
    (b'{"text": ["a"], "beam": 2.5}', 400, "beam 2.5"),
    (b'{"text": ["a"], "beam": true}', 400, "beam true"),
    (b'{"text": ["a"], "beam": 2, "n_best": 3}', 400, "n_best 3"),
    (b'{"text": ["a"], "alpha": -1}', 400, "alpha -1: must be a number >= 0"),
    (b'{"text": ["a"], "alpha": NaN}', 400, "alpha NaN"),
    (b'{"text": ["a"], "alpha": "1"}', 400, 'alpha "1"'),
    (b'{"text": ["a"], "attention": 1}', 400, "attention 1: must be true or false"),
    (json.dumps({"text": ["a"] * 65}).encode(), 413, "65 sentences; the limit is 64"),
    (json.dumps({"text": ["a" * 20_001]}).encode(), 413, "20,001 characters"),
    (b'{"text": ["' + b"a" * 130_000 + b'"]}', 413, "the limit is 124,096"),
]


@pytest.mark.parametrize(("body", "status", "message"), BAD_REQUESTS)
def test_bad_requests_get_a_one_line_4xx_and_never_reach_the_model(
    client, body, status, message
):
    response = client.post(
        "/translate", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == status
    error = response.json()["error"]
    assert message in error and "\n" not in error
    assert client.spy.calls == []


def test_wrong_paths_and_methods_get_json_errors(client):
    response = client.get("/translate")
    assert response.status_code == 405
    assert response.json() == {"error": "GET /translate: Method Not Allowed; use POST"}
    response = client.post("/translations", json={"text": ["a"]})
    assert response.status_code == 404
    assert "the paths are POST /translate" in response.json()["error"]


def test_parse_request_applies_the_defaults_and_limits():
    parsed = parse_request(b'{"text": ["a", "b"]}', Settings(5, 1.5, 2), Limits())
    assert parsed.sentences == ["a", "b"] and parsed.attention is False
    assert parsed.settings == Settings(5, 1.5, 2)
    # A beam below the server's default n-best lowers n-best instead of failing.
    parsed = parse_request(b'{"text": ["a"], "beam": 1}', Settings(5, 1.5, 2), Limits())
    assert parsed.settings == Settings(1, 1.5, 1)
    with pytest.raises(BadRequest, match="the limit is 2 a request"):
        parse_request(b'{"text": ["a", "b", "c"]}', DEFAULTS, Limits(max_sentences=2))


# ---------------------------------------------------------------- failures


def test_a_failing_batch_gets_a_500_and_the_server_keeps_serving(client):
    response = client.post("/translate", json={"text": ["I am cold.", "boom"]})
    assert response.status_code == 500
    assert response.json() == {
        "error": "decoding failed: RuntimeError: the model broke on two lines"
    }
    response = client.post("/translate", json={"text": ["I am cold."]})
    assert response.status_code == 200
    assert response.json()["translations"][0]["text"]
    assert client.get("/metrics").json()["errors"] == {"client": 0, "server": 1}


def test_serve_without_the_extra_names_the_install_command(run, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn fails
    assert main(["serve", run]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert 'pip install -e ".[serve]"' in err


def test_serve_options_out_of_range_are_one_line_errors(run, capsys):
    for args, message in [
        (["--max-batch-sentences", "0"], "--max-batch-sentences 0: must be >= 1"),
        (["--alpha", "-1"], "--alpha -1: the length penalty must be a number >= 0"),
        (["--beam", "3", "--n-best", "4"], "--n-best 4 is larger than --beam 3"),
        (["--beam", "20"], "--beam 20 is larger than --max-beam 16"),
    ]:
        assert main(["serve", run, *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {message}") and err.count("\n") == 1


# ---------------------------------------------------------------- health, metrics


def test_health_reports_the_model_and_the_decoding_defaults(client):
    health = client.get("/health").json()
    assert health["status"] == "ok"
    assert health["model"] == ["tiny"] and health["step"] == [1]
    assert health["defaults"] == {"beam": 1, "alpha": 1.0, "n_best": 1}
    assert health["limits"]["max_sentences"] == 64
    assert health["batching"] == {"max_batch_sentences": 64, "max_wait_ms": 0.0}


def test_metrics_count_requests_sentences_errors_and_latency(client):
    for _ in range(3):
        assert client.post("/translate", json={"text": ["I am cold.", "a"]}).is_success
    assert client.post("/translate", json={"text": []}).status_code == 400
    metrics = client.get("/metrics").json()
    assert metrics["requests"] == 4 and metrics["sentences"] == 6
    assert metrics["errors"] == {"client": 1, "server": 0}
    assert metrics["batches"] == 3 and metrics["sentences_per_batch"] == 2.0
    latency = metrics["latency_ms"]
    assert latency["window"] == 3
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"]
    assert metrics["rss_bytes"] > 10_000_000
    assert metrics["decoding_rss_bytes"] is None  # decoding on a thread here


def test_percentile_is_the_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50 and percentile(values, 99) == 99
    assert percentile([3.0], 99) == 3.0 and percentile([], 50) == 0.0


# ---------------------------------------------------------------- a real server


def start_server(run: str, *args: str) -> tuple[subprocess.Popen, str]:
    """``seq2seq serve RUN --port 0 ARGS`` in a subprocess; its URL once ready."""
    process = subprocess.Popen(
        [sys.executable, "-m", "seq2seq", "serve", run, "--port", "0", *args],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stderr is not None
    for line in process.stderr:
        found = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
        if found:
            return process, found.group(1)
    process.wait(timeout=30)
    raise AssertionError(f"the server did not start (status {process.returncode})")


def test_sigterm_finishes_the_requests_in_flight_then_exits_0(run):
    import httpx

    # A long gathering wait keeps the first request in flight when SIGTERM comes.
    process, url = start_server(run, "--beam", "1", "--max-wait-ms", "2000")
    try:
        health = httpx.get(f"{url}/health", timeout=30).json()
        assert health["pid"] == process.pid and health["step"][0] > 0
        decoding = health["decoding_pid"]  # the model runs in a process of its own
        assert health["decoding"] == "process" and decoding != process.pid
        assert httpx.get(f"{url}/metrics").json()["decoding_rss_bytes"] > 10_000_000
        answers = []
        request = threading.Thread(
            target=lambda: answers.append(
                httpx.post(
                    f"{url}/translate", json={"text": ["I am cold."]}, timeout=60
                )
            )
        )
        request.start()
        time.sleep(0.7)
        process.send_signal(signal.SIGTERM)
        time.sleep(0.6)
        port = int(url.rsplit(":", 1)[1])
        with pytest.raises(OSError):  # no longer accepting
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        request.join(timeout=60)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    (response,) = answers
    assert response.status_code == 200
    assert response.json()["translations"][0]["text"]
    assert "stopped: 1 translate requests received" in process.stderr.read()
    with pytest.raises(ProcessLookupError):  # the decoding process ended too
        os.kill(decoding, 0)


# ---------------------------------------------------------------- the decoding process


def _failing_decoder():
    """A decoder for the decoding process that fails on ``boom`` (module level:
    the child process imports it by name)."""

    def decoder(sentences, settings, attention):
        if "boom" in sentences:
            raise ValueError("no\nboom")
        return [{"text": s.upper(), "score": 0.0} for s in sentences]

    return decoder, {"kind": "upper"}


def test_the_decoding_process_answers_as_the_in_process_decoder(run, loaded):
    from seq2seq.cli import build_parser, load_for_serving
    from seq2seq.decode_process import ProcessDecoder
    from seq2seq.serve import served_decoder

    args = build_parser().parse_args(["serve", run, "--beam", "1"])
    decoder = ProcessDecoder(served_decoder, load_for_serving, args)
    try:
        assert decoder.pid != os.getpid()
        model, tokenizer, decode = loaded
        here = model_decoder(model, tokenizer, decode, torch.device("cpu"), None, 64)
        assert decoder.described["beam"] == 1 and decoder.described["device"] == "cpu"
        for settings, attention in ((DEFAULTS, True), (Settings(3, 1.0, 2), False)):
            got = decoder(SENTENCES, settings, attention)
            want = here(SENTENCES, settings, attention)
            assert [r["text"] for r in got] == [r["text"] for r in want]
            assert [r["score"] for r in got] == pytest.approx(
                [r["score"] for r in want]
            )
            assert ("attention" in got[0]) == attention
    finally:
        decoder.close()
    assert not decoder._process.is_alive()


def test_a_decoding_process_that_fails_or_dies_fails_one_batch_only():
    from seq2seq.decode_process import ProcessDecoder

    decoder = ProcessDecoder(_failing_decoder)
    assert decoder.described == {"kind": "upper"}
    try:
        with pytest.raises(RuntimeError, match="^ValueError: no boom$"):
            decoder(["a", "boom"], DEFAULTS, False)
        assert decoder(["a"], DEFAULTS, False) == [{"text": "A", "score": 0.0}]
        os.kill(decoder.pid, signal.SIGKILL)  # killed (say, out of memory)
        with pytest.raises(RuntimeError, match="ended with signal 9 while decoding"):
            decoder(["b"], DEFAULTS, False)
        assert decoder.restarts == 1
        assert decoder(["c"], DEFAULTS, False) == [{"text": "C", "score": 0.0}]
    finally:
        decoder.close()


def test_load_test_script_runs_against_a_real_server(run, tmp_path):
    """scripts/load_test.py end to end on a few requests, bad ones mixed in."""
    source = tmp_path / "sentences.txt"
    source.write_text("".join(f"{en}\n" for en, _ in PAIRS), encoding="utf-8")
    process, url = start_server(run, "--beam", "1")
    try:
        report = tmp_path / "report.json"
        done = subprocess.run(
            [sys.executable, "scripts/load_test.py", url, "--input", str(source),
             "--clients", "4", "--requests", "30", "--malformed", "0.3",
             "--run", run, "--json", str(report)],
            cwd=ROOT, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    result = json.loads(report.read_text(encoding="utf-8"))
    assert result["requests"] == 30 and result["errors"] == 0
    assert result["malformed_requests"] == result["malformed_answered_4xx"] > 0
    offline = result["offline_translate"]
    assert offline["identical_texts"] == offline["of"] > 0


def test_a_port_in_use_is_a_one_line_error_before_the_model_loads(
    run, capsys, monkeypatch
):
    import seq2seq.cli as cli

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    monkeypatch.setattr(cli, "load_for_serving", None)  # loading would fail
    try:
        assert main(["serve", run, "--port", str(port)]) == 2
    finally:
        taken.close()
    err = capsys.readouterr().err
    assert err.startswith(f"error: --host 127.0.0.1 --port {port}: cannot listen")
    assert err.count("\n") == 1
