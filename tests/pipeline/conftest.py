import pytest

from stepdpo.generation.hf import HFGenerator
from stepdpo.problems import load_problems


@pytest.fixture(scope="module")
def gen(model, tokenizer):
    return HFGenerator(model, tokenizer, batch_size=64)


@pytest.fixture(scope="module")
def problems():
    return load_problems("synthetic", split="train", limit=12, seed=555)
