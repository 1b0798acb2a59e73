"""Auditing screenplays for gender bias: parsing, gender inference, the Bechdel test and network measures.

Govindu, Wang, Friedler and Metaxa, "Do Language Models Pass the Bechdel Test? Auditing Gender Biases in
LLM-Generated Screenplays" (arXiv 2606.24022). Only the paper's abstract is known to us: it automates the
Bechdel test on screenplays and adds social-network measures (centrality, homophily, triadic relationships).
Everything below is our operationalisation, following the prior automations the research note lists (Agarwal
et al. 2015; the ``bechdelscript`` parser), and it says where a choice is ours.

The pipeline, top to bottom:

1. **Parse** a screenplay into scenes, character cues and dialogue turns: Fountain through ``screenplain``
   (:func:`parse_fountain`), the standard plain-text layout with our own rules (:func:`parse_plain`).
2. **Infer gender** of every speaking character from the first name (``gender-guesser``) and, where the name
   is ambiguous, from pronouns near the name in the action lines (:func:`infer_genders`).
3. **Bechdel tests 1-3** as explicit rules (:func:`bechdel`, ``bechdel-eq-tests``).
4. **Interaction networks** (:func:`interaction_graph`) and their measures by gender: centrality, homophily and
   triangles, each against a label-permutation null (:func:`permutation_null`, ``bechdel-eq-null``).
5. **Corpus statistics**: one row per script (:func:`measure_script`), Fisher / Mann-Whitney / pooled
   permutation tests between groups (:func:`pooled_permutation_test`).
"""

from __future__ import annotations

import functools
import io
import re
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import pandas as pd
from scipy import optimize, stats

from .params import Folder, Model, ParameterError
from .stats import NullComparison, permutation_null

FEMALE, MALE, UNKNOWN = "F", "M", "?"

PARAMETERS = {
    "MODEL": Model("a zoo name, a local folder or a Hugging Face model id (in Colab: an instruct model)"),
    "SCRIPTS": Folder("a folder of .fountain / .txt screenplays"),
}
"""The chapter's parameters besides ``SCALE`` and ``SEED`` (its notebook's ``parameters`` cell), declared once:
the notebook checks them with :func:`llmtheory.params.check_parameters`, the command line before it runs."""


# ---------------------------------------------------------------------------------------------------------
# 1. Parsing: scenes, cues, dialogue


@dataclass(frozen=True)
class Turn:
    """One speech: the scene it is in (0-based), the speaker's normalised cue, and what they say."""

    scene: int
    speaker: str
    text: str


@dataclass
class Script:
    """A parsed screenplay: scene headings, dialogue turns in order, and action paragraphs ``(scene, text)``
    (scene −1: front matter before the first heading)."""

    title: str = ""
    scenes: list[str] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    actions: list[tuple[int, str]] = field(default_factory=list)

    @property
    def speakers(self) -> list[str]:
        """Speaking characters in order of first appearance."""
        return list(dict.fromkeys(t.speaker for t in self.turns))

    def _scene(self) -> int:
        """The index of the current scene (an implicit one before the first heading)."""
        if not self.scenes:
            self.scenes.append("(no heading)")
        return len(self.scenes) - 1


SCENE_HEADING = re.compile(r"^\s*(?:\d+[A-Z]?\s+)?(?:INT\.?/EXT|EXT\.?/INT|I/E|INT|EXT|EST)[.\s]", re.IGNORECASE)
TRANSITION = re.compile(r"^\s*(?:[A-Z' ]+ TO:|FADE (?:IN|OUT)\b.*|THE END|CONTINUED:?|\(CONTINUED\))\s*$")
EXTENSION = re.compile(r"\([^)]*\)")  # (V.O.), (O.S.), (CONT'D), (into phone) ...
CUE = re.compile(r"^[A-Z0-9][A-Z0-9 .'’\-]*(?:\([^)]*\))*\s*\^?$")
PARENTHETICAL = re.compile(r"^\s*\(.*\)\s*$")


def normalise_cue(cue: str) -> str:
    """A character cue without extensions and markers: ``"MAYA (V.O.) (CONT'D)"`` → ``"MAYA"``."""
    cue = EXTENSION.sub(" ", cue.strip().lstrip("@")).rstrip("^")
    cue = re.sub(r"\bCONT['’]?D\b|\bCONTINUED\b", " ", cue, flags=re.IGNORECASE)
    return " ".join(cue.split()).strip(" .:").upper()


