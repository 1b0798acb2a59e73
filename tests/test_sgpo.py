"""Tests of the SGPO chapter's library (llmtheory.sgpo): hand-computed losses, the task family, then every arm on a
tiny random GPT-2."""

import copy
import math

import pytest
import torch

from llmtheory import grpo, sgpo
from llmtheory.params import ParameterError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LOG = math.log


# ---------------------------------------------------------------------------------------------------------------
# The losses, by hand
# ---------------------------------------------------------------------------------------------------------------


def test_forward_kl_of_two_small_distributions_puts_the_target_first():
    p, q = torch.tensor([0.5, 0.5, 0.0]), torch.tensor([0.25, 0.75, 0.0])
    target, student = torch.log(p + 1e-30).view(1, 1, 3), torch.log(q + 1e-30).view(1, 1, 3)
    # KL(p ‖ q) = ½ log(½ / ¼) + ½ log(½ / ¾); the other direction is ¼ log(¼ / ½) + ¾ log(¾ / ½)
    assert float(sgpo.forward_kl(target, student)) == pytest.approx(0.5 * LOG(2) + 0.5 * LOG(2 / 3), abs=1e-6)
    assert float(sgpo.forward_kl(student, target)) == pytest.approx(0.25 * LOG(0.5) + 0.75 * LOG(1.5), abs=1e-6)
    assert float(sgpo.forward_kl(target, target)) == pytest.approx(0.0, abs=1e-7)


def test_the_distillation_term_weights_rows_and_masks_tokens_outside_the_proximal_range():
    p, q = torch.log(torch.tensor([0.5, 0.5])), torch.log(torch.tensor([0.25, 0.75]))
    kl = 0.5 * LOG(2) + 0.5 * LOG(2 / 3)
    # two rows × two tokens; the same distributions everywhere, so each real token has KL = kl
    target = p.expand(2, 2, 2).clone()
    student = q.expand(2, 2, 2).clone().requires_grad_()
    # unguided ratios π_θ/π_old: 1.0 and 1.5 in row 0 (1.5 is outside [0.8, 1.2]: masked), 0.9 in row 1
    logps = torch.log(torch.tensor([[0.5, 0.6], [0.45, 0.0]]))
    old = torch.log(torch.tensor([[0.5, 0.4], [0.5, 1.0]]))
    mask = torch.tensor([[1, 1], [1, 0]])
    weights = torch.tensor([0.5, 1.0])
    term, stats = sgpo.sgpo_distillation_term(target, student, logps, old, mask, weights, proximal_clip=0.2)
    # row 0: w = ½, (kl · 1 + kl · 0) / 2 tokens; row 1: w = 1, kl / 1 token; mean over the two rows
    assert float(term.detach()) == pytest.approx((0.5 * kl / 2 + kl) / 2, abs=1e-6)
    assert stats["proximal_kept"] == pytest.approx(2 / 3)
    assert stats["distill_kl"] == pytest.approx(kl, abs=1e-6)
    term.backward()
    # no gradient through the masked token, nor through the padding
    assert torch.equal(student.grad[0, 1], torch.zeros(2)) and torch.equal(student.grad[1, 1], torch.zeros(2))
    assert student.grad[0, 0].abs().sum() > 0
    # the gradient of KL(p ‖ softmax(z)) in z is softmax(z) − p, times w / |y| / rows
    assert torch.allclose(student.grad[1, 0], (torch.tensor([0.25, 0.75]) - 0.5) * 1.0 / 1 / 2, atol=1e-6)


def test_the_proximal_mask_by_hand():
    ratios = torch.tensor([0.7, 0.8, 1.0, 1.2, 1.21])
    mask = sgpo.proximal_mask(torch.log(ratios), torch.zeros(5), eps=0.2)
    assert torch.equal(mask, torch.tensor([0.0, 1.0, 1.0, 1.0, 0.0]))


