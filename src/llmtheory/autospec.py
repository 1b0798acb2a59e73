"""AutoSpec (Ma et al., arXiv 2606.24245): evolving agent safety rules by CEGIS guided by ILP.

The paper's abstract describes the loop: start from expert rules and user-annotated traces, then
"iteratively evaluate rules, mine false-positive and false-negative counterexamples, use ILP to learn
which predicates discriminate them, generate candidate rule edits, and verify candidates to select the
best revision", until convergence. Only the abstract is public; everything below that is not in it is
our reconstruction, marked as such:

1. the rule language, after AgentSpec (Wang, Poskitt and Sun, arXiv 2503.18666):
   ``rule @name trigger <event> check <literal>+ enforce <action> end``, the checks a conjunction;
2. two trace domains (code-execution agents, embodied household agents) whose predicates carry
   AgentSpec's names; traces are Boolean facts labelled by a hidden ground-truth rule set, with
   annotation noise;
3. the ILP step as FOIL gain (Quinlan 1990) over the counterexamples;
4. the candidate edits (specialise, generalise, add, drop) and the verifier (training F1);
5. the baselines: heuristic CEGIS (same loop and budget, random edits), the same CEGIS from no rules,
   and a decision tree (scikit-learn).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import numpy as np

from .seeding import make_rng

# ---------------------------------------------------------------------------------------------------
# 1. The rule language (AgentSpec's grammar, AgentSpec.g4, restricted to what the paper evolves)
# ---------------------------------------------------------------------------------------------------

ENFORCEMENTS: tuple[str, ...] = ("stop", "user_inspection", "llm_self_reflect", "invoke_action")
"""AgentSpec's enforcement actions; any of them means the rule flags the action as unsafe."""

ANY_TRIGGER = "any"
KEYWORDS = frozenset({"rule", "trigger", "check", "enforce", "end", "true"})


@dataclass(frozen=True, order=True)
class Literal:
    """A checked predicate ``p`` or its negation ``!p``."""

    predicate: str
    positive: bool = True

    def __str__(self) -> str:
        return self.predicate if self.positive else f"!{self.predicate}"


@dataclass(frozen=True)
class Rule:
    """``rule @name trigger <trigger> check <checks> enforce <enforce> end``: fires when the agent's
    action matches ``trigger`` and every literal of ``checks`` holds (AgentSpec's conjunction)."""

    name: str
    trigger: str
    checks: tuple[Literal, ...]
    enforce: str = "stop"


class RuleSyntaxError(ValueError):
    """The rule text does not follow the grammar; the message names the line and what was expected."""


_TOKEN = re.compile(r"\s*(?:#[^\n]*)?")
_WORD = re.compile(r"@?[A-Za-z_][A-Za-z0-9_]*|!")


def _tokens(text: str) -> list[tuple[str, int]]:
    """Split rule text into (token, line) pairs; ``#`` starts a comment that runs to the line's end."""
    tokens, position = [], 0
    while True:
        start = -1
        while start != position:  # skip whitespace and comments, several lines of them in a row
            start, position = position, _TOKEN.match(text, position).end()
        if position >= len(text):
            return tokens
        match = _WORD.match(text, position)
        line = text.count("\n", 0, position) + 1
        if match is None:
            raise RuleSyntaxError(f"line {line}: unexpected character {text[position]!r}")
        tokens.append((match.group(), line))
        position = match.end()


def parse_rules(text: str) -> tuple[Rule, ...]:
    """Parse a rule file: a sequence of ``rule @name trigger T check L+ enforce E end`` blocks.

    ``check true`` is the empty conjunction (the rule fires on every ``T`` action); a literal is
    ``p`` or ``!p``. Rule names must be unique. Raises :class:`RuleSyntaxError` with the line number.
    """
    tokens = _tokens(text)
    rules, i = [], 0

    def expect(what: str) -> tuple[str, int]:
        nonlocal i
        if i >= len(tokens):
            raise RuleSyntaxError(f"end of text: expected {what}")
        token, line = tokens[i]
        i += 1
        return token, line

    def keyword(word: str) -> None:
        token, line = expect(repr(word))
        if token != word:
            raise RuleSyntaxError(f"line {line}: expected {word!r}, found {token!r}")

    def identifier(what: str) -> str:
        token, line = expect(what)
        if token in KEYWORDS or token == "!" or token.startswith("@"):
            raise RuleSyntaxError(f"line {line}: expected {what}, found {token!r}")
        return token

    while i < len(tokens):
        keyword("rule")
        name, line = expect("a rule name @name")
        if not name.startswith("@") or len(name) < 2:
            raise RuleSyntaxError(f"line {line}: expected a rule name @name, found {name!r}")
        if any(r.name == name[1:] for r in rules):
            raise RuleSyntaxError(f"line {line}: rule @{name[1:]} is defined twice")
        keyword("trigger")
        trigger = identifier("a trigger")
        keyword("check")
        checks: list[Literal] = []
        if i < len(tokens) and tokens[i][0] == "true":
            i += 1
        else:
            while i < len(tokens) and tokens[i][0] != "enforce":
                negated = tokens[i][0] == "!"
                i += negated
                checks.append(Literal(identifier("a predicate"), positive=not negated))
            if not checks:
                raise RuleSyntaxError(f"line {line}: rule @{name[1:]} checks nothing (write `check true`)")
        keyword("enforce")
        enforce, line = expect("an enforcement")
        if enforce not in ENFORCEMENTS:
            raise RuleSyntaxError(f"line {line}: enforcement {enforce!r} is not one of {', '.join(ENFORCEMENTS)}")
        keyword("end")
        rules.append(Rule(name[1:], trigger, tuple(checks), enforce))
    return tuple(rules)


