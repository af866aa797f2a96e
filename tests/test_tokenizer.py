"""The joint model's target side cut down to the target language's pieces."""

from __future__ import annotations

import gzip
from dataclasses import replace

import pytest

from seq2seq.config import TokenizerConfig
from seq2seq.tokenizer import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    Tokenizer,
    build_tokenizer,
    restrict_to_target,
    train_sentencepiece,
)
from tests.conftest import SHARED_DATA

MULTI30K = SHARED_DATA / "multi30k"
pytestmark = pytest.mark.skipif(
    not MULTI30K.is_dir(), reason=f"Multi30k not found at {MULTI30K}"
)


def _lines(name: str, n: int = 3000) -> list[str]:
    with gzip.open(MULTI30K / name, "rt", encoding="utf-8") as f:
        return [next(f).strip() for _ in range(n)]


@pytest.fixture(scope="module")
def corpus() -> tuple[list[str], list[str]]:
    return _lines("train.de.gz"), _lines("train.en.gz")


@pytest.fixture(scope="module")
def joint(corpus) -> bytes:
    de, en = corpus
    return train_sentencepiece(de + en, 2000)


def test_target_side_keeps_the_target_pieces_and_segments_targets_the_same(
    corpus, joint
):
    de, en = corpus
    both = Tokenizer(joint, restrict_to_target(joint, en))
    full = Tokenizer(joint)
    assert both.src_vocab_size == full.src_vocab_size == 2000
    assert 0.3 * 2000 < both.tgt_vocab_size < 0.8 * 2000
    # Same segmentation of every training target, piece by piece.
    pieces = lambda tok, ids: [tok.tgt_pieces(s) for s in ids]  # noqa: E731
    assert pieces(both, both.encode_tgt(en)) == pieces(full, full.encode_tgt(en))
    assert both.decode_tgt(both.encode_tgt(en[:50])) == en[:50]
    # The special ids stay; German-only pieces are gone from the target side.
    for i, piece in [(PAD_ID, "<pad>"), (UNK_ID, "<unk>"), (BOS_ID, "<s>")]:
        assert both.tgt.id_to_piece(i) == piece
    assert both.tgt.id_to_piece(EOS_ID) == "</s>"
    german = {p for s in full.src.encode(de, out_type=str) for p in s if len(p) > 2}
    english = {p for s in full.tgt.encode(en, out_type=str) for p in s}
    gone = german - english
    assert gone and all(both.tgt.piece_to_id(p) == UNK_ID for p in gone)
    # Unseen words still encode, from the single characters that are all kept.
    text = "Zwölf Kängurus übten Jodeln."
    ids = both.encode_tgt([text])[0]
    assert UNK_ID not in ids and both.decode_tgt([ids]) == [text]


def test_sampling_keeps_every_nbest_segmentation_of_the_targets(corpus, joint):
    _, en = corpus
    one = Tokenizer(joint, restrict_to_target(joint, en, nbest=1))
    eight = Tokenizer(joint, restrict_to_target(joint, en, nbest=8))
    full = Tokenizer(joint)
    assert one.tgt_vocab_size < eight.tgt_vocab_size < full.tgt_vocab_size
    strings = lambda tok, lines: [  # noqa: E731
        [(tok.tgt_pieces(ids), round(score, 4)) for ids, score in candidates]
        for candidates in tok.nbest(lines, "tgt", 8)
    ]
    assert strings(eight, en[:300]) == strings(full, en[:300])


def test_build_tokenizer_restricts_joint_models_unless_told_not_to(
    corpus, joint, tmp_path
):
    de, en = corpus
    cfg = TokenizerConfig(vocab_size=2000)
    restricted = build_tokenizer(cfg, de, en)
    assert not restricted.joint
    assert restricted.tgt_vocab_size < restricted.src_vocab_size == 2000
    assert [p.name for p in restricted.save(tmp_path)] == [
        "spm.src.model",
        "spm.tgt.model",
    ]
    # A checkpoint stores both models; they load back to the same tokenizer.
    again = Tokenizer(restricted.src_model, restricted.tgt_model)
    assert again.encode_tgt(en[:20]) == restricted.encode_tgt(en[:20])

    whole = build_tokenizer(replace(cfg, restrict_target_vocab=False), de, en)
    assert whole.joint and whole.tgt_vocab_size == 2000
    # A given joint model is restricted too, but only where the targets are known.
    (tmp_path / "joint.model").write_bytes(joint)
    named = replace(cfg, model="joint.model")
    resolve = lambda name: tmp_path / name  # noqa: E731
    assert build_tokenizer(named, de, en, resolve).tgt_vocab_size < 2000
    assert build_tokenizer(named, resolve=resolve).joint


def test_bpe_and_char_models_stay_whole(corpus):
    """BPE builds a piece from merges of pieces the targets may never use, so
    cutting those would change the targets' segmentation; a character model's
    target side needs every piece anyway."""
    de, en = corpus
    for model_type, size in (("bpe", 2000), ("char", 200)):
        joint = train_sentencepiece(de + en, size, model_type=model_type)
        assert restrict_to_target(joint, en) == joint
        tokenizer = build_tokenizer(
            TokenizerConfig(vocab_size=size, model_type=model_type), de, en
        )
        assert tokenizer.joint
