"""GRPO and its successors, from scratch (survey §3.2.8; Shao et al. 2024, DeepSeek-R1 2025).

GRPO drops PPO's critic: it samples a **group** of ``G`` completions per prompt and uses the group's own
rewards as the baseline. One iteration:

1. **Rollout.** ``M`` prompts x ``G`` samples from the current policy (``pi_old`` of this iteration), scored by
   ``reward_fn(problems, texts) -> [B]`` (:func:`utils.rl.common.verifier_reward`: 1 if the answer is right).
2. **Advantages** (:func:`utils.rl.policy_gradient.group_advantages`): ``A_i = (r_i - mean_G r) / (std_G r + 1e-4)``,
   one per sequence, given to each of its tokens (``scale="none"``: Dr. GRPO's unscaled ``r_i - mean_G r``).
3. **Updates** (:func:`grpo_loss`): ``num_iterations`` gradient steps on the clipped surrogate with the ratio
   ``rho_t = pi_theta / pi_old`` - against **pi_old**, the policy that sampled the batch (the survey's PPO
   section prints ``pi_ref`` there) - plus an optional ``beta * k3`` KL to the frozen ``pi_ref``.

The loss types follow TRL 1.16's ``GRPOConfig.loss_type`` (and are tested against its ``_compute_loss``):

* ``"grpo"``: per-token clipped surrogate, mean over each sequence's tokens, then over sequences (``1/|o_i|``).
* ``"dr_grpo"``: the same terms summed and divided by a constant ``B * max_completion_length`` (Liu et al. 2025,
  no length normalisation; pair it with ``scale_rewards="none"``).
* ``"dapo"``: token-level mean over all tokens of the batch (Yu et al. 2025; TRL's **default** loss_type), with
  clip-higher (``epsilon_high > epsilon``). DAPO's dynamic sampling (``GRPOConfig.dynamic_sampling``) and soft
  overlong penalty (``overlong_buffer``) are trainer options here; TRL has the overlong reward, not the sampling.
* ``"bnpo"``: the token-level mean over the (local) batch: equal to ``"dapo"`` on one batch.
* ``"gspo"``: a **sequence-level** ratio ``s_i = exp(mean_t log rho_t)``, clipped per sequence (Zheng et al.
  2025; TRL: ``importance_sampling_level="sequence"`` with loss_type ``"grpo"``).
* ``"cispo"``: clip the (detached) importance weight, not the update: ``-min(rho_t, eps_max) * A * log pi_theta``,
  token-level mean (MiniMax-M1 2025); ``epsilon_high`` is ``eps_max``.

Shapes: ``M`` prompts, ``G`` samples per prompt, ``B = M * G`` sequences ordered prompt-major (rows
``i*G ... i*G+G-1`` belong to prompt ``i``), ``T`` completion length (right-padded; ``mask [B, T]`` is 1 up to and
including the end token), ``P`` prompt length (left-padded).
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator, Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..lm.generation import build_prompts, end_token_ids, sample
from ..lm.logprobs import completion_logprobs, kl_estimate
from ..lm.models import save_model
from ..lm.samples import Samples
from ..runtime import Profile
from ..world import Problem
from .common import RewardFn, StepHistory, verifier_reward
from .policy_gradient import ADVANTAGE_SCALES, entropy_from_logprobs, group_advantages

#: ``prompt_fn(tok, problems) -> one prompt string per problem`` (default :func:`utils.lm.generation.build_prompts`).
PromptFn = Callable[[PreTrainedTokenizerBase, Sequence[Problem]], list[str]]

LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo", "gspo", "cispo")


@dataclass
class GRPOConfig:
    """GRPO's knobs (names as in TRL 1.16's ``GRPOConfig`` where it has them).

    Attributes:
        group_size: ``G`` samples per prompt (TRL: ``num_generations``).
        loss_type: one of :data:`LOSS_TYPES` (see the module docstring).
        lr: Adam learning rate. max_grad_norm: gradient clipping (``None``: none).
        beta: weight of the per-token k3 KL to ``pi_ref`` in the loss (0: no reference model needed for the loss).
        epsilon: the ratio's lower clip ``1 - epsilon`` (and the upper one unless ``epsilon_high`` is set).
        epsilon_high: DAPO's clip-higher upper range ``1 + epsilon_high``; for ``"cispo"`` the cap ``eps_max`` on
            the ratio itself (``None`` there: 5.0, the value TRL's docs recommend).
        temperature: sampling temperature (log-probs are taken at the same one, as TRL does).
        max_new_tokens: the completion budget (TRL: ``max_completion_length``).
        scale_rewards: ``"group"`` (divide by the group's std), ``"batch"`` (by the batch's std), ``"none"``.
        mask_truncated: drop completions that hit ``max_new_tokens`` without an end token from the loss
            (TRL: ``mask_truncated_completions``; they still count in their group's mean and std).
        dynamic_sampling: DAPO's dynamic sampling: drop groups whose rewards are all equal (no signal) and sample
            fresh prompts until ``prompts_per_step`` informative groups are found (at most ``max_refills`` extra
            rounds; the step then trains on what it has).
        max_refills: rounds of extra sampling for ``dynamic_sampling``.
        overlong_buffer: DAPO's soft overlong penalty: within the last ``overlong_buffer`` tokens of the budget the
            reward falls linearly by up to ``overlong_penalty``; a truncated completion gets ``-overlong_penalty``.
            ``None``: off.
        overlong_penalty: the penalty's size.
        num_iterations: ``mu``, gradient steps per rollout (``pi_old`` is the policy at the rollout).
        micro_batch: sequences per forward/backward (gradient accumulation; ``None``: the whole batch at once).
        stop: strings that end a completion besides the end token (:func:`utils.lm.generation.sample`'s ``stop``;
            e.g. a base model that runs on into the next document of its pretraining text).
    """

    group_size: int = 8
    loss_type: str = "grpo"
    lr: float = 1e-4
    beta: float = 0.0
    epsilon: float = 0.2
    epsilon_high: float | None = None
    temperature: float = 1.0
    max_new_tokens: int = 48
    scale_rewards: str = "group"
    mask_truncated: bool = False
    dynamic_sampling: bool = False
    overlong_buffer: int | None = None
    num_iterations: int = 1
    micro_batch: int | None = None
    max_grad_norm: float | None = 1.0
    max_refills: int = 3
    overlong_penalty: float = 1.0
    stop: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"unknown loss_type {self.loss_type!r}; choose one of {LOSS_TYPES}")
        if self.scale_rewards not in ADVANTAGE_SCALES:
            raise ValueError(f"unknown scale_rewards {self.scale_rewards!r}; choose one of {ADVANTAGE_SCALES}")
        if self.group_size < 2:
            raise ValueError("GRPO needs at least 2 samples per prompt (a group baseline)")
        if self.epsilon <= 0 or (self.epsilon_high is not None and self.epsilon_high <= 0):
            raise ValueError("clip ranges must be positive")
        if self.beta < 0 or self.num_iterations < 1 or self.temperature <= 0:
            raise ValueError("need beta >= 0, num_iterations >= 1 and temperature > 0")
        if self.overlong_buffer is not None and not 0 < self.overlong_buffer <= self.max_new_tokens:
            raise ValueError(f"overlong_buffer must lie in (0, max_new_tokens], got {self.overlong_buffer}")

    @property
    def eps_high(self) -> float:
        """The upper clip parameter actually used (``epsilon_high``, else ``epsilon``; 5.0 for cispo)."""
        if self.epsilon_high is not None:
            return self.epsilon_high
        return 5.0 if self.loss_type == "cispo" else self.epsilon


# ----------------------------------------------------------------------------------------------
# Advantages and reward shaping
# ----------------------------------------------------------------------------------------------


def zero_std_groups(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """``[M]`` bool: groups whose ``G`` rewards are all equal (their advantages are all 0: no signal)."""
    g = rewards.float().view(-1, group_size)
    return g.max(1).values == g.min(1).values


def truncated(samples: Samples, tok: PreTrainedTokenizerBase, max_new_tokens: int) -> torch.Tensor:
    """``[B]`` bool: completions that used the whole budget without writing an end token."""
    stop = end_token_ids(tok)
    lengths = samples.completion_mask.sum(-1)
    last = samples.completion_ids.gather(1, (lengths - 1).clamp(min=0)[:, None]).squeeze(1)
    is_stop = torch.tensor([int(t) in stop for t in last.tolist()], device=lengths.device)
    return (lengths >= max_new_tokens) & ~is_stop


def overlong_penalty(lengths: torch.Tensor, max_new_tokens: int, buffer: int, penalty: float = 1.0,
                     is_truncated: torch.Tensor | None = None) -> torch.Tensor:
    """``[B]`` DAPO's soft overlong punishment (Yu et al. 2025, eq. 13), to be **added** to the reward.

    0 for ``L <= L_max - buffer``, then ``penalty * (L_max - buffer - L) / buffer`` (linear down to
    ``-penalty`` at ``L = L_max``), and ``-penalty`` for a truncated completion (``is_truncated``).

    Args:
        lengths: ``[B]`` completion lengths in tokens.
    """
    L = lengths.float()
    start = max_new_tokens - buffer
    out = -penalty * ((L - start).clamp(min=0) / buffer).clamp(max=1.0)
    if is_truncated is not None:
        out = torch.where(is_truncated.to(out.device), torch.full_like(out, -penalty), out)
    return out


# ----------------------------------------------------------------------------------------------
# The loss
# ----------------------------------------------------------------------------------------------


def grpo_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    loss_type: str = "grpo",
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    ref_logps: torch.Tensor | None = None,
    beta: float = 0.0,
    max_completion_length: int | None = None,
    normalizer: float | None = None,
    return_stats: bool = False,
    kl_correction: bool = True,
) -> torch.Tensor | tuple[torch.Tensor, dict[str, float]]:
    """The GRPO-family loss of one batch, to minimise (TRL 1.16's ``GRPOTrainer._compute_loss``, from scratch).

    Per token ``l_t = -min(rho_t A, clip(rho_t, 1 - eps, 1 + eps_high) A) + beta * k3_t`` with
    ``rho_t = exp(logp_t - old_logp_t)`` (for ``"gspo"`` one ratio per sequence, ``exp(mean_t log rho_t)``; for
    ``"cispo"`` ``l_t = -sg[min(rho_t, eps_high)] * A * logp_t``) and ``k3_t = exp(ref - logp) - (ref - logp) - 1``;
    then aggregated: ``"grpo"``/``"gspo"`` mean per sequence then over sequences; ``"dr_grpo"``
    ``sum / (B * max_completion_length)``; ``"dapo"``/``"bnpo"``/``"cispo"`` ``sum / normalizer`` (default: the
    batch's number of tokens).

    Args:
        logps: ``[B, T]`` differentiable log-probs under the current policy.
        old_logps: ``[B, T]`` log-probs under ``pi_old`` (constants).
        advantages: ``[B]`` (or ``[B, T]``) advantages (constants).
        mask: ``[B, T]`` loss mask.
        epsilon_high: ``None``: ``epsilon`` (as TRL does, also for cispo).
        ref_logps: ``[B, T]`` log-probs under ``pi_ref`` (needed when ``beta > 0``).
        max_completion_length: Dr. GRPO's constant (default ``T``).
        normalizer: the token count that token-level losses divide by (for micro-batches: the whole batch's).
        kl_correction: multiply the k3 term by the ratio (TRL's ``use_bias_correction_kl``, default on): the
            tokens were sampled from ``pi_old``, and ``E_old[rho * k3]`` estimates ``KL(pi_theta || pi_ref)``. With one
            iteration per batch ``rho = 1`` in value (its gradient still flows).
        return_stats: also return ``clip_frac`` (share of loss terms where the clipped branch is active; for
            cispo: share of capped weights), ``ratio_mean`` and ``kl`` (mean per-token k3 to ``pi_ref``).
    """
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"unknown loss_type {loss_type!r}; choose one of {LOSS_TYPES}")
    if not (logps.shape == old_logps.shape == mask.shape):
        raise ValueError(f"logps, old_logps and mask must share one [B, T] shape: {tuple(logps.shape)}, "
                         f"{tuple(old_logps.shape)}, {tuple(mask.shape)}")
    eps_high = epsilon if epsilon_high is None else epsilon_high
    m = mask.to(logps.dtype)
    adv = advantages.detach().float().to(logps.device)
    adv = adv[:, None] if adv.ndim == 1 else adv
    log_ratio = logps - old_logps.detach()
    if loss_type == "gspo":
        log_ratio = ((log_ratio * m).sum(-1) / m.sum(-1).clamp(min=1.0))[:, None]           # [B, 1]
    ratio = log_ratio.exp()
    if loss_type == "cispo":
        w = ratio.clamp(max=eps_high).detach()
        per_token = -w * adv * logps
        active = (ratio > eps_high).float()
    else:
        clipped = ratio.clamp(1 - epsilon, 1 + eps_high)
        per_token = -torch.minimum(ratio * adv, clipped * adv)
        active = (clipped * adv < ratio * adv).float()
    kl = None
    if beta != 0.0:
        if ref_logps is None:
            raise ValueError("beta > 0 needs ref_logps")
        kl = kl_estimate(logps, ref_logps.detach(), mask, "k3")
        kl_term = kl * ratio if kl_correction else kl   # samples come from pi_old: weight by pi_theta / pi_old
        per_token = per_token + beta * kl_term
    per_token = per_token.expand_as(m) * m
    if loss_type in ("grpo", "gspo"):
        loss = (per_token.sum(-1) / m.sum(-1).clamp(min=1.0)).mean()
    elif loss_type == "dr_grpo":
        loss = per_token.sum() / (per_token.shape[0] * (max_completion_length or per_token.shape[1]))
    else:
        loss = per_token.sum() / (m.sum().clamp(min=1.0) if normalizer is None else max(float(normalizer), 1.0))
    if not return_stats:
        return loss
    with torch.no_grad():
        n = m.sum().clamp(min=1.0)
        stats = {"clip_frac": float((active.expand_as(m) * m).sum() / n),
                 "ratio_mean": float((ratio.expand_as(m) * m).sum() / n),
                 "kl": float(kl.sum() / n) if kl is not None else float("nan")}
    return loss, stats


# ----------------------------------------------------------------------------------------------
# Rollouts and the trainer
# ----------------------------------------------------------------------------------------------


@dataclass
class GRPOBatch:
    """One rollout (after dynamic sampling), with what the updates need.

    Attributes:
        problems: ``B`` problems (one per sequence). samples: the completions. scores: ``[B]`` ``reward_fn`` values.
        rewards: ``[B]`` the rewards the advantages use (scores plus shaping). advantages: ``[B]``.
        loss_mask: ``[B, T]`` the completion mask, zeroed on masked (truncated) rows.
        truncated: ``[B]`` bool. groups_sampled: groups drawn for this batch (> ``M`` with dynamic sampling).
        frac_zero_std: share of the *sampled* groups whose rewards were all equal.
    """

    problems: list[Problem]
    samples: Samples
    scores: torch.Tensor
    rewards: torch.Tensor
    advantages: torch.Tensor
    loss_mask: torch.Tensor
    truncated: torch.Tensor
    groups_sampled: int
    frac_zero_std: float


def _cat_samples(parts: Sequence[Samples], pad_id: int) -> Samples:
    def cat(ts: list[torch.Tensor], value: int | float, left: bool) -> torch.Tensor:
        width = max(t.shape[1] for t in ts)
        out = []
        for t in ts:
            extra = t.new_full((t.shape[0], width - t.shape[1]), value)
            out.append(torch.cat([extra, t] if left else [t, extra], 1))
        return torch.cat(out, 0)

    return Samples(cat([s.prompt_ids for s in parts], pad_id, True), cat([s.prompt_mask for s in parts], 0, True),
                   cat([s.completion_ids for s in parts], pad_id, False), cat([s.completion_mask for s in parts], 0, False),
                   cat([s.logprobs for s in parts], 0.0, False), [t for s in parts for t in s.texts])


@torch.no_grad()
def collect(policy: PreTrainedModel, tok: PreTrainedTokenizerBase, problem_stream: Iterator[Problem], prompts: int,
            reward_fn: RewardFn, cfg: GRPOConfig, seed: int = 0, batch_size: int = 256,
            prompt_fn: PromptFn = build_prompts) -> GRPOBatch:
    """Sample ``prompts`` groups of ``cfg.group_size`` from ``policy``, score, shape and compute advantages.

    ``prompt_fn(tok, problems) -> prompts`` writes the prompts (default: the chat template; a base model can be
    asked in its own pretraining format instead).

    With ``cfg.dynamic_sampling`` the groups whose rewards are all equal are dropped and fresh prompts from
    ``problem_stream`` are sampled (up to ``cfg.max_refills`` extra rounds) until ``prompts`` informative groups
    are found; a step may then train on fewer groups. Advantages are computed per group, so dropping a group
    changes no other group's advantages.
    """
    G, parts, kept, n_groups, n_zero = cfg.group_size, [], 0, 0, 0
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    for round_ in range(1 + (cfg.max_refills if cfg.dynamic_sampling else 0)):
        need = prompts - kept
        if need <= 0:
            break
        probs = [next(problem_stream) for _ in range(need)]
        s = sample(policy, tok, prompt_fn(tok, probs), n=G, max_new_tokens=cfg.max_new_tokens,
                   temperature=cfg.temperature, seed=seed * 1009 + round_, batch_size=batch_size, stop=cfg.stop)
        per_row = [probs[i // G] for i in range(len(s.texts))]
        scores = reward_fn(per_row, s.texts).float().cpu()
        if scores.shape != (len(s.texts),):
            raise ValueError(f"reward_fn must return [B] = [{len(s.texts)}] rewards, got {tuple(scores.shape)}")
        trunc = truncated(s, tok, cfg.max_new_tokens).cpu()
        rewards = scores.clone()
        if cfg.overlong_buffer is not None:
            rewards = rewards + overlong_penalty(s.completion_mask.sum(-1).cpu(), cfg.max_new_tokens, cfg.overlong_buffer,
                                                 cfg.overlong_penalty, trunc)
        zero = zero_std_groups(rewards, G)
        n_groups, n_zero = n_groups + len(probs), n_zero + int(zero.sum())
        keep = ~zero if cfg.dynamic_sampling else torch.ones_like(zero)
        if not bool(keep.any()):
            continue
        rows = (torch.nonzero(keep).squeeze(1)[:, None] * G + torch.arange(G)).reshape(-1)
        parts.append((s.select(rows), [per_row[int(i)] for i in rows], scores[rows], rewards[rows], trunc[rows]))
        kept += int(keep.sum())
    if not parts:  # every group of every round had equal rewards: train on nothing but report the step
        probs = [next(problem_stream)]
        s = sample(policy, tok, prompt_fn(tok, probs), n=G, max_new_tokens=cfg.max_new_tokens,
                   temperature=cfg.temperature, seed=seed * 1009 + 999, batch_size=batch_size, stop=cfg.stop)
        r = reward_fn([probs[0]] * G, s.texts).float().cpu()
        parts.append((s, [probs[0]] * G, r, r.clone(), truncated(s, tok, cfg.max_new_tokens).cpu()))
    s = _cat_samples([p[0] for p in parts], pad_id)
    scores, rewards, trunc = (torch.cat([p[i] for p in parts]) for i in (2, 3, 4))
    adv = group_advantages(rewards, G, cfg.scale_rewards)
    device = s.completion_ids.device
    loss_mask = s.completion_mask.clone()
    if cfg.mask_truncated:
        loss_mask = loss_mask * (~trunc).to(device)[:, None].to(loss_mask.dtype)
    return GRPOBatch([q for p in parts for q in p[1]], s, scores, rewards, adv.to(device), loss_mask, trunc,
                     n_groups, n_zero / max(n_groups, 1))


def _logps(model: PreTrainedModel, s: Samples, rows: slice, temperature: float, entropy: bool = False):
    return completion_logprobs(model, s.prompt_ids[rows], s.prompt_mask[rows], s.completion_ids[rows],
                               s.completion_mask[rows], temperature=temperature, return_entropy=entropy)


def grpo_update(policy: PreTrainedModel, opt: torch.optim.Optimizer, batch: GRPOBatch, cfg: GRPOConfig,
                ref: PreTrainedModel | None = None) -> dict[str, float]:
    """``cfg.num_iterations`` gradient steps of :func:`grpo_loss` on ``batch``; returns mean diagnostics.

    ``pi_old`` log-probs are recomputed by teacher forcing before the first step when ``num_iterations > 1``
    (with one iteration they equal the current ones, detached, as TRL does), ``pi_ref`` ones when ``beta > 0``.
    """
    s, B = batch.samples, batch.samples.completion_ids.shape[0]
    step = B if cfg.micro_batch is None else cfg.micro_batch
    chunks = [slice(c, c + step) for c in range(0, B, step)]
    n_tokens = float(batch.loss_mask.sum())
    with torch.no_grad():
        old = [_logps(policy, s, c, cfg.temperature).logprobs for c in chunks] if cfg.num_iterations > 1 else None
        refl = [_logps(ref, s, c, cfg.temperature).logprobs for c in chunks] if (cfg.beta > 0 and ref is not None) else None
    if cfg.beta > 0 and refl is None:
        raise ValueError("beta > 0 needs a reference model")
    logs: list[dict[str, float]] = []
    policy.train()
    for _ in range(cfg.num_iterations):
        opt.zero_grad()
        total, st_sum = 0.0, {"clip_frac": 0.0, "ratio_mean": 0.0, "kl": 0.0}
        for k, c in enumerate(chunks):
            lp = _logps(policy, s, c, cfg.temperature).logprobs
            o = old[k] if old is not None else lp.detach()
            loss, st = grpo_loss(lp, o, batch.advantages[c], batch.loss_mask[c], cfg.loss_type, cfg.epsilon, cfg.eps_high,
                                 refl[k] if refl is not None else None, cfg.beta, cfg.max_new_tokens, normalizer=n_tokens,
                                 return_stats=True)
            share = lp.shape[0] / B
            if cfg.loss_type in ("grpo", "gspo", "dr_grpo"):  # per-sequence means: weight a chunk by its share of B
                loss = loss * share
            loss.backward()
            total += float(loss.detach())
            for key in st_sum:
                st_sum[key] += st[key] * share
        gn = torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm if cfg.max_grad_norm else float("inf"))
        opt.step()
        logs.append({"loss": total, "grad_norm": float(gn), **st_sum})
    policy.eval()
    return {k: sum(d[k] for d in logs) / len(logs) for k in logs[0]}


@dataclass
class GRPOResult(StepHistory):
    """What :func:`train_grpo` returns: the trained policy and one dict of diagnostics per step."""

    policy: PreTrainedModel
    history: list[dict[str, float]] = field(default_factory=list)


def train_grpo(
    policy: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    reward_fn: RewardFn,
    problem_stream: Iterator[Problem],
    steps: int,
    prompts_per_step: int,
    cfg: GRPOConfig | None = None,
    ref: PreTrainedModel | None = None,
    extra_metrics: Callable[[GRPOBatch], dict[str, float]] | None = None,
    seed: int = 0,
    progress: bool = True,
    callback: Callable[[int, PreTrainedModel], dict[str, float] | None] | None = None,
    prompt_fn: PromptFn = build_prompts,
) -> GRPOResult:
    """Train ``policy`` (in place) with GRPO for ``steps`` iterations of ``prompts_per_step`` fresh prompts.

    Args:
        reward_fn: ``(problems [B], texts [B]) -> [B]`` (:func:`utils.rl.common.verifier_reward`, a reward model).
        problem_stream: an iterator of training problems (:func:`utils.world.iter_problems`); each step takes the
            next ones.
        ref: the frozen ``pi_ref`` for the KL (penalty and diagnostic); default: a copy of ``policy`` at the start.
        extra_metrics: called on each rollout; its dict is merged into that step's diagnostics.
        callback: ``callback(steps_done, policy)`` after each update (e.g. a held-out evaluation every 25 steps);
            a dict it returns is merged into that step's diagnostics (``seconds`` excludes it).
        prompt_fn: ``prompt_fn(tok, problems) -> prompts`` (default: the chat template), see :func:`collect`.

    Returns:
        :class:`GRPOResult`; each step's dict has ``reward`` (mean ``reward_fn`` score), ``shaped_reward``,
        ``frac_zero_std`` (of the sampled groups), ``frac_zero_std_trained`` (of the groups trained on: 0 with
        dynamic sampling unless a step found too few informative groups), ``groups`` (trained on) and ``groups_sampled``, ``clip_frac``,
        ``kl`` (k3 to ``pi_ref`` per token, from the first update), ``entropy`` (Monte-Carlo, nats/token at the
        sampling temperature), ``length``, ``truncated`` (fraction), ``loss``, ``grad_norm``, ``seconds``.
    """
    from tqdm.auto import tqdm

    cfg = cfg or GRPOConfig()
    if steps < 0 or prompts_per_step < 1:
        raise ValueError("need steps >= 0 and prompts_per_step >= 1")
    ref = ref if ref is not None else copy.deepcopy(policy).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    history: list[dict[str, float]] = []
    policy.eval()
    for step in tqdm(range(steps), desc=f"GRPO ({cfg.loss_type})", disable=not progress, leave=False):
        t0 = time.perf_counter()
        batch = collect(policy, tok, problem_stream, prompts_per_step, reward_fn, cfg, seed=seed * 100_003 + step,
                        prompt_fn=prompt_fn)
        m = batch.samples.completion_mask
        h = {"step": float(step), "reward": float(batch.scores.mean()), "shaped_reward": float(batch.rewards.mean()),
             "frac_zero_std": batch.frac_zero_std,
             "frac_zero_std_trained": float(zero_std_groups(batch.rewards, cfg.group_size).float().mean()), "groups": float(len(batch.scores) // cfg.group_size),
             "groups_sampled": float(batch.groups_sampled), "entropy": entropy_from_logprobs(batch.samples.logprobs, m),
             "length": float(m.float().sum(-1).mean()), "truncated": float(batch.truncated.float().mean())}
        if extra_metrics is not None:
            h.update(extra_metrics(batch))
        upd = grpo_update(policy, opt, batch, cfg, ref)
        if cfg.beta == 0:  # the KL is a diagnostic only: measure it on the rollout
            with torch.no_grad():
                lp = completion_logprobs(ref, batch.samples.prompt_ids, batch.samples.prompt_mask,
                                         batch.samples.completion_ids, m, temperature=cfg.temperature).logprobs
            upd["kl"] = float(kl_estimate(batch.samples.logprobs, lp, m, "k3").sum() / m.sum().clamp(min=1))
        h.update(upd)
        h["seconds"] = time.perf_counter() - t0
        if callback is not None:
            h.update(callback(step + 1, policy) or {})
            policy.eval()
        if not all(math.isfinite(v) for v in h.values()):
            raise FloatingPointError(f"GRPO diverged at step {step}: {h}")
        history.append(h)
    return GRPOResult(policy, history)


def config_dict(cfg: GRPOConfig) -> dict[str, object]:
    """The configuration as a plain dict (for printing)."""
    return asdict(cfg)


# ----------------------------------------------------------------------------------------------
# The course's GRPO policy
# ----------------------------------------------------------------------------------------------

#: The recipe of :func:`course_grpo_policy` per profile: start model, the RL task (family, level: tiny-sft has not
#: memorised Countdown-4, so a held-out gain is possible there), steps, prompts per step and the config.
RECIPE: dict[str, dict[str, Any]] = {
    "smoke": dict(start="tiny-sft", task=("countdown", 4), steps=2, prompts=4,
                  cfg=dict(group_size=4, lr=5e-5, temperature=1.0, max_new_tokens=64, dynamic_sampling=True)),
    # cpu: DAPO's dynamic sampling spends the update (the costly half of a step on a CPU) only on groups with signal
    "cpu": dict(start="tiny-sft", task=("countdown", 4), steps=60, prompts=16,
                cfg=dict(group_size=8, lr=5e-5, temperature=1.0, max_new_tokens=64, dynamic_sampling=True)),
    "gpu": dict(start="tiny-sft", task=("countdown", 4), steps=100, prompts=256,
                cfg=dict(group_size=8, lr=3e-5, temperature=1.0, max_new_tokens=64)),
}


def course_grpo_policy(profile: Profile, seed: int = 0, retrain: bool = False, placebo: bool = False
                       ) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Chapter 10's GRPO policy, the RL-trained policy later chapters compare against: loaded from
    ``profile.model_dir(Arm(seed, placebo).name)`` if saved (and not ``retrain``), else trained with :data:`RECIPE`
    from tiny-sft on the recipe's training stream with the verifier's reward (``placebo``: the within-group permuted
    reward of :func:`utils.rl.common.placebo_reward`, the control arm) and saved there (see :func:`train_arms`)."""
    from ..lm.models import load_model

    arm = Arm(seed, placebo)
    folder = profile.model_dir(arm.name)
    if retrain or not (folder / "config.json").exists():
        _train_arm(profile, arm, (), 1, torch.get_num_threads())
    return load_model(str(folder), device=profile.device)


@dataclass(frozen=True)
class Arm:
    """One training run of an experiment: a seed of the method (``placebo=False``) or of its placebo control."""

    seed: int = 0
    placebo: bool = False

    @property
    def name(self) -> str:
        """The model folder's name: ``tiny-grpo``, ``tiny-grpo-s1``, ``tiny-grpo-placebo``, ..."""
        return "tiny-grpo" + ("-placebo" if self.placebo else "") + (f"-s{self.seed}" if self.seed else "")


def _train_arm(profile: Profile, arm: Arm, probe: Sequence[Problem], every: int, threads: int) -> list[dict[str, float]]:
    """Train one :class:`Arm` with :data:`RECIPE` and save it; greedy accuracy on ``probe`` every ``every`` steps."""
    from ..lm.evaluation import evaluate
    from ..lm.models import load_model
    from ..world import iter_problems
    from .common import placebo_reward

    torch.set_num_threads(threads)
    r = profile.recipe(RECIPE)
    cfg = GRPOConfig(**r["cfg"])
    torch.manual_seed(arm.seed)
    policy, tok = load_model(r["start"], device=profile.device)
    reward = placebo_reward(verifier_reward, cfg.group_size, arm.seed) if arm.placebo else verifier_reward

    def checkpoint(k: int, model: PreTrainedModel) -> dict[str, float] | None:
        if not probe or (k % every and k != r["steps"]):
            return None
        res = evaluate(model, tok, list(probe), max_new_tokens=cfg.max_new_tokens, batch_size=profile.eval_batch_size,
                       progress=False)
        return {"probe_greedy": res.accuracy}

    family, level = r["task"]
    res = train_grpo(policy, tok, reward, iter_problems(family, level, "train", seed=arm.seed), r["steps"], r["prompts"],
                     cfg, seed=arm.seed, progress=False, callback=checkpoint)
    save_model(policy, tok, profile.model_dir(arm.name))
    return res.history


def train_arms(profile: Profile, arms: Sequence[Arm], probe: Sequence[Problem] = (), every: int = 10,
               workers: int | None = None, retrain: bool = False) -> dict[Arm, list[dict[str, float]]]:
    """Train every arm of an experiment with :data:`RECIPE` (each saved to ``profile.model_dir(arm.name)``), in
    parallel processes on a CPU; returns each arm's per-step history (with ``probe_greedy`` at checkpoints).

    The arms are independent runs, so on a CPU they are trained side by side, one process and one torch thread
    each (``workers``: default the number of cores, at most one per arm): on a 2-core laptop the method and its
    placebo take the wall time of one run. On a GPU they run one after the other in this process. An arm already
    saved (and not ``retrain``) is loaded, not retrained; its history is then empty.
    """
    import os

    todo = [a for a in arms if retrain or not (profile.model_dir(a.name) / "config.json").exists()]
    out: dict[Arm, list[dict[str, float]]] = {a: [] for a in arms}
    if not todo:
        return out
    workers = min(len(todo), workers or (os.cpu_count() or 1)) if profile.device == "cpu" else 1
    if workers <= 1:
        for a in todo:
            out[a] = _train_arm(profile, a, probe, every, torch.get_num_threads())
        return out
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(workers) as pool:  # spawn: safe from a notebook kernel and with torch threads
        jobs = [pool.apply_async(_train_arm, (profile, a, list(probe), every, 1)) for a in todo]
        for a, j in zip(todo, jobs):
            out[a] = j.get()
    return out


__all__ = [
    "Arm", "GRPOBatch", "GRPOConfig", "GRPOResult", "LOSS_TYPES", "PromptFn", "RECIPE", "collect", "config_dict", "course_grpo_policy", "train_arms",
    "grpo_loss", "grpo_update", "overlong_penalty", "train_grpo", "truncated", "zero_std_groups",
]