def test_the_instance_weight_rules_by_hand():
    acc_guided, acc_auto = torch.tensor([1.0, 0.5, 0.25, 1.0]), torch.tensor([0.25, 0.75, 0.25, 1.0])
    # gain: clip(g − a, 0, 1); deficit: 1 − a; constant: 1
    gain = sgpo.instance_weights(acc_guided, acc_auto, "gain")
    assert torch.allclose(gain, torch.tensor([0.75, 0.0, 0.0, 0.0]))
    assert torch.allclose(sgpo.instance_weights(acc_guided, acc_auto, "deficit"), torch.tensor([0.75, 0.25, 0.75, 0]))
    assert torch.equal(sgpo.instance_weights(acc_guided, acc_auto, "constant"), torch.ones(4))
    # a problem the unguided policy masters gets no weight under either adaptive rule
    assert float(gain[3]) == 0.0


def test_luffy_policy_shaping_and_its_gradient_by_hand():
    logp = torch.tensor(LOG(0.5), requires_grad=True)
    shaped = sgpo.policy_shaping(logp.exp(), gamma=0.1)
    assert float(shaped.detach()) == pytest.approx(0.5 / 0.6)
    shaped.backward()
    # d f(π) / d log π = γ π / (π + γ)²
    assert float(logp.grad) == pytest.approx(0.1 * 0.5 / 0.6**2, abs=1e-6)


def test_the_luffy_loss_of_a_mixed_group_by_hand():
    # row 0 on-policy (Â = −1), ratios 1.0 and 1.3; row 1 a teacher trace (Â = +1), π_θ = 0.5 and 0.2
    logps = torch.log(torch.tensor([[0.5, 0.52], [0.5, 0.2]]))
    old = torch.log(torch.tensor([[0.5, 0.4], [0.9, 0.9]]))  # the teacher row's π_old is ignored
    advantages, mask = torch.tensor([-1.0, 1.0]), torch.ones(2, 2)
    loss, stats = sgpo.luffy_loss(logps, old, advantages, mask, torch.tensor([False, True]), gamma=0.1)
    # on: min(−1, −1) = −1, min(−1.3, −1.2) = −1.3; off: 0.5/0.6 + 0.2/0.3; J = sum / 4 tokens
    expected = (-1.0 - 1.3 + 0.5 / 0.6 + 0.2 / 0.3) / 4
    assert float(loss) == pytest.approx(-expected, abs=1e-6)
    assert stats["off_policy_prob"] == pytest.approx(0.35)


