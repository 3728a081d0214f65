"""Policy gradients for a language model, from scratch (survey §2.1-2.2).

Generation is a decision process: the *state* ``s_t`` is the prompt plus the tokens written so far, the
*action* ``a_t`` is the next token, the *policy* is ``pi_theta(a_t | s_t)``. With one reward ``R`` at the
end of a completion ``y``, the policy-gradient theorem gives (score-function / REINFORCE estimator)::

    grad J(theta) = E_y[ (R(x, y) - b) * sum_t grad log pi_theta(y_t | s_t) ]

for any baseline ``b`` that does not depend on the sampled ``y`` (a per-token baseline ``b_t = V(s_t)``
may depend on the state, not on the action taken). This module holds the reusable pieces:

* (the per-token log-probs every loss here differentiates come from
  :func:`utils.lm.logprobs.completion_logprobs`;)
* baselines / advantages: :func:`group_mean_baseline`, :func:`leave_one_out_baseline`,
  :func:`scst_advantages` (greedy reward as baseline), :func:`group_advantages` (GRPO's group-standardised
  advantage, and its batch-std and unscaled variants), :func:`advantages` (all of them by name);
* :func:`reinforce_loss` - a surrogate loss whose gradient is the REINFORCE estimate, and
  :func:`reinforce_backward` - its gradient accumulated over micro-batches (bounded memory);
  :func:`policy_loss` - the same surrogate with a choice of loss aggregation (sum per sequence,
  GRPO's mean per sequence, DAPO's token-level mean over the batch);
* :class:`ValueHead` and :func:`value_loss` - an A2C-style critic on the model's hidden states;
* :func:`mixer_weight` (MIXER's MLE-to-RL curriculum) and :func:`mrt_loss` (minimum risk training);
* :func:`flat_grad` and :class:`GradStats` - to measure the variance of a gradient estimator;
  :class:`GradSamples`, :func:`total_variance_from_gram` and :func:`bootstrap_total_variances` - bootstrap
  replicates of it (resampling the K mini-batch gradients; intervals: :func:`utils.stats.percentile_interval`);
* :func:`rollout` - sample, decode and score a group of completions per problem.

Shapes: ``M`` prompts, ``G`` samples per prompt, ``B = M * G`` sequences ordered prompt-major (rows
``i*G ... i*G+G-1`` belong to prompt ``i``, as :func:`utils.lm.generation.sample` returns them), ``P`` padded
prompt length (left-padded), ``T`` completion length (right-padded), ``H`` hidden size, ``V`` vocabulary.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..lm.generation import build_prompts, sample
from ..lm.logprobs import completion_logprobs
from ..lm.samples import Samples
from ..stats import bootstrap_indices
from ..world import Problem, score

ADVANTAGE_METHODS = ("none", "batch_mean", "group_mean", "leave_one_out", "scst", "grpo")
LOSS_AGGREGATIONS = ("sum", "sequence_mean", "token_mean")
ADVANTAGE_SCALES = ("group", "batch", "none")


# ----------------------------------------------------------------------------------------------
# Baselines and advantages
# ----------------------------------------------------------------------------------------------


def _groups(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    if rewards.ndim != 1 or group_size < 1 or rewards.numel() % group_size:
        raise ValueError(f"need 1-D rewards whose length is a multiple of group_size={group_size}, got {tuple(rewards.shape)}")
    return rewards.view(-1, group_size)


def group_mean_baseline(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """``[B]`` mean reward of each prompt's group of ``group_size`` samples, repeated for each sample.

    ``group_size = B`` gives the batch mean. It includes the sample's own reward, but only as a constant
    rescaling: per sample, ``r_i - mean_G(r) = (G - 1)/G * (r_i - mean_{j != i}(r_j))``, i.e. exactly
    ``(1 - 1/G)`` times the leave-one-out advantage (:func:`leave_one_out_baseline`), so the expected
    gradient is the true one shrunk by ``(1 - 1/G)``, never turned.
    """
    g = _groups(rewards.float(), group_size)
    return g.mean(1, keepdim=True).expand_as(g).reshape(-1)


def leave_one_out_baseline(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """``[B]`` mean reward of the *other* ``G - 1`` samples of the same prompt (RLOO; needs ``G >= 2``).

    Independent of the sample it is subtracted from, hence an unbiased baseline.
    """
    if group_size < 2:
        raise ValueError("the leave-one-out baseline needs at least 2 samples per prompt")
    g = _groups(rewards.float(), group_size)
    return ((g.sum(1, keepdim=True) - g) / (group_size - 1)).reshape(-1)


def scst_advantages(rewards: torch.Tensor, greedy_rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """Self-critical sequence training: ``A_i = r(y_i) - r(greedy answer of the same prompt)``.

    Args:
        rewards: ``[B]`` rewards of the sampled completions (prompt-major).
        greedy_rewards: ``[M]`` reward of the greedy completion of each prompt.
        group_size: ``G`` samples per prompt (``B = M * G``).

    Returns:
        ``[B]`` advantages. The greedy completion does not depend on the sample, so the baseline is unbiased.
    """
    g = _groups(rewards.float(), group_size)
    if greedy_rewards.shape != (g.shape[0],):
        raise ValueError(f"need one greedy reward per prompt: {g.shape[0]}, got {tuple(greedy_rewards.shape)}")
    return (g - greedy_rewards.float().to(g.device)[:, None]).reshape(-1)


def group_advantages(rewards: torch.Tensor, group_size: int, scale: str = "group", eps: float = 1e-4) -> torch.Tensor:
    """GRPO's advantage (Shao et al. 2024): ``A_i = (r_i - mean_G(r)) / (std(r) + eps)``, centred per prompt group.

    ``scale`` picks the std (:data:`ADVANTAGE_SCALES`):

    * ``"group"``: the group's sample standard deviation (Bessel's correction, as ``torch.std`` and TRL's
      ``GRPOTrainer``), ``eps = 1e-4`` as in TRL. Dividing by it re-weights prompts by ``1/std``: a group with
      one success out of ``G`` (0/1 reward) gives the success ``(G-1)/sqrt(G)`` and each failure ``-1/sqrt(G)``,
      i.e. ``sqrt(G)`` times the group-mean advantages.
    * ``"batch"``: the whole batch's std (still centred per group; TRL's ``scale_rewards="batch"``).
    * ``"none"``: not divided, the group-mean advantage (Dr. GRPO, Liu et al. 2025).

    A group whose rewards are all equal has a zero numerator and gets advantage 0 (no signal), never NaN.

    Args:
        rewards: ``[B]`` rewards, prompt-major, ``B`` a multiple of ``group_size``.
        group_size: ``G >= 2`` samples per prompt (a group std needs two).

    Returns:
        ``[B]`` advantages; with ``"group"`` or ``"batch"`` invariant to ``r -> a * r + c`` for ``a > 0`` (up to ``eps``).
    """
    if scale not in ADVANTAGE_SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {ADVANTAGE_SCALES}")
    if group_size < 2:
        raise ValueError(f"group advantages need at least 2 samples per prompt, got group_size={group_size}")
    g = _groups(rewards.float(), group_size)
    adv = g - g.mean(1, keepdim=True)
    if scale == "group":
        adv = adv / (g.std(1, keepdim=True) + eps)
    elif scale == "batch":
        adv = adv / (rewards.float().std() + eps)                   # B >= G >= 2 rewards: a defined std
    return adv.reshape(-1)


def advantages(
    rewards: torch.Tensor,
    method: str,
    group_size: int = 1,
    greedy_rewards: torch.Tensor | None = None,
) -> torch.Tensor:
    """``[B]`` advantages ``r - b`` for a baseline chosen by name.

    ``method``: ``"none"`` (``b = 0``), ``"batch_mean"`` (mean over the whole batch), ``"group_mean"``
    (mean of the prompt's group), ``"leave_one_out"`` (mean of the prompt's *other* samples) or
    ``"scst"`` (the greedy completion's reward; needs ``greedy_rewards`` ``[M]``); ``"grpo"`` is not a
    baseline but GRPO's standardised group advantage :func:`group_advantages`.
    """
    r = rewards.float()
    if method == "none":
        return r.clone()
    if method == "batch_mean":
        return r - r.mean()
    if method == "group_mean":
        return r - group_mean_baseline(r, group_size)
    if method == "leave_one_out":
        return r - leave_one_out_baseline(r, group_size)
    if method == "scst":
        if greedy_rewards is None:
            raise ValueError("scst needs greedy_rewards, one per prompt")
        return scst_advantages(r, greedy_rewards, group_size)
    if method == "grpo":
        return group_advantages(r, group_size)
    raise ValueError(f"unknown advantage method {method!r}; choose one of {ADVANTAGE_METHODS}")


# ----------------------------------------------------------------------------------------------
# Losses
# ----------------------------------------------------------------------------------------------


def reinforce_loss(logprobs: torch.Tensor, completion_mask: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
    """Surrogate loss whose gradient is minus the REINFORCE estimate (so minimising it ascends ``J``).

    ``loss = -1/B * sum_b sum_t A_{b,t} * log pi(y_{b,t} | s_{b,t})``, advantages treated as constants.

    Args:
        logprobs: ``[B, T]`` per-token log-probs (differentiable), e.g. :func:`completion_logprobs`.
        completion_mask: ``[B, T]`` 1 on completion tokens.
        advantages: ``[B]`` one advantage per sequence (``R - b``), or ``[B, T]`` one per token
            (e.g. ``R - V(s_t)``).

    Returns:
        A scalar. Its *value* is not an objective worth reading; its gradient is what matters.
    """
    adv = advantages.detach().float().to(logprobs.device)
    if adv.ndim == 1:
        adv = adv[:, None]
    return -(adv * logprobs * completion_mask).sum() / logprobs.shape[0]


def policy_loss(
    logprobs: torch.Tensor, completion_mask: torch.Tensor, advantages: torch.Tensor, aggregation: str = "sum"
) -> torch.Tensor:
    """The policy-gradient surrogate ``-sum_{b,t} w_{b,t} * A_{b,t} * log pi(y_{b,t} | s_{b,t})`` with a choice of
    token weights ``w`` (the *loss aggregation*), advantages treated as constants.

    ``aggregation``:

    * ``"sum"``: ``w = 1/B`` - sum over each sequence's tokens, mean over sequences (:func:`reinforce_loss`,
      the policy-gradient estimator itself). A sequence of ``n`` tokens carries ``n/B`` of the total weight.
    * ``"sequence_mean"``: ``w = 1/(B * |o_b|)`` - GRPO's ``1/|o|`` (Shao et al. 2024): the mean over each
      sequence's tokens, then over sequences. Every sequence carries ``1/B``, so the tokens of a long
      sequence are pushed less - also a long *wrong* one, which Dr. GRPO (Liu et al. 2025) calls a length bias.
    * ``"token_mean"``: ``w = 1/sum_b |o_b|`` - DAPO's token-level loss (Yu et al. 2025): every token of the
      batch weighs the same, so a sequence's share is proportional to its length.

    Args:
        logprobs: ``[B, T]`` per-token log-probs (differentiable).
        completion_mask: ``[B, T]`` 1 on completion tokens.
        advantages: ``[B]`` or ``[B, T]``.

    Returns:
        A scalar; ``"sum"`` equals :func:`reinforce_loss` exactly.
    """
    if aggregation == "sum":
        return reinforce_loss(logprobs, completion_mask, advantages)
    adv = advantages.detach().float().to(logprobs.device)
    if adv.ndim == 1:
        adv = adv[:, None]
    m = completion_mask.to(logprobs.dtype)
    per_token = adv * logprobs * m
    if aggregation == "sequence_mean":
        return -(per_token.sum(-1) / m.sum(-1).clamp(min=1)).mean()
    if aggregation == "token_mean":
        return -per_token.sum() / m.sum().clamp(min=1)
    raise ValueError(f"unknown aggregation {aggregation!r}; choose one of {LOSS_AGGREGATIONS}")


def reinforce_backward(
    model: PreTrainedModel, samples: Samples, advantages: torch.Tensor, micro_batch: int | None = None
) -> float:
    """Backpropagate :func:`reinforce_loss` of ``samples`` in chunks of ``micro_batch`` sequences.

    Gradient accumulation: the gradients add up to those of one pass over all ``B`` sequences (each chunk's
    loss is weighted by its share of ``B``), while activation memory is that of ``micro_batch`` sequences.
    ``None`` = one pass. Call ``optimizer.zero_grad()`` before; returns the loss value.

    Args:
        samples: ``B`` sampled completions (:class:`utils.lm.samples.Samples`).
        advantages: ``[B]`` or ``[B, T]``, as for :func:`reinforce_loss`.
    """
    B = samples.completion_ids.shape[0]
    if advantages.shape[0] != B:
        raise ValueError(f"{advantages.shape[0]} advantages for {B} sequences")
    step = B if micro_batch is None else micro_batch
    if step < 1:
        raise ValueError(f"micro_batch must be >= 1, got {micro_batch}")
    total = 0.0
    for c in range(0, B, step):
        sl = slice(c, c + step)
        out = completion_logprobs(model, samples.prompt_ids[sl], samples.prompt_mask[sl], samples.completion_ids[sl],
                                  samples.completion_mask[sl])
        loss = reinforce_loss(out.logprobs, samples.completion_mask[sl], advantages[sl]) * (out.logprobs.shape[0] / B)
        loss.backward()
        total += float(loss)
    return total


class ValueHead(nn.Module):
    """A linear critic ``V_phi(s_t) = w . h_t + c`` on the policy's final hidden states ``h_t``.

    Starts at ``V = init_value`` everywhere (zero weights), so a fresh head is a constant baseline.
    """

    def __init__(self, hidden_size: int, init_value: float = 0.0) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden_size, 1)
        nn.init.zeros_(self.linear.weight)
        nn.init.constant_(self.linear.bias, init_value)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """``[..., H]`` hidden states -> ``[...]`` value estimates (fp32)."""
        return self.linear(hidden.float()).squeeze(-1)


def value_loss(values: torch.Tensor, returns: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor:
    """Masked mean squared error ``(V(s_t) - G_t)^2`` over completion tokens.

    ``values``: ``[B, T]``; ``returns``: ``[B]`` (a terminal reward, undiscounted: every ``G_t = R``) or
    ``[B, T]``; ``completion_mask``: ``[B, T]``. A Monte-Carlo regression target (the survey calls it
    temporal-difference learning, but its formula regresses on the observed return ``G_t``).
    """
    ret = returns.detach().float().to(values.device)
    if ret.ndim == 1:
        ret = ret[:, None].expand_as(values)
    m = completion_mask.float()
    return ((values - ret) ** 2 * m).sum() / m.sum().clamp(min=1)


def mixer_weight(step: int, total_steps: int, floor: float = 0.0) -> float:
    """MIXER's curriculum weight ``lambda(step)`` on the MLE loss: 1 at the start, linearly down to ``floor``.

    The mixed objective is ``lambda * L_MLE + (1 - lambda) * L_RL`` (the survey's form). Ranzato et al.
    (2016) anneal by *position* instead: the first ``T - delta`` tokens keep the MLE loss, the last
    ``delta`` are trained with REINFORCE, and ``delta`` grows during training.
    """
    if total_steps <= 0:
        return floor
    return max(floor, 1.0 - step / total_steps)


def mrt_loss(seq_logprobs: torch.Tensor, costs: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Minimum risk training (Shen et al. 2016) on a sampled subset of completions per prompt.

    The expected risk ``sum_y p(y|x) * cost(y)`` over all outputs is intractable, so MRT renormalises the
    model over the ``G`` sampled completions with a sharpness ``alpha``:
    ``Q(y_i) = p(y_i)^alpha / sum_j p(y_j)^alpha`` and minimises ``sum_i Q(y_i) * cost(y_i)``.

    Args:
        seq_logprobs: ``[M, G]`` sequence log-probs (differentiable).
        costs: ``[M, G]`` costs, e.g. ``1 - reward``.
        alpha: sharpness (``alpha -> 0`` flattens ``Q`` to uniform).

    Returns:
        The risk averaged over the ``M`` prompts (a scalar). Its gradient is
        ``alpha * sum_i Q_i (cost_i - E_Q[cost]) * grad log p(y_i)``: REINFORCE with a Q-weighted mean
        baseline, over a renormalised distribution.
    """
    q = torch.softmax(alpha * seq_logprobs, dim=-1)
    return (q * costs.detach().float().to(q.device)).sum(-1).mean()


# ----------------------------------------------------------------------------------------------
# Measuring the variance of a gradient estimator
# ----------------------------------------------------------------------------------------------


def flat_grad(loss: torch.Tensor, params: Sequence[torch.Tensor], retain_graph: bool = False) -> torch.Tensor:
    """``[N]`` gradient of ``loss`` with respect to ``params``, flattened into one vector (zeros if unused)."""
    grads = torch.autograd.grad(loss, list(params), retain_graph=retain_graph, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)])


