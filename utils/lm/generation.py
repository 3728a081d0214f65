"""Batched sampling with a KV cache, returning tokens *and* their log-probabilities.

The course's RL and search code needs ``log pi(a_t | s_t)`` of every sampled token, so we write the
decoding loop ourselves (about 40 lines) instead of calling ``model.generate``. Shapes:

* ``B`` = number of sequences (prompts x samples per prompt), ``P`` = padded prompt length,
  ``T`` = generated length (padded to the longest completion).

Two decoding paths compute the same function:

* **plain** (:func:`_sample_batch`): a growing (dynamic) KV cache, one eager forward per token. Simple, runs
  everywhere, and on a GPU it is *launch-bound*: a 135M model issues several hundred small kernels per token,
  so the GPU idles while Python queues them (~75 ms per token for HF ``generate`` at batch 64 on an H200).
* **fast** (:func:`_sample_batch_static`): a *static* KV cache of fixed shape ``[B, heads, P + T_max, d]``
  and a fixed 4-D attention mask, so that every decoding step has the same shapes and memory addresses; on
  CUDA the step is recorded once as a **CUDA graph** and replayed (one launch per token instead of hundreds).
  On CPU it runs the same static-cache code eagerly (no speed-up; it is how the tests check equivalence).

``sample(..., fast=None)`` picks fast on CUDA for plain ``transformers`` models, and falls back to the plain
path (with a warning) if a model cannot be captured. ``COURSE_FAST_GENERATION=0`` turns it off.

In fp32 the two paths give the same tokens (tests; on an H200, 32/32 greedy rows equal to ``generate``). In
bf16 attention over the fixed-length cache is summed in another order than over a growing one, so a greedy
row can flip at a near-tie and diverge from there (40/64 rows equal on the H200 run in README): the same
distribution, not the same bits.
"""
from __future__ import annotations

import os
import warnings
import weakref
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase, StaticCache

from ..world import Problem
from .batches import default_system
from .logprobs import gather_logprobs


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


def build_prompts(
    tok: PreTrainedTokenizerBase, problems: Sequence[Problem], system: str | None | bool = True
) -> list[str]:
    """Chat-formatted prompts ending with the assistant marker.

    ``system=True`` uses :data:`utils.world.SYSTEM_PROMPT` for real models and none for the tiny model;
    a string uses that system prompt; ``None``/``False`` uses none. Dialogue history is included.
    """
    if system is True:
        system = default_system(tok)
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
    mask = prompt_mask.clone()
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=prompt_ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
    cache, next_pos = out.cache, positions[:, -1:] + 1

    def advance(t: int, tok: torch.Tensor) -> torch.Tensor:
        nonlocal mask, cache, next_pos
        # finished rows keep feeding pad tokens; their outputs are masked out afterwards
        mask = torch.cat([mask, mask.new_ones(B, 1)], dim=1)
        step = model(input_ids=tok[:, None], attention_mask=mask, position_ids=next_pos, cache=cache, use_cache=True)
        cache, next_pos = step.cache, next_pos + 1
        return step.logits[:, -1].float()

    return _decode_loop(out.logits[:, -1].float(), advance, max_new_tokens, temperature, top_p, stop_ids, pad_id, generator)


