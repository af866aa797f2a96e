"""One training step against the same update written out with torch's own calls."""

from __future__ import annotations

import copy

import pytest
import torch

from seq2seq.config import from_dict
from seq2seq.train import Trainer
from tests.conftest import tiny_config


@pytest.mark.parametrize("kernels", ["auto", "reference"])
@pytest.mark.parametrize("max_norm", [0.05, 1e3])  # clipped, and not
def test_clipping_inside_adam_equals_clip_grad_norm(
    tmp_path, tiny_tsv, max_norm, kernels
):
    cfg = tiny_config(
        tmp_path,
        tiny_tsv,
        train={"clip_grad_norm": max_norm},
        model={"kernels": kernels},
    )
    trainer = Trainer(from_dict(cfg, "test"), progress=False)
    batch = trainer.batches.batch(trainer.batches.epoch_batches(0)[0])
    model = copy.deepcopy(trainer.model)
    group = trainer.optimizer.param_groups[0]
    optimizer = torch.optim.Adam(
        model.parameters(), lr=group["lr"], betas=group["betas"]
    )
    loss = model.loss(batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out)
    (loss / batch.num_tgt_tokens).backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()

    trainer.train_step(batch)
    assert trainer._grad_norm == pytest.approx(norm.item(), rel=1e-6)
    assert (norm.item() > max_norm) == (max_norm == 0.05)
    for (name, mine), reference in zip(
        trainer.model.named_parameters(), model.parameters(), strict=True
    ):
        torch.testing.assert_close(mine, reference, msg=name)
