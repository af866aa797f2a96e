"""sentencepiece tokenization: train on the training data, or load given models.

Models are kept as serialized bytes so a checkpoint carries its own tokenizer.
Every model uses the same special ids: pad 0, unk 1, bos 2, eos 3.
"""

from __future__ import annotations

import io
import itertools
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import sentencepiece as spm

from seq2seq.errors import UserError

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3

# sentencepiece trains on at most this many sentences, a uniform sample of the
# corpus (its reservoir sampling, `shuffle_input_sentence`): its memory grows with
# the sentences it holds, not with the corpus.
TRAIN_SENTENCES = 1_000_000
# restrict_to_target: segmentations searched for target-side pieces when sampling
# (every target line is encoded; the n-best search, 8x dearer, sees this many)
RESTRICT_NBEST_SENTENCES = 200_000
ENCODE_CHUNK = 10_000  # lines encoded per sentencepiece call when streaming

log = logging.getLogger(__name__)


def train_sentencepiece(
    sentences: Iterable[str],
    vocab_size: int,
    model_type: str = "unigram",
    character_coverage: float = 1.0,
    seed_sentencepiece_size: int = 200_000,
    max_sentences: int = TRAIN_SENTENCES,
) -> bytes:
    """Train a sentencepiece model on ``sentences`` and return its bytes.

    ``sentences`` is read once, as a stream; sentencepiece keeps a uniform sample
    of at most ``max_sentences`` of them (the count is logged). ``vocab_size`` is
    an upper bound: a corpus too small for it yields fewer pieces instead of
    failing.
    """
    model = io.BytesIO()
    seen = [0]

    def lines() -> Iterator[str]:
        for sentence in sentences:
            if sentence.strip():
                seen[0] += 1
                yield sentence

    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=lines(),
            model_writer=model,
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=character_coverage,
            hard_vocab_limit=False,
            pad_id=PAD_ID,
            unk_id=UNK_ID,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            input_sentence_size=max_sentences,
            shuffle_input_sentence=True,
            seed_sentencepiece_size=seed_sentencepiece_size,
            num_threads=2,
            minloglevel=2,
        )
    except RuntimeError as err:
        raise UserError(f"sentencepiece training failed: {err}") from None
    log.info(
        "sentencepiece: trained on %s of %s sentences%s",
        f"{min(seen[0], max_sentences):,}",
        f"{seen[0]:,}",
        " (a uniform sample)" if seen[0] > max_sentences else "",
    )
    return model.getvalue()


def restrict_to_target(model: bytes, tgt_lines: Iterable[str], nbest: int = 1) -> bytes:
    """The joint model ``model`` cut down to the pieces a target-side model needs:
    those in the best segmentations of ``tgt_lines`` (read once, as a stream) and,
    with ``nbest`` > 1, in the ``nbest`` best of its first
    ``RESTRICT_NBEST_SENTENCES`` lines, every single
    character (so any text still encodes), and the special pieces. A BPE model,
    or one the targets use whole, comes back unchanged.

    The pieces keep their order and scores, so the special ids stay and the target
    training text segments exactly as under the joint model; the decoder's output
    layer then spans only pieces the target language uses.
    """
    joint = _processor(model, "joint tokenizer")
    try:  # protobuf, loaded on use; its runtime must match sentencepiece's gencode
        from sentencepiece import sentencepiece_model_pb2
    except Exception as err:  # ImportError, protobuf's VersionError
        log.warning(
            "tokenizer.restrict_target_vocab: cannot edit the sentencepiece model "
            "(%s); the target side keeps all %d pieces",
            err,
            joint.get_piece_size(),
        )
        return model
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(model)
    if proto.trainer_spec.model_type == proto.trainer_spec.BPE:
        # BPE reaches a piece through merges of smaller ones: cutting those would
        # segment the targets differently, so a BPE model stays whole.
        log.info("tokenizer.restrict_target_vocab: BPE models keep all their pieces")
        return model
    seen: set[int] = set()
    searched = 0
    for chunk in _chunks(tgt_lines, ENCODE_CHUNK):
        for ids in joint.encode(chunk):
            seen.update(ids)
        if nbest > 1 and searched < RESTRICT_NBEST_SENTENCES:
            searched += len(chunk)
            try:
                for candidates in joint.nbest_encode(chunk, nbest_size=nbest):
                    for ids in candidates:
                        seen.update(ids)
            except RuntimeError:  # not a unigram model: sampling reports it later
                searched = RESTRICT_NBEST_SENTENCES
    normal = sentencepiece_model_pb2.ModelProto.SentencePiece.NORMAL
    kept = [
        piece
        for i, piece in enumerate(proto.pieces)
        if piece.type != normal or i in seen or len(piece.piece) == 1
    ]
    if len(kept) == len(proto.pieces):
        return model  # nothing to cut: the tokenizer stays joint
    del proto.pieces[:]
    proto.pieces.extend(kept)
    proto.trainer_spec.vocab_size = len(kept)
    return proto.SerializeToString()


