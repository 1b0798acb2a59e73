"""The plasticity chapter's trajectory artefacts: zoo entries that hold tables and a few checkpoints, not a model.

One entry per training setting (plans/plasticity.md, "Production design" and the lead's decisions): each trains
every size of :data:`llmtheory.plasticity.SIZES` in ``spec.sizes`` from every seed in ``spec.seeds`` on the
multilingual stream and probes every checkpoint (:func:`llmtheory.plasticity.trajectory`); per size it also probes
the fresh-control initialisations and the A/A null curve (:func:`llmtheory.plasticity.fresh_probe`) at the same
learning-rate rule. ``python -m llmtheory.zoo train plasticity-cycles`` writes ``data/zoo/plasticity-cycles/``:

* ``trajectories.csv``: one row per (size, seed, checkpoint): probe losses, indicators, training loss;
* ``controls.csv``: per size, the fresh-control probes (``kind = fresh``) and the A/A null probes (``kind = aa_null``,
  one fresh initialisation per checkpoint position);
* ``training_log.csv``: per run, the mean training loss and gradient norm of every ``log_every`` steps;
* ``checkpoints/`` (only where ``spec.saved_sizes`` is set): ``<size>-seed<seed>/step<step>.safetensors``;
* ``card.json`` and ``README.md``: what was built, per-run CPU and wall seconds, versions, the build command.

The build is **resumable**: each unit (one size's controls, or one (size, seed) run) is written to a partial folder
under ``_build/zoo-partial/`` when it finishes, and a rerun skips the finished units; the entry's folder receives its
files only when every unit is done. Every unit seeds itself (initialisation seed, data seed, the intervention's
generator), so the order in which units run, or an interruption between them, does not change a byte of the tables.
Deterministic at one torch thread with the same library versions, on a CPU of the same kind: the kernels torch
picks depend on the CPU (``torch.backends.cpu.get_cpu_capability()``, and the GEMM library's own dispatch), so on
another kind the 7th or 8th digit of a forward pass differs and training amplifies it. Measured on 2026-12-06: the
first 300 steps of ``plasticity-cycles``' w16 seed-0 run, re-trained on an AVX-512 machine, gave weights up to 0.57
away from the shipped step-300 checkpoint (built on another kind) and a probe loss 0.04 nats away; re-probing the
shipped checkpoint itself agreed to 2e-8. The card records the machine that assembled the entry.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

SETTINGS = ("cycles", "stationary")
"""The stream settings of :mod:`llmtheory.plasticity` (repeated here so that the spec module stays light)."""

TRAJECTORY_COLUMNS = (
    "setting",
    "size",
    "non_embedding",
    "seed",
    "learning_rate",
    "step",
    "probe_final",
    "probe_mean",
    "dead_fraction",
    "weight_norm",
    "effective_rank",
    "grad_norm",
    "train_loss",
)
"""Columns of ``trajectories.csv``."""
CONTROL_COLUMNS = ("size", "non_embedding", "learning_rate", "kind", "index", "init_seed", "probe_final", "probe_mean")
"""Columns of ``controls.csv``: ``kind`` ``fresh`` (the control of the gap) or ``aa_null`` (the A/A null curve, position
``index`` of the checkpoint list; not ``null``, which ``pandas.read_csv`` reads as a missing value)."""
LOG_COLUMNS = ("size", "seed", "step", "train_loss", "grad_norm")
"""Columns of ``training_log.csv``: ``step`` opens a window of ``log_every`` steps; means over the window."""
FILES = ("trajectories.csv", "controls.csv", "training_log.csv", "card.json", "README.md")


@dataclass(frozen=True)
class PlasticitySpec:
    """How one trajectory artefact is built (the single source of truth for its tables).

    ``learning_rate``: ``None`` scales it with the width (:func:`llmtheory.plasticity.learning_rate_for`, 3e-3 ·
    32 / n_embd), a number uses that rate for every size; training and probe alike. ``shrink_perturb``: ``()`` or
    ``(shrink, noise, every)`` (:class:`llmtheory.plasticity.ShrinkPerturb`). ``stream``: keyword overrides of
    :class:`llmtheory.plasticity.Stream` (empty for the book's stream). Checkpoints:
    ``checkpoint_steps(steps, checkpoint_count, multiple_of=cycle_steps, spacing=spacing)``. ``fresh_seeds``: the
    fresh-control initialisations; the A/A null curve uses ``null_seed_base + k`` at each checkpoint position k.
    ``saved_sizes`` × ``saved_seed`` × ``saved_steps``: the checkpoints whose weights ship.
    """

    name: str
    summary: str
    setting: str
    steps: int
    sizes: tuple[str, ...] = ("w16", "w24", "w32", "w48", "w64", "w96")
    seeds: tuple[int, ...] = (0, 1, 2)
    checkpoint_count: int = 20
    spacing: str = "geometric"
    learning_rate: float | None = None
    probe_budget: int = 50
    shrink_perturb: tuple = ()
    fresh_seeds: tuple[int, ...] = (1000, 1001, 1002)
    null_seed_base: int = 2000
    saved_sizes: tuple[str, ...] = ()
    saved_seed: int = 0
    saved_steps: tuple[int, ...] = ()
    log_every: int = 100
    stream: tuple[tuple[str, object], ...] = ()
    shipped: bool = True
    notes: str = field(default="", compare=False)
    family: str = "gpt2"
    task: str = "plasticity"
    layers: int = 2

    def __post_init__(self):
        from .params import ParameterError, check_choice

        check_choice("setting", self.setting, SETTINGS)
        if self.shrink_perturb and len(self.shrink_perturb) != 3:
            raise ParameterError("shrink_perturb must be () or (shrink, noise, every)")

    def as_dict(self) -> dict:
        return asdict(self)

    def build_stream(self):
        from .plasticity import Stream

        return Stream(**dict(self.stream))

    @property
    def cycle_steps(self) -> int:
        return self.build_stream().cycle_steps

    def checkpoints(self) -> list[int]:
        from .plasticity import checkpoint_steps

        return checkpoint_steps(self.steps, self.checkpoint_count, multiple_of=self.cycle_steps, spacing=self.spacing)

    def config(self, size: str):
        from .plasticity import gpt2_config

        return gpt2_config(size, self.build_stream())

    def rate(self, size: str) -> float:
        from .plasticity import learning_rate_for

        return float(self.learning_rate) if self.learning_rate is not None else learning_rate_for(self.config(size))

    def intervention(self, seed: int):
        """The run's :class:`~llmtheory.plasticity.ShrinkPerturb` (plasticity-eq-shrink-perturb) seeded by the run's
        seed, or ``None`` when the spec has none."""
        from .plasticity import ShrinkPerturb

        if not self.shrink_perturb:
            return None
        shrink, noise, every = self.shrink_perturb
        return ShrinkPerturb(shrink=shrink, noise=noise, every=int(every), seed=seed)

    def fingerprint(self) -> str:
        """A hash of everything that shapes the tables (not ``notes``, ``shipped`` or ``summary``) and of the library
        versions: the partial folder's name, so that a changed spec never reuses stale units."""
        import numpy
        import torch
        import transformers

        fields = {k: v for k, v in self.as_dict().items() if k not in ("notes", "shipped", "summary")}
        fields["versions"] = [torch.__version__, transformers.__version__, numpy.__version__]
        return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:16]


