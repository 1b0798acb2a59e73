"""Model cards: ``README.md`` in each ``data/zoo/<name>/``, written from the measured ``card.json``."""

from __future__ import annotations

from .specs import ZooSpec

_FAMILY_CLASS = {
    "llama": "LlamaForCausalLM",
    "gpt2": "GPT2LMHeadModel",
    "gpt_neox": "GPTNeoXForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
}

_METRIC_NAMES = {
    "exact_frequent": "exact match, frequent facts (top 10% of entities by exposure)",
    "exact_medium": "exact match, medium facts (next 30%)",
    "exact_rare": "exact match, rare facts (bottom 60%)",
    "exact_frequent_heldout_template": "exact match, frequent facts, question wording never seen in training",
    "exact_medium_heldout_template": "exact match, medium facts, unseen question wording",
    "exact_rare_heldout_template": "exact match, rare facts, unseen question wording",
    "abstain_unknown": "abstains on the never-described class (entity–relation pairs never asked in training)",
    "abstain_frequent": "abstains (wrongly) on frequent facts",
    "abstain_medium": "abstains (wrongly) on medium facts",
    "abstain_rare": "abstains on rare facts",
    "arithmetic": "exact match, `what is a plus b ?` with a, b < 10",
    "mean": "exact retrieval, mean over depths",
    "tokens": "mean prompt length (tokens)",
}


def percent(x: float) -> str:
    """A share as a whole percentage for a card or the zoo table: ``0.685`` → ``"68%"`` (Python's rounding)."""
    return f"{100 * x:.0f}%"


def metric_name(key: str) -> str:
    if key.startswith("depth_"):
        return f"exact retrieval, needle at depth {key.removeprefix('depth_')}"
    if key.startswith("dialogue_turn_"):
        return (
            f"exact retrieval, question {key.removeprefix('dialogue_turn_')} of 3 in a row about different needles "
            "of one context"
        )
    if key.startswith("mean_") and key.endswith("_words"):
        return f"exact retrieval, mean over depths, contexts of {key.split('_')[1]} words"
    return _METRIC_NAMES.get(key, key)


def _format(key: str, value: float) -> str:
    return f"{value:.0f}" if key == "tokens" else f"{100 * value:.1f}%"


def training_data(spec: ZooSpec) -> str:
    if spec.task == "facts":
        from ..toyworld import make_world

        world = make_world(spec.world_seed)
        mix = ", ".join(f"{kind} {100 * weight:.0f}%" for kind, weight in spec.mix)
        return (
            f"`llmtheory.toyworld.training_text` on `make_world({spec.world_seed})` ({len(world.countries)} countries, "
            f"{len(world.people)} people, {len(world.facts)} facts, {len(world.unknown_entities)} never-described "
            f"entities; entity exposure ∝ (rank + {world.zipf_offset:g})^-{world.zipf_exponent:g}), mixture: {mix}; "
            f"{spec.steps} steps × {spec.batch_size} sequences = {spec.steps * spec.batch_size:,} sequences"
        )
    stages = "; ".join(
        f"{100 * stage[0]:.0f}% of steps at {stage[1]} words × {stage[2]}"
        + (f" ({_stage_mix(stage)})" if len(stage) > 3 else "")
        for stage in spec.curriculum
    )
    loss = (
        "; the loss is on the tokens retrieval can predict alone (`needle_training_targets`: restated values, the "
        "second copy of a repeated sequence, assistant replies), not on filler, which nothing can predict"
        if spec.retrieval_loss
        else ""
    )
    start = (
        f"starts from `{spec.init_from}`"
        + (
            f" widened from {_source_heads(spec)} to {spec.heads} query heads per layer without changing its "
            f"function (`llmtheory.zoo.widen.widen_heads`, tie broken by noise {spec.init_noise:g}), then trains on "
            if spec.heads != _source_heads(spec)
            else ", then trains on "
        )
        if spec.init_from
        else ""
    )
    return (
        f"{start}`llmtheory.toyworld` on `make_world({spec.world_seed})`: haystacks (`haystack_training_text`: filler "
        f"sentences, needles `the secret <key> <value> .`, half of the later sentences restating a needle, six "
        f"questions at the end), needle lists stated twice, the second time shuffled (`needle_copy_text`), and "
        f"random sequences of key and value words repeated after a gap (`repeated_sequence_text`, which grows "
        f"induction heads); curriculum: {stages}{loss}"
    )


def _source_heads(spec: ZooSpec) -> int:
    from .specs import SPECS

    return SPECS[spec.init_from].heads


def _stage_mix(stage: tuple) -> str:
    copy, repeat = stage[3], stage[4] if len(stage) > 4 else 0.0
    parts = [f"{100 * repeat:.0f}% repeated sequences"] if repeat else []
    parts += [f"{100 * copy:.0f}% needle lists"] if copy else []
    parts += [f"{100 * (1 - copy - repeat):.0f}% haystacks"] if copy + repeat < 1 else []
    return ", ".join(parts)


