"""Same lesson, different story: proverbs across languages, the narratives they prompt, and what similarity misses.

Alshaalan, Alahmadi, Aldayel et al., "Same Lesson, Different Story: Cross-Lingual Reconstruction of Cultural
Narratives in Large Language Models" (arXiv 2606.24610). Only the abstract and introduction are known to us.
The paper prompts four LLMs with semantically equivalent proverbs (414 proverbs, 15 languages, about 13k
narratives) and asks three questions, which this module's measures serve:

- **Q1, preservation**: is the proverb's meaning preserved across languages? (:func:`concept_vector`,
  :func:`CharNgramEmbedding`, :func:`similarity_only`, ``same_lesson-eq-cosine``);
- **Q2, realisation**: how does cross-lingual conditioning change the narrative, its agency, social positioning
  and structure? (:func:`code_story`, :func:`structure_features`, :func:`jensen_shannon`, :func:`chi2_test`,
  :func:`redistribution_test`, ``same_lesson-eq-jsd``, ``same_lesson-eq-null``);
- **Q3, convergence**: do model families converge on similar interpretations? (:func:`cross_model_cosine`,
  :func:`rsa_spearman`, ``same_lesson-eq-convergence``, ``same_lesson-eq-rsa``).

The paper's warning, that similarity alone *overestimates* cultural preservation, becomes a test with a planted
ground truth (:func:`generate_corpus`, :func:`planted_corpora`, :func:`evaluate_pair`): stories that keep each
lesson's content words while who acts, who is acted upon and who the protagonist is are redistributed.

Everything that decides a code is data at the top of the module (:data:`LEXICONS`, :data:`CONTENT_WORDS`,
:data:`PERSON_TYPES`, :data:`STORY_TEMPLATES`); the functions below only apply it. The coding scheme is ours
(the part of the paper we know does not say how it coded agency); it is made for short, simple narratives:
subject-before-verb sentences, a passive with an agent phrase, pronoun drop and German verb-second inversion; it
does not parse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

from .claims import Estimate
from .params import Int, ListOf, Model, ParameterError, Real, check_choice, check_float, check_int
from .paths import data_dir
from .seeding import make_rng
from .stats import NullComparison, bootstrap_mean, permutation_null

LANGUAGES: tuple[str, ...] = ("en", "fr", "de", "es", "it", "pt")
"""Languages of the proverb table (ISO 639-1)."""

CODED_LANGUAGES: tuple[str, ...] = ("en", "fr", "de", "es")
"""Languages with a coding lexicon (:data:`LEXICONS`) and story templates: the four every proverb set has."""

PROVERB_COLUMNS: tuple[str, ...] = ("set_id", "lang", "proverb", "gloss", "lesson_id", "lesson", "source")
MIN_LANGUAGES_PER_SET = 4

ROLES = ("actor", "acted_upon", "mixed", "none")
GENDERS = ("F", "M", "?")
AGES = ("child", "adult", "elder")
SOCIAL_ROLES = ("family", "worker", "authority", "none")
RESOLUTIONS = ("learning", "reconciliation", "failure", "success", "open")
"""Resolution types, in the order that breaks ties when a final sentence has cues of several."""

SIMILARITY_MARGIN = 0.05
"""Similarity-only evaluation calls a candidate corpus *preserved* when the drop of its mean story-to-lesson cosine
below the reference corpus's is at most this, at the upper end of its 95% bootstrap interval."""

ALPHA = 0.05
"""Significance level of the redistribution tests."""

OFFLINE_EMBEDDINGS = {"concepts": "cosine", "char": "char_cosine"}
"""``EMBEDDING`` values that work offline, and the column of :func:`code_corpus` frames (with
:func:`add_char_cosine`) that holds each one's story-to-anchor cosine; any other value names a sentence-transformers
model (a hub id or a local folder)."""


def check_embedding(name: str, value) -> str:
    """The ``EMBEDDING`` parameter: ``"concepts"`` (aligned concept bag), ``"char"`` (character n-grams), or a
    sentence-transformers model, a hub id ``owner/name`` or a local folder (whether it loads is checked when it is
    used)."""
    if not isinstance(value, str) or (value not in OFFLINE_EMBEDDINGS and "/" not in value):
        raise ParameterError(
            f"{name}={value!r} is not valid; choose one of: 'concepts', 'char', or a sentence-transformers model "
            "(a hub id such as 'sentence-transformers/LaBSE', in Colab, or a local folder)"
        )
    return value


PARAMETERS = {
    "N_PER_CELL": Int(2, 1000),
    "STRENGTH": Real(0.0, 1.0),
    "EMBEDDING": check_embedding,
    "MODELS": ListOf(Model(), what="a non-empty list of zoo names, local folders or Hugging Face model ids"),
}
"""The chapter's parameters besides ``SCALE`` and ``SEED`` (its notebook's ``parameters`` cell): stories per
(lesson, language) cell, the planted shift's strength (``same_lesson-eq-shift``), the similarity the figures use,
and the models that write stories; the notebook checks them with :func:`llmtheory.params.check_parameters`, the
command line before it runs."""


# ---------------------------------------------------------------------------------------------------------
# 1. The proverb table


def check_language(lang: str, allowed: tuple[str, ...] = LANGUAGES, name: str = "lang") -> str:
    """Return ``lang`` if it is one of ``allowed``; otherwise a :class:`ParameterError` that lists them."""
    return check_choice(name, lang, allowed)


def validate_proverbs(table: pd.DataFrame) -> pd.DataFrame:
    """Check a proverb table (Q1's prompts): the columns of :data:`PROVERB_COLUMNS`, known language codes, no empty
    proverb, one row per (set, language), one lesson per set and at least :data:`MIN_LANGUAGES_PER_SET`
    languages per set. Returns the table; raises :class:`ParameterError` naming the first problem."""
    missing = [c for c in PROVERB_COLUMNS if c not in table.columns]
    if missing:
        raise ParameterError(f"the proverb table lacks columns {missing}; it needs {list(PROVERB_COLUMNS)}")
    for lang in table["lang"]:
        check_language(lang)
    empty = table.loc[table["proverb"].fillna("").str.strip() == "", "set_id"].tolist()
    if empty:
        raise ParameterError(f"empty proverb text in sets {empty}")
    doubled = table[table.duplicated(["set_id", "lang"], keep=False)][["set_id", "lang"]].values.tolist()
    if doubled:
        raise ParameterError(f"more than one row for (set_id, lang) {doubled[0]}")
    lessons = table.groupby("set_id")["lesson_id"].nunique()
    if (lessons > 1).any():
        raise ParameterError(f"sets with more than one lesson_id: {lessons[lessons > 1].index.tolist()}")
    sizes = table.groupby("set_id")["lang"].nunique()
    small = sizes[sizes < MIN_LANGUAGES_PER_SET].index.tolist()
    if small:
        raise ParameterError(f"sets with fewer than {MIN_LANGUAGES_PER_SET} languages: {small}")
    return table


def load_proverbs(path: str | Path | None = None) -> pd.DataFrame:
    """The shipped table ``data/proverbs/proverbs.csv`` (or ``path``), validated by :func:`validate_proverbs`."""
    path = Path(path) if path is not None else data_dir() / "proverbs" / "proverbs.csv"
    return validate_proverbs(pd.read_csv(path, dtype=str, keep_default_na=False))


# ---------------------------------------------------------------------------------------------------------
# 2. The coding scheme's data: per-language lexicons
#
# persons: noun form -> (concept, gender, age, social role); gender "?" where the noun does not say (English
# "farmer"), to be settled by a pronoun. names: name -> gender. age_words: adjectives that set the age of the
# noun they precede. determiners: what may stand between a marker and its noun. object_markers: a person noun
# after one of these (through determiners) is not a subject. action_verbs: form -> concept (past tense,
# participles of the passive). passive_aux / agent_markers: "was ... by", "fut ... par", "wurde ... von",
# "fue ... por". outcomes: resolution type -> cue words of the final sentence.

