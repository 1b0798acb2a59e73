"""Metagente (Nguyen, Di Rocco, Di Ruscio): a teacher–student multi-agent system that writes software descriptions.

The method as read in the official code (``MDEGroup/Metagente``, ``optimizer/parallel_optimizer.py``; our words,
not its source):

* an **extractor** keeps the part of a README that says what the project is (:class:`LLMExtractor`);
* a **summarizer** turns the extracted text into a one-line "About" description from a prompt template with an
  ``$extracted_text`` slot (:class:`LLMSummarizer`);
* a **teacher** sees the extracted text, the ground truth, the generated text and its ROUGE-L score and minimally
  edits the summarizer's prompt (:class:`LLMTeacher`);
* a **prompt combiner** merges the per-example prompts into one (:class:`LLMCombiner`);
* the **data-parallel loop** (:func:`optimise_prompt`): for each training pair, at most 15 iterations of
  summarize → ROUGE-L F → teacher while the score is below 0.7; an example whose score reaches 0.7 contributes its
  best prompt; the combiner merges those prompts into the optimised prompt used at test time.

Every agent here is an object with a plain signature, so an LLM-backed agent (over any :class:`~llmtheory.
metagente_llm.LLM`) and a non-LLM stand-in (:mod:`llmtheory.metagente_standin`) are interchangeable. The data are
README → summary pairs from the package metadata of the book's own environment (:func:`load_pairs`).
"""

from __future__ import annotations

import difflib
import hashlib
import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from string import Template
from typing import Protocol

import numpy as np

from .metagente_llm import LLM
from .params import Model, ParameterError, Text

THRESHOLD = 0.7  # metagente-eq-loop: ROUGE-L F at which an example stops and qualifies (the official code's 0.7)
MAX_ITERATIONS = 15  # metagente-eq-loop: summarizer calls per training example at most
TEMPERATURES = {"extractor": 0.0, "summarizer": 0.0, "teacher": 0.7, "combiner": 0.2}  # as in the official code
OWN_PACKAGE = "llmtheory"  # the book's own package: its README changes with the book, so it is left out
README_WORDS = 600  # a cleaned README is cut to this many words (a context budget, applied to every method alike)

# ---------------------------------------------------------------------------------------------------------------
# Data: README → summary pairs from the installed distributions


@dataclass(frozen=True)
class Pair:
    """One distribution: its name, its cleaned long description (the README) and its one-line summary."""

    name: str
    readme: str
    about: str


_RST_DIRECTIVE = re.compile(r"^\.\. [\w:-]+::.*(?:\n(?:[ \t]+.*|[ \t]*)$)*", re.MULTILINE)
_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
_HTML_BLOCK = re.compile(r"<(picture|table|svg|details)\b.*?</\1>", re.IGNORECASE | re.DOTALL)
_MD_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MD_REF = re.compile(r"^\s*\[[^\]]+\]:\s*\S+.*$", re.MULTILINE)
_MD_REF_LINK = re.compile(r"\[([^\]]*)\]\[[^\]]*\]")
_QUOTE = re.compile(r"^[ \t]*>(?!>)[ \t]?", re.MULTILINE)
_RST_LINK = re.compile(r"`([^`<]*?)\s*<[^>]*>`_{1,2}")
_RST_ROLE = re.compile(r":[\w:+-]+:`([^`]*)`")
_SUBSTITUTION = re.compile(r"\|[\w\- .]+\|_?")
_UNDERLINE = re.compile(r"^([=\-~^*#+`'\".])\1{2,}\s*$", re.MULTILINE)
_TAG = re.compile(r"<[^>]+>")
_URL = re.compile(r"https?://\S+")
_EMPHASIS = re.compile(r"(\*\*|__|\*|``|`)")


