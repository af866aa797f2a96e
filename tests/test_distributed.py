"""Two CPU processes (torchrun, gloo) train like one process on the union batch.

Protects: the ranks keep identical parameters; an update of N ranks equals one
process's update on the concatenation of their batches (global-token loss
normalisation, DDP's averaging undone); a two-process run resumes exactly, also
with dropout; checkpoints carry no DDP ``module.`` prefix and one process resumes
a two-process run; rank 0 alone reports.

One torchrun launch (the slow part: ~10 s) runs every two-process command.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from seq2seq.checkpoint import load_checkpoint
from seq2seq.cli import main
from seq2seq.config import from_dict
from seq2seq.distributed import continue_position, shard_batches
from seq2seq.prepared import CACHE_ENV
from seq2seq.train import Trainer
from tests.conftest import PAIRS, ROOT, tiny_config, write_config

TORCHRUN = Path(sys.executable).with_name("torchrun")

# Run by torchrun in each rank: the seq2seq commands in argv[2] (a JSON list of
# argument lists) through the real CLI, recording every update's (loss, tokens)
# and gradients and each run's final parameters in argv[1]/rank<RANK>.pt (the
# checkpoints hold rank 0's alone). The first command's process group serves them
# all: gloo cannot meet again under torchrun once destroyed.
WORKER = textwrap.dedent(
    """
    import json, os, sys, torch
    from seq2seq import cli, distributed
    from seq2seq.train import Trainer

    distributed.DataParallel.close = lambda self: None

    runs, train_step, run = [], Trainer.train_step, Trainer.run

    def recording_step(self, batch, teacher_forcing=None):
        result = train_step(self, batch, teacher_forcing)
        grads = {n: p.grad.clone() for n, p in self.model.named_parameters()}
        runs[-1]["steps"].append((result, grads))
        return result

    def recording_run(self):
        runs.append({"steps": []})
        state = run(self)
        runs[-1]["model"] = self.model.state_dict()
        return state

    Trainer.train_step, Trainer.run = recording_step, recording_run
    for argv in json.loads(sys.argv[2]):
        if cli.main(argv) != 0:
            sys.exit(1)
    torch.save(runs, os.path.join(sys.argv[1], "rank" + os.environ["RANK"] + ".pt"))
    torch.distributed.destroy_process_group()
    """
)

# Adam and clipping would hide a wrong gradient scale: no clipping, and the test
# compares gradients. 6 batches an epoch = 3 updates of 2; 5 updates cross epochs.
TRAIN = {"max_steps": 5, "lr": 1e-3, "clip_grad_norm": None}


@pytest.fixture(scope="module")
def ddp(tmp_path_factory) -> SimpleNamespace:
    """Runs 0-3 of two processes: union (no dropout); whole, cut at 2 + resumed
    (dropout 0.2)."""
    tmp = tmp_path_factory.mktemp("ddp")
    tsv = tmp / "pairs.tsv"
    tsv.write_text("".join(f"{en}\t{fr}\n" for en, fr in PAIRS * 4), encoding="utf-8")
    cfg = tiny_config(tmp, tsv, train={**TRAIN, "valid_max_sentences": 8})
    config = str(write_config(tmp / "c.yaml", cfg))
    dropout = "model.dropout=0.2"
    commands = [
        ["train", config, f"run_dir={tmp / 'union'}", "--quiet"],
        ["train", config, f"run_dir={tmp / 'whole'}", dropout, "--quiet"],
        ["train", config, f"run_dir={tmp / 'cut'}", dropout, "train.max_steps=2"],
        ["train", config, f"run_dir={tmp / 'cut'}", dropout, "--resume", "--quiet"],
    ]
    worker = tmp / "worker.py"
    worker.write_text(WORKER, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    env["OMP_NUM_THREADS"] = "1"
    # a cache of its own: the sentencepiece training counted below happens here,
    # whatever other tests prepared before
    env[CACHE_ENV] = str(tmp / "prepared-cache")
    command = [str(TORCHRUN), "--standalone", "--nproc_per_node=2", str(worker)]
    result = run_in_own_session(command + [str(tmp), json.dumps(commands)], env)
    assert result.returncode == 0, result.stdout + result.stderr
    ranks = [torch.load(tmp / f"rank{r}.pt") for r in (0, 1)]
    return SimpleNamespace(tmp=tmp, cfg=cfg, config=config, ranks=ranks, out=result)


def run_in_own_session(argv: list[str], env: dict) -> subprocess.CompletedProcess:
    """Run torchrun; on a timeout stop it and its workers.

    torchrun starts each worker in a session of its own: only its SIGTERM (sent
    on, then SIGKILL after 30 s) reaches them.
    """
    process = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            stdout, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
        pytest.fail(f"torchrun timed out:\n{stdout}{stderr}")
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


@pytest.fixture
def one_thread():
    """Like each torchrun worker (OMP_NUM_THREADS=1); also far faster on 2 busy
    cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def latest(run_dir: Path) -> dict:
    return load_checkpoint(run_dir / "checkpoints" / "latest.pt")