def format_rule(rule: Rule) -> str:
    """The canonical text of one rule: one keyword per line, literals indented by four spaces."""
    body = [f"    {literal}" for literal in rule.checks] or ["    true"]
    return "\n".join(
        [f"rule @{rule.name}", f"trigger {rule.trigger}", "check", *body, f"enforce {rule.enforce}", "end"]
    )


def format_rules(rules: tuple[Rule, ...]) -> str:
    """The canonical text of a rule set; ``parse_rules(format_rules(r)) == r`` for every valid ``r``."""
    return "\n\n".join(format_rule(rule) for rule in rules) + "\n" if rules else ""


# ---------------------------------------------------------------------------------------------------
# 2. Trace domains: predicates from AgentSpec, a hidden ground-truth policy, flawed expert rules
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Domain:
    """A trace domain: the actions (triggers) an agent takes, the predicates observed on each action,
    the hidden policy that decides which actions are unsafe, and the expert's deployed rules."""

    name: str
    triggers: tuple[str, ...]
    predicates: tuple[str, ...]
    ground_truth: tuple[Rule, ...]
    expert: tuple[Rule, ...]

    def index(self, predicate: str) -> int:
        return self.predicates.index(predicate)


CODE_RULES = """
# hidden policy of the code-execution domain (RedCode-style risks, AgentSpec's predicate names)
rule @system_write trigger PythonREPL check involve_system_file write_to_io !in_sandbox enforce stop end
rule @exfiltrate trigger PythonREPL check read_sensitive_data submit_post_request enforce stop end
rule @remote_code trigger PythonREPL check request_untrusted_source execute_script enforce stop end
rule @destroy trigger Terminal check destructive_os_inst !path_in_workspace enforce stop end
rule @privilege trigger Terminal check raise_privilege !user_confirmed enforce user_inspection end
rule @kill_system trigger Terminal check kill_process involve_system_file enforce stop end
"""

CODE_EXPERT = """
rule @system_write trigger PythonREPL check involve_system_file write_to_io enforce stop end
rule @exfiltrate trigger PythonREPL check read_sensitive_data submit_post_request encode_data enforce stop end
rule @destroy trigger Terminal check destructive_os_inst enforce stop end
rule @privilege trigger Terminal check raise_privilege !user_confirmed enforce user_inspection end
rule @listing trigger PythonREPL check list_directory enforce user_inspection end
"""

EMBODIED_RULES = """
# hidden policy of the household domain (SafeAgentBench-style hazards, AgentSpec's predicate names)
rule @metal_microwave trigger put check is_into_microwave is_holding_none_microwave_obj enforce stop end
rule @hot_fridge trigger put check is_into_fridge is_putting_hot_things enforce stop end
rule @open_flame trigger turn_on check is_heat_source flammable_nearby enforce stop end
rule @empty_stove trigger turn_on check on_stove is_empty enforce stop end
rule @liquid_electronics trigger pour check is_liquid is_electronic enforce stop end
rule @shatter trigger break check is_fragile is_person_nearby enforce stop end
"""

EMBODIED_EXPERT = """
rule @microwave trigger put check is_into_microwave enforce stop end
rule @hot_fridge trigger put check is_into_fridge is_putting_hot_things enforce stop end
rule @candle trigger turn_on check is_heat_source flammable_nearby is_candle enforce stop end
rule @shatter trigger break check is_fragile enforce stop end
rule @sharp trigger put check is_sharp enforce llm_self_reflect end
"""

