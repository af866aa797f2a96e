"""The user's three jobs through the real CLI on a tiny corpus: train (and resume),
evaluate, translate; and the one-line errors users see."""

from __future__ import annotations

import subprocess
import sys

import pytest
import sacrebleu
import torch

from seq2seq.checkpoint import load_checkpoint
from seq2seq.cli import main
from tests.conftest import PAIRS, tiny_config, write_config


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One tiny run shared by the evaluate/translate tests."""
    tmp = tmp_path_factory.mktemp("trained")
    tsv = tmp / "pairs.tsv"
    tsv.write_text("".join(f"{en}\t{fr}\n" for en, fr in PAIRS * 4), encoding="utf-8")
    cfg = write_config(
        tmp / "c.yaml",
        tiny_config(
            tmp, tsv, train={"epochs": 40, "valid_every": 120, "log_examples": 2}
        ),
    )
    assert main(["train", str(cfg), "--quiet"]) == 0
    return tmp / "run", tsv


def test_train_writes_a_self_contained_run(trained_run):
    run, _ = trained_run
    for name in (
        "config.yaml",
        "spm.model",
        "train.log",
        "checkpoints/latest.pt",
        "checkpoints/best.pt",
    ):
        assert (run / name).is_file(), name
    assert any((run / "tensorboard").iterdir())
    state = load_checkpoint(run / "checkpoints" / "latest.pt")
    history = state["train_state"]["history"]
    assert history[-1]["loss"] < history[0]["loss"]


def test_evaluate_prints_sacrebleu_equal_to_sacrebleu_on_the_same_files(
    trained_run, tmp_path, capsys
):
    run, _ = trained_run
    src = tmp_path / "src.txt"
    ref = tmp_path / "ref.txt"
    src.write_text("".join(en + "\n" for en, _ in PAIRS), encoding="utf-8")
    ref.write_text("".join(fr + "\n" for _, fr in PAIRS), encoding="utf-8")
    hyp = tmp_path / "hyp.txt"
    assert (
        main(
            [
                "evaluate",
                str(run),
                "--src",
                str(src),
                "--ref",
                str(ref),
                "--output",
                str(hyp),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out.splitlines()
    hyps = hyp.read_text(encoding="utf-8").splitlines()
    assert len(hyps) == len(PAIRS)
    expected = sacrebleu.corpus_bleu(hyps, [[fr for _, fr in PAIRS]])
    assert printed[0] == str(expected)
    assert printed[0].startswith("BLEU = ")
    assert printed[1].startswith(
        "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:"
    )


def test_evaluate_on_a_config_split_and_with_beam(trained_run, capsys):
    run, _ = trained_run
    assert main(["evaluate", str(run), "--split", "test", "--beam", "3"]) == 0
    assert capsys.readouterr().out.startswith("BLEU = ")


def test_a_run_ensembled_with_itself_scores_as_it_does_alone(trained_run, capsys):
    run, _ = trained_run
    checkpoint = run / "checkpoints" / "latest.pt"
    assert main(["evaluate", str(run), "--split", "test", "--beam", "3"]) == 0
    alone = capsys.readouterr().out
    argv = ["evaluate", str(run), "--ensemble", str(checkpoint), "--split", "test"]
    assert main([*argv, "--beam", "3"]) == 0
    assert capsys.readouterr().out == alone
    assert main(["translate", str(run), "--ensemble", str(run), "It is cold."]) == 0
    assert capsys.readouterr().out == "Il fait froid.\n"


def test_ensemble_members_need_the_same_sentencepiece_models(
    trained_run, tmp_path, capsys
):
    run, tsv = trained_run
    cfg = tiny_config(tmp_path, tsv, tokenizer={"joint": False}, train={"epochs": 1})
    assert main(["train", str(write_config(tmp_path / "c.yaml", cfg)), "--quiet"]) == 0
    capsys.readouterr()
    other = tmp_path / "run"
    assert main(["evaluate", str(run), "--ensemble", str(other)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"error: {other}: its sentencepiece models differ from {run}")


def test_translate_through_the_real_cli_on_stdin(trained_run):
    run, _ = trained_run
    lines = ["I am cold.", "", "   ", "He eats bread.", "Ünïcödé ✓ 字"]
    result = subprocess.run(
        [sys.executable, "-m", "seq2seq", "translate", str(run)],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout.split("\n")
    assert out[-1] == "" and len(out) - 1 == len(lines)  # one line per input line
    assert out[1] == "" and out[2] == ""
    assert out[0] == "J'ai froid."  # a training pair the tiny model has memorised


def test_translate_arguments_equal_stdin(trained_run, capsys):
    run, _ = trained_run
    assert main(["translate", str(run), "He eats bread.", "It is cold."]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "Il mange du pain.",
        "Il fait froid.",
    ]
    # Sentences may also follow options, and options sentences.
    argv = ["translate", str(run), "--beam", "2", "He eats bread.", "--quiet", "x"]
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines()[0] == "Il mange du pain."


def test_resume_continues_exactly_like_an_uninterrupted_run(tiny_tsv, tmp_path):
    whole = tiny_config(tmp_path / "a", tiny_tsv, train={"epochs": 3, "valid_every": 4})
    write_config(tmp_path / "a.yaml", whole)
    assert main(["train", str(tmp_path / "a.yaml"), "--quiet"]) == 0

    split = tiny_config(tmp_path / "b", tiny_tsv, train={"epochs": 3, "valid_every": 4})
    write_config(tmp_path / "b.yaml", split)
    # Stop mid-epoch (6 batches an epoch): 9 steps, then resume to the end.
    assert (
        main(["train", str(tmp_path / "b.yaml"), "train.max_steps=9", "--quiet"]) == 0
    )
    assert main(["train", str(tmp_path / "b.yaml"), "--resume", "--quiet"]) == 0

    a = load_checkpoint(tmp_path / "a" / "run" / "checkpoints" / "latest.pt")
    b = load_checkpoint(tmp_path / "b" / "run" / "checkpoints" / "latest.pt")
    assert a["train_state"]["step"] == b["train_state"]["step"] == 18
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    for key, value in a["optimizer"]["state"].items():
        assert torch.equal(value["exp_avg"], b["optimizer"]["state"][key]["exp_avg"])
    losses = lambda s: [(h["step"], h["loss"]) for h in s["train_state"]["history"]]  # noqa: E731
    assert [x for x in losses(b) if x[0] != 9] == losses(a)


def test_resume_refuses_a_changed_model_shape(tiny_tsv, tmp_path, capsys):
    cfg = write_config(
        tmp_path / "c.yaml", tiny_config(tmp_path, tiny_tsv, train={"max_steps": 2})
    )
    assert main(["train", str(cfg), "--quiet"]) == 0
    assert main(["train", str(cfg), "--resume", "model.embed_size=8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        "error: --resume: model.embed_size changed from 16 to 8; the "
        "checkpoint's model cannot take that change (start a new run_dir "
        "instead)"
    )
    assert main(["train", str(cfg)]) == 2  # would overwrite the run
    assert "already holds a run" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "missing.yaml"], "error: missing.yaml: config file not found"),
        (["evaluate", "no/such/run"], "error: no/such/run: no such run directory"),
        (
            ["translate", "no/such/run", "x"],
            "error: no/such/run: no such run directory",
        ),
    ],
)
def test_expected_errors_are_one_line_with_status_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_data_errors_reach_the_user_as_one_line(tiny_tsv, tmp_path, capsys):
    cfg = tiny_config(tmp_path, tiny_tsv)
    cfg["data"]["valid"] = {"src": "v.de", "tgt": "v.en"}
    (tmp_path / "v.de").write_text("a\nb\n")
    (tmp_path / "v.en").write_text("a\n")
    cfg["data"]["root"] = str(tmp_path)
    cfg["data"]["train"] = {"tsv": "pairs.tsv"}
    assert main(["train", str(write_config(tmp_path / "c.yaml", cfg))]) == 2
    err = capsys.readouterr().err
    assert "v.de has 2 lines but" in err and "v.en has 1" in err


def test_debug_flag_shows_the_traceback(tmp_path):
    with pytest.raises(Exception, match="config file not found"):
        main(["--debug", "train", str(tmp_path / "missing.yaml")])


def test_recipe_options_train_and_average(tiny_tsv, tmp_path, capsys):
    """Plateau schedule, early stopping, best-N retention and averaging."""
    cfg = tiny_config(
        tmp_path,
        tiny_tsv,
        model={"input_feeding": True, "tie_embeddings": True},
        train={
            "epochs": 6,
            "valid_every": 3,
            "keep_best": 3,
            "lr_schedule": "plateau",
            "lr_patience": 0,
            "label_smoothing": 0.1,
            "patience": 50,
            "teacher_forcing_schedule": "linear",
            "teacher_forcing_min": 0.5,
            "teacher_forcing_steps": 20,
        },
    )
    config = write_config(tmp_path / "c.yaml", cfg)
    assert main(["train", str(config), "--quiet"]) == 0
    run = tmp_path / "run"
    state = load_checkpoint(run / "checkpoints" / "latest.pt")["train_state"]
    kept = sorted(p.name for p in (run / "checkpoints").glob("step*.pt"))
    assert len(kept) == 3
    assert kept == sorted(f"step{int(step)}.pt" for _, step in state["kept_best"])
    scores = [bleu for bleu, _ in state["kept_best"]]
    assert scores == sorted(scores, reverse=True)
    assert state["best_bleu"] == scores[0]
    capsys.readouterr()
    assert main(["average", str(run), "--best", "3"]) == 0
    assert "averaged 3 checkpoints" in capsys.readouterr().out
    averaged = run / "checkpoints" / "averaged.pt"
    assert main(["translate", str(averaged), "I am cold."]) == 0
    assert capsys.readouterr().out.strip()
    assert main(["average", str(run), "--best", "4"]) == 2
    assert "keeps 3 best checkpoints, 4 asked" in capsys.readouterr().err


def test_early_stopping_stops_the_run(tiny_tsv, tmp_path, capsys):
    cfg = tiny_config(
        tmp_path,
        tiny_tsv,
        train={"epochs": 50, "valid_every": 2, "patience": 1, "lr": 1e-6},
    )
    assert main(["train", str(write_config(tmp_path / "c.yaml", cfg)), "--quiet"]) == 0
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt")[
        "train_state"
    ]
    assert state["stopped_early"] is True
    assert state["step"] < 50 * 6
    assert "early stopping" in capsys.readouterr().err


def test_long_line_warning_names_the_real_input_line(trained_run, caplog):
    import logging

    from seq2seq.inference import Translator, load_model

    run, _ = trained_run
    model, tokenizer, cfg = load_model(run, torch.device("cpu"))
    translator = Translator(model, tokenizer, cfg.decode, torch.device("cpu"))
    lines = ["I am cold.", "", "x " * 200, "He eats bread.", "y " * 200]
    with caplog.at_level(logging.WARNING, logger="seq2seq"):
        out = [t.text for t in translator.stream_translations(lines, chunk=2)]
    assert len(out) == len(lines) and out[1] == ""
    warned = [
        r.getMessage().split()[2]
        for r in caplog.records
        if "input line" in r.getMessage()
    ]
    assert warned == ["3", "5"]


def test_tensorboard_gets_scalars_samples_heatmaps_and_hparams(trained_run):
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )

    run, _ = trained_run
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    tags = events.Tags()
    for tag in (
        "train/loss",
        "train/ppl",
        "train/lr",
        "train/grad_norm",
        "train/tokens_per_s",
        "valid/loss",
        "valid/ppl",
        "valid/bleu",
        "valid/chrf",
    ):
        assert tag in tags["scalars"], tag
    assert "attention/sample0" in tags["images"]
    assert any(t.startswith("valid/sample0") for t in tags["tensors"])
    assert (run / "attention" / "sample0.png").is_file()
    assert any((run / "tensorboard" / "hparams").iterdir())


def test_a_closed_stdout_pipe_ends_quietly(monkeypatch, capsys):
    """`seq2seq evaluate RUN | head -1`: the reader goes away, no traceback."""
    from seq2seq import cli

    def evaluate(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setitem(cli.COMMANDS, "evaluate", evaluate)
    assert main(["evaluate", "runs/none"]) == 141
    assert capsys.readouterr().err == ""


def test_average_best_1_of_a_keep_best_1_run_is_its_best_checkpoint(
    tiny_tsv, tmp_path, capsys
):
    """keep_best: 1 keeps the best as best.pt only: --best 1 averages that one,
    and --best 2 names the run's keep_best instead of telling to set it to 1."""
    train = {"max_steps": 2, "valid_every": 2, "keep_best": 1}
    config = write_config(
        tmp_path / "c.yaml", tiny_config(tmp_path, tiny_tsv, train=train)
    )
    assert main(["train", str(config), "--quiet"]) == 0
    run = tmp_path / "run"
    output = tmp_path / "averaged.pt"
    capsys.readouterr()
    assert main(["average", str(run), "--best", "1", "--output", str(output)]) == 0
    assert capsys.readouterr().out == f"averaged 1 checkpoints -> {output}\n"
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    averaged = load_checkpoint(output)
    assert averaged["averaged_from"] == [str(run / "checkpoints" / "best.pt")]
    for name, tensor in best["model"].items():
        assert torch.equal(averaged["model"][name], tensor), name

    assert main(["average", str(run), "--best", "2"]) == 2
    assert capsys.readouterr().err == (
        f"error: average: {run} keeps 1 best checkpoints, 2 asked; it was trained "
        "with train.keep_best=1; train with train.keep_best=2 or ask for fewer\n"
    )
