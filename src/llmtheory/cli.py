"""Command line: ``python -m llmtheory list | run <slug> [--scale S] [-p KEY=VALUE ...] | claims | sweep | new <slug>``.

``run`` executes a chapter with papermill into ``_build/runs/`` and prints the claims it recorded;
``claims`` prints every ledger saved at a tier and writes the book's claims page from them (with each claim's
verdict at every seed, when sweeps have run); ``sweep`` runs a grid of chapters × seeds × parameters on Dask.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import time
from pathlib import Path

from .chapters import Chapter, all_chapters, chapter, written_chapters
from .claims import load_ledgers, render_claims_page, run_time, summary_figure
from .params import SCALES, ParameterError, check_values
from .paths import build_dir, claims_dir, repo_root


def parse_assignment(text: str) -> tuple[str, object]:
    """``"SEED=3"`` → ``("SEED", 3)``; values are Python literals when they parse as one, else strings."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ParameterError(f"-p {text!r} must look like KEY=VALUE, e.g. -p SEED=3")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    return key.strip(), value


def notebook_parameters(notebook: Path) -> dict[str, object]:
    """The names and default values in the notebook's ``parameters`` cell."""
    import papermill

    found = papermill.inspect_notebook(str(notebook))
    return {name: spec["default"] for name, spec in found.items()}


def check_overrides(found: Chapter, overrides: dict[str, list], root: Path | None = None) -> dict[str, object]:
    """Refuse, before any notebook starts, a parameter that chapter ``found`` does not have and a value that its
    declaration (``llmtheory.<slug>.PARAMETERS``) refuses; ``overrides`` maps each name to its values. Returns the
    notebook's defaults."""
    slug = found.slug
    defaults = notebook_parameters(found.notebook(root))
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise ParameterError(
            f"parameter(s) {', '.join(unknown)} not in {slug}; its parameters are: {', '.join(defaults)}"
        )
    declared = found.declared_parameters()
    for name, values in overrides.items():
        for value in values if declared is not None else ():
            check_values({name: value}, declared)
    return defaults


def run_chapter(slug: str, scale: str, overrides: dict[str, object], root: Path | None = None) -> Path:
    """Execute chapter ``slug`` at ``scale`` with papermill; return the path of its saved ledger."""
    import papermill

    root = root or repo_root()
    available = {c.slug: c for c in written_chapters(root)}
    if slug not in available:
        raise ParameterError(f"chapter {slug!r} is not valid; choose one of: {', '.join(available) or 'none'}")
    if scale not in SCALES:
        raise ParameterError(f"--scale {scale!r} is not valid; choose one of: {', '.join(SCALES)}")
    notebook = available[slug].notebook(root)
    defaults = check_overrides(available[slug], {name: [value] for name, value in overrides.items()}, root)
    parameters = {**overrides, "SCALE": scale}
    seed = parameters.get("SEED", defaults.get("SEED", 0))
    output = build_dir() / "runs" / f"{slug}-{scale}-seed{seed}.ipynb"
    output.parent.mkdir(parents=True, exist_ok=True)
    ledger_path = claims_dir(scale) / f"{slug}.json"
    started = time.time()
    papermill.execute_notebook(
        str(notebook),
        str(output),
        parameters=parameters,
        cwd=str(notebook.parent),
        kernel_name="python3",
        progress_bar=True,
    )
    if not ledger_path.is_file() or ledger_path.stat().st_mtime < started:
        raise RuntimeError(f"{slug} ran but did not save its ledger to {ledger_path} (no ledger.report()?)")
    print(f"executed notebook: {output}")
    return ledger_path


def format_ledger(ledger: dict) -> str:
    """A plain-text table of one saved ledger."""
    head = (
        f"{ledger['slug']} — scale {ledger['scale']}, seed {ledger['seed']}, "
        f"model {ledger['model'] or 'none'}, {run_time(ledger)}"
    )
    rows = []
    for c in ledger["claims"]:
        rows.append(f"  [{c['verdict']}] ({c.get('kind', '?')}) {c['id']}: {c['claim']}")
        rows.append(f"      paper: {c['paper']} | ours: {c['ours']}")
        if c.get("control"):
            rows.append(f"      control: {c['control']}")
    return "\n".join([head, *rows])


