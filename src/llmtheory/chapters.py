"""The book's table of contents as data: the twenty papers, their slugs, titles and parts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .paths import repo_root

PARTS: tuple[str, ...] = (
    "Part I. Theory, checked numerically",
    "Part II. When LLM outputs go wrong",
    "Part III. Efficient inference",
    "Part IV. Training and reasoning",
    "Part V. Agents and discovery",
    "Part VI. Culture and society",
)


@dataclass(frozen=True)
class Chapter:
    slug: str
    part: int  # 1-based index into PARTS
    title: str

    @property
    def part_name(self) -> str:
        return PARTS[self.part - 1]

    def notebook(self, root: Path | None = None) -> Path:
        return (root or repo_root()) / "notebooks" / f"{self.slug}.ipynb"


CHAPTERS: tuple[Chapter, ...] = (
    Chapter("spectral_ball", 1, "Uniform Sampling from High-dimensional Spectral Norm Balls"),
    Chapter("augmentation_fourier", 1, "Data Augmentation: A Fourier Analysis Perspective"),
    Chapter("rkhs_rates", 1, "Generalized nonparametric regression in RKHS: consistency and rates"),
    Chapter("scaling_exponents", 1, "On the Smallness of the Large Language Models Scaling Exponents"),
    Chapter("plasticity", 1, "Can Scale Save Us From Plasticity Loss in Large Language Models?"),
    Chapter("grad_detect", 2, "Grad Detect: Gradient-Based Hallucination Detection in LLMs"),
    Chapter("pigeonholing", 2, "Pigeonholing: Bad prompts hurt models to collapse and make mistakes"),
    Chapter("entrainment", 2, "Sentence-Level Contextual Entrainment in Large Language Models"),
    Chapter("compresskv", 3, "CompressKV: Semantic-Retrieval-Guided KV-Cache Compression"),
    Chapter("priortr", 3, "Accelerating Multimodal LLMs with Prior-Corrected Token Reduction"),
    Chapter("clse", 3, "Spectral Evolution-Guided Token Pruning in Multimodal LLMs"),
    Chapter("adaq", 3, "Long Video Understanding via Adaptive Quasi-Gaussian Sampling"),
    Chapter("enerinfer", 3, "EnerInfer: Energy-Aware On-Device LLM Inference"),
    Chapter("sgpo", 4, "Beyond Trajectory Imitation: Strategy-Guided Policy Optimization"),
    Chapter("scaletot", 4, "ScaleToT: Structured LLM Reasoning for Low-Activity User Modeling"),
    Chapter("metagente", 5, "Automated Summarization of Software Documents: a Multi-Agent Approach"),
    Chapter("autospec", 5, "AutoSpec: Safety Rule Evolution for LLM Agents via ILP"),
    Chapter("qldpc_sce", 5, "LLM Discovery of Quantum LDPC Codes through Structured Concept Evolution"),
    Chapter("bechdel", 6, "Do Language Models Pass the Bechdel Test?"),
    Chapter("same_lesson", 6, "Same Lesson, Different Story: Cross-Lingual Cultural Narratives"),
)

_BY_SLUG = {c.slug: c for c in CHAPTERS}


def chapter(slug: str) -> Chapter:
    """The chapter named ``slug``; a ``KeyError`` lists every slug when it is unknown."""
    try:
        return _BY_SLUG[slug]
    except KeyError:
        raise KeyError(f"unknown chapter {slug!r}; the chapters are: {', '.join(_BY_SLUG)}") from None


def written_chapters(root: Path | None = None) -> list[Chapter]:
    """Chapters whose notebook exists, in book order."""
    return [c for c in CHAPTERS if c.notebook(root).is_file()]
