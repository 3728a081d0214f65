"""utils.reward_models.judges: the likelihood judge, AI-labelled pairs, agreement and bias probes."""
import pytest
import torch

from utils import world
from utils.lm import load_model
from utils.lm.generation import build_prompts
from utils.reward_models import judges
from utils.world.preferences import true_reward


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny-sft")


def test_likelihood_judge_is_the_sum_of_token_logprobs(tiny):
    model, tok = tiny
    probs = world.sample_problems("countdown", 3, 3, split="test", seed=0)
    comps = [p.completion() for p in probs]
    s = judges.likelihood_judge(model, tok, probs, comps)
    mean = judges.likelihood_judge(model, tok, probs, comps, per_token=True)
    assert s.shape == (3,) and (s < 0).all()
    # from scratch, one unpadded sequence at a time: prompt + completion + end token
    for i, (p, c) in enumerate(zip(probs, comps)):
        prompt_ids = tok(build_prompts(tok, [p])[0], add_special_tokens=False)["input_ids"]
        comp_ids = tok(c + tok.eos_token, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prompt_ids + comp_ids])
        with torch.no_grad():
            logp = model(input_ids=ids).logits[0, :-1].float().log_softmax(-1)
        want = logp[torch.arange(len(prompt_ids) - 1, ids.shape[1] - 1), torch.tensor(comp_ids)].sum()
        # float32 sums of ~30 log-probs in two batch layouts: agreement to ~1e-5 relative; 1e-4 is safe on any CPU
        assert abs(float(s[i]) - float(want)) < 1e-4 * abs(float(want))
        assert float(mean[i]) == pytest.approx(float(s[i]) / len(comp_ids), rel=1e-5)


def test_likelihood_judge_accepts_malformed_text_and_checks_lengths(tiny):
    model, tok = tiny
    probs = world.sample_problems("countdown", 3, 2, split="test", seed=1)
    out = judges.likelihood_judge(model, tok, probs, ["", "<answer>((("])
    assert torch.isfinite(out).all()
    with pytest.raises(ValueError, match="problems"):
        judges.likelihood_judge(model, tok, probs, ["x"])


def test_label_pairs_follow_the_scores_and_keep_true_rewards():
    probs = world.sample_problems("countdown", 3, 40, split="train", seed=2)
    good, bad = judges.probe_pairs(probs, "reference", "wrong_answer", seed=0)
    pairs = judges.label_pairs(probs, good, bad, torch.ones(40), torch.zeros(40), tau=0.01)
    assert len(pairs) == 40 and all(q.chosen == g for q, g in zip(pairs, good))
    assert all(q.chosen_reward == true_reward(q.problem, q.chosen) for q in pairs)
    flipped = judges.label_pairs(probs, good, bad, torch.zeros(40), torch.ones(40), tau=0.01)
    assert all(q.chosen == b for q, b in zip(flipped, bad))
    noisy = judges.label_pairs(probs * 5, good * 5, bad * 5, torch.zeros(200), torch.zeros(200), tau=1.0, skip_ties=False)
    share = sum(q.chosen in good for q in noisy) / len(noisy)
    assert 0.35 < share < 0.65                                    # equal scores: a fair coin
    assert judges.label_pairs(probs, good, bad, torch.zeros(40), torch.zeros(40)) == []   # ties skipped
    with pytest.raises(ValueError):
        judges.label_pairs(probs, good, bad[:3], torch.zeros(40), torch.zeros(40))
    with pytest.raises(ValueError):
        judges.label_pairs(probs, good, bad, torch.zeros(40), torch.zeros(40), tau=0)


def test_agreement_and_preference_rate():
    sa, sb = torch.tensor([1.0, 0.0, 2.0, 5.0]), torch.tensor([0.0, 1.0, 2.0, 1.0])
    ga, gb = torch.tensor([1.0, 1.0, 1.0, 3.0]), torch.tensor([0.0, 0.0, 0.0, 3.0])
    # pairs 0-2 have a gold order (a better); pair 3 is a gold tie and skipped; the judge: right, wrong, tie
    assert judges.judge_agreement(sa, sb, ga, gb) == pytest.approx(0.5)
    assert judges.preference_rate(sa, sb) == pytest.approx((1 + 0 + 0.5 + 1) / 4)
    assert judges.judge_agreement(sa, sb, ga * 0, gb * 0) != judges.judge_agreement(sa, sb, ga * 0, gb * 0)   # nan
    with pytest.raises(ValueError):
        judges.preference_rate(torch.zeros(2), torch.zeros(3))


def test_probe_pairs_kinds():
    probs = world.sample_problems("countdown", 3, 5, split="test", seed=3)
    a, b = judges.probe_pairs(probs, "verbose", "reference")
    assert len(a) == len(b) == 5 and all(len(x) > len(y) for x, y in zip(a, b))
    assert all(world.score(p, x) == world.score(p, y) == 1.0 for p, x, y in zip(probs, a, b))
    with pytest.raises(ValueError, match="unknown candidate kind"):
        judges.probe_pairs(probs, "nope", "reference")
