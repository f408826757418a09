import math

import pytest
import torch
import torch.nn.functional as F
from helpers import toy_pairs

from stepdpo.training.losses import (
    HingeLoss,
    IPOLoss,
    RobustLoss,
    SigmoidLoss,
    make_loss,
    sft_loss,
)
from stepdpo.training.packing import (
    batch_order,
    collate,
    completion_logps,
    encode_pairs,
    pack_rows,
)


def _separate_logps(model, prompt, completion):
    ids = torch.tensor([prompt + completion])
    with torch.no_grad():
        lp = torch.log_softmax(model(ids).logits[0].float(), -1)
    return sum(lp[len(prompt) - 1 + t, tok].item() for t, tok in enumerate(completion))


@pytest.mark.parametrize("shared", [True, False])
def test_packed_logps_equal_separate_forwards(model, tokenizer, shared):
    enc = encode_pairs(tokenizer, toy_pairs(6), add_eos=False)
    rows = pack_rows([e.length(shared) for e in enc], 700)
    assert len(rows) < len(enc)  # several pairs share a row
    batch = collate(enc, rows, shared=shared)
    with torch.no_grad():
        c, r = completion_logps(model, batch)
    for k, i in enumerate(batch_order(rows)):
        assert c[k].item() == pytest.approx(_separate_logps(model, enc[i].prompt, enc[i].chosen), abs=1e-4)
        assert r[k].item() == pytest.approx(_separate_logps(model, enc[i].prompt, enc[i].rejected), abs=1e-4)


def test_prefix_sharing_computes_the_prompt_once(tokenizer):
    enc = encode_pairs(tokenizer, toy_pairs(4), add_eos=False)
    shared = collate(enc, [[i] for i in range(4)], shared=True)
    copied = collate(enc, [[i] for i in range(4)], shared=False)
    assert copied.n_tokens - shared.n_tokens == sum(len(e.prompt) for e in enc)
    # the rejected step restarts its positions right after the prompt
    e = enc[0]
    P, C = len(e.prompt), len(e.chosen)
    assert shared.position_ids[0, P + C].item() == P


def test_steps_get_no_eos_and_solutions_do(tokenizer):
    pairs = toy_pairs(2)
    step = encode_pairs(tokenizer, pairs, add_eos=False)
    whole = encode_pairs(tokenizer, pairs, add_eos=True)
    assert tokenizer.eos_token_id not in step[0].chosen
    assert whole[0].chosen[-1] == tokenizer.eos_token_id and whole[0].rejected[-1] == tokenizer.eos_token_id


def test_pack_rows_first_fit():
    rows = pack_rows([5, 4, 3, 2, 9], 9)
    assert sorted(sum(([5, 4, 3, 2, 9][i] for i in r), 0) <= 9 for r in rows)
    assert sorted(i for r in rows for i in r) == [0, 1, 2, 3, 4]
    assert len(rows) == 3


def _four():
    torch.manual_seed(0)
    return [torch.randn(5, dtype=torch.float64) * 3 for _ in range(4)]


def test_sigmoid_is_eq2():
    pc, pr, rc, rr = _four()
    losses, cw, rw = SigmoidLoss(beta=0.4)(pc, pr, rc, rr)
    expected = -F.logsigmoid(0.4 * ((pc - rc) - (pr - rr)))
    assert torch.allclose(losses, expected)
    assert torch.allclose(cw, 0.4 * (pc - rc)) and torch.allclose(rw, 0.4 * (pr - rr))
    assert SigmoidLoss(0.4)(pc, pr, pc, pr)[0].allclose(torch.full((5,), math.log(2), dtype=torch.float64))


def test_other_losses():
    pc, pr, rc, rr = _four()
    h = (pc - rc) - (pr - rr)
    assert torch.allclose(HingeLoss(0.5)(pc, pr, rc, rr)[0], torch.relu(1 - 0.5 * h))
    eps = 0.1
    robust = RobustLoss(0.4, eps)(pc, pr, rc, rr)[0]
    assert torch.allclose(robust, (-(1 - eps) * F.logsigmoid(0.4 * h) + eps * F.logsigmoid(-0.4 * h)) / (1 - 2 * eps))
    cdpo = SigmoidLoss(0.4, eps)(pc, pr, rc, rr)[0]
    assert torch.allclose(cdpo, -(1 - eps) * F.logsigmoid(0.4 * h) - eps * F.logsigmoid(-0.4 * h))
    nc, nr = torch.full((5,), 4.0, dtype=torch.float64), torch.full((5,), 2.0, dtype=torch.float64)
    ipo = IPOLoss(0.4)(pc, pr, rc, rr, nc, nr)[0]
    assert torch.allclose(ipo, ((pc - rc) / 4 - (pr - rr) / 2 - 1 / 0.8) ** 2)
    with pytest.raises(ValueError):
        IPOLoss(0.4)(pc, pr, rc, rr)
    assert torch.allclose(sft_loss(pc, nc), -pc / 4)
    with pytest.raises(ValueError):
        make_loss("nope", 0.1)


@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_make_loss_uses_the_label_smoothing_it_is_given(eps):
    """The robust loss at label smoothing 0 is the sigmoid loss; it never falls back to another eps."""
    pc, pr, rc, rr = _four()
    robust = make_loss("robust", 0.4, eps)
    assert robust.eps == eps
    assert torch.allclose(robust(pc, pr, rc, rr)[0], RobustLoss(0.4, eps)(pc, pr, rc, rr)[0])
    if eps == 0:
        assert torch.allclose(robust(pc, pr, rc, rr)[0], SigmoidLoss(0.4)(pc, pr, rc, rr)[0])
