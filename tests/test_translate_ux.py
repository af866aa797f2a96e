"""What users see from ``seq2seq translate``: attention plots, JSON lines, n-best
lists with scores, --input/--output files (streamed) and the interactive prompt."""

from __future__ import annotations

import gzip
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from seq2seq import data as data_module
from seq2seq.cli import main
from seq2seq.data import iter_lines
from seq2seq.inference import TranslationWriter, Translator, load_model
from seq2seq.interactive import Repl, run_repl
from seq2seq.plot import plot_attention
from tests.conftest import PAIRS, tiny_config, write_config

SENTENCES = ["I am cold.", "", "He eats bread.", "   ", "Where is the station?"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny trained run shared by this module's tests."""
    tmp = tmp_path_factory.mktemp("ux")
    tsv = tmp / "pairs.tsv"
    tsv.write_text("".join(f"{en}\t{fr}\n" for en, fr in PAIRS * 4), encoding="utf-8")
    cfg = write_config(
        tmp / "c.yaml", tiny_config(tmp, tsv, train={"epochs": 15, "valid_every": 0})
    )
    assert main(["train", str(cfg), "--quiet"]) == 0
    return str(tmp / "run")


def translate(capsys, run: str, *args: str) -> list[str]:
    """Output lines of ``seq2seq translate RUN ARGS...`` (status 0)."""
    capsys.readouterr()
    assert main(["translate", run, *args]) == 0
    return capsys.readouterr().out.split("\n")[:-1]


# ---------------------------------------------------------------- attention plots


def test_plot_attention_writes_one_png_per_translated_line(run, tmp_path, capsys):
    plots = tmp_path / "plots"
    out = translate(
        capsys, run, *SENTENCES, "--beam", "2", "--plot-attention", str(plots)
    )
    assert len(out) == len(SENTENCES)
    # Named by input line number; blank lines have nothing to plot.
    assert sorted(p.name for p in plots.iterdir()) == [
        "0001.png",
        "0003.png",
        "0005.png",
    ]
    for path in plots.iterdir():
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.size[0] > 200 and image.size[1] > 200


def test_plot_attention_draws_non_latin_labels_without_warnings(tmp_path):
    weights = torch.softmax(torch.randn(4, 5), dim=-1)  # (T, S)
    src = ["▁Über", "▁die", "▁Straße", "字", "</s>"]
    tgt = ["▁über", "▁größer", "ß", "</s>"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = plot_attention(weights, src, tgt, tmp_path / "a.png", "Größe 字")
    with Image.open(path) as image:
        assert image.format == "PNG"
    with pytest.raises(ValueError, match="does not match"):
        plot_attention(np.ones((3, 5)), src, tgt, tmp_path / "b.png")


# ---------------------------------------------------------------- JSON lines


@pytest.mark.parametrize("beam", ["1", "3"])
def test_jsonl_has_one_object_per_input_line_with_attention(run, capsys, beam):
    out = translate(capsys, run, *SENTENCES, "--format", "jsonl", "--beam", beam)
    assert len(out) == len(SENTENCES)
    records = [json.loads(line) for line in out]
    text = translate(capsys, run, *SENTENCES, "--beam", beam)
    for record, source, translation in zip(records, SENTENCES, text):
        assert record["source"] == source
        assert record["translation"] == translation
        if not source.strip():
            assert record == {
                "source": source,
                "translation": "",
                "score": 0.0,
                "tokens": [],
                "source_tokens": [],
                "attention": [],
            }
            continue
        assert record["score"] < 0
        assert record["tokens"][-1] == "</s>"  # finished: EOS has its row
        assert record["source_tokens"][-1] == "</s>"
        attention = np.array(record["attention"])  # (T, S)
        assert attention.shape == (len(record["tokens"]), len(record["source_tokens"]))
        np.testing.assert_allclose(attention.sum(axis=1), 1.0, atol=2e-3)
        assert all(round(w, 4) == w for row in record["attention"] for w in row)


def test_jsonl_with_nbest_lists_the_alternatives(run, capsys):
    out = translate(
        capsys,
        run,
        "I am cold.",
        "",
        "--format",
        "jsonl",
        "--beam",
        "4",
        "--n-best",
        "3",
    )
    first, blank = (json.loads(line) for line in out)
    assert len(first["nbest"]) == 3
    assert first["nbest"][0] == {
        "translation": first["translation"],
        "score": first["score"],
    }
    scores = [alt["score"] for alt in first["nbest"]]
    assert scores == sorted(scores, reverse=True)
    assert blank["nbest"] == [{"translation": "", "score": 0.0}] * 3


# ---------------------------------------------------------------- n-best and scores


def test_nbest_with_scores_prints_k_lines_per_input_best_first(run, capsys):
    args = ("--beam", "4", "--n-best", "3")
    out = translate(capsys, run, *SENTENCES, *args, "--show-scores")
    assert len(out) == 3 * len(SENTENCES)
    best = translate(capsys, run, *SENTENCES, "--beam", "4")
    plain = translate(capsys, run, *SENTENCES, *args)
    for i, source in enumerate(SENTENCES):
        group = [line.split("\t") for line in out[3 * i : 3 * i + 3]]
        assert all(len(fields) == 2 for fields in group)
        texts, scores = [t for t, _ in group], [float(s) for _, s in group]
        assert texts == plain[3 * i : 3 * i + 3]
        assert texts[0] == best[i]
        assert scores == sorted(scores, reverse=True)
        if source.strip():
            assert len(set(texts)) >= 2 and scores[0] < 0
        else:
            assert texts == [""] * 3 and scores == [0.0] * 3


def test_show_scores_and_nbest_1_keep_one_line_per_input(run, capsys):
    plain = translate(capsys, run, *SENTENCES, "--beam", "2")
    assert translate(capsys, run, *SENTENCES, "--beam", "2", "--n-best", "1") == plain
    scored = translate(capsys, run, *SENTENCES, "--beam", "2", "--show-scores")
    assert [line.split("\t")[0] for line in scored] == plain


def test_nbest_larger_than_beam_is_a_one_line_error(run, capsys):
    assert main(["translate", run, "x", "--beam", "2", "--n-best", "5"]) == 2
    assert capsys.readouterr().err == "error: --n-best 5 is larger than --beam 2\n"


# ---------------------------------------------------------------- --input / --output


@pytest.mark.parametrize(
    ("src_name", "out_name"), [("in.txt", "out.txt.gz"), ("in.gz", "out.txt")]
)
def test_input_and_output_files(run, tmp_path, capsys, src_name, out_name):
    src, out = tmp_path / src_name, tmp_path / out_name
    data = "".join(line + "\r\n" for line in SENTENCES).encode("utf-8")
    src.write_bytes(gzip.compress(data) if src_name.endswith(".gz") else data)
    args = (str(src), "--output", str(out), "--beam", "1")
    assert translate(capsys, run, "--input", *args) == []  # nothing on stdout
    raw = out.read_bytes()
    text = (gzip.decompress(raw) if out_name.endswith(".gz") else raw).decode("utf-8")
    assert text.split("\n")[:-1] == translate(capsys, run, *SENTENCES, "--beam", "1")


def test_input_errors_are_one_line(run, tmp_path, capsys):
    assert main(["translate", run, "--input", str(tmp_path / "none.txt")]) == 2
    assert (
        capsys.readouterr().err == f"error: {tmp_path / 'none.txt'}: file not found\n"
    )
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"I am cold.\n\xff\xfe\n")
    assert main(["translate", run, "--input", str(bad)]) == 2
    assert f"error: {bad}:2: not valid UTF-8" in capsys.readouterr().err
    assert main(["translate", run, "x", "--input", str(bad)]) == 2
    assert "not both" in capsys.readouterr().err


def test_iter_lines_streams_in_chunks(tmp_path, monkeypatch):
    lines = [f"line {i} ü" for i in range(2000)]
    path = tmp_path / "big.txt.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode("utf-8")))
    monkeypatch.setattr(data_module, "READ_BLOCK", 256)
    stream = iter_lines(path)
    assert next(stream) == "line 0 ü"  # a generator: nothing read ahead of need
    assert [lines[0], *stream] == lines


def test_translation_is_streamed_chunk_by_chunk(run):
    model, tokenizer, cfg = load_model(run, torch.device("cpu"))
    translator = Translator(model, tokenizer, cfg.decode, torch.device("cpu"))
    pulled = 0

    def source():
        nonlocal pulled
        for i in range(100):
            pulled += 1
            yield PAIRS[i % len(PAIRS)][0]

    stream = translator.stream_translations(source(), chunk=8)
    next(stream)
    assert pulled == 8  # one chunk read, not the whole input
    assert len(list(stream)) == 99


# ---------------------------------------------------------------- interactive prompt


@pytest.fixture
def repl_parts(run):
    model, tokenizer, cfg = load_model(run, torch.device("cpu"))
    translator = Translator(model, tokenizer, cfg.decode, torch.device("cpu"))
    output = io.StringIO()
    return translator, TranslationWriter(output, tokenizer, flush=True), output


def test_repl_translates_and_obeys_commands_until_eof(repl_parts):
    translator, writer, output = repl_parts
    greedy = translator.translate_lines(["I am cold."])[0].text
    commands = [
        "I am cold.",
        "",
        ":beam 3",
        ":nbest 2",
        ":scores on",
        "He eats bread.",
        ":bogus",
        ":beam x",
        ":nbest 9",
        ":beam 1",
        ":alpha 0.5",
        ":scores maybe",
        ":help",
    ]
    stdin = io.StringIO("\n".join(commands) + "\n")  # then EOF, as Ctrl-D
    assert run_repl(translator, writer, stdin, output, history=None) == 0
    lines = output.getvalue().split("\n")
    assert lines[0].startswith("beam 1, alpha 1, nbest 1, scores off, attention off;")
    assert lines[1] == f"> {greedy}"
    assert "> > beam 3" in lines
    assert "> nbest 2" in lines and "> scores on" in lines
    pairs = [line.removeprefix("> ").split("\t") for line in lines[5:7]]
    assert [len(p) for p in pairs] == [2, 2]
    assert float(pairs[0][1]) >= float(pairs[1][1])
    assert "> unknown command :bogus; :help lists the commands" in lines
    assert "> :beam x: give a whole number >= 1" in lines
    assert any(line.startswith("> :nbest 9 is larger than :beam 3") for line in lines)
    assert any(line.startswith("> :beam 1 is smaller than :nbest 2") for line in lines)
    assert "> alpha 0.5" in lines and "> :scores maybe: say on or off" in lines
    assert any(":quit" in line for line in lines)  # the help text
    assert lines[-1] == "> "  # the last prompt, answered by EOF
    assert (translator.beam_size, translator.n_best, translator.alpha) == (3, 2, 0.5)


def test_repl_quit_stops_reading(repl_parts):
    translator, writer, output = repl_parts
    stdin = io.StringIO(":quit\nI am cold.\n")
    assert Repl(translator, writer, stdin, output, history=None).run() == 0
    assert output.getvalue().endswith("> ")  # nothing translated after :quit
    assert stdin.readline() == "I am cold.\n"


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_translate_opens_the_prompt_on_a_terminal(run, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr("sys.stdin", FakeTerminal("I am cold.\n:beam 2\n"))
    capsys.readouterr()
    assert main(["translate", run, "--beam", "1"]) == 0
    out = capsys.readouterr().out
    expected = translate(capsys, run, "I am cold.", "--beam", "1")[0]
    assert f"> {expected}\n" in out and "> beam 2\n" in out
    assert (tmp_path / ".seq2seq_history").is_file()  # readline history kept


def test_text_heatmap_shades_each_cell_across_its_label_width():
    from seq2seq.textplot import text_heatmap

    grid = text_heatmap(
        [[0.9, 0.1, 0.0], [0.02, 0.5, 0.48]], ["▁Ein", "猫", "</s>"], ["▁A", "</s>"]
    )
    assert grid.split("\n") == [
        "     ▁Ein 猫 </s>",
        "▁A   ████ ··",  # the wide character takes two columns
        "</s>      ▒▒ ▒▒▒▒",
    ]


def test_show_attention_prints_a_grid_under_each_translation(run, capsys):
    lines = translate(capsys, run, "I am cold.", "It is cold.", "--show-attention")
    (json_line,) = translate(capsys, run, "I am cold.", "--format", "jsonl")
    record = json.loads(json_line)
    first = lines[: 2 + len(record["tokens"]) + 1]
    assert first[0] == record["translation"]
    assert first[1].split() == record["source_tokens"]
    for row, piece, weights in zip(first[2:-1], record["tokens"], record["attention"]):
        assert row.startswith(piece + " ")
        strongest = max(range(len(weights)), key=weights.__getitem__)
        if weights[strongest] >= 0.85:
            assert "█" in row
    assert first[-1] == ""  # a blank line before the next translation
    assert lines[len(first)] != ""  # the second translation follows


def test_repl_attention_command_turns_the_grid_on(repl_parts):
    translator, writer, output = repl_parts
    stdin = io.StringIO(":attention on\nI am cold.\n:attention off\nI am cold.\n")
    assert run_repl(translator, writer, stdin, output, history=None) == 0
    text = output.getvalue()
    on = text.split("> attention on")[1].split("> attention off")[0]
    off = text.split("> attention off")[1]
    assert len(on.splitlines()) >= len(off.splitlines()) + 3  # header, rows, blank
    assert "</s>" in on and "</s>" not in off


def test_n_best_defaults_to_the_runs_decode_n_best(run, tmp_path, capsys):
    from seq2seq import checkpoint as ckpt

    state = ckpt.load_checkpoint(Path(run) / "checkpoints" / "best.pt")
    state["config"]["decode"]["n_best"] = 2
    state["config"]["decode"]["beam_size"] = 3
    edited = tmp_path / "nbest2.pt"
    ckpt.save_checkpoint(state, edited)
    assert len(translate(capsys, str(edited), "I am cold.")) == 2
    assert len(translate(capsys, str(edited), "I am cold.", "--beam", "1")) == 1
    assert len(translate(capsys, str(edited), "I am cold.", "--n-best", "1")) == 1


def test_decoding_under_bf16_autocast_and_fp16_refused_on_cpu(run, capsys):
    (line,) = translate(capsys, run, "I am cold.", "--amp", "bf16", "--device", "cpu")
    assert line.strip()
    args = ["translate", run, "I am cold.", "--amp", "fp16", "--device", "cpu"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err == "error: --amp: fp16 needs a CUDA device; use bf16 on CPU\n"


# ---------------------------------------------------------------- option checks


@pytest.mark.parametrize("alpha", ["-1", "nan", "inf"])
def test_a_negative_or_non_finite_alpha_is_a_one_line_error(run, capsys, alpha):
    assert main(["translate", run, "I am cold.", "--beam", "2", "--alpha", alpha]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --alpha {alpha}: the length penalty must be a ")
    assert ">= 0" in err and err.count("\n") == 1


def test_jsonl_with_show_scores_carries_the_scores_and_says_so(run, capsys):
    args = ("--beam", "3", "--n-best", "2", "--show-scores")
    capsys.readouterr()
    assert main(["translate", run, "I am cold.", "--format", "jsonl", *args]) == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out)
    scored = translate(capsys, run, "I am cold.", *args)
    assert [f"{alt['score']:.4f}" for alt in record["nbest"]] == [
        line.split("\t")[1] for line in scored
    ]
    assert "--show-scores: for --format text" in captured.err
    assert "always carries the score" in captured.err


def test_n_best_with_show_attention_labels_one_grid_per_alternative(run, capsys):
    lines = translate(
        capsys, run, "I am cold.", "--beam", "3", "--n-best", "2", "--show-attention"
    )
    texts = translate(capsys, run, "I am cold.", "--beam", "3", "--n-best", "2")
    headers = [i for i, line in enumerate(lines) if line.startswith(("1/2", "2/2"))]
    assert [lines[i].split()[0] for i in headers] == ["1/2", "2/2"]
    source = lines[headers[0]].split()[1:]
    assert source[-1] == "</s>" and lines[headers[1]].split()[1:] == source
    # Each grid sits under its own alternative, rows = that alternative's pieces.
    for header, text in zip(headers, texts):
        assert lines[header - 1] == text
        end = lines.index("", header)
        pieces = [row.split()[0] for row in lines[header + 1 : end]]
        assert pieces[-1] == "</s>"
        assert "".join(pieces[:-1]).replace("▁", " ").strip() == text
    assert lines[-1] == "" and len(headers) == 2
