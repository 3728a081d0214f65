"""Graders of chapter 04's exercises: each test takes the student's function and raises ``AssertionError``
with a helpful message on failure (see :func:`utils.exercises.grade`)."""
from __future__ import annotations

import math
from typing import Any, Callable

from .grader import Exercise

Test = Callable[[Callable[..., Any]], None]


# ---------------------------------------------------------------- 04.1: the rank at which LoRA's and rsLoRA's scales agree
def _t_equal_rank_cases(fn: Callable) -> None:
    """hand-checked cases: alpha_lora / r == alpha_rs / sqrt(r)"""
    for a_lora, a_rs, want in [(16, 8, 4.0), (16, 16, 1.0), (32, 4, 64.0), (6, 4, 2.25), (10, 5, 4.0)]:
        got = float(fn(a_lora, a_rs))
        assert math.isclose(got, want, rel_tol=1e-9), f"alpha_lora={a_lora}, alpha_rs={a_rs}: expected r = {want:g}, got {got:g}"


def _t_equal_rank_property(fn: Callable) -> None:
    """at the returned rank both scales are equal; above it, classic LoRA's scale is the smaller one"""
    for a_lora, a_rs in [(24.0, 3.0), (7.0, 2.0), (100.0, 1.0)]:
        r = float(fn(a_lora, a_rs))
        assert r > 0, f"alpha_lora={a_lora}, alpha_rs={a_rs}: a rank must be positive, got {r:g}"
        lora, rs = a_lora / r, a_rs / math.sqrt(r)
        assert math.isclose(lora, rs, rel_tol=1e-9), \
            f"alpha_lora={a_lora}, alpha_rs={a_rs}, r={r:g}: alpha_lora/r = {lora:.4g} but alpha_rs/sqrt(r) = {rs:.4g}"
        assert a_lora / (4 * r) < a_rs / math.sqrt(4 * r), "above that rank alpha/r should fall below alpha/sqrt(r)"


# ---------------------------------------------------------------- 04.2: counting LoRA's trainable parameters
def _t_count_small(fn: Callable) -> None:
    """r * (in + out) per layer, summed: hand-checked cases"""
    cases = [([(128, 128)], 8, 2048), ([(512, 128), (128, 512)], 4, 5120), ([(10, 3), (3, 10), (7, 7)], 1, 40), ([], 8, 0)]
    for shapes, r, want in cases:
        got = fn(shapes, r)
        assert got == want, f"shapes {shapes}, r={r}: expected {want}, got {got}"


def _small_llama(seed: int = 0, **over: Any):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = dict(vocab_size=40, hidden_size=24, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=2, max_position_embeddings=32)
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(**{**cfg, **over}))


_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _t_count_llama(fn: Callable) -> None:
    """matches the adapters actually injected into every linear layer of a small Llama"""
    from ..lm.lora import inject_lora, linear_shapes
    from ..lm.models import count_parameters

    shapes = linear_shapes(_small_llama(), _TARGETS)
    for r in (1, 3):
        m = _small_llama()
        inject_lora(m, _TARGETS, r=r, alpha=8)
        want = count_parameters(m, trainable_only=True)
        got = fn(shapes, r)
        assert got == want, f"r={r}: the injected adapters have {want} parameters, your count is {got} (shapes {shapes})"


# ---------------------------------------------------------------- 04.3: the bytes of LoRA's trainable state under AdamW
def _t_state_bytes_cases(fn: Callable) -> None:
    """value + gradient + two AdamW moments per trainable parameter: hand-checked cases"""
    cases = [([(128, 128)], 8, 4, 2048 * 16), ([(512, 128), (128, 512)], 4, 2, 5120 * 8), ([(10, 3)], 1, 4, 13 * 16), ([], 8, 4, 0)]
    for shapes, r, nbytes, want in cases:
        got = int(fn(shapes, r, nbytes))
        hint = ""
        if got == want // 2:
            hint = " (you count 2 values per parameter: which two are missing?)"
        elif got == want * 3 // 4:
            hint = " (3 values per parameter: value, gradient and *two* Adam moments make 4)"
        elif got == want // nbytes:
            hint = " (that is a number of values, not of bytes)"
        assert got == want, f"shapes {shapes}, r={r}, {nbytes} bytes per value: expected {want} bytes, got {got}{hint}"


