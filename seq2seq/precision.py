"""Mixed precision and CPU threads: what ``train.amp`` / ``--amp`` and
``train.num_threads`` mean on the machine at hand, each choice with its reason.

``amp: auto`` on a CPU picks bf16 only where it is fast there. A CPU whose flags show
native bf16 arithmetic (``avx512_bf16`` or ``amx_bf16`` on x86, ``bf16`` on Arm) gets
bf16. Elsewhere oneDNN still runs bf16, but by emulation, and slower than fp32 (any
AVX-512BW CPU reports bf16 support to torch, so torch's own check cannot tell): there a
short timed probe of the model's step shapes decides, and bf16 is taken only when it
is at least ``PROBE_MIN_SPEEDUP`` times as fast as fp32. On CUDA ``auto`` means fp32:
a GRU step is many small kernels, and autocast adds a cast per weight per step.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from seq2seq.errors import UserError

log = logging.getLogger(__name__)

# CPU flags (/proc/cpuinfo) that mean bf16 arithmetic in hardware.
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")
# bf16 must beat fp32 by this factor in the probe to be chosen on a CPU without them.
PROBE_MIN_SPEEDUP = 1.15
PROBE_SECONDS = 0.3  # the probe's total budget, both dtypes


@dataclass(frozen=True)
class AmpChoice:
    """The autocast dtype (None: fp32) and why it was chosen."""

    dtype: torch.dtype | None
    reason: str

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    def __str__(self) -> str:
        return f"amp: {self.name} ({self.reason})"


def choose_amp(
    amp: str,
    device: torch.device,
    key: str = "train.amp",
    hidden_size: int = 512,
    batch_size: int = 64,
) -> AmpChoice:
    """What ``amp`` (the value of ``key``: ``train.amp`` or a command's ``--amp``)
    means on ``device``; ``hidden_size`` and ``batch_size`` shape ``auto``'s probe
    on a CPU without native bf16 (the decoder's recurrent matmul)."""
    if amp == "none":
        return AmpChoice(None, f"{key}: none")
    if amp == "fp16" and device.type == "cpu":
        raise UserError(f"{key}: fp16 needs a CUDA device; use bf16 on CPU")
    if amp in ("bf16", "fp16"):
        dtype = torch.bfloat16 if amp == "bf16" else torch.float16
        return AmpChoice(dtype, f"{key}: {amp}")
    if device.type != "cpu":
        return AmpChoice(
            None, f"{key}: auto on {device.type}: a GRU step is launch-bound there"
        )
    flags = cpu_flags()
    native = sorted(set(NATIVE_BF16_FLAGS) & flags) if flags is not None else []
    if native:
        return AmpChoice(
            torch.bfloat16, f"the CPU has native bf16: {', '.join(native)}"
        )
    speedup = bf16_speedup(hidden_size, batch_size)
    without = "the CPU emulates bf16" if flags is not None else "CPU flags unknown"
    if speedup >= PROBE_MIN_SPEEDUP:
        return AmpChoice(
            torch.bfloat16,
            f"{without}, but bf16 was {speedup:.2f}x as fast as fp32 in a "
            f"{PROBE_SECONDS:g} s probe",
        )
    return AmpChoice(
        None,
        f"{without}: bf16 ran at {speedup:.2f}x fp32's speed in a {PROBE_SECONDS:g} s "
        f"probe (needs {PROBE_MIN_SPEEDUP:g}x)",
    )


def autocast_dtype(
    amp: str, device: torch.device, key: str = "train.amp"
) -> torch.dtype | None:
    """The autocast dtype of :func:`choose_amp` (None: full precision); what
    ``auto`` chose is logged with its reason."""
    choice = choose_amp(amp, device, key)
    if amp == "auto":
        log.info("%s", choice)
    return choice.dtype


def parse_cpu_flags(cpuinfo: str) -> set[str]:
    """The flags of the first CPU in a ``/proc/cpuinfo`` text: the ``flags`` line
    (x86) or the ``Features`` line (Arm)."""
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def cpu_flags(path: Path = Path("/proc/cpuinfo")) -> set[str] | None:
    """This CPU's flags; None where the system does not list them."""
    try:
        flags = parse_cpu_flags(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None
    return flags or None


@functools.lru_cache(maxsize=8)
def bf16_speedup(hidden_size: int, batch_size: int) -> float:
    """fp32 time / bf16 time of the decoder's recurrent matmul, (B, H) @ (H, 3H),
    alternated within :data:`PROBE_SECONDS`; once per process and shape."""
    return _timed_speedup(
        lambda dtype: _matmul(hidden_size, batch_size, dtype), time.perf_counter
    )


def _matmul(hidden: int, batch: int, dtype: torch.dtype) -> Callable[[], object]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, hidden, generator=generator).to(dtype)  # (B, H)
    w = torch.randn(hidden, 3 * hidden, generator=generator).to(dtype)  # (H, 3H)
    return lambda: x @ w  # (B, 3H)


def _timed_speedup(
    make: Callable[[torch.dtype], Callable[[], object]],
    clock: Callable[[], float],
    seconds: float = PROBE_SECONDS,
    rounds: int = 6,
) -> float:
    """Alternate fp32 and bf16 runs of ``make(dtype)()`` for about ``seconds``;
    the ratio of the best fp32 round to the best bf16 round."""
    runs = {torch.float32: make(torch.float32), torch.bfloat16: make(torch.bfloat16)}
    for run in runs.values():
        run()  # warm up: oneDNN builds its kernels on the first call
    # Calls per round so that all rounds of both dtypes take about `seconds`.
    start = clock()
    runs[torch.float32]()
    one = max(clock() - start, 1e-6)
    calls = max(1, int(seconds / (2 * rounds * one)))
    best = {dtype: float("inf") for dtype in runs}
    for _ in range(rounds):
        for dtype, run in runs.items():
            start = clock()
            for _ in range(calls):
                run()
            best[dtype] = min(best[dtype], clock() - start)
    return best[torch.float32] / max(best[torch.bfloat16], 1e-12)


def choose_threads(configured: int | None) -> tuple[int, str]:
    """Torch CPU threads for one process, and why: ``train.num_threads`` when set,
    else ``OMP_NUM_THREADS`` when set, else the cores this process may run on,
    shared among the processes ``torchrun`` started on this node."""
    if configured:
        return configured, "train.num_threads"
    from_env = os.environ.get("OMP_NUM_THREADS", "")
    if from_env.isdigit() and int(from_env) > 0:
        return int(from_env), "OMP_NUM_THREADS"
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    if local > 1:
        return max(1, cores // local), f"{cores} cores / {local} local processes"
    return cores, f"{cores} cores available"


def autocast(
    device: torch.device, dtype: torch.dtype | None
) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to ``dtype`` on ``device``; nothing when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
