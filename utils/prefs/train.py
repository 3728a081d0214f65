"""One from-scratch training loop for every direct preference method of chapter 09, offline and online.

* :class:`PrefConfig` - the method (``dpo``, ``ipo``, ``simpo``, ``orpo``, ``kto``, ``listwise``) and its settings.
* :func:`method_loss` - the batch loss of a method from policy and reference sequence log-probs (the losses of
  :mod:`utils.prefs.losses`).
* :func:`train_preferences` - AdamW over shuffled epochs of pairs (text pairs, or sampled ones:
  :class:`utils.prefs.data.SamplePairs`; rankings for ``listwise``), the reference's
  log-probs computed once up front; returns a :class:`History` of the loss, the chosen / rejected log-ratios to the
  reference and the margins at every step (the "both go down" displacement is read from it).
* :func:`online_dpo` - iterative (online) DPO: each round samples pairs from the *current* policy, labels them with
  the true reward, and trains on them.
* :func:`evaluate_policy`, :func:`win_rates` - held-out true reward, accuracy, ``KL(π || π_ref)`` and the per-prompt
  win rate against another policy's samples (ties count one half).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..lm.evaluation import evaluate
from ..lm.logprobs import kl_estimate, samples_logprobs, sequence_logprobs
from ..reward_models.model import completion_batch
from ..reward_models.train import Ranking, train_on_indices
from ..world import Problem
from ..world.preferences import PreferencePair, true_reward
from .data import SamplePairs, best_worst_pairs, sample_groups
from .losses import dpo_loss, ipo_loss, kto_loss, kto_reference_point, listwise_dpo_loss, orpo_loss, simpo_loss

METHODS = ("dpo", "ipo", "simpo", "orpo", "kto", "listwise")


@dataclass(frozen=True)
class PrefConfig:
    """A preference-optimisation run. ``beta``: DPO/IPO/KTO/listwise's KL strength, SimPO's reward scale;
    ``gamma``: SimPO's target margin; ``lam``: ORPO's weight of the odds-ratio term; ``micro_batch``: pairs (or
    rankings) per forward/backward pass, the same gradient with less activation memory (``None``: the whole batch);
    ``gradient_checkpointing``: recompute activations in the backward pass (:func:`utils.lm.training.checkpointed`)."""

    method: str = "dpo"
    beta: float = 0.1
    steps: int = 60
    batch_size: int = 16
    lr: float = 1e-4
    warmup: int = 5
    seed: int = 0
    gamma: float = 1.0
    lam: float = 0.1
    weight_decay: float = 0.0
    micro_batch: int | None = None
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {METHODS}")


@dataclass
class History:
    """Per-step training curves: ``loss``; ``chosen`` / ``rejected``: mean ``log π(y) - log π_ref(y)`` of the batch's
    chosen (best-ranked) and rejected (worst-ranked) responses; ``chosen_logp``: their mean per-token ``log π``;
    ``margin``: mean ``chosen - rejected``; ``acc``: the fraction of pairs with a positive margin. One entry per
    forward pass (per micro-batch when :attr:`PrefConfig.micro_batch` splits a step)."""

    curves: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in
                                                                     ("loss", "chosen", "rejected", "chosen_logp", "margin", "acc")})

    def add(self, **values: float) -> None:
        for k, v in values.items():
            self.curves[k].append(float(v))

    def extend(self, other: "History") -> None:
        for k, v in other.curves.items():
            self.curves[k] += v

    def __getitem__(self, key: str) -> list[float]:
        return self.curves[key]


def method_loss(
    cfg: PrefConfig, logps_w: torch.Tensor, logps_l: torch.Tensor, ref_w: torch.Tensor, ref_l: torch.Tensor,
    n_w: torch.Tensor, n_l: torch.Tensor, kl: torch.Tensor | float = 0.0,
) -> torch.Tensor:
    """The batch loss of a pairwise method: ``[B]`` summed log-probs of the chosen / rejected responses under the
    policy (``logps_*``) and the reference (``ref_*``), ``[B]`` token counts ``n_*``; ``kl`` is KTO's reference point.

    ORPO's NLL term is the chosen responses' token-mean NLL over the batch (as TRL computes it); KTO treats the
    chosen responses as desirable and the rejected ones as undesirable examples, unpaired.
    """
    mean_w, mean_l = logps_w / n_w.clamp(min=1), logps_l / n_l.clamp(min=1)
    if cfg.method == "dpo":
        return dpo_loss(logps_w, logps_l, ref_w, ref_l, cfg.beta).mean()
    if cfg.method == "ipo":
        return ipo_loss(logps_w, logps_l, ref_w, ref_l, n_w, n_l, cfg.beta).mean()
    if cfg.method == "simpo":
        return simpo_loss(mean_w, mean_l, cfg.beta, cfg.gamma).mean()
    if cfg.method == "orpo":
        nll = -(logps_w.sum() / n_w.sum().clamp(min=1))
        return orpo_loss(nll.expand_as(mean_w), mean_w, mean_l, cfg.lam).mean()
    if cfg.method == "kto":
        ratios = torch.cat([logps_w - ref_w, logps_l - ref_l])
        labels = torch.cat([torch.ones_like(logps_w), torch.zeros_like(logps_l)]).bool()
        return kto_loss(ratios, labels, kl, cfg.beta).mean()
    raise ValueError(f"method_loss is for pairwise methods; {cfg.method!r} trains on rankings")


def _pair_logps(model: PreTrainedModel, tok: PreTrainedTokenizerBase, data: Sequence[PreferencePair] | SamplePairs,
                idx: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``([b] chosen log π, [b] rejected log π, [b] chosen tokens, [b] rejected tokens)`` of the pairs at ``idx``:
    text pairs as one chat batch (chosen rows, then rejected), sampled pairs on their own token ids."""
    if isinstance(data, SamplePairs):
        (lw, nw), (ll, nl) = (sequence_logprobs(model, side.select(list(idx))) for side in (data.chosen, data.rejected))
        return lw, ll, nw, nl
    b = [data[i] for i in idx]
    pb = [p.problem for p in b]
    lp, n = sequence_logprobs(model, completion_batch(tok, pb + pb, [p.chosen for p in b] + [p.rejected for p in b]))
    (lw, ll), (nw, nl) = lp.chunk(2), n.chunk(2)
    return lw, ll, nw, nl