def _cmd_list(_args) -> int:
    written = {c.slug for c in written_chapters()}
    for c in all_chapters():
        status = "ready" if c.slug in written else "planned"
        print(f"{c.slug:22s} {status:8s} Part {c.part}: {c.title}")
    return 0


def _cmd_run(args) -> int:
    overrides = dict(parse_assignment(p) for p in args.param)
    ledger_path = run_chapter(args.slug, args.scale, overrides)
    print(format_ledger(json.loads(ledger_path.read_text())))
    return 0


def _cmd_claims(args) -> int:
    ledgers = load_ledgers(args.scale)
    for ledger in ledgers:
        print(format_ledger(ledger), end="\n\n")
    output = Path(args.output) if args.output else repo_root() / "book" / "claims.md"
    figure = summary_figure(ledgers, output.with_name(f"{output.stem}_summary.png")) if ledgers else None
    from .sweep import seed_verdicts

    seeds = seed_verdicts(args.scale)
    page = render_claims_page(ledgers, args.scale, figure=figure.name if figure else None, seeds=seeds)
    output.write_text(page)
    print(f"{len(ledgers)} chapter ledger(s) at tier {args.scale!r}; wrote {output}")
    return 0


def _cmd_sweep(args) -> int:
    from .sweep import plan_jobs, run_sweep, split_values

    slugs = [c.slug for c in written_chapters()] if args.all else args.slugs
    available = {c.slug for c in written_chapters()}
    unknown = [s for s in slugs if s not in available]
    if not slugs or unknown:
        raise ParameterError(
            f"chapter(s) {', '.join(unknown) or '(none given)'} not valid; name chapters or pass --all; "
            f"the chapters are: {', '.join(sorted(available))}"
        )
    grid: dict[str, list] = {}
    for assignment in args.param:
        key, sep, raw = assignment.partition("=")
        if not sep:
            raise ParameterError(f"-p {assignment!r} must look like KEY=V1,V2, e.g. -p MODEL=a,b")
        grid[key.strip()] = [parse_assignment(f"{key}={value}")[1] for value in split_values(raw)]
    try:
        seeds = [int(s) for s in split_values(args.seeds)]
    except ValueError:
        raise ParameterError(f"--seeds {args.seeds!r} must be integers separated by commas, e.g. 0,1,2") from None
    for slug in slugs:  # refuse a parameter or a value a chapter does not accept before starting any job
        check_overrides(chapter(slug), grid)
    records = run_sweep(plan_jobs(slugs, args.scale, seeds, grid), scheduler=args.scheduler, workers=args.workers)
    for status in ("ok", "skipped", "failed"):
        print(f"{status}: {sum(r['status'] == status for r in records)}")
    for r in records:
        if r["status"] == "failed":
            print(f"  {r['job']}: cell {r['cell']}: {r['error']}")
    return 1 if any(r["status"] == "failed" for r in records) else 0


def _cmd_course(args) -> int:
    from .course import prerequisite_figure, render_course_page

    output = Path(args.output) if args.output else repo_root() / "book" / "course.md"
    figure = prerequisite_figure(all_chapters(), output.with_name(f"{output.stem}_prerequisites.png"))
    output.write_text(render_course_page(repo_root(), figure=figure.name))
    print(f"wrote {output}")
    return 0


def _cmd_student(args) -> int:
    from .teaching import checked_exercises, write_student_notebooks

    slugs = args.slugs or [c.slug for c in written_chapters()]
    out_dir = Path(args.out) if args.out else build_dir() / "student"
    for path in write_student_notebooks(slugs, repo_root(), out_dir):
        import nbformat

        checked = len(checked_exercises(nbformat.read(path, as_version=4)))
        print(f"wrote {path} ({checked} auto-checked exercise(s))")
    return 0


