"""Typed, frozen configuration: load YAML, apply dotted overrides, validate once.

Every key a YAML file may hold is a field below, with its default and a comment.
Unknown keys, wrong types, out-of-range values and bad choices are a
:class:`~seq2seq.errors.UserError` naming the file and the key path.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from seq2seq.errors import UserError


@dataclass(frozen=True)
class CorpusConfig:
    """One split: two line-aligned files (plain or .gz) or one TSV file."""

    src: str | None = None  # source-language file, one sentence a line
    tgt: str | None = None  # target-language file, line-aligned with src
    tsv: str | None = None  # or one file: `source<TAB>target[<TAB>ignored...]`
    src_column: int = 0  # TSV column of the source sentence
    tgt_column: int = 1  # TSV column of the target sentence
    # only lines FIRST-LAST of the file(s) (1-based, inclusive; e.g. "4501-5000"), to
    # hold out part of one file for valid/test; null: every line
    lines: str | None = None


@dataclass(frozen=True)
class DataConfig:
    """Where the corpora are and which pairs are kept."""

    # training pairs (required): `{src: FILE, tgt: FILE}` (line-aligned, plain or
    # .gz) or `{tsv: FILE, src_column: 0, tgt_column: 1}`
    train: CorpusConfig = field(default_factory=CorpusConfig)
    # validation pairs (required), in the same form as train
    valid: CorpusConfig = field(default_factory=CorpusConfig)
    test: CorpusConfig | None = None  # as train; null: no test split
    root: str = "."  # relative corpus paths are read from here (itself from cwd)
    src_lang: str = "src"  # source language code, for messages and file names only
    tgt_lang: str = "tgt"  # target language code, likewise
    # subword tokens incl. EOS; longer train/valid pairs are dropped at load, with a
    # count; the `concat` rule scores exactly this many positions
    max_src_len: int = 64
    max_tgt_len: int = 80  # subword tokens incl. EOS; longer pairs dropped likewise
    # a line that is not valid UTF-8 or lacks a TSV column: error (stop, naming the
    # file and line) | skip (drop that pair; the count is logged)
    on_bad_lines: Literal["error", "skip"] = "error"


@dataclass(frozen=True)
class TokenizerConfig:
    """sentencepiece: trained on the training data unless a model is named."""

    joint: bool = True  # one model for both languages, or one per language
    vocab_size: int = 8000  # per model; a small corpus may yield fewer pieces
    # sentencepiece's segmentation algorithm
    model_type: Literal["unigram", "bpe", "char", "word"] = "unigram"
    character_coverage: float = 1.0  # sentencepiece's character coverage
    # an existing joint sentencepiece .model file to use instead of training one
    # (joint: true); a relative path is read from data.root
    model: str | None = None
    # existing per-language .model files instead (joint: false), read like model
    src_model: str | None = None
    tgt_model: str | None = None  # the target-language one (with src_model)
    # subword regularization (Kudo, 2018; unigram models): > 0 gives each epoch
    # its own segmentation of every training pair, drawn from its sampling_nbest
    # best with probability proportional to P(segmentation)^alpha (smaller: more
    # varied; 0.5 changes 28% of the Multi30k English sentences); valid, test and
    # translate keep the best segmentation. 0: off
    sampling_alpha: float = 0.0
    # segmentations to sample from, per sentence (computed for each batch's
    # sentences when the batch is built; nothing is kept between batches)
    sampling_nbest: int = 8
    # joint model: the target side keeps only the pieces the target training text
    # uses (in any of its sampling_nbest segmentations when sampling) and every
    # single character, so the output layer skips source-only pieces (Multi30k
    # de-en: 4,060 of 8,000; same segmentation of the training targets); the run
    # then saves spm.src.model and spm.tgt.model. A BPE model stays whole (its
    # merges pass through pieces the targets never use). false: one vocabulary
    restrict_target_vocab: bool = True


@dataclass(frozen=True)
class ModelConfig:
    """GRU encoder and attention decoder sizes."""

    # attention rule (see docs/ARCHITECTURE.md); `concat` is the tutorial's
    attention: Literal["concat", "additive", "dot", "general", "scaled_dot"] = (
        "additive"
    )
    embed_size: int = 256  # embedding size (source and target)
    encoder_hidden_size: int = 256  # encoder GRU size, per direction
    encoder_layers: int = 1  # encoder GRU layers
    bidirectional: bool = True  # bidirectional encoder
    decoder_hidden_size: int = 512  # decoder GRU size
    decoder_layers: int = 1  # decoder GRU layers
    # on embeddings, encoder outputs, between GRU layers, and on the attentional
    # vector before the output layer
    dropout: float = 0.2
    # probability of dropping a whole source or target input token (its embedding
    # zeroed, the kept ones scaled by 1 / (1 - p)) during training
    word_dropout: float = 0.0
    # Luong input feeding: the previous attentional vector joins Q at the next step
    input_feeding: bool = False
    # the output projection shares the target embedding matrix (the attentional
    # vector then has embed_size)
    tie_embeddings: bool = False
    # how the recurrences run: auto (the fast kernels of seq2seq/kernels/ where they
    # apply to the model and device, chosen once when it is built) | reference
    # (model.py's step-by-step math alone: slower, the same numbers up to rounding);
    # checkpoints load under either
    kernels: Literal["auto", "reference"] = "auto"


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and the training loop's schedule."""

    optimizer: Literal["adam"] = "adam"  # Adam (the only choice so far)
    lr: float = 1e-3  # learning rate (warmup_decay, cosine, linear: the peak)
    betas: tuple[float, float] = (0.9, 0.999)  # Adam betas
    batch_size: int = 64  # sentences per batch (used when batch_tokens is null)
    # if set: batches of about this many padded tokens (pairs x longest source or
    # target), instead of batch_size pairs
    batch_tokens: int | None = None
    epochs: int = 10  # training stops at the first of epochs, max_steps, max_minutes
    max_steps: int | None = None  # stop after this many updates
    max_minutes: float | None = None  # stop after this much training wall-clock
    clip_grad_norm: float | None = 1.0  # gradient norm clipping; null: off
    # probability of feeding the gold previous token (else the model's argmax)
    teacher_forcing: float = 1.0
    # constant | linear (from teacher_forcing to teacher_forcing_min over
    # teacher_forcing_steps) | inverse_sigmoid (k / (k + exp(step / k)), floored at
    # teacher_forcing_min; k = teacher_forcing_k): scheduled sampling
    teacher_forcing_schedule: Literal["constant", "linear", "inverse_sigmoid"] = (
        "constant"
    )
    teacher_forcing_min: float = 0.0  # the schedules' floor
    teacher_forcing_steps: int = 10000  # length of the linear schedule, in updates
    teacher_forcing_k: float = 2000.0  # k of inverse_sigmoid
    label_smoothing: float = 0.0  # label smoothing of the loss
    # constant | plateau (multiply by lr_factor after lr_patience validations
    # without a better valid BLEU, not below min_lr) | warmup_decay (linear
    # warm-up over warmup_steps, then inverse square root decay) | cosine, linear
    # (warm-up over warmup_steps, then decay to min_lr at the end of the budget:
    # the first of epochs, max_steps and max_minutes to run out; with max_minutes
    # the rate follows the clock)
    lr_schedule: Literal["constant", "plateau", "warmup_decay", "cosine", "linear"] = (
        "constant"
    )
    lr_factor: float = 0.5  # plateau: the factor
    lr_patience: int = 2  # plateau: validations without a better BLEU tolerated
    min_lr: float = 1e-5  # plateau: the floor; cosine, linear: the final rate
    # warmup_decay, cosine, linear: updates of linear warm-up
    warmup_steps: int = 1000
    patience: int | None = None  # early stopping: validations without a better BLEU
    valid_every: int = 0  # updates between validations; 0: at each epoch's end
    # updates between extra saves of latest.pt; 0: only at validations
    checkpoint_every: int = 0
    # keep the N best-BLEU checkpoints as checkpoints/step*.pt (for `seq2seq average`)
    keep_best: int = 1
    # keep the N last saves of latest.pt (as checkpoints/last-step{STEP}.pt hard
    # links), so --resume falls back to the one before a corrupt latest.pt
    keep_last: int = 2
    # a NaN / inf training loss: stop (an error; the last checkpoint stays intact) |
    # skip (that batch makes no update; counted in the log and the checkpoint)
    on_nan: Literal["stop", "skip"] = "stop"
    # also keep checkpoints/minute{M}.pt when training time passes M minutes
    snapshot_minutes: tuple[float, ...] = ()
    log_every: int = 50  # updates between TensorBoard train scalars
    valid_max_sentences: int | None = None  # validate on the first N valid pairs
    # valid sentences whose translation and attention heatmap go to TensorBoard at
    # each validation (0: none)
    log_examples: int = 3
    # mixed precision: none, bf16, fp16 (CUDA only), auto: bf16 on a CPU whose
    # flags show native bf16 (avx512_bf16, amx_bf16, Arm bf16) or where a short
    # timed probe finds bf16 >= 1.15x as fast as fp32, else fp32; fp32 on CUDA,
    # where this RNN's per-step casts cost more than they save. The choice and its
    # reason are logged.
    amp: Literal["auto", "none", "bf16", "fp16"] = "none"
    # torch CPU threads; null: OMP_NUM_THREADS if set, else the CPUs this process
    # may run on, shared among torchrun's processes on the node (logged)
    num_threads: int | None = None


