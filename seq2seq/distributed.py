"""Data-parallel training over several processes (``torchrun``), one per device.

``torchrun --nproc_per_node=N -m seq2seq train CONFIG`` starts N trainers; the
environment torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``) joins them into one process group: NCCL on CUDA (``LOCAL_RANK``
picks the GPU), gloo on CPU. Without it the trainer gets :class:`SingleProcess`,
whose methods change nothing, so a plain ``seq2seq train`` runs as before.

How N processes make one run (:class:`DataParallel`):

- data: every rank computes the epoch's batches from (seed, epoch) and takes
  ``batches[rank::N]``, cut to the same count on every rank. One update consumes N
  batches (the global batch); ``TrainState.batch_in_epoch`` counts updates.
- gradients: the loss is a sum over target tokens. Each rank divides its sum by the
  global batch's token count and multiplies by N (DDP averages over ranks), so the
  update equals one process's update on the concatenated batch.
- parameters: every rank seeds alike before building the model, and DDP broadcasts
  rank 0's parameters when it wraps the model.
- randomness: before each update every rank reseeds torch from (seed, rank, step):
  dropout masks differ across ranks, and a resumed run replays them exactly without
  per-rank RNG state in the checkpoint.
- rank 0 alone logs (progress bar, ``train.log``, TensorBoard), validates and
  writes checkpoints; the others wait, then take rank 0's ``TrainState`` (best
  score, learning rate, early stopping). Stop decisions (step and time limits,
  SIGINT / SIGTERM on any rank) are all-reduced every step: all ranks stop together.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import os
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from seq2seq.data import BatchIterator
from seq2seq.errors import UserError
from seq2seq.model import Seq2Seq
from seq2seq.tokenizer import Tokenizer

log = logging.getLogger(__name__)

# Rank 0 validates while the others wait in a collective: allow a long validation.
TIMEOUT = datetime.timedelta(minutes=60)

LossFn = Callable[..., torch.Tensor]


def from_env(device: torch.device, seed: int) -> SingleProcess | DataParallel:
    """The process group torchrun's environment describes; one process without it."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return SingleProcess(device)
    try:
        rank = int(os.environ["RANK"])
        local_rank = int(os.environ["LOCAL_RANK"])
    except KeyError as err:
        raise UserError(
            f"WORLD_SIZE={world_size} but {err.args[0]} is not set; start "
            "multi-process training with torchrun"
        ) from None
    return DataParallel(device, seed, rank, local_rank, world_size)


def is_main_process() -> bool:
    """False in torchrun's processes of rank > 0 (for output outside the trainer)."""
    return int(os.environ.get("RANK", "0")) == 0


class NullWriter:
    """Stands in for TensorBoard's SummaryWriter on ranks > 0: every call is a no-op."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


class _Loss(nn.Module):
    """``Seq2Seq.loss`` as ``forward``, so that DDP's hooks run around it."""

    def __init__(self, model: Seq2Seq) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args: Any) -> torch.Tensor:
        return self.model.loss(*args)


def shard_batches(
    batches: list[list[int]], rank: int, world_size: int
) -> list[list[int]]:
    """Rank ``rank``'s batches of an epoch: every world_size-th, equal counts.

    Update i of the run takes batches[i * world_size : (i + 1) * world_size], one
    per rank; the last ``len(batches) % world_size`` batches of the epoch are left
    out, so that no rank waits for a batch that another lacks.
    """
    per_rank = len(batches) // world_size
    return batches[rank::world_size][:per_rank]


