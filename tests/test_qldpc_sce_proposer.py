"""Tests of the qLDPC chapter's LLM path: the grammar model's tokens, data and training, and the search run with a
model as its proposer (the zoo model when it is built, a micro model and a random hub-architecture model always)."""

import numpy as np
import pytest

from llmtheory import qldpc_sce as sce
from llmtheory import qldpc_sce_experiment, zoo
from llmtheory import qldpc_sce_proposer as prop
from llmtheory.seeding import make_rng

LIMITS = sce.Limits()


def test_spec_tokens_are_json_that_reads_back_and_the_tokenizer_knows_every_token():
    tokenizer = prop.build_tokenizer()
    rng = make_rng(0, "tokens")
    for _ in range(25):
        spec = prop.random_parent(rng, LIMITS)
        text = prop.spec_tokens(spec)
        assert sce.spec_from_json(text) == spec
        ids = tokenizer(text)["input_ids"]
        assert tokenizer.unk_token_id not in ids and ids[0] == tokenizer.bos_token_id
        assert tokenizer.decode(ids, skip_special_tokens=True) == text  # decoding gives the same JSON text


def test_training_pairs_are_one_well_formed_grammar_mutation_apart():
    rng = make_rng(1, "pairs")
    for _ in range(40):
        parent, child = prop.training_pair(rng, LIMITS)
        assert not sce.spec_problems(parent, LIMITS) and not sce.spec_problems(child, LIMITS)
        assert child != parent and prop.changed_levels(parent, child)
    text = prop.training_text(parent, child)
    assert text.startswith(prop.spec_tokens(parent)) and text.endswith(f"{prop.spec_tokens(child)} {prop.EOS}")


def test_changed_levels_names_the_grammars_levels():
    toric = sce.toric_seed(3, 3)
    other_group = sce.Spec(sce.Group(4, 3, 1), toric.a, toric.b)
    assert prop.changed_levels(toric, other_group) == ("group_algebra",)
    entry = sce.Spec(toric.group, ((((0, 0), (2, 0)),),), toric.b)
    assert prop.changed_levels(toric, entry) == ("base_space",)
    wider = sce.Spec(toric.group, ((((0, 0), (1, 0)), ((0, 1),)),), toric.b)
    assert prop.changed_levels(toric, wider) == ("protograph_geometry",)


@pytest.fixture(scope="module")
def micro(tmp_path_factory):
    folder = tmp_path_factory.mktemp("micro-sce-grammar")
    result = prop.train(zoo.SPECS["micro-sce-grammar"], folder, progress=False)
    return folder, result


def test_micro_grammar_model_trains_saves_reloads_and_reports(micro):
    folder, result = micro
    assert (folder / "model.safetensors").is_file() and (folder / "card.json").is_file()
    assert set(result.metrics) >= {"parses", "well_formed", "changed"} and result.metrics["n_parents"] == 2
    assert all(0.0 <= v <= 1.0 for k, v in result.metrics.items() if k != "n_parents")
    assert "What it learned" in (folder / "README.md").read_text()
    model, tokenizer = zoo.load(str(folder))
    (a,) = prop.sample_children(model, tokenizer, [sce.toric_seed(3, 3)], seed=4, max_new_tokens=12)
    (b,) = prop.sample_children(model, tokenizer, [sce.toric_seed(3, 3)], seed=4, max_new_tokens=12)
    assert a == b  # seeded sampling: reproducible


def test_search_runs_with_a_model_proposer_and_counts_its_malformed_answers(micro):
    # A micro model (3 training steps) knows almost nothing: its answers are mostly malformed, which the search
    # must count as rejected proposals and survive, at equal budget.
    folder, _ = micro
    proposer = sce.LLMProposer(prop.grammar_model_generator(str(folder), seed=0, max_new_tokens=16), LIMITS)
    result = qldpc_sce_experiment.run_searches(["SCE"], 11, 0, 0, LIMITS, 2, proposer)[
        "SCE"
    ]  # 8 seeds, then 3 proposals
    assert len(result.evaluations) == 11 and proposer.stats.proposed == 3
    assert proposer.stats.invalid == len(proposer.stats.reasons) <= proposer.stats.proposed


def test_the_hub_path_runs_on_a_random_model_of_another_architecture(tmp_path):
    # MODEL=<hub id or folder>: a random Mistral knows nothing; the search must count its answers, never crash.
    from random_models import save_random_causal_lm

    folder = save_random_causal_lm("mistral", tmp_path)
    proposer = sce.LLMProposer(prop.hub_generator(str(folder), seed=0, max_new_tokens=24), LIMITS)
    result = qldpc_sce_experiment.run_searches(["SCE"], 10, 0, 0, LIMITS, 2, proposer)[
        "SCE"
    ]  # 8 seeds, then 2 proposals
    assert len(result.evaluations) == 10 and proposer.stats.proposed == 2 and proposer.stats.invalid >= 1


def test_the_documented_hub_instruct_model_fails_offline_with_a_clear_message(monkeypatch):
    # The chapter documents MODEL="Qwen/Qwen2.5-1.5B-Instruct" for Colab; it has never run here (no network). Offline
    # it must stop at once with a message that names the model, the reason and what runs offline instead.
    from llmtheory.zoo import ZooError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ZooError) as error:
        sce.hf_text_generator("Qwen/Qwen2.5-1.5B-Instruct", 0)
    message = str(error.value)
    assert "Qwen/Qwen2.5-1.5B-Instruct" in message and "offline" in message.lower()
    assert "MODEL='none'" in message and "sce-grammar-llama" in message


@pytest.mark.skipif(
    not (zoo.model_dir("sce-grammar-llama") / "model.safetensors").is_file(), reason="the grammar model is not built"
)
def test_the_zoo_grammar_model_proposes_parseable_edits(micro):
    # What training bought, judged against a model that has learned nothing (the micro model: 3 steps), on the same
    # 12 held-out parents: the zoo model's share of answers that parse must beat the untrained model's beyond
    # sampling noise (Wilson 95% intervals that do not overlap), and the search must accept some of its proposals.
    # This bar is fixed by that comparison, not by the model's numbers. (An earlier version asserted parses ≥ 50%, a
    # bar set after seeing the card's 87%; the 60% well-formed we aimed for was not reached in ten minutes of
    # training: the card reports 29%, and the chapter says so.)
    from llmtheory.claims import Estimate

    def parse_rate(model, tokenizer) -> tuple[Estimate, dict]:
        report = prop.proposal_report(model, tokenizer, n=12, seed=3)
        return Estimate.proportion(round(12 * report["parses"]), 12), report

    trained, report = parse_rate(*zoo.load("sce-grammar-llama"))
    untrained, _ = parse_rate(*zoo.load(str(micro[0])))
    assert trained.low > untrained.high, (trained, untrained)
    assert report["well_formed"] > 0, report
    proposer = sce.LLMProposer(prop.proposer_generator("sce-grammar-llama", seed=0), LIMITS)
    result = qldpc_sce_experiment.run_searches(["SCE"], 20, 0, 0, LIMITS, 2, proposer)[
        "SCE"
    ]  # the smoke tier's budget, and more
    assert proposer.stats.invalid < proposer.stats.proposed == 12 and result.best().valid
    assert np.isfinite(result.best().fitness)
