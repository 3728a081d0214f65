"""The world: generators, exact verifiers, step labels, the split, the parser."""
import random
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from utils import world
from utils.world import Problem, addition, countdown, parse_completion, score, strings


def test_countdown_hand_cases():
    p = countdown.make_problem([3, 5, 7], 26)
    ok = "<think>7*3=21,21+5=26</think><answer>(7*3)+5</answer>"
    assert score(p, ok) == 1.0
    assert score(p, "<think></think><answer>5 + 3*7</answer>") == 1.0  # precedence, spaces
    assert score(p, "<think></think><answer>7*3+5+0</answer>") == 0.0  # extra number
    assert score(p, "<think></think><answer>7*3</answer>") == 0.0  # missing a number
    assert score(p, "<think></think><answer>(7+3)*5</answer>") == 0.0  # wrong value
    assert score(p, "<think></think><answer>26</answer>") == 0.0  # copying the target is not a solution
    assert score(p, "(7*3)+5") == 0.0  # no answer block


def test_countdown_division_is_exact():
    p = countdown.make_problem([8, 2, 7], 11)
    assert score(p, "<think></think><answer>8/2+7</answer>") == 1.0
    q = countdown.make_problem([7, 2, 9], 14)
    assert countdown.evaluate_expression("7/2")[0] == Fraction(7, 2)  # fractions are evaluated exactly...
    assert score(q, "<think></think><answer>7/2+9</answer>") == 0.0  # ...and 12.5 != 14
    # the answer is judged by its exact value: a fractional intermediate in the expression is allowed
    assert score(countdown.make_problem([7, 2, 2], 7), "<think></think><answer>7/2*2</answer>") == 1.0


def test_step_labels_valid_and_reachable():
    p = countdown.make_problem([3, 5, 7], 26)
    good = countdown.step_labels(p, "7*3=21,21+5=26")
    assert [(l.valid, l.reachable) for l in good] == [(True, True), (True, True)]
    dead_end = countdown.step_labels(p, "7+5=12,12*3=36")
    assert dead_end[0].valid and not dead_end[0].reachable
    wrong = countdown.step_labels(p, "7*3=22,22+5=27")
    assert [l.valid for l in wrong] == [False, False]  # everything after the first error is invalid
    unavailable = countdown.step_labels(p, "9*3=27")
    assert not unavailable[0].valid
    reuse = countdown.step_labels(p, "7*3=21,7+5=12")
    assert reuse[0].valid and not reuse[1].valid


def test_solver_and_generated_problems_are_solvable():
    rng = random.Random(0)
    for level in countdown.LEVELS:
        for _ in range(30):
            p = countdown.generate(rng, level)
            assert score(p, p.completion()) == 1.0, p
            assert countdown.solvable(p.meta["numbers"], p.meta["target"])
            steps, expr = countdown.solve(p.meta["numbers"], p.meta["target"])
            assert score(p, world.format_completion(",".join(steps), expr)) == 1.0
            assert all(l.valid and l.reachable for l in countdown.step_labels(p, ",".join(p.steps)))
    assert countdown.solve([1, 1], 50) is None
    with pytest.raises(ValueError):
        countdown.make_problem([1, 1], 50)


def test_addition_and_strings():
    p = addition.make_problem(457, 68)
    assert p.steps == ("7+8+0=15:5", "5+6+1=12:25", "4+0+1=5:525") and p.answer == "525"
    assert addition.make_problem(883, 437).steps[-1] == "8+4+1=13:1320"  # the last carry is written out
    assert score(p, p.completion()) == 1.0 and score(p, p.completion(cot=False)) == 1.0
    assert score(p, "<think></think><answer>524</answer>") == 0.0
    assert [lab.valid for lab in addition.step_labels(p, "7+8+0=15:5, 5+6+0=11:15")] == [True, False]
    assert all(lab.reachable is None for lab in addition.step_labels(p, "7+8+0=15:5"))  # no solver to ask
    s = strings.make_problem("reverse", "cat")
    assert s.answer == "tac" and score(s, "<think></think><answer> tac </answer>") == 1.0
    d = strings.make_problem("sort", "tac", history=(("reverse cat", "tac"),))
    msgs = d.messages()
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant"] and msgs[2]["content"] == "now sort it"
    with pytest.raises(ValueError):
        strings.make_problem("explode", "cat")


@pytest.mark.parametrize("family", ["countdown", "addition", "strings"])
def test_every_level_generates_and_references_score(family):
    fam = world.get_family(family)
    for level in fam.levels:
        for p in world.sample_problems(family, level, 5, split="train", seed=1):
            assert p.level == level or family == "strings"
            assert score(p, p.completion()) == 1.0


def test_split_is_disjoint_deterministic_and_about_20_percent():
    train = {p.uid for p in world.sample_problems("countdown", 3, 300, split="train")}
    test = {p.uid for p in world.sample_problems("countdown", 3, 150, split="test")}
    assert not train & test
    assert [p.uid for p in world.sample_problems("countdown", 3, 20, "test", seed=5)] == \
           [p.uid for p in world.sample_problems("countdown", 3, 20, "test", seed=5)]
    uids = [f"x{i}" for i in range(5000)]
    frac = sum(world.split_of(u) == "test" for u in uids) / len(uids)
    assert 0.17 < frac < 0.23


def test_clear_errors():
    with pytest.raises(KeyError, match="known families"):
        world.get_family("chess")
    with pytest.raises(ValueError, match="levels"):
        world.sample_problems("countdown", 9, 1)
    with pytest.raises(ValueError, match="distinct"):
        world.sample_problems("countdown", 2, 500)


