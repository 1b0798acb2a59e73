"""Training specs of the zoo: one frozen dataclass per model, the single source of truth for how it is built.

``python -m llmtheory.zoo train NAME`` turns a spec into ``data/zoo/NAME/`` deterministically (same spec, same
thread count, same library versions → the same weights, bit for bit).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

FAMILIES = ("llama", "gpt2", "gpt_neox", "qwen2")
TASKS = (
    "facts",
    "needles",
    "sce_specs",
    "screenplays",
    "readme_summaries",
    "proverb_stories",
    "dialogues",
    "sgpo_procedures",
)


@dataclass(frozen=True)
class ZooSpec:
    """How one zoo model is built and trained.

    ``task="facts"``: the fact/chat model, trained on :func:`llmtheory.toyworld.training_text` with the kinds and
    weights of ``mix``. ``task="needles"``: the long-context retrieval model, trained on
    :func:`llmtheory.toyworld.haystack_training_text` with the context lengths of ``curriculum`` (a tuple of
    ``(fraction of steps, words per context, batch size[, share of copy lists[, share of repeated sequences]])``),
    a share ``copy_fraction`` of each batch (or the stage's own share) drawn from
    :func:`llmtheory.toyworld.needle_copy_text` and the stage's share of repeated sequences from
    :func:`llmtheory.toyworld.repeated_sequence_text`. ``task="sce_specs"``: the qLDPC chapter's proposer, trained on
    pairs *specification → one grammar mutation of it* (:mod:`llmtheory.qldpc_sce_proposer`).
    """

    name: str
    family: str
    task: str
    summary: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    steps: int
    batch_size: int
    learning_rate: float
    warmup: int = 50
    weight_decay: float = 0.01
    max_positions: int = 128
    rope_theta: float = 10_000.0
    head_dim: int | None = None
    """Width of one attention head (Llama only); ``None`` means ``hidden // heads``."""
    seed: int = 0
    world_seed: int = 0
    mix: tuple[tuple[str, float], ...] = (
        ("qa", 0.5),
        ("statement", 0.2),
        ("document", 0.15),
        ("abstain", 0.08),
        ("arithmetic", 0.07),
    )
    curriculum: tuple[tuple, ...] = ()
    """Needles: the stages above. README summaries: empty, or ``(steps, batch size, share of short copies)`` stages
    (:func:`llmtheory.metagente_lm.training_stages`)."""
    copy_fraction: float = 0.0
    """Needles: the share of each batch drawn from :func:`llmtheory.toyworld.needle_copy_text`. Staged README
    summaries: the directive mix's share of directive-free draws (:func:`llmtheory.metagente_lm.staged`)."""
    retrieval_loss: bool = False
    """Needles only: put the loss on the tokens :func:`llmtheory.toyworld.needle_training_targets` flags alone."""
    induction_steps: int = 0
    """Facts only: the first ``induction_steps`` steps train on :func:`llmtheory.toyworld.repeated_sequence_text`
    (loss on the copied words only, as for needles) before the fact mix: induction heads first."""
    init_from: str | None = None
    """Start from the weights of this zoo model instead of a random initialisation; if ``heads`` exceeds its
    query-head count, it is first widened without changing its function (:func:`llmtheory.zoo.widen.widen_heads`:
    each query head becomes ``heads / its heads`` copies sharing its key-value head, plus ``init_noise``)."""
    init_noise: float = 0.0
    """With ``init_from`` and widening: the tie-breaking noise on the copies' query projections (relative to the
    projection's standard deviation), drawn from ``seed``."""
    copy_gate: bool = True
    """Staged README summaries only: stop after the first stage when :func:`llmtheory.metagente_lm.copy_gate` rejects
    its copy probe (``False``: train on, the probes are still recorded)."""
    story_cultures: str = "native"
    """Proverb stories only: the training data's cultures, ``"native"`` (:data:`llmtheory.same_lesson_lm.CULTURES`)
    or ``"rotated"`` (:data:`llmtheory.same_lesson_lm.ROTATED_CULTURES`, the chapter's control model)."""
    eval_every: int = 200
    shipped: bool = True
    notes: str = field(default="", compare=False)

    def as_dict(self) -> dict:
        return asdict(self)


def _fact(name: str, family: str, hidden: int, summary: str, kv_heads: int = 4, **kw) -> ZooSpec:
    defaults = dict(
        layers=8,
        heads=8,
        intermediate=2 * hidden,
        steps=1200,
        batch_size=32,
        learning_rate=3e-3,
        warmup=100,
        eval_every=100,
    )
    defaults.update(kw)
    return ZooSpec(
        name=name, family=family, task="facts", summary=summary, hidden=hidden, kv_heads=kv_heads, **defaults
    )


def _story(name: str, family: str, summary: str, **kw) -> ZooSpec:
    """A same_lesson story model (:mod:`llmtheory.same_lesson_lm`): hidden 64, 4 heads, 1,000 steps of batch 16."""
    defaults = dict(hidden=64, layers=3, heads=4, kv_heads=4, intermediate=256, steps=1000, batch_size=16,
                    learning_rate=3e-3, warmup=50, max_positions=160, eval_every=250)  # fmt: skip
    defaults.update(kw)
    return ZooSpec(name=name, family=family, task="proverb_stories", summary=summary, **defaults)


def _micro(name: str, family: str, task: str, summary: str, **kw) -> ZooSpec:
    """A micro spec for tests (not shipped; it trains in seconds): hidden 16, one layer, two query heads."""
    defaults = dict(hidden=16, layers=1, heads=2, kv_heads=1, intermediate=32, steps=2, batch_size=2,
                    learning_rate=1e-3, warmup=1, max_positions=512, eval_every=2, shipped=False)  # fmt: skip
    defaults.update(kw)
    return ZooSpec(name=name, family=family, task=task, summary=summary, **defaults)


NEEDLE_STAGES = (
    (64, 16, 0.0, 1.0),
    (128, 8, 0.25, 0.25),
    (256, 4, 0.25, 0.25),
    (512, 4, 0.25, 0.0),
    (1024, 2, 0.0, 0.0),
    (2048, 1, 0.0, 0.0),
    (4096, 1, 0.0, 0.0),
)
"""The retrievers' curriculum stages, ``(words per context, batch size, share of copy lists, share of repeated
sequences)``: induction heads on repeated sequences first, then ever longer haystacks."""


def _needle_curriculum(*fractions: float, first: int = 0) -> tuple[tuple, ...]:
    """``len(fractions)`` stages of :data:`NEEDLE_STAGES` from stage ``first`` on, the ``i``-th taking
    ``fractions[i]`` of the steps."""
    return tuple((fraction, *stage) for fraction, stage in zip(fractions, NEEDLE_STAGES[first:], strict=False))


SPECS: dict[str, ZooSpec] = {
    s.name: s
    for s in (
        _fact("fact-llama-h48", "llama", 48, "Llama (GQA, 8 query / 4 KV heads), 8 layers, hidden 48: the small one"),
        _fact("fact-llama-h64", "llama", 64, "Llama (GQA, 8 query / 4 KV heads), 8 layers, hidden 64: the middle one"),
        _fact("fact-llama-h96", "llama", 96, "Llama (GQA, 8 query / 4 KV heads), 8 layers, hidden 96: the large one"),
        _fact("fact-qwen2-h64", "qwen2", 64, "Qwen2 (GQA 8 query / 4 KV heads, QKV bias), 8 layers, hidden 64"),
        _fact("fact-gpt2-h64", "gpt2", 64, "GPT-2 (learned positions, LayerNorm, GELU), 8 layers, hidden 64", 8),
        _fact(
            "fact-neox-h64",
            "gpt_neox",
            64,
            "GPT-NeoX (parallel residual, partial RoPE, untied output layer), 8 layers, hidden 64",
            8,
            steps=450,
            notes="GPT-NeoX memorises much faster than the other families on this data: with the 1,200 steps of the "
            "others it reached 88% exact match on rare facts (no hallucinations left to detect), so it stops at 450.",
        ),
        _fact(
            "fact-copy-llama-h64",
            "llama",
            64,
            "Llama (GQA, 8 query / 4 KV heads), 8 layers, hidden 64, induction heads grown before the facts",
            steps=2000,
            learning_rate=1e-3,
            induction_steps=800,
            shipped=False,
            notes="Not shipped: trained once, it failed (below). The entrainment chapter needs a model that both "
            "copies (the fact models' induction score is about 0, and their sentence entrainment beyond template "
            "priming is small: at most a few hundredths of a nat per token, where the needle model gains several "
            "nats) and knows facts (for its no-context accuracy row, which the needle model cannot give). It "
            "follows the needle model's card: random repeated sequences with random lengths and gaps first (800 "
            "steps; the needle model's induction heads appeared after about 800 steps at learning rate 1e-3, while "
            "3e-3 had not formed them after 600), then the fact mix of the other fact models for 1,200 steps. Open: "
            "whether the fact mix keeps the induction heads, and whether 1,200 steps at 1e-3 (the fact models use "
            "3e-3) still teach the frequent facts. Check both (the chapter's induction score and test_zoo's fact "
            "report) before shipping. Cost, measured on the first 100 steps (one thread, shared machine at load 6): "
            "about 0.7 s of CPU per step of repeated sequences at batch 32 (64-word texts, against about 0.12 s for "
            "the short fact texts), so about 12 minutes of CPU in all, over the zoo's 10-minute budget; the needle "
            "model grew its induction heads with 16 sequences per batch. Trained once as specified (1,142 s on the "
            "shared machine at load 5-8): it fails on both counts. Exact match on frequent facts 0.156 (fact-llama-h64 "
            "1.0), rare 0.050; the entrainment chapter's induction score 0.45 [0.16, 0.74] nats on key and value "
            "words and 0.06 [-0.11, 0.23] on entity names (the needle model: 8.3; fact-llama-h64: 0.01 and -0.19). "
            "So 800 steps of repeated sequences at 1e-3 grew only weak copying, and 1,200 fact steps at 1e-3 are far "
            "too few; next, mix repeated sequences into the fact mix throughout (instead of a phase) at the fact "
            "models' 3e-3 and 1,200+ steps.",
        ),
        ZooSpec(
            name="needle-llama-gqa",
            family="llama",
            task="needles",
            summary="Llama (GQA, 4 query / 2 KV heads of width 32), 4 layers, hidden 128: retrieves needles from "
            "1,000+ tokens",
            hidden=128,
            layers=4,
            heads=4,
            kv_heads=2,
            intermediate=256,
            steps=2400,
            batch_size=4,
            learning_rate=1e-3,
            warmup=50,
            max_positions=2048,
            rope_theta=500_000.0,
            head_dim=32,
            curriculum=_needle_curriculum(0.35, 0.15, 0.125, 0.125, 0.25),
            retrieval_loss=True,
            eval_every=200,
        ),
        ZooSpec(
            name="needle-llama-gqa-4k",
            family="llama",
            task="needles",
            summary="Llama (GQA, 8 query / 2 KV heads of width 32), 4 layers, hidden 128: retrieves needles from "
            "4,000+ tokens",
            hidden=128,
            layers=4,
            heads=8,
            kv_heads=2,
            intermediate=256,
            steps=80,
            batch_size=1,
            learning_rate=3e-4,
            warmup=8,
            max_positions=8192,
            rope_theta=500_000.0,
            head_dim=32,
            curriculum=_needle_curriculum(0.25, 0.75, first=5),
            retrieval_loss=True,
            init_from="needle-llama-gqa",
            init_noise=0.01,
            eval_every=40,
            notes="The long-context retriever of the KV-cache chapter, built cheaply by widening (stop 18): it "
            "starts from needle-llama-gqa (1,024-word haystacks) with each of its 4 query heads per layer split into "
            "two that share its key-value head and half of its o_proj columns (the same logits to 1e-5 before the "
            "noise; noise 0.01 of the query projection's spread breaks the tie), then trains on the last two "
            "curriculum stages only: 20 steps at 2,048 words and 60 at 4,096, one haystack per step, at a fine-tuning "
            "learning rate (3e-4; the source ended at 1e-4). Why so few steps: a step took 2.6-4 s of CPU at 2,048 "
            "words and 7-9 s at 4,096 (one thread), and at load 5-10 this job got a quarter to a third of a core, so "
            "the 250 steps first planned would have taken about 2 hours of wall time; the 80 took 1,126 s of wall "
            "time (530 s CPU), the final evaluation another 450 s of CPU. The retrieval loss at 4,096 words fell from "
            "0.19-0.34 on the first steps to 0.04. On the card's own haystacks (100 prompts per length, 20 per depth, "
            "the same seeds for both models), exact retrieval at 4,096 words is 0.98 [0.93, 0.99] (Wilson 95%) "
            "against needle-llama-gqa's 0.56 [0.46, 0.65] (needle at the very end: 1.00 against 0.05), and at 2,048 "
            "words 1.00 [0.96, 1.00] against 0.79 [0.70, 0.86]. Superseded recipe: the whole needle curriculum from "
            "scratch (840 / 336 / 288 / 240 / 360 / 144 / 192 steps at 64 to 4,096 words); a run of it in stop 17 "
            "stopped at step 1,630 of 2,400 after 51 minutes at load 5-8 (about 2.5 hours for the whole schedule).",
        ),
        ZooSpec(
            name="sce-grammar-llama",
            family="llama",
            task="sce_specs",
            summary="Llama (GQA, 4 query / 2 KV heads), 2 layers, hidden 64: proposes one grammar mutation of a "
            "lifted-product code specification (the qLDPC chapter's LLM path)",
            hidden=64,
            layers=2,
            heads=4,
            kv_heads=2,
            intermediate=192,
            steps=700,
            batch_size=8,
            learning_rate=3e-3,
            warmup=50,
            max_positions=512,
            eval_every=350,
            notes="Sized for 10 minutes of wall time on a shared 2-core machine (load 10-15 when it was trained).",
        ),
        ZooSpec(
            name="screenplay-gpt2",
            family="gpt2",
            task="screenplays",
            summary="GPT-2 (learned positions, word-level), 3 layers, hidden 64: writes short screenplays like the "
            "bechdel chapter's human corpus",
            hidden=64,
            layers=3,
            heads=4,
            kv_heads=4,
            intermediate=256,
            steps=500,
            batch_size=8,
            learning_rate=3e-3,
            warmup=50,
            max_positions=512,
            eval_every=100,
            notes="Trained in 915 s of wall time, 250 s of CPU, on the shared 2-core machine at load 4-8 (one thread): "
            "within the zoo's 10 minutes of CPU, not of wall time at that load. It learned the layout and the lines "
            "(every sampled script parses) but not to keep one cast through a script (about 10 speakers a script "
            "against 4 in its corpus); more steps or a wider model are the next things to try.",
        ),
        ZooSpec(
            name="readme-summarizer-llama",
            family="llama",
            task="readme_summaries",
            summary="Llama (GQA, 4 query / 2 KV heads), 4 layers, hidden 128, byte-level BPE: writes the one-line "
            "summary a Metagente prompt of the instruction grammar asks for (the metagente chapter's first trained "
            "summarizer, not shipped since readme-summarizer-llama-copies replaced it)",
            hidden=128,
            layers=4,
            heads=4,
            kv_heads=2,
            intermediate=384,
            steps=1200,
            batch_size=8,
            learning_rate=3e-3,
            warmup=100,
            max_positions=512,
            eval_every=300,
            notes="Trained in 1,431 s of wall time, 898 s of CPU with its evaluations (910 s for the whole build, "
            "tokenizer included), on the shared 2-core machine at load 5-6 (one thread): within the 20 minutes of "
            "CPU the chapter allows. It did not learn the task: the training loss on the summaries fell from about "
            "ln 2048 = 7.6 at initialisation to 4.0 nats per token (the log starts at step 300, at 5.9) and no "
            "held-out summary is exactly follow()'s; it writes short phrases in the style of the synthetic "
            "templates ('This package implements interactive module for') instead of copying from its input, and "
            "its agreement with follow() barely moves with the directives (the card's table). It shows no copying: "
            "on 16 strings of 50 random tokens, each followed by itself, its loss is 9.85 nats per token on the "
            "first copy and 9.72 on the second, where a model that copies is near 0 (a uniform guess: 7.62; "
            "measured after the build by llmtheory.metagente_lm.copy_probe, which the metagente chapter runs). "
            "Possible causes, not tested: the learning rate (3e-3; needle-llama-gqa, of the same shape, grew "
            "induction heads after about 800 steps at 1e-3, and had not at 3e-3 after 600), too few copied tokens "
            "under the loss (about 32 of 174 tokens per example), the budget. Directive-free examples are 35% of "
            "the draws, about 29% after draws over 256 tokens are drawn again (long copies are redrawn more "
            "often); real prompts can be longer than any training sequence. A first recipe (1,000 steps at "
            "learning rate 2e-3, no directive-free examples, sequences up to 384 tokens) was stopped at step 530 "
            "with the loss at 4.9; this one added the directive-free draws (long copies, the densest copying "
            "signal), shorter sequences and learning rate 3e-3. The next recipe was then tried (spec "
            "readme-summarizer-llama-copies, shipped since; `python -m llmtheory.zoo train "
            "readme-summarizer-llama-copies` rebuilds it and keeps its checkpoint after the first stage under "
            "_build/zoo/readme-summarizer-llama-copies-phase1): 800 steps of batch 16 of short pure copies in the "
            "task's format (the initial prompt over a 16-48-token slice of a synthetic extract, the slice as the "
            "target: llmtheory.metagente_lm.copy_example), learning rate 1e-3, constant after a 100-step warm-up, "
            "and a tokenizer normalizer that puts a space after each newline, to be followed by 700 steps of batch "
            "8 of the directive mix with 30% directive-free draws. Its rule, fixed before the run "
            "(llmtheory.metagente_lm.copy_gate): go on to the mix only if, after the copies, 16 strings of 50 of "
            "the 100 most frequent tokens of training examples (frequent_tokens), each followed by itself, cost "
            "under 2 nats per token on the second copy and at least 1 nat less than on the first. The loss on the "
            "copies fell (its mean over steps 1-200, 201-400, 401-600 and 601-800: 6.36, 4.86, 3.81 and 2.39 nats "
            "per token), but no probe's second copy came near 0. First / second copy at steps 200, 400, 600 and "
            "800: frequent tokens 6.51 / 6.43, 7.00 / 6.75, 7.32 / 7.26 and 8.24 / 7.90 nats per token; the first "
            "60 tokens of 16 held-out synthetic READMEs' extracts (text_copy_probe) 6.07 / 5.78, 5.69 / 5.15, 5.90 "
            "/ 5.19 and 6.72 / 6.41; uniform random tokens (copy_probe) 7.94 / 7.90, 8.52 / 8.37, 8.68 / 8.43 and "
            "9.25 / 9.12 (a uniform guess: 7.62). The run stopped at step 800 by its rule, after 585 s of CPU (23 "
            "minutes of wall time at load 4-5, one thread, tokenizer included; its two runs gave the same losses "
            "and random-token probes), with no further tuning; this checkpoint (the 3e-3 recipe above) stayed the "
            "chapter's summarizer then. What the copies' falling loss is, measured after the stop on the step-800 "
            "checkpoint (format_copy_probe): 32 held-out short copies in the task's format cost 1.57 nats per "
            "target token with their own text in the prompt and 7.44 with another example's text there instead (this "
            "model: 4.60 and 4.79). So that checkpoint copies in the task's format, which the rule did not "
            "measure, though greedy decoding garbled its copies (none of 16 other held-out copies exact), and it "
            "does not continue a string that merely repeats, which is what the rule measured. On the same probes "
            "this model costs 7.57 / 7.48 on frequent tokens and 5.18 / 4.81 on the synthetic extracts. The staged "
            "recipe was then trained to its end with the gate off: readme-summarizer-llama-copies, which replaced "
            "this model in data/zoo and in the chapter (this one is no longer shipped; its rebuild goes to "
            "_build/zoo).",
            shipped=False,
        ),
        ZooSpec(
            name="readme-summarizer-llama-copies",
            family="llama",
            task="readme_summaries",
            summary="Llama (GQA, 4 query / 2 KV heads), 4 layers, hidden 128, byte-level BPE, staged recipe (short "
            "pure copies, then the directive mix): writes the one-line summary a Metagente prompt of the instruction "
            "grammar asks for (the metagente chapter's trained summarizer)",
            hidden=128,
            layers=4,
            heads=4,
            kv_heads=2,
            intermediate=384,
            steps=1500,
            batch_size=16,
            learning_rate=1e-3,
            warmup=100,
            max_positions=512,
            curriculum=((800, 16, 1.0), (700, 8, 0.0)),
            copy_fraction=0.30,
            copy_gate=False,
            eval_every=200,
            notes="Trained in 1,540 s of wall time and 1,264 s of CPU on the shared 2-core machine at load 3-5 (one "
            "thread): 1,088 s to the end of training, the rest its card's measurements and about 35 s of extra "
            "measurements made in the same process (the copy probes and the metagente chapter's "
            "trained-follows-directives row on the test split). Its first 800 steps ran twice (in its first, "
            "gated run and in this one) to identical weights; the whole run was not repeated. The recipe is the "
            "one readme-summarizer-llama's card proposed after that model failed to copy: 800 steps of batch 16 "
            "of short pure copies in the task's format (llmtheory.metagente_lm.copy_example), learning rate "
            "1e-3, constant after a 100-step warm-up, a tokenizer normalizer that puts a space after each "
            "newline, then 700 steps of batch 8 of the directive mix with 30% directive-free draws. Its first "
            "run was stopped at step 800 by a rule fixed before that run (copy_gate: strings of the 100 most "
            "frequent training tokens, each followed by itself, must cost under 2 nats per token on the second "
            "copy and at least 1 nat less than on the first; they cost 8.24 and 7.90). That rule measured plain "
            "repetition, not the task: in the task's own format the step-800 checkpoint's loss was 1.57 nats per "
            "target token with its own text in the prompt and 7.44 with another example's (format_copy_probe). "
            "We then decided, in writing before this run, to run the mix on that evidence as a measurement "
            "(copy_gate=False, a choice made after the rule had spoken; the gate's failure stands in the probe "
            "table above), and decided to ship the result only after its card's numbers and the chapter's "
            "directive row on the test split had been seen. What it learned: in the task's format it copies "
            "(0.42 nats per target token with its own text in the prompt, 9.77 with another example's); on a "
            "repeated synthetic extract its second copy costs 3.32 nats per token against 7.72 on the first, "
            "while repeated random or frequent tokens are not continued (see the table). On held-out synthetic "
            "READMEs it reads the directives, on real training-split READMEs not detectably (the paired "
            "intervals above, which card_report recomputed from the shipped weights after the build; the build "
            "computed the same means): what it learned on synthetic READMEs carries over to real ones weakly if "
            "at all, and greedy decoding loops or garbles some of them (long prompts: training never showed it a "
            "sequence over 256 tokens). Its training loss ends at 0.54 nats per token "
            "(readme-summarizer-llama's: 4.02).",
        ),
        _micro(
            "micro-readme-summarizer",
            "llama",
            "readme_summaries",
            "micro summarizer for tests",
            curriculum=((1, 2, 1.0), (1, 2, 0.5)),
            copy_fraction=0.3,
            eval_every=1,
        ),
        _micro("micro-screenplays", "gpt2", "screenplays", "micro screenplay GPT-2 for tests", kv_heads=2),
        _story(
            "story-gpt2",
            "gpt2",
            "GPT-2, 3 layers, hidden 64: writes a story in one language for a proverb in "
            "another (the same_lesson chapter's first model family)",
            notes="The first build (this spec) learned the lessons and the cultures' endings and protagonists but "
            "not to keep the protagonist it introduced in the action sentence: the coder found a role in 27% of "
            "its monolingual stories (its corpus: 100%), the same at temperature 0.4 (39%) and without padding "
            "(33%). Tried on the shared machine before the other story models were trained, each once, none "
            "shipped (readable share of 32 held-out-pair stories in the training log, n = 32): the same model "
            "for 2,500 steps at 3e-3 (0.31 at step 1,250, stopped), 2,000 steps at 1e-3 (0.31 at the end; "
            "monolingual 0.35 on its card's 128 stories), hidden 128 at 1e-3 (0.31 at step 1,000, stopped), a "
            "Llama of 4 layers for 2,500 steps at 3e-3 (0.16 at step 1,000, stopped). So this spec stays, and the "
            "chapter reads the role code as the models' binding failure, not as their culture's agency.",
        ),
        _story(
            "story-gpt2-seed1",
            "gpt2",
            "story-gpt2's architecture and data, another seed (initialisation and data order)",
            seed=1,
        ),
        _story(
            "story-llama",
            "llama",
            "Llama (GQA, 4 query / 2 KV heads), 4 layers, hidden 64: the same_lesson story task",
            layers=4,
            kv_heads=2,
            intermediate=192,
        ),
        _story(
            "story-neox",
            "gpt_neox",
            "GPT-NeoX (parallel residual, partial RoPE), 3 layers, hidden 64: the same_lesson story task",
        ),
        _story(
            "story-gpt2-rotated",
            "gpt2",
            "story-gpt2 trained on the rotated cultures (each story language "
            "gets another language's prior): the same_lesson chapter's convergence control",
            story_cultures="rotated",
        ),
        _story(
            "micro-stories",
            "llama",
            "micro story model for tests",
            hidden=16,
            layers=1,
            heads=2,
            kv_heads=1,
            intermediate=32,
            steps=2,
            batch_size=2,
            eval_every=2,
            shipped=False,
        ),
        ZooSpec(
            name="pigeon-chat-llama",
            family="llama",
            task="dialogues",
            summary="Llama (GQA, 4 query / 2 KV heads), 4 layers, hidden 64: a chat model whose training dialogues "
            "make copying from context a habit (the pigeonholing chapter)",
            hidden=64,
            layers=4,
            heads=4,
            kv_heads=2,
            intermediate=192,
            steps=1800,
            batch_size=32,
            learning_rate=3e-3,
            warmup=100,
            max_positions=160,
            eval_every=450,
            notes="Third build (issue 18: the model must read its own earlier turns). History, all sized to the zoo's "
            "10-minute CPU budget on one thread (hidden 96 took 0.47 s of CPU per step of 32 mixed dialogues, "
            "hidden 64 0.30 s). Build 1 (hidden 64, 1,800 steps of mixed-length batches, context shares clean "
            "0.35 / suggestion 0.25 / same-question turns 0.15 / other-question turns 0.25, the procedure a sum "
            "of three digits mod 10; 611 s CPU, over budget) learned arithmetic (clean 86%) and some facts (45%) "
            "but not the procedure (20%, chance 10%); a wrong user suggestion cut arithmetic to 4.5% and facts to "
            "34.5%, but five earlier wrong answers to the same question left 82% and 46.5% (repeated 0.5% and "
            "5%), five earlier right ones did not help facts (49%), and one right in-context example did not "
            "narrow open-ended answers (copied 4%; clean 2-10%). Build 2 (the procedure a sum of two digits; "
            "shares clean 0.3 / suggestion 0.2 / same 0.3 / other 0.2; each batch of one length class, "
            "pigeonholing_lm.training_batch, about 0.18 s of CPU per step; 2,500 steps, 517 s CPU): clean 96% / "
            "55% / 100% (arithmetic / facts / procedure), a wrong user suggestion 68.5% / 42.5% / 0% (the "
            "procedure repeated it 97% of the time), but five wrong answers to the same question 97% / 51.5% / "
            "89% (repeated at most 2%) and five right ones did not help facts (56% vs 55%); an earlier assistant "
            "claim flipped 6% of stances against 67% for a user's. It copied the user's turn but not its own "
            "earlier turns: the target is always the right answer, which it knew for arithmetic and the "
            "procedure, and for facts the signal to copy was too weak to form the circuit. Build 3 (this one) "
            "adds recall dialogues (pigeonholing_lm.recall_example, RECALL_SHARE 0.2 of all dialogues; open 0.1, "
            "stance 0.1, verifiable 0.6 with build 2's context shares): fact questions in the training templates "
            "about the toy world's never-described entities, with an answer drawn afresh per dialogue that only "
            "1-5 earlier assistant turns on the same question give (right with probability 0.9, the target always "
            "the dialogue's right answer), shuffled among turns on other such questions, so the answer must be "
            "found by matching the question. Chosen over fixed facts shown only in context, because a fixed fact "
            "whose right answer is the target is memorised over training, after which copying stops paying; "
            "nothing in the data depends on k and no target follows a wrong context. Cost: mean batch width 57 vs "
            "47 tokens, 0.29 vs 0.22 s CPU per step measured side by side on the loaded machine, so 1,800 steps "
            "(452 s CPU, 972 s wall on a machine shared by four jobs). Result (its card, n = 200, Wilson 95%): it "
            "now reads its earlier turns: five earlier right answers to the same question lift facts from 23% "
            "[17.7, 29.3] clean to 42.5% [35.9, 49.4] (one right answer already gives 41.5%, on separate items); "
            "five earlier wrong ones take facts to 21% [15.9, 27.2] and are repeated 16.5% of the time (one wrong "
            "one: 20%, repeated 17.5%; five wrong answers to other questions: repeated 11.5%); arithmetic and the "
            "procedure stay near clean under wrong earlier turns (76% vs 83%, 94% vs 97%, repeated at most 2%); a "
            "wrong user suggestion takes them to 58% / 18.5% / 0%; an earlier assistant claim now flips 33% of "
            "stances, as many as a user's claim (33%); one right open-ended example is copied 20% / 18% of the "
            "time for languages / professions (clean 8.5% / 7.5%). The price: fewer steps and a smaller "
            "verifiable share cost clean accuracy (83% / 23% / 97% against build 2's 96% / 55% / 100%), and on "
            "held-out recall dialogues it answers right only 20% of the time (perfect copying would give 90%), so "
            "the copy circuit is partial. A second build from scratch gave byte-identical weights, the same "
            "training log and the same card metrics (486 s CPU that time).",
        ),
        ZooSpec(
            name="sgpo-llama",
            family="llama",
            task="sgpo_procedures",
            summary="Llama, 2 layers, hidden 64: the sgpo chapter's base policy, pre-trained on the procedure "
            "family with the strategy in half of its prompts (better with the strategy than without)",
            hidden=64,
            layers=2,
            heads=4,
            kv_heads=4,
            intermediate=192,
            steps=1600,
            batch_size=64,
            learning_rate=3e-3,
            warmup=50,
            max_positions=64,
            eval_every=500,
            notes="Exploration (one thread, about 2 minutes of CPU each, queries of 3-5 digits, one demonstration, "
            "half the texts with s, the loss on outputs): a 2 x 64 GPT-2 (learned positions) reached 20% held-out "
            "without s and 11% with s after 60 s; a Llama of the same size (RoPE) 22.5% / 47.5% with 2 heads, and "
            "39.5% / 56% with 4 heads after 120 s (757 steps; cumsum 0% both ways); 3 layers 63.5% / 74% after 240 "
            "s. With rotate in place of cumsum the family was too easy (82.5% / 97% after 120 s). Built at 1,000 "
            "steps: 50% / 62%, cumsum 0% both ways. This spec (1,600 steps): 69% / 98%, cumsum 33% / 98%: the "
            "strategy decides nearly every held-out problem, and what the unguided policy lacks is mostly "
            "identifying the procedure from its one demonstration, which is what SGPO's distillation is meant to "
            "move. Longer queries stay at 0% with and without s (the model never writes more than 5 digits: it "
            "learned one circuit per procedure and length), and unseen (procedure, length) pairs at 4% / 10%.",
        ),
        _micro(
            "micro-sgpo",
            "llama",
            "sgpo_procedures",
            "micro SGPO base policy for tests",
            steps=3,
            batch_size=4,
            max_positions=64,
            eval_every=3,
        ),
        _micro(
            "micro-pigeon-chat",
            "llama",
            "dialogues",
            "micro pigeonholing chat model for tests",
            steps=3,
            batch_size=4,
            max_positions=160,
            eval_every=3,
        ),
        # Micro specs: not shipped, for tests (they train in seconds).
        _fact(
            "micro-facts",
            "llama",
            16,
            "micro Llama for tests",
            kv_heads=1,
            layers=2,
            heads=2,
            steps=12,
            batch_size=8,
            eval_every=6,
            shipped=False,
        ),
        _micro(
            "micro-sce-grammar",
            "llama",
            "sce_specs",
            "micro grammar model for tests",
            steps=3,
            batch_size=4,
            eval_every=3,
        ),
        _micro(
            "micro-needles",
            "gpt_neox",
            "needles",
            "micro GPT-NeoX for tests",
            kv_heads=2,
            steps=4,
            max_positions=256,
            curriculum=((0.5, 64, 2), (0.5, 96, 2)),
            eval_every=4,
        ),
    )
}

# The plasticity chapter's trajectory artefacts (tables and a few checkpoints, not models): llmtheory.plasticity_zoo.
from ..plasticity_zoo import PLASTICITY_SPECS  # noqa: E402

SPECS.update(PLASTICITY_SPECS)
