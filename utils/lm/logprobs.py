"""Log-probabilities and the losses built on them: the one place where ``log p(token)`` is gathered.

Every loss of the course - MLE pretraining, SFT, REINFORCE, PPO, DPO - starts from per-token
log-probabilities ``log pi(y_t | s_t)``. They are computed here, in fp32, by :func:`gather_logprobs`
(picking each target's entry of a ``log_softmax``); everything else is a sum or a mean over a mask:

* :func:`token_logprobs` - ``[B, L]`` log-probs of targets from logits;
* :func:`mle_loss` / :func:`token_mean_loss` - next-token cross-entropy, one mean over all loss tokens of
  the batch (what ``transformers`` and TRL compute); :func:`sequence_mean_loss` - the per-sequence mean it
  is *not*; :func:`loss_sum_and_count` - the pieces for gradient accumulation;
* :func:`completion_logprobs` - teacher-forced log-probs (and entropies, hidden states) of sampled
  completions given their prompts, the quantity every policy-gradient loss differentiates;
  :func:`completion_logits` - the whole next-token distributions there, for losses that need them (TRPO's exact
  KL, OREO's soft values);
* :func:`sequence_logprobs` - ``log pi(y | x)`` of whole completions (sampled or from a chat batch) and their
  token counts;
* :func:`kl_estimate` - the k1/k2/k3 per-token estimators of ``KL(pi || pi_ref)`` (PPO's penalty, GRPO's term).

Shapes: ``B`` batch, ``L`` sequence length, ``V`` vocabulary, ``P`` prompt length (left-padded), ``T``
completion length (right-padded), ``H`` hidden size. Labels use ``-100`` (:data:`IGNORE`) for "no loss".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel

from .samples import Samples

IGNORE = -100


def gather_logprobs(logp: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """``logp[..., ids]``: ``[..., V]`` log-probabilities and ``[...]`` token ids -> ``[...]``.

    Negative ids (``-100`` labels, padding) are read at id 0; mask them afterwards.
    """
    return logp.gather(-1, ids.clamp(min=0).unsqueeze(-1)).squeeze(-1)


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """``log p(targets)`` from logits ``[B, L, V]`` and targets ``[B, L]`` -> ``[B, L]`` (fp32)."""
    logits = logits.float() if temperature == 1.0 else logits.float() / temperature
    return gather_logprobs(logits.log_softmax(-1), targets)


def mle_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy ``-1/N sum_t log p(y_t | y_<t)`` (survey §2).

    ``logits``: ``[B, L, V]`` from inputs ``[B, L]``; ``labels``: ``[B, L]`` aligned with the inputs
    (position t is predicted from positions < t), ``-100`` where no loss is taken. Mean over counted tokens
    (``F.cross_entropy``; the same value as :func:`token_mean_loss`).
    """
    shift_logits = logits[:, :-1].float()
    shift_labels = labels[:, 1:]
    return F.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]), shift_labels.reshape(-1), ignore_index=IGNORE)


def token_mean_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """SFT loss as TRL computes it: ``-sum_{b,t} log p(y_bt) / N`` over all ``N`` loss tokens of the batch.

    ``logits`` ``[B, L, V]``; ``labels`` ``[B, L]`` aligned with the inputs (shifted inside), ``-100`` =
    no loss. Same value as :func:`mle_loss`, written out with :func:`token_logprobs`.
    """
    y = labels[:, 1:]
    m = y != IGNORE
    return -(token_logprobs(logits[:, :-1], y) * m).sum() / m.sum().clamp(min=1)


