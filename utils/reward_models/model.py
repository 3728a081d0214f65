"""A reward model: a language model with a scalar head on the last token (survey §3.1.1).

We use ``AutoModelForSequenceClassification`` with ``num_labels=1``: for Llama-style models it is the
backbone plus one linear layer ``score: hidden -> 1`` read at the last non-pad token - exactly what TRL's
``RewardTrainer`` trains, so the from-scratch and library paths share one model class.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from transformers import AutoModelForSequenceClassification, PreTrainedModel, PreTrainedTokenizerBase

from ..lm.batches import sft_batch
from ..lm.generation import build_prompts
from ..lm.logprobs import sequence_logprobs
from ..lm.models import resolve
from ..sft.data import conversation
from ..world import Problem, completion_text


def load_reward_model(
    name: str, device: str = "cpu", dtype: torch.dtype = torch.float32, seed: int = 0
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """``(reward model, tokenizer)`` from a course model name or folder (a causal-LM checkpoint gets a new
    head, initialised from ``seed``; a saved reward model loads as it was). Right padding, pad id in the config.
    """
    from transformers import AutoTokenizer

    src = resolve(name)
    tok = AutoTokenizer.from_pretrained(src)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "right"
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(src, num_labels=1, dtype=dtype)
    model.config.pad_token_id = tok.pad_token_id
    return model.to(device).eval(), tok


def rm_texts(tok: PreTrainedTokenizerBase, problems: Sequence[Problem], completions: Sequence[Any]) -> list[str]:
    """What the reward model reads: the chat-formatted prompt, the completion, then the end token."""
    if len(problems) != len(completions):
        raise ValueError(f"{len(problems)} problems but {len(completions)} completions")
    prompts = build_prompts(tok, problems)
    return [p + completion_text(c) + tok.eos_token for p, c in zip(prompts, completions)]


def encode(tok: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int = 256) -> dict[str, torch.Tensor]:
    """``input_ids``/``attention_mask`` ``[B, L]``, right-padded, truncated from the left to ``max_length``."""
    side = tok.truncation_side
    tok.truncation_side = "left"
    enc = tok(list(texts), return_tensors="pt", padding=True, truncation=True, max_length=max_length, add_special_tokens=False)
    tok.truncation_side = side
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


def rewards_of(model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """``[B]`` scalar rewards of an encoded batch (with gradients)."""
    device = next(model.parameters()).device
    out = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device))
    return out.logits.squeeze(-1).float()


@torch.no_grad()
def score_completions(
    model: PreTrainedModel, tok: PreTrainedTokenizerBase, problems: Sequence[Problem], completions: Sequence[Any],
    batch_size: int = 128, max_length: int = 256,
) -> torch.Tensor:
    """``[B]`` rewards of ``completions[i]`` for ``problems[i]`` (on the CPU). Any completion is accepted."""
    texts = rm_texts(tok, problems, completions)
    was = model.training
    model.eval()
    out = [rewards_of(model, encode(tok, texts[s : s + batch_size], max_length)).cpu() for s in range(0, len(texts), batch_size)]
    model.train(was)
    return torch.cat(out) if out else torch.zeros(0)


@torch.no_grad()
def ensemble_scores(
    models: Sequence[PreTrainedModel], tok: PreTrainedTokenizerBase, problems: Sequence[Problem], completions: Sequence[Any],
    batch_size: int = 128,
) -> torch.Tensor:
    """``[M, B]`` rewards of ``M`` reward models (sharing one tokenizer); ``.mean(0)``, ``.min(0)`` and
    ``.std(0)`` give the ensemble's mean, worst case and disagreement."""
    if not models:
        raise ValueError("ensemble_scores needs at least one model")
    return torch.stack([score_completions(m, tok, problems, completions, batch_size) for m in models])


def completion_batch(tok: PreTrainedTokenizerBase, problems: Sequence[Problem], completions: Sequence[Any]) -> dict[str, torch.Tensor]:
    """The chat batch whose labels are completion ``i``'s assistant turn (end token included) after problem ``i``'s
    chat prompt: ``input_ids``/``attention_mask``/``labels`` ``[B, L]``, right-padded, the layout
    :func:`utils.lm.logprobs.sequence_logprobs` reads for ``log pi(y_i | x_i)``."""
    if len(problems) != len(completions):
        raise ValueError(f"{len(problems)} problems but {len(completions)} completions")
    return sft_batch(tok, [conversation(p, completion_text(c)) for p, c in zip(problems, completions)], system=True)


def implicit_reward(logps: torch.Tensor, ref_logps: torch.Tensor, beta: float) -> torch.Tensor:
    """DPO's implicit reward ``beta * (log pi(y|x) - log pi_ref(y|x))`` from sequence log-probs (any shape);
    differentiable in ``logps`` (inside DPO's loss, :mod:`utils.prefs.losses`), a measurement when they carry no graph."""
    if beta <= 0:
        raise ValueError("beta must be positive")
    return beta * (logps - ref_logps)


def implicit_rewards(
    policy: PreTrainedModel, ref: PreTrainedModel, tok: PreTrainedTokenizerBase, problems: Sequence[Problem],
    completions: Sequence[Any], beta: float = 0.1, batch_size: int = 16,
) -> torch.Tensor:
    """``[B]`` DPO's implicit reward ``beta * (log pi(y|x) - log pi_ref(y|x))`` (Rafailov et al. 2023, survey §3.1.2):
    defined up to ``beta * log Z(x)``, a constant per prompt, which cancels in every comparison."""
    batch = completion_batch(tok, problems, completions)
    with torch.no_grad():
        logps, ref_logps = (_measured(m, batch, batch_size) for m in (policy, ref))
    return implicit_reward(logps, ref_logps, beta).cpu()


def _measured(model: PreTrainedModel, batch: dict[str, torch.Tensor], batch_size: int) -> torch.Tensor:
    """``[B]`` sequence log-probs of ``batch`` with ``model`` in eval mode (its mode restored)."""
    was = model.training
    model.eval()
    lp = sequence_logprobs(model, batch, batch_size)[0]
    model.train(was)
    return lp