_CYCLES_NOTE = (
    "Design fixed in plans/plasticity.md before the build: 6 sizes (w16 to w96, 34x in non-embedding parameters), "
    "3 seeds (initialisation seed = data seed), 4,000 steps of batch 32 x 32 tokens in 40 cycles of 100 steps over 6 "
    "languages, 17 geometric checkpoints, probe budget 50 Adam steps, learning rate 3e-3 x 32 / width for training "
    "and probe."
)

PLASTICITY_SPECS: dict[str, PlasticitySpec] = {
    s.name: s
    for s in (
        PlasticitySpec(
            name="plasticity-cycles",
            summary="GPT-2 (2 layers, ReLU) at 6 widths x 3 seeds trained in fixed-language cycles, every checkpoint "
            "probed on a held-out language: the plasticity chapter's trajectories (learning rate 1/width)",
            setting="cycles",
            steps=4000,
            saved_sizes=("w16", "w32"),
            saved_steps=(0, 300, 1000, 2200, 4000),
            notes=_CYCLES_NOTE,
        ),
        PlasticitySpec(
            name="plasticity-cycles-sp",
            summary="plasticity-cycles with shrink-and-perturb (0.8, 0.1) at every language switch",
            setting="cycles",
            steps=4000,
            shrink_perturb=(0.8, 0.1, 100),
            notes=_CYCLES_NOTE + " Shrink-and-perturb (Ash & Adams 2020) after every 100th step. Built on "
            "2026-12-06 (14:02-14:28 UTC) on a machine of another kind (AVX-512) than plasticity-cycles, whose "
            "kernels round differently: its runs are other realisations of the same recipe (see the module "
            "docstring), which the chapter's seed A/A control covers.",
        ),
        PlasticitySpec(
            name="plasticity-stationary",
            summary="GPT-2 at 6 widths x 3 seeds trained on the stationary mixture of the 6 languages, every "
            "checkpoint probed on the held-out language (learning rate 1/width)",
            setting="stationary",
            steps=8000,
            notes="As plasticity-cycles, but every sequence draws its language, 8,000 steps, 18 checkpoints. "
            "Built on 2026-12-06 (14:02-14:43 UTC) on a machine of another kind (AVX-512) than plasticity-cycles, "
            "whose kernels round differently (see the module docstring).",
        ),
        PlasticitySpec(
            name="plasticity-cycles-constlr",
            summary="plasticity-cycles at one learning rate (3e-3) for every size, training and probe",
            setting="cycles",
            steps=4000,
            learning_rate=3e-3,
            notes=_CYCLES_NOTE.replace("learning rate 3e-3 x 32 / width", "learning rate 3e-3 at every width")
            + " The pilot's setting, in which the onset moved earlier with size. Built by the lead's command of "
            "11:27 UTC, re-assembled from its finished units into data/zoo (`python -m llmtheory.zoo train "
            "plasticity-cycles-constlr`).",
        ),
        # Micro spec: not shipped, for tests (builds in seconds).
        PlasticitySpec(
            name="micro-plasticity",
            summary="micro trajectory artefact for tests",
            setting="cycles",
            steps=20,
            sizes=("w16", "w24"),
            seeds=(0, 1),
            checkpoint_count=4,
            probe_budget=3,
            fresh_seeds=(1000, 1001),
            saved_sizes=("w16",),
            saved_steps=(0, 10, 20),
            log_every=5,
            stream=(
                ("vocab", 12),
                ("branching", 3),
                ("n_languages", 3),
                ("seq_len", 8),
                ("batch_size", 4),
                ("cycle_steps", 5),
            ),
            shipped=False,
        ),
    )
}


