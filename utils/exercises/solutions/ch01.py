"""Reference solutions to chapter 01's exercises (spoilers!). The test-suite checks that each passes its grader."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def reinforce_loss_with_baseline(logprobs: "torch.Tensor", mask: "torch.Tensor", rewards: "torch.Tensor",
                                 baseline: "torch.Tensor") -> "torch.Tensor":
    """01.1: ``-1/B sum_b (r_b - b_b) sum_t log pi(y_bt | s_bt)``, the advantage detached."""
    adv = (rewards - baseline).detach()
    return -(adv[:, None] * logprobs * mask).sum() / logprobs.shape[0]


def scst_advantages(rewards: "torch.Tensor", greedy_rewards: "torch.Tensor", group_size: int) -> "torch.Tensor":
    """01.2: ``r(sample) - r(greedy)``, the greedy reward repeated for the G samples of its prompt."""
    return rewards - greedy_rewards.repeat_interleave(group_size)


def leave_one_out_baseline(rewards: "torch.Tensor", group_size: int) -> "torch.Tensor":
    """01.3: mean reward of the other ``G - 1`` samples of the same prompt."""
    g = rewards.view(-1, group_size)
    return ((g.sum(1, keepdim=True) - g) / (group_size - 1)).reshape(-1)


def signal_probability(p: float, group_size: int) -> float:
    """01.6: the G samples of a prompt with success rate p disagree unless all fail or all succeed."""
    return 1.0 - (1.0 - p) ** group_size - p**group_size
