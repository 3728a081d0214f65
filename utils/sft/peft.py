"""Parameter-efficient fine-tuning with the PEFT library (survey §4.7): methods, training, memory, evaluation.

What chapter 04 needs beyond :mod:`utils.lm.lora` (LoRA from scratch):

* :func:`make_peft` builds a PEFT model for one named method (``lora``, ``dora``, ``ia3``, ``loha``,
  ``adaption_prompt`` (LLaMA-Adapter), ``prefix``, ``prompt``, ``ptuning`` ...) on a ``LlamaForCausalLM``.
* :class:`AlignedLogits` hides the virtual tokens that prompt tuning prepends, so the plain training loop
  :func:`utils.lm.training.train_lm` works for every method.
* :func:`training_memory` *measures* what one training step holds: weights, gradients, AdamW state and the
  activations autograd saves for the backward pass (on CUDA also the allocator's real peak).
* :func:`heldout_nll` scores a model on a skill by the loss of held-out worked solutions (a forgetting measure
  that still moves where accuracy is already ~0); accuracy comes from the one evaluator,
  ``utils.lm.evaluation.evaluate(model, tok, problems, decode=functools.partial(greedy_texts, model, tok))``.
* :func:`greedy_texts` decodes greedily with ``model.generate`` in batches of equal prompt length (no
  padding), which is how PEFT's prompt-learning models must be decoded; :func:`generation_consistent`
  checks a model's cached generation against its own full forward pass.

Shapes: ``B`` batch, ``L`` sequence length, ``V`` vocabulary, ``n_virtual`` virtual tokens.
"""
from __future__ import annotations

import traceback
from collections import defaultdict
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable, Sequence

import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..lm.batches import sft_batch
from ..lm.generation import build_prompts, sample
from ..lm.logprobs import loss_sum_and_count, mle_loss
from ..world import Problem
from .data import conversation

#: every linear layer of a Llama block
LLAMA_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def make_peft(model: PreTrainedModel, method: str, **kw: Any) -> nn.Module:
    """Wrap ``model`` (modified in place) in a PEFT model for ``method``; keyword arguments override defaults.

    ``lora``/``dora``/``qlora``: ``r`` (8), ``alpha`` (16), ``targets`` (all Llama linears), ``rslora`` (False:
    scale ``alpha / r``; True: rsLoRA's ``alpha / sqrt(r)``). ``ia3``: PEFT's Llama
    defaults (k, v, down_proj). ``loha``/``lokr``: ``r``, ``alpha``. ``vera``: ``r`` (32). ``ln_tuning``:
    the RMSNorm weights. ``adaption_prompt``: LLaMA-Adapter, ``n_virtual`` (16) prompts in the top
    ``layers`` (all) layers with zero-initialised gates. ``prefix``: prefix tuning, ``n_virtual`` (16)
    key/value vectors per layer. ``prompt``: prompt tuning, ``n_virtual`` (16) input embeddings.
    ``ptuning``: P-tuning (an MLP encodes the virtual tokens). ``boft``: orthogonal fine-tuning.
    """
    import peft

    task = "CAUSAL_LM"
    r, alpha = kw.get("r", 8), kw.get("alpha", 16)
    targets = list(kw.get("targets", LLAMA_LINEARS))
    nv = kw.get("n_virtual", 16)
    n_layers = model.config.num_hidden_layers
    if method in ("lora", "dora"):
        cfg = peft.LoraConfig(r=r, lora_alpha=alpha, target_modules=targets, lora_dropout=kw.get("dropout", 0.0),
                              use_dora=method == "dora", use_rslora=kw.get("rslora", False), task_type=task)
    elif method == "qlora":  # same adapter as LoRA; the 4-bit base comes from the caller (see chapter 04)
        cfg = peft.LoraConfig(r=r, lora_alpha=alpha, target_modules=targets, lora_dropout=kw.get("dropout", 0.0),
                              use_rslora=kw.get("rslora", False), task_type=task)
    elif method == "ia3":
        cfg = peft.IA3Config(target_modules=["k_proj", "v_proj", "down_proj"], feedforward_modules=["down_proj"], task_type=task)
    elif method == "loha":
        cfg = peft.LoHaConfig(r=r, alpha=alpha, target_modules=targets, task_type=task)
    elif method == "lokr":
        cfg = peft.LoKrConfig(r=r, alpha=alpha, target_modules=targets, task_type=task)
    elif method == "vera":
        cfg = peft.VeraConfig(r=kw.get("r", 32), target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], task_type=task)
    elif method == "boft":
        cfg = peft.BOFTConfig(boft_block_size=kw.get("block", 4), target_modules=targets, task_type=task)
    elif method == "ln_tuning":
        cfg = peft.LNTuningConfig(target_modules=["input_layernorm", "post_attention_layernorm"], task_type=task)
    elif method == "adaption_prompt":
        cfg = peft.AdaptionPromptConfig(adapter_len=nv, adapter_layers=kw.get("layers", n_layers), task_type=task)
    elif method == "prefix":
        cfg = peft.PrefixTuningConfig(num_virtual_tokens=nv, task_type=task)
    elif method == "prompt":
        cfg = peft.PromptTuningConfig(num_virtual_tokens=nv, task_type=task)
    elif method == "ptuning":
        cfg = peft.PromptEncoderConfig(num_virtual_tokens=nv, encoder_hidden_size=kw.get("hidden", 64), task_type=task)
    else:
        raise ValueError(f"unknown PEFT method {method!r}")
    torch.manual_seed(kw.get("seed", 0))
    return peft.get_peft_model(model, cfg)