def clean_readme(text: str) -> str:
    """A README (Markdown, reStructuredText or plain) as plain paragraphs separated by blank lines.

    Deterministic and markup-blind: code blocks, directives (images, badges), HTML blocks, tables and reference
    lines are dropped; links keep their text; a heading becomes a paragraph that starts with ``"# "``. The result
    is cut to :data:`README_WORDS` words.
    """
    text = html.unescape(text.replace("\r\n", "\n"))
    text = re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL)
    for pattern in (_FENCE, _HTML_BLOCK, _RST_DIRECTIVE, _MD_REF):
        text = pattern.sub("\n", text)
    text = _MD_IMAGE.sub("", text)
    text = _MD_LINK.sub(r"\1", _MD_REF_LINK.sub(r"\1", text))
    text = _QUOTE.sub("", text)
    text = _RST_LINK.sub(r"\1", text)
    text = _RST_ROLE.sub(r"\1", text)
    lines = text.split("\n")
    # an rst heading: a line followed by an underline of =, -, ~ ...; mark it like a Markdown heading
    for i in range(len(lines) - 1):
        if _UNDERLINE.match(lines[i + 1]) and lines[i].strip() and not _UNDERLINE.match(lines[i]):
            lines[i] = "# " + lines[i].strip()
    text = _UNDERLINE.sub("", "\n".join(lines))
    paragraphs = []
    for block in re.split(r"\n\s*\n", text):
        kept = [ln for ln in block.split("\n") if not ln.lstrip().startswith(("|", "::", ">>>", "$ ", "    "))]
        block = _SUBSTITUTION.sub("", _TAG.sub("", _URL.sub("", " ".join(kept))))
        block = re.sub(r"\s+", " ", _EMPHASIS.sub("", block)).strip()
        if re.match(r"^#+\s", block):
            block = "# " + block.lstrip("#").strip()
        if len(re.findall(r"[A-Za-z]{2,}", block)) >= 1 and block != "#":
            paragraphs.append(block)
    words, kept = 0, []
    for paragraph in paragraphs:
        n = len(paragraph.split())
        if words + n > README_WORDS:
            kept.append(" ".join(paragraph.split()[: README_WORDS - words]))
            break
        kept.append(paragraph)
        words += n
    return "\n\n".join(p for p in kept if p)


def clean_about(text: str) -> str:
    """A summary line with its whitespace collapsed."""
    return re.sub(r"\s+", " ", text).strip()


def _long_description(meta) -> str:
    body = meta.get_payload() if hasattr(meta, "get_payload") else None
    return body or meta.get("Description") or ""


def normalised_name(name: str) -> str:
    """A distribution's name as pip compares them (PEP 503): lower case, runs of ``-_.`` as one ``-``."""
    return re.sub(r"[-_.]+", "-", name.lower())


LOCK_FILE = Path(__file__).resolve().parents[2] / "requirements.lock"


def pinned_names(lock: Path = LOCK_FILE) -> frozenset[str]:
    """The distributions that the book's lock file pins (``name==version`` lines), by :func:`normalised_name`."""
    if not lock.is_file():
        raise FileNotFoundError(f"{lock} not found: the metagente data are the pinned packages' metadata, so the "
                                "library must be installed from its repository (pip install -e <clone>)")  # fmt: skip
    lines = (line.split("==")[0].strip() for line in lock.read_text().splitlines() if "==" in line)
    return frozenset(normalised_name(name) for name in lines if not name.startswith("#"))


@lru_cache(maxsize=1)
def load_pairs(min_readme_words: int = 20) -> tuple[Pair, ...]:
    """Every installed distribution that the lock file pins, with a summary and a README, cleaned, deduplicated by
    name, sorted by name.

    The book's own package is left out, and so is anything installed beside the lock (a reader's extra package
    would change the data). A pair is kept when its cleaned README has at least ``min_readme_words`` words and its
    summary at least two; the environment is pinned, so the list is the same on every run of it.
    """
    pinned = pinned_names()
    found: dict[str, Pair] = {}
    for dist in metadata.distributions():
        meta = dist.metadata
        name = normalised_name(meta.get("Name") or "")
        if not name or name == OWN_PACKAGE or name in found or name not in pinned:
            continue
        about, readme = clean_about(meta.get("Summary") or ""), clean_readme(_long_description(meta))
        if len(about.split()) >= 2 and len(readme.split()) >= min_readme_words:
            found[name] = Pair(name, readme, about)
    return tuple(found[name] for name in sorted(found))