@dataclass(frozen=True)
class DecodeConfig:
    """Translation settings used by validation, evaluate and translate."""

    batch_size: int = 64  # sentences per decoding batch
    max_len_a: float = 1.5  # output length limit: a * source length + b tokens
    max_len_b: int = 10  # the b of that limit
    beam_size: int = 5  # beam size of evaluate and translate (validation is greedy)
    length_penalty: float = 1.0  # beam search alpha: score / ((5 + len) / 6)^alpha
    n_best: int = 1  # translations kept per sentence (at most beam_size)


@dataclass(frozen=True)
class Config:
    """A whole run: data, tokenizer, model, training and decoding."""

    run_dir: str = "runs/default"  # where the run's files go
    seed: int = 1234  # seeds data order, initialisation and dropout
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: CUDA when present
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)


# ---------------------------------------------------------------- conversion


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if origin is tuple:
        if typing.get_args(tp)[-1] is Ellipsis:
            return "a list"
        return f"a list of {len(typing.get_args(tp))} numbers"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return the typed value."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(tp):
            return None
        for arg in typing.get_args(tp):
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where)
            except UserError:
                pass
        raise UserError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            hint = _did_you_mean(str(value), [str(c) for c in choices])
            raise UserError(
                f"{where}: {value!r} is not one of {', '.join(map(repr, choices))}"
                + hint
            )
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise UserError(f"{where}: expected a mapping, got {value!r}")
        return _build(tp, value, where)
    if origin is tuple and typing.get_args(tp)[-1] is Ellipsis:
        item = typing.get_args(tp)[0]
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where}: expected a list, got {value!r}")
        return tuple(_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise UserError(f"{where}: expected {_type_name(tp)}, got {value!r}")
        return tuple(
            _convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args))
        )
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    raise UserError(f"{where}: expected {_type_name(tp)}, got {value!r}")


