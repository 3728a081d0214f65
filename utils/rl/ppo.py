"""RLHF with PPO, from scratch (survey §3.2.2, §3.2.3, §3.2.5; Schulman et al. 2017, Ziegler et al. 2019).

The pipeline is *SFT model -> reward -> PPO*. One PPO iteration:

1. **Rollout.** Sample completions from the current policy (it becomes ``pi_old`` for this iteration), and
   record per token: ``log pi_old(y_t | s_t)``, ``log pi_ref(y_t | s_t)`` (the frozen SFT model), the critic's
   value ``V(s_t)``; score each completion with ``reward_fn(problems, texts) -> [B]`` (the verifier, a learned
   reward model, an ensemble: anything with that signature).
2. **Per-token rewards.** ``r_t = -beta * KL_t`` on every token plus the score on the last one, with ``KL_t``
   a per-token estimate of ``KL(pi_old || pi_ref)`` (:func:`utils.lm.logprobs.kl_estimate`, k1 by default
   as in InstructGPT; :func:`kl_rewards`).
3. **GAE(gamma, lambda)** (:func:`gae`): ``delta_t = r_t + gamma V(s_{t+1}) - V(s_t)``,
   ``A_t = sum_l (gamma lambda)^l delta_{t+l}``; returns ``A_t + V(s_t)`` are the critic's targets.
4. **Updates.** A few epochs over shuffled minibatches of the rollout: the clipped surrogate against
   **pi_old** (:func:`clipped_policy_loss`; the survey prints the ratio against ``pi_ref``, which would be
   the KL-regularised objective's anchor, not PPO's trust region) with whitened advantages (:func:`whiten`),
   and the critic's (optionally clipped) value loss (:func:`clipped_value_loss`).

The critic is a **separate** network (:class:`utils.rl.common.Critic`: a copy of the SFT model's backbone plus a
linear :class:`utils.rl.policy_gradient.ValueHead`), as in InstructGPT, not a head on the policy's backbone: the
value regression then cannot pull the policy's features around, and the policy's and critic's learning rates
are independent. The price is memory: policy + reference + critic (+ a reward model), which critic-free
methods (REINFORCE, RLOO, GRPO) avoid.

Shapes: ``B`` sequences, ``T`` completion length (right-padded, ``mask [B, T]`` 1 up to and including the end
token), ``P`` prompt length (left-padded), ``H`` hidden size, ``V`` vocabulary.
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import Callable, Iterator, Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..lm.generation import build_prompts, sample
from ..lm.logprobs import completion_logprobs, kl_estimate
from ..lm.samples import Samples
from ..world import Problem
from .common import Critic, RewardFn, StepHistory, masked_mean
from .policy_gradient import entropy_from_logprobs


@dataclass
class PPOConfig:
    """PPO's knobs (defaults follow Ziegler et al. 2019 / Huang et al. 2024 where they apply to a tiny model).

    Attributes:
        clip_eps: the ratio's clip range ``epsilon`` (``1 - eps <= pi/pi_old <= 1 + eps``).
        vf_clip: clip range of the value update around the rollout's values (``None``: no clipping).
        kl_coef: ``beta``, the per-token KL penalty to ``pi_ref`` folded into the reward.
        kl_kind: the per-token KL estimator in the reward (``"k1"``, ``"k2"`` or ``"k3"``).
        gamma, lam: GAE's discount and trace parameter.
        epochs: passes over each rollout; minibatches: minibatches per pass.
        lr, vf_lr: Adam learning rates of the policy and the critic.
        whiten: whiten the advantages per minibatch (mean 0, std 1, over its tokens): the convention of OpenAI
            baselines' PPO2; TRL's PPOTrainer and Huang et al. 2024 whiten once over the whole rollout instead.
        max_grad_norm: gradient clipping of both networks.
        temperature: sampling temperature (log-probs are taken at the same one).
        max_new_tokens: completion budget.
    """

    clip_eps: float = 0.2
    vf_clip: float | None = 0.2
    kl_coef: float = 0.05
    kl_kind: str = "k1"
    gamma: float = 1.0
    lam: float = 0.95
    epochs: int = 2
    minibatches: int = 2
    lr: float = 1e-4
    vf_lr: float = 1e-4
    whiten: bool = True
    max_grad_norm: float = 1.0
    temperature: float = 1.0
    max_new_tokens: int = 40

    def __post_init__(self) -> None:
        if self.clip_eps <= 0 or (self.vf_clip is not None and self.vf_clip <= 0):
            raise ValueError("clip ranges must be positive")
        if not 0 <= self.gamma <= 1 or not 0 <= self.lam <= 1:
            raise ValueError(f"gamma and lam must lie in [0, 1], got {self.gamma}, {self.lam}")
        if self.kl_coef < 0:
            raise ValueError(f"kl_coef must be >= 0, got {self.kl_coef}")
        if self.kl_kind not in ("k1", "k2", "k3"):
            raise ValueError(f"unknown KL estimator {self.kl_kind!r}; choose 'k1', 'k2' or 'k3'")
        if self.epochs < 1 or self.minibatches < 1:
            raise ValueError("epochs and minibatches must be >= 1")


# ----------------------------------------------------------------------------------------------
# The pieces: per-token rewards, GAE, whitening, the two losses, diagnostics
# ----------------------------------------------------------------------------------------------


def _last_index(mask: torch.Tensor) -> torch.Tensor:
    """``[B]`` index of each row's last real token (0 for an empty row)."""
    return (mask.long().sum(-1) - 1).clamp(min=0)