def is_cue(line: str) -> bool:
    """A character cue of the plain-text layout: an upper-case line of at most 5 words before extensions, not a
    scene heading or transition, with at least one letter (our rule, like ``bechdelscript``'s: capitals and
    position decide, since plain text has no markup)."""
    stripped = line.strip()
    if not stripped or SCENE_HEADING.match(stripped) or TRANSITION.match(stripped) or stripped.endswith(":"):
        return False
    name = EXTENSION.sub("", stripped)
    return bool(CUE.match(stripped)) and any(c.isalpha() for c in name) and len(name.split()) <= 5


def parse_plain(text: str, title: str = "") -> Script:
    """Parse the standard plain-text layout (indented or not): a scene heading starts a scene; a cue line
    (:func:`is_cue`) after a blank line and followed by a non-blank line starts a turn whose dialogue runs to
    the next blank line, parentheticals dropped; every other paragraph is action."""
    script = Script(title=title)
    lines = text.expandtabs().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip() or TRANSITION.match(line):
            i += 1
            continue
        if SCENE_HEADING.match(line):
            script.scenes.append(" ".join(line.split()).upper())
            i += 1
            continue
        after_blank = i == 0 or not lines[i - 1].strip()
        if after_blank and is_cue(line) and i + 1 < len(lines) and lines[i + 1].strip():
            speech, i = _block(lines, i + 1)
            spoken = " ".join(s.strip() for s in speech if not PARENTHETICAL.match(s))
            if spoken:
                script.turns.append(Turn(script._scene(), normalise_cue(line), spoken))
            continue
        paragraph, i = _block(lines, i)
        text = " ".join(s.strip() for s in paragraph)
        if not script.scenes and not script.turns:  # front matter: the first line is the title
            script.title = script.title or text
        script.actions.append((len(script.scenes) - 1, text))
    return script


def _block(lines: list[str], start: int) -> tuple[list[str], int]:
    """The lines from ``start`` up to the next blank line, and the index after them."""
    end = start
    while end < len(lines) and lines[end].strip():
        end += 1
    return lines[start:end], end


def _plain_text(rich) -> str:
    return "".join(segment.text for segment in rich.segments)


def parse_fountain(text: str, title: str = "") -> Script:
    """Parse Fountain with ``screenplain`` (the maintained parser): ``Slug`` paragraphs start scenes,
    ``Dialog`` (and both sides of ``DualDialog``) become turns without their parentheticals, ``Action`` is
    action; the title page's ``Title`` is the title."""
    from screenplain import types
    from screenplain.parsers import fountain

    parsed = fountain.parse(io.StringIO(text))
    script = Script(title=title or " ".join(_plain_text(r) for r in parsed.get_rich_attribute("Title")))
    for paragraph in parsed:
        if isinstance(paragraph, types.Slug):
            script.scenes.append(_plain_text(paragraph.line).upper())
        elif isinstance(paragraph, types.Action):
            script.actions.append((len(script.scenes) - 1, " ".join(_plain_text(r) for r in paragraph.lines)))
        dialogs = (
            [paragraph.left, paragraph.right]
            if isinstance(paragraph, types.DualDialog)
            else [paragraph]
            if isinstance(paragraph, types.Dialog)
            else []
        )
        for dialog in dialogs:
            spoken = " ".join(_plain_text(block) for is_parenthetical, block in dialog.blocks if not is_parenthetical)
            if spoken.strip():
                script.turns.append(Turn(script._scene(), normalise_cue(_plain_text(dialog.character)), spoken))
    return script


FORMATS = ("fountain", "plain")


def parse(text: str, fmt: str = "auto", title: str = "") -> Script:
    """Parse ``text`` as ``"fountain"``, ``"plain"`` or ``"auto"`` (Fountain if it has a title page or forced
    elements, else plain text: the plain layout is what a model writes when asked for a screenplay)."""
    if fmt == "auto":
        fountain_markers = re.search(r"^(Title:|\.[A-Z]|@|>.*<$|[A-Z ]+\^$)", text, flags=re.MULTILINE)
        fmt = "fountain" if fountain_markers else "plain"
    if fmt not in FORMATS:
        raise ParameterError(f"fmt={fmt!r} is not a screenplay format; choose one of: auto, {', '.join(FORMATS)}")
    return parse_fountain(text, title) if fmt == "fountain" else parse_plain(text, title)


# ---------------------------------------------------------------------------------------------------------
# 2. Gender: the name first, pronouns near the name where the name is ambiguous

