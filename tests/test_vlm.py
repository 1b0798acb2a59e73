"""The zoo's vision-language model and the tools the visual-token chapters share.

The tools are checked on a freshly initialised micro LLaVA (exact identities need no training); the shipped model
is checked for loading through the Auto classes and for looking where the answer is, on a small sample.
"""

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForImageTextToText, AutoProcessor

from llmtheory import scenes as sc
from llmtheory import vlm, zoo
from llmtheory.params import ParameterError
from llmtheory.seeding import make_rng
from llmtheory.zoo import vlm as zvlm

NAME = "vlm-llava"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def micro():
    tokenizer = zvlm.build_tokenizer()
    model = zvlm.build_model(zoo.SPECS["micro-vlm"], tokenizer).eval()
    return model, tokenizer


@pytest.fixture(scope="module")
def batch(micro):
    _, tokenizer = micro
    rng = make_rng(0, "test_vlm")
    items = [sc.sample(rng, [kind]) for kind in ("colour", "shape", "count", "exist", "logo")]
    # Questions of different lengths: the batch is right-padded.
    return zvlm.make_inputs(tokenizer, [s.image() for s, _ in items], [q.text for _, q in items])


def test_processor_and_fast_batches_agree(micro):
    _, tokenizer = micro
    processor = zvlm.build_processor(tokenizer)
    scene, question = sc.sample(make_rng(1, "processor"))
    expected = processor(images=[scene.image()], text=[zvlm.prompt(question.text)], return_tensors="pt")
    ours = zvlm.make_inputs(tokenizer, [scene.image()], [question.text])
    assert torch.equal(expected["input_ids"], ours["input_ids"])
    assert torch.allclose(expected["pixel_values"], ours["pixel_values"])
    tokens = tokenizer.convert_ids_to_tokens(ours["input_ids"][0])
    assert tokens.count(zvlm.IMAGE) == sc.GRID * sc.GRID and tokens[2 + sc.GRID * sc.GRID] == "\n"
    assert zvlm.UNK not in tokens


def test_a_finer_patch_grid_gives_144_visual_tokens_and_the_processors_inputs(tmp_path):
    from dataclasses import replace

    spec = replace(zoo.SPECS["micro-vlm"], patch=8)
    tokenizer = zvlm.build_tokenizer(zvlm.max_length(spec.geometry))
    model = zvlm.build_model(spec, tokenizer).eval()
    assert zvlm.geometry_of(model) == sc.FINE and model.config.image_seq_length == 144
    processor = zvlm.build_processor(tokenizer, sc.FINE)
    assert zvlm.geometry_of(processor) == sc.FINE
    scene, question = sc.sample(make_rng(1, "processor"), geometry=sc.FINE)
    expected = processor(images=[scene.image()], text=[zvlm.prompt(question.text)], return_tensors="pt")
    ours = zvlm.make_inputs(tokenizer, [scene.image()], [question.text], geometry=sc.FINE)
    assert torch.equal(expected["input_ids"], ours["input_ids"])
    assert torch.allclose(expected["pixel_values"], ours["pixel_values"])
    assert tokenizer.convert_ids_to_tokens(ours["input_ids"][0]).count(zvlm.IMAGE) == 144
    with torch.no_grad():
        assert model(**ours).logits.shape[1] == ours["input_ids"].shape[1]


