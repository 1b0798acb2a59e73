"""The tiny model zoo: real ``transformers`` causal LMs trained here on the toy world, and a door to the Hub.

``load(name_or_hub_id)`` returns ``(model, tokenizer)`` (``(model, processor)`` for a vision-language model). A zoo
name (see :func:`list`) loads ``data/zoo/<name>/`` with ``AutoModelForCausalLM`` and ``AutoTokenizer``; anything
else is passed to ``from_pretrained`` as a Hugging Face model id or a local folder, which is how a chapter swaps
in a real model (in Colab, ``MODEL = "Qwen/Qwen2.5-0.5B-Instruct"``). Offline, a hub id fails with a short error
that names it and lists the zoo. ``python -m llmtheory.zoo train NAME`` rebuilds a checkpoint from its spec
(:data:`SPECS`).

The dual encoder (``clip-scenes``, spec :class:`~llmtheory.zoo.clip.CLIPSpec`) and any hub or folder whose
``model_type`` is in :data:`DUAL_ENCODER_TYPES` (``MODEL = "openai/clip-vit-base-patch32"``) load with
``AutoModel`` and ``AutoProcessor``.

The vision-language model (``vlm-llava``, spec :class:`~llmtheory.zoo.vlm.VLMSpec`) loads with
``AutoModelForImageTextToText`` and ``AutoProcessor``; so does a hub id whose config has a vision tower
(``MODEL = "llava-hf/llava-1.5-7b-hf"`` in Colab).
"""

from __future__ import annotations

import builtins
import difflib
import json
import os
from contextlib import contextmanager
from pathlib import Path

from ..params import ParameterError
from ..paths import data_dir
from .clip import CLIP_SPECS, CLIPSpec
from .specs import SPECS, ZooSpec
from .vlm import VLM_SPECS, VLMSpec

SPECS = {**SPECS, **VLM_SPECS, **CLIP_SPECS}
"""Every training spec: the causal LMs of :mod:`.specs`, the vision-language models of :mod:`.vlm` and the dual
encoders of :mod:`.clip`."""

DUAL_ENCODER_TYPES = ("clip", "siglip", "siglip2", "chinese_clip", "altclip")
"""``model_type`` values that load as dual encoders (``AutoModel`` + ``AutoProcessor``)."""

# `list` is left out of __all__ so that a star import never shadows the builtin.
__all__ = [
    "SPECS",
    "CLIPSpec",
    "VLMSpec",
    "ZooError",
    "ZooSpec",
    "card",
    "card_data",
    "load",
    "load_config",
    "model_dir",
]


class ZooError(LookupError):
    """A zoo model or hub id that cannot be loaded; the message lists the zoo's names."""


def list() -> builtins.list[str]:  # noqa: A001 - the issue's API name; builtins.list stays reachable
    """Names of the shipped zoo models (specs marked ``shipped``), in spec order."""
    return [name for name, spec in SPECS.items() if spec.shipped]


def display_name(name_or_path: str) -> str:
    """A model's name as a reader should see it: a local folder's own name (not this machine's path to it), a hub
    id as it is."""
    path = Path(name_or_path)
    return path.name if path.is_absolute() or path.is_dir() else name_or_path


def model_dir(name: str) -> Path:
    """``data/zoo/<name>/`` for a zoo name; a :class:`~llmtheory.params.ParameterError` listing them otherwise."""
    if name not in SPECS:
        raise ParameterError(f"{name!r} is not a zoo model{_suggest(name)}; zoo models: {', '.join(list())}")
    return data_dir() / "zoo" / name


