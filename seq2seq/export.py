"""Export a trained run to ONNX, and translate with onnxruntime + sentencepiece alone.

``export_onnx(run, directory)`` writes:

- ``encoder.onnx``: ``src`` (B, S) int64, ``src_lengths`` (B,) int64 ->
  ``enc_outputs`` (B, S, C), ``mask`` (B, S) bool, ``keys`` (B, S, A) (only for
  the ``additive`` and ``general`` attention rules), ``hidden`` (layers, B, H) the
  decoder's initial hidden state, ``feed`` (B, P) zeros (only with input feeding).
- ``decoder_step.onnx``: one decoder step, ``prev_tokens`` (B,) int64 and the
  encoder's outputs above (same names) -> ``log_probs`` (B, V), ``weights`` (B, S)
  the attention, ``new_hidden`` (layers, B, H) and ``new_feed`` (B, P) (with input
  feeding): the next step takes ``new_X`` as ``X``.
- the sentencepiece model(s) (``spm.model``, or ``spm.src.model`` +
  ``spm.tgt.model``) and ``config.json`` (special ids, length limits, file names).

B and S are dynamic axes of both graphs. The graphs come from PyTorch's TorchScript
exporter (``dynamo=False``), which maps each encoder layer and direction onto an
ONNX GRU op (the backward direction between two gathers that reverse each sentence
within its length); :func:`export_onnx` checks that they give PyTorch's outputs.

:class:`OnnxTranslator` does greedy search over the two graphs exactly as
:func:`seq2seq.search.greedy_search` does. This module imports torch only inside
:func:`export_onnx`: the translator needs numpy, onnxruntime and sentencepiece.
Beam search (and everything else ``seq2seq translate`` does) runs on an export
through :class:`seq2seq.onnx_model.OnnxModel`, which gives the graphs to the
PyTorch search code: ``seq2seq translate EXPORT_DIR --beam 5``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sentencepiece as spm

from seq2seq.errors import UserError

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3  # as seq2seq.tokenizer
ENCODER_FILE = "encoder.onnx"
STEP_FILE = "decoder_step.onnx"
CONFIG_FILE = "config.json"
FORMAT_VERSION = 1
BATCH_AXIS = {"hidden": 1}  # batch axis of each state tensor; 0 when not listed
CHECK_TOLERANCE = 1e-4  # largest |PyTorch - onnxruntime| accepted by the export


# ---------------------------------------------------------------- export (torch)


def export_onnx(run: str | Path, directory: Path, opset: int = 17) -> list[Path]:
    """Export a run (its best checkpoint) or checkpoint file into ``directory``;
    returns the files written. When onnxruntime is installed, both graphs are
    run on a batch of another size and compared with PyTorch."""
    try:
        import onnx  # noqa: F401  (torch's TorchScript exporter writes through it)
    except ImportError:
        raise UserError(
            "export needs the onnx package: pip install -e '.[export]'"
        ) from None
    import torch

    from seq2seq.inference import load_model

    model, tokenizer, cfg = load_model(run, torch.device("cpu"))
    model.float().eval()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"--onnx {directory}: cannot create ({err.strerror})") from None
    src, src_lengths = _example_batch(2, min(6, model.max_src_len), tokenizer)
    with torch.no_grad():
        encoder, step = _graph_modules(model, src, src_lengths)
        enc_names = encoder.output_names
        enc_values = encoder(src, src_lengths)
        step_args = (torch.full((2,), BOS_ID), *enc_values)
        dynamic = {name: _DYNAMIC_AXES[name] for name in _all_names(encoder, step)}
        with warnings.catch_warnings(), _native_stderr_kept_on_error():
            # The TorchScript exporter is deprecated in favour of dynamo; its
            # tracer warnings concern shapes that the dynamic axes cover, as the
            # check below shows.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                encoder,
                (src, src_lengths),
                str(directory / ENCODER_FILE),
                input_names=["src", "src_lengths"],
                output_names=enc_names,
                dynamic_axes=dynamic,
                opset_version=opset,
                dynamo=False,
            )
            torch.onnx.export(
                step,
                step_args,
                str(directory / STEP_FILE),
                input_names=step.input_names,
                output_names=step.output_names,
                dynamic_axes=dynamic,
                opset_version=opset,
                dynamo=False,
            )
    spm_files = [path.name for path in tokenizer.save(directory)]
    config = {
        "format_version": FORMAT_VERSION,
        "encoder": ENCODER_FILE,
        "decoder_step": STEP_FILE,
        "src_spm": spm_files[0],
        "tgt_spm": spm_files[-1],
        "pad_id": PAD_ID,
        "unk_id": UNK_ID,
        "bos_id": BOS_ID,
        "eos_id": EOS_ID,
        "max_len_a": cfg.decode.max_len_a,
        "max_len_b": cfg.decode.max_len_b,
        "max_src_len": model.max_src_len,
        "batch_size": cfg.decode.batch_size,
        # greedy_search forbids EOS as the first token (no empty translations).
        "min_output_tokens": 1,
        "attention": cfg.model.attention,
        # The run's decoding defaults, for `seq2seq translate EXPORT_DIR`.
        "decode": {
            "beam_size": cfg.decode.beam_size,
            "length_penalty": cfg.decode.length_penalty,
            "n_best": cfg.decode.n_best,
        },
        "state_names": [n for n in enc_names if n in ("hidden", "feed")],
        "opset": opset,
    }
    config_path = directory / CONFIG_FILE
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    _check_against_torch(directory, encoder, step, tokenizer)
    graphs = [directory / ENCODER_FILE, directory / STEP_FILE]
    return graphs + [directory / name for name in spm_files] + [config_path]


@contextlib.contextmanager
def _native_stderr_kept_on_error() -> Iterator[None]:
    """Hold back what native code writes to file descriptor 2 (the exporter's C++
    warnings); write it out only if the block raises."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode("utf-8", errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


