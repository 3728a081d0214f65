"""pass@k against brute force, maj@k, the evaluation table, and the order-averaged evaluator on the tiny model."""
import itertools

import numpy as np
import pytest

from utils import world
from utils.lm.evaluation import EvalResult, compare, evaluate, evaluate_skills, maj_at_k, majority_correct, pass_at_k
from utils.lm.generation import generate_texts
from utils.world import format_completion, sample_problems


def brute(n, c, k):
    outcomes = [1] * c + [0] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(outcomes[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 9))
def test_pass_at_k_matches_enumeration(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute(n, c, k), abs=1e-12)


def test_pass_at_k_errors_and_monotone():
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 5)
    vals = [pass_at_k(16, 3, k) for k in range(1, 17)]
    assert all(a <= b for a, b in zip(vals, vals[1:]))


def test_majority_vote():
    assert majority_correct(["5", "5", "7"], [True, True, False])
    assert not majority_correct(["5", "7", "7"], [True, False, False])
    assert majority_correct([" 7", "7 ", None, None], [True, True, False, False])  # whitespace, abstentions
    assert not majority_correct([None, None], [False, False])
    assert maj_at_k(["1", "1", "2", "2"], [True, True, False, False], 2) == 0.5


def test_table_rows():
    probs = sample_problems("addition", 2, 4, "test")
    right = [p.completion() for p in probs]
    wrong = format_completion("", "x")
    samples = np.array([[1, 0, 0, 0]] * 2 + [[0, 0, 0, 0]] * 2, dtype=float)
    texts = [[right[i], wrong, wrong, wrong] for i in range(4)]
    res = EvalResult(probs, np.array([1.0, 1.0, 0.0, 0.0]), right[:2] + [wrong, wrong], samples, texts, ks=(1, 4))
    (row,) = res.table()
    assert row["greedy"] == 0.5 and row["format"] == 1.0
    assert row["pass@1"] == pytest.approx(0.125) and row["pass@4"] == pytest.approx(0.5)
    assert row["maj@4"] == 0.0  # the wrong answer "x" wins every vote 3:1
    assert row["step_valid"] == pytest.approx(0.5)


# ----------------------------------------------------------------------------------------------
# The evaluator on the tiny model: orders, skills, decode=, compare
# ----------------------------------------------------------------------------------------------

MAXTOK = 40


def _cd3(n: int = 6) -> list[world.Problem]:
    probs = sample_problems("countdown", 3, 60, split="test", seed=5)
    return [p for p in probs if len(set(p.meta["numbers"])) == 3][:n]


@pytest.fixture(scope="module")
def cd3_eval(tiny_sft):
    model, tok = tiny_sft
    probs = _cd3()
    return probs, evaluate(model, tok, probs, n_samples=2, max_new_tokens=MAXTOK, ks=(1, 2), progress=False, orders=3)


def test_one_ordering_is_the_plain_greedy_accuracy(tiny_sft):
    model, tok = tiny_sft
    probs = _cd3()
    res = evaluate(model, tok, probs, max_new_tokens=MAXTOK, progress=False)
    texts = [t[0] for t in generate_texts(model, tok, probs, 1, 0.0, MAXTOK)]
    assert res.greedy_texts == texts
    assert res.greedy.tolist() == [world.score(p, t) for p, t in zip(probs, texts)]
    assert res.greedy_orders.shape == (len(probs), 1) and res.accuracy == float(np.mean(res.greedy))


def test_orders_average_the_per_ordering_accuracies(tiny_sft, cd3_eval):
    model, tok = tiny_sft
    probs, res = cd3_eval
    assert res.greedy_orders.shape == (len(probs), 3) and res.sample_orders.shape == (len(probs), 3, 2)
    assert all(len(qs) == 3 and qs[0] == p for qs, p in zip(res.orderings, probs))
    # each ordering on its own, one call per ordering: the same verdicts, and their mean is the [P] accuracy
    one_by_one = [evaluate(model, tok, [qs[o] for qs in res.orderings], max_new_tokens=MAXTOK, progress=False).greedy
                  for o in range(3)]
    assert np.array_equal(np.stack(one_by_one, 1), res.greedy_orders)
    assert np.allclose(res.greedy, np.mean(one_by_one, 0))
    assert np.allclose(res.greedy * 3, np.round(res.greedy * 3))  # multiples of 1/k
    assert res.greedy_order_texts[0][0] == res.greedy_texts[0] and len(res.sample_order_texts[0]) == 3
    assert np.allclose(res.samples, res.sample_orders.mean(1)) and res.sampled is not None
    assert len(res.sampled.texts) == len(probs) * 3 * 2
    assert res.pass_at(1) == pytest.approx(float(res.samples.mean()))
    (row,) = res.table()
    assert row["greedy"] == pytest.approx(float(res.greedy.mean())) and {"pass@2", "maj@2", "format"} <= set(row)