TITLES = {
    "MRS": FEMALE, "MS": FEMALE, "MISS": FEMALE, "LADY": FEMALE, "QUEEN": FEMALE, "AUNT": FEMALE,
    "MOTHER": FEMALE, "MOM": FEMALE, "GRANDMA": FEMALE, "SISTER": FEMALE, "WOMAN": FEMALE, "GIRL": FEMALE,
    "MR": MALE, "SIR": MALE, "LORD": MALE, "KING": MALE, "UNCLE": MALE, "FATHER": MALE, "DAD": MALE,
    "GRANDPA": MALE, "BROTHER": MALE, "MAN": MALE, "BOY": MALE,
}  # fmt: skip
FEMALE_PRONOUNS = frozenset({"she", "her", "hers", "herself"})
MALE_PRONOUNS = frozenset({"he", "him", "his", "himself"})
GUESSER_LABELS = {"female": FEMALE, "mostly_female": FEMALE, "male": MALE, "mostly_male": MALE}
DESCRIPTORS = frozenset({"YOUNG", "OLD", "LITTLE", "BIG", "DR", "DOCTOR", "OFFICER", "DETECTIVE", "CAPTAIN", "AGENT",
                         "PROFESSOR", "SERGEANT", "NURSE", "COACH", "JUDGE", "COUNT"})  # fmt: skip
"""Cue words that say nothing of gender and stand before a first name (``YOUNG TOM``, ``DR. SARAH``): skipped."""


@functools.cache
def _detector():
    import gender_guesser.detector as detector

    return detector.Detector(case_sensitive=False)


def first_name(cue: str) -> str:
    """The name a line would call a character by, lower case: the cue's first word after descriptors and titles
    (``YOUNG TOM`` → ``tom``, ``MRS. BELL`` → ``bell``)."""
    words = [w.strip(".") for w in cue.upper().split()]
    while len(words) > 1 and (words[0] in DESCRIPTORS or words[0] in TITLES):
        words = words[1:]
    return words[0].lower() if words else ""


def name_gender(name: str) -> tuple[str, str]:
    """``(label, evidence)`` from a character's name: a gendered title (MRS., UNCLE) decides; otherwise
    ``gender-guesser`` on the first word that is not a descriptor (:data:`DESCRIPTORS`), whose ``female``/
    ``mostly_female`` → F, ``male``/``mostly_male`` → M, ``andy``/``unknown`` → ``?``;
    the evidence is the title or the guesser's raw answer."""
    words = [w.strip(".") for w in name.upper().split()]
    for word in words:
        if word in TITLES:
            return TITLES[word], "title"
    while len(words) > 1 and words[0] in DESCRIPTORS:
        words = words[1:]
    if not words or not words[0].isalpha():
        return UNKNOWN, "unknown"
    raw = _detector().get_gender(words[0].title())
    return GUESSER_LABELS.get(raw, UNKNOWN), raw


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def pronoun_votes(script: Script) -> dict[str, tuple[int, int]]:
    """In-text cues: for each speaker, ``(female, male)`` pronoun counts in the action sentences that name that
    speaker and no other, plus the sentence right after (``She looks tired.`` after ``Maya pours tea.``)."""
    first_names = {s: first_name(s) for s in script.speakers}
    votes = {s: [0, 0] for s in script.speakers}
    for _, paragraph in script.actions:
        sentences = [_words(s) for s in re.split(r"(?<=[.!?])\s+", paragraph) if s.strip()]
        for k, words in enumerate(sentences):
            named = [s for s, first in first_names.items() if first in words]
            if len(named) != 1:
                continue  # no one, or ambiguous: whose pronoun would it be?
            window = words + (sentences[k + 1] if k + 1 < len(sentences) else [])
            votes[named[0]][0] += sum(w in FEMALE_PRONOUNS for w in window)
            votes[named[0]][1] += sum(w in MALE_PRONOUNS for w in window)
    return {s: (f, m) for s, (f, m) in votes.items()}


@dataclass(frozen=True)
class GenderCall:
    """A character's inferred gender (F, M or ?) and the evidence that decided it."""

    label: str
    source: str  # "title", "name", "name (mostly)", "pronouns", "none"


def infer_genders(script: Script, use_text: bool = True) -> dict[str, GenderCall]:
    """Gender of each speaker (our rule, where the paper is silent): a title or an unambiguous name decides;
    a ``mostly_`` name yields to pronouns that outvote it by two or more; an ``andy``/unknown name takes the
    pronouns' majority; with no evidence the character stays unknown (``?``), which no test counts as a woman."""
    votes = pronoun_votes(script) if use_text else {}
    calls = {}
    for speaker in script.speakers:
        label, raw = name_gender(speaker)
        female, male = votes.get(speaker, (0, 0))
        by_text = FEMALE if female > male else MALE if male > female else UNKNOWN
        if raw == "title" or raw in ("female", "male"):
            calls[speaker] = GenderCall(label, "title" if raw == "title" else "name")
        elif raw.startswith("mostly_") and not (by_text not in (UNKNOWN, label) and abs(female - male) >= 2):
            calls[speaker] = GenderCall(label, "name (mostly)")
        elif by_text != UNKNOWN:
            calls[speaker] = GenderCall(by_text, "pronouns")
        else:
            calls[speaker] = GenderCall(UNKNOWN, "none")
    return calls


