"""Config loading: every shipped config is valid; mistakes are one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from seq2seq.config import Config, load_config
from seq2seq.errors import UserError

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    cfg = load_config(path)
    assert isinstance(cfg, Config)


def _load(tmp_path, text, overrides=None):
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, overrides)


def test_overrides_set_nested_keys_with_yaml_types(tmp_path):
    cfg = _load(
        tmp_path,
        "train: {lr: 1e-3}\ndata: {train: {tsv: t}, valid: {tsv: v}}\n",
        [
            "train.lr=3e-4",
            "run_dir=/tmp/x",
            "model.bidirectional=false",
            "train.max_steps=null",
            "data.train.tsv=a.tsv",
        ],
    )
    assert cfg.train.lr == pytest.approx(3e-4)
    assert cfg.run_dir == "/tmp/x"
    assert cfg.model.bidirectional is False
    assert cfg.data.train.tsv == "a.tsv"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("modle: {}\n", r"c\.yaml: modle: unknown key \(did you mean 'model'\?\)"),
        ("train: {lerning_rate: 1}\n", r"train\.lerning_rate: unknown key"),
        ("train: {lr: fast}\n", r"train\.lr: expected float, got 'fast'"),
        ("train: {epochs: 2.5}\n", r"train\.epochs: expected int"),
        ("model: {attention: luong}\n", r"model\.attention: 'luong' is not one of"),
        ("model: {dropout: 1.5}\n", r"model\.dropout: 1\.5 not in \[0, 1\)"),
        ("model: {word_dropout: 1}\n", r"model\.word_dropout: 1(\.0)? not in \[0, 1\)"),
        (
            "tokenizer: {sampling_alpha: -1}\n",
            r"tokenizer\.sampling_alpha: -1(\.0)? must be >= 0 \(0 turns",
        ),
        (
            "tokenizer: {sampling_nbest: 1}\n",
            r"tokenizer\.sampling_nbest: must be >= 2",
        ),
        (
            "tokenizer: {model_type: char, sampling_alpha: 0.1}\n",
            r"tokenizer\.sampling_alpha: subword sampling needs model_type unigram",
        ),
        ("train: {teacher_forcing: -1}\n", r"train\.teacher_forcing"),
        ("data: {train: {src: a.de}}\n", r"data\.train: give both src and tgt"),
        ("data: {train: {tsv: a, src: b, tgt: c}}\n", r"data\.train: give either tsv"),
        ("- a\n- b\n", r"must be a mapping"),
        (
            "model: {attention: dot, decoder_hidden_size: 100}\n",
            r"model\.attention: dot",
        ),
    ],
)
def test_bad_configs_name_file_key_and_problem(tmp_path, text, message):
    with pytest.raises(UserError, match=message):
        _load(tmp_path, text)


def test_yaml_syntax_error_has_line_and_column(tmp_path):
    with pytest.raises(UserError, match=r"c\.yaml:3:\d+: YAML syntax error"):
        _load(tmp_path, "seed: 1\ntrain: {lr: 1}\nrun_dir: a: b\n")


def test_missing_config_file(tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_bad_override_form(tmp_path):
    with pytest.raises(UserError, match="expected key.path=value"):
        _load(tmp_path, "{}\n", ["train.lr"])


CORPORA = "data: {train: {tsv: t}, valid: {tsv: v}}\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "decode: {beam_size: 4, n_best: 5}\n",
            r"decode\.n_best: 5 is more than decode\.beam_size \(4\)",
        ),
        ("decode: {n_best: 0}\n", r"decode\.n_best: must be >= 1"),
        ("train: {keep_last: 0}\n", r"train\.keep_last: must be >= 1"),
        ("train: {on_nan: skipp}\n", r"'skipp' is not one of .* \(did you mean 'skip'"),
    ],
)
def test_robustness_options_are_checked(tmp_path, text, message):
    with pytest.raises(UserError, match=message):
        _load(tmp_path, CORPORA + text)


def test_bad_lines_choice_is_checked(tmp_path):
    with pytest.raises(UserError, match=r"data\.on_bad_lines: 'ignore' is not one"):
        _load(tmp_path, "data: {on_bad_lines: ignore}\n")


def test_robustness_option_defaults(tmp_path):
    cfg = _load(tmp_path, CORPORA + "decode: {beam_size: 3, n_best: 3}\n")
    assert (cfg.decode.n_best, cfg.train.keep_last) == (3, 2)
    assert (cfg.train.on_nan, cfg.data.on_bad_lines) == ("stop", "error")


# ---------------------------------------------------------------- overrides


def _error(tmp_path, overrides, text=CORPORA + "train: {lr: 1e-3}\n") -> str:
    with pytest.raises(UserError) as info:
        _load(tmp_path, text, overrides)
    return str(info.value)


def test_a_bad_override_is_blamed_on_the_override_not_the_file(tmp_path):
    message = _error(tmp_path, ["train.lrr=3"])
    assert message.startswith(
        "override 'train.lrr=3': train.lrr: unknown key (did you mean 'lr'?)"
    )
    message = _error(tmp_path, ["model.attention=dott"])
    assert message.startswith("override 'model.attention=dott': model.attention: ")
    assert _error(tmp_path, ["decode.beam_size=2", "decode.n_best=3"]).startswith(
        "override 'decode.n_best=3': decode.n_best: 3 is more than"
    )


def test_a_bad_key_in_the_file_is_still_blamed_on_the_file(tmp_path):
    message = _error(tmp_path, ["train.lr=3"], CORPORA + "train: {lrr: 1}\n")
    assert message.startswith(f"{tmp_path / 'c.yaml'}: train.lrr: unknown key")


def test_a_key_in_the_wrong_section_names_the_right_one(tmp_path):
    assert "lr: unknown key (did you mean 'train.lr'?)" in _error(tmp_path, ["lr=3"])
    assert "(did you mean 'train.batch_size' or 'decode.batch_size'?)" in _error(
        tmp_path, ["batch_size=3"]
    )
    assert "(did you mean 'train.lr'?)" in _error(tmp_path, [], "lr: 3\n" + CORPORA)


def test_src_and_tgt_over_a_tsv_split_say_to_null_the_tsv(tmp_path):
    overrides = ["data.train.src=a.de", "data.train.tgt=a.en"]
    message = _error(tmp_path, overrides)
    assert message == (
        "override 'data.train.tgt=a.en': data.train: give either tsv, or src and "
        "tgt, not both; to read src and tgt, set data.train.tsv to null (on the "
        "command line: data.train.tsv=null)"
    )
    cfg = _load(tmp_path, CORPORA, [*overrides, "data.train.tsv=null"])
    assert (cfg.data.train.src, cfg.data.train.tgt, cfg.data.train.tsv) == (
        "a.de",
        "a.en",
        None,
    )
