"""Shared test set-up: ledgers go to a temporary folder, figures render off-screen."""

import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
OUTPUT_VARIABLES = ("LLMTHEORY_CLAIMS_DIR", "LLMTHEORY_FIGURES_DIR")
if "PYTEST_XDIST_WORKER" in os.environ:
    # Parallel workers (`pytest -n`): one thread per process for torch, BLAS and the notebook kernels they start.
    # Two workers with two threads each on two cores oversubscribe them, and torch's threads then spin.
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(variable, "1")


@pytest.fixture(autouse=True, scope="session")
def _outputs_to_tmp(tmp_path_factory):
    """Ledgers and figures written by tests (and by the notebook kernels they start) never touch _build/claims or
    _build/figures: the book's outputs survive `make test`, and parallel workers (pytest -n) never share a file."""
    folders = {name: tmp_path_factory.mktemp(name.split("_")[1].lower()) for name in OUTPUT_VARIABLES}
    previous = {name: os.environ.get(name) for name in OUTPUT_VARIABLES}
    os.environ.update({name: str(folder) for name, folder in folders.items()})
    yield folders
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's tests: on a shared 2-core machine two threads per process can be ten times
    slower, and one thread is what reproduces the zoo's checkpoints."""
    from llmtheory.zoo.train import torch_threads

    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def micro_vlm(one_torch_thread):
    """An untrained micro LLaVA of the zoo's VLM family and its processor (shared by the VLM chapters' tests)."""
    from llmtheory import zoo
    from llmtheory.zoo import vlm as zoo_vlm

    tokenizer = zoo_vlm.build_tokenizer()
    model = zoo_vlm.build_model(zoo.SPECS["micro-vlm"], tokenizer).eval()
    return model, zoo_vlm.build_processor(tokenizer)


@pytest.fixture(scope="module")
def random_llava(tmp_path_factory):
    """A random LLaVA of other dimensions than the zoo's, saved to a folder (``random_models.save_random_llava``)."""
    from random_models import save_random_llava

    return save_random_llava(tmp_path_factory.mktemp("llava"))