def _cmd_grade(args) -> int:
    from .teaching import grade_notebook, grade_table

    path = Path(args.notebook)
    if not path.is_file():
        raise FileNotFoundError(f"no notebook at {path}")
    grades, failures = grade_notebook(path, root=repo_root(), scale=args.scale)
    print(grade_table(grades))
    for index, error in failures:
        print(f"the notebook itself failed at cell {index} (not an exercise): {error}", file=sys.stderr)
    if failures:
        return 2
    return 0 if grades and all(g.passed for g in grades) else 1


def _cmd_new(args) -> int:
    from .chapters import register_chapter, registry_path
    from .scaffold import add_to_toc, write_skeleton

    known = {c.slug for c in all_chapters()}
    if args.slug not in known:
        if not (args.title and args.part and args.paper):
            raise ParameterError(
                f"chapter {args.slug!r} is not in the book ({', '.join(sorted(known))}); to start a chapter of your "
                "own, register it: python -m llmtheory new <slug> --title '...' --part N --paper 'authors, venue, link'"
            )
        register_chapter(
            args.slug,
            title=args.title,
            part=args.part,
            paper=args.paper,
            prerequisites=args.prerequisite,
            objectives=args.objective,
        )
        print(f"registered {args.slug} in {registry_path()}")
    path = write_skeleton(args.slug)
    print(f"wrote {path}")
    if add_to_toc(args.slug):
        print(f"added notebooks/{args.slug} to _toc.yml under {chapter(args.slug).part_name}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m llmtheory", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the chapters").set_defaults(func=_cmd_list)
    run = sub.add_parser("run", help="execute one chapter with papermill and print its claims")
    run.add_argument("slug")
    run.add_argument("--scale", default="book", choices=SCALES)
    run.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    run.set_defaults(func=_cmd_run)
    claims = sub.add_parser("claims", help="print saved ledgers and write the claims page")
    claims.add_argument("--scale", default="book", choices=SCALES)
    claims.add_argument("--output", help="where to write the page (default: book/claims.md)")
    claims.set_defaults(func=_cmd_claims)
    sweep = sub.add_parser("sweep", help="run chapters × seeds × parameters as papermill jobs on a Dask cluster")
    sweep.add_argument("slugs", nargs="*", help="chapters to run (or --all)")
    sweep.add_argument("--all", action="store_true", help="every written chapter")
    sweep.add_argument("--scale", default="book", choices=SCALES)
    sweep.add_argument("--seeds", default="0", help="seeds separated by commas, e.g. 0,1,2")
    sweep.add_argument("-p", "--param", action="append", default=[], metavar="KEY=V1,V2")
    sweep.add_argument("--scheduler", help="address of an existing Dask scheduler (default: a local cluster)")
    sweep.add_argument("--workers", type=int, help="local workers (default: one per core)")
    sweep.set_defaults(func=_cmd_sweep)
    course = sub.add_parser("course", help="write the course page (book/course.md) from the chapters and ledgers")
    course.add_argument("--output", help="where to write the page (default: book/course.md)")
    course.set_defaults(func=_cmd_course)
    student = sub.add_parser("student", help="write student notebooks (solutions removed) to _build/student/")
    student.add_argument("slugs", nargs="*", help="chapters (default: every written chapter)")
    student.add_argument("--out", help="folder to write to (default: _build/student)")
    student.set_defaults(func=_cmd_student)
    grade = sub.add_parser("grade", help="execute a student notebook and grade its auto-checked exercises")
    grade.add_argument("notebook")
    grade.add_argument("--scale", default="smoke", choices=SCALES)
    grade.set_defaults(func=_cmd_grade)
    new = sub.add_parser("new", help="write the skeleton of a chapter (registering a paper of your own with --title)")
    new.add_argument("slug", help="a chapter of the book, or a new slug with --title, --part and --paper")
    new.add_argument("--title", help="the paper's title (registers a new chapter)")
    new.add_argument("--part", type=int, help="the part of the book, 1 to 6")
    new.add_argument("--paper", help="authors, venue, link")
    new.add_argument("--prerequisite", action="append", default=[], help="a chapter slug or topic (repeatable)")
    new.add_argument("--objective", action="append", default=[], help="a learning objective (repeatable)")
    new.set_defaults(func=_cmd_new)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ParameterError, FileNotFoundError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
