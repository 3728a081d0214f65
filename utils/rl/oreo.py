"""OREO, offline reasoning optimisation (survey §3.2.7; Wang et al. 2024, arXiv 2412.16145).

The token MDP of a language model: the state ``s_t`` is the prompt plus the tokens so far, the action ``a_t`` the
next token, transitions are deterministic (append the token), and the reward is 0 except for the verifier's 0/1
verdict on the last token. For the KL-regularised objective ``E[R] - beta KL(pi || pi_ref)`` the optimal policy
and its soft value satisfy the **soft Bellman equation**

    V(s_t) - V(s_{t+1}) = r_t - beta * log pi(a_t | s_t) / pi_ref(a_t | s_t),      V(s_T) = 0,

so, summed from ``t`` to the end, ``V(s_t) = R - beta * sum_{i >= t} log pi(a_i | s_i) / pi_ref(a_i | s_i)``
(:func:`soft_targets`). OREO fits a value network and the policy jointly to this consistency on *offline*
trajectories, correct and failed ones alike:

* :func:`value_loss` - ``1/T sum_t (V(s_t) - R + beta sum_{i >= t} log-ratio_i)^2`` with the policy's
  log-ratios held fixed (only the value model learns from it);
* :func:`policy_loss` - the same residual with the value held fixed and only the *current* token's log-ratio
  carrying a gradient (the later ones detached), plus ``alpha`` times a KL regulariser to ``pi_ref``
  (:func:`utils.rl.ppo.exact_token_kl`, exact over the vocabulary at each visited state).

The value model is :class:`utils.rl.ppo.Critic` (a separate copy of the LM plus a linear head), trained with its
own optimiser; :func:`train_oreo` runs both updates on each minibatch. At test time the value picks among
sampled next steps (:func:`utils.search.value_guided.value_guided_search` reads it through :func:`step_values`;
steps end at the separators of
:func:`utils.world.step_boundaries`). The baselines trained on the same offline data are
rejection-sampling fine-tuning (SFT on the correct trajectories; :func:`utils.sft.fine_tune`) and DPO on
(correct, failed) pairs of one prompt (:func:`utils.prefs.data.correct_failed_pairs`, trained by
:func:`utils.prefs.train.train_preferences`).

Shapes: ``B`` trajectories, ``T`` completion length (right-padded; ``mask [B, T]`` 1 up to and including the end
token), ``P`` prompt length (left-padded), ``V`` vocabulary.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..lm.generation import build_prompts
from ..lm.logprobs import completion_logits, token_logprobs
from ..lm.samples import Samples
from ..lm.training import checkpointed
from ..reward_models.model import rm_texts
from ..reward_models.process import prm_batch
from ..world import Problem, step_boundaries
from .common import Critic, StepHistory, exact_token_kl, masked_mean, permute_within_blocks
from .policy_gradient import rollout

# ----------------------------------------------------------------------------------------------
# The soft Bellman residual and the two losses
# ----------------------------------------------------------------------------------------------


def _wide(x: torch.Tensor) -> torch.Tensor:
    """``x`` in at least fp32 (half types are widened; fp64 stays fp64, for exact checks)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def suffix_sum(x: torch.Tensor, mask: torch.Tensor, inclusive: bool = True) -> torch.Tensor:
    """``[B, T]`` ``sum_{i >= t} x_i`` over the masked entries (``inclusive=False``: ``sum_{i > t}``), 0 off-mask."""
    m = mask.to(x.dtype)
    xm = x * m
    s = xm.flip(-1).cumsum(-1).flip(-1)
    return (s if inclusive else s - xm) * m


