import numpy as np

from llmtheory.seeding import make_rng, seed_everything


def test_same_seed_and_keys_give_the_same_stream():
    assert np.array_equal(make_rng(3, "a", 2).normal(size=5), make_rng(3, "a", 2).normal(size=5))


def test_different_keys_give_different_streams():
    assert not np.allclose(make_rng(3, "a").normal(size=5), make_rng(3, "b").normal(size=5))
    assert not np.allclose(make_rng(3, "a").normal(size=5), make_rng(4, "a").normal(size=5))


def test_seed_everything_seeds_torch():
    import torch

    seed_everything(7)
    first = torch.rand(3)
    seed_everything(7)
    assert torch.equal(first, torch.rand(3))