_DYNAMIC_AXES = {
    "src": {0: "batch", 1: "src_len"},
    "src_lengths": {0: "batch"},
    "enc_outputs": {0: "batch", 1: "src_len"},
    "mask": {0: "batch", 1: "src_len"},
    "keys": {0: "batch", 1: "src_len"},
    "hidden": {1: "batch"},
    "feed": {0: "batch"},
    "prev_tokens": {0: "batch"},
    "log_probs": {0: "batch"},
    "weights": {0: "batch", 1: "src_len"},
    "new_hidden": {1: "batch"},
    "new_feed": {0: "batch"},
}


def _all_names(*graphs: Any) -> list[str]:
    names = ["src", "src_lengths"]
    for graph in graphs:
        names += getattr(graph, "input_names", []) + graph.output_names
    return list(dict.fromkeys(names))


def _example_batch(batch: int, length: int, tokenizer: Any) -> tuple[Any, Any]:
    """A padded batch of distinct lengths ``length``, ``length - 2``, ...: src (B, S)
    of real piece ids ending in EOS, src_lengths (B,)."""

    from seq2seq.data import collate

    vocab = tokenizer.src_vocab_size
    ids = [
        [4 + (i * 7 + j) % (vocab - 4) for j in range(max(1, length - 2 * i) - 1)]
        + [EOS_ID]
        for i in range(batch)
    ]
    padded = collate(ids, None, list(range(batch)))
    return padded.src, padded.src_lengths


def _graph_modules(model: Any, src: Any, src_lengths: Any) -> tuple[Any, Any]:
    """The two exported computations as modules with flat tensor inputs/outputs;
    which optional tensors exist (keys, feed) is read off the model's output on the
    example batch src (B, S), src_lengths (B,)."""
    import torch
    from torch import nn

    from seq2seq.model import DecoderState, EncoderOutput

    enc = model.encode(src, src_lengths)
    has_keys = enc.keys is not None
    has_feed = model.decoder.initial_state(enc.hidden).feed is not None
    state_names = ["hidden"] + (["feed"] if has_feed else [])
    memory_names = ["enc_outputs", "mask"] + (["keys"] if has_keys else [])

    class EncoderGraph(nn.Module):
        """src (B, S), src_lengths (B,) -> enc_outputs (B, S, C), mask (B, S),
        [keys (B, S, A)], hidden (layers, B, H), [feed (B, P)]."""

        output_names = memory_names + state_names

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple:
            enc = self.model.encode(src, src_lengths)
            state = self.model.decoder.initial_state(enc.hidden)
            values = [enc.outputs, enc.mask]
            if has_keys:
                values.append(enc.keys)
            values.append(state.hidden)
            if has_feed:
                values.append(state.feed)
            return tuple(values)

    class StepGraph(nn.Module):
        """prev_tokens (B,), the encoder graph's outputs -> log_probs (B, V),
        weights (B, S), new_hidden (layers, B, H), [new_feed (B, P)]."""

        input_names = ["prev_tokens"] + memory_names + state_names
        output_names = ["log_probs", "weights"] + [f"new_{n}" for n in state_names]

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, prev_tokens: torch.Tensor, *memory: torch.Tensor) -> tuple:
            named = dict(zip(self.input_names[1:], memory))
            hidden = named["hidden"]
            enc = EncoderOutput(
                named["enc_outputs"], named["mask"], named.get("keys"), hidden
            )
            state = DecoderState(hidden, named.get("feed"))
            out = self.model.decoder.step(prev_tokens, state, enc)
            log_probs = torch.log_softmax(out.logits.float(), dim=-1)  # (B, V)
            values = [log_probs, out.weights.float(), out.state.hidden]
            if has_feed:
                values.append(out.state.feed)
            return tuple(values)

    return EncoderGraph().eval(), StepGraph().eval()


