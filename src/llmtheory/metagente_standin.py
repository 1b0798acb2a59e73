"""Non-LLM stand-ins for Metagente's agents, and the chapter's non-agent baselines. None of these is a language model.

No model this book can train in minutes follows free-text instructions, so offline every agent role is played by a
small deterministic program over an **instruction grammar**: a prompt is the task sentence plus zero or more
directive sentences from a fixed list (:data:`SOURCES`, :data:`SWITCHES`, :data:`WORD_CAPS`), each on its own line.

* :func:`directive_follower` is an :class:`~llmtheory.metagente_llm.LLM`-shaped callable (prompt → text) that obeys
  the directives it recognises in a prompt and ignores any other sentence; it stands in for the summarizer model
  and can be served over HTTP like a model.
* :func:`rule_extractor` keeps a README's title and introduction (the extractor's role) by rules.
* :class:`GrammarSearchTeacher` edits one directive at a time, trying every single edit on the example and keeping
  the one with the best ROUGE-L F (the teacher's role, with the same feedback the LLM teacher is shown); each edit
  costs :data:`NEIGHBOURS` hidden runs of the stand-in summarizer.
* :class:`RandomEditTeacher` makes one random single edit without looking at the feedback (our random-edit control,
  stronger than the paper's no-teacher ablation, which is the unoptimised prompt).
* :func:`voting_combiner` merges prompts by a vote per directive: a directive is kept when a given share of the
  prompts state it (share 1/2: a majority vote, our pre-registered choice; a smaller share: closer to a union).

Baselines: :func:`first_sentence` and :class:`SentenceSelector`, an extractive model (logistic regression over
sentence features) trained on the training pairs.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from .metagente import INITIAL_SUMMARIZER_PROMPT, Pair, fill, rouge_l

TASK_LINE = INITIAL_SUMMARIZER_PROMPT.split("\n")[0]
SLOT = INITIAL_SUMMARIZER_PROMPT[len(TASK_LINE) :]
SOURCES = {
    "first": "Start from the first sentence of the description.",
    "definition": "Start from the first sentence that says what the project is or does.",
    "subtitle": "If the title has a subtitle, start from the subtitle.",
}
SOURCE_NAMES = {"first": "first sentence", "definition": "first defining sentence", "subtitle": "subtitle"}
SWITCHES = {
    "strip_subject": 'Drop the project\'s name and phrases like "X is a" from the start.',
    "cut_clause": "Stop at the first comma, colon, semicolon or dash.",
    "drop_parentheses": "Leave out text in parentheses.",
}
WORD_CAPS = (6, 8, 10, 12, 16, 24)
CAP_SENTENCE = "Use at most {n} words."
DEFAULT_CAP = 50  # without a length directive the follower writes up to this many words (a verbose summary)
DEFINING = re.compile(r"\b(is|are|provides|offers|lets|allows|enables|implements|contains|helps|makes)\b", re.I)
SUBJECT = re.compile(
    r"^(?:(?:the|this)\s+)?[\w.\- ]{0,40}?\s*\b(?:is|are|provides|offers)\s+(?:(?:a|an|the)\s+)?", re.I
)


@dataclass(frozen=True)
class Directives:
    """A point of the instruction grammar: where to start, three switches and a word cap (None: no cap given)."""

    source: str | None = None
    strip_subject: bool = False
    cut_clause: bool = False
    drop_parentheses: bool = False
    max_words: int | None = None

    def render(self) -> str:
        """The prompt template: the task line, one line per directive in a fixed order, the text slot."""
        lines = [TASK_LINE]
        if self.source:
            lines.append(SOURCES[self.source])
        lines += [sentence for name, sentence in SWITCHES.items() if getattr(self, name)]
        if self.max_words:
            lines.append(CAP_SENTENCE.format(n=self.max_words))
        return "\n".join(lines) + SLOT

    def describe(self) -> str:
        """The directives in a few words, e.g. "from the first sentence, cut clause, ≤ 8 words"."""
        parts = [f"from the {SOURCE_NAMES[self.source]}"] if self.source else []
        parts += [name.replace("_", " ") for name in SWITCHES if getattr(self, name)]
        parts += [f"≤ {self.max_words} words"] if self.max_words else []
        return ", ".join(parts) or "no directive"

    def neighbours(self) -> list[Directives]:
        """Every prompt one directive away: another source (or none), one switch flipped, another cap."""
        out = [replace(self, source=s) for s in (None, *SOURCES) if s != self.source]
        out += [replace(self, **{name: not getattr(self, name)}) for name in SWITCHES]
        out += [replace(self, max_words=n) for n in (None, *WORD_CAPS) if n != self.max_words]
        return out


def parse_directives(prompt: str) -> Directives:
    """The directives a prompt contains (whatever else it says is ignored; the text slot is not searched)."""
    instructions = prompt.split("<<<")[0].lower()
    source = next((name for name, s in SOURCES.items() if s.lower() in instructions), None)
    caps = [int(n) for n in re.findall(r"use at most (\d+) words", instructions)]
    switches = {name: s.lower() in instructions for name, s in SWITCHES.items()}
    return Directives(source=source, max_words=caps[0] if caps else None, **switches)


def sentences(text: str) -> list[str]:
    """A text's sentences; a heading paragraph (``# ...``) is one sentence that keeps its marker."""
    out = []
    for paragraph in text.split("\n\n"):
        if paragraph.startswith("# "):
            out.append(paragraph)
            continue
        out += [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])", paragraph) if s.strip()]
    return out


