"""Batched sampling with a KV cache, returning tokens *and* their log-probabilities.

The course's RL and search code needs ``log pi(a_t | s_t)`` of every sampled token, so we write the
decoding loop ourselves (about 40 lines) instead of calling ``model.generate``. Shapes:

* ``B`` = number of sequences (prompts x samples per prompt), ``P`` = padded prompt length,
  ``T`` = generated length (padded to the longest completion).

Three decoding paths compute the same function:

* **plain** (:func:`_sample_batch`): a growing (dynamic) KV cache, one eager forward per token. Simple, runs
  everywhere, and on a GPU it is *launch-bound*: a 135M model issues several hundred small kernels per token,
  so the GPU idles while Python queues them. This is the readable reference.
* **fast** (:func:`sample_batch_static`): a *static* KV cache of fixed shape ``[B, heads, L, d]``
  (``L >= P + T_max``) and a fixed 4-D attention mask, so that every decoding step has the same shapes and
  memory addresses; on CUDA the step is recorded once per call as a **CUDA graph** and replayed (one launch per
  token instead of hundreds), and the loop asks whether every row is done only every :data:`CHECK_EVERY` steps,
  so the host does not wait for the GPU each token (the extra steps are dropped and the random generator is put
  back, so nothing changes). On CPU it runs the same static-cache code eagerly (no speed-up; it is how the
  tests check equivalence).
* **fast + compiled** (``compiled=True``): the same, with the decode step passed through ``torch.compile``
  (inductor, ``dynamic=False``) *before* it is recorded: inductor fuses the norms, rotary embeddings and
  activations into a few kernels, so the recorded graph is shorter. This is what ``generate(...,
  cache_implementation="static")`` does inside ``transformers`` (it compiles the forward with
  ``mode="reduce-overhead"``, i.e. inductor plus its own CUDA graphs). Compiling costs time once per shape
  ``(B, L, dtype)``; ``L`` is rounded up to :data:`CACHE_BUCKET` so that calls whose prompts differ by a few
  tokens (an RL loop) share one compiled graph; a compiled step is checked against the eager one on the first
  step of every call before it is used.

The sampling decision itself (:func:`_choose`: argmax, or temperature, top-p and ``torch.multinomial``) stays
eager and outside the graph in every path, so all paths draw the same random numbers; it is also where a row stops,
at the end-of-text token or at a token of ``sample(..., stop=...)``'s stop strings (:func:`stop_token_ids`).

``sample(..., fast=None, compiled=None)`` picks fast on CUDA for plain ``transformers`` models; the compiled
step is opt-in (``COURSE_COMPILE_GENERATION=1`` or ``compiled=True``): measured on the H200 it is the fastest
path, but its compile pays off only over many calls of one shape (:data:`COMPILE_BY_DEFAULT_ON_CUDA`; switched
on, it would compile a shape from its second use). Every path falls back
(compiled -> fast -> plain, with a warning) if a model cannot be compiled or captured.
``COURSE_FAST_GENERATION=0`` turns the fast path off, ``COURSE_COMPILE_GENERATION=0`` only the compile (``=1``
forces it from the first call, on CPU too); ``COURSE_COMPILE_MODE`` / ``COURSE_COMPILE_BACKEND`` choose how.
``python -m utils.tools.bench`` measures all of them side by side with ``generate``.

In fp32 the paths give the same tokens (tests; on an H200, 32/32 greedy rows of the fast path equal to
``generate``). In bf16 attention over the fixed-length cache is summed in another order than over a growing one
(and fused kernels round in yet another), so a greedy row can flip at a near-tie and diverge from there: the same
distribution, not the same bits.
"""
from __future__ import annotations

import os
import time
import warnings
import weakref
from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase, StaticCache

from ..numerics import rel_error
from ..world import Problem
from .batches import default_system
from .compute import Ledger, charge
from .logprobs import gather_logprobs
from .samples import Samples


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


def end_token_ids(tok: PreTrainedTokenizerBase) -> set[int]:
    """The ids that end a completion: the end-of-text token, and the pad token where the tokenizer has one (the
    sampler stops a row at either; a completion whose last kept token is one of them ended by itself)."""
    return {tok.eos_token_id} | ({tok.pad_token_id} if tok.pad_token_id is not None else set())


