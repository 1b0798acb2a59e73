"""The zoo's dual encoder: a tiny CLIP (``CLIPModel``: a text tower and a vision tower, each projected into one
shared space) trained here, contrastively, on the scenes of :mod:`llmtheory.scenes` and their captions.

It is the query–frame similarity model of the ``adaq`` chapter: a frame selector embeds the question with the text
tower and every frame with the vision tower and compares them by cosine similarity, exactly as it would with
``openai/clip-vit-base-patch32`` (the processor is a ``CLIPProcessor``, so the same code loads either).

Training pairs (one fresh batch per step): a random scene, drawn with Gaussian pixel noise (the frames of the
chapter's videos carry the same noise, so that no two frames are identical), and either its caption
(:func:`llmtheory.scenes.describe`, e.g. ``"a red circle , a blue cross"``) or, with probability
``spec.mention_share``, a *mention* of one of its objects (``"a blue cross"``): mentions teach the text tower that a
short query about one object should land near every frame that shows it. The loss is CLIP's symmetric InfoNCE
(``CLIPModel(..., return_loss=True)``): cross-entropy of the text→image and image→text softmaxes over the batch.

The tokenizer is word-level over the scene vocabulary (the one the zoo's LLaVA uses), with ``<bos>`` and ``<eos>``
around every text; the text tower pools at ``<eos>``. Deterministic as the rest of the zoo (seeded initialisation
inside ``fork_rng``, keyed data streams, no dropout, one thread).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import scenes as sc
from ..seeding import make_rng
from .cards import rebuild_and_tables, training_time, versions
from .train import TrainResult, optimise, torch_threads, write_log_and_card

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
IMAGE_MEAN = (0.5, 0.5, 0.5)
IMAGE_STD = (0.5, 0.5, 0.5)
MAX_TEXT = 48
"""Longest text in tokens (a caption of six objects and a logo-free scene is 26 words)."""


@dataclass(frozen=True)
class CLIPSpec:
    """How the dual encoder is built and trained (the single source of truth for its checkpoint).

    ``noise``: standard deviation of the Gaussian pixel noise, as a fraction of the 0–255 range.
    ``mention_share``: share of the training texts that mention one object of the scene instead of captioning all.
    """

    name: str
    summary: str
    vision_hidden: int = 64
    vision_layers: int = 2
    vision_heads: int = 4
    vision_intermediate: int = 128
    text_hidden: int = 64
    text_layers: int = 2
    text_heads: int = 4
    text_intermediate: int = 128
    projection_dim: int = 64
    steps: int = 600
    batch_size: int = 128
    learning_rate: float = 2e-3
    warmup: int = 100
    weight_decay: float = 0.01
    noise: float = 0.08
    mention_share: float = 0.5
    seed: int = 0
    eval_every: int = 200
    eval_items: int = 512
    """Held-out scenes in the final retrieval measurement."""
    shipped: bool = True
    notes: str = field(default="", compare=False)
    family: str = "clip"
    task: str = "clip"

    def as_dict(self) -> dict:
        return asdict(self)


CLIP_SPECS: dict[str, CLIPSpec] = {
    s.name: s
    for s in (
        CLIPSpec(
            name="clip-scenes",
            summary="CLIP (text and vision towers, 2 layers each, hidden 64, shared space of 64) that matches "
            "scenes of coloured shapes with their captions",
        ),
        # Micro spec: not shipped, for tests (trains in seconds).
        CLIPSpec(
            name="micro-clip",
            summary="micro CLIP for tests",
            vision_hidden=16,
            vision_layers=1,
            vision_heads=2,
            vision_intermediate=32,
            text_hidden=16,
            text_layers=1,
            text_heads=2,
            text_intermediate=32,
            projection_dim=16,
            steps=4,
            batch_size=8,
            warmup=2,
            eval_every=2,
            eval_items=16,
            shipped=False,
        ),
    )
}


# --------------------------------------------------------------------------------------------------------------
# Tokenizer, processor, model
# --------------------------------------------------------------------------------------------------------------


def vocabulary() -> list[str]:
    specials = [PAD, UNK, BOS, EOS]
    return specials + [w for w in sc.vocabulary() if w not in specials]


def build_tokenizer(model_max_length: int = MAX_TEXT):
    """A word-level ``PreTrainedTokenizerFast`` that wraps every text in ``<bos> ... <eos>`` (CLIP pools at
    ``<eos>``)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(vocabulary())}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}",
        pair=f"{BOS} $A {EOS} $B {EOS}",
        special_tokens=[(BOS, vocab[BOS]), (EOS, vocab[EOS])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token=UNK,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        padding_side="right",
        model_max_length=model_max_length,
    )