DOMAINS: dict[str, Domain] = {
    "code": Domain(
        name="code",
        triggers=("PythonREPL", "Terminal"),
        predicates=(
            "involve_system_file",
            "submit_post_request",
            "request_untrusted_source",
            "write_to_io",
            "read_io",
            "encode_data",
            "execute_script",
            "destructive_os_inst",
            "list_directory",
            "kill_process",
            "raise_privilege",
            "read_sensitive_data",
            "in_sandbox",
            "path_in_workspace",
            "user_confirmed",
            "network_access",
            "delete_file",
            "install_package",
        ),  # fmt: skip
        ground_truth=parse_rules(CODE_RULES),
        expert=parse_rules(CODE_EXPERT),
    ),
    "embodied": Domain(
        name="embodied",
        triggers=("put", "turn_on", "pour", "break"),
        predicates=(
            "is_candle",
            "is_into_microwave",
            "is_holding_none_microwave_obj",
            "is_into_fridge",
            "is_putting_hot_things",
            "is_liquid",
            "is_fragile",
            "is_electronic",
            "near_water",
            "is_heat_source",
            "flammable_nearby",
            "is_food",
            "is_sharp",
            "is_person_nearby",
            "is_container_open",
            "on_stove",
            "is_empty",
            "is_plugged_in",
        ),  # fmt: skip
        ground_truth=parse_rules(EMBODIED_RULES),
        expert=parse_rules(EMBODIED_EXPERT),
    ),
}


@dataclass(frozen=True)
class Traces:
    """Agent traces as arrays: the action of each trace (an index into ``domain.triggers``), the
    observed predicates (``facts[i, j]`` is predicate ``j`` on trace ``i``), the user's annotation
    ``label`` (True = unsafe; noisy) and the hidden policy's verdict ``truth``."""

    domain: Domain
    trigger: np.ndarray
    facts: np.ndarray
    label: np.ndarray
    truth: np.ndarray

    def __len__(self) -> int:
        return len(self.label)

    def subset(self, rows: np.ndarray) -> Traces:
        return replace(
            self, trigger=self.trigger[rows], facts=self.facts[rows], label=self.label[rows], truth=self.truth[rows]
        )


def generate_traces(
    domain: Domain,
    n: int,
    rng: np.random.Generator,
    *,
    background_rate: float = 0.2,
    scenario_rate: float = 0.6,
    near_miss_rate: float = 0.4,
    label_noise: float = 0.03,
) -> Traces:
    """Sample ``n`` traces. With probability ``scenario_rate`` a trace comes from a scenario: the trigger
    and literals of one rule of the hidden policy or of the expert rules (so both the real hazards and
    the expert's blind spots occur), one literal flipped with probability ``near_miss_rate`` (a near
    miss); the other predicates are on with probability ``background_rate``. The hidden policy labels
    each trace; each label is flipped with probability ``label_noise`` (annotation errors)."""
    scenarios = domain.ground_truth + domain.expert
    trigger = rng.integers(len(domain.triggers), size=n)
    facts = rng.random((n, len(domain.predicates))) < background_rate
    for i in np.flatnonzero(rng.random(n) < scenario_rate):
        rule = scenarios[rng.integers(len(scenarios))]
        trigger[i] = domain.triggers.index(rule.trigger)
        for literal in rule.checks:
            facts[i, domain.index(literal.predicate)] = literal.positive
        if rule.checks and rng.random() < near_miss_rate:
            j = domain.index(rule.checks[rng.integers(len(rule.checks))].predicate)
            facts[i, j] = ~facts[i, j]
    truth = flags(domain.ground_truth, domain, trigger, facts)
    label = truth ^ (rng.random(n) < label_noise)
    return Traces(domain, trigger, facts, label, truth)


def split(traces: Traces, train_fraction: float, rng: np.random.Generator) -> tuple[Traces, Traces]:
    """A random train / held-out split of the same traces."""
    order = rng.permutation(len(traces))
    cut = round(train_fraction * len(traces))
    return traces.subset(np.sort(order[:cut])), traces.subset(np.sort(order[cut:]))


# ---------------------------------------------------------------------------------------------------
# 3. Rule semantics and the verifier's metrics
# ---------------------------------------------------------------------------------------------------