def soft_targets(rewards: torch.Tensor, log_ratio: torch.Tensor, mask: torch.Tensor, beta: float) -> torch.Tensor:
    """``[B, T]`` the soft value the Bellman equation implies along each trajectory:
    ``R - beta * sum_{i >= t} log pi(a_i|s_i) / pi_ref(a_i|s_i)`` (0 off-mask).

    Args:
        rewards: ``[B]`` terminal 0/1 rewards (the only non-zero ``r_t``, on the last token).
        log_ratio: ``[B, T]`` ``log pi - log pi_ref`` of the trajectory's tokens.
        mask: ``[B, T]``.
    """
    if rewards.shape != (log_ratio.shape[0],) or log_ratio.shape != mask.shape:
        raise ValueError(f"need rewards [B] and log_ratio, mask [B, T]; got {tuple(rewards.shape)}, "
                         f"{tuple(log_ratio.shape)}, {tuple(mask.shape)}")
    m = mask.to(log_ratio.dtype)
    return (rewards.to(log_ratio)[:, None] - beta * suffix_sum(log_ratio, mask)) * m


def _per_trajectory_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``[B]`` the mean of ``x [B, T]`` over each row's masked entries (the paper's ``1/T sum_t``)."""
    m = mask.to(x.dtype)
    return (x * m).sum(-1) / m.sum(-1).clamp(min=1)


def value_loss(values: torch.Tensor, rewards: torch.Tensor, logp: torch.Tensor, ref_logp: torch.Tensor,
               mask: torch.Tensor, beta: float) -> torch.Tensor:
    """OREO's value loss: the batch mean of ``1/T sum_t (V(s_t) - R + beta sum_{i >= t} log-ratio_i)^2``.

    ``values``: ``[B, T]`` ``V(s_t)`` (differentiable); ``logp``/``ref_logp``: ``[B, T]`` (held fixed: detached
    here); ``rewards``: ``[B]``.
    """
    target = soft_targets(rewards, _wide((logp - ref_logp).detach()), mask, beta)
    return _per_trajectory_mean((_wide(values) - target) ** 2, mask).mean()


def policy_loss(values: torch.Tensor, rewards: torch.Tensor, logp: torch.Tensor, ref_logp: torch.Tensor,
                mask: torch.Tensor, beta: float, kl: torch.Tensor | None = None, alpha: float = 0.0) -> torch.Tensor:
    """OREO's policy loss: the batch mean of
    ``1/T sum_t (V(s_t) - R + beta log-ratio_t + beta sum_{i > t} sg[log-ratio_i])^2 + alpha * KL``.

    The value is held fixed (detached) and only the current token's log-ratio carries a gradient, so
    ``d/dtheta = 2 beta * residual_t * grad log pi(a_t | s_t)``: a token whose trajectory did worse than the value
    expected (residual > 0) is pushed down, one that did better is pushed up.

    Args:
        values: ``[B, T]`` ``V(s_t)`` (detached here). rewards: ``[B]``.
        logp: ``[B, T]`` differentiable ``log pi_theta(a_t | s_t)``; ref_logp: ``[B, T]`` ``log pi_ref``.
        mask: ``[B, T]``. kl: ``[B, T]`` per-state ``KL(pi_theta || pi_ref)`` (differentiable), e.g.
            :func:`utils.rl.ppo.exact_token_kl`; its token mean over the batch is added ``alpha`` times.
    """
    lr = _wide(logp - ref_logp.detach())
    m = mask.to(lr.dtype)
    resid = (_wide(values.detach()) - rewards.to(lr)[:, None] + beta * lr + beta * suffix_sum(lr.detach(), mask, inclusive=False)) * m
    loss = _per_trajectory_mean(resid**2, mask).mean()
    if kl is not None and alpha:
        loss = loss + alpha * masked_mean(_wide(kl), mask)
    return loss


def bellman_residuals(values: torch.Tensor, rewards: torch.Tensor, log_ratio: torch.Tensor, mask: torch.Tensor,
                      beta: float) -> torch.Tensor:
    """``[B, T]`` the one-step soft Bellman residuals ``V(s_t) - V(s_{t+1}) - r_t + beta log-ratio_t`` with
    ``V(s_T) = 0`` after each row's last token and ``r_t`` the reward on the last token (0 off-mask).
    All zero exactly when ``values`` equal :func:`soft_targets`."""
    m = mask.to(values.dtype)
    v = values * m
    v_next = torch.cat([v[:, 1:], torch.zeros_like(v[:, :1])], dim=1) * torch.cat([m[:, 1:], torch.zeros_like(m[:, :1])], dim=1)
    last = (mask.long().sum(-1) - 1).clamp(min=0)
    r = torch.zeros_like(v)
    r[torch.arange(v.shape[0]), last] = rewards.to(v)
    return (v - v_next - r + beta * log_ratio.to(v)) * m


# ----------------------------------------------------------------------------------------------
# Offline data
# ----------------------------------------------------------------------------------------------


@dataclass
class OfflineData:
    """Trajectories sampled once from the behaviour policy and scored by the verifier.

    Attributes:
        problems: ``B`` problems, one per row (``k`` consecutive rows per problem).
        samples: the ``B`` completions (token ids, masks, texts).
        rewards: ``[B]`` 0/1 verdicts of :func:`utils.world.score`.
        k: trajectories per problem.
    """

    problems: list[Problem]
    samples: Samples
    rewards: torch.Tensor
    k: int

    def __len__(self) -> int:
        return len(self.problems)

    @property
    def texts(self) -> list[str]:
        return self.samples.texts

    def correct(self) -> list[tuple[Problem, str]]:
        """``(problem, completion)`` of every correct trajectory, duplicates of one problem removed (RFT's data)."""
        seen, out = set(), []
        for p, t, r in zip(self.problems, self.texts, self.rewards.tolist()):
            if r == 1.0 and (p.uid, t.strip()) not in seen:
                seen.add((p.uid, t.strip()))
                out.append((p, t.strip()))
        return out

    def rows(self, idx: Sequence[int] | torch.Tensor) -> tuple[Samples, torch.Tensor]:
        """The sub-batch at ``idx``: its samples (trimmed to the longest completion) and ``[b]`` rewards."""
        idx = torch.as_tensor(idx, dtype=torch.long)
        return self.samples.select(idx), self.rewards[idx]


def offline_data(model: PreTrainedModel, tok: PreTrainedTokenizerBase, problems: Sequence[Problem], k: int,
                 max_new_tokens: int = 48, temperature: float = 1.0, seed: int = 0, batch_size: int = 256) -> OfflineData:
    """Sample ``k`` completions per problem from ``model`` (the behaviour policy) and score them 0/1."""
    ro = rollout(model, tok, problems, k, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, batch_size=batch_size)
    return OfflineData(ro.problems, ro.samples, ro.rewards.float().cpu(), k)


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------


@dataclass
class OREOConfig:
    """OREO's knobs.

    Attributes:
        beta: the KL coefficient of the regularised objective (the temperature of the soft Bellman equation).
        alpha: weight of the KL regulariser in the policy loss.
        lr, vf_lr: AdamW learning rates of the policy and of the value model.
        batch_size: trajectories per step; steps: optimiser steps (each updates both models once).
        max_grad_norm: gradient clipping of both.
        gradient_checkpointing: recompute both models' activations in the backward pass (the same gradients, far
            less memory; the ``gpu`` profile's choice for a real model).
    """

    beta: float = 0.1
    alpha: float = 0.1
    lr: float = 5e-5
    vf_lr: float = 2e-4
    batch_size: int = 32
    steps: int = 100
    max_grad_norm: float = 1.0
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        if self.beta <= 0 or self.alpha < 0:
            raise ValueError(f"need beta > 0 and alpha >= 0, got {self.beta}, {self.alpha}")
        if self.batch_size < 1 or self.steps < 0:
            raise ValueError("need batch_size >= 1 and steps >= 0")


@dataclass
class OREOResult(StepHistory):
    """The trained policy and value model, and one dict of diagnostics per step."""

    policy: PreTrainedModel
    critic: Critic
    history: list[dict[str, float]] = field(default_factory=list)


def _order(n: int, steps: int, batch_size: int, seed: int) -> list[list[int]]:
    """``steps`` batches of indices, epoch by epoch in a seeded shuffle."""
    g = torch.Generator().manual_seed(seed)
    flat: list[int] = []
    while len(flat) < steps * batch_size:
        flat += torch.randperm(n, generator=g).tolist()
    return [flat[s * batch_size:(s + 1) * batch_size] for s in range(steps)]


def oreo_step(policy: PreTrainedModel, ref: PreTrainedModel, critic: Critic, opt: torch.optim.Optimizer,
              opt_v: torch.optim.Optimizer, s: Samples, rewards: torch.Tensor, cfg: OREOConfig) -> dict[str, float]:
    """One OREO update on a minibatch: the value model on :func:`value_loss`, then the policy on :func:`policy_loss`.

    The value model's targets use the policy's current log-ratios without gradient, so they come from a no-grad
    forward first: then the critic's and the policy's autograd graphs never coexist (one more policy forward, about
    half the activation memory of building both at once)."""
    m = s.completion_mask
    rewards = rewards.to(m.device)
    with torch.no_grad():
        ref_logits = completion_logits(ref, s)
        ref_logp = token_logprobs(ref_logits, s.completion_ids) * m
        logp_now = token_logprobs(completion_logits(policy, s), s.completion_ids) * m
    # the value model first, against the policy's current (detached) log-ratios
    values = critic(s)
    v_loss = value_loss(values, rewards, logp_now, ref_logp, m, cfg.beta)
    opt_v.zero_grad(); v_loss.backward()
    torch.nn.utils.clip_grad_norm_(critic.parameters(), cfg.max_grad_norm)
    opt_v.step()
    values = values.detach()  # V before its update, as the policy loss of this step uses
    logits = completion_logits(policy, s)
    logp = token_logprobs(logits, s.completion_ids) * m
    kl = exact_token_kl(logits, ref_logits, m) if cfg.alpha else None
    p_loss = policy_loss(values, rewards, logp, ref_logp, m, cfg.beta, kl, cfg.alpha)
    opt.zero_grad(); p_loss.backward()
    gn = float(torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm))
    opt.step()
    with torch.no_grad():
        lr_seq = ((logp - ref_logp) * m).sum(-1)
    return {"value_loss": float(v_loss.detach()), "policy_loss": float(p_loss.detach()), "grad_norm": gn,
            "kl": float(masked_mean(kl.detach(), m)) if kl is not None else float("nan"),
            "seq_log_ratio": float(lr_seq.mean()), "reward": float(rewards.float().mean())}