def _decode_loop(
    logits: torch.Tensor,
    advance: Callable[[int, torch.Tensor], torch.Tensor],
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    stop_ids: list[int],
    pad_id: int,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The loop both decoders share, so they make the same decisions and draw the same random numbers.

    ``logits [B, V]`` are the prefill's next-token logits; each step chooses a token per row
    (:func:`_choose`), stops when every row is done or the budget is spent, and otherwise calls
    ``advance(t, tok)``, which writes ``tok [B]`` at step ``t`` and returns the next ``[B, V]`` logits.
    The check waits for the GPU every step: checking less often would draw extra random numbers after the
    last row ends and so change the samples of the *next* batch under the same seed.
    """
    device = logits.device
    done = torch.zeros(logits.shape[0], dtype=torch.bool, device=device)
    stop = torch.tensor(stop_ids, device=device)
    tokens, logps = [], []
    for t in range(max_new_tokens):
        tok, logp, done = _choose(logits, done, temperature, top_p, stop, pad_id, generator)
        tokens.append(tok)
        logps.append(logp)
        if t == max_new_tokens - 1 or bool(done.all()):
            break
        logits = advance(t, tok)
    return _finish(tokens, logps, stop)


def _choose(
    logits: torch.Tensor, done: torch.Tensor, temperature: float, top_p: float, stop: torch.Tensor, pad_id: int,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One decoding decision for ``B`` rows: ``logits [B, V]`` -> token ``[B]``, its log-prob ``[B]``, new done ``[B]``.

    Rows already done emit ``pad_id`` with log-prob 0. Shared by both paths, so they agree token for token.
    """
    if temperature == 0:
        tok = logits.argmax(-1)
        logp = torch.zeros(logits.shape[0], device=logits.device)
    else:
        scaled = logits / temperature
        logp_all = scaled.log_softmax(-1)
        probs = _top_p_filter(scaled, top_p).softmax(-1)
        tok = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
        logp = gather_logprobs(logp_all, tok)
    tok = torch.where(done, torch.full_like(tok, pad_id), tok)
    logp = torch.where(done, torch.zeros_like(logp), logp)
    return tok, logp, done | torch.isin(tok, stop)


def _finish(tokens: list[torch.Tensor], logps: list[torch.Tensor], stop: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack per-step ``[B]`` tensors to ``[B, T]`` and mask everything after the first stop token."""
    tokens_t = torch.stack(tokens, 1)
    logps_t = torch.stack(logps, 1)
    is_stop = torch.isin(tokens_t, stop)
    after_stop = (is_stop.long().cumsum(1) - is_stop.long()) > 0
    cmask = (~after_stop).long()
    return tokens_t, cmask, logps_t * cmask


class _DecodeStep:
    """One decoding step of ``model`` on a static KV cache, with fixed shapes; a CUDA graph on CUDA.

    Static buffers (same address every step): ``token [B, 1]``, ``position [B, 1]``, ``mask [B, 1, 1, L]``
    (``True`` = may attend; ``L = P + max_new_tokens``). :meth:`__call__` copies the step's inputs into them
    and returns ``logits [B, V]`` (fp32). The cache writes each step's keys/values at its own device-side
    counter, so a replayed graph advances by itself.
    """

    def __init__(self, model: PreTrainedModel, cache: StaticCache, mask: torch.Tensor, use_graph: bool) -> None:
        B, device = mask.shape[0], mask.device
        self.model, self.cache, self.mask = model, cache, mask
        self.token = torch.zeros(B, 1, dtype=torch.long, device=device)
        self.position = torch.zeros(B, 1, dtype=torch.long, device=device)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.logits: torch.Tensor | None = None
        if use_graph:
            self._capture()

    def _forward(self) -> torch.Tensor:
        out = self.model(input_ids=self.token, attention_mask=self.mask, position_ids=self.position, cache=self.cache, use_cache=True)
        return out.logits[:, -1].float()

    def _capture(self) -> None:
        counters = [layer.cumulative_length.clone() for layer in self.cache.layers]
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):  # warm-up (cuBLAS handles, workspaces) off the capture
            for _ in range(2):
                self._forward()
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.logits = self._forward()
        # the warm-up steps wrote scratch keys/values and advanced the counters: rewind them (the scratch slots
        # are overwritten by the real steps before the mask ever lets a query see them)
        for layer, c in zip(self.cache.layers, counters):
            layer.cumulative_length.copy_(c)

    def __call__(self, token: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        self.token.copy_(token[:, None])
        self.position.copy_(position)
        if self.graph is None:
            return self._forward()
        self.graph.replay()
        return self.logits.clone()


@torch.no_grad()
def _sample_batch_static(
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
    """The fast path: same inputs and outputs as :func:`_sample_batch`, on a static cache (+ CUDA graph)."""
    B, P = prompt_ids.shape
    device = prompt_ids.device
    L = P + max_new_tokens
    cache = StaticCache(config=model.config, max_cache_len=L)
    # key mask [B, L]: real prompt tokens, then each generated slot as it is written
    keys = torch.zeros(B, L, dtype=torch.bool, device=device)
    keys[:, :P] = prompt_mask.bool()
    positions = (prompt_mask.cumsum(-1) - 1).clamp(min=0)
    causal = torch.ones(P, L, dtype=torch.bool, device=device).tril()          # query i sees slots <= i
    prefill_mask = (causal[None] & keys[:, None, :])[:, None]                    # [B, 1, P, L]
    # a fully masked query row (a left-pad position) would give NaN in SDPA: let pads see themselves
    prefill_mask |= torch.eye(P, L, dtype=torch.bool, device=device)[None, None]
    out = model(input_ids=prompt_ids, attention_mask=prefill_mask, position_ids=positions, cache=cache, use_cache=True, logits_to_keep=1)
    step_mask = keys[:, None, None, :].clone()                                   # [B, 1, 1, L], static buffer
    step = _DecodeStep(model, cache, step_mask, use_graph=device.type == "cuda")
    next_pos = positions[:, -1:] + 1

    def advance(t: int, tok: torch.Tensor) -> torch.Tensor:
        nonlocal next_pos
        step_mask[:, :, :, P + t] = True
        logits = step(tok, next_pos)
        next_pos = next_pos + 1
        return logits

    return _decode_loop(out.logits[:, -1].float(), advance, max_new_tokens, temperature, top_p, stop_ids, pad_id, generator)


def fast_generation_default(model: torch.nn.Module) -> bool:
    """Use the fast path? Yes on CUDA for plain ``transformers`` models, unless ``COURSE_FAST_GENERATION=0``."""
    env = os.environ.get("COURSE_FAST_GENERATION")
    if env is not None:
        return env.strip() not in ("0", "false", "False", "")
    return isinstance(model, PreTrainedModel) and next(model.parameters()).device.type == "cuda"


_FAST_FAILED: "weakref.WeakSet[torch.nn.Module]" = weakref.WeakSet()  # models the fast path failed on


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
    fast: bool | None = None,
) -> Samples:
    """Sample ``n`` completions for each prompt (``temperature=0`` is greedy decoding).

    Sequences are ordered prompt-major: rows ``i*n ... i*n+n-1`` belong to ``prompts[i]``.
    ``fast``: decode on a static KV cache (a CUDA graph on GPUs); ``None`` = :func:`fast_generation_default`.
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
    use_fast = fast_generation_default(model) if fast is None else fast
    for s in tqdm(starts, desc="sampling", disable=not progress or len(starts) < 2, leave=False):
        enc = tok(expanded[s : s + batch_size], return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        args = (model, enc["input_ids"], enc["attention_mask"], max_new_tokens, temperature, top_p, stop_ids, pad_id, gen)
        ids, cmask, logp = _decode(*args, fast=use_fast and model not in _FAST_FAILED, explicit=fast is True)
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


def _decode(*args: object, fast: bool, explicit: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run the fast path if asked; if it fails on a model it was not explicitly asked for, fall back for good."""
    if not fast:
        return _sample_batch(*args)  # type: ignore[arg-type]
    try:
        return _sample_batch_static(*args)  # type: ignore[arg-type]
    except Exception as err:  # noqa: BLE001 - any failure to build/capture the static path
        if explicit:
            raise
        _FAST_FAILED.add(args[0])  # type: ignore[arg-type]
        warnings.warn(f"fast generation failed for this model ({type(err).__name__}: {err}); using the plain path", stacklevel=3)
        return _sample_batch(*args)  # type: ignore[arg-type]


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