def kl_rewards(scores: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor, kl_coef: float) -> torch.Tensor:
    """``[B, T]`` per-token rewards ``r_t = -kl_coef * kl[b, t]``, plus ``scores[b]`` on each row's last real token.

    Args:
        scores: ``[B]`` sequence-level rewards (the verifier's or a reward model's).
        kl: ``[B, T]`` per-token KL estimates (0 off-mask), e.g. ``kl_estimate(logp_old, logp_ref, mask)``.
        mask: ``[B, T]`` completion mask.
    """
    if scores.shape != (kl.shape[0],) or kl.shape != mask.shape:
        raise ValueError(f"need scores [B], kl and mask [B, T]; got {tuple(scores.shape)}, {tuple(kl.shape)}, {tuple(mask.shape)}")
    m = mask.float()
    r = -kl_coef * kl.float() * m
    r[torch.arange(r.shape[0]), _last_index(mask)] += scores.float().to(r.device)
    return r


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0, lam: float = 0.95
        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016) over right-padded completions.

    ``delta_t = r_t + gamma * V(s_{t+1}) - V(s_t)`` with ``V = 0`` after the last real token (the episode ends),
    and ``A_t = delta_t + gamma * lam * A_{t+1}``. ``lam = 1`` gives the Monte-Carlo advantage ``G_t - V(s_t)``,
    ``lam = 0`` the one-step TD error.

    Args:
        rewards: ``[B, T]`` per-token rewards (0 off-mask), e.g. :func:`kl_rewards`.
        values: ``[B, T]`` ``V(s_t)`` of the state before token ``t``.
        mask: ``[B, T]`` 1 on completion tokens (a prefix of each row).

    Returns:
        ``(advantages [B, T], returns [B, T])``, both 0 off-mask; ``returns = advantages + values`` on it.
    """
    if not (rewards.shape == values.shape == mask.shape):
        raise ValueError(f"rewards, values and mask must share one [B, T] shape: {tuple(rewards.shape)}, "
                         f"{tuple(values.shape)}, {tuple(mask.shape)}")
    m = mask.float()
    r, v = rewards.float() * m, values.float().detach() * m
    T = r.shape[1]
    adv = torch.zeros_like(r)
    last = torch.zeros_like(r[:, 0])
    for t in reversed(range(T)):
        v_next = v[:, t + 1] if t + 1 < T else torch.zeros_like(last)
        delta = r[:, t] + gamma * v_next - v[:, t]
        last = (delta + gamma * lam * last) * m[:, t]
        adv[:, t] = last
    return adv, (adv + v) * m


def whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """``(x - mean) / std`` over the masked entries of ``x [B, T]`` (0 off-mask); ``shift_mean=False`` only rescales."""
    m = mask.float()
    n = m.sum().clamp(min=1)
    mean = (x * m).sum() / n
    var = (((x - mean) * m) ** 2).sum() / (n - 1).clamp(min=1)
    out = (x - mean) if shift_mean else x
    return out * torch.rsqrt(var + eps) * m


def clipped_policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                        clip_eps: float = 0.2) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO's clipped surrogate, as a loss to minimise: ``-mean_t min(rho_t A_t, clip(rho_t, 1-eps, 1+eps) A_t)``.

    ``rho_t = pi_theta(y_t | s_t) / pi_old(y_t | s_t)`` - the ratio to the policy that **sampled** the batch
    (``pi_old``), not to the reference model. Token-level mean over the minibatch.

    Args:
        logp: ``[B, T]`` differentiable log-probs under the current policy.
        old_logp: ``[B, T]`` log-probs under ``pi_old`` (constants).
        advantages: ``[B, T]`` advantages (constants).
        mask: ``[B, T]``.

    Returns:
        ``(loss, stats)``; stats: ``clip_frac`` (share of tokens where the clipped term is the active minimum),
        ``ratio_mean``, ``ratio_min``, ``ratio_max``, ``approx_kl``: the k3 estimate of ``KL(pi_old || pi_theta)``
        from tokens sampled by ``pi_old``, ``(rho - 1) - log rho`` (``r = pi_theta / pi_old = rho`` in Schulman's
        note; its mean under ``pi_old`` is the KL exactly, and each term is >= 0).
    """
    adv = advantages.detach().float()
    log_ratio = (logp - old_logp.detach()).float()
    ratio = log_ratio.exp()
    unclipped = ratio * adv
    clipped = ratio.clamp(1 - clip_eps, 1 + clip_eps) * adv
    loss = -masked_mean(torch.minimum(unclipped, clipped), mask)
    with torch.no_grad():
        b = mask.bool()
        rb = ratio[b] if b.any() else torch.ones(1, device=ratio.device)
        stats = {"clip_frac": float(masked_mean((clipped < unclipped).float(), mask)),
                 "ratio_mean": float(rb.mean()), "ratio_min": float(rb.min()), "ratio_max": float(rb.max()),
                 "approx_kl": float(masked_mean(torch.expm1(log_ratio) - log_ratio, mask))}
    return loss, stats