def _suggest(name: str) -> str:
    close = difflib.get_close_matches(name, builtins.list(SPECS), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _offline() -> bool:
    """Whether the Hugging Face offline switch is on now (read at call time, not at import)."""
    return any(
        os.environ.get(v, "").lower() in ("1", "true", "yes", "on") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def card(name: str) -> str:
    """The model card (``README.md``) of zoo model ``name``."""
    return (_existing_dir(name) / "README.md").read_text()


def card_data(name: str) -> dict:
    """The measured numbers behind the card: spec, parameters, checkpoint size, times and metrics."""
    return json.loads((_existing_dir(name) / "card.json").read_text())


def card_matches_spec(name: str) -> bool:
    """Whether the spec recorded in ``name``'s card is its spec today: the same fields and values, where a field
    added to :class:`ZooSpec` after the model was built counts as recorded at its default (it cannot have changed
    the build)."""
    import dataclasses

    spec = SPECS[name]
    recorded, today = card_data(name)["spec"], json.loads(json.dumps(spec.as_dict()))
    defaults = {f.name: f.default for f in dataclasses.fields(spec) if f.default is not dataclasses.MISSING}
    added = {k: today[k] for k in today.keys() - recorded.keys()}
    later = all(k in defaults and json.loads(json.dumps(defaults[k])) == v for k, v in added.items())
    return later and recorded == {k: v for k, v in today.items() if k in recorded}


def _existing_dir(name: str) -> Path:
    folder = model_dir(name)
    if not (folder / "model.safetensors").is_file():
        raise ZooError(
            f"zoo model {name!r} has no checkpoint in {folder}; build it with `python -m llmtheory.zoo train {name}`"
        )
    return folder


def load(name_or_hub_id: str, *, attn_implementation: str | None = None, dtype=None, **kwargs):
    """``(model, tokenizer)`` for a zoo name, a local folder, or a Hugging Face hub id; the model is in eval mode.

    A vision-language model (a zoo spec of task ``"vlm"``, or a folder or hub id whose config has a
    ``vision_config``) gives ``(model, processor)`` through ``AutoModelForImageTextToText`` and ``AutoProcessor``.

    ``attn_implementation="eager"`` is needed for attention weights (``output_attentions=True``). Extra keyword
    arguments go to ``AutoModelForCausalLM.from_pretrained``.
    """
    if not isinstance(name_or_hub_id, str) or not name_or_hub_id:
        raise ParameterError(
            f"MODEL={name_or_hub_id!r} must be a zoo name or a hub id; zoo models: {', '.join(list())}"
        )
    if name_or_hub_id in SPECS:
        source: str | Path = _existing_dir(name_or_hub_id)
    else:
        source = name_or_hub_id
    options = dict(kwargs)
    if not isinstance(source, Path) and _offline():
        options.setdefault("local_files_only", True)  # fail at once (or load from the local cache), no retries
    if attn_implementation is not None:
        options["attn_implementation"] = attn_implementation
    if dtype is not None:
        options["dtype"] = dtype
    try:
        with _no_progress_bars(Path(source).is_dir()):  # a local model: "Loading weights" bars only add noise
            return _load(name_or_hub_id, source, options)
    except (OSError, ValueError) as error:
        if isinstance(source, Path):
            raise
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ZooError(
            f"could not load {name_or_hub_id!r}: it is not a zoo model{_suggest(name_or_hub_id)}, and as a "
            f"Hugging Face hub id it failed ({reason}). Offline (HF_HUB_OFFLINE=1) or without network only zoo "
            f"models load; zoo models: {', '.join(list())}"
        ) from None


def weight_count_bound(config) -> int:
    """An upper bound on a causal LM's parameter count from its config alone: per layer 4h² for attention (as if
    every head had its own keys and values) and 3h·I for a gated MLP (I = 4h when the config gives none), plus input
    and output embeddings (as if untied)."""
    hidden = config.hidden_size
    intermediate = getattr(config, "intermediate_size", None) or 4 * hidden
    per_layer = 4 * hidden * hidden + 3 * hidden * intermediate
    return config.num_hidden_layers * per_layer + 2 * config.vocab_size * hidden


def load_config(name_or_hub_id: str):
    """The ``transformers`` config of a zoo name, a local folder or a hub id, without the weights (offline, a hub id
    fails at once, as in :func:`load`): what a memory estimate needs before a model is loaded."""
    from transformers import AutoConfig

    source = _existing_dir(name_or_hub_id) if name_or_hub_id in SPECS else name_or_hub_id
    local_only = not isinstance(source, Path) and _offline()
    return AutoConfig.from_pretrained(source, local_files_only=local_only)


@contextmanager
def _no_progress_bars(quiet: bool):
    """Turn transformers' progress bars off inside the block when ``quiet`` (and back on after, if they were on)."""
    from transformers.utils import logging as hf_logging

    turn_off = quiet and hf_logging.is_progress_bar_enabled()
    if turn_off:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if turn_off:
            hf_logging.enable_progress_bar()


def _load(name: str, source, options: dict):
    """The body of :func:`load`: a vision-language model with its processor, or a causal LM with its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

    if _is_dual_encoder(name, source, options):
        from transformers import AutoModel, AutoProcessor

        processor = AutoProcessor.from_pretrained(source, local_files_only=options.get("local_files_only", False))
        model = AutoModel.from_pretrained(source, **options)
        model.eval()
        return model, processor
    if _is_vision_language(name, source, options):
        from transformers import AutoModelForImageTextToText, AutoProcessor

        local_only = options.get("local_files_only", False)
        processor = AutoProcessor.from_pretrained(source, local_files_only=local_only)
        model = AutoModelForImageTextToText.from_pretrained(source, **options)
        model.eval()
        return model, processor
    if isinstance(source, Path):
        # The zoo's word-level tokenizers load with the generic fast class: transformers 5 maps model_type
        # "qwen2" to Qwen2Tokenizer whatever tokenizer_config.json says, which rebuilds a byte-level BPE.
        tokenizer = PreTrainedTokenizerFast.from_pretrained(source)
    else:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=options.get("local_files_only", False))
    model = AutoModelForCausalLM.from_pretrained(source, **options)
    model.eval()
    return model, tokenizer


def _is_dual_encoder(name: str, source, options: dict) -> bool:
    """A zoo CLIP, or a folder / hub id whose ``model_type`` is a dual encoder's (read from its ``config.json``)."""
    if name in SPECS:
        return getattr(SPECS[name], "task", "") == "clip"
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(source, local_files_only=options.get("local_files_only", False))
    return getattr(config, "model_type", "") in DUAL_ENCODER_TYPES


def _is_vision_language(name: str, source, options: dict) -> bool:
    """A zoo VLM, or a folder / hub id whose config has a vision tower (read from its ``config.json``)."""
    if name in SPECS:
        return getattr(SPECS[name], "task", "") == "vlm"
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(source, local_files_only=options.get("local_files_only", False))
    return getattr(config, "vision_config", None) is not None
