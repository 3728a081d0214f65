"""What the RL trainers share (PPO, GRPO, OREO): the reward signature, the verifier reward, the critic, masked
token means, the exact per-state KL and the per-step history of a training run.

* :data:`RewardFn` - ``reward_fn(problems, texts) -> [B]``: the verifier, a learned reward model, an ensemble.
* :func:`verifier_reward` - the ground-truth reward, :func:`utils.world.score`.
* :func:`placebo_reward` - the control arm of every RL experiment: the same rewards, permuted within each group
  (same reward statistics and advantage magnitudes, no information about which completion earned them).
* :class:`Critic` - a separate value network (a copy of the LM plus a
  :class:`utils.rl.policy_gradient.ValueHead`), as in InstructGPT: PPO's critic and OREO's value model.
* :func:`masked_mean` - the token-level mean over a completion mask.
* :func:`exact_token_kl` - ``KL(pi(.|s_t) || pi_ref(.|s_t))`` summed over the vocabulary at each visited state.
* :class:`StepHistory` - a trainer's result with one dict of diagnostics per step.

Shapes: ``B`` sequences, ``T`` completion length (right-padded, ``mask [B, T]`` 1 up to and including the end
token), ``H`` hidden size, ``V`` vocabulary.
"""
from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import nn
from transformers import PreTrainedModel

from ..lm.logprobs import completion_hidden
from ..lm.samples import Samples
from ..world import Problem, score
from .policy_gradient import ValueHead

RewardFn = Callable[[list[Problem], list[str]], torch.Tensor]


def verifier_reward(problems: list[Problem], texts: list[str]) -> torch.Tensor:
    """``[B]`` the ground-truth reward: :func:`utils.world.score` (1 if the answer is right, else 0; malformed: 0)."""
    if len(problems) != len(texts):
        raise ValueError(f"{len(problems)} problems but {len(texts)} completions")
    return torch.tensor([score(p, t) for p, t in zip(problems, texts)], dtype=torch.float32)


def placebo_reward(reward_fn: RewardFn, block: int | None, seed: int = 0) -> RewardFn:
    """A placebo of ``reward_fn``: its rewards, permuted at random within consecutive blocks of ``block`` rows.

    GRPO's rollouts are prompt-major groups of ``G`` rows, so ``block=G`` permutes within each group: every group
    keeps its mean, its std and so its set of advantages, but which completion gets which advantage is random.
    An update trained on it moves the policy as much as the real one (same step sizes, same KL growth) and
    learns nothing about correctness: the control that tells "what any update does" from "what the reward
    teaches". ``block=None`` permutes the whole batch (PPO, which has no groups). Each call draws a fresh
    permutation from its own seeded generator, so a run with a placebo is reproducible.
    """
    if block is not None and block < 2:
        raise ValueError(f"a placebo needs blocks of at least 2 rows, got {block}")
    gen = torch.Generator().manual_seed(seed)

    def shuffled(problems: list[Problem], texts: list[str]) -> torch.Tensor:
        r = reward_fn(problems, texts).float().cpu()
        return r[permute_within_blocks(r.shape[0], r.shape[0] if block is None else block, gen)]

    return shuffled


def permute_within_blocks(n: int, block: int, generator: torch.Generator) -> torch.Tensor:
    """``[n]`` indices that permute rows at random within each consecutive block of ``block`` rows (the placebo's
    shuffle: :func:`placebo_reward` for a reward function, :func:`utils.rl.oreo.shuffled_rewards` for offline data)."""
    if n % block:
        raise ValueError(f"{n} rewards do not split into blocks of {block}")
    perm = torch.argsort(torch.rand(n // block, block, generator=generator), dim=1) + torch.arange(0, n, block)[:, None]
    return perm.reshape(-1)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x [B, T]`` over the entries where ``mask`` is 1."""
    m = mask.to(x.dtype)
    return (x * m).sum() / m.sum().clamp(min=1)


def exact_token_kl(logits: torch.Tensor, ref_logits: torch.Tensor, mask: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """``[B, T]`` the exact per-state ``KL(pi(.|s_t) || pi_ref(.|s_t)) = sum_v pi(v) (log pi(v) - log pi_ref(v))``.

    From full next-token logits ``[B, T, V]`` of both models at the same states (0 off-mask). The reference
    against which the one-sample estimators k1/k3 are measured.
    """
    lp = (logits.float() / temperature).log_softmax(-1)
    lq = (ref_logits.float() / temperature).log_softmax(-1)
    return (lp.exp() * (lp - lq)).sum(-1) * mask.float()


class Critic(nn.Module):
    """A separate value network: a copy of a causal LM (its backbone's states are read) plus a :class:`ValueHead`.

    ``Critic(sft_model, init_value)`` copies the model's weights; the policy's are not shared, so the value
    regression cannot pull the policy's features around (the price: one more model in memory).
    """

    def __init__(self, model: PreTrainedModel, init_value: float = 0.0) -> None:
        super().__init__()
        self.lm = copy.deepcopy(model)
        self.head = ValueHead(model.config.hidden_size, init_value).to(next(model.parameters()).device)

    def forward(self, samples: Samples) -> torch.Tensor:
        """``[B, T]`` values ``V(s_t)`` of the state before each completion token (0 off-mask)."""
        h = completion_hidden(self.lm, samples.prompt_ids, samples.prompt_mask, samples.completion_ids, samples.completion_mask)
        return self.head(h) * samples.completion_mask


class StepHistory:
    """A trainer's result with ``history``, one dict of diagnostics per step (PPO, GRPO, OREO)."""

    history: list[dict[str, float]]

    def curve(self, key: str) -> list[float]:
        """The per-step values of one diagnostic (e.g. ``"reward"``, ``"kl"``, ``"clip_frac"``)."""
        return [h[key] for h in self.history]


__all__ = ["Critic", "RewardFn", "StepHistory", "exact_token_kl", "masked_mean", "permute_within_blocks", "placebo_reward", "verifier_reward"]