def _did_you_mean(key: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(key, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _key_paths(cls: type, prefix: str = "") -> list[str]:
    """Every dotted key path a config section accepts (``train.lr``, ...)."""
    paths = []
    for name, tp in typing.get_type_hints(cls).items():
        path = f"{prefix}{name}"
        paths.append(path)
        section = [a for a in (tp, *typing.get_args(tp)) if dataclasses.is_dataclass(a)]
        if section:
            paths += _key_paths(section[0], f"{path}.")
    return paths


def _unknown_key_hint(key: str, names: list[str]) -> str:
    """A sibling key close to ``key``, else the same key in another section
    (``lr`` -> ``train.lr``)."""
    hint = _did_you_mean(key, names)
    if hint:
        return hint
    elsewhere = [p for p in _key_paths(Config) if p.rsplit(".", 1)[-1] == key]
    if elsewhere:
        return f" (did you mean {' or '.join(map(repr, elsewhere))}?)"
    return ""


def _build(cls: type, data: dict, where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in names:
            raise UserError(
                f"{path}: unknown key{_unknown_key_hint(str(key), names)}; "
                f"valid keys here: {', '.join(names)}"
            )
        kwargs[key] = _convert(value, hints[key], path)
    return cls(**kwargs)


# ---------------------------------------------------------------- validation


def _check(ok: bool, where: str, message: str) -> None:
    if not ok:
        raise UserError(f"{where}: {message}")


def validate(cfg: Config) -> None:
    """Range and consistency checks that types alone cannot express."""
    m, t, d, tok = cfg.model, cfg.train, cfg.data, cfg.tokenizer
    for name in ("embed_size", "encoder_hidden_size", "decoder_hidden_size"):
        _check(getattr(m, name) > 0, f"model.{name}", "must be > 0")
    for name in ("encoder_layers", "decoder_layers"):
        _check(getattr(m, name) >= 1, f"model.{name}", "must be >= 1")
    if m.attention in ("dot", "scaled_dot"):
        context = m.encoder_hidden_size * (2 if m.bidirectional else 1)
        _check(
            m.decoder_hidden_size == context,
            "model.attention",
            f"{m.attention} compares decoder states with encoder outputs, so "
            f"model.decoder_hidden_size ({m.decoder_hidden_size}) must equal the "
            f"encoder output size ({context}); use additive or general otherwise",
        )
    _check(0.0 <= m.dropout < 1.0, "model.dropout", f"{m.dropout} not in [0, 1)")
    _check(
        0.0 <= m.word_dropout < 1.0,
        "model.word_dropout",
        f"{m.word_dropout} not in [0, 1)",
    )
    _check(
        tok.sampling_alpha >= 0.0,
        "tokenizer.sampling_alpha",
        f"{tok.sampling_alpha} must be >= 0 (0 turns sampling off)",
    )
    _check(tok.sampling_nbest >= 2, "tokenizer.sampling_nbest", "must be >= 2")
    if tok.sampling_alpha:
        _check(
            tok.model_type == "unigram",
            "tokenizer.sampling_alpha",
            f"subword sampling needs model_type unigram, not {tok.model_type}; "
            "or set sampling_alpha: 0",
        )
    _check(t.lr > 0, "train.lr", f"{t.lr} must be > 0")
    _check(t.batch_size >= 1, "train.batch_size", "must be >= 1")
    if t.batch_tokens is not None:
        _check(t.batch_tokens >= 1, "train.batch_tokens", "must be >= 1")
    _check(t.epochs >= 1, "train.epochs", "must be >= 1")
    if t.max_steps is not None:
        _check(t.max_steps >= 1, "train.max_steps", "must be >= 1")
    if t.max_minutes is not None:
        _check(t.max_minutes > 0, "train.max_minutes", "must be > 0")
    if t.clip_grad_norm is not None:
        _check(t.clip_grad_norm > 0, "train.clip_grad_norm", "must be > 0 or null")
    _check(
        0.0 <= t.teacher_forcing <= 1.0,
        "train.teacher_forcing",
        f"{t.teacher_forcing} not in [0, 1]",
    )
    _check(
        0.0 <= t.label_smoothing < 1.0,
        "train.label_smoothing",
        f"{t.label_smoothing} not in [0, 1)",
    )
    for name in ("valid_every", "checkpoint_every"):
        _check(getattr(t, name) >= 0, f"train.{name}", "must be >= 0")
    _check(0.0 < t.lr_factor < 1.0, "train.lr_factor", "must be in (0, 1)")
    _check(t.lr_patience >= 0, "train.lr_patience", "must be >= 0")
    _check(t.min_lr >= 0, "train.min_lr", "must be >= 0")
    _check(t.warmup_steps >= 1, "train.warmup_steps", "must be >= 1")
    if t.patience is not None:
        _check(t.patience >= 1, "train.patience", "must be >= 1 or null")
    _check(t.keep_best >= 1, "train.keep_best", "must be >= 1")
    _check(t.log_examples >= 0, "train.log_examples", "must be >= 0")
    _check(t.keep_last >= 1, "train.keep_last", "must be >= 1")
    _check(
        0.0 <= t.teacher_forcing_min <= t.teacher_forcing,
        "train.teacher_forcing_min",
        "must be in [0, train.teacher_forcing]",
    )
    _check(t.teacher_forcing_steps >= 1, "train.teacher_forcing_steps", "must be >= 1")
    _check(t.teacher_forcing_k >= 1.0, "train.teacher_forcing_k", "must be >= 1")
    _check(
        all(m > 0 for m in t.snapshot_minutes),
        "train.snapshot_minutes",
        "minutes must be > 0",
    )

    _check(t.log_every >= 1, "train.log_every", "must be >= 1")
    _check(d.max_src_len >= 2, "data.max_src_len", "must be >= 2")
    _check(d.max_tgt_len >= 2, "data.max_tgt_len", "must be >= 2")
    _check(tok.vocab_size >= 8, "tokenizer.vocab_size", "must be >= 8")
    _check(
        0.0 < tok.character_coverage <= 1.0,
        "tokenizer.character_coverage",
        "must be in (0, 1]",
    )
    if tok.joint:
        _check(
            tok.src_model is None and tok.tgt_model is None,
            "tokenizer.src_model",
            "per-language models need joint: false (or give tokenizer.model)",
        )
    else:
        _check(
            tok.model is None,
            "tokenizer.model",
            "a joint model needs joint: true (or give src_model and tgt_model)",
        )
        _check(
            (tok.src_model is None) == (tok.tgt_model is None),
            "tokenizer.src_model",
            "give both src_model and tgt_model, or neither",
        )
    for split in ("train", "valid", "test"):
        corpus = getattr(d, split)
        if corpus is None:
            continue
        where = f"data.{split}"
        has_pair = corpus.src is not None or corpus.tgt is not None
        _check(
            not (corpus.tsv is not None and has_pair),
            where,
            f"give either tsv, or src and tgt, not both; to read src and tgt, "
            f"set {where}.tsv to null (on the command line: {where}.tsv=null)",
        )
        if corpus.tsv is None:
            _check(
                corpus.src is not None and corpus.tgt is not None,
                where,
                "give both src and tgt files (or one tsv)",
            )
        _check(
            corpus.src_column != corpus.tgt_column
            and min(corpus.src_column, corpus.tgt_column) >= 0,
            f"{where}.tgt_column",
            "src_column and tgt_column must be different and >= 0",
        )
        if corpus.lines is not None:
            line_range(corpus.lines, f"{where}.lines")
    _check(cfg.decode.batch_size >= 1, "decode.batch_size", "must be >= 1")
    _check(cfg.decode.beam_size >= 1, "decode.beam_size", "must be >= 1")
    _check(cfg.decode.n_best >= 1, "decode.n_best", "must be >= 1")
    _check(
        cfg.decode.n_best <= cfg.decode.beam_size,
        "decode.n_best",
        f"{cfg.decode.n_best} is more than decode.beam_size "
        f"({cfg.decode.beam_size}), the hypotheses a beam keeps; raise "
        "decode.beam_size or lower decode.n_best",
    )
    _check(cfg.decode.length_penalty >= 0, "decode.length_penalty", "must be >= 0")
    _check(cfg.decode.max_len_a >= 0, "decode.max_len_a", "must be >= 0")
    _check(cfg.decode.max_len_b >= 1, "decode.max_len_b", "must be >= 1")


# ---------------------------------------------------------------- loading


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.lr=3e-4"`` -> ``(["train", "lr"], 0.0003)`` (value parsed as YAML)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise UserError(f"override {text!r}: expected key.path=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Return a copy of ``data`` with each ``key.path=value`` set."""
    result = _deep_copy(data)
    for text in overrides:
        keys, value = parse_override(text)
        node = result
        for key in keys[:-1]:
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            if not isinstance(child, dict):
                raise UserError(f"override {text!r}: {key} is not a mapping")
            node = child
        node[keys[-1]] = value
    return result


def _deep_copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _deep_copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deep_copy(v) for v in data]
    return data


def from_dict(data: dict, source: str = "<config>") -> Config:
    """Build and validate a :class:`Config`; errors name ``source`` and the key."""
    try:
        cfg = _build(Config, data, "")
        validate(cfg)
    except UserError as err:
        raise UserError(f"{source}: {err}") from None
    return cfg


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping; syntax errors become one line with the position."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read config ({err})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        if mark is not None:
            raise UserError(
                f"{path}:{mark.line + 1}:{mark.column + 1}: "
                f"YAML syntax error: {problem}"
            ) from None
        raise UserError(f"{path}: YAML syntax error: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: the config must be a mapping of keys to values")
    return data


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Load ``path``, apply ``key.path=value`` overrides, validate.

    An error about a key an override set names that override, not the file.
    """
    overrides = overrides or []
    data = apply_overrides(load_yaml(path), overrides)
    try:
        cfg = _build(Config, data, "")
        validate(cfg)
    except UserError as err:
        raise UserError(f"{_blamed(str(err), str(path), overrides)}: {err}") from None
    return cfg


def _blamed(message: str, path: str, overrides: list[str]) -> str:
    """``override 'train.lrr=3'`` if the last override touching the key path that
    ``message`` starts with set it (or a key inside it), else the config file."""
    key = message.partition(": ")[0]
    for text in reversed(overrides):
        set_key = text.partition("=")[0].strip()
        if any(
            a == b or a.startswith((f"{b}.", f"{b}["))
            for a, b in ((key, set_key), (set_key, key))
        ):
            return f"override {text!r}"
    return path


def line_range(text: str, key: str) -> tuple[int, int]:
    """``"FIRST-LAST"`` -> (FIRST, LAST), 1-based and inclusive."""
    first, dash, last = str(text).partition("-")
    try:
        a, b = int(first), int(last)
    except ValueError:
        a = b = 0
    if not dash or not 1 <= a <= b:
        raise UserError(
            f"{key}: {text!r} is not a line range; write FIRST-LAST with "
            '1 <= FIRST <= LAST, e.g. "4501-5000"'
        )
    return a, b


def to_dict(cfg: Any) -> Any:
    """A plain-data copy of a config (for YAML, checkpoints and TensorBoard)."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, tuple):
        return [to_dict(v) for v in cfg]
    return cfg


def dump_yaml(cfg: Config, path: Path) -> None:
    """Write the resolved config (every key, defaults included)."""
    path.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False), encoding="utf-8")


def replace(cfg: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` for frozen sections."""
    return dataclasses.replace(cfg, **changes)
