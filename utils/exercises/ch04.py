"""Graders of chapter 04's exercises: each test takes the student's function and raises ``AssertionError``
with a helpful message on failure (see :func:`utils.exercises.grade`)."""
from __future__ import annotations

from typing import Any, Callable

Test = Callable[[Callable[..., Any]], None]


# ---------------------------------------------------------------- 04.1-04.3: LoRA (chapter 04)
def _lora_ref(x, W, b, A, B, alpha):
    return x @ W.T + (b if b is not None else 0) + (alpha / A.shape[0]) * (x @ A.T) @ B.T


def _lora_case(seed: int, out_f: int = 6, in_f: int = 5, r: int = 3):
    import torch

    g = torch.Generator().manual_seed(seed)
    return (torch.randn(2, 4, in_f, generator=g), torch.randn(out_f, in_f, generator=g), torch.randn(out_f, generator=g),
            torch.randn(r, in_f, generator=g), torch.randn(out_f, r, generator=g))


def _t_lora_zero_b(fn: Callable) -> None:
    """with B = 0 the layer is exactly the frozen linear layer x W^T + b"""
    import torch

    x, W, b, A, B = _lora_case(0)
    got = fn(x, W, b, A, torch.zeros_like(B), 16.0)
    assert tuple(got.shape) == (2, 4, 6), f"output shape should be [2, 4, 6] for x [2, 4, 5] and W [6, 5], got {tuple(got.shape)}"
    assert torch.allclose(got, x @ W.T + b, atol=1e-5), "with B = 0 the output must equal x @ W.T + b"


def _t_lora_value(fn: Callable) -> None:
    """adds (alpha / r) * x A^T B^T, for several ranks, alphas and non-square layers"""
    import torch

    for seed, (out_f, in_f, r, alpha) in enumerate([(6, 5, 3, 6.0), (4, 9, 1, 2.0), (7, 7, 4, 16.0)]):
        x, W, b, A, B = _lora_case(seed, out_f, in_f, r)
        got, want = fn(x, W, b, A, B, alpha), _lora_ref(x, W, b, A, B, alpha)
        if not torch.allclose(got, want, atol=1e-4):
            no_scale = _lora_ref(x, W, b, A, B, float(r))
            hint = " (did you forget the alpha / r scaling?)" if torch.allclose(got, no_scale, atol=1e-4) else ""
            hint = hint or (" (the scale is alpha / r, not alpha)" if torch.allclose(got, _lora_ref(x, W, b, A, B, alpha * r), atol=1e-4) else "")
            raise AssertionError(f"out={out_f}, in={in_f}, r={r}, alpha={alpha}: max error {(got - want).abs().max():.3g}{hint}")


def _t_lora_no_bias(fn: Callable) -> None:
    """works without a bias (b=None), as in Llama's projections"""
    import torch

    x, W, _, A, B = _lora_case(3)
    assert torch.allclose(fn(x, W, None, A, B, 4.0), _lora_ref(x, W, None, A, B, 4.0), atol=1e-4), "wrong output with b=None"


def _t_count_small(fn: Callable) -> None:
    """r * (in + out) per layer, summed: hand-checked cases"""
    cases = [([(128, 128)], 8, 2048), ([(512, 128), (128, 512)], 4, 5120), ([(10, 3), (3, 10), (7, 7)], 1, 40), ([], 8, 0)]
    for shapes, r, want in cases:
        got = fn(shapes, r)
        assert got == want, f"shapes {shapes}, r={r}: expected {want}, got {got}"


def _t_count_llama(fn: Callable) -> None:
    """matches the adapters actually injected into every linear layer of a small Llama"""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from ..lm.lora import inject_lora, linear_shapes
    from ..lm.models import count_parameters

    cfg = LlamaConfig(vocab_size=40, hidden_size=24, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=32)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    shapes = linear_shapes(model, targets)
    for r in (1, 3):
        m = LlamaForCausalLM(cfg)
        inject_lora(m, targets, r=r, alpha=8)
        want = count_parameters(m, trainable_only=True)
        got = fn(shapes, r)
        assert got == want, f"r={r}: the injected adapters have {want} parameters, your count is {got} (shapes {shapes})"


def _t_merge(fn: Callable) -> None:
    """W + (alpha / r) B A: same shape as W, and the merged layer computes the LoRA forward"""
    import torch

    for seed, (out_f, in_f, r, alpha) in enumerate([(6, 5, 3, 6.0), (3, 8, 2, 16.0)]):
        x, W, b, A, B = _lora_case(seed, out_f, in_f, r)
        W2 = fn(W, A, B, alpha)
        assert tuple(W2.shape) == tuple(W.shape), f"merged weight must have W's shape {tuple(W.shape)}, got {tuple(W2.shape)}"
        assert torch.allclose(x @ W2.T + b, _lora_ref(x, W, b, A, B, alpha), atol=1e-4), \
            f"out={out_f}, in={in_f}, r={r}: x @ merged.T + b differs from the LoRA forward"
        assert torch.equal(W, _lora_case(seed, out_f, in_f, r)[1]), "don't modify W in place"


EXERCISES: dict[str, tuple[str, list[Test]]] = {
    "04.1": ("the LoRA forward pass", [_t_lora_zero_b, _t_lora_value, _t_lora_no_bias]),
    "04.2": ("counting LoRA's trainable parameters", [_t_count_small, _t_count_llama]),
    "04.3": ("merging a LoRA update into the weight", [_t_merge]),
}