def clipped_value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
                       clip: float | None = 0.2) -> torch.Tensor:
    """The critic's loss ``1/2 mean_t max((V - R)^2, (V_clip - R)^2)``, ``V_clip = V_old + clip(V - V_old, -c, c)``.

    ``clip=None`` gives the plain ``1/2 mean_t (V - R)^2``. All ``[B, T]``; ``old_values`` and ``returns`` constants.
    """
    ret = returns.detach().float()
    err = (values.float() - ret) ** 2
    if clip is not None:
        old = old_values.detach().float()
        v_clip = old + (values.float() - old).clamp(-clip, clip)
        err = torch.maximum(err, (v_clip - ret) ** 2)
    return 0.5 * masked_mean(err, mask)


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> float:
    """``1 - Var(R - V) / Var(R)`` over masked tokens: 1 = a perfect critic, 0 = no better than a constant, < 0 worse."""
    m = mask.bool()
    r, v = returns[m].float(), values[m].float()
    var_r = r.var(unbiased=False) if r.numel() > 1 else torch.tensor(0.0)
    if float(var_r) == 0.0:
        return float("nan")
    return float(1 - (r - v).var(unbiased=False) / var_r)


# ----------------------------------------------------------------------------------------------
# Rollouts and updates
# ----------------------------------------------------------------------------------------------


@dataclass
class PPOBatch:
    """One rollout, with everything PPO's updates need (all ``[B, T]`` unless noted; 0 off-mask).

    Attributes:
        problems: ``B`` problems (one per sequence). samples: the sampled completions.
        scores: ``[B]`` rewards from ``reward_fn``. old_logp: ``log pi_old``. ref_logp: ``log pi_ref``.
        values: ``V_old(s_t)``. kl: the per-token KL estimates in the reward. rewards: per-token rewards.
        advantages: GAE advantages (not whitened). returns: the critic's targets.
    """

    problems: list[Problem]
    samples: Samples
    scores: torch.Tensor
    old_logp: torch.Tensor
    ref_logp: torch.Tensor
    values: torch.Tensor
    kl: torch.Tensor
    rewards: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor


@torch.no_grad()
def collect(policy: PreTrainedModel, ref: PreTrainedModel, critic: Critic, tok: PreTrainedTokenizerBase,
            problems: Sequence[Problem], reward_fn: RewardFn, cfg: PPOConfig, n: int = 1, seed: int | None = None,
            batch_size: int = 256) -> PPOBatch:
    """Sample ``n`` completions per problem from ``policy`` and compute log-probs, values, rewards and GAE.

    ``old_logp`` is recomputed by teacher forcing (the same computation the updates use, so the first
    minibatch's ratio is exactly 1), rather than taken from the sampler.
    """
    problems = list(problems)
    s = sample(policy, tok, build_prompts(tok, problems), n=n, max_new_tokens=cfg.max_new_tokens,
               temperature=cfg.temperature, seed=seed, batch_size=batch_size)
    probs = [problems[i // n] for i in range(len(s.texts))]
    args = (s.prompt_ids, s.prompt_mask, s.completion_ids, s.completion_mask)
    old = completion_logprobs(policy, *args, temperature=cfg.temperature).logprobs
    refl = completion_logprobs(ref, *args, temperature=cfg.temperature).logprobs
    values = critic(s)
    scores = reward_fn(probs, s.texts).float().to(old.device)
    if scores.shape != (len(s.texts),):
        raise ValueError(f"reward_fn must return [B] = [{len(s.texts)}] rewards, got {tuple(scores.shape)}")
    kl = kl_estimate(old, refl, s.completion_mask, cfg.kl_kind)
    rewards = kl_rewards(scores, kl, s.completion_mask, cfg.kl_coef)
    adv, ret = gae(rewards, values, s.completion_mask, cfg.gamma, cfg.lam)
    return PPOBatch(probs, s, scores, old, refl, values, kl, rewards, adv, ret)


def ppo_update(policy: PreTrainedModel, critic: Critic, opt: torch.optim.Optimizer, opt_v: torch.optim.Optimizer,
               batch: PPOBatch, cfg: PPOConfig, seed: int = 0) -> dict[str, float]:
    """``cfg.epochs`` passes of ``cfg.minibatches`` shuffled minibatches over ``batch``; returns mean diagnostics."""
    B = batch.samples.completion_ids.shape[0]
    g = torch.Generator().manual_seed(seed)
    logs: list[dict[str, float]] = []
    policy.train(); critic.train()
    for _ in range(cfg.epochs):
        perm = torch.randperm(B, generator=g)
        for idx in perm.chunk(cfg.minibatches):
            idx = idx.to(batch.old_logp.device)
            s = batch.samples.select(idx)
            T, m = s.completion_ids.shape[1], s.completion_mask
            adv = batch.advantages[idx, :T]
            adv = whiten(adv, m) if cfg.whiten else adv
            out = completion_logprobs(policy, s.prompt_ids, s.prompt_mask, s.completion_ids, m, temperature=cfg.temperature)
            loss, st = clipped_policy_loss(out.logprobs, batch.old_logp[idx, :T], adv, m, cfg.clip_eps)
            opt.zero_grad(); loss.backward()
            st["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm))
            opt.step()
            v = critic(s)
            v_loss = clipped_value_loss(v, batch.values[idx, :T], batch.returns[idx, :T], m, cfg.vf_clip)
            opt_v.zero_grad(); v_loss.backward()
            torch.nn.utils.clip_grad_norm_(critic.parameters(), cfg.max_grad_norm)
            opt_v.step()
            st.update(policy_loss=float(loss.detach()), value_loss=float(v_loss.detach()))
            logs.append(st)
    policy.eval(); critic.eval()
    out_stats = {k: sum(d[k] for d in logs) / len(logs) for k in logs[0]}
    out_stats["ratio_max"] = max(d["ratio_max"] for d in logs)
    out_stats["ratio_min"] = min(d["ratio_min"] for d in logs)
    return out_stats


def rollout_stats(batch: PPOBatch) -> dict[str, float]:
    """Diagnostics of one rollout: mean score, KL to the reference (sequence sum), entropy, length, explained variance."""
    m = batch.samples.completion_mask
    return {"score": float(batch.scores.mean()),
            "kl": float(batch.kl.sum(-1).mean()),
            "entropy": entropy_from_logprobs(batch.old_logp, m),
            "length": float(m.float().sum(-1).mean()),
            "explained_var": explained_variance(batch.values, batch.returns, m)}


@dataclass
class PPOResult(StepHistory):
    """What :func:`train_ppo` returns: the trained policy and critic, and one dict of diagnostics per step."""

    policy: PreTrainedModel
    critic: Critic
    history: list[dict[str, float]]


def train_ppo(
    policy: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    reward_fn: RewardFn,
    problem_stream: Iterator[Problem],
    steps: int,
    prompts_per_step: int,
    cfg: PPOConfig | None = None,
    samples_per_prompt: int = 1,
    ref: PreTrainedModel | None = None,
    critic: Critic | None = None,
    extra_metrics: Callable[[PPOBatch], dict[str, float]] | None = None,
    seed: int = 0,
    progress: bool = True,
    callback: Callable[[int, PreTrainedModel], dict[str, float] | None] | None = None,
) -> PPOResult:
    """Train ``policy`` (in place) with PPO for ``steps`` iterations of ``prompts_per_step`` fresh prompts.

    Args:
        policy: the SFT model to train (``pi_old`` of each step is its state at the rollout).
        reward_fn: ``(problems [B], texts [B]) -> [B]`` sequence rewards (:func:`utils.rl.common.verifier_reward`,
            a reward model).
        problem_stream: an iterator of training problems; each step takes the next ``prompts_per_step``
            (e.g. :func:`utils.world.iter_problems`: new prompts every step, not a small pool repeated).
        ref: the frozen reference ``pi_ref`` (default: a copy of ``policy`` at the start).
        critic: default ``Critic(policy)`` with its value head at 0.
        extra_metrics: called on each rollout; its dict is merged into that step's diagnostics (e.g. the
            verifier's score while training on a reward model).
        seed: sampling and shuffling seeds are derived from it.
        callback: ``callback(steps_done, policy)`` after each update (a held-out evaluation every few steps); a
            dict it returns is merged into that step's diagnostics.

    Returns:
        :class:`PPOResult` with per-step diagnostics: rollout stats (:func:`rollout_stats`) and the mean update
        stats (:func:`ppo_update`).
    """
    from tqdm.auto import tqdm

    cfg = cfg or PPOConfig()
    if steps < 0 or prompts_per_step < 1:
        raise ValueError("need steps >= 0 and prompts_per_step >= 1")
    ref = ref if ref is not None else copy.deepcopy(policy).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    critic = critic if critic is not None else Critic(policy)
    opt = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    opt_v = torch.optim.Adam(critic.parameters(), lr=cfg.vf_lr)
    history = []
    policy.eval(); critic.eval()
    for step in tqdm(range(steps), desc="PPO", disable=not progress, leave=False):
        probs = [next(problem_stream) for _ in range(prompts_per_step)]
        batch = collect(policy, ref, critic, tok, probs, reward_fn, cfg, n=samples_per_prompt, seed=seed * 100_003 + step)
        h = {"step": float(step), **rollout_stats(batch)}
        if extra_metrics is not None:
            h.update(extra_metrics(batch))
        h.update(ppo_update(policy, critic, opt, opt_v, batch, cfg, seed=seed * 100_003 + step))
        if not all(math.isfinite(v) or k == "explained_var" for k, v in h.items()):
            raise FloatingPointError(f"PPO diverged at step {step}: {h}")
        if callback is not None:
            h.update(callback(step + 1, policy) or {})
            policy.eval()
        history.append(h)
    return PPOResult(policy, critic, history)


def config_dict(cfg: PPOConfig) -> dict[str, object]:
    """The configuration as a plain dict (for printing)."""
    return asdict(cfg)


__all__ = [
    "PPOBatch", "PPOConfig", "PPOResult", "clipped_policy_loss", "clipped_value_loss", "collect", "config_dict",
    "explained_variance", "gae", "kl_rewards", "ppo_update", "rollout_stats", "train_ppo", "whiten",
]