# --------------------------------------------------------------------------------------------------------------
# The units of a build: one size's controls, or one (size, seed) run
# --------------------------------------------------------------------------------------------------------------


def units(spec: PlasticitySpec) -> list[tuple[str, int | None]]:
    """``(size, None)`` for a size's controls, ``(size, seed)`` for a run; small sizes first."""
    return [unit for size in spec.sizes for unit in [(size, None), *((size, seed) for seed in spec.seeds)]]


def unit_key(size: str, seed: int | None) -> str:
    return f"{size}-controls" if seed is None else f"{size}-seed{seed}"


def run_controls(spec: PlasticitySpec, size: str) -> list[dict]:
    """The fresh-control probes and the A/A null probes of one size (:func:`llmtheory.plasticity.fresh_probe`)."""
    from .plasticity import fresh_probe, non_embedding_parameters

    stream, config, rate = spec.build_stream(), spec.config(size), spec.rate(size)
    n = non_embedding_parameters(config)
    rows = []
    plan = [("fresh", k, seed) for k, seed in enumerate(spec.fresh_seeds)]
    plan += [("aa_null", k, spec.null_seed_base + k) for k in range(len(spec.checkpoints()))]
    for kind, index, seed in plan:
        (result,) = fresh_probe(config, stream, seeds=[seed], budget=spec.probe_budget, learning_rate=rate)
        rows.append(
            {
                "size": size,
                "non_embedding": n,
                "learning_rate": rate,
                "kind": kind,
                "index": index,
                "init_seed": seed,
                "probe_final": result.final,
                "probe_mean": result.mean,
            }
        )
    return rows