def split_pairs(pairs: Sequence[Pair], seed: int, test_share: float = 0.5) -> tuple[list[Pair], list[Pair]]:
    """Train and test lists by a seeded hash of each name: a pair's side does not depend on the other pairs."""
    if not 0.0 < test_share < 1.0:
        raise ParameterError(f"test_share={test_share!r} must be strictly between 0 and 1")

    def unit(name: str) -> float:
        return int(hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()[:12], 16) / 16**12

    train = [p for p in pairs if unit(p.name) >= test_share]
    test = [p for p in pairs if unit(p.name) < test_share]
    return train, test


# ---------------------------------------------------------------------------------------------------------------
# The metric: ROUGE with Porter stemming, as the official code computes it


@lru_cache(maxsize=1)
def _scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)


@lru_cache(maxsize=200_000)
def rouge(prediction: str, reference: str) -> dict[str, float]:
    """ROUGE-1, ROUGE-2 and ROUGE-L F-measures of ``prediction`` against ``reference`` (metagente-eq-rouge);
    cached, since the loop scores the same outputs again and again."""
    scores = _scorer().score(reference, prediction)  # rouge_score takes (target, prediction)
    return {name: scores[name].fmeasure for name in ("rouge1", "rouge2", "rougeL")}


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F: the feedback the loop and the teacher use (metagente-eq-rouge)."""
    return rouge(prediction, reference)["rougeL"]


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of a longest common subsequence (dynamic programming), for checking ROUGE-L by hand."""
    row = [0] * (len(b) + 1)
    for x in a:
        previous = 0
        for j, y in enumerate(b, start=1):
            previous, row[j] = row[j], previous + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]


def rouge_l_by_hand(prediction_tokens: Sequence[str], reference_tokens: Sequence[str]) -> float:
    """metagente-eq-rouge: F = 2PR/(P+R) with P = LCS/|prediction|, R = LCS/|reference|."""
    lcs = lcs_length(prediction_tokens, reference_tokens)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(prediction_tokens), lcs / len(reference_tokens)
    return 2 * precision * recall / (precision + recall)


def rouge_tokens(text: str) -> list[str]:
    """The tokens rouge-score compares: lower-cased alphanumeric runs, Porter-stemmed."""
    return _scorer()._tokenizer.tokenize(text)


# ---------------------------------------------------------------------------------------------------------------
# The agents' prompts (written anew from the roles in the official code)

EXTRACTOR_PROMPT = Template(
    "You read the README of a software project. Copy the part of it that says what the project is and does (its "
    "title, tagline and introduction), word for word, and nothing else: no installation, usage, badges or licence."
    "\n\nREADME:\n<<<\n$readme_text\n>>>"
)
INITIAL_SUMMARIZER_PROMPT = (
    'Summarize the description of a software project below into a one-line "About" description.'
    "\n\nDescription:\n<<<\n$extracted_text\n>>>"
)
TEACHER_PROMPT = Template(
    "You are a teacher improving the prompt of a summarizer that writes one-line descriptions of software "
    "projects. Here is its prompt:\n---\n$summarizer_prompt\n---\nOn this text:\n<<<\n$extracted_text\n>>>\nit "
    "wrote: $generated_about\nThe description written by the project's authors is: $description\nTheir ROUGE-L "
    "F-score is $rouge_score. Edit the prompt minimally so that its summaries come closer to the authors' style. "
    "If the text has a tagline, tell the summarizer to prefer it. Never quote the authors' description in the "
    "prompt, keep the $$extracted_text slot, and answer with the new prompt only."
)
COMBINER_PROMPT = Template(
    "Each prompt below made a summarizer write good one-line descriptions of software projects for one example. "
    "Merge them into one prompt that keeps the instructions they share; keep the $$extracted_text slot and answer "
    "with the merged prompt only.\n\n$prompt_list"
)


def fill(template: str, extracted_text: str) -> str:
    """The summarizer's prompt for one text; a template that lost its slot gets the text appended."""
    if "$extracted_text" not in template:
        template = template + "\n\nDescription:\n<<<\n$extracted_text\n>>>"
    return Template(template).safe_substitute(extracted_text=extracted_text)