LEXICONS: dict[str, dict] = {
    "en": {
        "persons": {
            "woman": ("woman", "F", "adult", "none"), "man": ("man", "M", "adult", "none"),
            "girl": ("girl", "F", "child", "none"), "boy": ("boy", "M", "child", "none"),
            "child": ("child", "?", "child", "none"),
            "queen": ("queen", "F", "adult", "authority"), "king": ("king", "M", "adult", "authority"),
            "princess": ("princess", "F", "child", "authority"), "prince": ("prince", "M", "child", "authority"),
            "mayor": ("mayor", "?", "adult", "authority"), "teacher": ("teacher", "?", "adult", "authority"),
            "fisherwoman": ("fisherwoman", "F", "adult", "worker"), "fisherman": ("fisherman", "M", "adult", "worker"),
            "farmer": ("farmer", "?", "adult", "worker"), "baker": ("baker", "?", "adult", "worker"),
            "merchant": ("merchant", "?", "adult", "worker"), "shepherd": ("shepherd", "?", "adult", "worker"),
            "mother": ("mother", "F", "adult", "family"), "father": ("father", "M", "adult", "family"),
            "grandmother": ("grandmother", "F", "elder", "family"),
            "grandfather": ("grandfather", "M", "elder", "family"),
            "daughter": ("daughter", "F", "child", "family"), "son": ("son", "M", "child", "family"),
            "wife": ("wife", "F", "adult", "family"), "husband": ("husband", "M", "adult", "family"),
        },
        "names": {"anna": "F", "mary": "F", "lucy": "F", "tom": "M", "john": "M", "peter": "M"},
        "age_words": {"old": "elder", "little": "child"},
        "copulas": {"was", "is", "became"},
        "determiners": {"the", "a", "an", "his", "her", "their", "old", "young", "little", "poor", "rich"},
        "object_markers": {"to", "for", "with"},
        "subject_pronouns": {"she": "F", "he": "M"},
        "action_verbs": {
            "helped": "help", "saved": "save", "warned": "warn", "carried": "carry", "guided": "guide",
            "woke": "wake", "woken": "wake", "taught": "teach", "fed": "feed", "rescued": "save",
            "protected": "protect", "found": "find", "led": "guide", "chose": "choose", "chosen": "choose",
            "called": "call", "followed": "follow", "caught": "catch", "pushed": "push",
        },
        "passive_aux": {"was", "were"},
        "agent_markers": {"by"},
        "outcomes": {
            "learning": {"learned", "learnt", "understood", "realised", "realized", "lesson"},
            "reconciliation": {"forgave", "friends", "together", "thanked"},
            "failure": {"lost", "failed", "hungry", "ruined", "late"},
            "success": {"rich", "won", "succeeded", "happy", "plenty"},
        },
    },
    "fr": {
        "persons": {
            "femme": ("woman", "F", "adult", "none"), "homme": ("man", "M", "adult", "none"),
            "fillette": ("girl", "F", "child", "none"), "garçon": ("boy", "M", "child", "none"),
            "enfant": ("child", "?", "child", "none"),
            "reine": ("queen", "F", "adult", "authority"), "roi": ("king", "M", "adult", "authority"),
            "princesse": ("princess", "F", "child", "authority"), "prince": ("prince", "M", "child", "authority"),
            "maire": ("mayor", "?", "adult", "authority"),
            "pêcheuse": ("fisherwoman", "F", "adult", "worker"), "pêcheur": ("fisherman", "M", "adult", "worker"),
            "fermière": ("farmer", "F", "adult", "worker"), "fermier": ("farmer", "M", "adult", "worker"),
            "boulangère": ("baker", "F", "adult", "worker"), "boulanger": ("baker", "M", "adult", "worker"),
            "marchande": ("merchant", "F", "adult", "worker"), "marchand": ("merchant", "M", "adult", "worker"),
            "mère": ("mother", "F", "adult", "family"), "père": ("father", "M", "adult", "family"),
            "grand-mère": ("grandmother", "F", "elder", "family"),
            "grand-père": ("grandfather", "M", "elder", "family"),
            "fille": ("daughter", "F", "child", "family"), "fils": ("son", "M", "child", "family"),
        },
        "names": {"marie": "F", "jeanne": "F", "sophie": "F", "paul": "M", "jacques": "M", "louis": "M"},
        "age_words": {"vieille": "elder", "vieil": "elder", "vieux": "elder", "petite": "child", "petit": "child"},
        "copulas": {"était", "est", "fut", "devint"},
        "determiners": {"le", "la", "l", "les", "un", "une", "sa", "son", "vieille", "vieil", "vieux", "jeune",
                        "petite", "petit", "pauvre", "riche"},
        "object_markers": {"à", "au", "pour", "avec"},
        "subject_pronouns": {"elle": "F", "il": "M"},
        "action_verbs": {
            "aida": "help", "aidé": "help", "aidée": "help", "sauva": "save", "sauvé": "save", "sauvée": "save",
            "avertit": "warn", "averti": "warn", "avertie": "warn", "porta": "carry", "porté": "carry",
            "portée": "carry", "guida": "guide", "guidé": "guide", "guidée": "guide", "réveilla": "wake",
            "réveillé": "wake", "réveillée": "wake", "nourrit": "feed", "protégea": "protect", "trouva": "find",
            "choisit": "choose", "appela": "call", "suivit": "follow", "attrapa": "catch", "poussa": "push",
        },
        "passive_aux": {"fut", "furent"},
        "agent_markers": {"par"},
        "outcomes": {
            "learning": {"comprit", "apprit", "leçon"},
            "reconciliation": {"pardonna", "amis", "amies", "ensemble", "remercia"},
            "failure": {"perdit", "échoua", "faim", "tard"},
            "success": {"riche", "gagna", "réussit", "heureux", "heureuse"},
        },
    },
    "de": {
        "persons": {
            "frau": ("woman", "F", "adult", "none"), "mann": ("man", "M", "adult", "none"),
            "mädchen": ("girl", "F", "child", "none"), "junge": ("boy", "M", "child", "none"),
            "jungen": ("boy", "M", "child", "none"), "kind": ("child", "?", "child", "none"),
            "königin": ("queen", "F", "adult", "authority"), "könig": ("king", "M", "adult", "authority"),
            "prinzessin": ("princess", "F", "child", "authority"), "prinz": ("prince", "M", "child", "authority"),
            "prinzen": ("prince", "M", "child", "authority"),
            "bürgermeisterin": ("mayor", "F", "adult", "authority"),
            "bürgermeister": ("mayor", "M", "adult", "authority"),
            "fischerin": ("fisherwoman", "F", "adult", "worker"), "fischer": ("fisherman", "M", "adult", "worker"),
            "bäuerin": ("farmer", "F", "adult", "worker"), "bauer": ("farmer", "M", "adult", "worker"),
            "bauern": ("farmer", "M", "adult", "worker"), "bäckerin": ("baker", "F", "adult", "worker"),
            "bäcker": ("baker", "M", "adult", "worker"),
            "mutter": ("mother", "F", "adult", "family"), "vater": ("father", "M", "adult", "family"),
            "großmutter": ("grandmother", "F", "elder", "family"),
            "großvater": ("grandfather", "M", "elder", "family"),
            "tochter": ("daughter", "F", "child", "family"), "sohn": ("son", "M", "child", "family"),
        },
        "names": {"anna": "F", "greta": "F", "lena": "F", "hans": "M", "karl": "M", "peter": "M"},
        "age_words": {"alte": "elder", "alten": "elder", "alter": "elder", "kleine": "child", "kleinen": "child"},
        "copulas": {"war", "ist", "wurde"},
        "determiners": {"der", "die", "das", "den", "dem", "des", "ein", "eine", "einen", "einem", "einer",
                        "seine", "seinen", "seinem", "ihre", "ihren", "ihrem", "alte", "alten", "alter", "kleine",
                        "kleinen", "junge", "jungen", "junger", "arme", "armen", "reiche", "reichen"},
        "object_markers": {"den", "dem", "einen", "einem", "für", "mit", "zu", "zum", "zur"},
        "subject_pronouns": {"sie": "F", "er": "M"},
        "action_verbs": {
            "half": "help", "geholfen": "help", "rettete": "save", "gerettet": "save", "warnte": "warn",
            "gewarnt": "warn", "trug": "carry", "getragen": "carry", "führte": "guide", "geführt": "guide",
            "weckte": "wake", "geweckt": "wake", "fütterte": "feed", "schützte": "protect", "fand": "find",
            "wählte": "choose", "rief": "call", "folgte": "follow", "fing": "catch", "schob": "push",
        },
        "passive_aux": {"wurde", "wurden"},
        "agent_markers": {"von", "vom"},
        "outcomes": {
            "learning": {"verstand", "lernte", "begriff", "lehre"},
            "reconciliation": {"verzieh", "freunde", "freundinnen", "zusammen", "dankte"},
            "failure": {"verlor", "scheiterte", "hunger", "hungrig", "spät"},
            "success": {"reich", "gewann", "glücklich", "gelang"},
        },
    },
    "es": {
        "persons": {
            "mujer": ("woman", "F", "adult", "none"), "hombre": ("man", "M", "adult", "none"),
            "niña": ("girl", "F", "child", "none"), "niño": ("boy", "M", "child", "none"),
            "anciana": ("woman", "F", "elder", "none"), "anciano": ("man", "M", "elder", "none"),
            "reina": ("queen", "F", "adult", "authority"), "rey": ("king", "M", "adult", "authority"),
            "princesa": ("princess", "F", "child", "authority"), "príncipe": ("prince", "M", "child", "authority"),
            "alcaldesa": ("mayor", "F", "adult", "authority"), "alcalde": ("mayor", "M", "adult", "authority"),
            "pescadora": ("fisherwoman", "F", "adult", "worker"), "pescador": ("fisherman", "M", "adult", "worker"),
            "campesina": ("farmer", "F", "adult", "worker"), "campesino": ("farmer", "M", "adult", "worker"),
            "panadera": ("baker", "F", "adult", "worker"), "panadero": ("baker", "M", "adult", "worker"),
            "madre": ("mother", "F", "adult", "family"), "padre": ("father", "M", "adult", "family"),
            "abuela": ("grandmother", "F", "elder", "family"), "abuelo": ("grandfather", "M", "elder", "family"),
            "hija": ("daughter", "F", "child", "family"), "hijo": ("son", "M", "child", "family"),
        },
        "names": {"lucía": "F", "carmen": "F", "maría": "F", "pedro": "M", "juan": "M", "pablo": "M"},
        "age_words": {"vieja": "elder", "viejo": "elder", "pequeña": "child", "pequeño": "child"},
        "copulas": {"era", "es", "fue"},
        "determiners": {"el", "la", "los", "las", "un", "una", "su", "vieja", "viejo", "joven", "pequeña",
                        "pequeño", "pobre", "rica", "rico"},
        "object_markers": {"a", "al", "para", "con"},
        "subject_pronouns": {"ella": "F", "él": "M"},
        "action_verbs": {
            "ayudó": "help", "ayudado": "help", "ayudada": "help", "salvó": "save", "salvado": "save",
            "salvada": "save", "advirtió": "warn", "advertido": "warn", "advertida": "warn", "llevó": "carry",
            "llevado": "carry", "llevada": "carry", "guió": "guide", "guio": "guide", "guiado": "guide",
            "guiada": "guide", "despertó": "wake", "despertado": "wake", "despertada": "wake",
            "alimentó": "feed", "protegió": "protect", "encontró": "find", "eligió": "choose", "llamó": "call",
            "siguió": "follow", "atrapó": "catch", "empujó": "push",
        },
        "passive_aux": {"fue", "fueron"},
        "agent_markers": {"por"},
        "outcomes": {
            "learning": {"aprendió", "entendió", "comprendió", "lección"},
            "reconciliation": {"perdonó", "amigos", "amigas", "juntos", "juntas", "agradeció"},
            "failure": {"perdió", "fracasó", "hambre", "tarde"},
            "success": {"rico", "rica", "ganó", "logró", "feliz"},
        },
    },
}  # fmt: skip