_STOP_IDS: "weakref.WeakKeyDictionary[PreTrainedTokenizerBase, dict[tuple[str, ...], list[int]]]" = weakref.WeakKeyDictionary()


def stop_token_ids(tok: PreTrainedTokenizerBase, stop: Sequence[str]) -> list[int]:
    """The ids of every vocabulary token whose decoded text contains one of the ``stop`` strings (sorted; cached per
    tokenizer). For the tiny model's tokenizer ``stop=[","]`` gives exactly the id of ``","``; for a BPE vocabulary
    it also gives merged tokens such as ``",\\n"``. Empty strings are refused (they would stop at every token)."""
    key = tuple(sorted(set(stop)))
    if not key:
        return []
    if any(not isinstance(s, str) or not s for s in key):
        raise ValueError(f"stop strings must be non-empty strings, got {list(stop)!r}")
    cache = _STOP_IDS.setdefault(tok, {})
    if key not in cache:
        pieces = tok.batch_decode([[i] for i in range(len(tok))])
        cache[key] = [i for i, piece in enumerate(pieces) if any(s in piece for s in key)]
    return cache[key]


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
    check_every: int = 1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The loop both decoders share, so they make the same decisions and draw the same random numbers.

    ``logits [B, V]`` are the prefill's next-token logits; each step chooses a token per row
    (:func:`_choose`), stops when every row is done or the budget is spent, and otherwise calls
    ``advance(t, tok)``, which writes ``tok [B]`` at step ``t`` and returns the next ``[B, V]`` logits.

    ``check_every=1`` asks "is every row done?" after each step, which makes the host wait for the GPU every
    token. ``check_every=k`` asks only every ``k`` steps (the GPU runs ahead meanwhile); the up to ``k - 1``
    steps decoded after the true end are then dropped *and* the random generator is put back to its state
    at the true end, so the result -- and the samples of the next batch under the same seed -- are exactly
    those of ``check_every=1`` (tests).
    """
    device = logits.device
    done = torch.zeros(logits.shape[0], dtype=torch.bool, device=device)
    stop = torch.tensor(stop_ids, device=device)
    rng = _rng(generator, device) if check_every > 1 and temperature > 0 else None
    tokens, logps, all_done, states = [], [], [], []
    for t in range(max_new_tokens):
        tok, logp, done = _choose(logits, done, temperature, top_p, stop, pad_id, generator)
        tokens.append(tok)
        logps.append(logp)
        if t == max_new_tokens - 1:
            break
        if check_every == 1:
            if bool(done.all()):
                break
        else:
            all_done.append(done.all())
            if rng is not None:
                states.append(rng.get_state())  # host-side (seed, offset): no wait for the GPU
            if (t + 1) % check_every == 0 and bool(all_done[-1]):
                break
        logits = advance(t, tok)
    if all_done:  # deferred checks: cut back to the first step after which every row was done
        flags = torch.stack(all_done)
        if bool(flags.any()):
            end = int(flags.long().argmax())
            tokens, logps = tokens[: end + 1], logps[: end + 1]
            if rng is not None:
                rng.set_state(states[end])
    return _finish(tokens, logps, stop)


def _rng(generator: torch.Generator | None, device: torch.device) -> torch.Generator:
    """The generator ``torch.multinomial`` draws from: ``generator``, or the device's default one."""
    if generator is not None:
        return generator
    if device.type == "cuda":
        return torch.cuda.default_generators[device.index if device.index is not None else torch.cuda.current_device()]
    return torch.default_generator