def run_trajectory(spec: PlasticitySpec, size: str, seed: int) -> tuple[list[dict], list[dict], dict]:
    """One (size, seed) run: its trajectory rows, its training-log rows, and the kept weights ``{step: state}``
    (``spec.saved_steps`` when this size and seed ship checkpoints)."""
    from .plasticity import non_embedding_parameters, trajectory

    stream, config, rate = spec.build_stream().with_data_seed(seed), spec.config(size), spec.rate(size)
    keep = spec.saved_steps if size in spec.saved_sizes and seed == spec.saved_seed else ()
    rows, trace = trajectory(
        config,
        stream,
        setting=spec.setting,
        steps=spec.steps,
        checkpoints=spec.checkpoints(),
        seed=seed,
        learning_rate=rate,
        probe_budget=spec.probe_budget,
        probe_learning_rate=rate,
        intervention=spec.intervention(seed),
        keep=keep,
        with_trace=True,
    )
    n = non_embedding_parameters(config)
    head = {"setting": spec.setting, "size": size, "non_embedding": n, "seed": seed, "learning_rate": rate}
    table = [{**head, **row} for row in rows]
    log = [
        {
            "size": size,
            "seed": seed,
            "step": start,
            "train_loss": float(trace.losses[start : start + spec.log_every].mean()),
            "grad_norm": float(trace.grad_norms[start : start + spec.log_every].mean()),
        }
        for start in range(0, spec.steps, spec.log_every)
    ]
    return table, log, trace.checkpoints


def partial_dir(spec: PlasticitySpec, root: Path | None = None) -> Path:
    """Where finished units wait for the rest: ``_build/zoo-partial/<name>-<fingerprint>/`` by default."""
    from .paths import build_dir

    return Path(root or build_dir() / "zoo-partial") / f"{spec.name}-{spec.fingerprint()}"


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _save_weights(path: Path, state: dict) -> None:
    from safetensors.torch import save

    _write_atomic(path, save({k: v.contiguous() for k, v in sorted(state.items())}))


def build_unit(spec: PlasticitySpec, size: str, seed: int | None, folder: Path) -> dict:
    """Run one unit and write it to ``folder`` (weights first, the unit's JSON last: the JSON marks it finished)."""
    wall, cpu = time.perf_counter(), time.process_time()
    if seed is None:
        record = {"controls": run_controls(spec, size)}
    else:
        table, log, weights = run_trajectory(spec, size, seed)
        for step, state in sorted(weights.items()):
            _save_weights(folder / "checkpoints" / f"{size}-seed{seed}" / f"step{step:05d}.safetensors", state)
        record = {"rows": table, "log": log, "checkpoints": sorted(weights)}
    record.update(
        size=size,
        seed=seed,
        cpu_seconds=round(time.process_time() - cpu, 2),
        wall_seconds=round(time.perf_counter() - wall, 2),
    )
    _write_atomic(folder / f"{unit_key(size, seed)}.json", json.dumps(record).encode())
    return record


def _csv(columns: tuple[str, ...], rows: list[dict]) -> bytes:
    handle = io.StringIO()
    writer = csv.DictWriter(handle, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: row[k] for k in columns} for row in rows)
    return handle.getvalue().encode()


def build(
    spec: PlasticitySpec,
    out_dir: Path,
    *,
    partial_root: Path | None = None,
    progress: bool = True,
    threads: int = 1,
    command: str | None = None,
) -> dict:
    """Build ``spec`` into ``out_dir``, resuming from the units already in its partial folder; returns the card.

    The three tables and the checkpoints are functions of the spec alone (at one thread, the same versions); the
    card adds the CPU and wall seconds of each unit, as measured when it ran."""
    from .zoo.train import torch_threads

    folder = partial_dir(spec, partial_root)
    folder.mkdir(parents=True, exist_ok=True)
    records = {}
    started = time.perf_counter()
    with torch_threads(threads):
        for size, seed in units(spec):
            path = folder / f"{unit_key(size, seed)}.json"
            if path.is_file():
                records[(size, seed)] = json.loads(path.read_text())
                continue
            record = build_unit(spec, size, seed, folder)
            records[(size, seed)] = record
            if progress:
                print(
                    f"{spec.name}: {unit_key(size, seed)} done, {record['cpu_seconds']:.0f} s CPU, "
                    f"{record['wall_seconds']:.0f} s wall ({time.strftime('%H:%M:%S')})",
                    flush=True,
                )
    trajectories = [row for (_, seed), r in records.items() if seed is not None for row in r["rows"]]
    controls = [row for (_, seed), r in records.items() if seed is None for row in r["controls"]]
    log = [row for (_, seed), r in records.items() if seed is not None for row in r["log"]]
    staged = {
        "trajectories.csv": _csv(TRAJECTORY_COLUMNS, trajectories),
        "controls.csv": _csv(CONTROL_COLUMNS, controls),
        "training_log.csv": _csv(LOG_COLUMNS, log),
    }
    card = _card(spec, records, staged, folder, command, time.perf_counter() - started, threads)
    staged["card.json"] = (json.dumps(card, indent=2) + "\n").encode()
    staged["README.md"] = card_markdown(card).encode()
    _install(staged, folder / "checkpoints", Path(out_dir))
    return card