def train_oreo(policy: PreTrainedModel, ref: PreTrainedModel, data: OfflineData, cfg: OREOConfig | None = None,
               critic: Critic | None = None, seed: int = 0, progress: bool = True) -> OREOResult:
    """Train ``policy`` (in place) and a value model jointly with OREO on the offline ``data``.

    ``ref`` is the frozen ``pi_ref`` (the behaviour policy). ``critic`` defaults to ``Critic(ref)`` with its head at
    the data's mean reward (a constant baseline to start from). Both models are left in eval mode.
    """
    from tqdm.auto import tqdm

    cfg = cfg or OREOConfig()
    critic = critic or Critic(ref, init_value=float(data.rewards.mean()))
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=0.0)
    opt_v = torch.optim.AdamW(critic.parameters(), lr=cfg.vf_lr, weight_decay=0.0)
    ref.eval(); policy.train(); critic.train()
    hist = []
    with checkpointed(policy, cfg.gradient_checkpointing), checkpointed(critic.lm, cfg.gradient_checkpointing):
        for idx in tqdm(_order(len(data), cfg.steps, cfg.batch_size, seed), desc="OREO", disable=not progress, mininterval=2):
            s, r = data.rows(idx)
            hist.append(oreo_step(policy, ref, critic, opt, opt_v, s, r, cfg))
    policy.zero_grad(set_to_none=True); critic.zero_grad(set_to_none=True)   # the last step's .grad, unused
    policy.eval(); critic.eval()
    return OREOResult(policy, critic, hist)


