"""scaletot's language-model teacher (`TEACHER=<folder or hub id>`) on small random models of architectures the zoo
lacks: the same bounded tree runs on them, and a teacher that knows nothing about users cannot pass the chapter's
lm-teacher rule (its own-minus-other contrast is not decisively above 0)."""

import pytest
from random_models import save_random_causal_lm

from llmtheory import scaletot as st
from llmtheory import scaletot_experiment as ex
from llmtheory import scaletot_lm, zoo
from llmtheory.claims import at_least
from llmtheory.seeding import make_rng

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("architecture", ["mistral", "phi3"])
def test_a_random_teacher_runs_the_tree_and_does_not_pass_the_rule(architecture, tmp_path):
    model, tokenizer = zoo.load(str(save_random_causal_lm(architecture, tmp_path)))
    world = ex.World()
    teacher = scaletot_lm.LMTeacher(model, tokenizer, ex.make_teacher(world, 0.0, make_rng(0, "test")))
    bounds = st.ToTBounds(0.5, 2, 1)
    comparison = scaletot_lm.compare_with_bayes(teacher, teacher.ltv, world, 12, bounds, seed=0)
    assert comparison.lm_greedy.shape == comparison.lm_chains.shape == (12, 3)
    assert comparison.table.loc["LM", "calls per user"] >= 3
    _, _, contrast = scaletot_lm.accuracy_estimates(comparison)
    rule = at_least(contrast, 1e-9)
    assert not (rule.holds and rule.decisive)
