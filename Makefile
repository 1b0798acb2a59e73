# The book's two commands: `make book` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
JB := $(VENV)/bin/jupyter-book

.PHONY: setup book page check-book test test-latest smoke robustness lint lock manifest clean

setup: $(STAMP)

# Idempotent: re-installs only when the lock file or pyproject.toml changed since the last install.
# Keep pip's byte-compilation: this environment sets PYTHONDONTWRITEBYTECODE=1, so a `--no-compile` install (tried:
# 2 min faster) left every process compiling torch and transformers from source, and `make test` took 21 min, not 16.
$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

# Execute every chapter at the book tier (Jupyter Book's cache skips unchanged ones), regenerate the
# claims page from the ledgers they wrote, and render the HTML with warnings as errors.
book: $(STAMP) _build/.library-stamp
	$(PY) -m llmtheory claims --scale book > /dev/null
	$(PY) -m llmtheory course > /dev/null
	$(JB) build . -W -n --keep-going
	$(PY) -m llmtheory claims --scale book
	$(PY) -m llmtheory course
	$(JB) build . -W -n --keep-going
	@echo "The book is at file://$(CURDIR)/_build/html/index.html"

# Jupyter Book's cache keys on a notebook's own text, not on the library it imports: when the library or the
# shipped data change, forget cached executions so that no page shows results of older code. The book and each
# one-chapter page have their own stamp, so rendering one chapter never deletes another one mid-build.
LIBRARY := $(shell find src data -type f -not -path '*/__pycache__/*' 2>/dev/null) requirements.lock
_build/.library-stamp: $(LIBRARY)
	rm -rf _build/.jupyter_cache
	mkdir -p _build && touch $@

_build/pages/%/.library-stamp: $(LIBRARY)
	rm -rf _build/pages/$*
	mkdir -p _build/pages/$* && touch $@

# Render one chapter alone, fast, with the book's configuration: `make page SLUG=spectral_ball`. On a loaded
# machine a cell can pass the book's 600 s limit per cell: `make page SLUG=scaletot TIMEOUT=2400`.
TIMEOUT ?= 600
# Output in _build/pages/<slug>/_build/html (its own execution cache, so chapters can render side by side).
# Links to chapters outside this one-page book (from the intro and the claims page) are not errors here.
page: $(STAMP)
	@test -n "$(SLUG)" || { echo "usage: make page SLUG=<chapter slug>"; exit 2; }
	@$(MAKE) --no-print-directory _build/pages/$(SLUG)/.library-stamp
	@test -f book/claims.md || $(PY) -m llmtheory claims --scale book > /dev/null
	@printf 'format: jb-book\nroot: book/intro\nchapters:\n  - file: book/how_to_use\n  - file: notebooks/$(SLUG)\n  - file: book/claims\n' > _build/pages/$(SLUG)/_toc.yml
	@sed -e 's/^  config:$$/  config:\n    suppress_warnings: [myst.xref_missing, ref.doc, ref.ref]/' \
		-e 's/^  timeout: [0-9]*/  timeout: $(TIMEOUT)/' _config.yml > _build/pages/$(SLUG)/_config.yml
	$(JB) build . --toc _build/pages/$(SLUG)/_toc.yml --config _build/pages/$(SLUG)/_config.yml \
		--path-output _build/pages/$(SLUG) -W -n --keep-going
	@echo "The page is at file://$(CURDIR)/_build/pages/$(SLUG)/_build/html/notebooks/$(SLUG).html"

# Open every page of the rendered book in headless Chromium (Debian's chromium and chromium-driver:
# `apt-get install chromium chromium-driver`) and fail, naming the page, on a JavaScript error, untypeset math,
# an image that does not load, code wider than its column at 1200 px, a broken internal link, or a figure with a
# transparent background; a screenshot of every page lands in _build/screenshots/.
check-book: book
	$(PY) -m llmtheory.check_book _build/html --screenshots _build/screenshots

# Unit tests, then every chapter at SCALE="smoke" through papermill, with the network unreachable, on one
# pytest-xdist worker per core (a chapter's two runs are one test: see tests/test_notebooks.py); the
# 25 slowest tests are listed at the end, to show where its time goes (the target is under 15 minutes).
test: $(STAMP)
	$(PY) -m ruff check src tests notebooks
	$(PY) -m ruff format --check src tests notebooks
	.ci/offline $(PY) -m pytest -n auto --dist loadgroup --durations=25

# The periodic compatibility check of the Colab path: a separate environment made by `pip install -e .[dev]`
# alone (pyproject's lower bounds, the newest versions allowed, as Colab's pip resolves them), every chapter at
# the smoke tier, and the setup cell run with a stand-in google.colab and a local clone. The versions it resolved
# are written to _build/latest-versions.txt.
LATEST := .venv-latest
test-latest:
	rm -rf $(LATEST) && $(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
	mkdir -p _build && $(LATEST)/bin/python -m pip freeze --exclude-editable > _build/latest-versions.txt
	.ci/offline $(LATEST)/bin/python -m pytest -m notebook tests/test_notebooks.py
	LLMTHEORY_LATEST=1 $(LATEST)/bin/python -m pytest tests/test_colab.py  # pip in the setup cell needs the registry

# Only the notebooks, at the smoke tier.
smoke: $(STAMP)
	.ci/offline $(PY) -m pytest -m notebook

# Every chapter at the book tier at seeds 0, 1 and 2 as papermill jobs on a local Dask cluster (one worker per
# core; jobs whose notebook, library and parameters are unchanged are skipped). The claims page then shows each
# claim's verdict at every seed and flags the ones that change; `make book` afterwards renders it.
robustness: $(STAMP)
	$(PY) -m llmtheory sweep --all --scale book --seeds 0,1,2; status=$$?; \
	$(PY) -m llmtheory claims --scale book > /dev/null; exit $$status

lint: $(STAMP)
	$(PY) -m ruff check src tests notebooks
	$(PY) -m ruff format --check src tests notebooks

# Re-pin the environment after changing a dependency in pyproject.toml.
lock: $(STAMP)
	$(PY) -m pip freeze --exclude-editable | sed 's/+cpu$$//' > requirements.lock.new
	{ echo "# The whole environment, pinned: \`make\` installs exactly this. Regenerate with \`make lock\`."; \
	  cat requirements.lock.new; } > requirements.lock && rm requirements.lock.new

# Rewrite data/MANIFEST (sha256 of every shipped data file).
manifest: $(STAMP)
	$(PY) -m llmtheory.manifest --write

clean:
	rm -rf _build .jupyter_cache
