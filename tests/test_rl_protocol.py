"""The RL protocol: the placebo reward keeps each group's rewards and breaks their link to the completions;
``effect`` reports method - start, placebo - start and method - placebo as paired intervals."""
import numpy as np
import pytest
import torch

from utils.lm.evaluation import EvalResult
from utils.rl.common import placebo_reward
from utils.rl.protocol import arm_scores, effect, pass_curve
from utils.world import sample_problems


def _fixed(values):
    return lambda problems, texts: torch.tensor(values[: len(texts)], dtype=torch.float32)


def test_placebo_permutes_within_each_group_only():
    G = 4
    r = [1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 3.0, 4.0, 5.0, 6.0]
    fn = placebo_reward(_fixed(r), G, seed=0)
    outs = [fn([None] * 12, [""] * 12) for _ in range(20)]
    for out in outs:
        for g in range(3):  # every group keeps its multiset of rewards, so its mean, std and advantages
            assert sorted(out[g * G:(g + 1) * G].tolist()) == sorted(r[g * G:(g + 1) * G])
    # ...but which completion earns which reward changes (a placebo that returns the rewards unpermuted fails)
    assert any(o.tolist() != r for o in outs)
    assert len({tuple(o.tolist()) for o in outs}) > 3
    again = placebo_reward(_fixed(r), G, seed=0)
    assert torch.equal(again([None] * 12, [""] * 12), outs[0])  # reproducible from its seed


def test_placebo_whole_batch_and_errors():
    r = [float(i) for i in range(8)]
    out = placebo_reward(_fixed(r), None, seed=1)([None] * 8, [""] * 8)
    assert sorted(out.tolist()) == r and out.tolist() != r
    with pytest.raises(ValueError, match="blocks of 3"):
        placebo_reward(_fixed(r), 3)([None] * 8, [""] * 8)
    with pytest.raises(ValueError, match="at least 2"):
        placebo_reward(_fixed(r), 1)


def _result(probs, greedy, samples=None):
    n = len(probs)
    s = np.zeros((n, 0)) if samples is None else np.asarray(samples, dtype=float)
    texts = [p.completion() for p in probs]
    return EvalResult(probs, np.asarray(greedy, dtype=float), texts, s, [[t] * s.shape[1] for t in texts])


def test_effect_is_method_minus_placebo_paired():
    probs = sample_problems("addition", 2, 6, "test")
    start = _result(probs, [0, 0, 0, 1, 1, 0])
    method = [_result(probs, [1, 1, 0, 1, 1, 0]), _result(probs, [1, 0, 1, 1, 1, 0])]
    placebo = [_result(probs, [0, 0, 0, 1, 0, 0])]
    e = effect(start, method, placebo)
    assert e.start == pytest.approx(2 / 6) and e.method == pytest.approx(4 / 6) and e.placebo == pytest.approx(1 / 6)
    assert e.gain.mean == pytest.approx(2 / 6) and e.placebo_gain.mean == pytest.approx(-1 / 6)
    assert e.corrected.mean == pytest.approx(3 / 6) and e.seeds == 1
    assert e.corrected.lo <= e.corrected.mean <= e.corrected.hi
    assert list(arm_scores(method)) == [1.0, 0.5, 0.5, 1.0, 1.0, 0.0]
    assert "method - placebo" in e.row()
    other = _result(sample_problems("addition", 2, 6, "test", seed=3), [0] * 6)
    with pytest.raises(ValueError, match="same problems"):
        effect(start, method, [other])


def test_pass_curve_needs_samples_and_rises():
    probs = sample_problems("addition", 2, 2, "test")
    res = _result(probs, [1, 0], samples=[[1, 0, 0, 0], [0, 0, 0, 0]])
    curve = pass_curve(res)
    assert list(curve) == [1, 2, 4] and curve[1] == pytest.approx(0.125) and curve[4] == pytest.approx(0.5)
    assert curve[1] <= curve[2] <= curve[4]
    with pytest.raises(ValueError, match="no samples"):
        pass_curve(_result(probs, [1, 0]))