def test_the_transplant_embeds_a_uniform_patch_as_the_parent_embedded_its_cell():
    from dataclasses import replace

    parent_spec = zoo.SPECS["micro-vlm"]
    parent = zvlm.build_model(parent_spec, zvlm.build_tokenizer()).eval()
    child = zvlm.build_model(replace(parent_spec, patch=8), zvlm.build_tokenizer(zvlm.max_length(sc.FINE))).eval()
    zvlm.transplant(parent, child)
    text = dict(parent.model.language_model.named_parameters())
    assert all(torch.equal(v, text[k]) for k, v in child.model.language_model.named_parameters())
    image = torch.zeros(1, 3, 96, 96)
    image[..., :16, :16] = torch.tensor([0.3, -0.5, 0.9])[:, None, None]  # cell 0 in one colour
    with torch.no_grad():
        coarse = parent.model.vision_tower.embeddings(image)
        fine = child.model.vision_tower.embeddings(image)
    # the four patches of cell 0 (tokens 1, 2, 13, 14 after [CLS]) embed as the parent's token of cell 0
    for token in (1, 2, 13, 14):
        torch.testing.assert_close(fine[0, token], coarse[0, 1])
    torch.testing.assert_close(fine[0, 0], coarse[0, 0])
    with pytest.raises(ValueError, match="transplant"):
        zvlm.transplant(child, parent)


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_dropping_nothing_matches_the_normal_forward_exactly(micro, batch, layer):
    model, _ = micro
    with torch.no_grad():
        reference = model(**batch).logits
    out = vlm.forward_dropping_visual_tokens(model, batch, layer)
    assert torch.equal(out.logits, reference)
    assert torch.equal(out.positions, torch.arange(batch["input_ids"].shape[1]).expand_as(out.positions))


def test_dropping_at_the_input_equals_masking_those_tokens_out(micro, batch):
    model, _ = micro
    n = len(batch["input_ids"])
    keep = torch.ones(n, sc.GRID * sc.GRID, dtype=torch.bool)
    dropped = torch.tensor([[0, 7, 20], [1, 2, 3], [35, 34, 10], [5, 6, 30], [11, 12, 13]])
    keep[torch.arange(n)[:, None], dropped] = False
    out = vlm.forward_dropping_visual_tokens(model, batch, 0, keep)
    positions = vlm.image_positions(model, batch["input_ids"])
    mask = batch["attention_mask"].clone()
    mask[torch.arange(n)[:, None], positions.gather(1, dropped)] = 0
    with torch.no_grad():
        masked = model(**(batch | {"attention_mask": mask})).logits
    last = vlm.last_positions(batch["attention_mask"])
    assert torch.allclose(out.last_logits, masked[torch.arange(n), last], atol=1e-5)
    assert out.logits.shape[1] == batch["input_ids"].shape[1] - 3
    # the kept tokens keep their original positions
    assert not bool(torch.isin(positions.gather(1, dropped)[0], out.positions[0]).any())


def test_a_keep_rule_sees_the_attention_of_the_layers_already_run(micro, batch):
    model, _ = micro
    seen = {}

    def fastv(context):  # the last token's head-mean attention at the last layer before pruning, top 9
        seen["n"] = len(context.attentions)
        seen["hidden"] = len(context.hidden)
        attention = context.attentions[-1].mean(1)
        rows = attention[torch.arange(len(attention)), context.last_positions]
        return rows.gather(1, context.image_positions).topk(9).indices

    out = vlm.forward_dropping_visual_tokens(model, batch, 2, fastv, attentions=True)
    assert seen == {"n": 2, "hidden": 3}
    assert out.kept.shape == (len(batch["input_ids"]), 9)
    assert model.config._attn_implementation != "eager"  # switched back after the call
    with pytest.raises(ParameterError, match="same number"):
        bad = torch.zeros(len(batch["input_ids"]), 36, dtype=torch.bool)
        bad[0, 0] = True
        vlm.forward_dropping_visual_tokens(model, batch, 1, bad)


def test_text_to_image_attention_and_visual_hidden_states(micro, batch):
    model, _ = micro
    n_layers = model.config.text_config.num_hidden_layers
    attention = vlm.text_to_image_attention(model, batch)
    n, seq = batch["input_ids"].shape
    heads = model.config.text_config.num_attention_heads
    assert attention.shape == (n_layers, n, heads, seq, sc.GRID * sc.GRID)
    assert bool((attention.sum(-1) <= 1 + 1e-5).all())
    null = vlm.null_positions(model, batch["input_ids"])
    assert torch.equal(batch["input_ids"][torch.arange(n), null], torch.full((n,), batch["input_ids"][0, null[0]]))
    first_image = vlm.image_positions(model, batch["input_ids"])[0, 0]
    assert float(attention[:, 0, :, first_image, 0].min()) > 0  # the first image token sees itself
    assert model.config._attn_implementation != "eager"
    states = vlm.visual_hidden_states(model, batch)
    assert states.shape == (n_layers + 1, n, sc.GRID, sc.GRID, model.config.text_config.hidden_size)
    features = model.model.get_image_features(pixel_values=batch["pixel_values"], return_dict=True).pooler_output
    assert torch.allclose(states[0].reshape(n, -1, states.shape[-1]), torch.stack(list(features)), atol=1e-6)