# ----------------------------------------------------------------------------------------------
# Reading the value model at step boundaries
# ----------------------------------------------------------------------------------------------


@torch.no_grad()
def step_values(critic: Critic, tok: PreTrainedTokenizerBase, problems: Sequence[Problem], completions: Sequence[str],
                batch_size: int = 64) -> list[list[float]]:
    """The value model's ``V(s)`` at each step boundary of each completion: the state right after the step's
    separator (``,``) or after the whole ``</think>`` tag (:func:`utils.world.step_boundaries`).
    One list per completion (empty without a think block)."""
    device = next(critic.parameters()).device
    out: list[list[float]] = []
    for s in range(0, len(problems), batch_size):
        probs, comps = list(problems[s:s + batch_size]), list(completions[s:s + batch_size])
        b = prm_batch(tok, probs, comps)                                  # right-padded prompt + completion + end
        h = critic.lm.base_model(input_ids=b["input_ids"].to(device), attention_mask=b["attention_mask"].to(device)).last_hidden_state
        v = critic.head(h)                                                # [b, L]: V of the state after token l
        for i, row in enumerate(_boundary_end_tokens(tok, probs, comps)):
            out.append([float(v[i, j]) for j in row])
    return out


def _boundary_end_tokens(tok: PreTrainedTokenizerBase, problems: Sequence[Problem], completions: Sequence[str]) -> list[list[int]]:
    """Per completion, the token index (in ``rm_texts``) that ends each step's boundary marker (``,`` or ``</think>``,
    which a BPE tokenizer may split into several tokens)."""
    texts = rm_texts(tok, problems, completions)
    prompts = build_prompts(tok, problems)
    enc = tok(texts, return_offsets_mapping=True, add_special_tokens=False)
    out = []
    for i, (p, c) in enumerate(zip(prompts, completions)):
        offs = enc["offset_mapping"][i]
        row = []
        for bd in step_boundaries(c):
            last_char = len(p) + bd + (len("</think>") if c.startswith("</think>", bd) else 1) - 1
            row.append(next((j for j, (a, e) in enumerate(offs) if a <= last_char < e), len(offs) - 1))
        out.append(row)
    return out