def _chunks(lines: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(lines)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _processor(model: bytes, name: str) -> spm.SentencePieceProcessor:
    sp = spm.SentencePieceProcessor()
    try:
        sp.LoadFromSerializedProto(model)
    except (RuntimeError, OSError) as err:
        raise UserError(f"{name}: not a sentencepiece model ({err})") from None
    expected = {"pad": PAD_ID, "unk": UNK_ID, "bos": BOS_ID, "eos": EOS_ID}
    actual = {
        "pad": sp.pad_id(),
        "unk": sp.unk_id(),
        "bos": sp.bos_id(),
        "eos": sp.eos_id(),
    }
    if actual != expected:
        raise UserError(
            f"{name}: special ids {actual} differ from {expected}; train the model "
            "with pad_id=0 unk_id=1 bos_id=2 eos_id=3, or let `seq2seq train` do it"
        )
    return sp


class Tokenizer:
    """Source and target sentencepiece models (the same one when joint).

    ``encode_src`` returns piece ids followed by EOS; ``encode_tgt`` returns piece
    ids without BOS/EOS (the data pipeline adds them).
    """

    def __init__(self, src_model: bytes, tgt_model: bytes | None = None) -> None:
        self.src_model = src_model
        self.tgt_model = tgt_model if tgt_model is not None else src_model
        self.joint = tgt_model is None or tgt_model == src_model
        self.src = _processor(self.src_model, "source tokenizer")
        self.tgt = (
            self.src if self.joint else _processor(self.tgt_model, "target tokenizer")
        )
        self._piece_scores: dict[str, list[float]] = {}

    @property
    def src_vocab_size(self) -> int:
        return self.src.get_piece_size()

    @property
    def tgt_vocab_size(self) -> int:
        return self.tgt.get_piece_size()

    def encode_src(self, lines: list[str]) -> list[list[int]]:
        """Source sentences -> ids, each ending with EOS."""
        return [ids + [EOS_ID] for ids in self.src.encode(lines)]

    def encode_tgt(self, lines: list[str]) -> list[list[int]]:
        """Target sentences -> ids (no BOS/EOS)."""
        return self.tgt.encode(lines)

    def nbest(
        self, lines: list[str], side: str, n: int
    ) -> list[list[tuple[list[int], float]]]:
        """The ``n`` best segmentations of each ``side`` ("src" or "tgt") sentence
        (ids without EOS/BOS), each with its log-probability under the unigram
        model, best first. Deterministic, unlike sentencepiece's own sampler."""
        processor = self.src if side == "src" else self.tgt
        try:
            nbest = processor.nbest_encode(lines, nbest_size=n)
        except RuntimeError:  # "NBestEncode is not available for the current model"
            model = "source" if side == "src" else "target"
            raise UserError(
                f"tokenizer.sampling_alpha: the {model} sentencepiece model is not a "
                "unigram model; subword sampling needs one (or sampling_alpha: 0)"
            ) from None
        scores = self._scores(side)
        return [
            [(ids, sum(map(scores.__getitem__, ids))) for ids in candidates]
            for candidates in nbest
        ]

    def _scores(self, side: str) -> list[float]:
        """Every piece's log-probability (read once per side)."""
        if side not in self._piece_scores:
            processor = self.src if side == "src" else self.tgt
            size = processor.get_piece_size()
            self._piece_scores[side] = [processor.get_score(i) for i in range(size)]
        return self._piece_scores[side]

    def decode_tgt(self, ids: list[list[int]]) -> list[str]:
        """Target ids (specials removed first) -> detokenized text."""
        return self.tgt.decode([[i for i in seq if i > EOS_ID] for seq in ids])

    def src_pieces(self, line: str) -> list[str]:
        return self.src.encode(line, out_type=str) + ["</s>"]

    def tgt_pieces(self, ids: list[int]) -> list[str]:
        return [self.tgt.id_to_piece(i) for i in ids]

    def save(self, run_dir: Path) -> list[Path]:
        """Write ``spm.model`` (joint) or ``spm.src.model`` + ``spm.tgt.model``."""
        if self.joint:
            paths = [run_dir / "spm.model"]
            paths[0].write_bytes(self.src_model)
        else:
            paths = [run_dir / "spm.src.model", run_dir / "spm.tgt.model"]
            paths[0].write_bytes(self.src_model)
            paths[1].write_bytes(self.tgt_model)
        return paths


def read_model_file(path: str | Path, key: str) -> bytes:
    path = Path(path)
    try:
        return path.read_bytes()
    except OSError as err:
        raise UserError(
            f"{key}: cannot read sentencepiece model {path} ({err.strerror})"
        ) from None


def build_tokenizer(
    tok_cfg,
    src_lines: Iterable[str] | None = None,
    tgt_lines: Iterable[str] | None = None,
    resolve=lambda p: Path(p),
) -> Tokenizer:
    """Load the models the config names, or train them on the given lines.

    ``tok_cfg`` is a :class:`~seq2seq.config.TokenizerConfig`; ``resolve`` maps a
    configured path to a file path. A joint model's target side is cut down to the
    target language's pieces (``restrict_target_vocab``) when the lines are given.
    The lines are read as streams (``tgt_lines`` twice: it must be a list or
    another iterable that starts over, such as
    :class:`seq2seq.prepared.CorpusSide`).
    """
    if tok_cfg.src_model is not None:
        return Tokenizer(
            read_model_file(resolve(tok_cfg.src_model), "tokenizer.src_model"),
            read_model_file(resolve(tok_cfg.tgt_model), "tokenizer.tgt_model"),
        )
    if tok_cfg.model is not None:
        joint = read_model_file(resolve(tok_cfg.model), "tokenizer.model")
        if tgt_lines is None:
            return Tokenizer(joint)
    else:
        assert src_lines is not None and tgt_lines is not None
        kwargs = dict(
            vocab_size=tok_cfg.vocab_size,
            model_type=tok_cfg.model_type,
            character_coverage=tok_cfg.character_coverage,
        )
        if not tok_cfg.joint:
            log.info("training source and target sentencepiece models")
            return Tokenizer(
                train_sentencepiece(src_lines, **kwargs),
                train_sentencepiece(tgt_lines, **kwargs),
            )
        log.info("training a joint sentencepiece model (vocab %d)", tok_cfg.vocab_size)
        joint = train_sentencepiece(_chain(src_lines, tgt_lines), **kwargs)
    if not tok_cfg.restrict_target_vocab:
        return Tokenizer(joint)
    nbest = tok_cfg.sampling_nbest if tok_cfg.sampling_alpha else 1
    tokenizer = Tokenizer(joint, restrict_to_target(joint, tgt_lines, nbest))
    if not tokenizer.joint:
        log.info(
            "target side: %d of the joint model's %d pieces",
            tokenizer.tgt_vocab_size,
            tokenizer.src_vocab_size,
        )
    return tokenizer


def _chain(*iterables: Iterable[str]) -> Iterator[str]:
    for it in iterables:
        yield from it
