"""The Colab path: a chapter's setup cell with a stand-in `google.colab` module and a local clone in place of the
repository's address, in a fresh kernel. It pip-installs the clone into the running environment, so it runs only
in `make test-latest` (its throwaway environment); elsewhere it is skipped and says why."""

import os
import subprocess
import sys

import nbformat
import pytest
from book_files import ROOT
from nbclient import NotebookClient

from llmtheory.scaffold import COLAB_CLONE_DIR, colab_setup_cell, repository_url

pytestmark = pytest.mark.skipif(
    os.environ.get("LLMTHEORY_LATEST") != "1",
    reason="installs a clone into the running environment: run by `make test-latest` in its own environment",
)


@pytest.mark.timeout(600)
def test_the_setup_cell_clones_installs_and_imports_in_a_stand_in_colab(tmp_path):
    origin = tmp_path / "origin"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{ROOT}", str(origin)], check=True)
    clone_dir = tmp_path / "content" / "llm-theory-executed"
    cell = colab_setup_cell(repository_url(ROOT)).replace(repository_url(ROOT), f"file://{origin}")
    cell = cell.replace(COLAB_CLONE_DIR, str(clone_dir))
    stand_in = "import sys, types\nsys.modules['google'] = types.ModuleType('google')\n"
    stand_in += "sys.modules['google.colab'] = types.ModuleType('google.colab')"
    check = "import llmtheory, os\nprint(llmtheory.__file__)\nprint(os.getcwd())"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in (stand_in, cell, check)])
    NotebookClient(notebook, timeout=600, kernel_name="python3").execute()
    printed = notebook.cells[2].outputs[0]["text"].split()
    assert printed[0].startswith(str(clone_dir / "src")), printed
    assert printed[1] == str(clone_dir / "notebooks")
    assert sys.prefix  # the install went into this (throwaway) environment