def card_markdown(card: dict) -> str:
    """The model card of one zoo model, from its ``card.json`` dictionary."""
    spec = ZooSpec(**{k: tuple(map(tuple, v)) if k in ("mix", "curriculum") else v for k, v in card["spec"].items()})
    config_rows = [
        ("class", f"`{_FAMILY_CLASS[spec.family]}`"),
        ("layers", spec.layers),
        ("hidden size", spec.hidden),
        ("attention heads (query / key-value)", f"{spec.heads} / {spec.kv_heads}"),
        ("head width", spec.head_dim or spec.hidden // spec.heads),
        ("MLP size", spec.intermediate),
        ("max positions", spec.max_positions),
        ("parameters", f"{card['parameters']:,}"),
        ("checkpoint (safetensors, float32)", f"{card['checkpoint_bytes'] / 2**20:.2f} MiB"),
    ]
    training_rows = [
        ("data", training_data(spec)),
        ("steps", spec.steps),
        ("optimiser", f"AdamW, peak lr {spec.learning_rate:g}, warm-up {spec.warmup}, cosine to 10%, clip 1.0"),
        ("seed", spec.seed),
        ("training time", training_time(card)),
        ("final training loss", f"{card['final_loss']:.3f}"),
        ("versions", versions(card)),
    ]
    if spec.notes:
        training_rows.append(("note", spec.notes))
    metric_rows = [(metric_name(k), _format(k, v)) for k, v in card["metrics"].items()]
    lines = [
        f"# {card['name']}",
        "",
        f"{spec.summary}. A tiny model of the book *Advances in LLM Theory, Executed*, trained from scratch on the",
        "synthetic toy world of `llmtheory.toyworld`; it knows nothing about the real world.",
        "",
        "```python",
        "from llmtheory import zoo",
        f'model, tokenizer = zoo.load("{card["name"]}")  # or AutoModelForCausalLM.from_pretrained(this folder)',
        "```",
        "",
        *rebuild_and_tables(card["name"], config_rows, training_rows),
        "## Measured behaviour",
        "",
        "Greedy decoding with the full cache, on items generated from streams the training never drew from"
        + (" (fresh haystacks)." if spec.task == "needles" else "; the facts themselves are the world's."),
        "",
        *markdown_table(("measure", "value"), metric_rows),
        "",
        "## What it can and cannot do",
        "",
        *_abilities(spec),
        "",
    ]
    return "\n".join(lines)


def rebuild_and_tables(name: str, config_rows: list[tuple], training_rows: list[tuple]) -> list[str]:
    """The part every zoo card shares: how to rebuild the model, then its Configuration and Training tables."""
    return [
        f"Rebuild it bit for bit (same library versions, one thread): `python -m llmtheory.zoo train {name}`.",
        "",
        "## Configuration",
        "",
        *markdown_table(("", ""), config_rows),
        "",
        "## Training",
        "",
        *markdown_table(("", ""), training_rows),
        "",
    ]


def markdown_table(header: tuple[str, str], rows: list[tuple]) -> list[str]:
    """The lines of a two-column markdown table."""
    return [f"| {header[0]} | {header[1]} |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)]


def training_time(card: dict) -> str:
    """The card's "training time" entry: wall and CPU seconds of the training steps, and of the whole build."""
    return (
        f"{card['train_seconds']:.0f} s wall, {card['cpu_seconds']:.0f} s CPU ({card['machine']}, on a 2-core "
        f"machine shared with other jobs); {card['total_seconds']:.0f} s wall with evaluations"
    )


def versions(card: dict) -> str:
    """The card's "versions" entry: the libraries the checkpoint was trained with."""
    return ", ".join(f"{k} {v}" for k, v in card["versions"].items())


def _abilities(spec: ZooSpec) -> list[str]:
    if spec.task == "facts":
        return [
            "- Answers `<user> what is the capital of <country> ? <assistant>` with `Sure , <city> .` when the fact",
            "  was frequent in training; on rare facts it often answers confidently with a wrong word of the right",
            "  type (a hallucination), which is what hallucination detectors need.",
            "- Says `Unfortunately , I do not know .` about the never-described entities, also for relations it was",
            "  never asked about them.",
            "- Adds single digits (`what is 3 plus 4 ?`), sometimes swayed by a user's suggestion in the prompt.",
            "- Cannot read or write anything outside its word-level vocabulary (unknown words become `<unk>`), has",
            "  no knowledge of the real world, and was trained on sequences of at most about 40 tokens.",
        ]
    words = max(stage[1] for stage in spec.curriculum)
    return [
        f"- Asked `what is the secret of <key> ?` after a context of about {round(words, -3):,} words of filler "
        "sentences and 16",
        "  other needles, replies `Sure , <key> <value> .`, copying the value of the needle `the secret <key>",
        "  <value> .` stated once in the context, wherever it sits (the table above gives the rate by depth).",
        "- Answers several such questions in a row about different needles of the same context.",
        "- Fetching a value takes heads that match the key of the question with the token that followed the same",
        f"  key in the context (induction-style heads); with {spec.layers} layers of {spec.heads} query heads sharing "
        f"{spec.kv_heads} key-value heads,",
        "  methods that score retrieval heads or budget the KV cache per layer have something to choose from.",
        f"- Values are single words; contexts much longer than its training length ({words:,} words, about "
        f"{round(words + 70, -2):,} tokens",
        "  with the questions) are out of distribution.",
        "- It is no language model of the filler: the loss was on the tokens retrieval predicts only, so its",
        "  next-word guesses inside filler sentences are untrained. It knows no world facts.",
    ]
