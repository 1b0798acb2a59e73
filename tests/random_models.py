"""Small randomly initialised causal LMs of architectures the zoo does not have, saved like a hub download.

A chapter's real-model path (`MODEL=<folder>`) is tested on them: nothing keyed to the zoo's four families may
break, and a model that knows nothing must end in "not testable", never in a crash. The tokenizer is the zoo's
word-level one (from `tokenizer_from`), so prompts of the toy world tokenize; the weights know nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import transformers

from llmtheory import scenes as sc
from llmtheory import zoo
from llmtheory.zoo import vlm as zvlm

ARCHITECTURES: dict[str, tuple[str, str, dict]] = {
    # name: (config class, model class, architecture-specific settings); 2 layers, GQA (4 query / 2 KV heads)
    "mistral": ("MistralConfig", "MistralForCausalLM", {"sliding_window": None}),
    "phi3": ("Phi3Config", "Phi3ForCausalLM", {}),
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM", {"head_dim": 16, "query_pre_attn_scalar": 16}),
}


def save_random_causal_lm(
    architecture: str, folder: Path, *, tokenizer_from: str = "fact-llama-h64", seed: int = 0, layers: int = 2
) -> Path:
    """Write a random ``architecture`` model (one of :data:`ARCHITECTURES`) and a zoo tokenizer to ``folder``."""
    config_name, model_name, extra = ARCHITECTURES[architecture]
    tokenizer = zoo.load(tokenizer_from)[1]
    config = getattr(transformers, config_name)(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **extra,
    )
    torch.manual_seed(seed)
    model = getattr(transformers, model_name)(config).eval()
    folder = Path(folder)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def run_chapter_on_model(slug: str, folder: Path, workdir: Path, monkeypatch, **parameters) -> dict:
    """Execute chapter ``slug`` at the smoke tier with ``MODEL=<folder>`` (plus ``parameters``); return its ledger."""
    import papermill

    from llmtheory.paths import repo_root

    monkeypatch.setenv("LLMTHEORY_CLAIMS_DIR", str(workdir / "claims"))
    notebook = repo_root() / "notebooks" / f"{slug}.ipynb"
    papermill.execute_notebook(
        str(notebook),
        str(workdir / "out.ipynb"),
        parameters={"SCALE": "smoke", "MODEL": str(folder), **parameters},
        cwd=str(notebook.parent),
        kernel_name="python3",
        progress_bar=False,
    )
    return json.loads((workdir / "claims" / "smoke" / f"{slug}.json").read_text())


def byte_level_tokenizer():
    """A Llama-style tokenizer (byte-level BPE, an ``<image>`` special token, no ``USER`` token): LLaVA-1.5's
    template is then used, and most answers are no single vocabulary entry ("red" is split, "Red" too)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = [f"USER: <image>\n{w.capitalize()} is it? Answer with one word. ASSISTANT: {w}" for w in sc.vocabulary()]
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    specials = ["<pad>", "<s>", "</s>", "<image>"]
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    core.train_from_iterator(
        corpus, trainers.BpeTrainer(vocab_size=300, special_tokens=specials, initial_alphabet=alphabet)
    )
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", bos_token="<s>", eos_token="</s>")


def save_random_llava(folder: Path, seed: int = 0, tokenizer=None) -> Path:
    """A random ``LlavaForConditionalGeneration`` (64 px images, 16 visual tokens; Llama hidden 48, 3 layers, 6 query
    / 2 KV heads) and its processor, with the zoo's word-level tokenizer so that the scenes' questions tokenize (or
    ``tokenizer``, whose image token is ``<image>``)."""
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tokenizer = tokenizer or zvlm.build_tokenizer()
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                              image_size=64, patch_size=16, projection_dim=32)  # fmt: skip
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=48, intermediate_size=80, num_hidden_layers=3,
                       num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=128,
                       pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                       eos_token_id=tokenizer.eos_token_id)  # fmt: skip
    image_token = tokenizer.convert_tokens_to_ids(zvlm.IMAGE if zvlm.IMAGE in tokenizer.get_vocab() else "<image>")
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=image_token, image_seq_length=16,
                         vision_feature_layer=-1, vision_feature_select_strategy="default")  # fmt: skip
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    image_processor = CLIPImageProcessorPil(do_resize=True, size={"height": 64, "width": 64}, do_center_crop=False,
                                            image_mean=[0.5] * 3, image_std=[0.5] * 3)  # fmt: skip
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=16,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1)  # fmt: skip
    folder = Path(folder)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
