"""Test-only fault injection: ``SEQ2SEQ_FAULT=ACTION:POINT=N`` makes a run fail at an
exact point so the tests can check that nothing is lost (never set it otherwise).

ACTION is ``kill`` (SIGKILL), ``term`` (SIGTERM), ``int`` (SIGINT), ``stop``
(SIGSTOP: paused for the test to signal it) or ``nan`` (the training loss becomes
NaN). POINT is ``step`` (during update N), ``validation`` (the N-th validation of
this process, before its checkpoint) or ``save`` (the N-th checkpoint file of this
process, written but not yet renamed into place).
"""

from __future__ import annotations

import os
import signal

_SIGNALS = {
    "kill": signal.SIGKILL,
    "term": signal.SIGTERM,
    "int": signal.SIGINT,
    "stop": signal.SIGSTOP,
}
_arrivals: dict[str, int] = {}  # counted points reached so far in this process


def inject(point: str, number: int | None = None) -> bool:
    """Fire the fault asked for at ``point`` number ``number`` (counted per process
    when None). Signals are sent here; returns True when the loss should be NaN."""
    spec = os.environ.get("SEQ2SEQ_FAULT")
    if not spec:
        return False
    if number is None:
        number = _arrivals[point] = _arrivals.get(point, 0) + 1
    action, _, where = spec.partition(":")
    if where != f"{point}={number}":
        return False
    if action in _SIGNALS:
        os.kill(os.getpid(), _SIGNALS[action])
    return action == "nan"