def _check_against_torch(
    directory: Path, encoder: Any, step: Any, tokenizer: Any
) -> None:
    """Run both graphs with onnxruntime on a batch of 3 (the export used 2) and
    compare with PyTorch; raise UserError on a mismatch. Skipped without
    onnxruntime."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return
    import torch

    runner = _OnnxGraphs(directory, threads=1)
    src, src_lengths = _example_batch(3, min(9, encoder.model.max_src_len), tokenizer)
    prev = torch.tensor([BOS_ID, 5, 6])
    with torch.no_grad():
        memory = dict(zip(encoder.output_names, encoder(src, src_lengths)))
        step_out = step(prev, *(memory[n] for n in step.input_names[1:]))
    expected = {**memory, **dict(zip(step.output_names, step_out))}
    got = runner.encode(src.numpy(), src_lengths.numpy())
    got.update(runner.step(prev.numpy(), got))
    for name, value in expected.items():
        diff = np.abs(value.numpy().astype(np.float64) - got[name].astype(np.float64))
        if value.shape != got[name].shape or diff.max() > CHECK_TOLERANCE:
            raise UserError(
                f"export check: onnxruntime's {name} differs from PyTorch's "
                f"(shape {got[name].shape} vs {tuple(value.shape)}, max difference "
                f"{diff.max() if diff.size else 0:.3g})"
            )


# ---------------------------------------------------------------- inference (numpy)


class _OnnxGraphs:
    """The two onnxruntime sessions of an export directory, called by name."""

    def __init__(self, directory: Path, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise ImportError(
                "translating an ONNX export needs onnxruntime: "
                "pip install onnxruntime (or -e '.[export]')"
            ) from err

        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        config = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
        providers = ["CPUExecutionProvider"]
        self.encoder = ort.InferenceSession(
            str(directory / config["encoder"]), options, providers=providers
        )
        self.decoder = ort.InferenceSession(
            str(directory / config["decoder_step"]), options, providers=providers
        )
        self.encoder_outputs = [o.name for o in self.encoder.get_outputs()]
        self.step_inputs = [i.name for i in self.decoder.get_inputs()]
        self.step_outputs = [o.name for o in self.decoder.get_outputs()]

    def encode(self, src: np.ndarray, src_lengths: np.ndarray) -> dict[str, np.ndarray]:
        """src (B, S) int64, src_lengths (B,) int64 -> the encoder's named outputs."""
        values = self.encoder.run(None, {"src": src, "src_lengths": src_lengths})
        return dict(zip(self.encoder_outputs, values))

    def step(
        self, prev_tokens: np.ndarray, memory: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """prev_tokens (B,) int64 + encoder outputs / state -> the step's outputs."""
        feeds = {name: memory[name] for name in self.step_inputs[1:]}
        feeds["prev_tokens"] = prev_tokens
        return dict(zip(self.step_outputs, self.decoder.run(None, feeds)))


class OnnxTranslator:
    """Greedy translation with an :func:`export_onnx` directory; no PyTorch.

    ``translate(lines)`` gives one translation per line, as ``seq2seq translate
    --beam 1`` does: blank lines stay empty, over-long inputs are cut to the
    model's ``max_src_len``, outputs stop at EOS or ``max_len_a * S + max_len_b``.
    """

    def __init__(
        self,
        directory: str | Path,
        batch_size: int | None = None,
        threads: int | None = None,
    ) -> None:
        directory = Path(directory)
        try:
            self.config = json.loads(
                (directory / CONFIG_FILE).read_text(encoding="utf-8")
            )
        except FileNotFoundError:
            raise UserError(f"{directory}: no {CONFIG_FILE} (not an export)") from None
        if self.config.get("format_version") != FORMAT_VERSION:
            raise UserError(
                f"{directory / CONFIG_FILE}: format_version "
                f"{self.config.get('format_version')!r}, expected {FORMAT_VERSION}"
            )
        self.graphs = _OnnxGraphs(directory, threads)
        self.src_spm = spm.SentencePieceProcessor(
            model_file=str(directory / self.config["src_spm"])
        )
        self.tgt_spm = spm.SentencePieceProcessor(
            model_file=str(directory / self.config["tgt_spm"])
        )
        self.batch_size = batch_size or self.config["batch_size"]

    def translate(self, lines: Sequence[str]) -> list[str]:
        """Translations of ``lines``, in order."""
        stripped = [line.strip() for line in lines]
        todo = [i for i, line in enumerate(stripped) if line]
        src_ids = self.encode([stripped[i] for i in todo])
        out_ids = self.greedy(src_ids)
        eos = self.config["eos_id"]
        texts = self.tgt_spm.decode([[i for i in ids if i > eos] for ids in out_ids])
        result = [""] * len(lines)
        for i, text in zip(todo, texts):
            result[i] = text
        return result

    def encode(self, lines: list[str]) -> list[list[int]]:
        """Source lines -> ids ending in EOS, cut to ``max_src_len``."""
        eos, limit = self.config["eos_id"], self.config["max_src_len"]
        ids = [seq + [eos] for seq in self.src_spm.encode(lines)]
        return [seq if len(seq) <= limit else seq[: limit - 1] + [eos] for seq in ids]

    def greedy(self, src_ids: list[list[int]]) -> list[list[int]]:
        """Greedy output ids (no BOS/EOS) of each source, in input order; batches
        of similar lengths as in :func:`seq2seq.data.inference_batches`."""
        order = sorted(range(len(src_ids)), key=lambda i: len(src_ids[i]))
        results: list[list[int]] = [[] for _ in src_ids]
        for start in range(0, len(order), self.batch_size):
            indices = order[start : start + self.batch_size]
            batch = self.greedy_batch([src_ids[i] for i in indices])
            for i, ids in zip(indices, batch):
                results[i] = ids
        return results

    def greedy_batch(self, src_ids: list[list[int]]) -> list[list[int]]:
        """Greedy search on one padded batch; finished sentences leave the batch."""
        cfg = self.config
        lengths = np.array([len(seq) for seq in src_ids], dtype=np.int64)  # (B,)
        src = np.full((len(src_ids), lengths.max()), cfg["pad_id"], dtype=np.int64)
        for row, seq in enumerate(src_ids):
            src[row, : len(seq)] = seq  # (B, S)
        limits = [int(cfg["max_len_a"] * n + cfg["max_len_b"]) for n in lengths]
        memory = self.graphs.encode(src, lengths)
        prev = np.full(len(src_ids), cfg["bos_id"], dtype=np.int64)  # (b,)
        active = list(range(len(src_ids)))  # batch row -> sentence
        tokens: list[list[int]] = [[] for _ in src_ids]
        step = 0
        while active:
            out = self.graphs.step(prev, memory)
            log_probs = out["log_probs"]  # (b, V)
            if step < cfg["min_output_tokens"]:
                log_probs[:, cfg["eos_id"]] = -np.inf
            best = log_probs.argmax(axis=-1)  # (b,)
            keep = []
            for row, sentence in enumerate(active):
                if step >= limits[sentence] or best[row] == cfg["eos_id"]:
                    continue
                tokens[sentence].append(int(best[row]))
                keep.append(row)
            step += 1
            for name in cfg["state_names"]:
                memory[name] = out[f"new_{name}"]
            if len(keep) < len(active):
                rows = np.array(keep, dtype=np.int64)
                memory = {
                    name: value.take(rows, axis=BATCH_AXIS.get(name, 0))
                    for name, value in memory.items()
                }
                active = [active[r] for r in keep]
            prev = best[keep] if keep else best[:0]
        return tokens
