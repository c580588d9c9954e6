"""Run Python code in a child process with its memory and time capped: a blow-up fails a test
instead of taking the machine down."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# RLIMIT_AS is set once torch is imported (its libraries map several GB of address space): from
# then on the child may map `headroom` more bytes.
PREAMBLE = r"""
import resource, sys
from pathlib import Path

import torch

torch.set_num_threads(1)
status = Path("/proc/self/status").read_text()
mapped = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmSize:")))
limit = mapped * 1024 + int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
"""


def run_capped(
    code: str, *args: str, headroom: int = 1536 * 2**20, timeout: float = 120
) -> subprocess.CompletedProcess:
    """Run `code` (its arguments start at sys.argv[2]) with `headroom` bytes of memory to map
    beyond its imports, for at most `timeout` seconds; returns the finished process."""
    argv = [sys.executable, "-c", PREAMBLE + code, str(headroom), *args]
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout)