def _install(files: dict[str, bytes], checkpoints: Path, out_dir: Path) -> None:
    """Write the finished files into ``out_dir`` (each atomically) and replace its ``checkpoints/`` folder."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "checkpoints"
    if target.exists():
        shutil.rmtree(target)
    if checkpoints.is_dir():
        shutil.copytree(checkpoints, target)
    for name, data in files.items():
        _write_atomic(out_dir / name, data)


def _card(spec, records, staged, folder, command, build_wall, threads) -> dict:
    import numpy
    import torch
    import transformers

    from .plasticity import non_embedding_parameters

    checkpoint_files = sorted((folder / "checkpoints").rglob("*.safetensors")) if spec.saved_sizes else []
    runs = [
        {
            "size": size,
            "seed": seed,
            "unit": "controls" if seed is None else "run",
            "cpu_seconds": r["cpu_seconds"],
            "wall_seconds": r["wall_seconds"],
        }
        for (size, seed), r in records.items()
    ]
    return {
        "name": spec.name,
        "kind": "trajectories",
        "spec": spec.as_dict(),
        "sizes": {
            size: {"non_embedding": non_embedding_parameters(spec.config(size)), "learning_rate": spec.rate(size)}
            for size in spec.sizes
        },
        "checkpoint_steps": spec.checkpoints(),
        "rows": {
            "trajectories": staged["trajectories.csv"].count(b"\n") - 1,
            "controls": staged["controls.csv"].count(b"\n") - 1,
            "training_log": staged["training_log.csv"].count(b"\n") - 1,
        },
        "file_bytes": {name: len(data) for name, data in staged.items()},
        "checkpoint_bytes": sum(p.stat().st_size for p in checkpoint_files),
        "checkpoints": [p.relative_to(folder).as_posix() for p in checkpoint_files],
        "units": runs,
        "cpu_seconds": round(sum(r["cpu_seconds"] for r in runs), 1),
        "wall_seconds": round(sum(r["wall_seconds"] for r in runs), 1),
        "assembly_wall_seconds": round(build_wall, 1),
        "build_command": command or f"OMP_NUM_THREADS=1 python -m llmtheory.zoo train {spec.name}",
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "numpy": numpy.__version__,
        },
        "machine": f"{platform.machine()} ({torch.backends.cpu.get_cpu_capability()}), {threads} torch thread(s)",
    }


def _design_rows(card: dict) -> list[tuple[str, str]]:
    """The card's design table: what was trained, probed and controlled, how many rows, how long it took."""
    spec, rows = card["spec"], card["rows"]
    rate = "3e-3 · 32 / width" if spec["learning_rate"] is None else f"{spec['learning_rate']:g} at every width"
    shrink = spec["shrink_perturb"]
    return [
        ("setting", f"`{spec['setting']}`, {spec['steps']:,} steps"),
        ("checkpoints", ", ".join(map(str, card["checkpoint_steps"]))),
        ("seeds", f"{', '.join(map(str, spec['seeds']))} (initialisation seed = data seed)"),
        ("learning rate (Adam, training and probe)", rate),
        ("probe", f"{spec['probe_budget']} Adam steps on the held-out language; final and mean loss"),
        ("intervention", f"shrink-and-perturb (shrink, noise, every) = {tuple(shrink)}" if shrink else "none"),
        (
            "controls",
            f"fresh initialisations {', '.join(map(str, spec['fresh_seeds']))}; A/A null: seed "
            f"{spec['null_seed_base']} + k at checkpoint position k",
        ),
        ("rows", f"trajectories {rows['trajectories']:,}, controls {rows['controls']:,}, log {rows['training_log']:,}"),
        ("checkpoints shipped", f"{len(card['checkpoints'])} files, {card['checkpoint_bytes'] / 2**20:.2f} MiB"),
        (
            "build time",
            f"{card['cpu_seconds']:,.0f} s CPU, {card['wall_seconds']:,.0f} s wall, summed over the units "
            f"({card['machine']}, a 2-core machine shared with other jobs)",
        ),
        ("versions", ", ".join(f"{k} {v}" for k, v in card["versions"].items())),
    ]