@torch.no_grad()
def _reference_logps(ref: PreTrainedModel, tok: PreTrainedTokenizerBase, data: Sequence[PreferencePair] | SamplePairs,
                     batch_size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """``([N] chosen, [N] rejected)`` log-probs of all pairs under the frozen reference, ``batch_size`` pairs (twice as
    many sequences) a forward."""
    ref.eval()
    parts = [_pair_logps(ref, tok, data, range(s, min(s + batch_size, len(data)))) for s in range(0, len(data), batch_size)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def train_preferences(
    policy: PreTrainedModel, ref: PreTrainedModel, tok: PreTrainedTokenizerBase,
    data: Sequence[PreferencePair] | SamplePairs | Sequence[Ranking], cfg: PrefConfig,
) -> History:
    """Train ``policy`` in place on ``data`` with ``cfg.method`` against the frozen ``ref``; returns the curves.

    Pairs for the pairwise methods - :class:`utils.world.preferences.PreferencePair` s (texts, read as a chat) or
    :class:`utils.prefs.data.SamplePairs` (sampled token ids; not for ``kto``, whose mismatched pairs need texts) -
    and :class:`utils.reward_models.train.Ranking` s (best first, any lengths >= 2) for ``listwise``. The loop is
    :func:`utils.reward_models.train.train_on_indices` (AdamW, warm-up + cosine, gradient clipping at 1), the one loop
    of the package's comparison-based trainers.
    """
    if not len(data):
        raise ValueError("train_preferences needs data")
    if cfg.method == "listwise":
        return _train_listwise(policy, ref, tok, list(data), cfg)  # type: ignore[arg-type]
    if cfg.method == "kto" and isinstance(data, SamplePairs):
        raise ValueError("kto's reference point pairs a prompt with another prompt's completion: give text pairs")
    pairs = data if isinstance(data, SamplePairs) else list(data)
    # computed once (the reference is frozen); SimPO and ORPO do not use them in the loss, only in the curves
    ref_w, ref_l = _reference_logps(ref, tok, pairs)  # type: ignore[arg-type]
    hist = History()

    def loss_of(idx: list[int]) -> torch.Tensor:
        lw, ll, nw, nl = _pair_logps(policy, tok, pairs, idx)  # type: ignore[arg-type]
        rw, rl = ref_w[idx].to(lw.device), ref_l[idx].to(lw.device)
        kl = 0.0
        if cfg.method == "kto":  # z: mismatched pairs (prompt i, chosen of i+1), policy and reference, no gradient
            b = [pairs[i] for i in idx]
            pb, other = [p.problem for p in b], [b[(j + 1) % len(b)].chosen for j in range(len(b))]  # type: ignore[union-attr]
            with torch.no_grad():
                z = completion_batch(tok, pb, other)
                kl = kto_reference_point(sequence_logprobs(policy, z)[0], sequence_logprobs(ref, z)[0])
        loss = method_loss(cfg, lw, ll, rw, rl, nw, nl, kl)
        _record(hist, loss, lw - rw, ll - rl, lw / nw.clamp(min=1))
        return loss

    train_on_indices(policy, len(pairs), loss_of, cfg.steps, cfg.batch_size, cfg.lr, cfg.warmup, cfg.seed, cfg.weight_decay,
                     micro_batch=cfg.micro_batch, gradient_checkpointing=cfg.gradient_checkpointing)
    return hist


def _record(hist: History, loss: torch.Tensor, chosen: torch.Tensor, rejected: torch.Tensor, chosen_mean: torch.Tensor) -> None:
    d = (chosen - rejected).detach()
    hist.add(loss=loss.item(), chosen=chosen.detach().mean().item(), rejected=rejected.detach().mean().item(),
             chosen_logp=chosen_mean.detach().mean().item(), margin=d.mean().item(), acc=(d > 0).float().mean().item())


def _train_listwise(policy: PreTrainedModel, ref: PreTrainedModel, tok: PreTrainedTokenizerBase,
                    rankings: list[Ranking], cfg: PrefConfig) -> History:
    """Plackett-Luce over implicit rewards (:func:`listwise_dpo_loss`) of rankings of any lengths, padded per batch."""
    flat_p = [r.problem for r in rankings for _ in r.completions]
    flat_c = [c for r in rankings for c in r.completions]
    with torch.no_grad():
        ref.eval()
        ref_flat = sequence_logprobs(ref, completion_batch(tok, flat_p, flat_c), batch_size=16)[0]
    starts = torch.tensor([0] + [len(r.completions) for r in rankings]).cumsum(0)
    hist = History()

    def loss_of(idx: list[int]) -> torch.Tensor:
        b = [rankings[i] for i in idx]
        lens = torch.tensor([len(r.completions) for r in b])
        lp, n = sequence_logprobs(policy, completion_batch(tok, [r.problem for r in b for _ in r.completions],
                                                           [c for r in b for c in r.completions]))
        K, device = int(lens.max()), lp.device
        logps = lp.new_zeros(len(b), K)
        refs = lp.new_zeros(len(b), K)
        counts = n.new_ones(len(b), K)
        at = 0
        for j, (i, k) in enumerate(zip(idx, lens.tolist())):
            logps[j, :k], counts[j, :k] = lp[at : at + k], n[at : at + k]
            refs[j, :k] = ref_flat[int(starts[i]) : int(starts[i]) + k].to(device)
            at += k
        loss = listwise_dpo_loss(logps, refs, cfg.beta, lens.to(device))
        last = (lens - 1).to(device)[:, None]
        ratio = logps - refs
        _record(hist, loss, ratio[:, 0], ratio.gather(1, last).squeeze(1), logps[:, 0] / counts[:, 0].clamp(min=1))
        return loss

    train_on_indices(policy, len(rankings), loss_of, cfg.steps, cfg.batch_size, cfg.lr, cfg.warmup, cfg.seed, cfg.weight_decay,
                     micro_batch=cfg.micro_batch, gradient_checkpointing=cfg.gradient_checkpointing)
    return hist


def online_dpo(
    policy: PreTrainedModel, ref: PreTrainedModel, tok: PreTrainedTokenizerBase, rounds: Sequence[Sequence[Problem]],
    cfg: PrefConfig, k: int, max_new_tokens: int, seed: int = 0, batch_size: int = 256,
) -> tuple[History, list[int]]:
    """Iterative (online) DPO: for each round's problems, sample ``k`` completions from the **current** policy, pair
    the best against the worst by the true reward, and train ``cfg.steps`` steps on them (the reference stays
    ``ref``). Returns the concatenated curves and the number of pairs of each round."""
    hist, sizes = History(), []
    for r, problems in enumerate(rounds):
        groups = sample_groups(policy, tok, problems, k, max_new_tokens, seed=seed + r, batch_size=batch_size)
        pairs = best_worst_pairs(problems, groups)
        sizes.append(len(pairs))
        if pairs:
            hist.extend(train_preferences(policy, ref, tok, pairs, replace(cfg, seed=cfg.seed + r)))
    return hist, sizes


@torch.no_grad()
def evaluate_policy(
    policy: PreTrainedModel, ref: PreTrainedModel, tok: PreTrainedTokenizerBase, problems: Sequence[Problem], n: int,
    max_new_tokens: int, seed: int = 0, batch_size: int = 256,
) -> dict[str, torch.Tensor | float]:
    """Sample ``n`` completions per held-out problem (temperature 1, :func:`utils.lm.evaluation.evaluate`) and
    add what preferences need: the true reward and the KL to the reference.

    Returns ``rewards`` and ``correct`` (``[M, n]`` true reward and verifier score), ``lengths`` ``[M, n]`` (tokens),
    ``kl`` (the mean over samples of the summed per-token k3 estimate of ``KL(π || π_ref)``, nats) and ``texts``.
    The same ``seed`` for two policies draws their samples with the same random numbers (a paired comparison).
    """
    res = evaluate(policy, tok, problems, n_samples=n, greedy=False, temperature=1.0, max_new_tokens=max_new_tokens,
                   batch_size=batch_size, ks=(1,), seed=seed, progress=False)
    s = res.sampled
    ref_lp = torch.cat([samples_logprobs(ref, s.select(slice(a, a + batch_size), trim=False)).logprobs
                        for a in range(0, len(s.texts), batch_size)])
    kl = kl_estimate(s.logprobs, ref_lp, s.completion_mask, "k3").sum(-1)
    M = len(problems)
    rewards = [[true_reward(p, t) for t in ts] for p, ts in zip(res.problems, res.sample_texts)]
    return {"rewards": torch.tensor(rewards).view(M, n), "correct": torch.tensor(res.samples, dtype=torch.float32),
            "lengths": s.lengths.cpu().float().view(M, n), "kl": float(kl.mean()), "texts": s.texts}


def win_rates(rewards: torch.Tensor, base_rewards: torch.Tensor) -> torch.Tensor:
    """``[M]`` per-prompt win rate of ``rewards`` over ``base_rewards`` (both ``[M, n]``, sample ``j`` against sample
    ``j``): 1 for a higher true reward, 1/2 for a tie, 0 for a lower one, averaged over the ``n`` samples."""
    if rewards.shape != base_rewards.shape:
        raise ValueError(f"shapes differ: {tuple(rewards.shape)} vs {tuple(base_rewards.shape)}")
    d = rewards - base_rewards
    return ((d > 1e-9).double() + 0.5 * (d.abs() <= 1e-9).double()).mean(-1)