def test_the_sft_loss_of_a_toy_batch_by_hand():
    logps = torch.log(torch.tensor([[0.5, 0.25], [0.5, 1.0]]))
    mask = torch.tensor([[1, 1], [1, 0]])
    # −(log ½ + log ¼ + log ½) / 3 tokens
    assert float(sgpo.sft_loss(logps, mask)) == pytest.approx(4 * LOG(2) / 3, abs=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# The task family
# ---------------------------------------------------------------------------------------------------------------


def problem(procedure="cumsum", query=(5, 2, 7, 8)):
    return sgpo.Problem(procedure, (((3, 1, 4), sgpo.apply_procedure(procedure, (3, 1, 4))),), query)


def test_the_procedures_and_the_prompts_by_hand():
    query = (5, 2, 7, 8)
    outputs = {name: sgpo.apply_procedure(name, query) for name in sgpo.PROCEDURES}
    assert outputs == {
        "reverse": (8, 7, 2, 5),
        "sort": (2, 5, 7, 8),
        "cumsum": (5, 7, 4, 2),
        "alternate": (5, 7),
        "rotate": (2, 7, 8, 5),
    }
    p = problem("reverse")
    assert p.prompt() == "3 1 4 -> 4 1 3 ; 5 2 7 8 ->"
    assert p.prompt(guided=True) == "strategy : reverse , start from the last digit ; 3 1 4 -> 4 1 3 ; 5 2 7 8 ->"
    assert p.answer_text == "8 7 2 5"


def test_the_verifier_wants_an_exact_match():
    p = problem("reverse")
    assert sgpo.verify(p, "8 7 2 5") == 1.0 and sgpo.verify(p, " 8  7 2 5 ") == 1.0
    for wrong in ("8 7 2", "8 7 2 5 5", "5 2 7 8", ""):
        assert sgpo.verify(p, wrong) == 0.0
    reward = sgpo.reward_function([p, problem("sort")])
    assert reward([p.prompt(), p.prompt(True), problem("sort").prompt()], ["8 7 2 5", "2 5 7 8", "2 5 7 8"]) == [
        1.0,
        0.0,
        1.0,
    ]
    with pytest.raises(ParameterError, match="no known problem"):
        reward(["1 ->"], ["1"])


def test_tokens_are_labelled_critical_where_the_procedures_part_and_routine_where_they_agree():
    p = problem("cumsum")  # on 5 2 7 8: reverse 8 7 2 5, sort 2 5 7 8, cumsum 5 7 4 2, alternate 5 7
    c, r, o = sgpo.CRITICAL, sgpo.ROUTINE, sgpo.OFF_PATH
    # first token: 8 / 2 / 5 differ; then cumsum and alternate agree on 7, part at 4 vs <eos>, then cumsum alone
    assert sgpo.label_tokens(p, "5 7 4 2 <eos>".split()) == [c, r, c, r, r]
    assert sgpo.label_tokens(p, "5 7 <eos>".split()) == [c, r, c]
    assert sgpo.label_tokens(p, "8 7 2 5 <eos>".split()) == [c, r, r, r, r]
    # a wrong first token leaves every procedure's path
    assert sgpo.label_tokens(p, "9 7 <eos>".split()) == [c, o, o]
    # the labels come from the problem's query and family, not from which procedure is correct
    assert sgpo.label_tokens(problem("sort"), "5 7 4 <eos>".split()) == [c, r, c, r]


def test_token_ids_of_a_subword_tokenizer_are_labelled_as_words():
    class Subwords:  # a byte-level tokenizer's view of "5 7 <eos>": a space, then digits with a leading space
        pieces = {0: " ", 1: " 5", 2: " 7", 3: "</s>", 4: " 57"}

        def decode(self, ids):
            return "".join(self.pieces[i] for i in ids)

    c, r, o = sgpo.CRITICAL, sgpo.ROUTINE, sgpo.OFF_PATH
    assert sgpo.label_token_ids(problem("cumsum"), Subwords(), [0, 1, 2, 3], eos_ids=[3]) == [r, c, r, c]
    assert sgpo.label_token_ids(problem("cumsum"), Subwords(), [4, 3], eos_ids=[3]) == [c, o]


@pytest.fixture(scope="module")
def splits():
    return sgpo.make_splits(0, n_train=300, n_test=100, n_ood=100)


def test_test_and_ood_splits_are_disjoint_from_training(splits):
    train = splits["train"]
    train_queries = {p.query for p in train}
    assert not train_queries & {p.query for p in splits["test"]}
    assert not {p.prompt() for p in train} & {p.prompt() for s in sgpo.SPLITS[1:] for p in splits[s]}
    # longer inputs: lengths never trained, by a query or a demonstration
    trained_lengths = {len(p.query) for p in train} | {len(i) for p in train for i, _ in p.demos}
    assert trained_lengths == set(sgpo.LENGTHS)
    assert {len(p.query) for p in splits["ood-length"]} == set(sgpo.OOD_LENGTHS)

    # unseen combinations: exactly the held-out pairs, never shown in training (queries or demonstrations)
    def pairs(p):
        return {(p.procedure, len(p.query))} | {(p.procedure, len(i)) for i, _ in p.demos}

    trained_pairs = set().union(*(pairs(p) for p in train))
    assert not trained_pairs & set(sgpo.HELD_OUT)
    assert {(p.procedure, len(p.query)) for p in splits["ood-combination"]} == set(sgpo.HELD_OUT)
    # and every procedure and every length of a held-out pair is trained
    assert {q for q, _ in sgpo.HELD_OUT} <= {q for q, _ in trained_pairs}
    for split in sgpo.SPLITS:  # demonstrations never show an untrained pair
        assert all((p.procedure, len(i)) in trained_pairs for p in splits[split] for i, _ in p.demos)


def test_the_prompt_hides_the_procedure_and_the_demonstrations_identify_it(splits):
    for split in sgpo.SPLITS:
        for p in splits[split]:
            assert not set(p.prompt().split()) & set(sgpo.PROCEDURES)
            assert p.procedure in p.prompt(guided=True).split()
            assert sgpo.identifiable(p.procedure, p.demos, p.family)
    assert {p.procedure for p in splits["train"]} == set(sgpo.FAMILY)


def test_splits_are_reproducible_under_a_seed(splits):
    again = sgpo.make_splits(0, n_train=300, n_test=100, n_ood=100)
    assert again == splits
    assert sgpo.make_splits(1, n_train=300, n_test=100, n_ood=100)["train"] != splits["train"]


def test_the_tokenizer_covers_every_prompt_and_answer(splits):
    tokenizer = sgpo.build_tokenizer()
    assert len(tokenizer) <= 64
    texts = [sgpo.training_text(p, guided) for s in sgpo.SPLITS for p in splits[s][:30] for guided in (False, True)]
    ids = tokenizer(texts)["input_ids"]
    assert all(row[0] == tokenizer.bos_token_id and tokenizer.unk_token_id not in row for row in ids)
    assert tokenizer.decode(ids[0], skip_special_tokens=True) == texts[0].replace(" <eos>", "")


# ---------------------------------------------------------------------------------------------------------------
# Every arm on a tiny random GPT-2
# ---------------------------------------------------------------------------------------------------------------

CONFIG = sgpo.SGPOConfig(grpo=grpo.GRPOConfig(group_size=4, max_new_tokens=6, beta=0.0))


@pytest.fixture(scope="module")
def tiny():
    tokenizer = sgpo.build_tokenizer()
    return sgpo.build_policy(tokenizer, seed=0, n_layer=1, n_embd=32, n_head=2, n_positions=64), tokenizer


def weights_of(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.mark.parametrize("arm", list(sgpo.ARMS))
def test_each_arm_runs_one_step_and_its_compute_counters_add_up(arm, tiny, splits):
    model, tokenizer = tiny
    policy = copy.deepcopy(model)
    optimizer = torch.optim.SGD(policy.parameters(), lr=0.1)
    problems = splits["train"][:3]
    config = CONFIG
    if arm == "imitation":  # a random policy is never right: imitate every guided sample
        config = sgpo.SGPOConfig(grpo=CONFIG.grpo, imitate_only_correct=False)
    step = sgpo.arm_step(arm, policy, optimizer, tokenizer, problems, seed=0, config=config)
    g, compute = CONFIG.grpo.group_size, step.compute
    sampled = [r for name, r in step.rollouts.items() if name != "teacher"]
    assert compute.rollouts == sum(len(r.prompts) for r in sampled)
    assert compute.generated_tokens == sum(r.num_completion_tokens for r in sampled)
    teacher = step.rollouts.get("teacher")
    assert compute.teacher_tokens == (teacher.num_completion_tokens if teacher else 0)
    expected = {
        "sft": (0, 3),
        "grpo": (3 * g, 0),
        "luffy": (3 * (g - 1), 3),
        "sgpo": (6 * g, 0),
        "imitation": (3 * g, 0),
    }
    assert (compute.rollouts, compute.teacher_traces) == expected[arm]
    sampled_per_problem, teacher_per_problem = sgpo.rollouts_per_problem(arm, config)
    assert (compute.rollouts, compute.teacher_traces) == (3 * sampled_per_problem, 3 * teacher_per_problem)
    assert compute.updates == 1 and math.isfinite(step.loss)
    # a random policy earns no reward: GRPO's and SGPO's groups then teach nothing (equal rewards, w_i = 0)
    assert torch.equal(weights_of(policy), weights_of(model)) == (arm in ("grpo", "sgpo"))
    total = compute + sgpo.Compute(rollouts=1, generated_tokens=2, teacher_traces=3, teacher_tokens=4, updates=5)
    assert total.as_dict() == {k: v + i for i, (k, v) in enumerate(compute.as_dict().items(), start=1)}


def test_sgpo_without_the_distillation_term_is_grpo_on_the_autonomous_group(tiny, splits):
    model, tokenizer = tiny
    problems = splits["train"][:3]
    results = []
    for arm, config in (("grpo", CONFIG), ("sgpo", sgpo.SGPOConfig(grpo=CONFIG.grpo, kl_weight=0.0))):
        policy = copy.deepcopy(model)
        step = sgpo.arm_step(arm, policy, torch.optim.SGD(policy.parameters(), lr=0.5), tokenizer, problems, seed=3,
                             config=config)  # fmt: skip
        results.append((step, weights_of(policy)))
    (grpo_step, grpo_weights), (sgpo_step, sgpo_weights) = results
    assert torch.equal(grpo_step.rollouts["auto"].completion_ids, sgpo_step.rollouts["auto"].completion_ids)
    assert torch.allclose(grpo_weights, sgpo_weights, atol=1e-6)


def test_the_distillation_step_lowers_the_guided_to_unguided_kl(tiny, splits):
    model, tokenizer = tiny
    policy, problems = copy.deepcopy(model), splits["train"][:4]
    # a random policy earns no reward, so the GRPO term is zero and only the (constant-weight) KL term moves it
    config = sgpo.SGPOConfig(grpo=CONFIG.grpo, instance_weight="constant", kl_weight=1.0)
    optimizer = torch.optim.SGD(policy.parameters(), lr=1.0)
    step = sgpo.sgpo_step(policy, optimizer, tokenizer, problems, seed=0, config=config)
    assert float(step.rewards_auto.sum()) == 0 and torch.equal(step.weights, torch.ones(4))
    guided = step.rollouts["guided"]
    before = sgpo.token_kl_record(model, tokenizer, problems, guided)
    after = sgpo.token_kl_record(policy, tokenizer, problems, guided)
    assert float(after.kl.sum()) < float(before.kl.sum())


def test_the_proximal_mask_drops_tokens_once_the_unguided_ratio_leaves_its_range(tiny, splits):
    model, tokenizer = tiny
    settings = grpo.GRPOConfig(group_size=4, max_new_tokens=6, beta=0.0, inner_updates=3)
    config = sgpo.SGPOConfig(grpo=settings, instance_weight="constant", proximal_clip=0.01)
    policy = copy.deepcopy(model)
    optimizer = torch.optim.SGD(policy.parameters(), lr=1.0)
    step = sgpo.sgpo_step(policy, optimizer, tokenizer, splits["train"][:3], seed=0, config=config)
    # ρ = 1 at the first inner update; by the third, some guided tokens moved by more than 1 % and are masked
    assert 0 < step.stats["proximal_kept"] < 1 and step.compute.updates == 3


def test_a_luffy_step_raises_the_teacher_trace_when_every_sample_fails(tiny, splits):
    model, tokenizer = tiny
    policy, problems = copy.deepcopy(model), splits["train"][:2]
    teacher = grpo.encode_rollouts(tokenizer, [p.prompt() for p in problems], [p.answer_text for p in problems],
                                   group_size=1)  # fmt: skip

    def teacher_logp(m):
        with torch.no_grad():
            return grpo.completion_log_probs(m, *sgpo._batch(teacher)).sum(1)

    step = sgpo.luffy_step(policy, torch.optim.SGD(policy.parameters(), lr=0.5), tokenizer, problems, seed=0,
                           config=CONFIG)  # fmt: skip
    assert step.rewards_auto.sum() == 0  # the random policy's samples fail; the teacher trace has Â > 0
    assert (teacher_logp(policy) > teacher_logp(model)).all()


def test_the_imitation_arm_skips_the_update_when_no_guided_sample_is_right(tiny, splits):
    model, tokenizer = tiny
    policy = copy.deepcopy(model)
    step = sgpo.imitation_step(policy, torch.optim.SGD(policy.parameters(), lr=0.5), tokenizer, splits["train"][:2],
                               seed=0, config=CONFIG)  # fmt: skip
    assert step.stats["kept"] == 0 and step.compute.updates == 0 and step.compute.rollouts == 8
    assert math.isnan(step.loss) and torch.equal(weights_of(policy), weights_of(model))


def test_the_token_kl_record_labels_every_real_token(tiny, splits):
    model, tokenizer = tiny
    problems = splits["test"][:3]
    guided = sgpo.sample(model, tokenizer, problems, guided=True, group_size=2, seed=1, config=CONFIG.grpo)
    record = sgpo.token_kl_record(model, tokenizer, problems, guided)
    assert [len(row) for row in record.labels] == record.mask.sum(1).tolist()
    assert sum(record.count(label) for label in sgpo.TOKEN_LABELS) == int(record.mask.sum())
    assert sum(record.share(label) for label in sgpo.TOKEN_LABELS) == pytest.approx(1.0)
    assert float(record.kl.min()) >= -1e-6 and float((record.kl * (1 - record.mask)).abs().sum()) == 0


def test_an_sgpo_step_is_deterministic_under_a_seed(tiny, splits):
    model, tokenizer = tiny
    outcomes = []
    for _ in range(2):
        policy = copy.deepcopy(model)
        optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-3)
        step = sgpo.sgpo_step(policy, optimizer, tokenizer, splits["train"][:3], seed=5, config=CONFIG)
        outcomes.append((step.loss, step.stats, step.compute.as_dict(), weights_of(policy)))
    assert outcomes[0][:3] == outcomes[1][:3] and torch.equal(outcomes[0][3], outcomes[1][3])


# ---------------------------------------------------------------------------------------------------------------
# Bad parameters
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"instance_weight": "ratio"}, "instance_weight"),
        ({"kl_weight": -1.0}, "kl_weight"),
        ({"proximal_clip": -0.1}, "proximal_clip"),
        ({"teacher_traces": 4}, "teacher_traces"),
        ({"shaping_gamma": 0.0}, "shaping_gamma"),
        ({"imitate_only_correct": "yes"}, "imitate_only_correct"),
        ({"grpo": {"group_size": 4}}, "grpo"),
    ],
)
def test_bad_config_values_raise_errors_naming_the_parameter(settings, named):
    with pytest.raises(ParameterError, match=named):
        sgpo.SGPOConfig(**settings)


