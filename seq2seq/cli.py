"""Command line: ``seq2seq train | evaluate | translate | serve | export | data ...``.

Expected failures print ``error: <one line>`` on stderr and exit with status 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import os
import sys
from pathlib import Path

from seq2seq import __version__
from seq2seq.errors import UserError

log = logging.getLogger("seq2seq")


def _add_decoding_arguments(
    parser: argparse.ArgumentParser, batches: bool = True
) -> None:
    """The model and decoding options; ``batches`` False (serve) leaves out
    --batch-size and --quiet."""
    parser.add_argument(
        "--ensemble",
        action="append",
        default=[],
        metavar="RUN",
        help="decode with this run's (or checkpoint's) model too, averaging the "
        "models' next-token probabilities at each step; repeat for more models. "
        "They must share the first run's sentencepiece models; decoding settings "
        "come from the first run",
    )
    parser.add_argument(
        "--beam",
        type=int,
        default=None,
        metavar="N",
        help="beam size, 1: greedy search (default: the run's decode.beam_size)",
    )
    parser.add_argument(
        "--alpha",
        type=float,
        default=None,
        help="beam search length penalty, >= 0 (0: none; default: the run's "
        "decode.length_penalty)",
    )
    if batches:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            metavar="N",
            help="sentences per batch (default: the run's decode.batch_size)",
        )
    parser.add_argument(
        "--amp",
        choices=["auto", "none", "bf16", "fp16"],
        default="none",
        help="decode under autocast: none (default, fp32), bf16, fp16 (CUDA), "
        "auto (bf16 on CPUs with native bf16)",
    )
    if batches:
        parser.add_argument(
            "--quiet",
            action="store_true",
            help="no progress bar (shown on stderr only when it is a terminal)",
        )
    parser.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu", "cuda"],
        help="where to run (default auto: CUDA when present)",
    )


def _add_translate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input", metavar="FILE", help="translate this file (plain or .gz), streamed"
    )
    parser.add_argument(
        "--output", metavar="FILE", help="write here (.gz: compressed), not stdout"
    )
    parser.add_argument(
        "--format",
        choices=["text", "jsonl"],
        default="text",
        help="text (default), or one JSON object per input line with score, "
        "tokens and attention",
    )
    parser.add_argument(
        "--n-best",
        type=int,
        default=None,
        metavar="K",
        help="print the K best translations of each line (K <= --beam; default: "
        "the run's decode.n_best, at most --beam)",
    )
    parser.add_argument(
        "--show-scores",
        action="store_true",
        help="text format: append <TAB>score to each translation (jsonl always "
        "carries the scores)",
    )
    parser.add_argument(
        "--show-attention",
        action="store_true",
        help="text format: print each translation's attention under it as a "
        "shaded grid (target subwords down, source across), one per n-best "
        "alternative (jsonl always carries the best one's attention)",
    )
    parser.add_argument(
        "--plot-attention",
        metavar="DIR",
        help="save an attention heatmap per translated line: DIR/0001.png, ...",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seq2seq",
        description="GRU encoder + attention decoder machine translation.",
    )
    parser.add_argument("--version", action="version", version=f"seq2seq {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks for errors"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a model from a YAML config")
    p.add_argument("config", help="YAML config file")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="key.path=value",
        help="override config keys, e.g. train.lr=3e-4 run_dir=runs/x",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from the run directory's latest checkpoint",
    )
    p.add_argument(
        "--quiet", action="store_true", help="no progress bar or progress lines"
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the resolved config, data statistics, vocabulary sizes, "
        "parameter count and estimated time per epoch; train nothing",
    )

    p = sub.add_parser(
        "validate",
        help="check a config and every file it names (corpora, tokenizer models) "
        "without training",
    )
    p.add_argument("config", help="YAML config file")
    p.add_argument(
        "overrides", nargs="*", metavar="key.path=value", help="as for train"
    )

    p = sub.add_parser("evaluate", help="translate held-out data and print sacreBLEU")
    p.add_argument("run", help="run directory (its best checkpoint) or checkpoint file")
    p.add_argument("--src", help="source file (plain or .gz), one sentence a line")
    p.add_argument("--ref", help="reference file, line-aligned with --src")
    p.add_argument(
        "--split",
        choices=["train", "valid", "test"],
        help="a split from the run's config (default: test)",
    )
    p.add_argument("--output", help="write the translations to this file")
    p.add_argument(
        "--metrics",
        nargs="+",
        choices=["bleu", "chrf", "ter"],
        default=["bleu"],
        metavar="METRIC",
        help="sacreBLEU metrics to compute: bleu (default), chrf, ter; several "
        "may follow (--metrics bleu chrf ter)",
    )
    p.add_argument(
        "--format",
        choices=["text", "json"],
        default="text",
        help="text (default): each metric's sacreBLEU line and signature; json: "
        "one object with each metric's score and signature, the hypothesis file "
        "and the decoding settings",
    )
    _add_decoding_arguments(p)

    p = sub.add_parser("translate", help="translate sentences (arguments or stdin)")
    p.add_argument(
        "run",
        help="run directory (its best checkpoint), checkpoint file, or a directory "
        "written by `seq2seq export --onnx` (decoded with onnxruntime)",
    )
    p.add_argument(
        "sentences",
        nargs="*",
        help="sentences to translate; none: read --input or stdin, one per line "
        "(a prompt when stdin is a terminal)",
    )
    _add_decoding_arguments(p)
    _add_translate_arguments(p)

    p = sub.add_parser(
        "serve",
        help="translate over HTTP (POST /translate), batching concurrent requests",
    )
    p.add_argument(
        "run",
        help="run directory (its best checkpoint), checkpoint file, or ONNX export",
    )
    _add_decoding_arguments(p, batches=False)
    from seq2seq.serve import add_serve_arguments

    add_serve_arguments(p)

    p = sub.add_parser("export", help="export a run for inference without PyTorch")
    p.add_argument("run", help="run directory (its best checkpoint) or checkpoint file")
    p.add_argument(
        "--onnx",
        required=True,
        metavar="DIR",
        help="write encoder.onnx, decoder_step.onnx, config.json and the "
        "sentencepiece model(s) here",
    )
    p.add_argument(
        "--opset", type=int, default=17, help="ONNX opset version (default 17)"
    )

    p = sub.add_parser(
        "average", help="average the weights of a run's best checkpoints"
    )
    p.add_argument("run", help="run directory trained with train.keep_best >= N")
    p.add_argument(
        "--best",
        type=int,
        default=5,
        metavar="N",
        help="how many best checkpoints (default 5)",
    )
    p.add_argument("--output", help="default: RUN/checkpoints/averaged.pt")

    p = sub.add_parser("data", help="dataset tools")
    data_sub = p.add_subparsers(
        dest="data_command", required=True, metavar="DATA_COMMAND"
    )
    from seq2seq.download import add_download_arguments

    add_download_arguments(data_sub.add_parser("download", help="download a corpus"))
    from seq2seq.stats import add_stats_arguments

    add_stats_arguments(
        data_sub.add_parser("stats", help="lengths, unknowns and filtering per split")
    )
    from seq2seq.prepared import add_prepare_arguments

    add_prepare_arguments(
        data_sub.add_parser(
            "prepare", help="tokenize train and valid once into the data cache"
        )
    )
    return parser


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False


def _check_decoding_arguments(args: argparse.Namespace) -> None:
    """One-line errors for decoding options out of range, before loading a model."""
    if args.beam is not None and args.beam < 1:
        raise UserError(f"--beam {args.beam}: must be >= 1")
    if args.alpha is not None and not (0 <= args.alpha < math.inf):
        raise UserError(
            f"--alpha {args.alpha:g}: the length penalty must be a number >= 0 "
            "(0: none; GNMT uses 0.6 to 1.0)"
        )
    if getattr(args, "batch_size", None) is not None and args.batch_size < 1:
        raise UserError(f"--batch-size {args.batch_size}: must be >= 1")


def _load_for_decoding(args: argparse.Namespace):
    """(model, tokenizer, decode settings, device, amp dtype, config) of
    ``args.run`` (with ``--ensemble``), or of an ONNX export directory (then the
    config is None)."""
    from seq2seq.device import resolve_device
    from seq2seq.inference import load_ensemble
    from seq2seq.precision import autocast_dtype

    if Path(args.run).is_dir() and (Path(args.run) / "config.json").is_file():
        from seq2seq.onnx_model import is_export, load_export

        if is_export(args.run):
            if args.ensemble:
                raise UserError(
                    f"--ensemble: {args.run} is an ONNX export, which decodes "
                    "alone; ensemble run directories or checkpoints instead"
                )
            if args.amp != "none" or args.device == "cuda":
                raise UserError(
                    f"{args.run} is an ONNX export: it decodes in fp32 on the CPU "
                    "(drop --amp and --device cuda)"
                )
            model, tokenizer, decode = load_export(args.run)
            return model, tokenizer, decode, _cpu(), None, None
    device = resolve_device(args.device)
    model, tokenizer, cfg = load_ensemble([args.run, *args.ensemble], device)
    amp_dtype = autocast_dtype(args.amp, device, "--amp")
    return model, tokenizer, cfg.decode, device, amp_dtype, cfg


def _cpu():
    import torch

    return torch.device("cpu")


def _translator(args: argparse.Namespace):
    from seq2seq.config import replace
    from seq2seq.inference import Translator

    _check_decoding_arguments(args)
    model, tokenizer, decode, device, amp_dtype, cfg = _load_for_decoding(args)
    if args.beam is None:
        args.beam = decode.beam_size
    if args.alpha is None:
        args.alpha = decode.length_penalty
    if args.batch_size is not None:
        decode = replace(decode, batch_size=args.batch_size)
    return Translator(
        model,
        tokenizer,
        decode,
        device,
        amp_dtype,
        beam_size=args.beam,
        alpha=args.alpha,
    ), cfg


def cmd_train(args: argparse.Namespace) -> int:
    from seq2seq.config import load_config, replace
    from seq2seq.distributed import is_main_process
    from seq2seq.preflight import require_corpora
    from seq2seq.train import train

    cfg = load_config(args.config, args.overrides)
    require_corpora(cfg)  # before the run directory exists: nothing left behind
    # Store an absolute data root so evaluate works from any directory later.
    cfg = replace(cfg, data=replace(cfg.data, root=str(Path(cfg.data.root).resolve())))
    if args.dry_run:
        from seq2seq.dryrun import dry_run

        print(dry_run(cfg))
        return 0
    state = train(cfg, resume=args.resume, progress=False if args.quiet else None)
    if is_main_process():  # under torchrun, rank 0 reports
        best = (
            f"best valid BLEU {state.best_bleu:.2f} at step {state.best_step}"
            if state.history
            else "not validated yet"
        )
        print(
            f"done: {state.step} steps, {state.train_seconds / 60:.1f} min; {best}; "
            f"checkpoints in {Path(cfg.run_dir) / 'checkpoints'}"
            + (
                f"; {state.skipped_batches} batches skipped (non-finite loss)"
                if state.skipped_batches
                else ""
            )
        )
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from seq2seq.config import load_config
    from seq2seq.preflight import check_files, summary

    cfg = load_config(args.config, args.overrides)
    print(summary(args.config, check_files(cfg)))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from seq2seq.inference import evaluate_files, read_eval_data, score_record
    from seq2seq.progress import progress_bar

    translator, cfg = _translator(args)
    if cfg is None and args.src is None:
        raise UserError(
            f"{args.run} is an ONNX export, which names no data: give --src and --ref"
        )
    sources, refs = read_eval_data(cfg, args.src, args.ref, args.split)
    with progress_bar(len(sources), "translate", _bars(args)) as update:
        translator.on_batch = update
        hypotheses, scores = evaluate_files(
            translator, sources, refs, list(dict.fromkeys(args.metrics))
        )
    if args.output:
        try:
            Path(args.output).write_text(
                "".join(h + "\n" for h in hypotheses), encoding="utf-8"
            )
        except OSError as err:
            raise UserError(
                f"--output {args.output}: cannot write ({err.strerror})"
            ) from None
    if args.format == "json":
        decode = translator.decode
        report = {
            "metrics": {name: score_record(s) for name, s in scores.items()},
            "hypotheses": args.output,
            "sentences": len(hypotheses),
            "source": args.src or f"the run's {args.split or 'test'} split",
            "reference": args.ref or f"the run's {args.split or 'test'} split",
            "decoding": {
                "run": args.run,
                "ensemble": args.ensemble,
                "beam": translator.beam_size,
                "alpha": translator.alpha,
                "max_len_a": decode.max_len_a,
                "max_len_b": decode.max_len_b,
                "batch_size": decode.batch_size,
                "amp": args.amp,
                "device": str(translator.device),
            },
        }
        print(json.dumps(report, indent=1, ensure_ascii=False))
        return 0
    for score in scores.values():
        print(score.text)
        print(score.signature)
    return 0


def cmd_translate(args: argparse.Namespace) -> int:
    from seq2seq.data import iter_lines
    from seq2seq.inference import TranslationWriter, count_lines, open_output
    from seq2seq.progress import is_terminal, progress_bar

    if args.sentences and args.input is not None:
        raise UserError("translate: give sentences or --input FILE, not both")
    if args.n_best is not None and args.n_best < 1:
        raise UserError(f"--n-best {args.n_best}: must be >= 1")
    translator, _ = _translator(args)
    if args.n_best is None:
        args.n_best = min(translator.decode.n_best, translator.beam_size)
    if args.n_best > translator.beam_size:
        raise UserError(
            f"--n-best {args.n_best} is larger than --beam {translator.beam_size}"
        )
    translator.n_best = args.n_best
    text_only = [
        flag
        for flag, given in (
            ("--show-scores", args.show_scores),
            ("--show-attention", args.show_attention),
        )
        if given
    ]
    if args.format == "jsonl" and text_only:
        # Nothing is dropped: each JSON line has them; say so instead of ignoring.
        log.info(
            "note: %s: for --format text; each JSON line always carries the "
            "score, the n-best scores and the attention",
            " and ".join(text_only),
        )
    plot_dir = None
    if args.plot_attention is not None:
        plot_dir = Path(args.plot_attention)
        try:
            plot_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(
                f"--plot-attention {plot_dir}: cannot create ({err.strerror})"
            ) from None
    interactive = (
        not args.sentences
        and args.input is None
        and args.output is None
        and _stdin_is_terminal()
    )
    with open_output(args.output) as out:
        writer = TranslationWriter(
            out,
            translator.tokenizer,
            args.format,
            args.show_scores,
            plot_dir,
            flush=args.output is None,
            show_attention=args.show_attention,
        )
        if interactive:
            from seq2seq.interactive import run_repl

            return run_repl(translator, writer)
        total = None
        if args.sentences:
            lines = args.sentences
            total = len(lines)
        elif args.input is not None:
            lines = iter_lines(Path(args.input))
        else:
            # Undecodable bytes become U+FFFD instead of killing the stream; only
            # "\n" ends a line (a stray "\r" inside a line must not split it).
            lines = io.TextIOWrapper(
                sys.stdin.buffer, encoding="utf-8", errors="replace", newline="\n"
            )
        # A bar only where it cannot mix with the translations on a terminal.
        bars = _bars(args) and (args.output is not None or not is_terminal(sys.stdout))
        if bars and args.input is not None:
            total = count_lines(Path(args.input))
        with progress_bar(total, "translate", bars) as update:
            translator.on_batch = update
            for translation in translator.stream_translations(
                lines,
                chunk=translator.decode.batch_size * 8,
                return_attention=writer.needs_attention,
            ):
                writer.write(translation)
    return 0


def _bars(args: argparse.Namespace) -> bool:
    from seq2seq.progress import bars_enabled

    return bars_enabled(False if args.quiet else None)


def _stdin_is_terminal() -> bool:
    from seq2seq.progress import is_terminal

    return is_terminal(sys.stdin)


def cmd_serve(args: argparse.Namespace) -> int:
    from seq2seq.serve import serve_command

    _check_decoding_arguments(args)  # before the decoding process starts
    return serve_command(args, load_for_serving)


def load_for_serving(args: argparse.Namespace):
    """What ``serve`` decodes with (module level: the decoding process calls it;
    ``cmd_serve`` checked the decoding arguments already)."""
    return _load_for_decoding(args)


def cmd_export(args: argparse.Namespace) -> int:
    from seq2seq.export import export_onnx

    for path in export_onnx(args.run, Path(args.onnx), opset=args.opset):
        print(path)
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    if args.data_command == "prepare":
        from seq2seq.prepared import run_prepare

        return run_prepare(args)
    if args.data_command == "stats":
        from seq2seq.stats import run_stats

        return run_stats(args)
    from seq2seq.download import run_download

    return run_download(args)


def cmd_average(args: argparse.Namespace) -> int:
    from seq2seq import checkpoint as ckpt

    if args.best < 1:
        raise UserError(f"--best {args.best}: must be >= 1")
    run = Path(args.run)
    paths = ckpt.best_checkpoints(run, args.best)
    output = ckpt.checkpoint_dir(run) / "averaged.pt"
    if args.output:
        output = Path(args.output)
    ckpt.save_checkpoint(ckpt.average_checkpoints(paths), output)
    print(f"averaged {len(paths)} checkpoints -> {output}")
    return 0


COMMANDS = {
    "average": cmd_average,
    "train": cmd_train,
    "validate": cmd_validate,
    "evaluate": cmd_evaluate,
    "translate": cmd_translate,
    "serve": cmd_serve,
    "export": cmd_export,
    "data": cmd_data,
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # Overrides may follow options (`train CFG --resume a.b=1`); argparse leaves
    # those over.
    if getattr(args, "overrides", None) is not None and all(
        "=" in e and not e.startswith("-") for e in extra
    ):
        args.overrides += extra
    # So may sentences (`translate RUN --beam 5 "Ein Satz."`).
    elif getattr(args, "sentences", None) is not None and all(
        not e.startswith("-") for e in extra
    ):
        args.sentences += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    _configure_logging()
    try:
        return COMMANDS[args.command](args)
    except UserError as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout went away (`... | head -1`): stop quietly, as other
        # filters do, and send what Python flushes at exit to /dev/null.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a filter cut short


if __name__ == "__main__":
    sys.exit(main())
