"""Reference solutions to the exercises (spoilers!). The test-suite checks each passes its grader."""
from __future__ import annotations

from math import comb
from typing import Any

from .world import Problem, parse_completion, score


def pass_at_k(n: int, c: int, k: int) -> float:
    """00.1: ``1 - C(n-c, k) / C(n, k)``, exact with Python integers."""
    return 1.0 if n - c < k else 1.0 - comb(n - c, k) / comb(n, k)


def half_credit_reward(problem: Problem, completion: Any) -> float:
    """00.2: 1.0 correct, 0.5 well-formed but wrong, else 0.0; never raises."""
    if not isinstance(completion, str):
        return 0.0
    if not parse_completion(completion).well_formed:
        return 0.0
    return 1.0 if score(problem, completion) == 1.0 else 0.5


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


def assistant_labels(tok, messages: list[dict[str, str]]) -> list[int]:
    """02.1: render growing prefixes of the conversation; an assistant turn's tokens are those between
    ``messages[:i]`` + generation prompt (the role marker stays context) and ``messages[:i+1]``."""

    def ids(msgs, gen=False):
        return list(tok.apply_chat_template(msgs, tokenize=True, return_dict=True, add_generation_prompt=gen)["input_ids"]) if msgs else []

    full = ids(messages)
    labels = [-100] * len(full)
    for i, m in enumerate(messages):
        if m["role"] == "assistant":
            a, b = len(ids(messages[:i], gen=True)), len(ids(messages[: i + 1]))
            labels[a:b] = full[a:b]
    return labels


def last_turn_loss(logits, labels):
    """02.2: keep the last run of non-ignored labels in each row, then the batch's token-mean NLL."""
    import torch

    keep = labels != -100
    prev = torch.cat([torch.zeros_like(keep[:, :1]), keep[:, :-1]], dim=1)
    pos = torch.arange(labels.shape[1], device=labels.device).expand_as(labels)
    last_start = torch.where(keep & ~prev, pos, torch.full_like(pos, -1)).max(dim=1).values  # [B]
    labels = torch.where(keep & (pos >= last_start[:, None]), labels, torch.full_like(labels, -100))
    logp = logits[:, :-1].float().log_softmax(-1)
    y = labels[:, 1:]
    m = y != -100
    nll = -logp.gather(-1, y.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (nll * m).sum() / m.sum().clamp(min=1)


def lora_forward(x, W, b, A, B, alpha: float):
    """04.1: ``x W^T + b + (alpha / r) x A^T B^T`` with ``r = A.shape[0]``; x ``[..., in]`` -> ``[..., out]``."""
    y = x @ W.T
    if b is not None:
        y = y + b
    return y + (alpha / A.shape[0]) * (x @ A.T) @ B.T


def lora_trainable_params(shapes, r: int) -> int:
    """04.2: ``sum r * (in + out)`` over the adapted layers' ``(out, in)`` shapes."""
    return sum(r * (o + i) for o, i in shapes)


def merge_lora_weight(W, A, B, alpha: float):
    """04.3: ``W + (alpha / r) B A`` (a new tensor; ``W`` is left alone)."""
    return W + (alpha / A.shape[0]) * (B @ A)


def rft_filter(problems, samples, max_per_problem=None):
    """03.1: keep verified, well-formed samples once each, at most ``max_per_problem`` per problem."""
    kept = []
    for p, texts in zip(problems, samples):
        seen: set[str] = set()
        for t in texts:
            if max_per_problem is not None and len(seen) >= max_per_problem:
                break
            if not isinstance(t, str) or score(p, t) != 1.0 or not parse_completion(t).well_formed:
                continue
            if t.strip() not in seen:
                seen.add(t.strip())
                kept.append((p, t.strip()))
    return kept


def forgetting(before, after, trained):
    """03.2: mean of ``before[s] - after[s]`` over the skills ``s`` that were not trained."""
    held_out = [s for s in before if s not in set(trained)]
    return sum(before[s] - after[s] for s in held_out) / len(held_out)