def labels_of(calls: dict[str, GenderCall]) -> dict[str, str]:
    """``{speaker: "F" | "M" | "?"}`` from :func:`infer_genders`."""
    return {s: c.label for s, c in calls.items()}


# ---------------------------------------------------------------------------------------------------------
# 3. The Bechdel test

MALE_WORDS = frozenset(
    "he him his himself man men boy boys guy guys husband husbands boyfriend boyfriends father fathers dad daddy "
    "son sons brother brothers uncle nephew grandfather grandpa king prince sir mr gentleman fiance groom".split()
)


def mentions_a_man(text: str, male_names: set[str]) -> bool:
    """Whether a line refers to a man: a male-referencing word (:data:`MALE_WORDS`) or a male character's first
    name (the test-3 rule of ``bechdelscript``; a lexical rule, so "her father's boat" counts as about a man)."""
    words = set(_words(text))
    return bool(words & MALE_WORDS) or bool(words & male_names)


def women_exchanges(script: Script, genders: dict[str, str]) -> list[list[Turn]]:
    """Maximal runs of consecutive turns in one scene all spoken by women, with at least two distinct women: the
    conversations that test 2 looks for."""
    runs, current = [], []
    for turn in script.turns:
        if genders.get(turn.speaker) == FEMALE and (not current or current[-1].scene == turn.scene):
            current.append(turn)
            continue
        runs.append(current)
        current = [turn] if genders.get(turn.speaker) == FEMALE else []
    runs.append(current)
    return [run for run in runs if len({t.speaker for t in run}) >= 2]


@dataclass(frozen=True)
class BechdelResult:
    """The three tests (each requires the one before) and the number passed, 0-3."""

    named_women: int
    test1: bool
    test2: bool
    test3: bool

    @property
    def score(self) -> int:
        return int(self.test1) + int(self.test2) + int(self.test3)


def bechdel(script: Script, genders: dict[str, str]) -> BechdelResult:
    """The three Bechdel tests as rules (``bechdel-eq-tests``; research note's operationalisation):

    1. at least two named (speaking) women;
    2. two distinct women with adjacent turns in the same scene (:func:`women_exchanges`);
    3. one such exchange in which no turn mentions a man (:func:`mentions_a_man`).
    """
    women = [s for s in script.speakers if genders.get(s) == FEMALE]
    male_names = {first_name(s) for s in script.speakers if genders.get(s) == MALE}
    exchanges = women_exchanges(script, genders)
    # test 3: some women-only exchange with no reference to a man in any of its turns
    about_something_else = any(not any(mentions_a_man(t.text, male_names) for t in run) for run in exchanges)
    test1 = len(women) >= 2
    return BechdelResult(len(women), test1, test1 and bool(exchanges), bool(exchanges) and about_something_else)


# ---------------------------------------------------------------------------------------------------------
# 4. Interaction networks and their measures


def interaction_graph(script: Script) -> nx.Graph:
    """Characters as nodes; the weight of edge {a, b} counts adjacent turns of a and b in the same scene
    (research note, step 4). Every speaker is a node, isolated or not."""
    graph = nx.Graph()
    graph.add_nodes_from(script.speakers)
    for previous, turn in zip(script.turns, script.turns[1:], strict=False):
        if previous.scene == turn.scene and previous.speaker != turn.speaker:
            weight = graph.get_edge_data(previous.speaker, turn.speaker, {"weight": 0})["weight"]
            graph.add_edge(previous.speaker, turn.speaker, weight=weight + 1)
    return graph


def reply_graph(script: Script) -> nx.DiGraph:
    """The directed version: an edge speaker → next speaker in the same scene (who answers whom), for the
    triadic census (:func:`triad_census`)."""
    graph = nx.DiGraph()
    graph.add_nodes_from(script.speakers)
    for previous, turn in zip(script.turns, script.turns[1:], strict=False):
        if previous.scene == turn.scene and previous.speaker != turn.speaker:
            graph.add_edge(previous.speaker, turn.speaker)
    return graph


TRIADS = ("021D", "021U", "021C", "111D", "111U", "030T", "030C", "201", "120D", "120U", "120C", "210", "300")
"""The connected triad types of the directed census (Holland and Leinhardt's M-A-N codes: mutual, one-way and
silent pairs among three characters, then a letter for the direction): the types in which no character of the
three stands apart. ``201``: one character talks both ways with two who never talk to each other (a go-between);
``300``: all three talk with each other both ways."""