# ---------------------------------------------------------------------------------------------------------------
# The agents: one signature per role, an LLM-backed implementation of each


class Extractor(Protocol):
    def __call__(self, readme: str) -> str: ...


class Summarizer(Protocol):
    def __call__(self, template: str, extracted: str) -> str: ...


class Teacher(Protocol):
    def __call__(self, *, template: str, extracted: str, truth: str, generated: str, score: float) -> str: ...


class Combiner(Protocol):
    def __call__(self, templates: Sequence[str]) -> str: ...


@dataclass
class LLMExtractor:
    """The extractor agent: keeps the README's descriptive part (T = 0)."""

    llm: LLM

    def __call__(self, readme: str) -> str:
        return self.llm(EXTRACTOR_PROMPT.substitute(readme_text=readme), temperature=TEMPERATURES["extractor"])


@dataclass
class LLMSummarizer:
    """The summarizer agent: the template filled with the extracted text, answered at T = 0."""

    llm: LLM

    def __call__(self, template: str, extracted: str) -> str:
        return self.llm(fill(template, extracted), temperature=TEMPERATURES["summarizer"])


@dataclass
class LLMTeacher:
    """The teacher agent: a minimal edit of the summarizer's prompt from one example's feedback (T = 0.7)."""

    llm: LLM

    def __call__(self, *, template: str, extracted: str, truth: str, generated: str, score: float) -> str:
        prompt = TEACHER_PROMPT.substitute(
            summarizer_prompt=template,
            extracted_text=extracted,
            generated_about=generated,
            description=truth,
            rouge_score=f"{score:.3f}",
        )
        return self.llm(prompt, temperature=TEMPERATURES["teacher"])


@dataclass
class LLMCombiner:
    """The prompt-combiner agent: merges the qualified per-example prompts (T = 0.2)."""

    llm: LLM

    def __call__(self, templates: Sequence[str]) -> str:
        listing = "\n\n".join(f"Prompt {i + 1}:\n{t}" for i, t in enumerate(templates))
        return self.llm(COMBINER_PROMPT.substitute(prompt_list=listing), temperature=TEMPERATURES["combiner"])


@dataclass(frozen=True)
class Agents:
    """The four roles of one Metagente configuration (an ablation swaps one of them)."""

    extractor: Extractor | None  # None: the no-extractor ablation, the summarizer reads the whole README
    summarizer: Summarizer
    teacher: Teacher
    combiner: Combiner


# ---------------------------------------------------------------------------------------------------------------
# The data-parallel optimisation loop


@dataclass
class ExampleTrace:
    """One training example's run of the loop: every prompt tried, its output and score, and the best prompt."""

    name: str
    extracted: str
    truth: str
    templates: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)

    @property
    def best(self) -> int:
        return int(np.argmax(self.scores))

    @property
    def qualified(self) -> bool:
        return max(self.scores) >= THRESHOLD


@dataclass
class OptimisationResult:
    """The optimised prompt, the per-example traces, and the prompts that went into the combiner."""

    prompt: str
    traces: list[ExampleTrace]
    qualified: list[str]


def extract(agents: Agents, readme: str) -> str:
    """The extractor's output, or the whole README in the no-extractor ablation."""
    return readme if agents.extractor is None else agents.extractor(readme)


def optimise_example(
    agents: Agents,
    pair: Pair,
    initial: str = INITIAL_SUMMARIZER_PROMPT,
    *,
    threshold: float = THRESHOLD,
    max_iterations: int = MAX_ITERATIONS,
) -> ExampleTrace:
    """metagente-eq-loop, step 1, for one training pair.

    Extract once; then at most ``max_iterations`` times: summarize with the current prompt, score ROUGE-L F against
    the pair's summary, and stop when it reaches ``threshold``; otherwise the teacher edits the prompt.
    """
    trace = ExampleTrace(pair.name, extract(agents, pair.readme), pair.about)
    template = initial
    for _ in range(max_iterations):
        generated = agents.summarizer(template, trace.extracted)
        score = rouge_l(generated, pair.about)  # ROUGE-L F with stemming, the loop's only feedback
        trace.templates.append(template)
        trace.outputs.append(generated)
        trace.scores.append(score)
        if score >= threshold:  # the example qualifies: its best prompt goes to the combiner
            break
        template = agents.teacher(
            template=template, extracted=trace.extracted, truth=pair.about, generated=generated, score=score
        )
    return trace