def check_rules(rules: tuple[Rule, ...], domain: Domain) -> None:
    """Raise ``ValueError`` unless every rule is well formed for ``domain``: known trigger and
    predicates, no predicate checked twice, unique names, a known enforcement."""
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate rule names in {names}")
    for rule in rules:
        if rule.trigger not in domain.triggers and rule.trigger != ANY_TRIGGER:
            raise ValueError(f"rule @{rule.name}: unknown trigger {rule.trigger!r}")
        predicates = [literal.predicate for literal in rule.checks]
        if len(set(predicates)) != len(predicates):
            raise ValueError(f"rule @{rule.name}: a predicate is checked twice")
        for predicate in predicates:
            if predicate not in domain.predicates:
                raise ValueError(f"rule @{rule.name}: unknown predicate {predicate!r}")
        if rule.enforce not in ENFORCEMENTS:
            raise ValueError(f"rule @{rule.name}: unknown enforcement {rule.enforce!r}")


def fires(rule: Rule, domain: Domain, trigger: np.ndarray, facts: np.ndarray) -> np.ndarray:
    """AgentSpec's semantics: the rule fires on a trace when the action matches the trigger and every
    checked literal holds. Returns a Boolean vector over traces."""
    hit = np.ones(len(trigger), bool) if rule.trigger == ANY_TRIGGER else trigger == domain.triggers.index(rule.trigger)
    for literal in rule.checks:
        hit &= facts[:, domain.index(literal.predicate)] == literal.positive
    return hit


def flags(rules: tuple[Rule, ...], domain: Domain, trigger: np.ndarray, facts: np.ndarray) -> np.ndarray:
    """A trace is flagged unsafe when at least one rule fires on it (the rules form a disjunction)."""
    flagged = np.zeros(len(trigger), bool)
    for rule in rules:
        flagged |= fires(rule, domain, trigger, facts)
    return flagged


@dataclass(frozen=True)
class Scores:
    """Confusion counts and the metrics of the paper (unsafe is the positive class)."""

    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        return 2 * self.tp / (2 * self.tp + self.fp + self.fn) if self.tp else 0.0


def score_predictions(flagged: np.ndarray, unsafe: np.ndarray) -> Scores:
    return Scores(
        tp=int(np.sum(flagged & unsafe)),
        fp=int(np.sum(flagged & ~unsafe)),
        fn=int(np.sum(~flagged & unsafe)),
        tn=int(np.sum(~flagged & ~unsafe)),
    )


def evaluate(rules: tuple[Rule, ...], traces: Traces, *, clean: bool = False) -> Scores:
    """Step 1 of the loop: the rules' confusion counts against the annotations (or the hidden truth)."""
    unsafe = traces.truth if clean else traces.label
    return score_predictions(flags(rules, traces.domain, traces.trigger, traces.facts), unsafe)


# ---------------------------------------------------------------------------------------------------
# 4. The ILP step: FOIL gain over counterexamples
# ---------------------------------------------------------------------------------------------------


def foil_gain(p0: int, n0: int, p1: int, n1: int) -> float:
    """FOIL's information gain (Quinlan 1990) of refining a clause that covers ``p0`` positives and
    ``n0`` negatives into one covering ``p1`` and ``n1``:
    ``p1 · (log2(p1/(p1+n1)) − log2(p0/(p0+n0)))``, zero when the refinement keeps no positive."""
    if p1 == 0 or p0 == 0:
        return 0.0
    return p1 * (np.log2(p1 / (p1 + n1)) - np.log2(p0 / (p0 + n0)))


def rank_literals(
    positives: np.ndarray, negatives: np.ndarray, predicates: tuple[str, ...], *, exclude: frozenset[str] = frozenset()
) -> list[tuple[Literal, float]]:
    """The ILP scorer: every literal ``p`` / ``!p`` ranked by the FOIL gain of adding it to a clause
    that covers the rows of ``positives`` and ``negatives`` (Boolean fact matrices). A literal true on
    most positive examples and few negative ones ranks first. Ties break by name, for determinism."""
    p0, n0 = len(positives), len(negatives)
    on_pos, on_neg = positives.sum(0), negatives.sum(0)
    ranked = []
    for j, predicate in enumerate(predicates):
        if predicate in exclude:
            continue
        for positive, p1, n1 in ((True, on_pos[j], on_neg[j]), (False, p0 - on_pos[j], n0 - on_neg[j])):
            ranked.append((Literal(predicate, positive), foil_gain(p0, n0, int(p1), int(n1))))
    return sorted(ranked, key=lambda pair: (-pair[1], pair[0]))


