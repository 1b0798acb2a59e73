"""AutoSpec (Ma et al., arXiv 2606.24245): evolving agent safety rules by CEGIS guided by ILP.

The paper's abstract describes the loop: start from expert rules and user-annotated traces, then
"iteratively evaluate rules, mine false-positive and false-negative counterexamples, use ILP to learn
which predicates discriminate them, generate candidate rule edits, and verify candidates to select the
best revision", until convergence. Only the abstract is public; everything below that is not in it is
our reconstruction, marked as such:

1. the rule language, after AgentSpec (Wang, Poskitt and Sun, arXiv 2503.18666):
   ``rule @name trigger <event> check <literal>+ enforce <action> end``, the checks a conjunction;
2. two trace domains (code-execution agents, embodied household agents) whose predicates carry
   AgentSpec's names, in two data regimes: ``planted`` (scenarios built from the hidden and the expert
   rules; every flaw one literal from the truth) and ``independent`` (a latent-factor generator that
   knows no rule; every flaw at least two literal edits away, though each flawed rule still has a
   single-literal edit that raises F1 on the whole trace distribution, :func:`best_single_edit`, so greedy
   repair has a path and the obstacle is hazards too rare to show up in a small pool); traces are Boolean
   facts labelled by a hidden ground-truth rule set, with annotation noise, and predicate pairs held out
   of training;
3. the ILP step as FOIL gain (Quinlan 1990) over the counterexamples;
4. the candidate edits (specialise, generalise, add, drop) and the verifier (F1 on a held-out
   validation pool, ties broken by F1 on the pool the counterexamples came from);
5. a counterexample oracle in the CEGIS sense (Solar-Lezama et al. 2006): an exhaustive search of the
   scenario space, by enumeration or with clingo, for scenarios on which the rules and the hidden policy
   disagree, labelled by an annotator as noisy as the users, fed back into the next iteration
   (:class:`ScenarioOracle`; our extension: the abstract mines counterexamples from annotated traces only).

The experiment and the baselines live in :mod:`llmtheory.autospec_experiment`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np

from .params import Int, ParameterError, Real
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

REGIMES: tuple[str, ...] = ("planted", "independent")
"""The two data regimes: ``planted`` (scenarios built from the hidden and the expert rules, flaws one literal
from the truth) and ``independent`` (a latent-factor generator that knows no rule, flaws ≥ 2 literal edits from
the truth, each with a single-literal edit that raises population F1: see :func:`best_single_edit`)."""


@dataclass(frozen=True)
class Domain:
    """A trace domain: the actions (triggers) an agent takes, the predicates observed on each action,
    the hidden policy that decides which actions are unsafe, the expert's deployed rules, the data regime
    that generates its traces, and the predicate pairs ``held_out`` of training: no training trace has
    both predicates of a pair on, every unseen trace has at least one pair on."""

    name: str
    triggers: tuple[str, ...]
    predicates: tuple[str, ...]
    ground_truth: tuple[Rule, ...]
    expert: tuple[Rule, ...]
    regime: str = "planted"
    held_out: tuple[tuple[str, str], ...] = ()

    def index(self, predicate: str) -> int:
        return _positions(self.predicates)[predicate]


@lru_cache(maxsize=16)
def _positions(names: tuple[str, ...]) -> dict[str, int]:
    return {name: j for j, name in enumerate(names)}


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

# The independent regime: every flaw is at least two literal edits from the hidden policy
# (two literals dropped, two too many, a literal swapped for another, a polarity flipped, a missing rule).
# Each flawed rule still has one literal edit that raises F1 on the whole distribution (best_single_edit):
# the repair path is greedy-reachable; what makes this regime hard is rare hazards in ~100-trace pools.
CODE_RULES_INDEPENDENT = """
rule @leak trigger PythonREPL check read_sensitive_data network_access !in_sandbox enforce stop end
rule @remote trigger PythonREPL check request_untrusted_source execute_script !user_confirmed enforce stop end
rule @persist trigger PythonREPL check write_to_io involve_system_file install_package enforce stop end
rule @wipe trigger Terminal check delete_file !path_in_workspace !user_confirmed enforce stop end
rule @escalate trigger Terminal check raise_privilege kill_process !user_confirmed enforce stop end
rule @scan trigger Terminal check list_directory network_access encode_data enforce user_inspection end
"""

CODE_EXPERT_INDEPENDENT = """
rule @leak trigger PythonREPL check read_sensitive_data enforce stop end
rule @remote trigger PythonREPL check request_untrusted_source encode_data !user_confirmed enforce stop end
rule @persist trigger PythonREPL
    check write_to_io involve_system_file install_package read_io kill_process enforce stop end