def optimise_prompt(
    agents: Agents,
    train: Sequence[Pair],
    initial: str = INITIAL_SUMMARIZER_PROMPT,
    *,
    threshold: float = THRESHOLD,
    max_iterations: int = MAX_ITERATIONS,
    progress: Callable | None = None,
) -> OptimisationResult:
    """metagente-eq-loop: the data-parallel optimiser.

    Step 1 runs :func:`optimise_example` on every training pair independently (hence "data-parallel"); step 2 hands
    the best prompts of the pairs that reached ``threshold`` to the combiner. With no qualified pair the initial
    prompt is kept.
    """
    pairs = progress(train) if progress else train
    traces = [optimise_example(agents, p, initial, threshold=threshold, max_iterations=max_iterations) for p in pairs]
    qualified = [t.templates[t.best] for t in traces if t.qualified]
    prompt = agents.combiner(qualified) if qualified else initial
    return OptimisationResult(prompt, traces, qualified)


def summarize_all(agents: Agents, template: str, pairs: Sequence[Pair]) -> list[str]:
    """The test-time pipeline: extract, then summarize with one fixed prompt."""
    return [agents.summarizer(template, extract(agents, p.readme)) for p in pairs]


def prompt_diff(before: str, after: str, names: tuple[str, str] = ("before", "after")) -> str:
    """A unified diff of two prompts, line by line (the teacher's edits as a reader sees them)."""
    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), *names, lineterm="", n=1)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# Paired comparisons, as in the paper's statistical analysis


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control), in the input order."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    m = len(p)
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    result = np.empty(m)
    result[order] = np.minimum(adjusted, 1.0)
    return result


def paired_tests(ours: Sequence[float], theirs: Sequence[float]) -> dict[str, float]:
    """Mean paired difference with its 95% t-interval, and the two-sided paired t and Wilcoxon p-values."""
    from scipy import stats

    from .stats import mean_ci

    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    if ours.shape != theirs.shape or len(ours) < 2:
        raise ParameterError("paired tests need two score lists of the same length ≥ 2")
    difference = ours - theirs
    mean, half = mean_ci(difference)
    if np.allclose(difference, 0.0):
        return {"mean": 0.0, "low": 0.0, "high": 0.0, "t_p": 1.0, "wilcoxon_p": 1.0}
    return {
        "mean": float(mean),
        "low": float(mean - half),
        "high": float(mean + half),
        "t_p": float(stats.ttest_rel(ours, theirs).pvalue),
        "wilcoxon_p": float(stats.wilcoxon(ours, theirs).pvalue),
    }


# ---------------------------------------------------------------------------------------------------------------
# The chapter's parameters


def check_base_url(name: str, value: object) -> str:
    """An OpenAI-compatible endpoint's base URL (``http://`` or ``https://``), or "" for none."""
    if value == "":
        return value
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ParameterError(f'{name}={value!r} must be an http:// or https:// URL of an endpoint, or "" for none')
    return value


def check_variable_name(name: str, value: object) -> str:
    """The name of an environment variable (the key's value is never a parameter)."""
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise ParameterError(f"{name}={value!r} must be the name of an environment variable, e.g. 'OPENAI_API_KEY'")
    return value


PARAMETERS = {
    "MODEL": Model("a zoo name, a local folder or a Hugging Face model id (the real model tried as summarizer)"),
    "BASE_URL": check_base_url,
    "ENDPOINT_MODEL": Text("the name of a model the endpoint serves", empty=False),
    "API_KEY_ENV": check_variable_name,
}
"""The chapter's parameters besides ``SCALE`` and ``SEED`` (its notebook's ``parameters`` cell), declared once:
the notebook checks them with :func:`llmtheory.params.check_parameters`, the command line before it runs."""