def test_an_unknown_family_is_an_error_not_a_zero():
    """A completion never raises; a problem of an unregistered family is a programming error and says so."""
    from utils.world import rewards

    ghost = Problem("chess", "mate in one", "Qh7")
    for call in (lambda: score(ghost, "<answer>Qh7</answer>"), lambda: rewards.outcome_reward(ghost, "x"),
                 lambda: rewards.process_rewards(ghost, "x"), lambda: world.label_steps(ghost, "x"),
                 lambda: rewards.trl_reward(rewards.outcome_reward)(completions=["x"], problem=[rewards.problem_to_json(ghost)])):
        with pytest.raises(KeyError, match=r"unknown task family 'chess'.*addition.*countdown.*gsm8k.*strings"):
            call()
    with pytest.raises(ValueError, match="already registered"):
        world.register(world.Family("countdown", world.FAMILIES["strings"].generate, world.FAMILIES["strings"].verify_answer, (1,)))


def test_step_labelling_is_a_family_property():
    cd = countdown.make_problem([3, 5, 7], 26)
    add = addition.make_problem(99, 7)
    word = strings.make_problem("sort", "bca")
    assert [(lab.valid, lab.reachable) for lab in world.label_steps(cd, cd.completion())] == [(True, True), (True, True)]
    assert [lab.valid for lab in world.label_steps(add, add.completion())] == [True] * len(add.steps)
    assert world.label_steps(word, word.completion()) is None  # strings have no checkable steps
    assert world.label_steps(cd, None) == [] and world.label_steps(cd, "<think>7*3=21") == []
    assert world.FAMILIES["countdown"].reachability and not world.FAMILIES["addition"].reachability


def test_parser():
    assert parse_completion("<think>a</think><answer>b</answer>") == world.Parsed("a", "b", True)
    assert parse_completion("  <think></think>\n<answer> 7 </answer>\n").well_formed
    bad = parse_completion("<think>a<answer>x</answer></think><answer>b</answer>")
    assert not bad.well_formed and bad.answer == "b"
    assert parse_completion(None) == world.Parsed(None, None, False)
    assert parse_completion("<answer>1</answer><answer>2</answer>").answer == "2"


PROBLEMS = [countdown.make_problem([3, 5, 7], 26), addition.make_problem(99, 7), strings.make_problem("sort", "bca")]
tag = st.sampled_from(["<think>", "</think>", "<answer>", "</answer>", "(", ")", "=", ",", "+", "*", "/", "-"])
junk = st.lists(st.one_of(tag, st.text(max_size=8), st.integers(0, 10**12).map(str)), max_size=40).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(junk, st.text(max_size=300), st.none(), st.integers(), st.binary(max_size=50)))
def test_verifiers_never_raise(text):
    from utils.world import rewards

    for p in PROBLEMS:
        assert score(p, text) in (0.0, 1.0)
        assert rewards.format_reward(p, text) in (0.0, 1.0)
        assert all(r in (0.0, 1.0) for r in rewards.process_rewards(p, text))
        if p.family == "countdown":
            countdown.step_labels(p, text if isinstance(text, str) else None)
        countdown.evaluate_expression(text)


def test_verifiers_on_huge_inputs():
    p = PROBLEMS[0]
    assert score(p, "<think>" + "1+1=2," * 100_000 + "</think><answer>" + "(" * 10_000 + "</answer>") == 0.0
    assert countdown.evaluate_expression("(" * 5000 + "1" + ")" * 5000) is None


# ----------------------------------------------------------------------------------------------
# Reorderings: the same problem with its numbers listed in other orders
# ----------------------------------------------------------------------------------------------


def _distinct_numbers(level: int, n: int) -> list[world.Problem]:
    probs = world.sample_problems("countdown", level, 200, split="test", seed=3)
    return [p for p in probs if len(set(p.meta["numbers"])) == level][:n]


@pytest.mark.parametrize("level,count", [(3, 6), (4, 24)])
def test_reorderings_of_countdown_are_every_distinct_ordering(level, count):
    for p in _distinct_numbers(level, 5):
        qs = world.reorderings(p, 100)
        assert len(qs) == count and qs[0] == p
        assert len({q.prompt for q in qs}) == count  # distinct prompts
        for q in qs:  # one problem: same identity, split, target, multiset; the reference answer still verifies
            assert (q.uid, q.split, q.meta["target"], q.level) == (p.uid, p.split, p.meta["target"], p.level)
            assert sorted(q.meta["numbers"]) == sorted(p.meta["numbers"])
            assert world.score(q, p.completion()) == world.score(p, p.completion()) == 1.0
            assert world.score(q, "<answer>1+1</answer>") == world.score(p, "<answer>1+1</answer>") == 0.0


def test_reorderings_cap_at_k_and_are_deterministic():
    p = _distinct_numbers(4, 1)[0]
    assert [q.prompt for q in world.reorderings(p, 5)] == [q.prompt for q in world.reorderings(p, 24)[:5]]
    assert len(world.reorderings(p, 5)) == 5 and world.reorderings(p, 1) == [p]
    assert [q.prompt for q in world.reorderings(p, 24)] == [q.prompt for q in world.reorderings(p, 24)]
    with pytest.raises(ValueError):
        world.reorderings(p, 0)


def test_reorderings_with_repeated_numbers_and_other_families():
    p = world.countdown.make_problem([3, 3, 5], 14)
    assert [q.meta["numbers"] for q in world.reorderings(p, 6)] == [(3, 3, 5), (3, 5, 3), (5, 3, 3)]
    for fam, lvl in [("addition", 2), ("strings", 1)]:
        q = world.sample_problems(fam, lvl, 1, split="test")[0]
        assert world.reorderings(q, 6) == [q]
