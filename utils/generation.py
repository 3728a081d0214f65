"""Batched sampling with a KV cache, returning tokens *and* their log-probabilities.

The course's RL and search code needs ``log pi(a_t | s_t)`` of every sampled token, so we write the
decoding loop ourselves (about 40 lines) instead of calling ``model.generate``. Shapes:

* ``B`` = number of sequences (prompts x samples per prompt), ``P`` = padded prompt length,
  ``T`` = generated length (padded to the longest completion).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .world import SYSTEM_PROMPT, Problem


@dataclass
class Samples:
    """Generated completions.

    Attributes:
        prompt_ids: ``[B, P]`` left-padded prompt tokens.
        prompt_mask: ``[B, P]`` 1 for real prompt tokens.
        completion_ids: ``[B, T]`` generated tokens, padded with the pad id after the end token.
        completion_mask: ``[B, T]`` 1 for generated tokens up to and including the end token.
        logprobs: ``[B, T]`` log-probability of each generated token under the (temperature-scaled)
            policy, 0 where the mask is 0.
        texts: ``B`` decoded completions (special tokens removed, format tags kept).
    """

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    completion_ids: torch.Tensor
    completion_mask: torch.Tensor
    logprobs: torch.Tensor
    texts: list[str]

    @property
    def lengths(self) -> torch.Tensor:
        """``[B]`` number of generated tokens per sequence."""
        return self.completion_mask.sum(-1)


def is_tiny(tok: PreTrainedTokenizerBase) -> bool:
    """True for the course's character-level tokenizer (it was trained without a system prompt)."""
    return len(tok) < 1000


def build_prompts(
    tok: PreTrainedTokenizerBase, problems: Sequence[Problem], system: str | None | bool = True
) -> list[str]:
    """Chat-formatted prompts ending with the assistant marker.

    ``system=True`` uses :data:`~utils.world.SYSTEM_PROMPT` for real models and none for the tiny model;
    a string uses that system prompt; ``None``/``False`` uses none. Dialogue history is included.
    """
    if system is True:
        system = None if is_tiny(tok) else SYSTEM_PROMPT
    out = []
    for p in problems:
        msgs = p.messages(system=system or None)[:-1]  # drop the reference answer
        out.append(tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True))
    return out