LESSONS: tuple[str, ...] = ("early_bird", "rome_day", "safe_sorry", "unity", "grasp_all", "practice", "company",
                            "sow_wind")  # fmt: skip
"""The proverb sets (``set_id`` of the table) that the planted-shift corpus tells stories about."""

CONTENT_SENTENCES: dict[str, dict[str, str]] = {
    "early_bird": {
        "en": "Every morning the work started early, and early work brings a reward.",
        "fr": "Chaque matin, le travail commençait tôt, et le travail matinal apporte une récompense.",
        "de": "Jeden Morgen begann die Arbeit früh, und frühe Arbeit bringt Lohn.",
        "es": "Cada mañana el trabajo empezaba temprano, y el trabajo temprano trae recompensa.",
    },
    "rome_day": {
        "en": "Great things take time, and patience builds them slowly.",
        "fr": "Les grandes choses demandent du temps, et la patience les construit lentement.",
        "de": "Große Dinge brauchen Zeit, und Geduld baut sie langsam.",
        "es": "Las grandes cosas llevan tiempo, y la paciencia las construye despacio.",
    },
    "safe_sorry": {
        "en": "Danger was near, and careful preparation kept the house safe.",
        "fr": "Le danger était proche, et une préparation prudente garda la maison sûre.",
        "de": "Die Gefahr war nah, und vorsichtige Vorbereitung hielt das Haus sicher.",
        "es": "El peligro estaba cerca, y una preparación prudente mantuvo la casa segura.",
    },
    "unity": {
        "en": "Alone the villagers were weak, but together strong.",
        "fr": "Seuls, les villageois étaient faibles, mais unis forts.",
        "de": "Allein waren die Dorfbewohner schwach, vereint aber stark.",
        "es": "Solos, los aldeanos eran débiles, pero unidos fuertes.",
    },
    "grasp_all": {
        "en": "Greed wants more and more, and greed loses everything.",
        "fr": "L'avidité veut toujours plus, et l'avidité perd tout.",
        "de": "Die Gier will immer mehr, und die Gier verliert alles.",
        "es": "La codicia quiere siempre más, y la codicia lo pierde todo.",
    },
    "practice": {
        "en": "Each day the craft was practised, and practice brought skill.",
        "fr": "Chaque jour, on pratiquait le métier, et la pratique donnait l'habileté.",
        "de": "Jeden Tag übte man das Handwerk, und die Übung brachte Können.",
        "es": "Cada día se practicaba el oficio, y la práctica traía destreza.",
    },
    "company": {
        "en": "Good company makes good people, and bad company spoils them.",
        "fr": "La bonne compagnie rend meilleur, et la mauvaise compagnie gâte.",
        "de": "Gute Gesellschaft macht gut, und schlechte Gesellschaft verdirbt.",
        "es": "La buena compañía hace bien, y la mala compañía estropea.",
    },
    "sow_wind": {
        "en": "Whoever sows anger harvests a storm.",
        "fr": "Qui sème la colère récolte la tempête.",
        "de": "Wer Zorn sät, erntet Sturm.",
        "es": "Quien siembra ira cosecha tormenta.",
    },
}
"""One sentence per lesson and language that carries the lesson's content words and names no character."""

CONTENT_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "morning": {"en": ("morning",), "fr": ("matin", "matinal"), "de": ("morgen",), "es": ("mañana",)},
    "early": {"en": ("early",), "fr": ("tôt",), "de": ("früh", "frühe"), "es": ("temprano",)},
    "work": {"en": ("work",), "fr": ("travail",), "de": ("arbeit",), "es": ("trabajo",)},
    "reward": {"en": ("reward",), "fr": ("récompense",), "de": ("lohn",), "es": ("recompensa",)},
    "great": {"en": ("great",), "fr": ("grandes",), "de": ("große",), "es": ("grandes",)},
    "time": {"en": ("time",), "fr": ("temps",), "de": ("zeit",), "es": ("tiempo",)},
    "patience": {"en": ("patience",), "fr": ("patience",), "de": ("geduld",), "es": ("paciencia",)},
    "build": {"en": ("builds",), "fr": ("construit",), "de": ("baut",), "es": ("construye",)},
    "slow": {"en": ("slowly",), "fr": ("lentement",), "de": ("langsam",), "es": ("despacio",)},
    "danger": {"en": ("danger",), "fr": ("danger",), "de": ("gefahr",), "es": ("peligro",)},
    "careful": {"en": ("careful",), "fr": ("prudente",), "de": ("vorsichtige",), "es": ("prudente",)},
    "preparation": {"en": ("preparation",), "fr": ("préparation",), "de": ("vorbereitung",), "es": ("preparación",)},
    "house": {"en": ("house",), "fr": ("maison",), "de": ("haus",), "es": ("casa",)},
    "safe": {"en": ("safe",), "fr": ("sûre",), "de": ("sicher",), "es": ("segura",)},
    "alone": {"en": ("alone",), "fr": ("seuls",), "de": ("allein",), "es": ("solos",)},
    "villagers": {"en": ("villagers",), "fr": ("villageois",), "de": ("dorfbewohner",), "es": ("aldeanos",)},
    "weak": {"en": ("weak",), "fr": ("faibles",), "de": ("schwach",), "es": ("débiles",)},
    "united": {"en": ("together",), "fr": ("unis",), "de": ("vereint",), "es": ("unidos",)},
    "strong": {"en": ("strong",), "fr": ("forts",), "de": ("stark",), "es": ("fuertes",)},
    "greed": {"en": ("greed",), "fr": ("avidité",), "de": ("gier",), "es": ("codicia",)},
    "want": {"en": ("wants",), "fr": ("veut",), "de": ("will",), "es": ("quiere",)},
    "more": {"en": ("more",), "fr": ("plus",), "de": ("mehr",), "es": ("más",)},
    "lose": {"en": ("loses",), "fr": ("perd",), "de": ("verliert",), "es": ("pierde",)},
    "day": {"en": ("day",), "fr": ("jour",), "de": ("tag",), "es": ("día",)},
    "craft": {"en": ("craft",), "fr": ("métier",), "de": ("handwerk",), "es": ("oficio",)},
    "practice": {
        "en": ("practised", "practice"),
        "fr": ("pratiquait", "pratique"),
        "de": ("übte", "übung"),
        "es": ("practicaba", "práctica"),
    },
    "skill": {"en": ("skill",), "fr": ("habileté",), "de": ("können",), "es": ("destreza",)},
    "good": {"en": ("good",), "fr": ("bonne",), "de": ("gute", "gut"), "es": ("buena",)},
    "company": {"en": ("company",), "fr": ("compagnie",), "de": ("gesellschaft",), "es": ("compañía",)},
    "bad": {"en": ("bad",), "fr": ("mauvaise",), "de": ("schlechte",), "es": ("mala",)},
    "spoil": {"en": ("spoils",), "fr": ("gâte",), "de": ("verdirbt",), "es": ("estropea",)},
    "sow": {"en": ("sows",), "fr": ("sème",), "de": ("sät",), "es": ("siembra",)},
    "anger": {"en": ("anger",), "fr": ("colère",), "de": ("zorn",), "es": ("ira",)},
    "harvest": {"en": ("harvests",), "fr": ("récolte",), "de": ("erntet",), "es": ("cosecha",)},
    "storm": {"en": ("storm",), "fr": ("tempête",), "de": ("sturm",), "es": ("tormenta",)},
}
"""The aligned concept dictionary for the lessons' content words: concept id -> language -> word forms."""