def counterexample_contrast(rules: tuple[Rule, ...], traces: Traces) -> dict[str, np.ndarray]:
    """The abstract's key insight made visible: how often each predicate is on in the false negatives
    and in the false positives of ``rules`` (frequent in one kind and rare in the other = a useful edit)."""
    flagged = flags(rules, traces.domain, traces.trigger, traces.facts)
    false_neg = traces.facts[~flagged & traces.label]
    false_pos = traces.facts[flagged & ~traces.label]
    return {
        "in_false_negatives": false_neg.mean(0) if len(false_neg) else np.zeros(len(traces.domain.predicates)),
        "in_false_positives": false_pos.mean(0) if len(false_pos) else np.zeros(len(traces.domain.predicates)),
    }


# ---------------------------------------------------------------------------------------------------
# 5. Candidate edits: specialise, generalise, add, drop
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edit:
    """A candidate revision of the rule set: what was done (for the reader) and the rules it gives."""

    kind: str
    description: str
    rules: tuple[Rule, ...]
    ilp_score: float = 0.0


EDIT_KINDS: tuple[str, ...] = ("specialise", "generalise", "add", "drop")


def specialise(rules: tuple[Rule, ...], index: int, literal: Literal) -> tuple[Rule, ...]:
    """Add ``literal`` to the checks of rule ``index`` (fewer traces match: removes false positives)."""
    rule = rules[index]
    new = replace(rule, checks=rule.checks + (literal,))
    return rules[:index] + (new,) + rules[index + 1 :]


def generalise(rules: tuple[Rule, ...], index: int, literal: Literal) -> tuple[Rule, ...]:
    """Drop ``literal`` from the checks of rule ``index`` (more traces match: removes false negatives)."""
    rule = rules[index]
    new = replace(rule, checks=tuple(x for x in rule.checks if x != literal))
    return rules[:index] + (new,) + rules[index + 1 :]


def add_rule(rules: tuple[Rule, ...], trigger: str, checks: tuple[Literal, ...]) -> tuple[Rule, ...]:
    """Append a new rule ``@learned_k`` (k the first free number) enforcing ``stop``."""
    names = {r.name for r in rules}
    k = next(k for k in range(1, len(rules) + 2) if f"learned_{k}" not in names)
    return rules + (Rule(f"learned_{k}", trigger, tuple(checks), "stop"),)


def drop_rule(rules: tuple[Rule, ...], index: int) -> tuple[Rule, ...]:
    """Remove rule ``index`` altogether (a rule whose alarms are mostly false)."""
    return rules[:index] + rules[index + 1 :]


def _greedy_clause(
    pos: np.ndarray, neg: np.ndarray, predicates: tuple[str, ...], first: Literal, max_length: int, min_support: int
) -> tuple[tuple[Literal, ...], float]:
    """FOIL's inner loop from a given first literal: add the best-gain literal while negatives remain
    covered, the gain is positive and the clause covers ≥ ``min_support`` positives."""
    index = {p: j for j, p in enumerate(predicates)}
    clause, total = [], 0.0
    literal = first
    while True:
        j = index[literal.predicate]
        keep_pos, keep_neg = pos[:, j] == literal.positive, neg[:, j] == literal.positive
        gain = foil_gain(len(pos), len(neg), int(keep_pos.sum()), int(keep_neg.sum()))
        if keep_pos.sum() < min_support or gain <= 0:
            break
        clause.append(literal)
        total += gain
        pos, neg = pos[keep_pos], neg[keep_neg]
        if len(neg) == 0 or len(clause) == max_length:
            break
        literal, _ = rank_literals(pos, neg, predicates, exclude=frozenset(x.predicate for x in clause))[0]
    return tuple(clause), total


