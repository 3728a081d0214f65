"""Graders of chapter 03's exercises: each test takes the student's function and raises ``AssertionError``
with a helpful message on failure (see :func:`utils.exercises.grade`)."""
from __future__ import annotations

from typing import Any, Callable

Test = Callable[[Callable[..., Any]], None]


# ---------------------------------------------------------------- 03.1: the rejection-sampling filter
def _rft_case():
    from ..world.countdown import make_problem

    p = make_problem([3, 5, 7], 26, ["7*3=21", "21+5=26"], "(7*3)+5")
    q = make_problem([2, 4, 6], 14, ["4*2=8", "8+6=14"], "(4*2)+6")
    good = "<think>7*3=21,21+5=26</think><answer>(7*3)+5</answer>"
    good2 = "<think>3*7=21,5+21=26</think><answer>5+3*7</answer>"
    return p, q, good, good2


def _t_rft_filter(fn: Callable) -> None:
    """keeps exactly the verified, well-formed samples, as (problem, text) pairs in sample order"""
    p, q, good, good2 = _rft_case()
    wrong = "<think>7*3=21</think><answer>7*3</answer>"
    sloppy = "the answer is <answer>(7*3)+5</answer>"  # right answer, but not in the format
    got = list(fn([p, q], [[wrong, good, sloppy, good2], [wrong, "<think></think><answer>6*2+4</answer>"]], None))
    want = [(p, good), (p, good2)]
    assert [(a, b.strip()) for a, b in got] == want, f"expected {[(a.prompt, b) for a, b in want]}, got {[(a.prompt, b) for a, b in got]}"


def _t_rft_dedupe_cap(fn: Callable) -> None:
    """drops duplicates (same text up to surrounding whitespace) and keeps at most max_per_problem per problem"""
    p, q, good, good2 = _rft_case()
    q_good = "<think>4*2=8,8+6=14</think><answer>(4*2)+6</answer>"
    samples = [[good, " " + good + "\n", good2, good], [q_good, q_good]]
    got = [(a, b.strip()) for a, b in fn([p, q], samples, None)]
    assert got == [(p, good), (p, good2), (q, q_good)], f"duplicates should be kept once, got {len(got)} pairs: {got}"
    got1 = [(a, b.strip()) for a, b in fn([p, q], samples, 1)]
    assert got1 == [(p, good), (q, q_good)], f"max_per_problem=1 should keep the first correct sample of each problem, got {got1}"


def _t_rft_garbage(fn: Callable) -> None:
    """never raises on odd samples (None, numbers, unbalanced tags, huge strings) and keeps none of them"""
    p, q, _, _ = _rft_case()
    junk = [None, 7, "", "<answer>", "<think></think><answer>((((</answer>", "<think>" * 500, "<answer>" + "9" * 3000 + "</answer>"]
    try:
        got = list(fn([p, q], [junk, junk[::-1]], 2))
    except Exception as e:  # noqa: BLE001
        raise AssertionError(f"raised {type(e).__name__} on odd samples") from None
    assert got == [], f"nothing here is a correct solution, got {got}"


# ---------------------------------------------------------------- 03.2: the forgetting metric
def _t_forget_values(fn: Callable) -> None:
    """mean over the skills NOT trained of (accuracy before - accuracy after)"""
    before = {"countdown-3": 0.40, "addition-2": 0.95, "addition-3": 0.90, "addition-4": 0.80}
    after = {"countdown-3": 0.60, "addition-2": 0.93, "addition-3": 0.70, "addition-4": 0.50}
    got = fn(before, after, ["countdown-3"])
    want = (0.02 + 0.20 + 0.30) / 3
    assert abs(got - want) < 1e-9, f"expected {want:.4f}, got {got}"
    got2 = fn(before, after, ["countdown-3", "addition-4"])
    assert abs(got2 - 0.11) < 1e-9, f"with addition-4 also trained, expected (0.02 + 0.20) / 2 = 0.11, got {got2}"


def _t_forget_sign(fn: Callable) -> None:
    """zero when nothing changes; negative (not clipped) when the held-out skills improve"""
    before = {"a": 0.5, "b": 0.6, "c": 0.1}
    assert abs(fn(before, dict(before), ["a"])) < 1e-12, "no change should give 0"
    after = {"a": 0.9, "b": 0.7, "c": 0.3}
    got = fn(before, after, ["a"])
    assert abs(got - (-0.15)) < 1e-9, f"improvements are negative forgetting (backward transfer): expected -0.15, got {got}"


EXERCISES: dict[str, tuple[str, list[Test]]] = {
    "03.1": ("the rejection-sampling filter", [_t_rft_filter, _t_rft_dedupe_cap, _t_rft_garbage]),
    "03.2": ("the forgetting metric", [_t_forget_values, _t_forget_sign]),
}