def test_shards_are_disjoint_equal_and_in_update_order():
    batches = [[i] for i in range(7)]
    shards = [shard_batches(batches, rank, 3) for rank in range(3)]
    assert shards == [[[0], [3]], [[1], [4]], [[2], [5]]]  # batch 6 left out


@pytest.mark.parametrize(
    ("saved", "now", "batches", "expected"),
    [
        ((2, 0, 2), 1, 6, (0, 4)),  # 2 updates of 2 ranks: batches 0-3 consumed
        ((1, 0, 3), 2, 6, (0, 2)),  # 3 batches consumed: skip one, not repeat
        ((1, 0, 5), 2, 6, (1, 0)),  # nothing left of the epoch for 2 ranks
        ((2, 1, 1), 2, 6, (1, 1)),  # same world size: unchanged
        ((1, 3, 0), 2, 6, (3, 0)),  # an epoch's start is the same for all
    ],
)
def test_resume_position_follows_the_number_of_processes(saved, now, batches, expected):
    world_size, epoch, batch_in_epoch = saved
    state = SimpleNamespace(
        world_size=world_size, epoch=epoch, batch_in_epoch=batch_in_epoch
    )
    continue_position(state, now, batches)
    assert (state.epoch, state.batch_in_epoch, state.world_size) == (*expected, now)


def test_ranks_keep_identical_parameters(ddp):
    rank0, rank1 = ddp.ranks
    assert len(rank0) == len(rank1) == 4
    for run0, run1 in zip(rank0, rank1):
        for name, tensor in run0["model"].items():
            assert torch.equal(tensor, run1["model"][name]), name
        # Both ranks see the global batch's (summed loss, tokens).
        assert [s[0] for s in run0["steps"]] == [s[0] for s in run1["steps"]]


def test_update_equals_one_process_on_the_union_of_the_ranks_batches(ddp, one_thread):
    union = ddp.ranks[0][0]
    assert len(union["steps"]) == 5
    cfg = {**ddp.cfg, "run_dir": str(ddp.tmp / "single")}
    cfg["tokenizer"] = {**cfg["tokenizer"], "model": str(ddp.tmp / "union/spm.model")}
    trainer = Trainer(from_dict(cfg, "single"), progress=False)  # the same init
    step = 0
    for epoch, updates in ((0, 3), (1, 2)):
        batches = trainer.batches.epoch_batches(epoch)
        for i in range(updates):
            indices = batches[2 * i] + batches[2 * i + 1]  # rank 0's + rank 1's
            loss, tokens = trainer.train_step(trainer.batches.batch(indices))
            (ddp_loss, ddp_tokens), ddp_grads = union["steps"][step]
            assert ddp_tokens == tokens
            assert ddp_loss == pytest.approx(loss, rel=1e-5)
            for name, p in trainer.model.named_parameters():
                torch.testing.assert_close(
                    ddp_grads[name], p.grad, atol=1e-6, rtol=1e-4, msg=name
                )
            step += 1
    for name, tensor in trainer.model.state_dict().items():
        torch.testing.assert_close(union["model"][name], tensor, atol=1e-5, rtol=0)