LESSON_CONCEPTS: dict[str, tuple[str, ...]] = {
    "early_bird": ("morning", "early", "work", "reward"),
    "rome_day": ("great", "time", "patience", "build", "slow"),
    "safe_sorry": ("danger", "careful", "preparation", "house", "safe"),
    "unity": ("alone", "villagers", "weak", "united", "strong"),
    "grasp_all": ("greed", "want", "more", "lose"),
    "practice": ("day", "craft", "practice", "skill"),
    "company": ("good", "company", "bad", "spoil"),
    "sow_wind": ("sow", "anger", "harvest", "storm"),
}
"""What each planted lesson is about, as concepts: the lesson's anchor vector in :func:`lesson_vector`."""


# ---------------------------------------------------------------------------------------------------------
# 3. Coding a story: characters, protagonist, agency, social positioning, resolution

WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")
WORD_OR_COMMA = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*|,")
QUOTED = re.compile(r'"[^"]*"|“[^”]*”|«[^»]*»|„[^“”]*[“”]')
SENTENCE = re.compile(r"[^.!?]+(?:[.!?]+|$)")


def tokens(text: str) -> list[str]:
    """Lower-case words (letters, hyphenated compounds kept whole: ``grand-mère``; elisions split: ``l'homme``)."""
    return WORD.findall(text.lower())


def split_dialogue(text: str) -> tuple[str, list[str]]:
    """``(narration, quotes)``: the text with every quoted passage (``"…"``, ``“…”``, ``«…»``, ``„…“``) blanked, and
    the quoted passages."""
    return QUOTED.sub(" ", text), QUOTED.findall(text)


def sentences(text: str) -> list[str]:
    """Sentences of ``text`` (split after ``.``, ``!`` or ``?``), without empty ones."""
    return [s.strip() for s in SENTENCE.findall(text) if tokens(s)]


def _lexicon(lang: str) -> dict:
    return LEXICONS[check_language(lang, CODED_LANGUAGES)]


@dataclass
class Character:
    """A character as the coder sees it: a key (a name, or a person noun's concept), and what the text says of
    them (``?`` where it says nothing)."""

    key: str
    gender: str = "?"
    age: str = "adult"
    social_role: str = "none"
    named: bool = False


@dataclass(frozen=True)
class Mention:
    """A reference to a character in one sentence: its token position, key, and whether a marker (``to``, ``à``,
    ``a``, ``dem``) makes it an object."""

    position: int
    key: str
    marked: bool


@dataclass(frozen=True)
class StoryCode:
    """The codes of one story (Q2): the protagonist (first named character or first person noun) and their gender,
    age, social role, agency role (``actor`` if they are the agent of more action sentences than they are the
    patient of, ``acted_upon`` if fewer, ``mixed`` if as many, ``none`` if they take part in no action), the counts
    behind that role, and the resolution type of the final sentence."""

    protagonist: str
    gender: str
    age: str
    social_role: str
    role: str
    acts: int
    acted_upon: int
    resolution: str
    characters: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict:
        return {
            "protagonist": self.protagonist,
            "gender": self.gender,
            "age": self.age,
            "social_role": self.social_role,
            "role": self.role,
            "acts": self.acts,
            "acted_upon": self.acted_upon,
            "resolution": self.resolution,
        }


def _marked(words: list[str], i: int, lex: dict) -> bool:
    """Is the person noun at ``i`` an object: a marker among the determiners before it, or right before them?"""
    j = i - 1
    while j >= 0 and words[j] in lex["determiners"]:
        if words[j] in lex["object_markers"]:
            return True
        j -= 1
    return j >= 0 and words[j] in lex["object_markers"]


def _age(words: list[str], i: int, lex: dict, default: str) -> str:
    """The age an adjective just before the noun at ``i`` gives (``old woman``, ``vieille femme``)."""
    for j in range(max(0, i - 2), i):
        if words[j] in lex["age_words"]:
            return lex["age_words"][words[j]]
    return default


def _resolve_pronoun(gender: str, order: list[str], cast: dict[str, Character]) -> str | None:
    """A subject pronoun's antecedent: the most recent character of its gender; failing that, the most recent one
    whose gender the text has not said (which the pronoun then settles); ``None`` when there is neither."""
    for key in reversed(order):
        if cast[key].gender == gender:
            return key
    for key in reversed(order):
        if cast[key].gender == "?":
            cast[key].gender = gender
            return key
    return None


def _is_person(words: list[str], i: int, lex: dict) -> bool:
    """Is the word at ``i`` a person noun (German *junge* is one, unless a person noun follows: *die junge Frau*)?"""
    word = words[i]
    if word not in lex["persons"]:
        return False
    return not (word in lex["determiners"] and i + 1 < len(words) and words[i + 1] in lex["persons"])


def _mentions(words: list[str], lex: dict, cast: dict[str, Character], order: list[str]) -> list[Mention]:
    """The character mentions of one sentence, in order; new characters join ``cast`` and ``order``. Apposition
    makes a name and a person noun one character, the noun describing the name: the noun after the name, after a
    comma or a copula and determiners only (``Marta, an old fisherwoman``; ``Hans war ein junger Bauer``), or
    the noun right before the name (``the baker Hans``). ``words`` keeps commas as tokens."""
    found: list[Mention] = []
    for i, word in enumerate(words):
        if word in lex["names"]:
            key = word
            previous = found[-1] if found and found[-1].position == i - 1 else None
            if key not in cast and previous and not cast[previous.key].named and order[-1] == previous.key:
                noun = cast.pop(found[-1].key)  # "the baker Hans": the noun was Hans all along
                gender = lex["names"][word] if noun.gender == "?" else noun.gender
                cast[key] = Character(key, gender, noun.age, noun.social_role, named=True)
                order[order.index(noun.key)] = key
                found[-1] = Mention(found[-1].position, key, found[-1].marked)
                continue
            cast.setdefault(key, Character(key, lex["names"][word], named=True))
        elif _is_person(words, i, lex):
            concept, gender, age, social = lex["persons"][word]
            named = [m for m in found if cast[m.key].named and 1 < i - m.position <= 5]
            between = words[named[-1].position + 1 : i] if named else []
            if (
                between
                and (between[0] == "," or between[0] in lex["copulas"])
                and all(w in lex["determiners"] for w in between[1:])
            ):
                character = cast[named[-1].key]  # apposition: the noun describes the named character
                character.age, character.social_role = _age(words, i, lex, age), social
                character.gender = character.gender if character.gender != "?" else gender
                continue
            key = concept
            cast.setdefault(key, Character(key, gender, _age(words, i, lex, age), social))
        elif word in lex["subject_pronouns"]:
            key = _resolve_pronoun(lex["subject_pronouns"][word], order, cast)
            if key is None:
                continue
        else:
            continue
        if key not in order:
            order.append(key)
        found.append(Mention(i, key, _marked(words, i, lex)))
    return found


def _agent(words: list[str], mentions: list[Mention], lex: dict, lang: str, previous: str | None, topic: str | None):
    """The agent of a sentence with an action verb (``same_lesson-eq-agency``). Passive (an auxiliary, then an
    agent marker): the first mention after the marker. Active: the first unmarked mention before the verb; with
    none there, German verb-second inversion takes the first unmarked mention after the verb, and the other
    languages carry the previous sentence's agent over (pronoun drop, ellipsis) or, in the first action sentence,
    take the story's topic (its first character)."""
    verb = next(i for i, w in enumerate(words) if w in lex["action_verbs"])
    aux = [i for i, w in enumerate(words) if w in lex["passive_aux"]]
    by = [i for i, w in enumerate(words) if w in lex["agent_markers"] and aux and i > aux[0]]
    if aux and by:
        after = [m.key for m in mentions if m.position > by[0]]
        return after[0] if after else None
    before = [m.key for m in mentions if m.position < verb and not m.marked]
    if before:
        return before[0]
    after = [m.key for m in mentions if m.position > verb and not m.marked]
    if lang == "de" and after:
        return after[0]
    return previous if previous is not None else topic


def resolution_type(sentence: str, lang: str) -> str:
    """The resolution type of a story's final sentence: the first of :data:`RESOLUTIONS` whose cue words
    (:data:`LEXICONS`) it contains, ``open`` when it contains none."""
    words = set(tokens(sentence))
    outcomes = _lexicon(lang)["outcomes"]
    return next((kind for kind in RESOLUTIONS[:-1] if words & outcomes[kind]), "open")


def code_story(text: str, lang: str) -> StoryCode:
    """Code a short narrative in ``lang`` (one of :data:`CODED_LANGUAGES`) with the explicit scheme (Q2: agency
    and social positioning): characters from :data:`LEXICONS` (names, person nouns, subject pronouns resolved to
    the most recent character of their gender), the protagonist (the first character mentioned), and for every
    narrated sentence with an action verb its agent (:func:`_agent`) and patients (the other characters it
    mentions). Quoted dialogue is left out."""
    lex = _lexicon(lang)
    narration, _ = split_dialogue(text)
    cast: dict[str, Character] = {}
    order: list[str] = []
    acts = acted = 0
    previous: str | None = None
    story_sentences = sentences(narration)
    for sentence in story_sentences:
        words = WORD_OR_COMMA.findall(sentence.lower())
        mentions = _mentions(words, lex, cast, order)
        if not any(w in lex["action_verbs"] for w in words):
            continue
        agent = _agent(words, mentions, lex, lang, previous, order[0] if order else None)
        previous = agent
        if not order:
            continue
        protagonist = order[0]
        if agent == protagonist:
            acts += 1
        elif any(m.key == protagonist for m in mentions):
            acted += 1
    resolution = resolution_type(story_sentences[-1], lang) if story_sentences else "open"
    if not order:
        return StoryCode("", "?", "?", "none", "none", 0, 0, resolution, ())
    hero = cast[order[0]]
    role = "none" if acts + acted == 0 else "actor" if acts > acted else "acted_upon" if acted > acts else "mixed"
    return StoryCode(hero.key, hero.gender, hero.age, hero.social_role, role, acts, acted, resolution, tuple(order))


