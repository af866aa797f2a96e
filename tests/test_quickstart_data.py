"""The committed quickstart corpus is what its generator writes, byte for byte."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

QUICKSTART = ROOT / "data" / "quickstart"
SPLITS = ("train.tsv", "valid.tsv", "test.tsv")


def test_the_generator_writes_the_committed_files(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(QUICKSTART / "generate.py"), "--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(SPLITS)
    for name in SPLITS:
        assert (tmp_path / name).read_bytes() == (QUICKSTART / name).read_bytes(), (
            f"data/quickstart/{name} differs from what generate.py writes: "
            "regenerate it with python data/quickstart/generate.py"
        )