def test_micro_spec_trains_end_to_end_deterministically(tmp_path):
    spec = zoo.SPECS["micro-vlm"]
    first = zvlm.train(spec, tmp_path / "a", progress=False)
    zvlm.train(spec, tmp_path / "b", progress=False)
    a, b = (load_file(tmp_path / d / "model.safetensors") for d in "ab")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert {"acc_colour", "local", "global", "masked_answer_local", "dropped_answer_local"} <= first.metrics.keys()
    model = AutoModelForImageTextToText.from_pretrained(tmp_path / "a")
    processor = AutoProcessor.from_pretrained(tmp_path / "a")
    assert type(model).__name__ == "LlavaForConditionalGeneration"
    assert type(processor).__name__ == "LlavaProcessor"
    assert "micro-vlm" in (tmp_path / "a" / "README.md").read_text()
    assert (tmp_path / "a" / "training_log.csv").read_text().startswith("step,loss")


def test_the_shipped_model_loads_with_the_auto_classes_and_looks_where_the_answer_is():
    assert NAME in zoo.list()
    folder = zoo.model_dir(NAME)
    assert (folder / "model.safetensors").stat().st_size <= 8 * 2**20
    model, processor = zoo.load(NAME)
    assert type(model).__name__ == "LlavaForConditionalGeneration"
    assert type(processor).__name__ == "LlavaProcessor"
    assert 6 <= model.config.text_config.num_hidden_layers <= 8
    text = model.config.text_config
    assert text.num_key_value_heads < text.num_attention_heads
    # the processor of the folder produces the inputs training used
    scene, question = sc.sample(make_rng(5, "shipped"), ["colour"])
    inputs = processor(images=[scene.image()], text=[zvlm.prompt(question.text)], return_tensors="pt")
    ours = zvlm.make_inputs(processor.tokenizer, [scene.image()], [question.text])
    assert torch.equal(inputs["input_ids"], ours["input_ids"])
    # behaviour on a small held-out sample: local questions right, and wrong once the answering patch is gone
    items = zvlm.heldout_items("colour", 48, seed=7) + zvlm.heldout_items("shape", 48, seed=7)
    images, questions = [s.image() for s, _ in items], [q.text for _, q in items]
    answers = [q.answer for _, q in items]
    tokenizer = processor.tokenizer
    right = sum(g == a for g, a in zip(zvlm.predict(model, tokenizer, images, questions), answers, strict=True))
    masked = [sc.mask_patches(im, q.patches) for im, (_, q) in zip(images, items, strict=True)]
    blind = sum(g == a for g, a in zip(zvlm.predict(model, tokenizer, masked, questions), answers, strict=True))
    assert right >= 0.85 * len(items), right
    assert blind <= 0.5 * len(items), blind
    card = zoo.card_data(NAME)["metrics"]
    assert card["local"] >= 0.9 and card["masked_answer_local"] < card["masked_random_object_local"] - 0.3
    assert "Measured behaviour" in zoo.card(NAME)


def test_the_zoo_page_shows_the_vision_language_table_the_card_gives():
    from pathlib import Path

    from llmtheory.zoo.__main__ import vlm_table

    page = (Path(__file__).resolve().parents[1] / "book" / "zoo.md").read_text()
    assert vlm_table().strip() in page, "book/zoo.md is stale: paste `python -m llmtheory.zoo vlm-table` into it"