def structure_features(text: str, lang: str) -> dict:
    """Narrative structure (Q2): length in words, sentences, number of distinct characters (:func:`code_story`),
    the dialogue ratio (words inside quotes over all words), whether there is dialogue, and the resolution type."""
    code = code_story(text, lang)
    _, quotes = split_dialogue(text)
    n_words = len(tokens(text))
    quoted = sum(len(tokens(q)) for q in quotes)
    return {
        "n_words": n_words,
        "n_sentences": len(sentences(split_dialogue(text)[0])),
        "n_characters": len(code.characters),
        "dialogue_ratio": quoted / n_words if n_words else 0.0,
        "has_dialogue": bool(quotes),
        "resolution": code.resolution,
    }


# ---------------------------------------------------------------------------------------------------------
# 4. Semantic preservation offline: an aligned bag of concepts, and character n-grams


def _concept_index() -> dict[str, dict[str, str]]:
    """language -> word form -> concept id, from the persons and verbs of :data:`LEXICONS` and
    :data:`CONTENT_WORDS`."""
    index: dict[str, dict[str, str]] = {}
    for lang in CODED_LANGUAGES:
        lex = LEXICONS[lang]
        forms = {w: "person:" + v[0] for w, v in lex["persons"].items()}
        forms.update({w: "act:" + c for w, c in lex["action_verbs"].items()})
        for concept, by_lang in CONTENT_WORDS.items():
            forms.update({w: concept for w in by_lang[lang]})
        index[lang] = forms
    return index


CONCEPT_INDEX = _concept_index()
CONCEPTS: tuple[str, ...] = tuple(sorted({c for forms in CONCEPT_INDEX.values() for c in forms.values()}))
"""The shared concept vocabulary: the axes of :func:`concept_vector`."""
_AXIS = {c: i for i, c in enumerate(CONCEPTS)}


def concept_vector(text: str, lang: str) -> np.ndarray:
    """Aligned bag of concepts (Q1's language-independent embedding): counts of :data:`CONCEPTS` in ``text``,
    every word of ``lang`` mapped through the concept dictionary; words outside it are ignored."""
    forms = CONCEPT_INDEX[check_language(lang, CODED_LANGUAGES)]
    vector = np.zeros(len(CONCEPTS))
    for word in tokens(text):
        if word in forms:
            vector[_AXIS[forms[word]]] += 1
    return vector


def lesson_vector(lesson: str) -> np.ndarray:
    """The lesson's anchor: one count for each of its content concepts (:data:`LESSON_CONCEPTS`)."""
    check_choice("lesson", lesson, LESSON_CONCEPTS)
    vector = np.zeros(len(CONCEPTS))
    for concept in LESSON_CONCEPTS[lesson]:
        vector[_AXIS[concept]] = 1.0
    return vector


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """``same_lesson-eq-cosine``: cos(a, b) = a·b / (‖a‖ ‖b‖), 0 when either vector is zero."""
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / norm) if norm else 0.0


class CharNgramEmbedding:
    """Character n-gram TF-IDF (``char_wb``, 2–4-grams) reduced by a truncated SVD and L2-normalised: a second
    offline embedding for Q1 that needs no dictionary (it sees shared spellings, so it is weak across languages
    that share few)."""

    def __init__(self, n_components: int = 32, seed: int = 0):
        self.n_components = check_int("n_components", n_components, minimum=1)
        self.seed = seed

    def fit(self, texts: list[str]) -> CharNgramEmbedding:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.tfidf = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), lowercase=True, sublinear_tf=True)
        matrix = self.tfidf.fit_transform(texts)
        k = min(self.n_components, matrix.shape[1] - 1, matrix.shape[0] - 1)
        self.svd = TruncatedSVD(max(k, 1), algorithm="arpack", random_state=self.seed).fit(matrix)
        return self

    def transform(self, texts: list[str]) -> np.ndarray:
        vectors = self.svd.transform(self.tfidf.transform(texts))
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1.0)


def add_char_cosine(
    frames: dict[str, pd.DataFrame],
    stories: dict[str, list[Story]],
    proverbs: pd.DataFrame,
    n_components: int = 64,
    seed: int = 0,
) -> dict[str, pd.DataFrame]:
    """Each frame of :func:`code_corpus` with a ``char_cosine`` column: the cosine (``same_lesson-eq-cosine``)
    between a story and its lesson's proverb in the story's language, both embedded by one
    :class:`CharNgramEmbedding` fitted on every story and every proverb (so all corpora share one space)."""
    anchors = proverbs.set_index(["set_id", "lang"])["proverb"]
    texts = [s.text for name in frames for s in stories[name]]
    embedding = CharNgramEmbedding(n_components, seed).fit(texts + anchors.tolist())
    out = {}
    for name, frame in frames.items():
        story_vectors = embedding.transform([s.text for s in stories[name]])
        anchor_vectors = embedding.transform([anchors[(s.lesson, s.lang)] for s in stories[name]])
        out[name] = frame.assign(char_cosine=(story_vectors * anchor_vectors).sum(axis=1))
    return out


# ---------------------------------------------------------------------------------------------------------
# 5. Redistribution tests


def distribution(labels, categories) -> np.ndarray:
    """The share of each of ``categories`` among ``labels`` (a label outside them is an error)."""
    labels = list(labels)
    unknown = set(labels) - set(categories)
    if unknown:
        raise ParameterError(f"labels {sorted(map(str, unknown))} are not among the categories {list(categories)}")
    counts = np.array([labels.count(c) for c in categories], float)
    return counts / counts.sum() if counts.sum() else counts


def jensen_shannon(p, q) -> float:
    """``same_lesson-eq-jsd``: JSD(p, q) = ½ KL(p‖m) + ½ KL(q‖m), m = (p + q)/2, in bits (0 ≤ JSD ≤ 1)."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    if p.sum() == 0 or q.sum() == 0:
        return 0.0
    return float(jensenshannon(p, q, base=2) ** 2)


def contingency(a_labels, b_labels, categories) -> np.ndarray:
    """The 2 × K table of counts: rows are the two conditions, columns the categories."""
    return np.array([[list(labels).count(c) for c in categories] for labels in (a_labels, b_labels)])


def chi2_test(table: np.ndarray) -> tuple[float, int, float]:
    """Pearson's χ² test of independence of condition and category on a contingency table, empty columns dropped:
    ``(χ², degrees of freedom, p)``; ``(0, 0, 1)`` when fewer than two categories occur."""
    table = np.asarray(table)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 0, 1.0
    chi2, p, dof, _ = stats.chi2_contingency(table, correction=False)
    return float(chi2), int(dof), float(p)


def _one_hot(values: list, categories: list) -> np.ndarray:
    index = {c: i for i, c in enumerate(categories)}
    matrix = np.zeros((len(values), len(categories)))
    matrix[np.arange(len(values)), [index[v] for v in values]] = 1.0
    return matrix


def _rowwise_jsd(counts_a: np.ndarray, counts_b: np.ndarray) -> np.ndarray:
    """JSD in bits between the rows of two count matrices (permutations × categories)."""
    p = counts_a / counts_a.sum(axis=-1, keepdims=True)
    q = counts_b / counts_b.sum(axis=-1, keepdims=True)
    m = (p + q) / 2

    def kl(x, y):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(x > 0, x * np.log2(np.where(x > 0, x, 1) / np.where(y > 0, y, 1)), 0.0).sum(axis=-1)

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def _redistribution_totals(
    a: pd.DataFrame, b: pd.DataFrame, columns: list, rng: np.random.Generator, n_permutations: int
) -> np.ndarray:
    """The statistic T of ``same_lesson-eq-null`` (summed JSD over ``columns``) for the observed split (entry 0) and
    ``n_permutations`` random reassignments of whole rows to ``a`` and ``b``."""
    pooled = pd.concat([a[columns], b[columns]], ignore_index=True)
    n_a = len(a)
    if n_a == 0 or len(b) == 0:
        raise ParameterError("both corpora need at least one story")
    hots = [_one_hot(pooled[c].tolist(), sorted(set(pooled[c]), key=str)) for c in columns]
    in_a = np.zeros((n_permutations + 1, len(pooled)))
    in_a[0, :n_a] = 1.0
    ranks = rng.random((n_permutations, len(pooled))).argsort(axis=1).argsort(axis=1)
    in_a[1:] = ranks < n_a
    total = np.zeros(n_permutations + 1)
    for hot in hots:
        counts_a = in_a @ hot
        total += _rowwise_jsd(counts_a, hot.sum(axis=0) - counts_a)
    return total


def redistribution_test(
    a: pd.DataFrame,
    b: pd.DataFrame,
    columns,
    rng: np.random.Generator,
    n_permutations: int = 999,
    strata: str | None = None,
) -> NullComparison:
    """Has the distribution of the coded ``columns`` moved between corpora ``a`` and ``b``? (Q2.) The statistic is
    the sum over columns of JSD(a's shares, b's shares) (``same_lesson-eq-jsd``); its null permutes which rows
    belong to which corpus, keeping each row's codes together (``same_lesson-eq-null``): p = (1 + #{T_π ≥ T}) /
    (1 + P). With ``strata`` (a column of both, e.g. the story language) T is summed over the strata and rows are
    permuted within their stratum only: a shift that goes one way in one stratum and the other way in another
    does not cancel, and differences in the strata's sizes cannot make one."""
    check_int("n_permutations", n_permutations, minimum=1)
    columns = list(columns)
    if strata is None:
        total = _redistribution_totals(a, b, columns, rng, n_permutations)
        return permutation_null(float(total[0]), total[1:])
    check_choice("strata", strata, [c for c in a.columns if c in b.columns])
    total = np.zeros(n_permutations + 1)
    for level in sorted(set(a[strata]) | set(b[strata]), key=str):
        part_a, part_b = a[a[strata] == level], b[b[strata] == level]
        if len(part_a) and len(part_b):
            total += _redistribution_totals(part_a, part_b, columns, rng, n_permutations)
    return permutation_null(float(total[0]), total[1:])