def is_prompt_learning(model: nn.Module) -> bool:
    """True for PEFT prompt-learning models (prefix / prompt / P-tuning), which need ``model.generate``."""
    cfg = getattr(model, "active_peft_config", None)
    return bool(getattr(cfg, "is_prompt_learning", False))


class AlignedLogits(nn.Module):
    """Wraps a causal LM and returns only the logits of the real input positions.

    PEFT's prompt tuning and P-tuning prepend ``n_virtual`` embeddings, so their logits are
    ``[B, n_virtual + L, V]``; this keeps the last ``L`` (for other models it changes nothing). The
    result has a ``.logits`` attribute, like a ``transformers`` output, so :func:`utils.lm.training.train_lm`
    can train any PEFT model.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kw: Any) -> SimpleNamespace:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, **kw)
        return SimpleNamespace(logits=out.logits[:, -input_ids.shape[1]:])


@dataclass
class TrainingMemory:
    """Bytes one training step holds (measured). ``cuda_peak`` is ``torch.cuda.max_memory_allocated`` on a
    GPU, else ``None``. ``activations`` counts each tensor autograd saved for backward once, excluding
    parameters."""

    weights: int
    grads: int
    optimizer: int
    activations: int
    trainable: int
    cuda_peak: int | None = None

    @property
    def total(self) -> int:
        """Weights + gradients + optimizer state + saved activations (bytes)."""
        return self.weights + self.grads + self.optimizer + self.activations

    def mib(self) -> dict[str, float]:
        d = {k: getattr(self, k) / 2**20 for k in ("weights", "grads", "optimizer", "activations", "total")}
        if self.cuda_peak is not None:
            d["cuda_peak"] = self.cuda_peak / 2**20
        return d


def training_memory(model: nn.Module, batch: dict[str, torch.Tensor]) -> TrainingMemory:
    """Measure one AdamW training step of ``model`` (wrap prompt-learning models in :class:`AlignedLogits`)
    on ``batch`` (``input_ids``/``attention_mask``/``labels`` ``[B, L]``). The model is left unchanged
    (the step uses ``lr=0``, gradients and optimizer are dropped afterwards)."""
    params = list({id(p): p for p in model.parameters()}.values())
    train = [p for p in params if p.requires_grad]
    param_ptrs = {p.untyped_storage().data_ptr() for p in params}
    device = params[0].device
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        st = t.untyped_storage()
        if st.data_ptr() not in param_ptrs:
            saved[st.data_ptr()] = st.nbytes()
        return t

    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    batch = {k: v.to(device) for k, v in batch.items()}
    labels = batch.pop("labels")
    was_training = model.training
    model.train()
    opt = torch.optim.AdamW(train, lr=0.0, weight_decay=0.0)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = mle_loss(model(**batch).logits, labels)
    loss.backward()
    grads = sum(p.grad.numel() * p.grad.element_size() for p in train if p.grad is not None)
    opt.step()
    state = sum(v.numel() * v.element_size() for s in opt.state.values() for v in s.values() if torch.is_tensor(v) and v.dim() > 0)
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
    opt.zero_grad(set_to_none=True)
    del opt, loss
    model.train(was_training)
    return TrainingMemory(
        weights=sum(p.numel() * p.element_size() for p in params), grads=grads, optimizer=state,
        activations=sum(saved.values()), trainable=sum(p.numel() for p in train), cuda_peak=peak,
    )


def _group_by_length(ids: list[list[int]]) -> list[tuple[int, list[int]]]:
    groups: dict[int, list[int]] = defaultdict(list)
    for i, x in enumerate(ids):
        groups[len(x)].append(i)
    return sorted(groups.items())


@torch.no_grad()
def _prompt_learning_decode(model: nn.Module, x: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int,
                            stop: list[int], pad_id: int) -> torch.Tensor:
    """Greedy decoding with a KV cache for PEFT prefix / prompt / P-tuning models, done by hand.

    ``x``: ``[B, n]`` left-padded prompts with ``attention_mask`` ``[B, n]`` -> ``[B, T]`` generated tokens
    (``pad_id`` after a stop token). It reproduces what PEFT's ``forward`` does in training, where
    prompts are unpadded: prompt tuning puts ``n_virtual`` embeddings (positions ``0..n_virtual-1``) in
    front of the prompt (positions from ``n_virtual`` on); prefix tuning starts the KV cache with
    ``n_virtual`` learned keys/values per layer and the prompt again at positions from ``n_virtual``.
    Explicit position ids skip the padding, so a padded row decodes exactly like an unpadded one.
    """
    cfg = model.active_peft_config
    base = model.base_model  # the LlamaForCausalLM under the PEFT wrapper
    B, n = x.shape
    nv = cfg.num_virtual_tokens
    mask = torch.cat([attention_mask.new_ones(B, nv), attention_mask], dim=1)
    pos = nv + (attention_mask.cumsum(-1) - 1).clamp(min=0)  # [B, n] positions of the real prompt tokens
    if cfg.peft_type.value == "PREFIX_TUNING":
        cache = model.get_prompt(B, max_cache_len=nv + n + max_new_tokens)
        out = base(input_ids=x, attention_mask=mask, position_ids=pos, cache=cache, use_cache=True)
    else:
        embeds = torch.cat([model.get_prompt(batch_size=B).to(base.dtype), model.word_embeddings(x)], dim=1)
        virtual_pos = torch.arange(nv, device=x.device).expand(B, nv)
        out = base(inputs_embeds=embeds, attention_mask=mask, position_ids=torch.cat([virtual_pos, pos], 1), use_cache=True)
    cache, logits = out.cache, out.logits[:, -1]
    next_pos = pos[:, -1:] + 1
    done = torch.zeros(B, dtype=torch.bool, device=x.device)
    stop_t = torch.tensor(stop, device=x.device)
    tokens = []
    for _ in range(max_new_tokens):
        t = torch.where(done, torch.full((B,), pad_id, device=x.device), logits.argmax(-1))
        tokens.append(t)
        done = done | torch.isin(t, stop_t)
        if bool(done.all()):
            break
        mask = torch.cat([mask, mask.new_ones(B, 1)], dim=1)
        out = base(input_ids=t[:, None], attention_mask=mask, position_ids=next_pos, cache=cache, use_cache=True)
        cache, logits = out.cache, out.logits[:, -1]
        next_pos = next_pos + 1
    return torch.stack(tokens, 1)


@torch.no_grad()
def greedy_ids(model: nn.Module, tok: PreTrainedTokenizerBase, problems: Sequence[Problem],
               max_new_tokens: int = 96, batch_size: int = 256, backend: str = "course") -> list[list[int]]:
    """Greedy completion tokens per problem (up to and including the first stop token, or truncated).

    ``backend="course"``: the course's cached decoder (:func:`utils.lm.generation.sample`) for ordinary
    models, and a hand-written cached decoder for PEFT prompt-learning models (prefix / prompt /
    P-tuning), whose ``model.generate`` is broken with transformers 5.x (see chapter 04).
    ``backend="generate"``: ``model.generate``, in batches of equal prompt length (no padding between
    the virtual tokens and the prompt).
    """
    if backend not in ("course", "generate"):
        raise ValueError(f"backend must be 'course' or 'generate', got {backend!r}")
    prompts = build_prompts(tok, list(problems))
    stop = sorted({tok.eos_token_id, tok.pad_token_id} - {None})
    if backend == "course" and not is_prompt_learning(model):
        s = sample(model, tok, prompts, n=1, max_new_tokens=max_new_tokens, temperature=0.0, batch_size=batch_size, seed=0)
        return [row[: int(m.sum())].tolist() for row, m in zip(s.completion_ids, s.completion_mask)]
    device = next(model.parameters()).device
    out: list[list[int]] = []
    was_training = model.training
    model.eval()
    if backend == "course":  # prompt learning: one left-padded batch at a time, positions skip the padding
        side, tok.padding_side = tok.padding_side, "left"
        for s0 in range(0, len(prompts), batch_size):
            enc = tok(prompts[s0:s0 + batch_size], return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            g = _prompt_learning_decode(model, enc["input_ids"], enc["attention_mask"], max_new_tokens, stop, tok.pad_token_id)
            out += [_until_stop(row, stop) for row in g.tolist()]
        tok.padding_side = side
        model.train(was_training)
        return out
    ids = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    out = [[] for _ in ids]
    for length, idx in _group_by_length(ids):  # model.generate: equal prompt lengths, no padding at all
        for s0 in range(0, len(idx), batch_size):
            chunk = idx[s0:s0 + batch_size]
            x = torch.tensor([ids[i] for i in chunk], device=device)
            g = model.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=max_new_tokens,
                               do_sample=False, eos_token_id=stop, pad_token_id=tok.pad_token_id)[:, length:]
            for i, row in zip(chunk, g.tolist()):
                out[i] = _until_stop(row, stop)
    model.train(was_training)
    return out


def _until_stop(row: list[int], stop: Sequence[int]) -> list[int]:
    end = next((j + 1 for j, t in enumerate(row) if t in stop), len(row))
    return row[:end]


def greedy_texts(model: nn.Module, tok: PreTrainedTokenizerBase, problems: Sequence[Problem],
                 max_new_tokens: int = 96, batch_size: int = 256, backend: str = "course") -> list[str]:
    """Greedy completions as text (special tokens removed), one per problem; see :func:`greedy_ids`."""
    return tok.batch_decode(greedy_ids(model, tok, problems, max_new_tokens, batch_size, backend), skip_special_tokens=True)


@torch.no_grad()
def heldout_nll(model: nn.Module, tok: PreTrainedTokenizerBase, problems: Sequence[Problem], batch_size: int = 64,
                completions: Sequence[str] | None = None) -> float:
    """Mean NLL (nats) per assistant token of the problems' worked solutions (``p.messages(cot=True)``), or of
    ``completions`` (one per problem, e.g. a base model's own greedy answers) when given.

    Computed through the training forward pass (:class:`AlignedLogits`, batches from
    :func:`utils.lm.batches.sft_batch` with ``system=True``), so every PEFT method is scored as it trains. A
    rise after fine-tuning on another skill is forgetting, measurable for any model, also one whose accuracy
    on ``problems`` is ~0 to begin with. With ``completions`` it measures drift from that behaviour instead (how
    much less likely the model finds what, say, the base model answered), which learning the world's format
    lowers far less than it lowers the loss of worked solutions written in that format. Independent of ``batch_size`` up to float rounding.
    """
    problems = list(problems)
    if completions is not None and len(completions) != len(problems):
        raise ValueError(f"{len(completions)} completions for {len(problems)} problems")
    chats = [p.messages(cot=True) if completions is None else conversation(p, c) for p, c in
             zip(problems, completions if completions is not None else [None] * len(problems))]
    net = AlignedLogits(model)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for i in range(0, len(problems), batch_size):
        batch = sft_batch(tok, chats[i:i + batch_size], system=True)
        labels = batch.pop("labels").to(device)
        s, n = loss_sum_and_count(net(**{k: v.to(device) for k, v in batch.items()}).logits, labels)
        total, count = total + float(s), count + n
    model.train(was_training)
    return total / max(count, 1)


@torch.no_grad()
def generation_consistent(model: nn.Module, tok: PreTrainedTokenizerBase, problems: Sequence[Problem],
                          max_new_tokens: int = 24, backend: str = "generate") -> float:
    """How often cached greedy decoding agrees with the model's own full forward pass (the training path).

    Decodes greedily (``backend`` as in :func:`greedy_ids`), then runs the model once, without a cache,
    on prompt + completion and returns the fraction of generated tokens that are the argmax at their
    position (1.0 up to rare float ties for a correct decoder). A PEFT method whose virtual tokens or
    prefix get lost or duplicated in the KV cache scores far below 1.
    """
    problems = list(problems)
    completions = greedy_ids(model, tok, problems, max_new_tokens, backend=backend)
    prompts = build_prompts(tok, problems)
    device = next(model.parameters()).device
    agree = total = 0
    model.eval()
    for prompt, c_ids in zip(prompts, completions):
        p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        x = torch.tensor([p_ids + c_ids], device=device)
        pred = AlignedLogits(model)(input_ids=x, attention_mask=torch.ones_like(x)).logits[0, len(p_ids) - 1:-1].argmax(-1)
        agree += int((pred == torch.tensor(c_ids, device=device)).sum())
        total += len(c_ids)
    return agree / max(total, 1)


def probe_method(model_factory: Callable[[], PreTrainedModel], tok: PreTrainedTokenizerBase, method: str,
                 problems: Sequence[Problem], **kw: Any) -> dict[str, Any]:
    """Try one PEFT method end to end on a fresh model: wrap, one training step, cached generation.

    The trainable parameters are first moved well away from their (often exactly neutral) initial
    values, so that a method whose adapter is lost during decoding cannot pass. Returns a row
    ``{"method", "trainable", "train_step", "generation", "course_decoder", "error"}`` where
    ``generation`` / ``course_decoder`` are :func:`generation_consistent` scores of ``model.generate``
    and of the course's decoder. A failure is caught and its error message returned, never raised (the
    chapter shows which methods work with this stack).
    """
    row: dict[str, Any] = {"method": method, "trainable": None, "train_step": "—", "generation": "—",
                           "course_decoder": "—", "error": ""}
    stage = "wrap"
    try:
        pm = make_peft(model_factory(), method, **kw)
        row["trainable"] = sum(p.numel() for p in pm.parameters() if p.requires_grad)
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():  # move off the (often exactly neutral) initialisation so the checks can fail
            for p in pm.parameters():
                if p.requires_grad:
                    scale = 2.0 * max(float(p.abs().mean()), 0.05)
                    p.add_(torch.randn(p.shape, generator=gen).to(p.device, p.dtype) * scale)
        stage = "train step"
        batch = sft_batch(tok, [p.messages(cot=True) for p in problems], system=True)
        labels = batch.pop("labels")
        device = next(pm.parameters()).device
        batch, labels = {k: v.to(device) for k, v in batch.items()}, labels.to(device)
        loss = mle_loss(AlignedLogits(pm)(**batch).logits, labels)
        loss.backward()
        got_grad = any(p.grad is not None and p.grad.abs().sum() > 0 for p in pm.parameters() if p.requires_grad)
        row["train_step"] = "ok" if got_grad and torch.isfinite(loss) else "no gradient"
        stage = "generation"
        row["generation"] = round(generation_consistent(pm, tok, problems, backend="generate"), 3)
        stage = "course decoder"
        row["course_decoder"] = round(generation_consistent(pm, tok, problems, backend="course"), 3)
    except Exception as e:  # noqa: BLE001 - reported, not hidden
        row["error"] = f"{stage}: " + traceback.format_exception_only(type(e), e)[-1].strip()[:200]
        key = {"wrap": "train_step", "train step": "train_step", "generation": "generation"}.get(stage, "course_decoder")
        row[key] = "failed"
    return row
