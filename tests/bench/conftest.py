"""What the benchmark tests share: bench/ importable, and the check of the lines every
benchmark starts with."""

import os
import re
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))

import common  # noqa: E402


@pytest.fixture
def machine_lines():
    """A check that a benchmark's output starts with what `common.print_machine` prints:
    this machine's CPU line and the load, then a matmul peak per precision."""
    def check(out):
        cpu, *peaks = out.splitlines()[:1 + len(common.PRECISIONS)]
        assert cpu.startswith(f"CPU: {common.cpu_line()}; load average "), cpu
        for precision, line in zip(common.PRECISIONS, peaks, strict=True):
            assert re.fullmatch(rf"matmul peak {precision}: \d+ GFLOP/s", line), line
    return check