def continue_position(state: Any, world_size: int, batches_per_epoch: int) -> None:
    """Map a checkpoint's position inside the epoch to this run's number of ranks.

    ``state`` is a ``TrainState``. With W ranks, ``batch_in_epoch`` = p means the
    epoch's batches [0, p * W) are consumed, so a run with another world size goes
    on at the first batch not yet seen (a few batches may be skipped).
    """
    per_rank = batches_per_epoch // world_size
    if state.world_size != world_size and state.batch_in_epoch > 0:
        consumed = state.batch_in_epoch * state.world_size
        position = -(-consumed // world_size)  # ceil: never a batch twice
        if position < per_rank:
            state.batch_in_epoch = position
        else:  # nothing of this epoch is left for every rank
            state.epoch, state.batch_in_epoch = state.epoch + 1, 0
        log.warning(
            "resume: the checkpoint was written by %d process(es), this run has %d; "
            "continuing in epoch %d at update %d of %d",
            state.world_size,
            world_size,
            state.epoch + 1,
            state.batch_in_epoch,
            per_rank,
        )
    state.world_size = world_size


class SingleProcess:
    """One process: every method leaves training exactly as it was."""

    rank = 0
    world_size = 1
    is_main = True

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def wrap(self, model: Seq2Seq) -> LossFn:
        return model.loss

    def check_batches(self, state: Any, batches: BatchIterator) -> None:
        if state.world_size != 1:  # a checkpoint of a multi-process run
            continue_position(state, 1, len(batches.epoch_batches(state.epoch)))

    def shard(self, batches: list[list[int]]) -> list[list[int]]:
        return batches

    def seed_step(self, step: int) -> None:
        pass

    def global_loss(self, loss: torch.Tensor, tokens: int) -> tuple[torch.Tensor, int]:
        return loss, tokens

    def any_rank(self, flag: bool) -> bool:
        return flag

    def max_over_ranks(self, value: float) -> float:
        return value

    def share_tokenizer(self, build: Callable[[], Tokenizer]) -> Tokenizer:
        return build()

    def share_state(self, state: Any) -> None:
        pass

    def barrier(self) -> None:
        pass

    def close(self) -> None:
        pass


class DataParallel:
    """One of ``world_size`` processes training one model with DDP (see the module)."""

    def __init__(
        self,
        device: torch.device,
        seed: int,
        rank: int,
        local_rank: int,
        world_size: int,
    ) -> None:
        if device.type == "cuda":
            if local_rank >= torch.cuda.device_count():
                raise UserError(
                    f"LOCAL_RANK={local_rank} but this machine has "
                    f"{torch.cuda.device_count()} CUDA GPU(s); lower --nproc_per_node"
                )
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        self.device = device
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.is_main = rank == 0
        backend = "nccl" if device.type == "cuda" else "gloo"
        self._owns_group = not dist.is_initialized()  # else: the caller's, kept
        if self._owns_group:
            dist.init_process_group(backend, timeout=TIMEOUT)
        if not self.is_main:  # rank 0 speaks for the run; errors still print
            logging.getLogger("seq2seq").setLevel(logging.ERROR)
        log.info(
            "distributed: %d processes (%s); one update = %d batches",
            world_size,
            backend,
            world_size,
        )

    def wrap(self, model: Seq2Seq) -> LossFn:
        """``model.loss`` through DDP, which all-reduces the gradients in backward.

        The model itself stays unwrapped: checkpoints hold its state dict without
        DDP's ``module.`` prefix, and validation calls it directly.
        """
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(_Loss(model), device_ids=device_ids)

    def check_batches(self, state: Any, batches: BatchIterator) -> None:
        """Refuse epochs too short to share; adapt a checkpoint of another size."""
        batches_per_epoch = len(batches.epoch_batches(state.epoch))
        if batches_per_epoch < self.world_size:
            raise UserError(
                f"train: an epoch has {batches_per_epoch} batches, fewer than the "
                f"{self.world_size} processes; lower train.batch_size or "
                "train.batch_tokens, or start fewer processes"
            )
        continue_position(state, self.world_size, batches_per_epoch)

    def shard(self, batches: list[list[int]]) -> list[list[int]]:
        return shard_batches(batches, self.rank, self.world_size)

    def seed_step(self, step: int) -> None:
        """Seed torch (dropout, scheduled sampling) from (seed, rank, step)."""
        key = f"{self.seed} {self.rank} {step}".encode()
        digest = hashlib.blake2b(key, digest_size=8).digest()
        torch.manual_seed(int.from_bytes(digest, "little") >> 1)

    def global_loss(self, loss: torch.Tensor, tokens: int) -> tuple[torch.Tensor, int]:
        """(summed loss, tokens) of the global batch, with this rank's gradient.

        The returned loss has the global sum as its value (for logging and the
        finite check, the same on every rank) and world_size × this rank's loss as
        its gradient: divided by the global token count and averaged by DDP, the
        gradient is the sum over ranks / global tokens, as for one batch.
        """
        count = torch.tensor(float(tokens), dtype=torch.float64, device=loss.device)
        totals = torch.stack([loss.detach().double(), count])  # (2,)
        dist.all_reduce(totals)
        global_loss, global_tokens = totals.tolist()
        scaled = loss * self.world_size
        return scaled + (global_loss - scaled.detach()), int(global_tokens)

    def any_rank(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any rank."""
        return bool(self.max_over_ranks(float(flag)))

    def max_over_ranks(self, value: float) -> float:
        """The largest of the ranks' ``value`` (the same on every rank)."""
        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return tensor.item()

    def share_tokenizer(self, build: Callable[[], Tokenizer]) -> Tokenizer:
        """Rank 0 builds (or trains) the tokenizer; the others receive its models."""
        models = [None]
        if self.is_main:
            tokenizer = build()
            models = [(tokenizer.src_model, tokenizer.tgt_model)]
        dist.broadcast_object_list(models, src=0)
        if self.is_main:
            return tokenizer
        src_model, tgt_model = models[0]
        return Tokenizer(src_model, tgt_model)

    def share_state(self, state: Any) -> None:
        """Overwrite the fields of ``state`` (a ``TrainState``) with rank 0's."""
        fields = [dict(vars(state)) if self.is_main else None]
        dist.broadcast_object_list(fields, src=0)
        if not self.is_main:
            vars(state).update(fields[0])

    def barrier(self) -> None:
        if self.device.type == "cuda":
            dist.barrier(device_ids=[self.device.index])
        else:
            dist.barrier()

    def close(self) -> None:
        if self._owns_group and dist.is_initialized():
            dist.destroy_process_group()