TRIAD_SHAPES: dict[str, tuple[tuple[tuple[str, str], ...], str]] = {
    # code: (edges of one triad of that type, with x → y when y speaks right after x; what it says)
    "021D": ((("b", "a"), ("b", "c")), "two characters each speak right after a third, who answers neither"),
    "021U": ((("a", "b"), ("c", "b")), "one character speaks right after two others, neither of whom answers"),
    "021C": (
        (("a", "b"), ("b", "c")),
        "a chain: b answers a, c answers b, and no one answers back (what cues that change at almost every turn leave)",
    ),
    "111D": (
        (("a", "b"), ("b", "a"), ("c", "b")),
        "a pair that answers each other, one of whom also answers a third who never answers",
    ),
    "111U": (
        (("a", "b"), ("b", "a"), ("b", "c")),
        "a pair that answers each other, and a third who answers one of them and is never answered",
    ),
    "030T": ((("a", "b"), ("c", "b"), ("a", "c")), "an order without replies: c answers a, b answers both"),
    "030C": ((("b", "a"), ("c", "b"), ("a", "c")), "a one-way cycle: each answers one and is answered by the other"),
    "201": (
        (("a", "b"), ("b", "a"), ("b", "c"), ("c", "b")),
        "a go-between who talks both ways with two who never talk to each other",
    ),
    "120D": (
        (("b", "a"), ("b", "c"), ("a", "c"), ("c", "a")),
        "a pair that answers each other, both answering a third who answers neither",
    ),
    "120U": (
        (("a", "b"), ("c", "b"), ("a", "c"), ("c", "a")),
        "a pair that answers each other, and a third who answers both and is answered by neither",
    ),
    "120C": (
        (("a", "b"), ("b", "c"), ("a", "c"), ("c", "a")),
        "a pair a, c that answers each other, with b answering a and answered by c",
    ),
    "210": (
        (("a", "b"), ("b", "c"), ("c", "b"), ("a", "c"), ("c", "a")),
        "two pairs that answer each other and one one-way tie",
    ),
    "300": (
        (("a", "b"), ("b", "a"), ("b", "c"), ("c", "b"), ("a", "c"), ("c", "a")),
        "three characters who all answer each other",
    ),
}
"""One triad of each connected type of :data:`TRIADS` and what it says about who answers whom (the shapes are
checked against ``networkx.triadic_census`` in the tests)."""


def triad_meaning(code: str) -> str:
    """What triad ``code`` says (``"not measured"`` passes through, for a source without scripts)."""
    if code in TRIAD_SHAPES:
        return TRIAD_SHAPES[code][1]
    if code == "not measured":
        return code
    raise ParameterError(f"code={code!r} is not a connected triad type; choose one of: {', '.join(TRIADS)}")


def triad_census(script: Script) -> dict[str, int]:
    """``networkx.triadic_census`` of :func:`reply_graph`, restricted to the connected types of :data:`TRIADS`
    (research note, step 5: the paper's "triadic relationships")."""
    census = nx.triadic_census(reply_graph(script))
    return {f"census_{code}": int(census[code]) for code in TRIADS}


@dataclass(frozen=True)
class GraphArrays:
    """A graph as arrays for vectorised permutation nulls: edge endpoints, weights, triangles, labels."""

    nodes: tuple[str, ...]
    u: np.ndarray
    v: np.ndarray
    weight: np.ndarray
    triangles: np.ndarray  # (n_triangles, 3) node indices
    female: np.ndarray  # bool per node
    male: np.ndarray

    @classmethod
    def of(cls, graph: nx.Graph, genders: dict[str, str]) -> GraphArrays:
        nodes = tuple(graph.nodes)
        index = {n: i for i, n in enumerate(nodes)}
        edges = [(index[a], index[b], d["weight"]) for a, b, d in graph.edges(data=True)]
        if edges:
            u, v, w = (np.array(x, dtype=float if k == 2 else int) for k, x in enumerate(zip(*edges, strict=True)))
        else:  # a script without exchanges (a monologue, a script of action lines)
            u, v, w = np.zeros(0, int), np.zeros(0, int), np.zeros(0)
        cliques = [c for c in nx.enumerate_all_cliques(graph) if len(c) == 3]
        triangles = np.array([[index[n] for n in c] for c in cliques], dtype=int).reshape(-1, 3)
        labels = np.array([genders.get(n, UNKNOWN) for n in nodes])
        return cls(nodes, u, v, w, triangles, labels == FEMALE, labels == MALE)


def strength_share(arrays: GraphArrays) -> np.ndarray:
    """Each node's weighted degree over the total: its share of the script's exchanges (degree centrality)."""
    strength = np.bincount(arrays.u, arrays.weight, len(arrays.nodes)) + np.bincount(
        arrays.v, arrays.weight, len(arrays.nodes)
    )
    return strength / max(strength.sum(), 1e-12)