class GradStats:
    """Running mean and total variance of gradient vectors ``g_1 ... g_K`` (fp64 accumulators).

    ``total_variance`` is the trace of the covariance, ``1/(K-1) * sum_k ||g_k - mean||^2``: the expected
    squared distance of one estimate from the mean estimate.
    """

    def __init__(self) -> None:
        self.n = 0
        self._sum: torch.Tensor | None = None
        self._sumsq = 0.0

    def add(self, g: torch.Tensor) -> None:
        """Add one ``[N]`` gradient estimate."""
        g = g.detach().double().reshape(-1)
        self._sum = g.clone() if self._sum is None else self._sum + g
        self._sumsq += float((g * g).sum())
        self.n += 1

    @property
    def mean(self) -> torch.Tensor:
        """``[N]`` the mean gradient estimate."""
        if self._sum is None:
            raise ValueError("no gradients added")
        return self._sum / self.n

    @property
    def total_variance(self) -> float:
        """Trace of the sample covariance (needs at least 2 estimates)."""
        if self.n < 2:
            raise ValueError("need at least 2 gradient estimates for a variance")
        return (self._sumsq - float((self._sum * self._sum).sum()) / self.n) / (self.n - 1)  # type: ignore[operator]


class GradSamples:
    """The gradient vectors ``g_1 ... g_K`` themselves (fp32 copies on the CPU), for intervals on their variance.

    :class:`GradStats` keeps running sums only; to resample the ``K`` mini-batches (a bootstrap) we need every
    pair's dot product, the ``[K, K]`` Gram matrix :meth:`gram`. Memory: ``K * N * 4`` bytes.
    """

    def __init__(self) -> None:
        self._vecs: list[torch.Tensor] = []

    def add(self, g: torch.Tensor) -> None:
        """Keep one ``[N]`` gradient estimate."""
        self._vecs.append(g.detach().float().reshape(-1).cpu().clone())

    @property
    def n(self) -> int:
        """How many estimates were added."""
        return len(self._vecs)

    def gram(self) -> torch.Tensor:
        """``[K, K]`` fp64 Gram matrix ``G_kl = g_k . g_l``."""
        if not self._vecs:
            raise ValueError("no gradients added")
        x = torch.stack(self._vecs).double()
        return x @ x.T

    @property
    def total_variance(self) -> float:
        """Trace of the sample covariance, as :attr:`GradStats.total_variance` (needs at least 2 estimates)."""
        return float(total_variance_from_gram(self.gram()))


