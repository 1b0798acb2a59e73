"""``python -m llmtheory.zoo list | train NAME [--out DIR] | card NAME | table | vlm-table``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..params import ParameterError, check_choice

TASK_MODULES = {
    "vlm": "llmtheory.zoo.vlm",
    "clip": "llmtheory.zoo.clip",
    "sce_specs": "llmtheory.qldpc_sce_proposer",
    "screenplays": "llmtheory.bechdel_lm",
    "readme_summaries": "llmtheory.metagente_lm",
    "proverb_stories": "llmtheory.same_lesson_lm",
    "dialogues": "llmtheory.pigeonholing_lm",
    "sgpo_procedures": "llmtheory.sgpo_lm",
    "plasticity": "llmtheory.plasticity_zoo",
}
"""Tasks whose models a chapter's module trains and describes (its ``train`` and ``card_markdown``); the other
tasks (facts, needles) use :func:`llmtheory.zoo.train.train` and :mod:`llmtheory.zoo.cards`."""


def _task_module(task: str):
    import importlib

    return importlib.import_module(TASK_MODULES[task])


def table() -> str:
    """A markdown table of every shipped model's size, training time and headline accuracy (for the zoo page)."""
    from . import SPECS, card_data, list

    rows = [
        "| model | family | layers | parameters | checkpoint | training time (wall / CPU) | measured |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in list():
        if SPECS[name].task in ("vlm", "clip"):
            continue  # the vision-language models and dual encoders have their own tables
        if SPECS[name].task == "plasticity":  # a trajectory artefact (tables and a few checkpoints, not a model)
            rows.append(_task_module("plasticity").zoo_table_row(name))
            continue
        try:
            data = card_data(name)
        except LookupError:
            rows.append(f"| `{name}` | {SPECS[name].family} | {SPECS[name].layers} | | | | not built |")
            continue
        spec, metrics = data["spec"], data["metrics"]
        own = getattr(_task_module(spec["task"]), "zoo_table_measured", None) if spec["task"] in TASK_MODULES else None
        if own is not None:
            measured = own(metrics)
        elif spec["task"] == "sce_specs":
            measured = (
                f"well-formed proposals {100 * metrics['well_formed']:.0f}%, "
                f"different from the parent {100 * metrics['changed']:.0f}%"
            )
        elif spec["task"] == "screenplays":
            measured = f"measurable scripts {100 * metrics['testable']:.0f}%, {metrics['characters']:.1f} speakers"
        elif spec["task"] == "readme_summaries":
            measured = (
                f"agrees with follow() exactly on {100 * metrics['synthetic_exact_own']:.0f}% of synthetic and "
                f"{100 * metrics['real_train_exact_own']:.0f}% of real READMEs (shuffled directives: "
                f"{100 * metrics['synthetic_exact_shuffled']:.0f}%)"
            )
        elif spec["task"] == "facts":
            measured = (
                f"frequent {100 * metrics['exact_frequent']:.0f}%, medium {100 * metrics['exact_medium']:.0f}%, "
                f"rare {100 * metrics['exact_rare']:.0f}%, abstains on unknown {100 * metrics['abstain_unknown']:.0f}%"
            )
        else:
            depths = [k for k in metrics if k.startswith("depth_")]
            low = min(metrics[k] for k in depths)
            measured = (
                f"retrieval {100 * metrics['mean']:.0f}% (worst depth {100 * low:.0f}%) "
                f"at {metrics['tokens']:.0f} tokens"
            )
        rows.append(
            f"| `{name}` | {spec['family']} | {spec['layers']} | {data['parameters']:,} | "
            f"{data['checkpoint_bytes'] / 2**20:.1f} MiB | "
            f"{data['train_seconds']:.0f} s / {data['cpu_seconds']:.0f} s | {measured} |"
        )
    return "\n".join(rows)


def vlm_table() -> str:
    """A markdown table of the shipped vision-language models: size, training time, accuracy per question kind."""
    from . import SPECS, card_data, list

    rows = [
        "| model | parameters | checkpoint | training time (wall / CPU) | local | global | answering patch masked |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in list():
        if SPECS[name].task != "vlm":
            continue
        try:
            data = card_data(name)
        except LookupError:
            rows.append(f"| `{name}` | | | | | | not built |")
            continue
        m = data["metrics"]
        rows.append(
            f"| `{name}` | {data['parameters']:,} | {data['checkpoint_bytes'] / 2**20:.1f} MiB | "
            f"{data['train_seconds']:.0f} s / {data['cpu_seconds']:.0f} s | {100 * m['local']:.0f}% | "
            f"{100 * m['global']:.0f}% | {100 * m['masked_answer_local']:.0f}% "
            f"(another patch: {100 * m['masked_random_object_local']:.0f}%) |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    from . import SPECS, card, list
    from .train import train

    parser = argparse.ArgumentParser(prog="python -m llmtheory.zoo", description="The tiny model zoo.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the shipped models and their one-line summaries")
    train_parser = commands.add_parser("train", help="rebuild a model from its spec, deterministically")
    train_parser.add_argument(
        "name", help="a zoo name (`list`) or a micro spec (micro-facts, micro-needles, micro-vlm)"
    )
    train_parser.add_argument(
        "--out", type=Path, help="output folder (default: data/zoo/NAME, _build/zoo/NAME if unshipped)"
    )
    train_parser.add_argument("--threads", type=int, default=1, help="torch threads (1 reproduces the checkpoints)")
    train_parser.add_argument("--quiet", action="store_true", help="no progress bar")
    card_parser = commands.add_parser("card", help="print a model's card")
    card_parser.add_argument("name")
    card_parser.add_argument("--write", action="store_true", help="rewrite README.md from card.json (no training)")
    commands.add_parser("table", help="a markdown table of the shipped language models")
    commands.add_parser("vlm-table", help="a markdown table of the shipped vision-language models")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            for name in list():
                print(f"{name:20s} {SPECS[name].summary}")
        elif args.command == "train":
            from ..paths import build_dir
            from . import model_dir

            spec = SPECS[check_choice("NAME", args.name, SPECS)]
            # Unshipped specs (micro, or not yet good enough) never write into data/, which the MANIFEST covers.
            out = args.out or (model_dir(spec.name) if spec.shipped else build_dir() / "zoo" / spec.name)
            trainer = _task_module(spec.task).train if spec.task in TASK_MODULES else train
            result = trainer(spec, out, progress=not args.quiet, threads=args.threads)
            stopped = result.metrics.get("stopped_at_step")  # a staged recipe's gate stopped it: nothing written
            where = (
                f"stopped at step {stopped:.0f} by its gate, nothing saved to {out}" if stopped else f"saved to {out}"
            )
            print(f"{spec.name}: {result.parameters:,} parameters, {result.train_seconds:.0f} s; {where}")
            for key, value in result.metrics.items():
                print(f"  {key}: {value:.3f}")
        elif args.command == "card" and SPECS[check_choice("NAME", args.name, SPECS)].task == "plasticity":
            artefacts = _task_module("plasticity")  # a trajectory artefact: its card.json, no checkpoint to load
            if args.write:
                artefacts.write_readme(args.name)
            print(artefacts.readme(args.name))
        elif args.command == "card":
            if args.write:
                from . import SPECS, card_data, model_dir
                from .cards import card_markdown

                task = SPECS[args.name].task
                if task in TASK_MODULES:
                    card_markdown = _task_module(task).card_markdown
                (model_dir(args.name) / "README.md").write_text(card_markdown(card_data(args.name)))
            print(card(args.name))
        elif args.command == "table":
            print(table())
        else:
            print(vlm_table())
    except (ParameterError, LookupError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