def ilp_candidates(
    rules: tuple[Rule, ...], traces: Traces, *, per_kind: int = 3, max_length: int = 3, min_support: int = 2
) -> list[Edit]:
    """Steps 2–4 of the loop: mine the counterexamples of ``rules`` on ``traces`` and let FOIL gain
    propose at most ``per_kind`` edits of each kind:

    * specialise rule r by the literal that best keeps r's true positives and loses its false positives;
    * generalise rule r by dropping the literal whose near misses (traces r misses only because of
      it) are mostly false negatives, scored by the gain of covering them over the uncovered prior;
    * add a clause learned by greedy FOIL on the false negatives versus the unflagged safe traces
      of one trigger (beam: the best first literals);
    * drop rule r when its alarms that no other rule raises are mostly false positives.
    """
    domain, trigger, facts, unsafe = traces.domain, traces.trigger, traces.facts, traces.label
    firing = [fires(r, domain, trigger, facts) for r in rules]
    flagged = np.any(firing, axis=0) if rules else np.zeros(len(traces), bool)
    false_neg, true_neg = ~flagged & unsafe, ~flagged & ~unsafe
    found: dict[str, list[Edit]] = {kind: [] for kind in EDIT_KINDS}
    for i, rule in enumerate(rules):
        tp, fp = firing[i] & unsafe, firing[i] & ~unsafe
        if fp.any():
            used = frozenset(x.predicate for x in rule.checks)
            for literal, gain in rank_literals(facts[tp], facts[fp], domain.predicates, exclude=used)[:per_kind]:
                if gain > 0:
                    found["specialise"].append(
                        Edit("specialise", f"@{rule.name} += {literal}", specialise(rules, i, literal), gain)
                    )
        on_trigger = fires(replace(rule, checks=()), domain, trigger, facts)
        prior_p, prior_n = int((on_trigger & false_neg).sum()), int((on_trigger & true_neg).sum())
        for literal in rule.checks:
            relaxed = fires(generalise((rule,), 0, literal)[0], domain, trigger, facts) & ~firing[i]
            gain = foil_gain(prior_p, prior_n, int((relaxed & false_neg).sum()), int((relaxed & true_neg).sum()))
            if gain > 0:
                edit = Edit("generalise", f"@{rule.name} -= {literal}", generalise(rules, i, literal), gain)
                found["generalise"].append(edit)
        others = np.zeros(len(traces), bool)
        for k, other in enumerate(firing):
            if k != i:
                others |= other
        alone = firing[i] & ~others
        lost_tp, saved_fp = int((alone & unsafe).sum()), int((alone & ~unsafe).sum())
        if saved_fp > lost_tp:
            found["drop"].append(Edit("drop", f"drop @{rule.name}", drop_rule(rules, i), float(saved_fp - lost_tp)))
    for t, name in enumerate(domain.triggers):
        pos, neg = facts[false_neg & (trigger == t)], facts[true_neg & (trigger == t)]
        if len(pos) < min_support:
            continue
        for first, _ in rank_literals(pos, neg, domain.predicates)[:per_kind]:
            clause, gain = _greedy_clause(pos, neg, domain.predicates, first, max_length, min_support)
            if clause and gain > 0:
                text = " ".join(map(str, clause))
                found["add"].append(Edit("add", f"add {name}: {text}", add_rule(rules, name, clause), gain))
    return [edit for kind in EDIT_KINDS for edit in _best_distinct(found[kind], per_kind)]


def _best_distinct(edits: list[Edit], k: int) -> list[Edit]:
    """The ``k`` highest-scoring edits with distinct outcomes (ties broken by description)."""
    seen, best = set(), []
    for edit in sorted(edits, key=lambda e: (-e.ilp_score, e.description)):
        if edit.rules not in seen:
            seen.add(edit.rules)
            best.append(edit)
    return best[:k]


def random_candidates(
    rules: tuple[Rule, ...], traces: Traces, rng: np.random.Generator, *, per_kind: int = 3, max_length: int = 3
) -> list[Edit]:
    """Heuristic CEGIS's proposer: the same four edit kinds and budget, but the rule, the literal and
    the new clause are drawn uniformly at random instead of being scored by ILP."""
    domain = traces.domain
    edits = []

    def random_literal(exclude: set[str]) -> Literal:
        free = [p for p in domain.predicates if p not in exclude]
        return Literal(free[rng.integers(len(free))], bool(rng.integers(2)))

    for _ in range(per_kind):
        if rules:
            i = int(rng.integers(len(rules)))
            literal = random_literal({x.predicate for x in rules[i].checks})
            edits.append(Edit("specialise", f"@{rules[i].name} += {literal}", specialise(rules, i, literal)))
            if rules[i].checks:
                literal = rules[i].checks[rng.integers(len(rules[i].checks))]
                edits.append(Edit("generalise", f"@{rules[i].name} -= {literal}", generalise(rules, i, literal)))
            i = int(rng.integers(len(rules)))
            edits.append(Edit("drop", f"drop @{rules[i].name}", drop_rule(rules, i)))
        name = domain.triggers[rng.integers(len(domain.triggers))]
        clause: list[Literal] = []
        for _ in range(int(rng.integers(1, max_length + 1))):
            clause.append(random_literal({x.predicate for x in clause}))
        edits.append(Edit("add", f"add {name}: {' '.join(map(str, clause))}", add_rule(rules, name, tuple(clause))))
    return edits


# ---------------------------------------------------------------------------------------------------
# 6. The CEGIS loop and its verifier
# ---------------------------------------------------------------------------------------------------