def _plain(sentence: str) -> str:
    return sentence[2:] if sentence.startswith("# ") else sentence


def _start(text: str, source: str | None) -> str:
    body = [s for s in sentences(text) if not s.startswith("# ")]
    if source is None:
        return " ".join(_plain(s) for s in sentences(text))
    if source == "subtitle":
        for heading in (s for s in sentences(text) if s.startswith("# ")):
            parts = re.split(r"\s*(?::|\s[-–—]\s)\s*", _plain(heading), maxsplit=1)
            if len(parts) == 2 and len(parts[1].split()) >= 2:
                return parts[1]
    if source == "definition":
        defining = [s for s in body if DEFINING.search(s)]
        if defining:
            return defining[0]
    return body[0] if body else _plain(sentences(text)[0]) if text else ""


def follow(directives: Directives, text: str, default_cap: int = DEFAULT_CAP) -> str:
    """What the stand-in summarizer writes for ``text`` under ``directives`` (deterministic); without a word-cap
    directive it writes at most ``default_cap`` words (the stand-in's verbose default, an assumption of ours)."""
    out = _start(text, directives.source)
    if directives.drop_parentheses:
        out = re.sub(r"\s*\([^)]*\)", "", out)
    if directives.strip_subject:
        stripped = SUBJECT.sub("", out, count=1)
        out = stripped if len(stripped.split()) >= 2 else out
    if directives.cut_clause:
        out = re.split(r"[,;:]|\s[-–—]\s", out, maxsplit=1)[0]
    words = out.split()[: directives.max_words or default_cap]
    return " ".join(words).rstrip(".,;:!-–— ")


def directive_follower(prompt: str, temperature: float = 0.0) -> str:
    """The stand-in summarizer as an LLM-shaped callable: obeys the prompt's directives on the text in ``<<< >>>``.

    Not a language model: it understands only the grammar's sentences, and ``temperature`` changes nothing.
    """
    match = re.search(r"<<<\n(.*?)\n>>>", prompt, flags=re.DOTALL)
    return follow(parse_directives(prompt), match.group(1) if match else "")


STOP_HEADINGS = re.compile(
    r"install|usage|example|quick ?start|getting started|documentation|licen[cs]e|contribut|changelog|changes|"
    r"requirement|sponsor|support|table of contents|contents|development|testing|credits|authors|release|history|"
    r"how to|tutorial|features",
    re.I,
)


