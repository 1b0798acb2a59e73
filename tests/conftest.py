"""Shared test set-up: ledgers go to a temporary folder, figures render off-screen."""

import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True, scope="session")
def _claims_to_tmp(tmp_path_factory):
    """Ledgers written by tests (and by the notebook kernels they start) never touch _build/claims."""
    folder = tmp_path_factory.mktemp("claims")
    previous = os.environ.get("LLMTHEORY_CLAIMS_DIR")
    os.environ["LLMTHEORY_CLAIMS_DIR"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("LLMTHEORY_CLAIMS_DIR", None)
    else:
        os.environ["LLMTHEORY_CLAIMS_DIR"] = previous


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's tests: on a shared 2-core machine two threads per process can be ten times
    slower, and one thread is what reproduces the zoo's checkpoints."""
    from llmtheory.zoo.train import torch_threads

    with torch_threads(1):
        yield