def build_processor(tokenizer=None):
    """``CLIPProcessor`` with a CLIP image processor that only rescales and normalises (scenes are drawn at the
    vision tower's resolution)."""
    from transformers import CLIPImageProcessorPil, CLIPProcessor

    image_processor = CLIPImageProcessorPil(
        do_resize=False,
        do_center_crop=False,
        image_mean=list(IMAGE_MEAN),
        image_std=list(IMAGE_STD),
        size={"height": sc.IMAGE_SIZE, "width": sc.IMAGE_SIZE},
        crop_size={"height": sc.IMAGE_SIZE, "width": sc.IMAGE_SIZE},
    )
    return CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer or build_tokenizer())


def build_config(spec: CLIPSpec, tokenizer):
    from transformers import CLIPConfig

    text = dict(
        vocab_size=len(tokenizer),
        hidden_size=spec.text_hidden,
        intermediate_size=spec.text_intermediate,
        num_hidden_layers=spec.text_layers,
        num_attention_heads=spec.text_heads,
        max_position_embeddings=MAX_TEXT,
        projection_dim=spec.projection_dim,
        attention_dropout=0.0,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    vision = dict(
        hidden_size=spec.vision_hidden,
        intermediate_size=spec.vision_intermediate,
        num_hidden_layers=spec.vision_layers,
        num_attention_heads=spec.vision_heads,
        image_size=sc.IMAGE_SIZE,
        patch_size=sc.CELL,
        projection_dim=spec.projection_dim,
        attention_dropout=0.0,
    )
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=spec.projection_dim)


def build_model(spec: CLIPSpec, tokenizer):
    """A freshly initialised ``CLIPModel`` (seeded, global RNG state untouched)."""
    from transformers import CLIPModel

    with torch.random.fork_rng():
        torch.manual_seed(spec.seed)
        return CLIPModel(build_config(spec, tokenizer))


# --------------------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------------------


