"""``seq2seq export RUN --onnx DIR``: onnxruntime's greedy translations, made
without PyTorch, equal PyTorch's on 100 sentences, for the default model and for one
that exercises the other graph inputs (no attention keys, input feeding, two layers,
a unidirectional encoder, separate tokenizers)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seq2seq.cli import main
from seq2seq.inference import Translator, load_model
from tests.conftest import PAIRS, ROOT, tiny_config, write_config

pytest.importorskip(
    "onnxruntime", reason="onnxruntime is not installed (pip install -e '.[export]')"
)
pytest.importorskip("onnx", reason="onnx is not installed (pip install -e '.[export]')")


def sentences(count: int = 100) -> list[str]:
    """Seeded word salads over the corpus words: blank lines, seen and unseen
    sentences, and some longer than the model's max_src_len (cut)."""
    words = " ".join(en for en, _ in PAIRS).split()
    rng = random.Random(0)
    lines = ["", "   ", PAIRS[0][0], " ".join(words)]
    while len(lines) < count:
        lines.append(" ".join(rng.choice(words) for _ in range(rng.randint(1, 5))))
    return lines


def train_and_export(tmp: Path, **sections) -> tuple[Path, Path]:
    tsv = tmp / "pairs.tsv"
    tsv.write_text("".join(f"{en}\t{fr}\n" for en, fr in PAIRS * 4), encoding="utf-8")
    cfg = write_config(tmp / "c.yaml", tiny_config(tmp, tsv, **sections))
    assert main(["train", str(cfg), "--quiet"]) == 0
    export_dir = tmp / "onnx"
    assert main(["export", str(tmp / "run"), "--onnx", str(export_dir)]) == 0
    return tmp / "run", export_dir


def torch_greedy(run: Path, lines: list[str]) -> list[str]:
    model, tokenizer, cfg = load_model(run, torch.device("cpu"))
    translator = Translator(model, tokenizer, cfg.decode, torch.device("cpu"))
    return [t.text for t in translator.translate_lines(lines)]


def onnx_greedy_without_torch(export_dir: Path, lines: list[str]) -> list[str]:
    """OnnxTranslator in a fresh interpreter that must never import torch: batches
    of 9 (the last one smaller), and the first lines again one by one (B = 1)."""
    code = (
        "import json, sys\n"
        "from seq2seq.export import OnnxTranslator\n"
        "lines = json.load(sys.stdin)\n"
        "translator = OnnxTranslator(sys.argv[1], batch_size=9, threads=1)\n"
        "out = translator.translate(lines)\n"
        "alone = [translator.translate([line])[0] for line in lines[:10]]\n"
        "assert alone == out[:10], (alone, out[:10])\n"
        "assert 'torch' not in sys.modules, 'seq2seq.export imported torch'\n"
        "json.dump(out, sys.stdout)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(export_dir)],
        input=json.dumps(lines),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_onnx_greedy_equals_pytorch_greedy(tmp_path, capsys):
    run, export_dir = train_and_export(tmp_path, train={"epochs": 20})
    printed = capsys.readouterr().out.splitlines()
    names = ["encoder.onnx", "decoder_step.onnx", "spm.model", "config.json"]
    assert printed[-4:] == [str(export_dir / name) for name in names]
    config = json.loads((export_dir / "config.json").read_text())
    assert config["eos_id"] == 3 and config["max_src_len"] == 24
    assert config["state_names"] == ["hidden"]
    lines = sentences()
    expected = torch_greedy(run, lines)
    assert len(set(expected)) > 20  # a model that says different things
    assert onnx_greedy_without_torch(export_dir, lines) == expected


def test_onnx_export_of_the_other_model_options(tmp_path):
    run, export_dir = train_and_export(
        tmp_path,
        model={
            "attention": "concat",
            "input_feeding": True,
            "encoder_layers": 2,
            "decoder_layers": 2,
            "bidirectional": False,
        },
        tokenizer={"joint": False},
        train={"max_steps": 12},
    )
    config = json.loads((export_dir / "config.json").read_text())
    assert (config["src_spm"], config["tgt_spm"]) == ("spm.src.model", "spm.tgt.model")
    assert config["state_names"] == ["hidden", "feed"]
    lines = sentences()
    assert onnx_greedy_without_torch(export_dir, lines) == torch_greedy(run, lines)


def test_export_errors_are_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path / "none"), "--onnx", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_translate_an_export_with_beam_search_as_the_torch_model_does(tmp_path, capsys):
    """``seq2seq translate EXPORT_DIR --beam 4``: the same search code over the
    onnxruntime graphs gives the PyTorch model's n-best texts, scores and
    attention."""
    from seq2seq.onnx_model import load_export

    run, export_dir = train_and_export(tmp_path, train={"epochs": 20})
    lines = sentences(40)
    model, tokenizer, cfg = load_model(run, torch.device("cpu"))
    onnx_model, onnx_tokenizer, decode = load_export(export_dir)
    assert decode == cfg.decode  # the run's decoding settings travel in config.json
    cpu = torch.device("cpu")
    torch_beam = Translator(model, tokenizer, cfg.decode, cpu, None, 4, 1.0, 2)
    onnx_beam = Translator(onnx_model, onnx_tokenizer, decode, cpu, None, 4, 1.0, 2)
    expected = torch_beam.translate_lines(lines, return_attention=True)
    got = onnx_beam.translate_lines(lines, return_attention=True)
    assert len({t.text for t in expected}) >= 5  # a model that says different things
    for want, have in zip(expected, got):
        assert [text for text, _ in have.nbest] == [text for text, _ in want.nbest]
        for (_, have_score), (_, want_score) in zip(have.nbest, want.nbest):
            assert have_score == pytest.approx(want_score, abs=1e-4)
        if want.attention is not None:
            torch.testing.assert_close(
                have.attention, want.attention, atol=1e-4, rtol=0
            )
    # Through the command line, as users call it.
    args = ["--beam", "4", "--n-best", "2"]
    capsys.readouterr()
    assert main(["translate", str(export_dir), *lines[:12], *args]) == 0
    from_export = capsys.readouterr().out
    assert main(["translate", str(run), *lines[:12], *args]) == 0
    assert from_export == capsys.readouterr().out


def test_translate_an_export_refuses_what_it_cannot_do(tmp_path, capsys):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "encoder.onnx").write_bytes(b"")
    assert main(["translate", str(tmp_path), "x", "--ensemble", "other"]) == 2
    assert "is an ONNX export, which decodes alone" in capsys.readouterr().err
    assert main(["translate", str(tmp_path), "x"]) == 2
    err = capsys.readouterr().err
    assert (
        err == f"error: {tmp_path / 'config.json'}: format_version None, expected 1\n"
    )
