"""Shared fixtures: tiny models and generated data, nothing downloaded."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("SGVIDEO_OPS", "auto")
torch.set_num_threads(min(2, os.cpu_count() or 1))

pytest_plugins = ["tests.fixtures.data", "tests.fixtures.models", "tests.fixtures.stages"]


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def one_thread():
    """For tiny tensors: a second thread only waits on a core another process may be using."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