def test_families_without_an_order_get_one_ordering(tiny_sft):
    model, tok = tiny_sft
    probs = sample_problems("addition", 2, 2, "test") + _cd3(2)
    res = evaluate(model, tok, probs, max_new_tokens=MAXTOK, progress=False, orders=6)
    assert res.n_orders.tolist() == [1, 1, 6, 6]
    assert np.isnan(res.greedy_orders[:2, 1:]).all() and not np.isnan(res.greedy).any()


def test_evaluate_skills_and_decode_hook(tiny_sft):
    model, tok = tiny_sft
    a2, a3 = sample_problems("addition", 2, 4, "test"), sample_problems("addition", 3, 3, "test")
    skills = evaluate_skills(model, tok, {"a2": a2, "a3": a3}, max_new_tokens=48, progress=False)
    whole = evaluate(model, tok, a2 + a3, max_new_tokens=48, progress=False)
    assert list(skills) == ["a2", "a3"] and skills["a3"].problems == a3
    assert skills["a2"].greedy.tolist() + skills["a3"].greedy.tolist() == whole.greedy.tolist()
    assert skills["a2"].accuracy == float(whole.greedy[:4].mean())
    sampled = evaluate_skills(model, tok, {"a2": a2}, n_samples=3, greedy=False, max_new_tokens=48, progress=False)["a2"]
    assert sampled.accuracy == pytest.approx(float(sampled.samples.mean())) and sampled.samples.shape == (4, 3)
    calls = []

    def decode(problems, max_new_tokens, batch_size):  # a stand-in decoder: always the reference answer
        calls.append((len(problems), max_new_tokens))
        return [p.completion() for p in problems]

    res = evaluate(model, tok, a2, max_new_tokens=48, progress=False, decode=decode)
    assert calls == [(4, 48)] and res.accuracy == 1.0
    with pytest.raises(ValueError):
        evaluate(model, tok, a2, n_samples=2, decode=decode, progress=False)


def test_compare_is_paired_and_checks_the_problems(cd3_eval):
    probs, res = cd3_eval
    assert tuple(compare(res, res)) == (0.0, 0.0, 0.0)
    assert tuple(compare(res, res, "pass@1")) == (0.0, 0.0, 0.0)
    perfect = EvalResult(probs, np.ones(len(probs)), [p.completion() for p in probs], np.zeros((len(probs), 0)), [])
    d = compare(perfect, res)
    assert d.mean == pytest.approx(1 - float(res.greedy.mean())) and d.lo <= d.mean <= d.hi
    with pytest.raises(ValueError):
        compare(res, res.select(range(1, len(probs))))
    with pytest.raises(ValueError):
        compare(perfect, perfect, "pass@1")  # no samples drawn


# ----------------------------------------------------------------------------------------------
# Faithfulness: a right answer after wrong steps is not a faithful one
# ----------------------------------------------------------------------------------------------


def test_faithful_counts_right_answers_whose_steps_all_hold():
    from utils.world.countdown import make_problem

    prob = make_problem([9, 7, 6], 10, ["7-6=1", "9+1=10"], "9+(7-6)")
    sound = format_completion("7-6=1,9+1=10", "9+(7-6)")
    wrong_steps = format_completion("7-6=2,9+2=11", "9+(7-6)")  # the verifier reads only the answer: it says right
    no_steps = format_completion("", "9+(7-6)")
    wrong = format_completion("7-6=1,9+1=10", "9*7-6")
    texts = [sound, wrong_steps, no_steps, wrong]
    assert [world.score(prob, t) for t in texts] == [1.0, 1.0, 1.0, 0.0]
    res = EvalResult([prob] * 4, np.array([1.0, 1.0, 1.0, 0.0]), texts, np.zeros((4, 0)), [])
    assert list(res.faithful()) == [1.0, 0.0, 0.0, 0.0]
    assert list(res.scores("unfaithful")) == [0.0, 1.0, 1.0, 0.0]
    assert res.faithful_share == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="metric"):
        res.scores("steps")


def test_faithful_without_a_step_labeller_is_the_accuracy(tiny_sft):
    probs = sample_problems("strings", 1, 3, "test")
    texts = [p.completion() for p in probs]
    res = EvalResult(probs, np.ones(3), texts, np.zeros((3, 0)), [])
    assert list(res.faithful()) == [1.0, 1.0, 1.0] and res.faithful_share == 1.0