def rule_extractor(readme: str, max_words: int = 150) -> str:
    """The stand-in extractor: the title and the paragraphs before the first install/usage/licence-like heading,
    up to ``max_words`` words (whole paragraphs, the last one cut)."""
    kept, words = [], 0
    for paragraph in readme.split("\n\n"):
        if paragraph.startswith("# ") and kept and STOP_HEADINGS.search(paragraph):
            break
        n = len(paragraph.split())
        kept.append(paragraph if words + n <= max_words else " ".join(paragraph.split()[: max_words - words]))
        words += n
        if words >= max_words:
            break
    return "\n\n".join(kept)


NEIGHBOURS = len(Directives().neighbours())  # single-directive edits of any prompt (the teacher tries them all)
GRAMMAR_SIZE = (len(SOURCES) + 1) * 2 ** len(SWITCHES) * (len(WORD_CAPS) + 1)  # every prompt of the grammar


@lru_cache(maxsize=200_000)
def example_score(directives: Directives, extracted: str, truth: str) -> float:
    return rouge_l(directive_follower(fill(directives.render(), extracted)), truth)


@dataclass
class GrammarSearchTeacher:
    """The stand-in teacher: returns the single-directive edit of the prompt whose summary of this example scores
    the highest ROUGE-L F against the ground truth (ties: the first in :meth:`Directives.neighbours` order).

    Not a language model: it sees the same feedback as the paper's teacher (text, truth, output, score) and edits
    one instruction, but it finds the edit by trying every one on the stand-in summarizer: :data:`NEIGHBOURS`
    hidden summarizer runs per edit, which an LLM teacher does not get (see :func:`search_budget`).
    """

    def __call__(self, *, template: str, extracted: str, truth: str, generated: str, score: float) -> str:
        candidates = parse_directives(template).neighbours()
        scores = [example_score(c, extracted, truth) for c in candidates]
        return candidates[int(np.argmax(scores))].render()


def search_budget(scores: Sequence[float], threshold: float) -> int:
    """Summarizer runs one example's loop used with :class:`GrammarSearchTeacher`: the visible calls (one per score)
    plus :data:`NEIGHBOURS` hidden ones per teacher call (the loop calls the teacher after every score below
    ``threshold``)."""
    teacher_calls = sum(score < threshold for score in scores)
    return len(scores) + NEIGHBOURS * teacher_calls


@dataclass
class RandomEditTeacher:
    """The no-teacher control: one uniformly random single-directive edit, blind to the example and its score."""

    rng: np.random.Generator

    def __call__(self, *, template: str, extracted: str, truth: str, generated: str, score: float) -> str:
        candidates = parse_directives(template).neighbours()
        return candidates[int(self.rng.integers(len(candidates)))].render()


def voting_combiner(templates: Sequence[str], share: float = 0.5) -> str:
    """The stand-in combiner: keeps a directive that at least ``share`` of the prompts (and at least one) state;
    the source is the most stated one (ties: the grammar's order), the word cap the median of the stated caps.
    ``share`` = 0.5 keeps what a majority shares; a small share keeps every "specific detail" (a union)."""
    parsed = [parse_directives(t) for t in templates]
    enough = max(1.0, share * len(parsed))
    counts = Counter(d.source for d in parsed if d.source)
    source = max(SOURCES, key=lambda s: (counts[s], -list(SOURCES).index(s)))
    switches = {name: sum(getattr(d, name) for d in parsed) >= enough for name in SWITCHES}
    caps = [d.max_words for d in parsed if d.max_words]
    cap = min(WORD_CAPS, key=lambda n: (abs(n - float(np.median(caps))), n)) if len(caps) >= enough else None
    return Directives(source=source if counts[source] >= enough else None, max_words=cap, **switches).render()


COMBINER_SHARES = (0.0, 0.1, 0.2, 1 / 3, 0.5)  # 0.0: a union (every directive one prompt states); 0.5: a majority