def _t_state_bytes_measured(fn: Callable) -> None:
    """equals what one measured AdamW step of a LoRA-adapted Llama holds for the adapters (fp32 and bf16)"""
    import torch

    from ..lm.lora import inject_lora, linear_shapes
    from ..sft.peft import training_memory

    ids = torch.randint(0, 40, (2, 9), generator=torch.Generator().manual_seed(0))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}
    for r, dtype in [(2, torch.float32), (4, torch.bfloat16)]:
        m = _small_llama().to(dtype)
        inject_lora(m, _TARGETS, r=r, alpha=8)
        mem = training_memory(m, batch)
        nbytes = torch.finfo(dtype).bits // 8
        want = mem.trainable * nbytes + mem.grads + mem.optimizer
        got = int(fn(linear_shapes(m, _TARGETS), r, nbytes))
        assert got == want, f"r={r}, {dtype}: one measured AdamW step holds {want} bytes for the adapters, you predict {got}"


# ---------------------------------------------------------------- 04.4: merge, then unmerge, in half precision
def _roundtrip_ref(W, delta, dtype):
    w = W.to(dtype)
    d = delta.to(dtype)
    back = (w + d) - d
    return float((back.float() - w.float()).abs().max())


def _case(seed: int, scale_w: float = 1.0, scale_d: float = 0.3):
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.randn(16, 24, generator=g) * scale_w, torch.randn(16, 24, generator=g) * scale_d


def _t_roundtrip_fp16(fn: Callable) -> None:
    """fp16: the error of W -> W + dW -> (W + dW) - dW, every value stored in fp16"""
    import torch

    for seed, (sw, sd) in enumerate([(1.0, 0.3), (0.05, 0.05), (0.02, 0.2)]):
        W, delta = _case(seed, sw, sd)
        want = _roundtrip_ref(W, delta, torch.float16)
        got = float(fn(W.clone(), delta.clone(), torch.float16))
        assert want > 0, "internal: this case should leave an error"
        hint = " (computed in fp32 the round trip leaves ~no error: store the merged weight in fp16)" if got < want / 100 else ""
        hint = hint or (" (compare with W as stored in fp16, the weight you started from, not the fp32 one)"
                        if math.isclose(got, float(((W.half() + delta.half()) - delta.half()).float().sub(W).abs().max()),
                                        rel_tol=1e-6) else "")
        assert math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-12), \
            f"W ~ {sw} N(0,1), dW ~ {sd} N(0,1): expected a max error of {want:.3g}, got {got:.3g}{hint}"


def _t_roundtrip_bf16(fn: Callable) -> None:
    """bf16 as well (the dtype is an argument, not always fp16)"""
    import torch

    W, delta = _case(7, 0.05, 0.05)
    want = _roundtrip_ref(W, delta, torch.bfloat16)
    got = float(fn(W.clone(), delta.clone(), torch.bfloat16))
    assert math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-12), f"bf16: expected a max error of {want:.3g}, got {got:.3g}"


def _t_roundtrip_zero(fn: Callable) -> None:
    """no error for dW = 0, and W is left unchanged"""
    import torch

    W, _ = _case(3)
    W0 = W.clone()
    got = float(fn(W, torch.zeros_like(W), torch.float16))
    assert got == 0.0, f"with dW = 0 merging and unmerging changes nothing, got an error of {got:.3g}"
    assert torch.equal(W, W0), "don't modify W in place"


EXERCISES: dict[str, Exercise] = {
    "04.1": Exercise("the rank at which alpha/r and alpha/sqrt(r) agree", [_t_equal_rank_cases, _t_equal_rank_property],
                     "equal_scale_rank"),
    "04.2": Exercise("counting LoRA's trainable parameters", [_t_count_small, _t_count_llama], "lora_trainable_params"),
    "04.3": Exercise("the bytes of LoRA's trainable state under AdamW", [_t_state_bytes_cases, _t_state_bytes_measured],
                     "lora_state_bytes"),
    "04.4": Exercise("merge then unmerge in half precision: the error left", [_t_roundtrip_fp16, _t_roundtrip_bf16, _t_roundtrip_zero],
                     "roundtrip_error"),
}
