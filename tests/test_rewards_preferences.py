"""Rewards (incl. the TRL adapter) and the preference family with its hidden true reward."""
import random

import pytest

from utils.world import preferences, rewards, sample_problems
from utils.world.countdown import make_problem


def test_rewards_on_chat_completions_and_json_round_trip():
    p = make_problem([3, 5, 7], 26)
    assert rewards.problem_from_json(rewards.problem_to_json(p)) == p
    f = rewards.trl_reward(rewards.outcome_reward)
    chat = [{"role": "assistant", "content": p.completion()}]
    col = [rewards.problem_to_json(p)] * 4
    assert f(prompts=[""] * 4, completions=[p.completion(), chat, None, "junk"], problem=col) == [1.0, 1.0, 0.0, 0.0]
    assert rewards.process_rewards(p, "<think>7+5=12,12*3=36</think><answer>x</answer>") == [0.0, 0.0]
    assert rewards.process_rewards(p, p.completion()) == [1.0, 1.0]


def test_true_reward_orders_candidate_kinds():
    rng = random.Random(0)
    for p in sample_problems("countdown", 3, 10) + sample_problems("addition", 3, 10):
        r = {k: preferences.true_reward(p, preferences.candidate(p, k, rng)) for k in preferences.KINDS}
        assert r["reference"] == max(r.values())
        assert r["reference"] > r["verbose"] > r["wrong_answer"] - 0.5
        assert r["reference"] > r["no_tags"] and r["reference"] > r["truncated"]


def test_preference_pairs_follow_bradley_terry():
    probs = sample_problems("countdown", 3, 150)
    clean = preferences.preference_pairs(probs, 2, tau=0.01, seed=0)
    assert all(pp.chosen_reward > pp.rejected_reward for pp in clean)
    noisy = preferences.preference_pairs(probs, 2, tau=1.0, seed=0)
    agree = sum(pp.chosen_reward > pp.rejected_reward for pp in noisy) / len(noisy)
    assert 0.5 < agree < 0.95  # noisy labels, still better than chance
    row = noisy[0].as_row()
    assert set(row) == {"prompt", "chosen", "rejected", "chosen_reward", "rejected_reward", "problem"}
    with pytest.raises(ValueError):
        preferences.preference_pairs(probs, tau=0)