def noisy(image: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    """``image`` plus Gaussian pixel noise of standard deviation ``noise`` × 255, clipped to ``uint8``."""
    if noise <= 0:
        return image
    return np.clip(image + rng.normal(0.0, 255.0 * noise, image.shape), 0, 255).astype(np.uint8)


def mention(thing: sc.Thing) -> str:
    """The words that name one object: ``"a red circle"`` (a caption's item)."""
    return f"a {thing.colour} {thing.shape}"


def pixel_values(images) -> torch.Tensor:
    """(batch, 3, H, W) float tensor of ``uint8`` images, normalised as the processor does."""
    array = np.asarray(images, dtype=np.float32) / 255.0
    array = (array - np.asarray(IMAGE_MEAN, np.float32)) / np.asarray(IMAGE_STD, np.float32)
    return torch.from_numpy(np.ascontiguousarray(array.transpose(0, 3, 1, 2)))


def encode_texts(tokenizer, texts) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids`` and ``attention_mask`` (the processor's output, built directly)."""
    out = tokenizer(list(texts), padding=True, return_tensors="pt")
    return {"input_ids": out["input_ids"], "attention_mask": out["attention_mask"]}


def training_batch(spec: CLIPSpec, rng: np.random.Generator) -> tuple[list[np.ndarray], list[str]]:
    """``spec.batch_size`` noisy scenes and their texts (a caption, or a mention of one object)."""
    images, texts = [], []
    for _ in range(spec.batch_size):
        scene = sc.make_scene(rng)
        images.append(noisy(scene.image(), rng, spec.noise))
        if rng.random() < spec.mention_share:
            texts.append(mention(scene.things[int(rng.integers(len(scene.things)))]))
        else:
            texts.append(sc.describe(scene))
    return images, texts


def make_inputs(tokenizer, images, texts) -> dict[str, torch.Tensor]:
    return encode_texts(tokenizer, texts) | {"pixel_values": pixel_values(images)}


# --------------------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------------------


def train(spec: CLIPSpec, out_dir: Path | None = None, *, progress: bool = True, threads: int = 1) -> TrainResult:
    """Train ``spec`` from scratch with the zoo's loop (:func:`~llmtheory.zoo.train.optimise`) on CLIP's symmetric
    InfoNCE; if ``out_dir`` is given, save model, processor, log and card there."""
    start_total = time.perf_counter()
    with torch_threads(threads):
        tokenizer = build_tokenizer()
        model = build_model(spec, tokenizer)
        rng = make_rng(spec.seed, "zoo", "clip", "train")
        run = optimise(
            spec,
            model,
            lambda step: make_inputs(tokenizer, *training_batch(spec, rng)) | {"return_loss": True},
            lambda: retrieval_report(model, tokenizer, spec, n=max(spec.eval_items // 4, 16)),
            lambda metrics: {k: round(metrics[k], 2) for k in ("caption_top1", "mention_auc")},
            progress=progress,
        )
        model.eval()
        metrics = retrieval_report(model, tokenizer, spec, n=spec.eval_items)
        result = run.result(spec, model, metrics, start_total)
        if out_dir is not None:
            save(result, model, tokenizer, Path(out_dir))
        return result


def save(result: TrainResult, model, tokenizer, out_dir: Path) -> None:
    """Write ``model.safetensors``, config, processor (tokenizer included), training log and card."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    build_processor(tokenizer).save_pretrained(out_dir)
    write_log_and_card(result, out_dir, card_markdown)


# --------------------------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------------------------

GALLERY = 16
"""Candidate frames per caption in the retrieval measurement (chance: 1/16)."""


@torch.no_grad()
def embed(model, tokenizer, images=None, texts=None, batch_size: int = 256):
    """Unit-norm embeddings ``(images, texts)`` in the shared space (either may be ``None``)."""
    out = []
    if images is not None:
        parts = [
            model.get_image_features(pixel_values=pixel_values(images[i : i + batch_size])).pooler_output
            for i in range(0, len(images), batch_size)
        ]
        out.append(torch.nn.functional.normalize(torch.cat(parts), dim=-1))
    else:
        out.append(None)
    if texts is not None:
        features = model.get_text_features(**encode_texts(tokenizer, texts)).pooler_output
        out.append(torch.nn.functional.normalize(features, dim=-1))
    else:
        out.append(None)
    return tuple(out)


@torch.no_grad()
def retrieval_report(model, tokenizer, spec: CLIPSpec, *, n: int = 512, seed: int = 0) -> dict:
    """Held-out retrieval, on scenes from a stream training never draws from (``"clip-eval"``):

    * ``caption_top1``: a caption picks its own frame among ``GALLERY`` noisy frames (chance ``1/GALLERY``);
    * ``mention_auc``: for a mention ``"a red circle"``, the probability that a frame showing that object scores
      above a frame that does not (area under the ROC curve; chance 0.5), over ``GALLERY``-frame galleries;
    * ``mention_top1``: the best-scoring frame of the gallery shows the mentioned object (chance: the share of
      frames that show it, ``mention_chance``).
    """
    model.eval()
    rng = make_rng(seed, "clip-eval")
    scenes = [sc.make_scene(rng) for _ in range(n)]
    images = [noisy(s.image(), rng, spec.noise) for s in scenes]
    image_emb, caption_emb = embed(model, tokenizer, images, [sc.describe(s) for s in scenes])
    targets = [scenes[i].things[int(rng.integers(len(scenes[i].things)))] for i in range(n)]
    _, mention_emb = embed(model, tokenizer, texts=[mention(t) for t in targets])
    top1, auc, mention_top1, chance = [], [], [], []
    for start in range(0, n - GALLERY + 1, GALLERY):
        block = slice(start, start + GALLERY)
        scores = caption_emb[block] @ image_emb[block].T
        top1 += (scores.argmax(1) == torch.arange(GALLERY)).tolist()
        m_scores = (mention_emb[block] @ image_emb[block].T).numpy()
        for row, target in enumerate(targets[block]):
            shows = np.array(
                [(target.colour, target.shape) in {(t.colour, t.shape) for t in s.things} for s in scenes[block]]
            )
            positive, negative = m_scores[row, shows], m_scores[row, ~shows]
            if len(negative):
                auc.append(float((positive[:, None] > negative[None, :]).mean()))
            mention_top1.append(bool(shows[int(m_scores[row].argmax())]))
            chance.append(float(shows.mean()))
    return {
        "caption_top1": float(np.mean(top1)),
        "caption_chance": 1.0 / GALLERY,
        "mention_auc": float(np.mean(auc)),
        "mention_top1": float(np.mean(mention_top1)),
        "mention_chance": float(np.mean(chance)),
    }


# --------------------------------------------------------------------------------------------------------------
# The model card
# --------------------------------------------------------------------------------------------------------------


def spec_from_dict(data: dict) -> CLIPSpec:
    return CLIPSpec(**data)


def card_markdown(card: dict) -> str:
    """The model card of the dual encoder, from its ``card.json`` dictionary."""
    spec = spec_from_dict(card["spec"])
    m = card["metrics"]
    config_rows = [
        ("class", "`CLIPModel` (processor: `CLIPProcessor` with `CLIPImageProcessorPil` and a word-level tokenizer)"),
        (
            "vision tower",
            f"{spec.vision_layers} layers, hidden {spec.vision_hidden}, {spec.vision_heads} heads, MLP "
            f"{spec.vision_intermediate}; {sc.IMAGE_SIZE}×{sc.IMAGE_SIZE} pixels in {sc.CELL}×{sc.CELL} patches",
        ),
        (
            "text tower",
            f"{spec.text_layers} layers, hidden {spec.text_hidden}, {spec.text_heads} heads, MLP "
            f"{spec.text_intermediate}; word-level vocabulary of {len(vocabulary())} tokens, pooled at `<eos>`",
        ),
        ("shared space", f"{spec.projection_dim} dimensions, cosine similarity, learned temperature"),
        ("parameters", f"{card['parameters']:,}"),
        ("checkpoint (safetensors, float32)", f"{card['checkpoint_bytes'] / 2**20:.2f} MiB"),
    ]
    training_rows = [
        (
            "data",
            f"fresh scenes of `llmtheory.scenes` every step ({sc.MIN_OBJECTS}–{sc.MAX_OBJECTS} shapes and a logo on "
            f"a {sc.GRID}×{sc.GRID} grid) with Gaussian pixel noise of {100 * spec.noise:.0f}% of the range; text: "
            f"the caption (`scenes.describe`) or, {100 * spec.mention_share:.0f}% of the time, one object "
            f"(`a red circle`); {spec.steps} steps × {spec.batch_size} = {spec.steps * spec.batch_size:,} pairs",
        ),
        ("loss", "CLIP's symmetric InfoNCE over the batch (`CLIPModel(..., return_loss=True)`)"),
        (
            "optimiser",
            f"AdamW, peak lr {spec.learning_rate:g}, warm-up {spec.warmup}, cosine to 10%, clip 1.0, weight decay "
            f"{spec.weight_decay:g}",
        ),
        ("seed", spec.seed),
        ("training time", training_time(card)),
        ("final training loss", f"{card['final_loss']:.3f}"),
        ("versions", versions(card)),
    ]
    if spec.notes:
        training_rows.append(("note", spec.notes))
    retrieval_rows = [
        (
            f"a caption picks its own frame among {GALLERY} (top-1)",
            f"{100 * m['caption_top1']:.1f}%",
            f"{100 * m['caption_chance']:.1f}%",
        ),
        (
            "a mention (`a red circle`): the best frame of the gallery shows it",
            f"{100 * m['mention_top1']:.1f}%",
            f"{100 * m['mention_chance']:.1f}%",
        ),
        ("a mention: a frame showing it scores above one that does not (AUC)", f"{m['mention_auc']:.3f}", "0.500"),
    ]
    lines = [
        f"# {card['name']}",
        "",
        f"{spec.summary}. A tiny dual encoder of the book *Advances in LLM Theory, Executed*, trained from scratch",
        "on the synthetic scenes of `llmtheory.scenes`; it has never seen a photograph or a sentence.",
        "",
        "```python",
        "from llmtheory import zoo, scenes",
        "from llmtheory.seeding import make_rng",
        f'model, processor = zoo.load("{card["name"]}")  # CLIPModel + CLIPProcessor',
        'scene = scenes.make_scene(make_rng(0, "demo"))',
        'inputs = processor(text=[scenes.describe(scene), "a red circle"], images=[scene.image()],',
        '                   return_tensors="pt", padding=True)',
        "similarity = model(**inputs).logits_per_image  # (1 image, 2 texts)",
        "```",
        "",
        *rebuild_and_tables(card["name"], config_rows, training_rows),
        "## Measured behaviour",
        "",
        f"Text→frame retrieval on {spec.eval_items} held-out noisy scenes (a stream the training never drew from), in",
        f"galleries of {GALLERY} frames, against chance:",
        "",
        "| measurement | accuracy | chance |",
        "|---|---|---|",
        *(f"| {a} | {b} | {c} |" for a, b, c in retrieval_rows),
        "",
        "## What it can and cannot do",
        "",
        "- Tells which of a handful of scenes a caption describes, and ranks the frames that show a named object",
        "  (`a red circle`) above those that do not: a query–frame similarity for frame selection.",
        "- Knows only the words of the scene captions. A question (`what colour is the square that appears ?`)",
        "  contains words it never saw in training; their embeddings are untrained, and how much the question still",
        "  lands near the frames that show its object is measured by the `adaq` chapter, not promised here.",
        "- Sees only scenes of this generator: 96×96 pixels, a 6×6 grid, five shapes, six colours, one logo.",
        "",
    ]
    return "\n".join(lines)


def table() -> str:
    """A markdown table of the shipped dual encoders (for the zoo page, between ``<!-- clip-table -->`` marks)."""
    from . import SPECS, card_data, list

    rows = [
        "| model | parameters | checkpoint | training time (wall / CPU) | caption → its frame of 16 | mention AUC |",
        "|---|---|---|---|---|---|",
    ]
    for name in list():
        if SPECS[name].task != "clip":
            continue
        data = card_data(name)
        m = data["metrics"]
        rows.append(
            f"| `{name}` | {data['parameters']:,} | {data['checkpoint_bytes'] / 2**20:.1f} MiB | "
            f"{data['train_seconds']:.0f} s / {data['cpu_seconds']:.0f} s | {100 * m['caption_top1']:.1f}% "
            f"(chance {100 * m['caption_chance']:.1f}%) | {m['mention_auc']:.3f} |"
        )
    return "\n".join(rows)