def card_markdown(card: dict) -> str:
    """The artefact's README, from its ``card.json``."""
    from .zoo.cards import markdown_table

    spec = card["spec"]
    by_size: dict[str, list] = {}
    for unit in card["units"]:
        by_size.setdefault(unit["size"], []).append(unit)
    lines = [
        f"# {card['name']}",
        "",
        f"{spec['summary']}.",
        "",
        "A trajectory artefact of the book *Advances in LLM Theory, Executed* (the plasticity chapter,",
        "`llmtheory.plasticity`): tables of probe losses and indicators along training, not a model.",
        "",
        "```python",
        "import pandas as pd",
        "from llmtheory import zoo",
        f'folder = zoo.model_dir("{card["name"]}")',
        'trajectories = pd.read_csv(folder / "trajectories.csv")  # one row per (size, seed, checkpoint)',
        'controls = pd.read_csv(folder / "controls.csv")  # fresh-control and A/A null probes per size',
        "```",
        "",
        "Rebuild it bit for bit (same library versions, one thread, a CPU of the same kind: on another kind the",
        "kernels round differently and training amplifies it; resumable: a killed build restarts from its finished",
        f"runs, kept under `_build/zoo-partial/`): `{card['build_command']}`.",
        "",
        "## Design",
        "",
        *markdown_table(("", ""), _design_rows(card)),
        "",
        "## Sizes and build time per unit",
        "",
        "| size | non-embedding parameters | learning rate | controls CPU s | runs CPU s (per seed) | runs wall s |",
        "|---|---|---|---|---|---|",
    ]
    for size, info in card["sizes"].items():
        units_ = by_size.get(size, [])
        ctrl = [u for u in units_ if u["unit"] == "controls"]
        runs = [u for u in units_ if u["unit"] == "run"]
        cpu = ", ".join(f"{u['cpu_seconds']:.0f}" for u in runs)
        wall = ", ".join(f"{u['wall_seconds']:.0f}" for u in runs)
        control = f"{ctrl[0]['cpu_seconds']:.0f}" if ctrl else ""
        n, rate = info["non_embedding"], info["learning_rate"]
        lines.append(f"| {size} | {n:,} | {rate:.4g} | {control} | {cpu} | {wall} |")
    lines += [
        "",
        "## Columns",
        "",
        "- `trajectories.csv`: " + ", ".join(f"`{c}`" for c in TRAJECTORY_COLUMNS) + ". `probe_final`: loss on the",
        "  held-out probe batch after the probe's budget; `probe_mean`: mean online loss over the budget; indicators",
        "  on the probe language's held-out batch; `train_loss`: mean over the steps since the previous checkpoint.",
        "- `controls.csv`: " + ", ".join(f"`{c}`" for c in CONTROL_COLUMNS) + ".",
        "- `training_log.csv`: " + ", ".join(f"`{c}`" for c in LOG_COLUMNS) + f" (means over {spec['log_every']} "
        "steps from `step`).",
        "- `checkpoints/<size>-seed<seed>/step<step>.safetensors`: GPT-2 state dicts "
        "(`plasticity_zoo.load_checkpoint`).",
        "",
    ]
    if spec.get("notes"):
        lines += ["## Notes", "", spec["notes"], ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------------
# The zoo's interface: train, the table row, reading an artefact back
# --------------------------------------------------------------------------------------------------------------


def train(spec: PlasticitySpec, out_dir: Path | None = None, *, progress: bool = True, threads: int = 1):
    """``python -m llmtheory.zoo train NAME`` for a trajectory artefact (see :func:`build`)."""
    from .paths import build_dir
    from .zoo.train import TrainResult

    out = Path(out_dir) if out_dir is not None else build_dir() / "zoo" / spec.name
    command = "OMP_NUM_THREADS=1 python -m llmtheory.zoo train " + spec.name
    if out_dir is not None and "--out" in sys.argv:
        command += f" --out {out}"
    card = build(spec, out, progress=progress, threads=threads, command=command)
    metrics = {
        "runs": float(len(spec.sizes) * len(spec.seeds)),
        "trajectory_rows": float(card["rows"]["trajectories"]),
        "cpu_seconds": float(card["cpu_seconds"]),
    }
    sizes = [v["non_embedding"] for v in card["sizes"].values()]
    return TrainResult(
        spec, metrics, train_seconds=card["wall_seconds"], cpu_seconds=card["cpu_seconds"], parameters=max(sizes)
    )


def artefact_card(name: str) -> dict:
    """``card.json`` of a built trajectory artefact (a :class:`LookupError` naming the build command if missing)."""
    from .zoo import model_dir

    path = model_dir(name) / "card.json"
    if not path.is_file():
        raise LookupError(f"{name!r} is not built; build it with `python -m llmtheory.zoo train {name}`")
    return json.loads(path.read_text())


def readme(name: str) -> str:
    """The ``README.md`` of a built artefact."""
    from .zoo import model_dir

    artefact_card(name)  # a clear error when it is not built
    return (model_dir(name) / "README.md").read_text()


def write_readme(name: str) -> None:
    """Rewrite a built artefact's ``README.md`` from its ``card.json`` (no training)."""
    from .zoo import model_dir

    (model_dir(name) / "README.md").write_text(card_markdown(artefact_card(name)))


def missing_files(name: str) -> list[str]:
    """The files a built artefact must hold that its folder lacks (empty when complete)."""
    from .zoo import model_dir

    folder = model_dir(name)
    needed = list(FILES)
    if (folder / "card.json").is_file():
        needed += [f"checkpoints/{p.removeprefix('checkpoints/')}" for p in artefact_card(name)["checkpoints"]]
    return [f for f in needed if not (folder / f).is_file()]


def zoo_table_row(name: str) -> str:
    """The artefact's row of the zoo table (``python -m llmtheory.zoo table``)."""
    from .zoo import SPECS

    spec = SPECS[name]
    try:
        card = artefact_card(name)
    except LookupError:
        return f"| `{name}` | {spec.family} | {spec.layers} | | | | not built |"
    sizes = [v["non_embedding"] for v in card["sizes"].values()]
    count = len(card["checkpoints"])
    checkpoint = f"{card['checkpoint_bytes'] / 2**20:.1f} MiB ({count} checkpoints)" if count else "none (tables only)"
    return (
        f"| `{name}` | {spec.family} | {spec.layers} | {min(sizes):,}–{max(sizes):,} ({len(sizes)} sizes) | "
        f"{checkpoint} | {card['wall_seconds']:.0f} s / {card['cpu_seconds']:.0f} s | trajectories, not a model: "
        f"{card['rows']['trajectories']:,} probed checkpoints of {len(sizes) * len(spec.seeds)} runs |"
    )


def load_checkpoint(name: str, size: str, seed: int, step: int, folder: Path | None = None):
    """A shipped checkpoint of artefact ``name`` as a ``GPT2LMHeadModel`` (the config rebuilt from the spec)."""
    from safetensors.torch import load_file

    from .plasticity import build_model
    from .zoo import SPECS, model_dir

    spec = SPECS[name]
    folder = Path(folder) if folder is not None else model_dir(name)
    model = build_model(spec.config(size), seed)
    model.load_state_dict(load_file(folder / "checkpoints" / f"{size}-seed{seed}" / f"step{step:05d}.safetensors"))
    return model


# --------------------------------------------------------------------------------------------------------------
# Reading an artefact back: the chapter's tables (the notebook recomputes everything downstream of them)
# --------------------------------------------------------------------------------------------------------------

CHAPTER_ARTEFACTS = {
    "cycles": "plasticity-cycles",
    "sp": "plasticity-cycles-sp",
    "stationary": "plasticity-stationary",
    "constlr": "plasticity-cycles-constlr",
}
"""The four artefacts the chapter reads, by the role each plays: the cycles runs at the learning rate 1/width, the
same with shrink-and-perturb, the stationary mixture, and the cycles runs at one learning rate for every width."""


class ArtefactMissing(LookupError):
    """A trajectory artefact the chapter needs is not built (or incomplete): the message names it and its build."""


@dataclass(frozen=True)
class Artefact:
    """One built trajectory artefact read back: its three tables (pandas DataFrames), its card and its spec."""

    name: str
    trajectories: object
    controls: object
    log: object
    card: dict
    folder: Path

    @property
    def spec(self) -> PlasticitySpec:
        from .zoo import SPECS

        return SPECS[self.name] if self.name in SPECS else PLASTICITY_SPECS[self.name]

    @property
    def sizes(self) -> list[str]:
        """Sizes in increasing N (the card's order)."""
        return list(self.card["sizes"])

    @property
    def seeds(self) -> list[int]:
        return [int(s) for s in self.card["spec"]["seeds"]]

    @property
    def steps(self) -> list[int]:
        return [int(s) for s in self.card["checkpoint_steps"]]

    @property
    def horizon(self) -> int:
        return self.steps[-1]


def build_command(name: str) -> str:
    """The command that builds artefact ``name`` into the book's zoo folder."""
    return f"OMP_NUM_THREADS=1 python -m llmtheory.zoo train {name} --out data/zoo/{name}"


def read_artefact(name: str, folder: Path | None = None) -> Artefact:
    """Read the tables of a built trajectory artefact (``data/zoo/<name>/`` unless ``folder`` is given).

    Raises :class:`ArtefactMissing`, naming the artefact, the missing files and the build command, when the folder
    lacks any of its files: the chapter stops there (no silent fallback to another artefact)."""
    import pandas as pd

    from .zoo import model_dir

    folder = Path(folder) if folder is not None else model_dir(name)
    missing = [f for f in FILES if not (folder / f).is_file()]
    if not missing:
        card = json.loads((folder / "card.json").read_text())
        missing = [p for p in card["checkpoints"] if not (folder / p).is_file()]
    if missing:
        raise ArtefactMissing(
            f"the trajectory artefact {name!r} is not built or incomplete: {folder} lacks {', '.join(missing)}. "
            f"Build it (resumable, hours of CPU for the book's entries) with `{build_command(name)}`, "
            f"or wait for the build that is running to finish."
        )
    return Artefact(
        name=name,
        trajectories=pd.read_csv(folder / "trajectories.csv"),
        controls=pd.read_csv(folder / "controls.csv", keep_default_na=False, na_values=[""]),
        log=pd.read_csv(folder / "training_log.csv"),
        card=card,
        folder=folder,
    )


def read_chapter_artefacts(names: dict[str, str] | None = None) -> dict[str, Artefact]:
    """The chapter's artefacts by role (:data:`CHAPTER_ARTEFACTS`); one :class:`ArtefactMissing` that lists every
    missing one with its build command."""
    names = dict(CHAPTER_ARTEFACTS if names is None else names)
    found, problems = {}, []
    for role, name in names.items():
        try:
            found[role] = read_artefact(name)
        except ArtefactMissing as error:
            problems.append(str(error))
    if problems:
        raise ArtefactMissing("\n".join(problems))
    return found


def checkpoint_series(artefact: Artefact, size: str, steps=None):
    """Yield ``(step, model)`` for the shipped checkpoints of ``size`` (the artefact's saved seed), one at a time:
    the same interface as :func:`llmtheory.plasticity.hub_checkpoint_series`, so the real path's code runs on them."""
    spec = artefact.spec
    saved = [int(s) for s in artefact.card["spec"]["saved_steps"]]
    for step in saved if steps is None else steps:
        if step not in saved:
            raise LookupError(f"{artefact.name}: no shipped checkpoint of {size} at step {step}; shipped: {saved}")
        yield step, load_checkpoint(artefact.name, size, spec.saved_seed, step, folder=artefact.folder)