def _top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Mask logits ``[B, V]`` outside the smallest set of tokens whose probability reaches ``top_p``."""
    if top_p >= 1.0:
        return logits
    sorted_logits, idx = torch.sort(logits, descending=True, dim=-1)
    cum = sorted_logits.softmax(-1).cumsum(-1)
    remove = cum - sorted_logits.softmax(-1) > top_p  # keep the token that crosses the threshold
    sorted_logits = sorted_logits.masked_fill(remove, float("-inf"))
    return torch.full_like(logits, float("-inf")).scatter(-1, idx, sorted_logits)


@torch.no_grad()
def _sample_batch(
    model: PreTrainedModel,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    stop_ids: list[int],
    pad_id: int,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    B = prompt_ids.shape[0]
    device = prompt_ids.device
    mask = prompt_mask.clone()
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=prompt_ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
    cache, logits = out.cache, out.logits[:, -1].float()
    next_pos = positions[:, -1:] + 1
    tokens, logps = [], []
    done = torch.zeros(B, dtype=torch.bool, device=device)
    stop = torch.tensor(stop_ids, device=device)
    for _ in range(max_new_tokens):
        if temperature == 0:
            tok = logits.argmax(-1)
            logp = torch.zeros(B, device=device)
        else:
            scaled = logits / temperature
            logp_all = scaled.log_softmax(-1)
            probs = _top_p_filter(scaled, top_p).softmax(-1)
            tok = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
            logp = logp_all.gather(-1, tok[:, None]).squeeze(-1)
        tok = torch.where(done, torch.full_like(tok, pad_id), tok)
        tokens.append(tok)
        logps.append(torch.where(done, torch.zeros_like(logp), logp))
        done = done | torch.isin(tok, stop)
        if bool(done.all()):
            break
        # finished rows keep feeding pad tokens; their outputs are masked out afterwards
        mask = torch.cat([mask, mask.new_ones(B, 1)], dim=1)
        out = model(input_ids=tok[:, None], attention_mask=mask, position_ids=next_pos, cache=cache, use_cache=True)
        cache, logits = out.cache, out.logits[:, -1].float()
        next_pos = next_pos + 1
    tokens_t = torch.stack(tokens, 1)
    logps_t = torch.stack(logps, 1)
    # completion mask: tokens up to and including the first stop token
    is_stop = torch.isin(tokens_t, stop)
    after_stop = (is_stop.long().cumsum(1) - is_stop.long()) > 0
    cmask = (~after_stop).long()
    return tokens_t, cmask, logps_t * cmask


@torch.no_grad()
def sample(
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    n: int = 1,
    max_new_tokens: int = 96,
    temperature: float = 1.0,
    top_p: float = 1.0,
    batch_size: int = 256,
    seed: int | None = None,
    progress: bool = False,
) -> Samples:
    """Sample ``n`` completions for each prompt (``temperature=0`` is greedy decoding).

    Sequences are ordered prompt-major: rows ``i*n ... i*n+n-1`` belong to ``prompts[i]``.
    """
    if not prompts:
        raise ValueError("sample() needs at least one prompt")
    if temperature < 0 or not 0 < top_p <= 1:
        raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1, got {temperature}, {top_p}")
    device = next(model.parameters()).device
    expanded = [p for p in prompts for _ in range(n)]
    stop_ids = sorted({tok.eos_token_id} | ({tok.pad_token_id} if tok.pad_token_id is not None else set()))
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    gen = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
    was_training = model.training
    model.eval()
    chunks = []
    side = tok.padding_side
    tok.padding_side = "left"
    starts = range(0, len(expanded), batch_size)
    for s in tqdm(starts, desc="sampling", disable=not progress or len(starts) < 2, leave=False):
        enc = tok(expanded[s : s + batch_size], return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        ids, cmask, logp = _sample_batch(model, enc["input_ids"], enc["attention_mask"], max_new_tokens, temperature, top_p, stop_ids, pad_id, gen)
        chunks.append((enc["input_ids"], enc["attention_mask"], ids, cmask, logp))
    tok.padding_side = side
    model.train(was_training)

    def cat(i: int, pad_value: int, left: bool) -> torch.Tensor:
        width = max(c[i].shape[1] for c in chunks)
        padded = []
        for c in chunks:
            t = c[i]
            extra = t.new_full((t.shape[0], width - t.shape[1]), pad_value)
            padded.append(torch.cat([extra, t] if left else [t, extra], dim=1))
        return torch.cat(padded, 0)

    completion_ids = cat(2, pad_id, False)
    completion_mask = cat(3, 0, False)
    texts = tok.batch_decode(completion_ids * completion_mask + pad_id * (1 - completion_mask), skip_special_tokens=True)
    return Samples(cat(0, pad_id, True), cat(1, 0, True), completion_ids, completion_mask, cat(4, 0, False).float(), texts)


def generate_texts(
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    problems: Sequence[Problem],
    n: int = 1,
    temperature: float = 0.0,
    max_new_tokens: int = 96,
    batch_size: int = 256,
    seed: int | None = 0,
    progress: bool = False,
) -> list[list[str]]:
    """Completions for each problem: ``out[i][j]`` is sample ``j`` of ``problems[i]``."""
    s = sample(model, tok, build_prompts(tok, problems), n=n, max_new_tokens=max_new_tokens,
               temperature=temperature, batch_size=batch_size, seed=seed, progress=progress)
    return [s.texts[i * n : (i + 1) * n] for i in range(len(problems))]