@dataclass
class TrainSelectedCombiner:
    """The stand-in combiner with its one free parameter chosen on the training pairs: the vote at each share of
    :data:`COMBINER_SHARES`, kept when its prompt scores the highest mean ROUGE-L F on ``train`` (ties: the larger
    share). This selection was added after the first run, in which the pre-registered majority vote (share 1/2)
    returned the initial prompt; the chapter reports the majority vote beside it. ``summarize(template, pairs)`` runs
    the test-time pipeline. After a call, ``scores`` maps each share to its training score and ``chosen`` names the
    share kept."""

    summarize: object
    train: Sequence[Pair]
    shares: tuple[float, ...] = COMBINER_SHARES
    scores: dict = None
    chosen: float | None = None

    def __call__(self, templates: Sequence[str]) -> str:
        candidates = {share: voting_combiner(templates, share) for share in self.shares}
        self.scores = {
            share: float(
                np.mean([rouge_l(o, p.about) for o, p in zip(self.summarize(t, self.train), self.train, strict=True)])
            )
            for share, t in candidates.items()
        }
        self.chosen = max(self.shares, key=lambda s: (self.scores[s], s))
        return candidates[self.chosen]


# ---------------------------------------------------------------------------------------------------------------
# Baselines that are not prompts


def first_sentence(readme: str) -> str:
    """The first-sentence heuristic: the README's first sentence that is not a heading."""
    body = [s for s in sentences(readme) if not s.startswith("# ")]
    return body[0] if body else ""


def _features(candidates: list[str], name: str) -> np.ndarray:
    rows = []
    body_index = 0
    for i, s in enumerate(candidates):
        words = s.split()
        heading = s.startswith("# ")
        subtitle = heading and bool(re.search(r":|\s[-–—]\s", s))
        rows.append(
            [
                min(i, 10) / 10,
                float(i == 0),
                float(heading),
                float(subtitle),
                float(not heading and body_index == 0),
                min(body_index, 10) / 10,
                min(len(words), 60) / 60,
                float(len(words) <= 3),
                float(bool(DEFINING.search(s))),
                float(name.split("-")[0] in s.lower()),
            ]
        )
        body_index += not heading
    return np.array(rows)


def _candidates(readme: str, limit: int = 25) -> list[str]:
    return sentences(readme)[:limit]


@dataclass
class SentenceSelector:
    """The trained extractive baseline: logistic regression scores each of a README's first sentences (features:
    position, a heading and whether it has a subtitle, the first body sentence, length, a defining verb, the
    project's name); the best-scoring one, cut to a word cap, is the summary. Trained to pick each training README's
    sentence with the highest ROUGE-L F against its summary; the cap (none or one of :data:`WORD_CAPS`) is the one
    with the best mean ROUGE-L F on the training pairs."""

    max_words: int | None = None
    model: object = None

    def fit(self, pairs: Sequence[Pair]) -> SentenceSelector:
        from sklearn.linear_model import LogisticRegression

        X, y = [], []
        for p in pairs:
            candidates = _candidates(p.readme)
            scores = [rouge_l(_plain(s), p.about) for s in candidates]
            X.append(_features(candidates, p.name))
            y += [int(k == int(np.argmax(scores))) for k in range(len(candidates))]
        self.model = LogisticRegression(max_iter=1000, class_weight="balanced").fit(np.vstack(X), y)
        picked = [self.select(p) for p in pairs]

        def training_score(cap: int | None) -> float:
            return float(np.mean([rouge_l(_cut(s, cap), p.about) for s, p in zip(picked, pairs, strict=True)]))

        self.max_words = max((None, *WORD_CAPS), key=lambda cap: (training_score(cap), cap is None))
        return self

    def select(self, pair: Pair) -> str:
        """The sentence the model ranks first."""
        candidates = _candidates(pair.readme)
        return _plain(candidates[int(np.argmax(self.model.predict_proba(_features(candidates, pair.name))[:, 1]))])

    def __call__(self, pair: Pair) -> str:
        return _cut(self.select(pair), self.max_words)


def _cut(text: str, max_words: int | None) -> str:
    return " ".join(text.split()[:max_words]) if max_words else text