def _choose(
    logits: torch.Tensor, done: torch.Tensor, temperature: float, top_p: float, stop: torch.Tensor, pad_id: int,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One decoding decision for ``B`` rows: ``logits [B, V]`` -> token ``[B]``, its log-prob ``[B]``, new done ``[B]``.

    Rows already done emit ``pad_id`` with log-prob 0. A row is done once it emits a token of ``stop`` (end of text,
    pad, and the tokens of ``sample``'s stop strings); every row draws its random number each step, done or not, so
    stopping a row early never shifts another row's draws. Shared by every path, so they agree token for token.
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


def _step_logits(
    model: PreTrainedModel, token: torch.Tensor, mask: torch.Tensor, position: torch.Tensor, cache: StaticCache
) -> torch.Tensor:
    """One decoding step: ``token [B, 1]``, ``mask [B, 1, 1, L]``, ``position [B, 1]`` -> next-token ``logits [B, V]``
    (fp32), writing the step's keys/values into ``cache``. The function :func:`torch.compile` compiles."""
    out = model(input_ids=token, attention_mask=mask, position_ids=position, cache=cache, use_cache=True)
    return out.logits[:, -1].float()


_COMPILED: dict[tuple[str, str], Callable[..., torch.Tensor]] = {}


def _compiled_step(backend: str, mode: str) -> Callable[..., torch.Tensor]:
    """:func:`_step_logits` under ``torch.compile`` (one wrapper per backend and mode, made once).

    ``dynamic=False``: every decode step of one call has the same shapes, so the graph is specialised to them;
    a new ``(B, L, dtype)`` compiles once more and later calls with that shape reuse it. The static cache's
    tensors are marked by ``transformers`` as static addresses *without* a guard, so a fresh cache of the same
    shape does not recompile (tests). Modes that bring their own CUDA graphs (``reduce-overhead``) are refused:
    :class:`_DecodeStep` records the CUDA graph itself.
    """
    if mode in ("reduce-overhead", "max-autotune"):
        raise ValueError(f"compile mode {mode!r} records CUDA graphs itself; use 'default' or 'max-autotune-no-cudagraphs'")
    key = (backend, mode)
    if key not in _COMPILED:
        kw = {"mode": mode} if backend == "inductor" else {}
        _COMPILED[key] = torch.compile(_step_logits, backend=backend, dynamic=False, fullgraph=False, **kw)
    return _COMPILED[key]


# Compiled logits against eager ones on the same step, as a relative error (utils.numerics.rel_error): a
# fused kernel sums in another order, which in fp32 moves logits by ~1e-7 relative (measured on CPU: 3e-7) and
# in bf16/fp16 (8/11 mantissa bits, rounded again after each of the model's layers) by ~1e-2; a graph that
# reads a wrong cache slot or a stale weight is off by O(1). The bounds sit between the two, with >= 10x room.
_COMPILE_TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-8}
_COMPILE_TOLERANCE_HALF = 0.1

last_decode: dict[str, object] = {}  # what the last fast-path call did: compiled?, check error, warm-up seconds


class _DecodeStep:
    """One decoding step of ``model`` on a static KV cache, with fixed shapes; a CUDA graph on CUDA.

    Static buffers (same address every step): ``token [B, 1]``, ``position [B, 1]``, ``mask [B, 1, 1, L]``
    (``True`` = may attend; ``L >= P + max_new_tokens``). :meth:`__call__` copies the step's inputs into them
    and returns ``logits [B, V]`` (fp32). The cache writes each step's keys/values at its own device-side
    counter, so a replayed graph advances by itself.

    ``step_fn`` is :func:`_step_logits` or its compiled version (:func:`_compiled_step`). Everything is prepared
    at the first call, on the real first inputs: a compiled step is first checked against the eager one on that
    step (``ValueError`` when they disagree, so the caller can fall back), then warmed up and recorded.
    """

    def __init__(
        self, model: PreTrainedModel, cache: StaticCache, mask: torch.Tensor, use_graph: bool,
        step_fn: Callable[..., torch.Tensor] = _step_logits,
    ) -> None:
        B, device = mask.shape[0], mask.device
        self.model, self.cache, self.mask, self.step_fn, self.use_graph = model, cache, mask, step_fn, use_graph
        self.token = torch.zeros(B, 1, dtype=torch.long, device=device)
        self.position = torch.zeros(B, 1, dtype=torch.long, device=device)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.logits: torch.Tensor | None = None
        self.prepared = False
        self.check_error: float | None = None
        self.prepare_seconds = 0.0

    def _forward(self) -> torch.Tensor:
        return self.step_fn(self.model, self.token, self.mask, self.position, self.cache)

    def _counters(self) -> list[torch.Tensor]:
        return [layer.cumulative_length.clone() for layer in self.cache.layers]

    def _rewind(self, counters: list[torch.Tensor]) -> None:
        """Undo trial steps: put the write counters back (the scratch keys/values they wrote sit in the slot of
        the current step, which the real step overwrites before the mask lets any query see it)."""
        for layer, c in zip(self.cache.layers, counters):
            layer.cumulative_length.copy_(c)

    def _check_compiled(self) -> None:
        counters = self._counters()
        eager = _step_logits(self.model, self.token, self.mask, self.position, self.cache)
        self._rewind(counters)
        compiled = self._forward()  # the first call compiles
        self._rewind(counters)
        self.check_error = rel_error(compiled, eager)
        dtype = next(self.model.parameters()).dtype
        tol = _COMPILE_TOLERANCE.get(dtype, _COMPILE_TOLERANCE_HALF)
        if not self.check_error <= tol:
            raise ValueError(f"compiled decode step disagrees with the eager one: relative error {self.check_error:.2e} > {tol:g}")

    def _capture(self) -> None:
        counters = self._counters()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):  # warm-up (cuBLAS handles, workspaces, Triton loads) off the capture
            for _ in range(2):
                self._forward()
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.logits = self._forward()
        self._rewind(counters)

    def _prepare(self) -> None:
        t0 = time.perf_counter()
        if self.step_fn is not _step_logits:
            self._check_compiled()
        if self.use_graph:
            self._capture()
            torch.cuda.synchronize()
        self.prepared, self.prepare_seconds = True, time.perf_counter() - t0

    def __call__(self, token: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        self.token.copy_(token[:, None])
        self.position.copy_(position)
        if not self.prepared:
            self._prepare()
        if self.graph is None:
            return self._forward()
        self.graph.replay()
        return self.logits.clone()


def _bucket(length: int, step: int) -> int:
    """``length`` rounded up to a multiple of ``step`` (cache lengths, so that nearby prompt lengths share a graph)."""
    return -(-length // step) * step


CACHE_BUCKET = 64  # compiled path: cache length L rounded up to this, so that P +- a few tokens do not recompile
CHECK_EVERY = 8    # CUDA fast path: ask "all rows done?" every 8 steps (see _decode_loop)


@torch.no_grad()
def sample_batch_static(
    model: PreTrainedModel,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    stop_ids: list[int],
    pad_id: int,
    generator: torch.Generator | None,
    compiled: bool = False,
    check_every: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The fast path: same inputs and outputs as :func:`_sample_batch`, on a static cache (+ CUDA graph).

    ``compiled``: the decode step goes through ``torch.compile`` (:func:`_compiled_step`, backend and mode from
    ``COURSE_COMPILE_BACKEND`` / ``COURSE_COMPILE_MODE``) before it is recorded, and the cache length is
    rounded up to :data:`CACHE_BUCKET`. ``check_every``: see :func:`_decode_loop`; ``None`` = :data:`CHECK_EVERY`
    on CUDA, 1 elsewhere.
    """
    B, P = prompt_ids.shape
    device = prompt_ids.device
    use_graph = device.type == "cuda"
    step_fn = _compiled_step(*compile_settings()) if compiled else _step_logits
    L = _bucket(P + max_new_tokens, CACHE_BUCKET) if compiled else P + max_new_tokens
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
    step = _DecodeStep(model, cache, step_mask, use_graph=use_graph, step_fn=step_fn)
    next_pos = positions[:, -1:] + 1

    def advance(t: int, tok: torch.Tensor) -> torch.Tensor:
        nonlocal next_pos
        step_mask[:, :, :, P + t] = True
        logits = step(tok, next_pos)
        next_pos = next_pos + 1
        return logits

    every = check_every if check_every is not None else (CHECK_EVERY if use_graph else 1)
    result = _decode_loop(out.logits[:, -1].float(), advance, max_new_tokens, temperature, top_p, stop_ids, pad_id, generator, every)
    last_decode.clear()
    last_decode.update(compiled=compiled, cache_length=L, graph=step.graph is not None, check_error=step.check_error,
                       prepare_seconds=round(step.prepare_seconds, 3))
    return result


def compile_settings() -> tuple[str, str]:
    """``(backend, mode)`` for the compiled decode step: ``COURSE_COMPILE_BACKEND`` (default ``inductor``) and
    ``COURSE_COMPILE_MODE`` (default ``default``; ``max-autotune-no-cudagraphs`` tunes matmuls, slower to compile)."""
    return os.environ.get("COURSE_COMPILE_BACKEND", "inductor"), os.environ.get("COURSE_COMPILE_MODE", "default")


def compile_generation_default(model: torch.nn.Module) -> bool:
    """May the fast path compile its decode step? Only when asked, with ``COURSE_COMPILE_GENERATION=1`` (or
    ``sample(..., compiled=True)``): see :data:`COMPILE_BY_DEFAULT_ON_CUDA` for why it is not the default.

    On CPU the default stays no (inductor needs a C++ compiler, and compiling costs more than it saves there);
    ``COURSE_COMPILE_GENERATION=1`` forces it anywhere, from the first call. On by default, a shape would be
    compiled only from its :data:`COMPILE_AFTER`-th use (:func:`_worth_compiling`).
    """
    env = os.environ.get("COURSE_COMPILE_GENERATION")
    if env is not None:
        return env.strip() not in ("0", "false", "False", "")
    return COMPILE_BY_DEFAULT_ON_CUDA and next(model.parameters()).device.type == "cuda"


#: Off, by measurement on an H200 (docs/measurements.md): the compiled step is the fastest path (19.1k tokens/s at
#: 64 x 256 bf16, 1.17x ``generate``'s static cache, 1.39x our CUDA graph) but compiling takes ~30 s per shape and
#: saves ~0.33 s per call of that shape, so it pays after ~90 calls — more than a notebook makes of any one shape.
COMPILE_BY_DEFAULT_ON_CUDA = False


# Compiling one shape costs tens of seconds and saves a millisecond or two per token: worth it for a shape an RL
# loop repeats every step, not for a one-off evaluation. So by default a (B, L, dtype) is compiled on its second use.
COMPILE_AFTER = 2
_SHAPES_SEEN: "weakref.WeakKeyDictionary[torch.nn.Module, dict[tuple[int, int, torch.dtype], int]]" = weakref.WeakKeyDictionary()


def _worth_compiling(model: torch.nn.Module, batch: int, prompt_len: int, max_new_tokens: int) -> bool:
    """Count one more use of this call's compiled shape ``(B, L, dtype)``; ``True`` from the :data:`COMPILE_AFTER`-th."""
    key = (batch, _bucket(prompt_len + max_new_tokens, CACHE_BUCKET), next(model.parameters()).dtype)
    seen = _SHAPES_SEEN.setdefault(model, {})
    seen[key] = seen.get(key, 0) + 1
    return seen[key] >= COMPILE_AFTER


def fast_generation_default(model: torch.nn.Module) -> bool:
    """Use the fast path? Yes on CUDA for plain ``transformers`` models, unless ``COURSE_FAST_GENERATION=0``."""
    env = os.environ.get("COURSE_FAST_GENERATION")
    if env is not None:
        return env.strip() not in ("0", "false", "False", "")
    return isinstance(model, PreTrainedModel) and next(model.parameters()).device.type == "cuda"


_FAST_FAILED: "weakref.WeakSet[torch.nn.Module]" = weakref.WeakSet()  # models the fast path failed on
_COMPILE_FAILED: "weakref.WeakSet[torch.nn.Module]" = weakref.WeakSet()  # models the compiled step failed on


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
    compiled: bool | None = None,
    stop: Sequence[str] | None = None,
    ledger: Ledger | None = None,
) -> Samples:
    """Sample ``n`` completions for each prompt (``temperature=0`` is greedy decoding).

    Sequences are ordered prompt-major: rows ``i*n ... i*n+n-1`` belong to ``prompts[i]``.
    ``stop``: strings that end a row besides the end-of-text token (e.g. :data:`utils.world.SEPARATORS`'
    characters, ``"</think>"``): a row finishes at the first token whose decoded text contains one of them
    (:func:`stop_token_ids`); that token is kept and covered by the mask. Stopping is decided per token, after the
    same random draw the unstopped sampler makes, so under one seed each row is exactly the unstopped row's prefix
    up to its first stop token, with the same log-probs. Exact for the tiny model's character tokenizer (every
    character and every format tag is one token). For a BPE tokenizer it is guaranteed that a row ends at its
    first token containing a stop string (a token such as ``",\\n"`` ends it too, so the text may run past the
    stop string to the end of that token); a stop string split across several tokens is not detected.
    ``ledger``: add the tokens generated (kept ones), the prompt tokens prefilled and one call per batch.
    ``fast``: decode on a static KV cache (a CUDA graph on GPUs); ``None`` = :func:`fast_generation_default`.
    ``compiled``: on the fast path, ``torch.compile`` the decode step before recording it; ``None`` = where
    :func:`compile_generation_default` allows it, from the second call of a shape on. Left to the defaults, a
    failure falls back with a warning (compiled -> fast -> plain); asked for explicitly (``True``), it raises.
    """
    if not prompts:
        raise ValueError("sample() needs at least one prompt")
    if temperature < 0 or not 0 < top_p <= 1:
        raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1, got {temperature}, {top_p}")
    device = next(model.parameters()).device
    expanded = [p for p in prompts for _ in range(n)]
    stop_ids = sorted(end_token_ids(tok) | set(stop_token_ids(tok, stop or ())))
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    gen = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
    was_training = model.training
    model.eval()
    chunks = []
    side = tok.padding_side
    tok.padding_side = "left"
    starts = range(0, len(expanded), batch_size)
    use_fast = fast_generation_default(model) if fast is None else fast
    use_compile = use_fast and (compile_generation_default(model) if compiled is None else compiled)
    by_use = compiled is None and os.environ.get("COURSE_COMPILE_GENERATION") is None  # compile repeated shapes only
    try:
        for s in tqdm(starts, desc="sampling", disable=not progress or len(starts) < 2, leave=False):
            enc = tok(expanded[s : s + batch_size], return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            args = (model, enc["input_ids"], enc["attention_mask"], max_new_tokens, temperature, top_p, stop_ids, pad_id, gen)
            comp = use_compile and model not in _COMPILE_FAILED
            if comp and by_use:
                comp = _worth_compiling(model, *enc["input_ids"].shape, max_new_tokens)
            ids, cmask, logp = _decode(*args, fast=use_fast and model not in _FAST_FAILED, explicit=fast is True,
                                       compiled=comp, compile_explicit=compiled is True)
            chunks.append((enc["input_ids"], enc["attention_mask"], ids, cmask, logp))
            if ledger is not None:  # counting waits for the device: only when asked
                charge(ledger, tokens_generated=int(cmask.sum()), tokens_prefilled=int(enc["attention_mask"].sum()), model_calls=1)
    finally:  # an interrupted or failed call leaves the caller's tokenizer as it was
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


def _decode(
    *args: object, fast: bool, explicit: bool, compiled: bool = False, compile_explicit: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run the fastest path asked for; if one fails on a model it was not explicitly asked for, warn and use the
    next one (compiled -> fast -> plain) for good. The random generator is put back before a retry, so the
    retry draws what the failed attempt would have."""
    if not fast:
        return _sample_batch(*args)  # type: ignore[arg-type]
    model, gen = args[0], args[-1]
    state = gen.get_state() if isinstance(gen, torch.Generator) else None
    if compiled:
        try:
            return sample_batch_static(*args, compiled=True)  # type: ignore[arg-type]
        except Exception as err:  # noqa: BLE001 - tracing, compiling, recording or the eager check failed
            if compile_explicit:
                raise
            _COMPILE_FAILED.add(model)  # type: ignore[arg-type]
            warnings.warn(f"compiled generation failed for this model ({type(err).__name__}: {str(err)[:300]}); "
                          "using the fast path without torch.compile", stacklevel=3)
            if state is not None:
                gen.set_state(state)  # type: ignore[union-attr]
    try:
        return sample_batch_static(*args)  # type: ignore[arg-type]
    except Exception as err:  # noqa: BLE001 - any failure to build/capture the static path
        if explicit:
            raise
        _FAST_FAILED.add(model)  # type: ignore[arg-type]
        warnings.warn(f"fast generation failed for this model ({type(err).__name__}: {err}); using the plain path", stacklevel=3)
        if state is not None:
            gen.set_state(state)  # type: ignore[union-attr]
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