def variable_table(a: pd.DataFrame, b: pd.DataFrame, columns) -> pd.DataFrame:
    """Per coded column: the JSD between the corpora's shares and Pearson's χ² test on the 2 × K table."""
    rows = []
    for column in columns:
        categories = sorted(set(a[column]) | set(b[column]), key=str)
        table = contingency(a[column], b[column], categories)
        chi2, dof, p = chi2_test(table)
        jsd = jensen_shannon(*table.astype(float))
        rows.append({"code": column, "jsd_bits": jsd, "chi2": chi2, "dof": dof, "chi2_p": p})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------------
# 6. Inter-model convergence (Q3)


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


@dataclass(frozen=True)
class Convergence:
    """Mean cross-model cosine of the same item's embeddings (with its bootstrap interval over items), and the same
    mean for mismatched items (item i of one model against a random other item of the other): the level at which
    two models that agree on nothing item by item would sit."""

    same_item: Estimate
    mismatched: float


def cross_model_cosine(embeddings: dict[str, np.ndarray], rng: np.random.Generator, draws: int = 2000) -> Convergence:
    """``same_lesson-eq-convergence``: C = mean over model pairs (m, m') and items i of cos(e_m(i), e_m'(i)), each
    model's ``(items × dim)`` embeddings aligned by item (e.g. its narratives' mean vector per proverb)."""
    names = sorted(embeddings)
    if len(names) < 2:
        raise ParameterError(f"convergence needs at least two models; got {names}")
    shapes = {embeddings[n].shape for n in names}
    if len(shapes) != 1:
        raise ParameterError(f"every model needs the same (items, dim) embeddings; got {sorted(shapes)}")
    unit = {n: _normalise(np.asarray(embeddings[n], float)) for n in names}
    n_items = next(iter(shapes))[0]
    pairs = [(x, y) for k, x in enumerate(names) for y in names[k + 1 :]]
    per_item = np.mean([(unit[x] * unit[y]).sum(axis=1) for x, y in pairs], axis=0)
    shift = rng.integers(1, n_items, len(pairs)) if n_items > 1 else np.zeros(len(pairs), int)
    mismatched = np.mean(
        [(unit[x] * np.roll(unit[y], s, axis=0)).sum(axis=1).mean() for (x, y), s in zip(pairs, shift, strict=True)]
    )
    return Convergence(bootstrap_mean(per_item, rng, draws), float(mismatched))


def rsa_spearman(
    sim_a: np.ndarray, sim_b: np.ndarray, rng: np.random.Generator, n_permutations: int = 999
) -> NullComparison:
    """``same_lesson-eq-rsa``: Spearman's ρ between the upper triangles of two models' item × item similarity
    matrices, with a Mantel permutation null (items of one matrix relabelled, rows and columns together)."""
    sim_a, sim_b = np.asarray(sim_a, float), np.asarray(sim_b, float)
    if sim_a.shape != sim_b.shape or sim_a.shape[0] != sim_a.shape[1] or sim_a.shape[0] < 3:
        raise ParameterError(
            f"two square similarity matrices of the same size ≥ 3 are needed; got {sim_a.shape}, {sim_b.shape}"
        )
    upper = np.triu_indices(sim_a.shape[0], 1)
    rank_a = stats.rankdata(sim_a[upper])
    observed = stats.spearmanr(rank_a, sim_b[upper]).statistic
    null = np.empty(n_permutations)
    for k in range(n_permutations):
        order = rng.permutation(sim_a.shape[0])
        null[k] = stats.spearmanr(rank_a, sim_b[np.ix_(order, order)][upper]).statistic
    return permutation_null(float(observed), null)


# ---------------------------------------------------------------------------------------------------------
# 7. The planted-shift corpus
#
# Person types of the generated stories: gender, age, social role and, per language, the noun phrases a
# template needs. English/French/Spanish: (noun, grammatical gender); German: (nominative, accusative, dative
# noun forms, grammatical gender f/m/n).

PERSON_TYPES: dict[str, dict] = {
    "grandmother": {"gender": "F", "age": "elder", "social_role": "family", "en": "grandmother",
                    "fr": ("grand-mère", "f"), "es": ("abuela", "f"), "de": ("Großmutter",) * 3 + ("f",)},
    "grandfather": {"gender": "M", "age": "elder", "social_role": "family", "en": "grandfather",
                    "fr": ("grand-père", "m"), "es": ("abuelo", "m"), "de": ("Großvater",) * 3 + ("m",)},
    "girl": {"gender": "F", "age": "child", "social_role": "none", "en": "girl", "fr": ("fillette", "f"),
             "es": ("niña", "f"), "de": ("Mädchen",) * 3 + ("n",)},
    "boy": {"gender": "M", "age": "child", "social_role": "none", "en": "boy", "fr": ("garçon", "m"),
            "es": ("niño", "m"), "de": ("Junge", "Jungen", "Jungen", "m")},
    "queen": {"gender": "F", "age": "adult", "social_role": "authority", "en": "queen", "fr": ("reine", "f"),
              "es": ("reina", "f"), "de": ("Königin",) * 3 + ("f",)},
    "king": {"gender": "M", "age": "adult", "social_role": "authority", "en": "king", "fr": ("roi", "m"),
             "es": ("rey", "m"), "de": ("König",) * 3 + ("m",)},
    "fisherwoman": {"gender": "F", "age": "adult", "social_role": "worker", "en": "fisherwoman",
                    "fr": ("pêcheuse", "f"), "es": ("pescadora", "f"), "de": ("Fischerin",) * 3 + ("f",)},
    "fisherman": {"gender": "M", "age": "adult", "social_role": "worker", "en": "fisherman",
                  "fr": ("pêcheur", "m"), "es": ("pescador", "m"), "de": ("Fischer",) * 3 + ("m",)},
    "mother": {"gender": "F", "age": "adult", "social_role": "family", "en": "mother", "fr": ("mère", "f"),
               "es": ("madre", "f"), "de": ("Mutter",) * 3 + ("f",)},
    "father": {"gender": "M", "age": "adult", "social_role": "family", "en": "father", "fr": ("père", "m"),
               "es": ("padre", "m"), "de": ("Vater",) * 3 + ("m",)},
}  # fmt: skip

GERMAN_ARTICLES = {  # grammatical gender -> (nom, acc, dat, indefinite nom, relative pronoun, "by" phrase)
    "f": ("die", "die", "der", "eine", "die", "von der"),
    "m": ("der", "den", "dem", "ein", "der", "vom"),
    "n": ("das", "das", "dem", "ein", "das", "vom"),
}

VERBS: dict[str, dict[str, tuple]] = {  # concept -> language -> (past, participle m, participle f[, German case])
    "help": {"en": ("helped", "helped", "helped"), "fr": ("aida", "aidé", "aidée"),
             "de": ("half", None, None, "dat"), "es": ("ayudó", "ayudado", "ayudada")},
    "save": {"en": ("saved", "saved", "saved"), "fr": ("sauva", "sauvé", "sauvée"),
             "de": ("rettete", "gerettet", "gerettet", "acc"), "es": ("salvó", "salvado", "salvada")},
    "warn": {"en": ("warned", "warned", "warned"), "fr": ("avertit", "averti", "avertie"),
             "de": ("warnte", "gewarnt", "gewarnt", "acc"), "es": ("advirtió", "advertido", "advertida")},
    "carry": {"en": ("carried", "carried", "carried"), "fr": ("porta", "porté", "portée"),
              "de": ("trug", "getragen", "getragen", "acc"), "es": ("llevó", "llevado", "llevada")},
    "guide": {"en": ("guided", "guided", "guided"), "fr": ("guida", "guidé", "guidée"),
              "de": ("führte", "geführt", "geführt", "acc"), "es": ("guió", "guiado", "guiada")},
    "wake": {"en": ("woke", "woken", "woken"), "fr": ("réveilla", "réveillé", "réveillée"),
             "de": ("weckte", "geweckt", "geweckt", "acc"), "es": ("despertó", "despertado", "despertada")},
}  # fmt: skip