def total_variance_from_gram(gram: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
    """Total variance ``1/(K-1) * sum_k ||g_k - mean||^2`` of vectors given by their Gram matrix.

    Args:
        gram: ``[K, K]`` dot products ``g_k . g_l``.
        idx: optional ``[..., K']`` indices into the ``K`` vectors (a resample, repeats allowed); the variance
            of the selected vectors is computed for each leading index.

    Returns:
        A ``[...]`` tensor (a 0-d one without ``idx``). Uses ``sum_k ||g_k||^2 - ||sum_k g_k||^2 / K``.
    """
    if idx is None:
        idx = torch.arange(gram.shape[0])
    k = idx.shape[-1]
    if k < 2:
        raise ValueError("need at least 2 gradient estimates for a variance")
    sub = gram[idx[..., :, None], idx[..., None, :]]                       # [..., K', K']
    return (sub.diagonal(dim1=-2, dim2=-1).sum(-1) - sub.sum((-2, -1)) / k) / (k - 1)


def bootstrap_total_variances(grams: dict[str, torch.Tensor], n_boot: int = 2000, seed: int = 0) -> dict[str, torch.Tensor]:
    """Bootstrap the total variance of several estimators measured on the *same* ``K`` mini-batches.

    Each of ``n_boot`` resamples draws ``K`` of the mini-batches with replacement and recomputes every
    estimator's total variance on them; the draws are *shared* by all estimators (paired), so ratios between
    estimators can be read per resample. A resample that repeats one mini-batch ``K`` times has variance 0
    (ratios of it are NaN: :func:`utils.stats.percentile_interval` drops NaNs).

    Args:
        grams: name -> ``[K, K]`` Gram matrix (:meth:`GradSamples.gram`), the same ``K`` for all.
        n_boot: number of resamples.
        seed: seed of the resampling (:func:`utils.stats.bootstrap_indices`).

    Returns:
        name -> ``[n_boot]`` fp64 total variances.
    """
    sizes = {g.shape[0] for g in grams.values()}
    if len(sizes) != 1:
        raise ValueError(f"all Gram matrices must come from the same K mini-batches, got sizes {sorted(sizes)}")
    k = sizes.pop()
    idx = torch.from_numpy(bootstrap_indices(k, n_boot, seed))
    return {name: total_variance_from_gram(g.double(), idx) for name, g in grams.items()}


# ----------------------------------------------------------------------------------------------
# Rollouts
# ----------------------------------------------------------------------------------------------


@dataclass
class Rollout:
    """A batch of sampled completions with their rewards.

    Attributes:
        problems: ``B`` problems, one per row (row ``i``'s problem; each of the ``M`` problems ``G`` times, as in
            every batch container of :mod:`utils.rl`).
        samples: ``B = M * G`` sampled completions (prompt-major), see :class:`utils.lm.samples.Samples`.
        rewards: ``[B]`` rewards (``utils.world.score``).
        group_size: ``G``.
    """

    problems: list[Problem]
    samples: Samples
    rewards: torch.Tensor
    group_size: int


def rollout(
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    problems: Iterable[Problem],
    group_size: int,
    max_new_tokens: int = 96,
    temperature: float = 1.0,
    seed: int | None = None,
    batch_size: int = 256,
) -> Rollout:
    """Sample ``group_size`` completions per problem and score each with :func:`utils.world.score`."""
    problems = list(problems)
    s = sample(model, tok, build_prompts(tok, problems), n=group_size, max_new_tokens=max_new_tokens,
               temperature=temperature, seed=seed, batch_size=batch_size)
    device = s.completion_ids.device
    r = torch.tensor([score(problems[i // group_size], t) for i, t in enumerate(s.texts)], dtype=torch.float32, device=device)
    return Rollout([p for p in problems for _ in range(group_size)], s, r, group_size)


def entropy_from_logprobs(logprobs: torch.Tensor, completion_mask: torch.Tensor) -> float:
    """Monte-Carlo per-token entropy ``E[-log pi(a_t | s_t)]`` of *sampled* tokens (nats per token).

    For tokens drawn from the policy itself this is an unbiased estimate of the average entropy of the
    states visited; it is only meaningful for samples at the temperature the log-probs were taken at.
    """
    m = completion_mask.float()
    return float(-(logprobs * m).sum() / m.sum().clamp(min=1))




__all__ = [
    "ADVANTAGE_METHODS", "ADVANTAGE_SCALES", "LOSS_AGGREGATIONS", "group_mean_baseline",
    "leave_one_out_baseline", "scst_advantages", "group_advantages", "advantages", "reinforce_loss",
    "policy_loss", "ValueHead", "value_loss",
    "mixer_weight", "mrt_loss", "flat_grad", "GradStats", "GradSamples", "total_variance_from_gram",
    "bootstrap_total_variances", "Rollout", "rollout",
    "entropy_from_logprobs",
]