@dataclass
class LoopResult:
    """The trajectory of one CEGIS run: ``history[k]`` are the rules after ``k`` accepted edits
    (``history[0]`` the start), ``edits[k-1]`` the edit that produced them."""

    history: list[tuple[Rule, ...]] = field(default_factory=list)
    edits: list[Edit] = field(default_factory=list)
    converged: bool = False

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self.history[-1]

    @property
    def iterations(self) -> int:
        return len(self.edits)


def verify(candidates: list[Edit], traces: Traces) -> Edit | None:
    """Step 5: score every candidate revision by F1 on the annotated traces and return the best
    (ties: fewer literals, then the description), or None when there is no candidate."""
    if not candidates:
        return None

    def key(edit: Edit):
        size = sum(len(r.checks) + 1 for r in edit.rules)
        return (-evaluate(edit.rules, traces).f1, size, edit.description)

    return min(candidates, key=key)


def cegis(
    start: tuple[Rule, ...],
    traces: Traces,
    *,
    proposer: str = "ilp",
    rng: np.random.Generator | None = None,
    max_iterations: int = 10,
    per_kind: int = 3,
) -> LoopResult:
    """AutoSpec's loop (abstract): evaluate, mine counterexamples, propose edits (``proposer="ilp"``:
    FOIL-guided; ``"random"``: heuristic CEGIS), verify, keep the best revision if it raises training
    F1; stop when none does (converged) or after ``max_iterations``. Training F1 never decreases."""
    if proposer not in ("ilp", "random"):
        raise ValueError(f"proposer={proposer!r}; choose 'ilp' or 'random'")
    if proposer == "random" and rng is None:
        raise ValueError("the random proposer needs an rng")
    check_rules(start, traces.domain)
    result = LoopResult(history=[start])
    for _ in range(max_iterations):
        rules = result.rules
        if proposer == "ilp":
            candidates = ilp_candidates(rules, traces, per_kind=per_kind)
        else:
            candidates = random_candidates(rules, traces, rng, per_kind=per_kind)
        best = verify(candidates, traces)
        if best is None or evaluate(best.rules, traces).f1 <= evaluate(rules, traces).f1:
            result.converged = True
            break
        check_rules(best.rules, traces.domain)
        result.history.append(best.rules)
        result.edits.append(best)
    return result


# ---------------------------------------------------------------------------------------------------
# 7. A learner from the standard toolbox: a decision tree from scratch (no expert rules)
# ---------------------------------------------------------------------------------------------------


def tree_features(traces: Traces) -> np.ndarray:
    """One-hot action followed by the predicate facts, as a float matrix for scikit-learn."""
    one_hot = np.eye(len(traces.domain.triggers))[traces.trigger]
    return np.hstack([one_hot, traces.facts.astype(float)])


def fit_tree(traces: Traces, seed: int, *, min_samples_leaf: int = 2):
    """scikit-learn's CART on the annotated traces (the learn-from-scratch comparator)."""
    from sklearn.tree import DecisionTreeClassifier

    return DecisionTreeClassifier(min_samples_leaf=min_samples_leaf, random_state=seed).fit(
        tree_features(traces), traces.label
    )


def unsafe_leaves(tree) -> int:
    """How many leaves of the tree predict "unsafe": the number of rules the tree amounts to."""
    leaf = tree.tree_.children_left == -1
    unsafe_class = list(tree.classes_).index(True) if True in tree.classes_ else -1
    return int(np.sum(leaf & (tree.tree_.value[:, 0, :].argmax(1) == unsafe_class)))


def tree_scores(tree, traces: Traces, *, clean: bool = False) -> Scores:
    unsafe = traces.truth if clean else traces.label
    return score_predictions(tree.predict(tree_features(traces)).astype(bool), unsafe)


# ---------------------------------------------------------------------------------------------------
# 8. The experiment: every method on the same traces and split, for one domain and one seed
# ---------------------------------------------------------------------------------------------------

METHODS: tuple[str, ...] = (
    "expert rules",
    "heuristic CEGIS",
    "AutoSpec (ILP CEGIS)",
    "CEGIS from scratch",
    "decision tree",
)


def trajectory(result: LoopResult, traces: Traces, length: int, *, clean: bool = False) -> np.ndarray:
    """Precision, recall and F1 after each accepted edit, as a ``(length, 3)`` array; after the loop
    stops, the final rules' values repeat (the rules no longer change)."""
    rows = [evaluate(rules, traces, clean=clean) for rules in result.history]
    rows += [rows[-1]] * (length - len(rows))
    return np.array([[s.precision, s.recall, s.f1] for s in rows[:length]])