STORY_TEMPLATES: dict[str, dict[str, str]] = {
    "en": {"intro": "Once there was {P_indef} who lived by the river.", "active": "{A_nom} {verb} {P_obj}.",
           "passive": "{P_nom} was {participle} {A_by}.", "dialogue": '"Remember this day," said {P_nom}.',
           "learning": "In the end, {P_nom} learned the lesson.", "failure": "In the end, {P_nom} lost everything.",
           "success": "In the end, {P_nom} became rich.",
           "reconciliation": "In the end, {P_nom} and {O_nom} were friends again."},
    "fr": {"intro": "Il était une fois {P_indef} qui vivait près de la rivière.", "active": "{A_nom} {verb} {P_obj}.",
           "passive": "{P_nom} fut {participle} {A_by}.", "dialogue": "« Souviens-toi de ce jour », dit {P_nom}.",
           "learning": "À la fin, {P_nom} comprit la leçon.", "failure": "À la fin, {P_nom} perdit tout.",
           "success": "À la fin, {P_nom} devint riche.",
           "reconciliation": "À la fin, {P_nom} et {O_nom} furent de nouveau {friends}."},
    "de": {"intro": "Es war einmal {P_indef}, {P_rel} am Fluss lebte.", "active": "{A_nom} {verb} {P_obj}.",
           "passive": "{P_nom} wurde {A_by} {participle}.", "dialogue": "„Denk an diesen Tag“, sagte {P_nom}.",
           "learning": "Am Ende verstand {P_nom} die Lehre.", "failure": "Am Ende verlor {P_nom} alles.",
           "success": "Am Ende wurde {P_nom} reich.",
           "reconciliation": "Am Ende waren {P_nom} und {O_nom} wieder {friends}."},
    "es": {"intro": "Había una vez {P_indef} que vivía junto al río.", "active": "{A_nom} {verb} {P_obj}.",
           "passive": "{P_nom} fue {participle} {A_by}.", "dialogue": "«Recuerda este día», dijo {P_nom}.",
           "learning": "Al final, {P_nom} aprendió la lección.", "failure": "Al final, {P_nom} lo perdió todo.",
           "success": "Al final, {P_nom} se hizo {rich}.",
           "reconciliation": "Al final, {P_nom} y {O_nom} volvieron a ser {friends}."},
}  # fmt: skip
"""Story skeleton: intro (the protagonist P), one action sentence (P acts on the other character O, or O acts on P,
actively or in the passive), the lesson's content sentence, optional dialogue, the resolution."""

FRIENDS = {"en": ("friends", "friends"), "fr": ("amis", "amies"), "de": ("Freunde", "Freundinnen"),
           "es": ("amigos", "amigas")}  # fmt: skip  # (mixed or male, both female)


def noun_phrases(person: str, lang: str) -> dict[str, str]:
    """The noun phrases of a person type in ``lang``: ``indef`` (first mention), ``nom``, ``acc``, ``dat`` (the
    object of a verb taking that case; Spanish adds the personal *a*), ``by`` (the passive's agent phrase) and
    ``rel`` (German relative pronoun)."""
    spec = PERSON_TYPES[check_choice("person", person, PERSON_TYPES)][check_language(lang, CODED_LANGUAGES)]
    if lang == "en":
        article = "an" if spec[0] in "aeiou" else "a"
        return {
            "indef": f"{article} {spec}",
            "nom": f"the {spec}",
            "acc": f"the {spec}",
            "dat": f"the {spec}",
            "by": f"by the {spec}",
            "rel": "who",
        }
    if lang == "fr":
        noun, g = spec
        the, a = ("la", "une") if g == "f" else ("le", "un")
        return {
            "indef": f"{a} {noun}",
            "nom": f"{the} {noun}",
            "acc": f"{the} {noun}",
            "dat": f"{the} {noun}",
            "by": f"par {the} {noun}",
            "rel": "qui",
        }
    if lang == "es":
        noun, g = spec
        the, a, obj = ("la", "una", "a la") if g == "f" else ("el", "un", "al")
        return {
            "indef": f"{a} {noun}",
            "nom": f"{the} {noun}",
            "acc": f"{obj} {noun}",
            "dat": f"{obj} {noun}",
            "by": f"por {the} {noun}",
            "rel": "que",
        }
    nom, acc, dat, g = spec
    articles = GERMAN_ARTICLES[g]
    return {
        "indef": f"{articles[3]} {nom}",
        "nom": f"{articles[0]} {nom}",
        "acc": f"{articles[1]} {acc}",
        "dat": f"{articles[2]} {dat}",
        "by": f"{articles[5]} {dat}",
        "rel": articles[4],
    }


@dataclass(frozen=True)
class StoryPrior:
    """A "culture" of the generator, stated as data: the chance that the protagonist acts (rather than is acted
    upon), weights over protagonist types (:data:`PERSON_TYPES`), weights over resolution types, the chance of a
    line of dialogue and of a passive sentence."""

    p_actor: float = 0.75
    type_weights: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PERSON_TYPES, 1.0))
    resolution_weights: dict[str, float] = field(
        default_factory=lambda: {"learning": 0.4, "success": 0.3, "reconciliation": 0.2, "failure": 0.1}
    )
    p_dialogue: float = 0.5
    p_passive: float = 0.3

    def __post_init__(self):
        for name in ("p_actor", "p_dialogue", "p_passive"):
            check_float(name, getattr(self, name), minimum=0.0, maximum=1.0)
        for name, weights, allowed in (
            ("type_weights", self.type_weights, PERSON_TYPES),
            ("resolution_weights", self.resolution_weights, RESOLUTIONS[:-1]),
        ):
            for key, weight in weights.items():
                check_choice(f"{name} key", key, allowed)
                check_float(f"{name}[{key!r}]", weight, minimum=0.0)
            if sum(weights.values()) <= 0:
                raise ParameterError(f"{name} must have a positive weight")


SHIFT_TARGET = StoryPrior(
    p_actor=0.25,
    type_weights={
        t: (1.0 if spec["gender"] == "M" and spec["social_role"] in ("authority", "worker") else 0.15)
        for t, spec in PERSON_TYPES.items()
    },
    resolution_weights={"learning": 0.1, "success": 0.6, "reconciliation": 0.2, "failure": 0.1},
)
"""Where a planted shift moves a prior: protagonists who are acted upon, men with authority or a trade, success
endings. Dialogue and passive rates are left alone."""