# ----------------------------------------------------------------------------------------------
# Controls and a value-only baseline
# ----------------------------------------------------------------------------------------------


def shuffled_rewards(data: OfflineData, seed: int = 0) -> OfflineData:
    """The placebo of ``data``: the same trajectories with each problem's ``k`` rewards permuted at random.

    Every problem keeps its share of correct trajectories (so RFT keeps as many rows, DPO as many pairs and the
    value model the same per-problem mean), but which trajectory is labelled correct is random: a method trained
    on it moves the policy as much as on the real data and learns nothing about *which* completion was right -
    the control for "method - placebo" (:func:`utils.rl.common.placebo_reward` does the same to a reward function).
    """
    perm = permute_within_blocks(len(data), data.k, torch.Generator().manual_seed(seed))
    return OfflineData(data.problems, data.samples, data.rewards[perm].clone(), data.k)


def train_value(critic: Critic, data: OfflineData, steps: int, batch_size: int = 32, lr: float = 2e-4, beta: float = 0.0,
                ref: PreTrainedModel | None = None, policy: PreTrainedModel | None = None, seed: int = 0,
                max_grad_norm: float = 1.0) -> list[float]:
    """Train ``critic`` alone (in place) on :func:`value_loss`; returns the per-step losses.

    With ``beta = 0`` (the default) the target is the plain Monte-Carlo value ``V(s_t) -> R`` of the behaviour
    policy: the baseline against which OREO's soft value is compared. With ``beta > 0``, ``policy`` and ``ref``
    give the log-ratios of the soft target (a fixed policy; OREO moves it)."""
    opt = torch.optim.AdamW(critic.parameters(), lr=lr, weight_decay=0.0)
    critic.train()
    losses = []
    for idx in _order(len(data), steps, batch_size, seed):
        s, r = data.rows(idx)
        m = s.completion_mask
        if beta and policy is not None and ref is not None:
            with torch.no_grad():
                lp = token_logprobs(completion_logits(policy, s), s.completion_ids) * m
                rp = token_logprobs(completion_logits(ref, s), s.completion_ids) * m
        else:
            lp = rp = torch.zeros(m.shape, device=m.device)
        loss = value_loss(critic(s), r.to(m.device), lp, rp, m, beta or 1.0)
        opt.zero_grad(); loss.backward()
        torch.nn.utils.clip_grad_norm_(critic.parameters(), max_grad_norm)
        opt.step()
        losses.append(float(loss.detach()))
    critic.zero_grad(set_to_none=True); critic.eval()
    return losses