def test_bad_inputs_raise_clear_errors(tiny, splits):
    model, tokenizer = tiny
    with pytest.raises(ParameterError, match="arm"):
        sgpo.arm_step("ppo", model, None, tokenizer, splits["train"][:1], seed=0)
    with pytest.raises(ParameterError, match="problems"):
        sgpo.sgpo_step(model, None, tokenizer, splits["train"][0], seed=0)
    with pytest.raises(ParameterError, match="procedure"):
        sgpo.apply_procedure("shuffle", (1, 2))
    with pytest.raises(ParameterError, match="held_out"):
        sgpo.make_splits(0, n_train=5, n_test=5, n_ood=5, held_out=[("reverse", 9)])
    with pytest.raises(ParameterError, match="held_out"):
        sgpo.make_splits(0, n_train=5, n_test=5, n_ood=5, held_out=[("sort", 3), ("sort", 4), ("sort", 5)])
    with pytest.raises(ParameterError, match="ood_lengths"):
        sgpo.make_splits(0, n_train=5, n_test=5, n_ood=5, ood_lengths=(5, 6))
    with pytest.raises(ParameterError, match="n_test"):
        sgpo.make_splits(0, n_train=5, n_test=0, n_ood=5)
    with pytest.raises(ParameterError, match="instance_weight"):
        sgpo.instance_weights(torch.ones(2), torch.ones(2), "ratio")
    with pytest.raises(ParameterError, match="beta"):
        config = sgpo.SGPOConfig(grpo=grpo.GRPOConfig(group_size=2, beta=0.1))
        sgpo.sgpo_step(model, None, tokenizer, splits["train"][:1], seed=0, config=config)
    with pytest.raises(ParameterError, match="label"):
        sgpo.TokenKL(torch.zeros(1, 1), torch.ones(1, 1), [["critical"]]).values("copy")


def test_sgpo_runs_on_a_saved_model_of_another_architecture_and_tokenizer(tmp_path, splits):
    from random_models import save_random_causal_lm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = save_random_causal_lm("mistral", tmp_path / "mistral")
    model, tokenizer = AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    problems = splits["ood-length"][:2]
    step = sgpo.sgpo_step(model, torch.optim.SGD(model.parameters(), lr=0.1), tokenizer, problems, seed=0,
                          config=sgpo.SGPOConfig(grpo=CONFIG.grpo, instance_weight="constant"))  # fmt: skip
    assert step.compute.rollouts == 16 and math.isfinite(step.loss) and step.stats["distill_kl"] > 0
    record = sgpo.token_kl_record(model, tokenizer, problems, step.rollouts["guided"])
    assert sum(record.count(label) for label in sgpo.TOKEN_LABELS) == int(record.mask.sum())
