"""``amp: auto`` and thread counts decided per machine, each with its reason: bf16
only where the CPU does bf16 in hardware or a timed probe shows it faster."""

from __future__ import annotations

import pytest
import torch

from seq2seq import precision
from seq2seq.errors import UserError
from seq2seq.precision import (
    _timed_speedup,
    choose_amp,
    choose_threads,
    parse_cpu_flags,
)

CPU = torch.device("cpu")
# Trimmed /proc/cpuinfo texts of the CPU kinds seen here.
ICE_LAKE = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512bw avx512_vnni\n"
SAPPHIRE_RAPIDS = "flags\t\t: avx512f avx512bw avx512_bf16 amx_bf16 amx_tile\n"
EPYC_ZEN4 = "flags\t\t: avx2 avx512f avx512bw avx512_bf16 avx512_vnni\n"
GRAVITON3 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


def test_cpu_flags_come_from_the_first_flags_or_features_line():
    assert "avx512bw" in parse_cpu_flags(ICE_LAKE)
    assert "avx512_bf16" not in parse_cpu_flags(ICE_LAKE)
    assert {"avx512_bf16", "amx_bf16"} <= parse_cpu_flags(SAPPHIRE_RAPIDS)
    assert "bf16" in parse_cpu_flags(GRAVITON3)
    assert parse_cpu_flags("model name\t: something\n") == set()


def test_this_machines_flags_are_read():
    flags = precision.cpu_flags()
    assert flags is None or len(flags) > 3


@pytest.fixture
def no_probe(monkeypatch):
    def probe(hidden_size, batch_size):
        raise AssertionError("the probe must not run when the flags decide")

    monkeypatch.setattr(precision, "bf16_speedup", probe)


@pytest.mark.parametrize("cpuinfo", [SAPPHIRE_RAPIDS, EPYC_ZEN4, GRAVITON3])
def test_auto_takes_bf16_on_cpus_with_native_bf16(cpuinfo, monkeypatch, no_probe):
    monkeypatch.setattr(precision, "cpu_flags", lambda: parse_cpu_flags(cpuinfo))
    choice = choose_amp("auto", CPU)
    assert choice.dtype is torch.bfloat16
    assert str(choice).startswith("amp: bf16 (the CPU has native bf16: ")


def test_auto_stays_fp32_where_bf16_is_emulated_and_slower(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: parse_cpu_flags(ICE_LAKE))
    asked = []
    monkeypatch.setattr(
        precision,
        "bf16_speedup",
        lambda hidden_size, batch_size: asked.append((hidden_size, batch_size)) or 0.4,
    )
    choice = choose_amp("auto", CPU, hidden_size=256, batch_size=32)
    assert choice.dtype is None
    assert asked == [(256, 32)]  # the model's own shapes
    assert str(choice) == (
        "amp: fp32 (the CPU emulates bf16: bf16 ran at 0.40x fp32's speed in a "
        "0.3 s probe (needs 1.15x))"
    )


@pytest.mark.parametrize("speedup, dtype", [(1.3, torch.bfloat16), (1.1, None)])
def test_without_flags_the_probe_decides(speedup, dtype, monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: None)
    monkeypatch.setattr(precision, "bf16_speedup", lambda h, b: speedup)
    choice = choose_amp("auto", CPU)
    assert choice.dtype is dtype
    assert "CPU flags unknown" in choice.reason


def test_explicit_settings_are_taken_as_they_are(monkeypatch, no_probe):
    assert choose_amp("none", CPU).dtype is None
    assert choose_amp("bf16", CPU).dtype is torch.bfloat16
    assert choose_amp("bf16", CPU, key="--amp").reason == "--amp: bf16"
    with pytest.raises(UserError, match="--amp: fp16 needs a CUDA device"):
        choose_amp("fp16", CPU, key="--amp")


def test_auto_on_cuda_is_fp32(no_probe):
    assert choose_amp("auto", torch.device("cuda")).dtype is None


def test_the_probe_compares_the_best_rounds_of_each_dtype():
    """A stub clock: an fp32 call takes 3 units, a bf16 call 1 unit."""
    now = [0.0]
    cost = {torch.float32: 3.0, torch.bfloat16: 1.0}

    def make(dtype):
        def run():
            now[0] += cost[dtype]

        return run

    assert _timed_speedup(make, lambda: now[0], seconds=600.0) == pytest.approx(3.0)


def test_the_real_probe_returns_a_ratio():
    assert precision.bf16_speedup(32, 4) > 0


def test_threads_follow_the_config_then_omp_then_the_cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert choose_threads(3) == (3, "train.num_threads")
    threads, why = choose_threads(None)
    assert threads >= 1 and why == f"{threads} cores available"
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert choose_threads(None)[0] == max(1, threads // 2)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert choose_threads(None) == (1, "OMP_NUM_THREADS")