def test_two_process_resume_is_exact_with_dropout(ddp):
    whole, cut = latest(ddp.tmp / "whole"), latest(ddp.tmp / "cut")
    assert whole["train_state"]["step"] == cut["train_state"]["step"] == 5
    for name, tensor in whole["model"].items():
        assert torch.equal(tensor, cut["model"][name]), name
    for name, tensor in ddp.ranks[0][1]["model"].items():  # rank 0 saved its own
        assert torch.equal(tensor, whole["model"][name]), name


def test_rank_0_alone_reports_and_saves_an_unwrapped_model(ddp):
    assert ddp.out.stdout.count("done: ") == 4  # one per command, not per rank
    # Trained by the first run, taken from the prepared-data cache by the next two.
    assert ddp.out.stderr.count("training a joint sentencepiece model") == 1
    assert ddp.out.stderr.count("joint sentencepiece model trained earlier") == 2
    state = latest(ddp.tmp / "union")
    assert not any(name.startswith("module.") for name in state["model"])
    position = [state["train_state"][k] for k in ("world_size", "epoch", "step")]
    assert position + [state["train_state"]["batch_in_epoch"]] == [2, 1, 5, 2]
    log = (ddp.tmp / "union" / "train.log").read_text(encoding="utf-8")
    assert log.count("valid loss") == 2  # at the end of epoch 1 and at step 5


def test_one_process_resumes_a_two_process_checkpoint(
    ddp, tmp_path, capsys, one_thread
):
    run_dir = tmp_path / "run"
    shutil.copytree(ddp.tmp / "union", run_dir)
    argv = [
        "train",
        ddp.config,
        f"run_dir={run_dir}",
        "--resume",
        "train.max_steps=7",
        "--quiet",
    ]
    assert main(argv) == 0
    assert "written by 2 process(es), this run has 1" in capsys.readouterr().err
    state = latest(run_dir)["train_state"]
    # Batches 4 and 5 of epoch 2 were left: 2 updates end the epoch.
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (7, 2, 0)
    assert state["world_size"] == 1


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_on_localhost_train_like_the_two_process_run(ddp, tmp_path):
    """``torchrun --nnodes 2`` (two agents meeting through c10d rendezvous, as two
    machines would) trains from the shared prepared-data cache to the same
    weights and losses as the two-process run, itself equal to one process on
    the union batch (above)."""
    run_dir = tmp_path / "nodes"
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    env["OMP_NUM_THREADS"] = "1"
    endpoint = f"127.0.0.1:{_free_port()}"
    node = [
        str(TORCHRUN),
        "--nnodes",
        "2",
        "--nproc-per-node",
        "1",
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        endpoint,
        "-m",
        "seq2seq",
        "train",
        ddp.config,
        f"run_dir={run_dir}",
        "--quiet",
    ]
    agents = [
        subprocess.Popen(
            node,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for _ in range(2)
    ]
    outputs = []
    try:
        for agent in agents:
            outputs.append(agent.communicate(timeout=400))
    finally:
        for agent in agents:
            if agent.poll() is None:
                os.killpg(agent.pid, signal.SIGKILL)
    for agent, (out, err) in zip(agents, outputs):
        assert agent.returncode == 0, out + err
    nodes, union = latest(run_dir), latest(ddp.tmp / "union")
    assert nodes["train_state"]["world_size"] == 2
    assert nodes["train_state"]["step"] == union["train_state"]["step"] == 5
    for name, tensor in union["model"].items():
        assert torch.equal(tensor, nodes["model"][name]), name
    losses = lambda state: [h["loss"] for h in state["train_state"]["history"]]  # noqa: E731
    assert losses(nodes) == losses(union)