def mix_priors(prior: StoryPrior, target: StoryPrior, s: float) -> StoryPrior:
    """``same_lesson-eq-shift``: θ_s = (1 − s) θ + s θ*, every parameter of ``prior`` moved a fraction ``s`` ∈ [0, 1]
    of the way to ``target``'s (probabilities linearly, weights after normalising each to sum 1)."""
    s = check_float("s", s, minimum=0.0, maximum=1.0)

    def mix(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
        total_a, total_b = sum(a.values()), sum(b.values())
        return {k: (1 - s) * a.get(k, 0.0) / total_a + s * b.get(k, 0.0) / total_b for k in a | b}

    return replace(
        prior,
        p_actor=(1 - s) * prior.p_actor + s * target.p_actor,
        type_weights=mix(prior.type_weights, target.type_weights),
        resolution_weights=mix(prior.resolution_weights, target.resolution_weights),
        p_dialogue=(1 - s) * prior.p_dialogue + s * target.p_dialogue,
        p_passive=(1 - s) * prior.p_passive + s * target.p_passive,
    )


def planted_shift(prior: StoryPrior, strength: float) -> StoryPrior:
    """``same_lesson-eq-shift``: the prior moved a fraction ``strength`` ∈ [0, 1] of the way to
    :data:`SHIFT_TARGET` (:func:`mix_priors`; the target keeps the prior's dialogue and passive rates, so only
    agency, protagonists and endings move); ``strength = 0`` returns an equal prior (the control)."""
    strength = check_float("strength", strength, minimum=0.0, maximum=1.0)
    target = replace(SHIFT_TARGET, p_dialogue=prior.p_dialogue, p_passive=prior.p_passive)
    return mix_priors(prior, target, strength)


@dataclass(frozen=True)
class Story:
    """A generated story and its ground truth (what the generator chose)."""

    lesson: str
    lang: str
    text: str
    truth: dict


def _pick(rng: np.random.Generator, weights: dict[str, float]) -> str:
    keys = list(weights)
    p = np.array([weights[k] for k in keys], float)
    return keys[rng.choice(len(keys), p=p / p.sum())]


def _cap(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]


def write_story(
    lesson: str,
    lang: str,
    protagonist: str,
    other: str,
    verb: str,
    actor: bool,
    passive: bool,
    dialogue: bool,
    resolution: str,
) -> str:
    """One story from :data:`STORY_TEMPLATES`: ``protagonist`` is introduced, then acts on ``other`` with ``verb``
    (``actor=True``) or is acted upon by ``other`` (actively or, with ``passive``, in the passive); then the
    lesson's content sentence, an optional line of dialogue, and the ``resolution``."""
    t = STORY_TEMPLATES[check_language(lang, CODED_LANGUAGES)]
    p, o = noun_phrases(protagonist, lang), noun_phrases(other, lang)
    forms = VERBS[check_choice("verb", verb, VERBS)][lang]
    case = forms[3] if lang == "de" else "acc"
    subject, patient, patient_type = (p, o, other) if actor else (o, p, protagonist)
    if passive and forms[1] is not None:
        female = PERSON_TYPES[patient_type]["gender"] == "F"
        action = t["passive"].format(P_nom=patient["nom"], A_by=subject["by"], participle=forms[2 if female else 1])
    else:
        action = t["active"].format(A_nom=subject["nom"], verb=forms[0], P_obj=patient[case])
    both_f = PERSON_TYPES[protagonist]["gender"] == PERSON_TYPES[other]["gender"] == "F"
    female = PERSON_TYPES[protagonist]["gender"] == "F"
    parts = [t["intro"].format(P_indef=p["indef"], P_rel=p["rel"]), action, CONTENT_SENTENCES[lesson][lang]]
    if dialogue:
        parts.append(t["dialogue"].format(P_nom=p["nom"]))
    parts.append(
        t[resolution].format(
            P_nom=p["nom"], O_nom=o["nom"], friends=FRIENDS[lang][both_f], rich="rica" if female else "rico"
        )
    )
    return " ".join(_cap(s) for s in parts)


def generate_corpus(
    prior: StoryPrior,
    seed: int,
    stream: str,
    n_per_cell: int = 10,
    lessons: tuple[str, ...] = LESSONS,
    langs: tuple[str, ...] = CODED_LANGUAGES,
    content_swap: float = 0.0,
) -> list[Story]:
    """``n_per_cell`` stories per (lesson, language) drawn from ``prior`` with the seeded stream ``(seed, stream)``.
    ``content_swap`` is the chance that a story carries another lesson's content sentence instead of its own (a
    corpus whose lesson drifts: what similarity *should* catch)."""
    check_int("n_per_cell", n_per_cell, minimum=1)
    check_float("content_swap", content_swap, minimum=0.0, maximum=1.0)
    for lesson in lessons:
        check_choice("lesson", lesson, LESSONS)
    for lang in langs:
        check_language(lang, CODED_LANGUAGES)
    rng = make_rng(seed, "same_lesson", "corpus", stream)
    stories = []
    for lesson in lessons:
        for lang in langs:
            for _ in range(n_per_cell):
                protagonist = _pick(rng, prior.type_weights)
                other = _pick(rng, {t: 1.0 for t in PERSON_TYPES if t != protagonist})
                verb = list(VERBS)[rng.integers(len(VERBS))]
                actor = bool(rng.random() < prior.p_actor)
                passive = bool(rng.random() < prior.p_passive) and VERBS[verb][lang][1] is not None
                dialogue = bool(rng.random() < prior.p_dialogue)
                resolution = _pick(rng, prior.resolution_weights)
                told = lesson
                if rng.random() < content_swap:
                    told = [x for x in LESSONS if x != lesson][rng.integers(len(LESSONS) - 1)]
                text = write_story(told, lang, protagonist, other, verb, actor, passive, dialogue, resolution)
                spec = PERSON_TYPES[protagonist]
                truth = {
                    "protagonist_type": protagonist,
                    "gender": spec["gender"],
                    "age": spec["age"],
                    "social_role": spec["social_role"],
                    "role": "actor" if actor else "acted_upon",
                    "resolution": resolution,
                    "has_dialogue": dialogue,
                    "passive": passive,
                    "content_of": told,
                }
                stories.append(Story(lesson, lang, text, truth))
    return stories


def planted_corpora(
    seed: int, n_per_cell: int = 10, strength: float = 0.5, prior: StoryPrior | None = None
) -> dict[str, list[Story]]:
    """The chapter's central test set: a ``reference`` corpus from ``prior``, a ``planted`` corpus from the prior
    shifted by ``strength`` (:func:`planted_shift`) with the same lessons' content words, and a ``control`` corpus
    from the unshifted prior on an independent stream."""
    prior = prior or StoryPrior()
    return {
        "reference": generate_corpus(prior, seed, "reference", n_per_cell),
        "planted": generate_corpus(planted_shift(prior, strength), seed, "planted", n_per_cell),
        "control": generate_corpus(prior, seed, "control", n_per_cell),
    }


# ---------------------------------------------------------------------------------------------------------
# 8. The two evaluations on a (reference, candidate) pair

AGENCY_CODES: tuple[str, ...] = ("role", "gender", "age", "social_role")
STRUCTURE_CODES: tuple[str, ...] = ("resolution", "has_dialogue", "n_characters")


def code_corpus(stories: list[Story]) -> pd.DataFrame:
    """One row per story: lesson, language, :func:`code_story`'s codes, :func:`structure_features`, and the cosine
    of the story's concept vector to its lesson's (:func:`lesson_vector`, ``same_lesson-eq-cosine``)."""
    rows = []
    for story in stories:
        code = code_story(story.text, story.lang).as_dict()
        features = structure_features(story.text, story.lang)
        features.pop("resolution")
        similarity = cosine(concept_vector(story.text, story.lang), lesson_vector(story.lesson))
        rows.append({"lesson": story.lesson, "lang": story.lang, **code, **features, "cosine": similarity})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class SimilarityVerdict:
    """Similarity-only evaluation: mean story-to-lesson cosine of each corpus, the drop (reference − candidate)
    with its 95% bootstrap interval, and whether the drop stays within :data:`SIMILARITY_MARGIN`."""

    reference: Estimate
    candidate: Estimate
    drop: Estimate
    preserved: bool


def similarity_only(
    reference: pd.DataFrame,
    candidate: pd.DataFrame,
    rng: np.random.Generator,
    margin: float = SIMILARITY_MARGIN,
    draws: int = 2000,
    column: str = "cosine",
) -> SimilarityVerdict:
    """What an evaluation that looks only at semantic similarity concludes (Q1): *preserved* when the upper end of
    the bootstrap interval of mean cosine(reference) − mean cosine(candidate) is at most ``margin``
    (``same_lesson-eq-cosine``), the stories of each corpus resampled independently. ``column``: ``cosine``
    (concepts, story to lesson) or ``char_cosine`` (character n-grams, story to proverb: :func:`add_char_cosine`)."""
    check_float("margin", margin, minimum=0.0)
    check_choice("column", column, [c for c in ("cosine", "char_cosine") if c in reference and c in candidate])
    a, b = reference[column].to_numpy(float), candidate[column].to_numpy(float)
    means_a = a[rng.integers(0, len(a), (draws, len(a)))].mean(axis=1)
    means_b = b[rng.integers(0, len(b), (draws, len(b)))].mean(axis=1)
    value = float(a.mean() - b.mean())
    low, high = np.quantile(means_a - means_b, [0.025, 0.975])
    drop = Estimate(value, float(min(low, value)), float(max(high, value)))
    return SimilarityVerdict(bootstrap_mean(a, rng, draws), bootstrap_mean(b, rng, draws), drop, drop.high <= margin)


@dataclass(frozen=True)
class AgencyVerdict:
    """Agency + structure evaluation: the permutation tests of the agency codes and of the structure codes
    (:func:`redistribution_test`), the per-code table (:func:`variable_table`), and whether either test rejects at
    α/2 (Bonferroni over the two)."""

    agency: NullComparison
    structure: NullComparison
    table: pd.DataFrame
    shifted: bool


def agency_structure(
    reference: pd.DataFrame,
    candidate: pd.DataFrame,
    rng: np.random.Generator,
    n_permutations: int = 999,
    alpha: float = ALPHA,
) -> AgencyVerdict:
    """What an evaluation of agency, social positioning and structure concludes (Q2): the summed-JSD permutation
    test on :data:`AGENCY_CODES` and on :data:`STRUCTURE_CODES`; *shifted* when either p-value is below α/2."""
    check_float("alpha", alpha, minimum=0.0, maximum=1.0)
    agency = redistribution_test(reference, candidate, AGENCY_CODES, rng, n_permutations)
    structure = redistribution_test(reference, candidate, STRUCTURE_CODES, rng, n_permutations)
    table = variable_table(reference, candidate, AGENCY_CODES + STRUCTURE_CODES)
    shifted = min(agency.p_value, structure.p_value) < alpha / 2
    return AgencyVerdict(agency, structure, table, bool(shifted))


def evaluate_pair(
    reference: list[Story] | pd.DataFrame,
    candidate: list[Story] | pd.DataFrame,
    seed: int,
    n_permutations: int = 999,
    similarity_column: str = "cosine",
) -> dict:
    """Run both evaluations on a (reference, candidate) pair (the paper's warning, made testable): returns
    ``{"similarity": SimilarityVerdict, "agency": AgencyVerdict, "similarity_says_preserved": bool,
    "agency_says_shifted": bool}``."""
    frames = [x if isinstance(x, pd.DataFrame) else code_corpus(x) for x in (reference, candidate)]
    similarity = similarity_only(*frames, make_rng(seed, "same_lesson", "similarity"), column=similarity_column)
    agency = agency_structure(*frames, make_rng(seed, "same_lesson", "agency"), n_permutations)
    return {
        "similarity": similarity,
        "agency": agency,
        "similarity_says_preserved": similarity.preserved,
        "agency_says_shifted": agency.shifted,
    }
