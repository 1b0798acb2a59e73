"""The metagente chapter's trained summarizer (zoo model ``readme-summarizer-llama-copies``): its synthetic data
never read the test split, its tokenizer copies any text, its training batches put the loss on the summary alone, a
micro spec trains deterministically, the directive rule tells a summarizer that follows from one that does not, and
the shipped checkpoint loads with the Auto classes, has its card and behaves as its card says on a few held-out
items."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from llmtheory import metagente as mg
from llmtheory import metagente_claims as claims
from llmtheory import metagente_experiment as experiment
from llmtheory import metagente_lm as lm
from llmtheory import metagente_standin as si
from llmtheory import zoo
from llmtheory.metagente_llm import TransformersLLM
from llmtheory.seeding import make_rng

pytestmark = pytest.mark.usefixtures("one_torch_thread")
NAME = experiment.SUMMARIZER


@pytest.fixture(scope="module")
def small_tokenizer():
    return lm.build_tokenizer(n_texts=200)


def test_the_synthetic_readmes_are_deterministic_and_draw_on_the_training_split_only():
    first = [lm.training_example(make_rng(3, "t")) for _ in range(1)]
    again = [lm.training_example(make_rng(3, "t")) for _ in range(1)]
    assert first == again
    train, test = mg.split_pairs(mg.load_pairs(), lm.MATERIAL_SEED)
    train_sentences = {s for p in train for s in si.sentences(p.readme)}
    only_in_test = {s for p in test for s in si.sentences(p.readme)} - train_sentences
    assert only_in_test and not only_in_test & set(lm.material().sentences)


def test_every_target_is_what_follow_writes_for_the_prompt_it_comes_with():
    rng = make_rng(0, "targets")
    for _ in range(20):
        prompt, target = lm.training_example(rng)
        text = prompt.split("<<<\n")[1].split("\n>>>")[0]
        assert target == si.follow(si.parse_directives(prompt), text) == si.directive_follower(prompt)


def test_the_byte_level_tokenizer_copies_words_it_never_saw(small_tokenizer):
    text = "Zyxwvq — a naïve 数据 parser (v2.0): snake_case, CamelCase & emoji 🚀."
    ids = small_tokenizer(" " + text)["input_ids"]
    assert small_tokenizer.decode(ids) == " " + text
    assert small_tokenizer.unk_token_id is None or small_tokenizer.unk_token_id not in ids


def test_a_batch_puts_the_loss_on_the_summary_alone(small_tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                         num_key_value_heads=1, vocab_size=len(small_tokenizer), max_position_embeddings=512,
                         pad_token_id=small_tokenizer.pad_token_id)  # fmt: skip
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    examples = lm.fitting_examples(make_rng(1, "batch"), small_tokenizer, 3)
    with torch.no_grad():
        batched = model(**lm.batch(small_tokenizer, examples)).loss
        total, count = 0.0, 0
        for prompt, target in examples:  # each example alone, unpadded: the summary's tokens only
            ids, n_prompt = lm.encode_example(small_tokenizer, prompt, target)
            logits = model(input_ids=torch.tensor([ids])).logits[0]
            log_p = torch.log_softmax(logits[n_prompt - 1 : -1], dim=-1)
            total -= float(log_p[torch.arange(len(ids) - n_prompt), torch.tensor(ids[n_prompt:])].sum())
            count += len(ids) - n_prompt
    assert float(batched) == pytest.approx(total / count, rel=1e-5)


def test_the_micro_spec_trains_deterministically_and_past_its_gate_when_the_spec_turns_it_off(tmp_path):
    spec = replace(zoo.SPECS["micro-readme-summarizer"], copy_gate=False)  # as the shipped staged spec
    first = lm.train(spec, tmp_path / "a", progress=False, phase_one=tmp_path / "a1")
    second = lm.train(spec, tmp_path / "b", progress=False, phase_one=tmp_path / "b1")
    assert "stopped_at_step" not in first.metrics and first.metrics == second.metrics
    a = AutoModelForCausalLM.from_pretrained(tmp_path / "a").state_dict()
    b = AutoModelForCausalLM.from_pretrained(tmp_path / "b").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    card = (tmp_path / "a" / "README.md").read_text()
    assert "How well it follows the directives" in card and "| frequent tokens, second copy |" in card
    assert json.loads((tmp_path / "a1" / "probes.json").read_text())["step"] == 1  # the end of the first stage


def test_a_staged_run_that_fails_its_copy_gate_stops_after_its_first_stage_and_keeps_that_checkpoint(tmp_path):
    spec = zoo.SPECS["micro-readme-summarizer"]  # two stages of one step: the probes stay near a uniform guess
    result = lm.train(spec, tmp_path / "out", progress=False, phase_one=tmp_path / "phase1")
    assert result.metrics["stopped_at_step"] == 1 and not (tmp_path / "out").exists()
    record = json.loads((tmp_path / "phase1" / "probes.json").read_text())
    assert record["gate"] is False and record["probe"]["copy_freq_second"] > lm.COPY_GATE_NATS
    assert result.metrics["copy_freq_second_1"] == pytest.approx(record["evaluations"][0]["copy_freq_second"])
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "phase1").config.hidden_size == spec.hidden


def test_the_cache_answers_a_repeated_prompt_without_running_the_model_again():
    answers = []

    def model(prompt, temperature=0.0):
        answers.append(prompt)
        return prompt.upper()

    cached = experiment.CachedLLM(model)
    assert cached("a") == cached("a") == "A" and cached("b") == "B"
    assert cached.runs == 2 and answers == ["a", "b"]


def test_the_trained_summarizer_loop_and_its_rows_run_with_any_transformers_model(tmp_path):
    lm.train(zoo.SPECS["micro-readme-summarizer"], tmp_path, progress=False, gate=False, phase_one=tmp_path / "p1")
    train, test = mg.split_pairs(mg.load_pairs(), 0)
    train, test = train[:2], test[:3]
    run = experiment.run_experiment(train, test, 0)
    trained = experiment.run_trained_summarizer(TransformersLLM(str(tmp_path), max_new_tokens=4), train, test, 0)
    assert set(trained.frame.method) == {experiment.TRAINED, experiment.TRAINED_INITIAL}
    assert len(trained.follow_outputs["own"]) == len(test) and trained.model_runs > 0
    follows = claims.trained_follows_claim(trained)
    assert follows["control"].name and "agreement with follow()" in follows["ours"]
    loop = claims.trained_loop_claim(run, trained)
    assert "trained − stand-in loop" in loop["ours"]
    texts = claims.trained_findings(run, trained)
    assert "does not depend" not in texts["trained-follows-directives"]["rule does not discriminate"]
    if not loop["testable"]:  # the loop returned the initial prompt: the row measures the two summarizers
        assert (
            "gap between the trained and the stand-in summarizer"
            in texts["trained-summarizer-loop"]["not testable at this scale"]
        )


def test_a_summarizer_that_ignores_the_directives_fails_the_directive_rule():
    def blind(prompt, temperature=0.0):  # the first sentence whatever the prompt says
        return si.follow(si.Directives(source="first"), prompt.split("<<<\n")[1].split("\n>>>")[0])

    _, test = mg.split_pairs(mg.load_pairs(), 0)
    trained = experiment.TrainedRun(None, None, {}, {}, None, lm.real_items(test[:30]), [], {})
    trained.other = [trained.items[int(j)][0] for j in lm.derangement(30, make_rng(0, "x"))]
    trained.follow_outputs = {
        key: [blind(lm.prompt_for(d, e)) for d, e in zip(directives, (e for _, e in trained.items), strict=True)]
        for key, directives in (("own", [d for d, _ in trained.items]), ("shuffled", trained.other))
    }
    blind_rule = claims.trained_follows_claim(trained)["holds"]
    assert not (blind_rule.holds and blind_rule.decisive)  # no decisive preference for its own directives' target
    trained.follow_outputs = {
        "own": [si.directive_follower(lm.prompt_for(d, e)) for d, e in trained.items],
        "shuffled": [
            si.directive_follower(lm.prompt_for(o, e)) for (_, e), o in zip(trained.items, trained.other, strict=True)
        ],
    }
    row = claims.trained_follows_claim(trained)  # the stand-in itself follows, and its control fails
    assert row["holds"].holds and row["holds"].decisive and not row["control"].holds.holds


def test_the_shipped_summarizer_loads_has_its_card_and_behaves_as_its_card_says():
    folder = zoo.model_dir(NAME)
    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert type(model).__name__ == "LlamaForCausalLM" and model.config.num_hidden_layers == zoo.SPECS[NAME].layers
    card, data = zoo.card(NAME), zoo.card_data(NAME)
    assert "How well it follows the directives" in card and f"{data['parameters']:,}" in card
    # the chapter's budget for rebuilding its summarizer, card included: 25 minutes of CPU (20 before the staged
    # recipe, whose 1,500 steps took 1,088 s and its card's measurements about 3 minutes more)
    assert data["cpu_seconds"] <= 25 * 60 and zoo.card_matches_spec(NAME)
    llm = TransformersLLM(NAME, max_new_tokens=80)
    same = TransformersLLM("in memory", max_new_tokens=80, model=model.eval(), tokenizer=tokenizer)
    items = lm.synthetic_items(6, seed=5)
    prompt = lm.prompt_for(*items[0])
    assert llm(prompt) == same(prompt)  # the zoo name and the folder give the same greedy answer
    report, m = lm.follow_report(llm, items), data["metrics"]
    if m["synthetic_rougeL_own"] > m["synthetic_rougeL_shuffled"] + 0.05:  # the card says it follows directives
        assert report["rougeL_own"] > report["rougeL_shuffled"] and report["rougeL_own"] > report["rougeL_none"]
    else:  # the card says it does not: its summaries are not follow()'s
        assert report["exact_own"] < 1 and np.isfinite(report["rougeL_own"])


def test_the_copy_probe_tells_a_copier_from_a_model_that_does_not_copy():
    tokenizer = lm.build_tokenizer(n_texts=50)
    vocabulary, length = len(tokenizer), 20

    class Copier:  # predicts, from the second copy on, the token one period back; uniform elsewhere
        def __call__(self, input_ids):
            logits = torch.zeros(*input_ids.shape, vocabulary)
            for t in range(length - 1, input_ids.shape[1]):
                logits[torch.arange(len(input_ids)), t, input_ids[:, t - length + 1]] = 30.0
            return type("Out", (), {"logits": logits})()

    class Uniform:
        def __call__(self, input_ids):
            return type("Out", (), {"logits": torch.zeros(*input_ids.shape, vocabulary)})()

    copier, blind = (lm.copy_probe(m(), tokenizer, n=3, length=length) for m in (Copier, Uniform))
    assert copier["second_copy"] < 0.01 < copier["first_copy"]
    assert blind["second_copy"] == pytest.approx(blind["first_copy"]) == pytest.approx(blind["uniform"])
    with pytest.raises(ValueError, match="length"):
        lm.copy_probe(Copier(), tokenizer, length=1)
    frequent = lm.frequent_tokens(tokenizer, k=30, n_examples=20)
    assert frequent == lm.frequent_tokens(tokenizer, k=30, n_examples=20) and len(set(frequent)) == 30
    assert not set(frequent) & set(tokenizer.all_special_ids)
    on_frequent = lm.copy_probe(Copier(), tokenizer, n=3, length=length, pool=frequent)
    assert on_frequent["second_copy"] < 0.01 < on_frequent["first_copy"]
    with pytest.raises(ValueError, match="pool"):
        lm.copy_probe(Copier(), tokenizer, pool=[tokenizer.eos_token_id])
    length = 30  # the Copier's period: the text probe's strings are as long
    text = lm.text_copy_probe(Copier(), tokenizer, n=2, length=length)
    assert text["second_copy"] < 0.01 < text["first_copy"]
    assert lm.text_copy_probe(Uniform(), tokenizer, n=2, length=length)["second_copy"] == pytest.approx(
        blind["uniform"]
    )


def test_the_in_format_copy_probe_scores_the_slice_with_its_own_text_and_with_another():
    tokenizer = lm.build_tokenizer(n_texts=50, newline_space=True)
    seen = []

    class Uniform:  # records the prompts it is shown; a uniform guess on every target token
        def __call__(self, input_ids, labels, **kwargs):
            seen.append(tokenizer.batch_decode(input_ids, skip_special_tokens=True))
            return type("Out", (), {"loss": torch.tensor(float(np.log(len(tokenizer))))})()

    probe = lm.format_copy_probe(Uniform(), tokenizer, n=4)
    assert probe["own"] == pytest.approx(probe["other"]) == pytest.approx(probe["uniform"])
    own, other = seen
    split = [[row.split(">>>") for row in rows] for rows in (own, other)]
    prompts, targets = ([[parts[k] for parts in rows] for rows in split] for k in (0, 1))
    assert targets[0] == targets[1] and prompts[0] != prompts[1] and sorted(prompts[0]) == sorted(prompts[1])
    with pytest.raises(ValueError, match="n >= 2"):
        lm.format_copy_probe(Uniform(), tokenizer, n=1)


def test_the_copy_gate_needs_a_cheap_second_copy_well_below_the_first():
    assert lm.copy_gate({"first_copy": 4.0, "second_copy": 1.5})
    assert not lm.copy_gate({"first_copy": 4.0, "second_copy": 2.5})  # too dear
    assert not lm.copy_gate({"first_copy": 2.0, "second_copy": 1.5})  # cheap, but no cheaper than the first copy


def test_the_loop_row_can_pass_and_is_not_testable_when_the_loop_returns_the_initial_prompt():
    def stand_in(prompt, temperature=0.0):  # the stand-in summarizer as the "trained" model: a positive control
        return si.directive_follower(prompt)

    train, test = mg.split_pairs(mg.load_pairs(), 0)
    train, test = train[:20], test[:30]
    trained = experiment.run_trained_summarizer(stand_in, train, test, 0)
    row = claims.trained_loop_claim(experiment.run_experiment(train, test, 0), trained)
    assert trained.prompts[experiment.TRAINED] != mg.INITIAL_SUMMARIZER_PROMPT and row["testable"]
    assert row["holds"].holds and row["holds"].decisive and not row["control"].holds.holds
    trained.prompts[experiment.TRAINED] = mg.INITIAL_SUMMARIZER_PROMPT  # as when no training pair qualifies
    assert not claims.trained_loop_claim(experiment.run_experiment(train, test, 0), trained)["testable"]


def test_the_staged_recipe_copies_short_slices_and_checks_its_stages():
    tokenizer = lm.build_tokenizer(n_texts=50, newline_space=True)
    ids = tokenizer("Title\n\nwidget parser")["input_ids"]
    assert tokenizer(" widget")["input_ids"][0] in ids  # a paragraph's first word is the summary's token
    rng = make_rng(0, "copies")
    for _ in range(5):
        prompt, target = lm.copy_example(rng, tokenizer)
        text = prompt.split("<<<\n")[1].split("\n>>>")[0]
        assert prompt.startswith(mg.INITIAL_SUMMARIZER_PROMPT.split("$")[0]) and target == si.follow(
            si.Directives(), text
        )
        assert lm.COPY_SLICE_TOKENS[0] <= len(tokenizer(text)["input_ids"]) <= lm.COPY_SLICE_TOKENS[1]
    spec = zoo.SPECS["readme-summarizer-llama-copies"]
    assert (
        lm.staged(spec)
        and not lm.staged(zoo.SPECS["readme-summarizer-llama"])
        and lm.stage_at(lm.training_stages(spec), 799) == (16, 1.0)
    )
    assert lm.stage_at(lm.training_stages(spec), 800) == (8, 0.0)
    with pytest.raises(ValueError, match="curriculum"):
        lm.training_stages(type(spec)(**{**spec.as_dict(), "curriculum": ((10, 16, 1.0),)}))


def test_batched_answers_are_the_single_answers_and_prefill_fills_the_cache_once():
    llm = TransformersLLM(NAME, max_new_tokens=24)
    _, test = mg.split_pairs(mg.load_pairs(), 0)
    prompts = [lm.prompt_for(d, e) for d, e in lm.real_items(test[:4], 0)]
    prompts.append(mg.fill(mg.INITIAL_SUMMARIZER_PROMPT, "x"))  # a short prompt beside long ones: left padding
    assert llm.batch(prompts, batch_size=4) == [llm(p) for p in prompts]
    cached = experiment.CachedLLM(llm)
    cached.prefill(prompts + prompts[:2])
    assert cached.runs == len(prompts) and [cached(p) for p in prompts] == llm.batch(prompts)
    assert cached.runs == len(prompts)  # every answer came from the cache