def eigenvector_centrality(arrays: GraphArrays) -> np.ndarray:
    """The leading eigenvector of the weighted adjacency, entries ≥ 0 summing to 1 (networkx's
    ``eigenvector_centrality_numpy`` up to normalisation, on a connected graph)."""
    n = len(arrays.nodes)
    adjacency = np.zeros((n, n))
    adjacency[arrays.u, arrays.v] = arrays.weight
    adjacency += adjacency.T
    if not adjacency.any():
        return np.full(n, 1 / max(n, 1))
    _, vectors = np.linalg.eigh(adjacency)
    leading = np.abs(vectors[:, -1])
    return leading / leading.sum()


def centrality_by_gender(graph: nx.Graph, genders: dict[str, str]) -> dict[str, float]:
    """Mean degree share, betweenness and eigenvector centrality of women and of men, and the rank of the most
    central woman by degree share (1 = the most central character; NaN without women)."""
    arrays = GraphArrays.of(graph, genders)
    degree = strength_share(arrays)
    between = np.array(list(nx.betweenness_centrality(graph).values())) if len(arrays.nodes) else np.zeros(0)
    eigen = eigenvector_centrality(arrays)
    out = {}
    for name, values in (("degree", degree), ("betweenness", between), ("eigenvector", eigen)):
        out[f"{name}_F"] = float(values[arrays.female].mean()) if arrays.female.any() else np.nan
        out[f"{name}_M"] = float(values[arrays.male].mean()) if arrays.male.any() else np.nan
    ranks = (-degree).argsort().argsort() + 1
    out["top_woman_rank"] = float(ranks[arrays.female].min()) if arrays.female.any() else np.nan
    return out


def female_female_share(arrays: GraphArrays, female: np.ndarray) -> np.ndarray:
    """Share of the edge weight between two women, for each row of labels ``female`` (shape (P, n) or (n,)):
    the homophily statistic ``bechdel-eq-ff`` = Σ_{uv} w_uv [u ∈ F][v ∈ F] / Σ_{uv} w_uv."""
    total = max(arrays.weight.sum(), 1e-12)
    return (female[..., arrays.u] & female[..., arrays.v]).astype(float) @ arrays.weight / total


def assortativity(arrays: GraphArrays, female: np.ndarray, male: np.ndarray) -> np.ndarray:
    """Attribute assortativity of F/M over the edges whose two ends are known (Newman's r, unweighted as in
    ``networkx.attribute_assortativity_coefficient``): r = (Σ e_ii − Σ a_i²)/(1 − Σ a_i²), per row of labels."""
    known = (female | male)[..., arrays.u] & (female | male)[..., arrays.v]
    both_f = (female[..., arrays.u] & female[..., arrays.v] & known).sum(-1)
    both_m = (male[..., arrays.u] & male[..., arrays.v] & known).sum(-1)
    mixed = known.sum(-1) - both_f - both_m
    n_pairs = np.maximum(known.sum(-1), 1)
    e_ff, e_mm, e_fm = both_f / n_pairs, both_m / n_pairs, mixed / (2 * n_pairs)
    a_f, a_m = e_ff + e_fm, e_mm + e_fm
    expected = a_f**2 + a_m**2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(expected < 1, (e_ff + e_mm - expected) / (1 - expected), np.nan)


def triangle_composition(arrays: GraphArrays, female: np.ndarray) -> np.ndarray:
    """Triangles by the number of women in them (index 0 = MMM-like, 3 = FFF), per row of labels: counts of
    shape (..., 4). Unknown-gender characters count as not women."""
    women_in = female[..., arrays.triangles].sum(-1) if len(arrays.triangles) else np.zeros(female.shape[:-1] + (0,))
    return np.stack([(women_in == k).sum(-1) for k in range(4)], axis=-1)