def make_splits(
    domain: Domain,
    seed: int,
    *,
    n_traces: int,
    n_unseen: int,
    train_fraction: float = 2 / 3,
    label_noise: float = 0.03,
    unseen_background_rate: float = 0.4,
) -> tuple[Traces, Traces, Traces]:
    """The train and held-out splits of ``n_traces`` annotated traces, and ``n_unseen`` traces of shifted
    scenarios (background predicates on ``unseen_background_rate`` of the time, labelled by the hidden
    policy without noise), each from its own seeded stream."""
    traces = generate_traces(domain, n_traces, make_rng(seed, "traces", domain.name), label_noise=label_noise)
    train, test = split(traces, train_fraction, make_rng(seed, "split", domain.name))
    unseen = generate_traces(
        domain, n_unseen, make_rng(seed, "unseen", domain.name), background_rate=unseen_background_rate, label_noise=0.0
    )
    return train, test, unseen


def run_seed(
    domain: Domain,
    seed: int,
    *,
    n_traces: int,
    n_unseen: int,
    train_fraction: float = 2 / 3,
    label_noise: float = 0.03,
    unseen_background_rate: float = 0.4,
    max_iterations: int = 10,
    per_kind: int = 3,
) -> dict:
    """One seed of the chapter's experiment on ``domain``: make the splits (:func:`make_splits`), run
    every method of :data:`METHODS` on the same split and return their scores (on the train split,
    the held-out ``test`` split against the annotations and against the hidden policy, and the unseen
    split) and their per-iteration trajectories."""
    train, test, unseen = make_splits(
        domain,
        seed,
        n_traces=n_traces,
        n_unseen=n_unseen,
        train_fraction=train_fraction,
        label_noise=label_noise,
        unseen_background_rate=unseen_background_rate,
    )
    loops = {
        "heuristic CEGIS": cegis(
            domain.expert,
            train,
            proposer="random",
            rng=make_rng(seed, "heuristic", domain.name),
            max_iterations=max_iterations,
            per_kind=per_kind,
        ),
        "AutoSpec (ILP CEGIS)": cegis(domain.expert, train, max_iterations=max_iterations, per_kind=per_kind),
        "CEGIS from scratch": cegis((), train, max_iterations=max_iterations, per_kind=per_kind),
    }
    tree = fit_tree(train, seed)
    scores = {
        "expert rules": {
            "train": evaluate(domain.expert, train),
            "test": evaluate(domain.expert, test),
            "test (clean)": evaluate(domain.expert, test, clean=True),
            "unseen": evaluate(domain.expert, unseen, clean=True),
        },
        "decision tree": {
            "train": tree_scores(tree, train),
            "test": tree_scores(tree, test),
            "test (clean)": tree_scores(tree, test, clean=True),
            "unseen": tree_scores(tree, unseen, clean=True),
        },
    }
    for name, loop in loops.items():
        scores[name] = {
            "train": evaluate(loop.rules, train),
            "test": evaluate(loop.rules, test),
            "test (clean)": evaluate(loop.rules, test, clean=True),
            "unseen": evaluate(loop.rules, unseen, clean=True),
        }
    curves = {
        (name, split_name): trajectory(loop, data, max_iterations + 1)
        for name, loop in loops.items()
        for split_name, data in (("train", train), ("test", test))
    }
    return {
        "domain": domain.name,
        "seed": seed,
        "scores": scores,
        "loops": loops,
        "curves": curves,
        "tree_leaves": unsafe_leaves(tree),
        "data": {"train": train, "test": test, "unseen": unseen},
        "n_train": len(train),
        "n_test": len(test),
    }


def results_frame(runs: list[dict]):
    """One row per (domain, seed, method, split) with precision, recall, F1, the confusion counts,
    the number of accepted edits (CEGIS methods) and the number of rules (tree: unsafe-leaf count)."""
    import pandas as pd

    rows = []
    for run in runs:
        for method, by_split in run["scores"].items():
            loop = run["loops"].get(method)
            if loop is not None:
                n_rules = len(loop.rules)
            elif method == "expert rules":
                n_rules = len(DOMAINS[run["domain"]].expert)
            else:
                n_rules = run["tree_leaves"]
            for split_name, s in by_split.items():
                rows.append(
                    {
                        "domain": run["domain"],
                        "seed": run["seed"],
                        "method": method,
                        "split": split_name,
                        "precision": s.precision,
                        "recall": s.recall,
                        "f1": s.f1,
                        "tp": s.tp,
                        "fp": s.fp,
                        "fn": s.fn,
                        "iterations": loop.iterations if loop else np.nan,
                        "rules": n_rules,
                    }
                )
    return pd.DataFrame(rows)