rule @wipe trigger Terminal check delete_file path_in_workspace !user_confirmed enforce stop end
rule @scan trigger Terminal check list_directory network_access encode_data enforce user_inspection end
rule @network trigger Terminal check network_access enforce user_inspection end
"""

EMBODIED_RULES_INDEPENDENT = """
rule @metal trigger put check is_into_microwave is_holding_none_microwave_obj !is_container_open enforce stop end
rule @hot_fridge trigger put check is_into_fridge is_putting_hot_things !is_food enforce stop end
rule @flame trigger turn_on check is_heat_source flammable_nearby !is_empty enforce stop end
rule @stove trigger turn_on check on_stove is_empty is_plugged_in enforce stop end
rule @shock trigger pour check is_liquid is_electronic enforce stop end
rule @shatter trigger break check is_fragile is_person_nearby enforce stop end
"""

EMBODIED_EXPERT_INDEPENDENT = """
rule @metal trigger put check is_into_microwave enforce stop end
rule @hot_fridge trigger put check is_into_fridge is_putting_hot_things is_food enforce stop end
rule @flame trigger turn_on check is_heat_source is_candle !is_empty enforce stop end
rule @shock trigger pour check is_liquid is_electronic near_water is_sharp enforce stop end
rule @shatter trigger break check is_fragile is_person_nearby enforce stop end
rule @sharp trigger put check is_sharp enforce llm_self_reflect end
"""

CODE_PREDICATES = (
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
)  # fmt: skip

EMBODIED_PREDICATES = (
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
)  # fmt: skip

CODE_TRIGGERS, EMBODIED_TRIGGERS = ("PythonREPL", "Terminal"), ("put", "turn_on", "pour", "break")

DOMAINS: dict[str, Domain] = {
    "code": Domain(
        "code",
        CODE_TRIGGERS,
        CODE_PREDICATES,
        parse_rules(CODE_RULES),
        parse_rules(CODE_EXPERT),
        held_out=(("write_to_io", "submit_post_request"), ("destructive_os_inst", "raise_privilege")),
    ),
    "embodied": Domain(
        "embodied",
        EMBODIED_TRIGGERS,
        EMBODIED_PREDICATES,
        parse_rules(EMBODIED_RULES),
        parse_rules(EMBODIED_EXPERT),
        held_out=(("is_holding_none_microwave_obj", "is_into_fridge"), ("is_heat_source", "is_empty")),
    ),
}
"""The planted regime (the chapter's original data): scenarios are the hidden and the expert rules."""

INDEPENDENT_DOMAINS: dict[str, Domain] = {
    "code": Domain(
        "code",
        CODE_TRIGGERS,
        CODE_PREDICATES,
        parse_rules(CODE_RULES_INDEPENDENT),
        parse_rules(CODE_EXPERT_INDEPENDENT),
        regime="independent",
        held_out=(("network_access", "execute_script"), ("delete_file", "raise_privilege")),
    ),
    "embodied": Domain(
        "embodied",
        EMBODIED_TRIGGERS,
        EMBODIED_PREDICATES,
        parse_rules(EMBODIED_RULES_INDEPENDENT),
        parse_rules(EMBODIED_EXPERT_INDEPENDENT),
        regime="independent",
        held_out=(("is_holding_none_microwave_obj", "is_putting_hot_things"), ("flammable_nearby", "on_stove")),
    ),
}
"""The independent regime: a latent-factor generator that knows neither rule set; flaws need ≥ 2 literal edits."""

REGIME_DOMAINS: dict[str, dict[str, Domain]] = {"planted": DOMAINS, "independent": INDEPENDENT_DOMAINS}


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

    def concat(self, other: Traces) -> Traces:
        """These traces followed by ``other`` (of the same domain)."""
        return replace(
            self,
            trigger=np.concatenate([self.trigger, other.trigger]),
            facts=np.vstack([self.facts, other.facts]),
            label=np.concatenate([self.label, other.label]),
            truth=np.concatenate([self.truth, other.truth]),
        )


def planted_facts(
    domain: Domain,
    n: int,
    rng: np.random.Generator,
    *,
    background_rate: float = 0.2,
    scenario_rate: float = 0.6,
    near_miss_rate: float = 0.4,
) -> tuple[np.ndarray, np.ndarray]:
    """The planted regime. With probability ``scenario_rate`` a trace comes from a scenario: the trigger
    and literals of one rule of the hidden policy or of the expert rules (so both the real hazards and
    the expert's blind spots occur), one literal flipped with probability ``near_miss_rate`` (a near
    miss); the other predicates are on with probability ``background_rate``."""
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
    return trigger, facts


def latent_facts(
    domain: Domain, n: int, rng: np.random.Generator, *, factors: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """The independent regime: a Gaussian copula that knows no rule. Each predicate ``j`` is on when
    ``z_j = Λ_j · f + ε_j`` exceeds the threshold that gives it the marginal rate ``m_j``, with ``f`` a few
    standard-normal latent factors (the context of an action) and ``ε_j`` standard-normal noise. The
    loadings ``Λ`` and rates ``m_j ~ U(0.3, 0.6)`` are drawn once per domain, from a stream that depends
    on the domain's name only; the action is uniform and independent of the facts."""
    from scipy.stats import norm

    world = make_rng(0, "latent-world", domain.name)
    loadings = world.normal(0.0, 0.6, size=(len(domain.predicates), factors))
    rates = world.uniform(0.3, 0.6, size=len(domain.predicates))
    threshold = np.sqrt((loadings**2).sum(1) + 1.0) * norm.ppf(1.0 - rates)
    z = rng.standard_normal((n, factors)) @ loadings.T + rng.standard_normal((n, len(domain.predicates)))
    return rng.integers(len(domain.triggers), size=n), z > threshold


def held_out_mask(domain: Domain, facts: np.ndarray) -> np.ndarray:
    """True for the traces that show a held-out predicate combination (both predicates of a pair on)."""
    mask = np.zeros(len(facts), bool)
    for u, v in domain.held_out:
        mask |= facts[:, domain.index(u)] & facts[:, domain.index(v)]
    return mask


REGIONS: tuple[str, ...] = ("train", "unseen", "hazard", "all")


def hazard_rule(domain: Domain, hazard: str) -> Rule:
    """The rule of the hidden policy named ``hazard``."""
    rules = {rule.name: rule for rule in domain.ground_truth}
    if hazard not in rules:
        raise ParameterError(f"hazard={hazard!r} is not valid; choose one of: {', '.join(rules)}")
    return rules[hazard]


def region_mask(
    domain: Domain, region: str, trigger: np.ndarray, facts: np.ndarray, withhold: str | None = None
) -> np.ndarray:
    """Which traces belong to ``region``: ``"train"`` shows no held-out predicate combination and, with
    ``withhold`` (a hazard, i.e. the name of a rule of the hidden policy), is not an instance of that hazard;
    ``"unseen"`` shows a held-out combination; ``"hazard"`` is an instance of the withheld hazard; ``"all"`` any."""
    if region not in REGIONS:
        raise ParameterError(f"region={region!r} is not valid; choose one of: {', '.join(REGIONS)}")
    if region == "hazard" and withhold is None:
        raise ParameterError("region='hazard' needs withhold=<the name of a hidden rule>")
    hazard = fires(hazard_rule(domain, withhold), domain, trigger, facts) if withhold else np.zeros(len(trigger), bool)
    if region == "hazard":
        return hazard
    if region == "train":
        return ~held_out_mask(domain, facts) & ~hazard
    return held_out_mask(domain, facts) if region == "unseen" else np.ones(len(trigger), bool)


def generate_traces(
    domain: Domain,
    n: int,
    rng: np.random.Generator,
    *,
    region: str = "all",
    label_noise: float = 0.03,
    withhold: str | None = None,
    **generator,
) -> Traces:
    """Sample ``n`` traces of ``domain`` from its regime's generator (:func:`planted_facts` or
    :func:`latent_facts`, keyword arguments passed on), keeping those of ``region`` (:func:`region_mask`:
    ``"train"`` without a held-out predicate combination nor an instance of the ``withhold`` hazard,
    ``"unseen"`` with a held-out combination, ``"hazard"`` instances of the withheld hazard only, ``"all"``
    any). The hidden policy labels each trace; each label is flipped with probability ``label_noise``
    (annotation errors)."""
    region_mask(domain, region, np.zeros(0, int), np.zeros((0, len(domain.predicates)), bool), withhold)
    make = planted_facts if domain.regime == "planted" else latent_facts
    triggers, facts = [], []
    while sum(len(t) for t in triggers) < n:
        t, f = make(domain, max(4 * n, 64), rng, **generator)
        keep = region_mask(domain, region, t, f, withhold)
        triggers.append(t[keep])
        facts.append(f[keep])
    trigger, facts = np.concatenate(triggers)[:n], np.vstack(facts)[:n]
    truth = flags(domain.ground_truth, domain, trigger, facts)
    label = truth ^ (rng.random(n) < label_noise)
    return Traces(domain, trigger, facts, label, truth)


@lru_cache(maxsize=8)
def covered_hazards(domain: Domain, *, min_recall: float = 0.8, n: int = 20_000) -> tuple[str, ...]:
    """The hazards the expert knows: the rules of the hidden policy on whose instances the expert rules flag
    at least ``min_recall`` of the traces, in a noise-free population of ``n`` traces from a fixed stream.
    These are the hazards worth withholding from training: only for them can the expert's start carry
    knowledge that no annotated trace shows."""
    population = generate_traces(domain, n, make_rng(0, "coverage", domain.regime, domain.name), label_noise=0.0)
    covered = []
    for rule in domain.ground_truth:
        instances = fires(rule, domain, population.trigger, population.facts)
        caught = flags(domain.expert, domain, population.trigger[instances], population.facts[instances])
        if instances.any() and caught.mean() >= min_recall:
            covered.append(rule.name)
    return tuple(covered)


def split_rows(n: int, train_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random train / held-out split of ``range(n)``: two disjoint sorted index arrays covering it."""
    order = rng.permutation(n)
    cut = round(train_fraction * n)
    return np.sort(order[:cut]), np.sort(order[cut:])


def split(traces: Traces, train_fraction: float, rng: np.random.Generator) -> tuple[Traces, Traces]:
    """A random train / held-out split of the same traces (:func:`split_rows`)."""
    train, held = split_rows(len(traces), train_fraction, rng)
    return traces.subset(train), traces.subset(held)


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
    """Eq. ``autospec-eq-semantics`` (left), AgentSpec's semantics: the rule fires on a trace when the action
    matches the trigger and every checked literal holds. Returns a Boolean vector over traces."""
    # [a(τ) = t_r]
    hit = np.ones(len(trigger), bool) if rule.trigger == ANY_TRIGGER else trigger == domain.triggers.index(rule.trigger)
    # ∧ over ℓ ∈ C_r of ℓ(τ)
    for literal in rule.checks:
        column = facts[:, domain.index(literal.predicate)]
        hit &= column if literal.positive else ~column
    return hit


def flags(rules: tuple[Rule, ...], domain: Domain, trigger: np.ndarray, facts: np.ndarray) -> np.ndarray:
    """Eq. ``autospec-eq-semantics`` (right): a trace is flagged unsafe when at least one rule fires on it (the
    rules form a disjunction)."""
    flagged = np.zeros(len(trigger), bool)
    # flag(R, τ) = ∨ over r ∈ R of fires(r, τ)
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
    tp, flagged_n, unsafe_n = np.count_nonzero(flagged & unsafe), np.count_nonzero(flagged), np.count_nonzero(unsafe)
    return Scores(tp=tp, fp=flagged_n - tp, fn=unsafe_n - tp, tn=len(flagged) - flagged_n - unsafe_n + tp)


def evaluate(rules: tuple[Rule, ...], traces: Traces, *, clean: bool = False) -> Scores:
    """Step 1 of the loop: the rules' confusion counts against the annotations (or the hidden truth)."""
    unsafe = traces.truth if clean else traces.label
    return score_predictions(flags(rules, traces.domain, traces.trigger, traces.facts), unsafe)


# ---------------------------------------------------------------------------------------------------
# 4. The ILP step: FOIL gain over counterexamples
# ---------------------------------------------------------------------------------------------------


def foil_gain(p0: int, n0: int, p1: int, n1: int) -> float:
    """Eq. ``autospec-eq-foil``: FOIL's information gain (Quinlan 1990) of refining a clause that covers ``p0``
    positives and ``n0`` negatives into one covering ``p1`` and ``n1``:
    ``p1 · (log2(p1/(p1+n1)) − log2(p0/(p0+n0)))``, zero when the refinement keeps no positive."""
    if p1 == 0 or p0 == 0:
        return 0.0
    # Gain(ℓ) = p₁ (log₂ p₁/(p₁+n₁) − log₂ p₀/(p₀+n₀))
    return p1 * (np.log2(p1 / (p1 + n1)) - np.log2(p0 / (p0 + n0)))


def rank_literals(
    positives: np.ndarray, negatives: np.ndarray, predicates: tuple[str, ...], *, exclude: frozenset[str] = frozenset()
) -> list[tuple[Literal, float]]:
    """The ILP scorer: every literal ``p`` / ``!p`` ranked by the FOIL gain (eq. ``autospec-eq-foil``) of adding it
    to a clause that covers the rows of ``positives`` and ``negatives`` (Boolean fact matrices). A literal true on
    most positive examples and few negative ones ranks first. Ties break by name, for determinism."""
    # p₀, n₀: the examples the clause covers now; p₁, n₁ below: those it keeps with ℓ = p or ℓ = !p
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
    # the counterexamples: unsafe traces no rule flags (false negatives), against the correctly unflagged ones
    false_neg, true_neg = ~flagged & unsafe, ~flagged & ~unsafe
    found: dict[str, list[Edit]] = {kind: [] for kind in EDIT_KINDS}
    for i, rule in enumerate(rules):
        # specialise: a literal that keeps rule r's true positives (p) and loses its false positives (n)
        tp, fp = firing[i] & unsafe, firing[i] & ~unsafe
        if fp.any():
            used = frozenset(x.predicate for x in rule.checks)
            for literal, gain in rank_literals(facts[tp], facts[fp], domain.predicates, exclude=used)[:per_kind]:
                if gain > 0:
                    found["specialise"].append(
                        Edit("specialise", f"@{rule.name} += {literal}", specialise(rules, i, literal), gain)
                    )
        # generalise: the gain of also covering the near misses that dropping one literal lets through
        on_trigger = fires(replace(rule, checks=()), domain, trigger, facts)
        prior_p, prior_n = int((on_trigger & false_neg).sum()), int((on_trigger & true_neg).sum())
        for literal in rule.checks:
            relaxed = fires(generalise((rule,), 0, literal)[0], domain, trigger, facts) & ~firing[i]
            gain = foil_gain(prior_p, prior_n, int((relaxed & false_neg).sum()), int((relaxed & true_neg).sum()))
            if gain > 0:
                edit = Edit("generalise", f"@{rule.name} -= {literal}", generalise(rules, i, literal), gain)
                found["generalise"].append(edit)
        # drop: rule r's alarms that no other rule raises are mostly false positives
        others = np.zeros(len(traces), bool)
        for k, other in enumerate(firing):
            if k != i:
                others |= other
        alone = firing[i] & ~others
        lost_tp, saved_fp = int((alone & unsafe).sum()), int((alone & ~unsafe).sum())
        if saved_fp > lost_tp:
            found["drop"].append(Edit("drop", f"drop @{rule.name}", drop_rule(rules, i), float(saved_fp - lost_tp)))
    # add: a clause learned by greedy FOIL on one trigger's false negatives against its true negatives
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
        # the rule, the literal and the clause drawn uniformly, where ilp_candidates scores them by FOIL gain
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


def single_literal_edits(rules: tuple[Rule, ...], index: int, domain: Domain) -> list[Edit]:
    """Every revision of rule ``index`` by one literal: add any unused predicate, positive or negated
    (specialise), or drop one of its literals (generalise)."""
    rule, edits = rules[index], []
    used = {x.predicate for x in rule.checks}
    for predicate in domain.predicates:
        if predicate not in used:
            for literal in (Literal(predicate), Literal(predicate, False)):
                edits.append(Edit("specialise", f"@{rule.name} += {literal}", specialise(rules, index, literal)))
    for literal in rule.checks:
        edits.append(Edit("generalise", f"@{rule.name} -= {literal}", generalise(rules, index, literal)))
    return edits


def best_single_edit(rules: tuple[Rule, ...], index: int, traces: Traces) -> tuple[Edit, float]:
    """The single-literal edit of rule ``index`` (:func:`single_literal_edits`) with the highest F1 against
    the hidden policy on ``traces`` (ties: the description), and that F1. On a large sample this asks
    whether greedy repair has a first step: an edit that beats ``evaluate(rules, traces, clean=True).f1``."""
    scored = [(evaluate(e.rules, traces, clean=True).f1, e) for e in single_literal_edits(rules, index, traces.domain)]
    f1, edit = min(scored, key=lambda pair: (-pair[0], pair[1].description))
    return edit, f1


# ---------------------------------------------------------------------------------------------------
# 6. The CEGIS loop and its verifier
# ---------------------------------------------------------------------------------------------------


@dataclass
class LoopResult:
    """The trajectory of one CEGIS run: ``history[k]`` are the rules after ``k`` accepted edits
    (``history[0]`` the start), ``edits[k-1]`` the edit that produced them, ``counterexamples[k]`` how many
    traces the oracle added before iteration ``k`` (empty without an oracle)."""

    history: list[tuple[Rule, ...]] = field(default_factory=list)
    edits: list[Edit] = field(default_factory=list)
    counterexamples: list[int] = field(default_factory=list)
    converged: bool = False

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self.history[-1]

    @property
    def iterations(self) -> int:
        """Accepted edits."""
        return len(self.edits)

    @property
    def rounds(self) -> int:
        """Rounds of the loop that ran: the accepted edits plus, when the loop converged, the final round
        that evaluated, mined and verified but accepted nothing."""
        return len(self.edits) + int(self.converged)


def objective(rules: tuple[Rule, ...], fit: Traces, validation: Traces | None = None) -> tuple[float, ...]:
    """The verifier's objective, compared lexicographically: F1 on the held-out ``validation`` pool first,
    then F1 on the ``fit`` pool the counterexamples were mined from (only the latter without a pool)."""
    fit_f1 = evaluate(rules, fit).f1
    return (fit_f1,) if validation is None else (evaluate(rules, validation).f1, fit_f1)


def verify(candidates: list[Edit], fit: Traces, validation: Traces | None = None) -> Edit | None:
    """Step 5: score every candidate revision by :func:`objective` and return the best (ties: fewer
    literals, then the description), or None when there is no candidate."""
    if not candidates:
        return None

    def key(edit: Edit):
        # best objective first (F1, negated for min), then the smaller rule set
        size = sum(len(r.checks) + 1 for r in edit.rules)
        return tuple(-x for x in objective(edit.rules, fit, validation)) + (size, edit.description)

    return min(candidates, key=key)


def cegis(
    start: tuple[Rule, ...],
    fit: Traces,
    *,
    validation: Traces | None = None,
    oracle: ScenarioOracle | None = None,
    proposer: str = "ilp",
    rng: np.random.Generator | None = None,
    max_iterations: int = 10,
    per_kind: int = 3,
) -> LoopResult:
    """AutoSpec's loop (abstract): evaluate, mine counterexamples on ``fit``, propose edits
    (``proposer="ilp"``: FOIL-guided; ``"random"``: heuristic CEGIS), verify (:func:`verify`: on the held-out
    ``validation`` pool when given), keep the best revision if it raises the verifier's objective; stop
    when none does (converged) or after ``max_iterations``. With an ``oracle`` (:class:`ScenarioOracle`),
    each iteration first asks it for traces of the scenario space on which the current rules and the
    hidden policy disagree and adds them to ``fit`` (CEGIS's counterexample feedback). The objective
    never decreases along the run."""
    if proposer not in ("ilp", "random"):
        raise ParameterError(f"proposer={proposer!r} is not valid; choose one of: ilp, random")
    if proposer == "random" and rng is None:
        raise ParameterError("proposer='random' needs an rng")
    check_rules(start, fit.domain)
    result = LoopResult(history=[start])
    for _ in range(max_iterations):
        rules = result.rules
        # counterexample feedback: traces where the rules and the hidden policy disagree
        if oracle is not None:
            found = oracle(rules)
            result.counterexamples.append(len(found))
            fit = fit.concat(found)
        # propose (ILP or random), then verify
        if proposer == "ilp":
            candidates = ilp_candidates(rules, fit, per_kind=per_kind)
        else:
            candidates = random_candidates(rules, fit, rng, per_kind=per_kind)
        best = verify(candidates, fit, validation)
        # accept only a revision that raises the verifier's objective; none does: converged
        if best is None or objective(best.rules, fit, validation) <= objective(rules, fit, validation):
            result.converged = True
            break
        check_rules(best.rules, fit.domain)
        result.history.append(best.rules)
        result.edits.append(best)
    return result


# ---------------------------------------------------------------------------------------------------
# 7. The counterexample oracle: a search of the scenario space, by enumeration or with clingo
# ---------------------------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def scenario_space(domain: Domain) -> tuple[np.ndarray, np.ndarray]:
    """Every assignment of the domain's predicates that a training trace can show (no held-out
    combination), as bit codes (bit ``j`` = predicate ``j``), and the number of predicates each has on."""
    codes = np.arange(2 ** len(domain.predicates), dtype=np.uint32)
    for u, v in domain.held_out:
        both = np.uint32((1 << domain.index(u)) | (1 << domain.index(v)))
        codes = codes[(codes & both) != both]
    ones = np.zeros(len(codes), np.int64)
    for j in range(len(domain.predicates)):
        ones += (codes >> np.uint32(j)) & np.uint32(1)
    return codes, ones


def flags_on_codes(rules: tuple[Rule, ...], domain: Domain, trigger: int, codes: np.ndarray) -> np.ndarray:
    """:func:`flags` on every code of ``codes`` for the action ``domain.triggers[trigger]`` (bit arithmetic)."""
    flagged = np.zeros(len(codes), bool)
    for rule in rules:
        if rule.trigger not in (ANY_TRIGGER, domain.triggers[trigger]):
            continue
        pos = sum(1 << domain.index(x.predicate) for x in rule.checks if x.positive)
        neg = sum(1 << domain.index(x.predicate) for x in rule.checks if not x.positive)
        flagged |= ((codes & np.uint32(pos)) == pos) & ((codes & np.uint32(neg)) == 0)
    return flagged


@lru_cache(maxsize=8)
def _policy_on_space(domain: Domain) -> list[np.ndarray]:
    codes, _ = scenario_space(domain)
    return [flags_on_codes(domain.ground_truth, domain, t, codes) for t in range(len(domain.triggers))]


def codes_to_facts(codes: np.ndarray, n_predicates: int) -> np.ndarray:
    return ((codes[:, None] >> np.arange(n_predicates, dtype=np.uint32)) & 1).astype(bool)


class ScenarioOracle:
    """The verifier's counterexample search in the CEGIS sense (our addition; the abstract mines
    counterexamples from the annotated traces only). Called with the current rules, it enumerates the
    whole scenario space of training (every action × every predicate assignment without a held-out
    combination, :func:`scenario_space`), finds the scenarios on which the rules and the hidden policy
    disagree, and returns ``per_round`` of them labelled by the hidden policy: half false positives and
    half false negatives when both exist, each drawn with probability proportional to its prior weight
    ``q^k (1 − q)^(P − k)`` (``k`` predicates on, ``q = density``: as typical as an ordinary trace).
    With ``targeted=False`` it returns scenarios drawn from the same prior without looking at the rules:
    the control that adds as many labelled traces, none of them chosen as counterexamples. Each returned
    label is flipped with probability ``label_noise`` (an annotator of synthesised scenarios as noisy as the
    users); ``truth`` keeps the hidden policy's verdict."""

    def __init__(
        self,
        domain: Domain,
        rng: np.random.Generator,
        *,
        per_round: int = 4,
        density: float = 0.3,
        targeted=True,
        label_noise: float = 0.0,
    ):
        if not 0 < density < 1:
            raise ParameterError(f"density={density} must be in (0, 1)")
        if not 0 <= label_noise <= 0.5:
            raise ParameterError(f"label_noise={label_noise} must be in [0, 0.5]")
        self.domain, self.rng, self.per_round, self.targeted = domain, rng, per_round, targeted
        self.label_noise = label_noise
        self.codes, ones = scenario_space(domain)
        log_weight = ones * np.log(density) + (len(domain.predicates) - ones) * np.log1p(-density)
        self.weight = np.exp(log_weight - log_weight.max())
        self.cumulative = np.cumsum(self.weight)
        self.truth = _policy_on_space(domain)

    def disagreements(self, rules: tuple[Rule, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Boolean masks, one row per action, of the false-positive and false-negative scenarios of ``rules``."""
        flagged = np.array([flags_on_codes(rules, self.domain, t, self.codes) for t in range(len(self.truth))])
        truth = np.array(self.truth)
        return flagged & ~truth, ~flagged & truth

    def disagreement_mass(self, rules: tuple[Rule, ...]) -> float:
        """The prior-weighted share of the scenario space on which ``rules`` and the hidden policy disagree."""
        false_pos, false_neg = self.disagreements(rules)
        return float(((false_pos | false_neg) * self.weight).sum() / (len(self.truth) * self.weight.sum()))

    def _draw(self, mask: np.ndarray, k: int) -> np.ndarray:
        """``k`` (trigger, code-row) cells of ``mask`` drawn without replacement by prior weight."""
        cells = np.flatnonzero(mask)
        if k <= 0 or not len(cells):
            return cells[:0]
        p = self.weight[cells % len(self.weight)]
        return self.rng.choice(cells, size=min(k, len(cells)), replace=False, p=p / p.sum())

    def __call__(self, rules: tuple[Rule, ...]) -> Traces:
        if self.targeted:
            false_pos, false_neg = self.disagreements(rules)
            half = self.per_round // 2 if false_pos.any() and false_neg.any() else self.per_round
            drawn = self._draw(false_pos, half)
            cells = np.concatenate([drawn, self._draw(false_neg, self.per_round - len(drawn))])
        else:  # any action, a code by prior weight (with replacement: a repeat among ~10^5 codes is rare)
            rows = np.searchsorted(self.cumulative, self.rng.random(self.per_round) * self.cumulative[-1])
            cells = self.rng.integers(len(self.truth), size=self.per_round) * len(self.codes) + rows
        trigger, row = np.divmod(cells.astype(np.int64), len(self.codes))
        facts = codes_to_facts(self.codes[row], len(self.domain.predicates))
        truth = np.array([self.truth[t][r] for t, r in zip(trigger, row, strict=True)], bool)
        label = truth ^ (self.rng.random(len(truth)) < self.label_noise) if self.label_noise else truth.copy()
        return Traces(self.domain, trigger, facts, label, truth)


def clingo_counterexample(rules: tuple[Rule, ...], domain: Domain) -> tuple[int, np.ndarray] | None:
    """The same search as an answer-set program (clingo): choose an action and a predicate assignment of
    the training scenario space on which ``rules`` and the hidden policy disagree. Returns one
    ``(trigger index, facts)`` or None when the rules agree with the policy everywhere. An independent
    check of :class:`ScenarioOracle`'s enumeration (the tests compare them)."""
    import clingo

    def bodies(rule_set: tuple[Rule, ...], head: str) -> list[str]:
        lines = []
        for rule in rule_set:
            body = [] if rule.trigger == ANY_TRIGGER else [f"at({domain.triggers.index(rule.trigger)})"]
            body += [("" if x.positive else "not ") + f"on({domain.index(x.predicate)})" for x in rule.checks]
            lines.append(f"{head} :- {', '.join(body) or 'act'}.")
        return lines

    program = [
        f"1 {{ at(0..{len(domain.triggers) - 1}) }} 1.",
        "act.",
        f"{{ on(0..{len(domain.predicates) - 1}) }}.",
        *(f":- on({domain.index(u)}), on({domain.index(v)})." for u, v in domain.held_out),
        *bodies(rules, "flag"),
        *bodies(domain.ground_truth, "unsafe"),
        "disagree :- flag, not unsafe.",
        "disagree :- unsafe, not flag.",
        ":- not disagree.",
        "#show at/1. #show on/1.",
    ]
    control = clingo.Control(["1", "--seed=0"])
    control.add("base", [], "\n".join(program))
    control.ground([("base", [])])
    found: list[list] = []
    control.solve(on_model=lambda model: found.append(list(model.symbols(shown=True))))
    if not found:
        return None
    facts = np.zeros(len(domain.predicates), bool)
    trigger = -1
    for symbol in found[-1]:
        if symbol.name == "at":
            trigger = symbol.arguments[0].number
        else:
            facts[symbol.arguments[0].number] = True
    return trigger, facts


PARAMETERS = {
    "LABEL_NOISE": Real(0.0, 0.5),
    "EDITS_PER_KIND": Int(1, 20),
    "MAX_ITERATIONS": Int(1, 50),
    "ORACLE_PER_ROUND": Int(1, 100),
}
"""The chapter's parameters besides ``SCALE`` and ``SEED`` (its notebook's ``parameters`` cell), declared once:
the notebook checks them with :func:`llmtheory.params.check_parameters`, the command line before it runs."""
