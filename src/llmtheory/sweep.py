"""Sweeps: a grid of chapters × parameters run as papermill jobs on a Dask cluster, and verdicts across seeds.

``python -m llmtheory sweep [SLUG ...] --seeds 0,1,2 -p MODEL=a,b --scale book`` runs every combination through
Dask distributed: a ``LocalCluster`` (one single-threaded worker per core) by default, or an existing cluster
with ``--scheduler tcp://host:8786`` (its workers need this repository at the same path and the same
environment). Each job writes its executed notebook, its ledger and a ``job.json`` under
``_build/sweeps/<scale>/<job>/``. A job whose notebook, library, shipped data and parameters are unchanged since
its last successful run is skipped, so an interrupted sweep resumes. A failing job reports its failing cell and
the others go on.

A verdict that holds at one seed only is a coincidence: :func:`seed_verdicts` collects, for each chapter, the
verdict of each claim at every seed swept with otherwise default parameters, and the claims page and the
chapter's findings flag a claim whose verdict changes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .params import SCALES, ParameterError
from .paths import build_dir, repo_root

SWEEP_JOB_ENV = "LLMTHEORY_SWEEP_JOB"  # set inside a sweep job: its findings do not read other jobs' ledgers
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


@dataclass(frozen=True)
class Job:
    """One chapter run: ``slug`` at ``scale`` with ``parameters`` (``SEED`` among them)."""

    slug: str
    scale: str
    parameters: dict = field(hash=False)

    @property
    def name(self) -> str:
        """A folder name that says what the job is: ``spectral_ball-seed1`` or ``grad_detect-seed0-MODEL=x``."""
        rest = [f"{k}={v}" for k, v in sorted(self.parameters.items()) if k != "SEED"]
        text = "-".join([self.slug, f"seed{self.parameters.get('SEED', 0)}", *rest])
        return "".join(ch if ch.isalnum() or ch in "-_=.," else "_" for ch in text)


def sweep_dir(scale: str, root: Path | None = None) -> Path:
    """``_build/sweeps/<scale>/``."""
    return (root / "_build" if root else build_dir()) / "sweeps" / scale


def split_values(raw: str) -> list[str]:
    """``"a,b,[1, 2]"`` → ``["a", "b", "[1, 2]"]``: commas inside brackets or quotes do not split."""
    parts, depth, quote, current = [], 0, None, []
    for ch in raw:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def plan_jobs(slugs: list[str], scale: str, seeds: list[int], grid: dict[str, list]) -> list[Job]:
    """Every combination of chapter, seed and parameter values, in a stable order."""
    if scale not in SCALES:
        raise ParameterError(f"--scale {scale!r} is not valid; choose one of: {', '.join(SCALES)}")
    if not seeds:
        raise ParameterError("--seeds needs at least one seed, e.g. --seeds 0,1,2")
    if "SEED" in grid or "SCALE" in grid:
        raise ParameterError("set seeds with --seeds and the tier with --scale, not with -p")
    keys = sorted(grid)
    jobs = []
    for slug in slugs:
        for seed in seeds:
            for values in itertools.product(*(grid[k] for k in keys)):
                jobs.append(Job(slug, scale, {"SEED": seed, **dict(zip(keys, values, strict=True))}))
    return jobs


def _hash_files(digest, paths, root: Path) -> None:
    for path in sorted(paths):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())


def job_key(job: Job, root: Path) -> str:
    """What a job's result depends on: its notebook, the library, the shipped data's manifest and its parameters."""
    digest = hashlib.sha256()
    library = [p for p in (root / "src" / "llmtheory").rglob("*.py") if "__pycache__" not in p.parts]
    manifest = [root / "data" / "MANIFEST"] if (root / "data" / "MANIFEST").is_file() else []
    _hash_files(digest, [root / "notebooks" / f"{job.slug}.ipynb", *library, *manifest], root)
    digest.update(json.dumps({"scale": job.scale, **job.parameters}, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def is_done(job: Job, root: Path) -> bool:
    """Whether the job's last run succeeded with the same inputs (then a sweep skips it)."""
    folder = sweep_dir(job.scale, root) / job.name
    try:
        record = json.loads((folder / "job.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return False
    return (
        record.get("status") == "ok" and record.get("key") == job_key(job, root) and (folder / "ledger.json").is_file()
    )


PAPERMILL_TAGS = {"papermill-error-cell-tag", "injected-parameters"}  # cells papermill adds to the executed copy


def _failing_cell(notebook: Path) -> tuple[int | None, str]:
    """The index (in the chapter as written, 0-based) and source of the cell that raised."""
    import nbformat

    cells = [
        c for c in nbformat.read(notebook, as_version=4).cells if not PAPERMILL_TAGS & set(c.metadata.get("tags", []))
    ]
    for index, cell in enumerate(cells):
        if any(out.get("output_type") == "error" for out in cell.get("outputs", [])):
            return index, cell.source
    return None, ""


def run_job(job: Job, root: str) -> dict:
    """Execute one job with papermill (on a Dask worker, or in this process); return its ``job.json`` record.

    The kernel inherits this process's environment, so one job runs at a time per worker process (the local
    cluster has one thread per worker): the ledger folder and the one-thread settings are set here.
    """
    import papermill

    root_path = Path(root)
    folder = sweep_dir(job.scale, root_path) / job.name
    if folder.exists():
        shutil.rmtree(folder)  # nothing half-written from an earlier try survives
    folder.mkdir(parents=True)
    output = folder / f"{job.slug}.ipynb"
    record = {"job": job.name, **asdict(job), "key": job_key(job, root_path)}
    saved_env = {k: os.environ.get(k) for k in (*ONE_THREAD, "LLMTHEORY_CLAIMS_DIR", SWEEP_JOB_ENV)}
    os.environ.update({**ONE_THREAD, "LLMTHEORY_CLAIMS_DIR": str(folder / "claims"), SWEEP_JOB_ENV: job.name})
    started = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(root_path / "notebooks" / f"{job.slug}.ipynb"),
            str(output),
            parameters={**job.parameters, "SCALE": job.scale},
            cwd=str(root_path / "notebooks"),
            kernel_name="python3",
            progress_bar=False,
        )
        ledger = folder / "claims" / job.scale / f"{job.slug}.json"
        if not ledger.is_file():
            raise RuntimeError(f"{job.slug} ran but saved no ledger (no ledger.report()?)")
        shutil.copy(ledger, folder / "ledger.json")
        if job_key(job, root_path) != record["key"]:
            raise RuntimeError("the notebook, library or data changed while the job ran: its ledger mixes two versions")
        record.update(status="ok")
    except Exception as error:  # noqa: BLE001 - any failure of one job is reported, and the sweep goes on
        cell, source = _failing_cell(output) if output.is_file() else (None, "")
        message = f"{getattr(error, 'ename', type(error).__name__)}: {getattr(error, 'evalue', error)}"
        record.update(status="failed", cell=cell, cell_source=source[:2000], error=message[:2000])
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    record["seconds"] = round(time.perf_counter() - started, 1)
    (folder / "job.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    return record


def _client(scheduler: str | None, workers: int | None):
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as error:
        raise ParameterError(
            "sweeps need dask and distributed: `pip install -e .[sweep]` (make installs them from requirements.lock)"
        ) from error
    if scheduler:
        return Client(scheduler, timeout="30s")
    cluster = LocalCluster(
        n_workers=workers or os.cpu_count() or 1,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # any free port: several sweeps may run side by side
        env=ONE_THREAD,
    )
    return Client(cluster)


def run_sweep(
    jobs: list[Job], *, root: Path | None = None, scheduler: str | None = None, workers: int | None = None
) -> list[dict]:
    """Run ``jobs`` on a Dask cluster, skipping those already done; return every job's record, in job order."""
    from tqdm.auto import tqdm

    root = Path(root or repo_root())
    records: dict[str, dict] = {}
    todo = []
    for job in jobs:
        if is_done(job, root):
            records[job.name] = {**json.loads((sweep_dir(job.scale, root) / job.name / "job.json").read_text()),
                                 "status": "skipped"}  # fmt: skip
        else:
            todo.append(job)
    if todo:
        from dask.distributed import as_completed

        with _client(scheduler, workers) as client:
            futures = [client.submit(run_job, job, str(root), pure=False, key=f"sweep-{job.name}") for job in todo]
            with tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="sweep jobs", unit="job") as bar:
                for future in as_completed(futures):
                    record = future.result()
                    records[record["job"]] = record
                    if record["status"] == "failed":
                        bar.write(f"FAILED {record['job']} at cell {record['cell']}: {record['error']}")
                    bar.update(1)
    return [records[job.name] for job in jobs]


def seed_verdicts(scale: str, root: Path | None = None) -> dict[str, dict[str, dict[int, str]]]:
    """``{slug: {claim id: {seed: verdict}}}`` from the sweep jobs at ``scale`` whose only parameter is the seed.

    Only jobs run on the current notebook, library and data count (the resume check of :func:`is_done`): verdicts
    of older code beside today's ledger would show flips that no longer exist, or hide new ones."""
    found: dict[str, dict[str, dict[int, str]]] = {}
    root = Path(root) if root is not None else repo_root()
    folder = sweep_dir(scale, root)
    for record_path in sorted(folder.glob("*/job.json")) if folder.is_dir() else []:
        record = json.loads(record_path.read_text())
        if record.get("status") != "ok" or set(record.get("parameters", {})) != {"SEED"}:
            continue
        if not is_done(Job(record["slug"], scale, record["parameters"]), root):
            continue  # run on other code or data than today's
        ledger_path = record_path.parent / "ledger.json"
        ledger = json.loads(ledger_path.read_text())
        for claim in ledger["claims"]:
            found.setdefault(ledger["slug"], {}).setdefault(claim["id"], {})[ledger["seed"]] = claim["verdict"]
    return found