def permuted_labels(arrays: GraphArrays, n_permutations: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """``(female, male)`` label matrices of shape (P, n): the characters' labels shuffled among them
    (``bechdel-eq-null``: the network kept, who is a woman forgotten)."""
    order = np.argsort(rng.random((n_permutations, len(arrays.nodes))), axis=1)
    return arrays.female[order], arrays.male[order]


def strengths(arrays: GraphArrays) -> np.ndarray:
    """Each node's weighted degree: how many exchanges it takes part in (its talk volume)."""
    n = len(arrays.nodes)
    return np.bincount(arrays.u, arrays.weight, n) + np.bincount(arrays.v, arrays.weight, n)


def volume_fitness(s: np.ndarray) -> np.ndarray:
    """Fitnesses ``x`` (summing to 1) with ``x_a Σ_{b≠a} x_b ∝ s_a`` for every node: the pair weights
    ``x_a x_b`` (a ≠ b) then give each node its observed share of the exchanges (``bechdel-eq-strength-null``).

    With Σx = 1 the condition reads ``x_a (1 − x_a) = λ s_a``: each ``x_a`` is a root of a quadratic, the smaller
    one except possibly for the most active node, and λ is found by Brent's method so that the roots sum to 1.
    A star (one node in every exchange) is the limit λ → 0: the hub's fitness → 1, the others' ∝ their volume."""
    s = np.asarray(s, float)
    x = np.zeros_like(s)
    if (s > 0).sum() < 2:
        return x
    hub = int(np.argmax(s))
    scaled = s / s[hub]  # μ = λ s_hub ∈ (0, 1/4]: every discriminant 1 − 4 μ s/s_hub stays ≥ 0

    def roots(mu: float, hub_large: bool) -> np.ndarray:
        r = np.sqrt(np.maximum(1 - 4 * mu * scaled, 0.0))
        out = (1 - r) / 2
        if hub_large:
            out[hub] = (1 + r[hub]) / 2
        return out

    if roots(0.25, False).sum() >= 1:
        mu = optimize.brentq(lambda m: roots(m, False).sum() - 1, 0.0, 0.25, xtol=1e-15)
        return roots(mu, False)
    tiny = 1e-12
    if roots(tiny, True).sum() <= 1:  # a star: the limit λ → 0
        return roots(tiny, True) / roots(tiny, True).sum()
    mu = optimize.brentq(lambda m: roots(m, True).sum() - 1, tiny, 0.25, xtol=1e-15)
    return roots(mu, True)


def strength_null_share(arrays: GraphArrays, female: np.ndarray) -> float:
    """The F-F share expected when every character keeps its talk volume and partners are chosen without regard
    to gender (``bechdel-eq-strength-null``): an exchange joins a ≠ b with probability ∝ x_a x_b, the fitnesses
    of :func:`volume_fitness`, so q = Σ_{a<b ∈ F} x_a x_b / Σ_{a<b} x_a x_b. This is a *soft* configuration model
    (Chung–Lu with the no-self-pair correction): volumes are kept in expectation, not exactly, so its spread is
    wider than an exact degree-preserving null's and its p-values are conservative. The plain product s_a s_b (the
    expectation behind Newman's weighted assortativity) does not keep volumes once no one can talk to
    themselves: it gives the most active characters fewer exchanges than they have, and so too few F-F
    exchanges when women talk more. NaN for a script without exchanges."""
    x = volume_fitness(strengths(arrays))
    pairs = (x.sum() ** 2 - (x**2).sum()) / 2
    if pairs <= 0:
        return np.nan
    women = x[female]
    return float((women.sum() ** 2 - (women**2).sum()) / 2 / pairs)


def strength_null_draws(arrays: GraphArrays, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """F-F edge weights drawn under :func:`strength_null_share`: each of the script's E exchanges joins two
    women with probability q, independently (Binomial(E, q), ``bechdel-eq-strength-null``; zeros for a script
    without exchanges)."""
    q = strength_null_share(arrays, arrays.female)
    total = int(round(arrays.weight.sum()))
    return rng.binomial(total, q, n_draws).astype(float) if total and np.isfinite(q) else np.zeros(n_draws)


# ---------------------------------------------------------------------------------------------------------
# 5. One row of measures per script, and corpus tests


def male_names_in(text: str) -> set[str]:
    """The capitalised words of ``text`` that ``gender-guesser`` reads as a man's first name (lower case): men a
    line names whether or not they speak in the script."""
    return {w.lower() for w in re.findall(r"\b[A-Z][a-z]+\b", text) if name_gender(w)[0] == MALE}


def mentions_a_man_anywhere(text: str, male_speakers: set[str]) -> bool:
    """:func:`mentions_a_man` with the male names of :func:`male_names_in` added to the speaking men's: the
    who-talks-about-whom measure, which should not depend on whether the man named also speaks (test 3 keeps
    ``bechdelscript``'s rule, speakers only)."""
    return mentions_a_man(text, male_speakers | male_names_in(text))


def women_male_reference_share(script: Script, genders: dict[str, str]) -> float:
    """Who talks about whom: the share of women's turns that mention a man, named or not, speaking or not
    (:func:`mentions_a_man_anywhere`; NaN without women's turns)."""
    male_names = {first_name(s) for s in script.speakers if genders.get(s) == MALE}
    lines = [t.text for t in script.turns if genders.get(t.speaker) == FEMALE]
    return float(np.mean([mentions_a_man_anywhere(line, male_names) for line in lines])) if lines else np.nan


def measure_script(
    script: Script, rng: np.random.Generator, n_permutations: int = 200, use_text: bool = True
) -> dict[str, float]:
    """Every measure of one script: parse counts, genders, the three tests, centrality by gender, F-F edge
    share and assortativity with their permutation nulls, the F-F share's talk-volume null and z-score, triangles
    by composition with their null means, and the directed triadic census (``census_<type>``)."""
    genders = labels_of(infer_genders(script, use_text=use_text))
    graph = interaction_graph(script)
    arrays = GraphArrays.of(graph, genders)
    result = bechdel(script, genders)
    known = [g for g in genders.values() if g != UNKNOWN]
    row = {
        "scenes": len(script.scenes),
        "turns": len(script.turns),
        "characters": len(genders),
        "women": sum(g == FEMALE for g in genders.values()),
        "men": sum(g == MALE for g in genders.values()),
        "female_share": float(np.mean([g == FEMALE for g in known])) if known else np.nan,
        "test1": result.test1,
        "test2": result.test2,
        "test3": result.test3,
        "women_mention_men": women_male_reference_share(script, genders),
        **centrality_by_gender(graph, genders),
    }
    female, male = permuted_labels(arrays, n_permutations, rng)
    ff = permutation_null(float(female_female_share(arrays, arrays.female)), female_female_share(arrays, female))
    r = permutation_null(float(assortativity(arrays, arrays.female, arrays.male)), assortativity(arrays, female, male))
    observed_triangles = triangle_composition(arrays, arrays.female)
    null_triangles = triangle_composition(arrays, female).mean(0)
    q, total = strength_null_share(arrays, arrays.female), arrays.weight.sum()
    row |= {
        "ff_share": ff.observed,
        "ff_null": ff.null_mean,
        "ff_strength_null": q,
        "ff_z": (ff.observed - q) / np.sqrt(q * (1 - q) / total) if 0 < q < 1 else np.nan,
        "assortativity": r.observed,
        "assortativity_null": r.null_mean,
    }
    for k, name in enumerate(("MMM", "FMM", "FFM", "FFF")):
        row[f"tri_{name}"], row[f"tri_{name}_null"] = float(observed_triangles[k]), float(null_triangles[k])
    return row | triad_census(script)


def measure_corpus(scripts: list[Script], rng: np.random.Generator, n_permutations: int = 200) -> pd.DataFrame:
    """:func:`measure_script` for every script, one row each."""
    return pd.DataFrame([measure_script(s, rng, n_permutations) for s in scripts])


def pooled_permutation_test(
    scripts: list[Script], rng: np.random.Generator, n_permutations: int = 500
) -> NullComparison:
    """The corpus-level homophily test: the total F-F edge weight of all scripts against the same total when
    each script's labels are shuffled among its own characters (``bechdel-eq-null``, pooled): a script's cast
    stays its own, so the share of women per script is held fixed."""
    observed, null = 0.0, np.zeros(n_permutations)
    for script in scripts:
        arrays = GraphArrays.of(interaction_graph(script), labels_of(infer_genders(script)))
        if not len(arrays.weight):
            continue
        total = arrays.weight.sum()
        observed += float(female_female_share(arrays, arrays.female)) * total
        null += female_female_share(arrays, permuted_labels(arrays, n_permutations, rng)[0]) * total
    return permutation_null(observed, null)


def fisher_pass_rates(passes_a: int, n_a: int, passes_b: int, n_b: int) -> float:
    """Two-sided Fisher exact test of equal pass rates (research note, step 6)."""
    return float(stats.fisher_exact([[passes_a, n_a - passes_a], [passes_b, n_b - passes_b]])[1])


def mann_whitney(women: np.ndarray, men: np.ndarray) -> float:
    """One-sided Mann-Whitney p-value that women's centralities are lower than men's (research note, step 6)."""
    women, men = np.asarray(women, float), np.asarray(men, float)
    women, men = women[~np.isnan(women)], men[~np.isnan(men)]
    if not len(women) or not len(men):
        return np.nan
    return float(stats.mannwhitneyu(women, men, alternative="less").pvalue)


def node_centralities(scripts: list[Script]) -> pd.DataFrame:
    """One row per character of every script: script index, gender, and degree share (for Mann-Whitney)."""
    rows = []
    for k, script in enumerate(scripts):
        genders = labels_of(infer_genders(script))
        arrays = GraphArrays.of(interaction_graph(script), genders)
        for node, share in zip(arrays.nodes, strength_share(arrays), strict=True):
            rows.append({"script": k, "character": node, "gender": genders[node], "degree_share": share})
    return pd.DataFrame(rows, columns=["script", "character", "gender", "degree_share"])