def sequence_nll(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``([B] summed NLL of each row's loss tokens, [B] their number)`` - the pieces of per-sequence averages."""
    y = labels[:, 1:]
    m = (y != IGNORE).float()
    return -(token_logprobs(logits[:, :-1], y) * m).sum(-1), m.sum(-1)


def sequence_mean_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The *other* average: each sequence's mean token loss, then the mean over sequences.

    Gives short answers as much weight as long ones; differs from :func:`token_mean_loss` whenever the
    sequences have different numbers of loss tokens. Rows without loss tokens are skipped.
    """
    nll, n = sequence_nll(logits, labels)
    has = n > 0
    return (nll[has] / n[has]).mean()


def loss_sum_and_count(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int]:
    """``(sum of token NLLs, number of loss tokens)`` of one micro-batch (for gradient accumulation)."""
    y = labels[:, 1:]
    m = y != IGNORE
    return -(token_logprobs(logits[:, :-1], y) * m).sum(), int(m.sum())


@dataclass
class PolicyOutput:
    """What :func:`completion_logprobs` computed.

    Attributes:
        logprobs: ``[B, T]`` ``log pi(y_t | s_t)`` of each completion token, 0 where the mask is 0.
        entropy: ``[B, T]`` entropy (nats) of ``pi(. | s_t)`` at each completion position (or ``None``).
        hidden: ``[B, T, H]`` final hidden state at the position that predicts ``y_t`` - a summary of the
            state ``s_t`` (or ``None``).
    """

    logprobs: torch.Tensor
    entropy: torch.Tensor | None = None
    hidden: torch.Tensor | None = None


def _joined(prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, completion_ids: torch.Tensor,
            completion_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(ids, attention, positions)``, each ``[B, P + T]``: prompt and completion side by side, with the positions
    the sampler used (left pads do not count)."""
    ids = torch.cat([prompt_ids, completion_ids], dim=1)
    att = torch.cat([prompt_mask, completion_mask], dim=1).long()
    return ids, att, (att.cumsum(-1) - 1).clamp(min=0)


def completion_hidden(model: PreTrainedModel, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                      completion_ids: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor:
    """``[B, T, H]`` final hidden states at the states ``s_t`` that predict each completion token (for a value head).

    Runs only the backbone (``model.base_model``): no ``[B, T, V]`` logits, which for a 49k-token vocabulary are
    most of a value model's memory.
    """
    ids, att, pos = _joined(prompt_ids, prompt_mask, completion_ids, completion_mask)
    P, T = prompt_ids.shape[1], completion_ids.shape[1]
    return model.base_model(input_ids=ids, attention_mask=att, position_ids=pos).last_hidden_state[:, P - 1 : P - 1 + T]


def completion_logits(model: PreTrainedModel, samples: Samples) -> torch.Tensor:
    """``[B, T, V]`` next-token logits (fp32) at the states ``s_t`` that predict each completion token of ``samples``
    (the positions :func:`completion_logprobs` reads), for losses that need the whole distribution.

    The LM head runs on those ``T`` states only (:func:`completion_hidden`), not on the prompt's."""
    h = completion_hidden(model, samples.prompt_ids, samples.prompt_mask, samples.completion_ids, samples.completion_mask)
    return model.get_output_embeddings()(h).float()


def completion_logprobs(
    model: PreTrainedModel,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    completion_ids: torch.Tensor,
    completion_mask: torch.Tensor,
    temperature: float = 1.0,
    return_entropy: bool = False,
    return_hidden: bool = False,
) -> PolicyOutput:
    """Teacher-forced per-token log-probs of completions given their prompts (differentiable).

    Args:
        model: a causal LM.
        prompt_ids: ``[B, P]`` left-padded prompts; ``prompt_mask``: ``[B, P]`` 1 on real tokens.
        completion_ids: ``[B, T]`` right-padded completions; ``completion_mask``: ``[B, T]`` 1 on tokens up
            to and including the end token.
        temperature: the policy is ``softmax(logits / temperature)`` (must match how the samples were drawn
            if the log-probs are to agree with the sampler's).
        return_entropy: also return ``[B, T]`` per-position entropies.
        return_hidden: also return ``[B, T, H]`` final hidden states (for a value head). Needs a model with
            ``base_model`` and ``get_output_embeddings()`` (every ``transformers`` causal LM).

    Returns:
        :class:`PolicyOutput`; ``logprobs`` is ``[B, T]`` in fp32, zero where ``completion_mask`` is 0.
    """
    if temperature <= 0:
        raise ValueError("temperature must be positive for log-probabilities (greedy decoding has none)")
    hidden = None
    if return_hidden:
        hidden = completion_hidden(model, prompt_ids, prompt_mask, completion_ids, completion_mask)
        logits = model.get_output_embeddings()(hidden)
    else:
        ids, att, pos = _joined(prompt_ids, prompt_mask, completion_ids, completion_mask)
        T = completion_ids.shape[1]
        logits = model(input_ids=ids, attention_mask=att, position_ids=pos, logits_to_keep=T + 1).logits[:, :-1]
    logp_all = (logits.float() / temperature).log_softmax(-1)  # [B, T, V]
    logprobs = gather_logprobs(logp_all, completion_ids) * completion_mask
    entropy = -(logp_all.exp() * logp_all).sum(-1) if return_entropy else None
    return PolicyOutput(logprobs, entropy, hidden)


def samples_logprobs(model: PreTrainedModel, samples: Samples, **kwargs: object) -> PolicyOutput:
    """:func:`completion_logprobs` for a :class:`utils.lm.samples.Samples` (same keyword arguments)."""
    return completion_logprobs(model, samples.prompt_ids, samples.prompt_mask, samples.completion_ids,
                               samples.completion_mask, **kwargs)  # type: ignore[arg-type]


def sequence_logprobs(model: PreTrainedModel, batch: Samples | Mapping[str, torch.Tensor],
                      batch_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``([B] log pi(y_i | x_i), [B] number of tokens)``: the summed log-probs of each row's completion tokens, the
    input of every sequence-level loss (DPO and its family, MRT, implicit rewards). Differentiable; call it under
    ``torch.no_grad()`` to measure.

    ``batch`` is one of the two token layouts of the course:

    * sampled :class:`Samples` (left-padded prompts, right-padded completions): :func:`samples_logprobs`,
      summed over ``completion_mask``;
    * a right-padded chat batch ``input_ids`` / ``attention_mask`` / ``labels`` ``[B, L]`` (``-100`` off the
      completion; :func:`utils.lm.batches.sft_batch`): :func:`sequence_nll` of the model's logits.

    ``batch_size``: rows per forward (bounds the ``[rows, L, V]`` fp32 logits when measuring many sequences);
    ``None``: all rows in one forward. Results are on the model's device.
    """
    B = len(batch.texts) if isinstance(batch, Samples) else int(batch["input_ids"].shape[0])
    if batch_size is not None and B > batch_size:
        parts = [sequence_logprobs(model, _rows(batch, slice(a, a + batch_size))) for a in range(0, B, batch_size)]
        return torch.cat([lp for lp, _ in parts]), torch.cat([n for _, n in parts])
    if isinstance(batch, Samples):
        m = batch.completion_mask
        return (samples_logprobs(model, batch).logprobs * m).sum(-1), m.sum(-1).float()
    device = next(model.parameters()).device
    logits = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)).logits
    nll, n = sequence_nll(logits, batch["labels"].to(device))
    return -nll, n


def _rows(batch: Samples | Mapping[str, torch.Tensor], rows: slice) -> Samples | dict[str, torch.Tensor]:
    """The sub-batch of ``rows``, trimmed of the right padding no row of it needs (causal attention: the same values)."""
    if isinstance(batch, Samples):
        return batch.select(rows)
    L = int(batch["attention_mask"][rows].sum(-1).max())
    return {k: v[rows, :L] for k, v in batch.items()}


def sequence_nll_check(model: PreTrainedModel, ids: torch.Tensor, completion_start: int) -> torch.Tensor:
    """``[1]`` mean NLL of tokens ``ids[:, completion_start:]`` by ``transformers``' own loss (a library check).

    ``ids``: ``[1, L]`` one unpadded sequence. Equals ``-mean_t log pi(y_t | s_t)`` over the completion.
    """
    labels = ids.clone()
    labels[:, :completion_start] = -100
    return model(input_ids=ids, labels=labels).loss


def kl_estimate(logp: torch.Tensor, ref_logp: torch.Tensor, mask: torch.Tensor, kind: str = "k3") -> torch.Tensor:
    """Per-token estimates of ``KL(pi || pi_ref)`` from log-probs of tokens **sampled from pi**; ``[B, T]``, 0 off-mask.

    With ``log r = log pi_ref(y_t) - log pi(y_t)`` (Schulman, "Approximating KL divergence", 2020):
    ``k1 = -log r`` (unbiased, can be negative), ``k2 = (log r)^2 / 2`` (biased, low variance),
    ``k3 = (r - 1) - log r`` (unbiased and never negative; GRPO's choice). Sum over tokens for a sequence KL.
    """
    log_r = (ref_logp - logp).float()
    if kind == "k1":
        est = -log_r
    elif kind == "k2":
        est = 0.5 * log_r**2
    elif kind == "k3":
        est = torch.expm1(log_r) - log_r
    else:
        raise ValueError(f"unknown KL estimator {kind!r}; choose 'k1', 'k2' or 'k3'")
    return est * mask.to(est.dtype)
