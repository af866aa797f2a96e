"""An ONNX export (:func:`seq2seq.export.export_onnx`) as a model the searches take.

:class:`OnnxModel` has the three methods :func:`seq2seq.search.greedy_search` and
:func:`seq2seq.search.beam_search` call on a :class:`~seq2seq.model.Seq2Seq`
(``encode``, ``initial_state``, ``step``), each running the export's onnxruntime
graphs, so ``seq2seq translate EXPORT_DIR --beam 5`` decodes with the same search
code as the PyTorch model. The graphs' tensors travel as CPU torch tensors between
steps (the search reorders beams with ``index_select``) and as numpy arrays into
onnxruntime. For inference without PyTorch, :class:`seq2seq.export.OnnxTranslator`
does greedy search on numpy alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import torch

from seq2seq.config import DecodeConfig
from seq2seq.errors import UserError
from seq2seq.export import (
    BATCH_AXIS,
    CONFIG_FILE,
    ENCODER_FILE,
    FORMAT_VERSION,
    STEP_FILE,
    _OnnxGraphs,
)
from seq2seq.model import StepOutput
from seq2seq.tokenizer import Tokenizer


class OnnxTensors(NamedTuple):
    """Named graph tensors (the encoder's memory, or the decoder state), each with
    its batch axis on 0 except ``hidden`` (layers, B, H)."""

    tensors: dict[str, torch.Tensor]

    def select(self, rows: torch.Tensor) -> OnnxTensors:
        """Keep (or repeat, or reorder) batch rows."""
        return OnnxTensors(
            {
                name: value.index_select(BATCH_AXIS.get(name, 0), rows)
                for name, value in self.tensors.items()
            }
        )


class OnnxModel:
    """An export directory's encoder and decoder-step graphs behind the interface
    of :class:`~seq2seq.model.Seq2Seq` that the searches use (CPU only).

    ``step`` returns log-probabilities as logits: the searches' log_softmax leaves
    them as they are (up to rounding).
    """

    def __init__(self, directory: str | Path, threads: int | None = None) -> None:
        directory = Path(directory)
        self.config = read_export_config(directory)
        self.graphs = _OnnxGraphs(directory, threads)
        self.state_names: list[str] = self.config["state_names"]
        self.max_src_len: int = self.config["max_src_len"]

    def eval(self) -> OnnxModel:
        """Nothing to switch: the graphs were exported in evaluation mode."""
        return self

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> OnnxTensors:
        """src (B, S), src_lengths (B,) -> the encoder graph's memory and the
        decoder's initial state (``hidden``, ``feed``)."""
        outputs = self.graphs.encode(
            src.cpu().numpy().astype("int64"), src_lengths.cpu().numpy().astype("int64")
        )
        return OnnxTensors({n: torch.from_numpy(v) for n, v in outputs.items()})

    def initial_state(self, enc: OnnxTensors) -> OnnxTensors:
        """The decoder state before the first step, as the encoder graph gave it."""
        return OnnxTensors({name: enc.tensors[name] for name in self.state_names})

    def step(
        self, prev_tokens: torch.Tensor, state: OnnxTensors, enc: OnnxTensors
    ) -> StepOutput:
        """prev_tokens (B,) -> log-probabilities (B, V), the new state, attention
        weights (B, S)."""
        feeds = {**enc.tensors, **state.tensors}
        out = self.graphs.step(
            prev_tokens.cpu().numpy().astype("int64"),
            {name: value.numpy() for name, value in feeds.items()},
        )
        new_state = OnnxTensors(
            {name: torch.from_numpy(out[f"new_{name}"]) for name in self.state_names}
        )
        return StepOutput(
            torch.from_numpy(out["log_probs"]),
            new_state,  # type: ignore[arg-type]
            torch.from_numpy(out["weights"]),
        )


def is_export(path: str | Path) -> bool:
    """Whether ``path`` is an :func:`~seq2seq.export.export_onnx` directory."""
    path = Path(path)
    return (path / CONFIG_FILE).is_file() and (path / ENCODER_FILE).is_file()


def read_export_config(directory: Path) -> dict:
    """An export's ``config.json``; a one-line error when it is missing or of
    another format version."""
    try:
        config = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{directory}: no {CONFIG_FILE} (not an export)") from None
    except (OSError, ValueError) as err:
        raise UserError(f"{directory / CONFIG_FILE}: cannot read ({err})") from None
    if config.get("format_version") != FORMAT_VERSION:
        raise UserError(
            f"{directory / CONFIG_FILE}: format_version "
            f"{config.get('format_version')!r}, expected {FORMAT_VERSION}"
        )
    if not (directory / STEP_FILE).is_file():
        raise UserError(f"{directory}: no {STEP_FILE}; export the run again")
    return config


def load_export(
    directory: str | Path, threads: int | None = None
) -> tuple[OnnxModel, Tokenizer, DecodeConfig]:
    """The model, tokenizer and decoding settings of an export directory.

    Exports written before the decoding settings were stored in ``config.json``
    get :class:`~seq2seq.config.DecodeConfig`'s defaults for beam size, length
    penalty and n-best.
    """
    directory = Path(directory)
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise UserError(
            f"{directory}: translating an ONNX export needs onnxruntime: "
            "pip install -e '.[export]'"
        ) from None
    model = OnnxModel(directory, threads)
    config = model.config
    src = (directory / config["src_spm"]).read_bytes()
    tgt = (directory / config["tgt_spm"]).read_bytes()
    tokenizer = Tokenizer(src, None if tgt == src else tgt)
    defaults = DecodeConfig()
    stored = config.get("decode", {})
    decode = DecodeConfig(
        batch_size=config["batch_size"],
        max_len_a=config["max_len_a"],
        max_len_b=config["max_len_b"],
        beam_size=stored.get("beam_size", defaults.beam_size),
        length_penalty=stored.get("length_penalty", defaults.length_penalty),
        n_best=stored.get("n_best", defaults.n_best),
    )
    return model, tokenizer, decode
