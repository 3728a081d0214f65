"""Reference solutions to chapter 04's exercises (spoilers!). The test-suite checks that each passes its grader."""
from __future__ import annotations

import math
from typing import Any, Callable


def equal_scale_rank(alpha_lora: float, alpha_rs: float) -> float:
    """04.1: ``alpha_lora / r == alpha_rs / sqrt(r)``  <=>  ``sqrt(r) = alpha_lora / alpha_rs``  <=>  ``r = (alpha_lora / alpha_rs)**2``."""
    return (alpha_lora / alpha_rs) ** 2


def lora_trainable_params(shapes, r: int) -> int:
    """04.2: ``sum r * (in + out)`` over the adapted layers' ``(out, in)`` shapes."""
    return sum(r * (o + i) for o, i in shapes)


def lora_state_bytes(shapes, r: int, bytes_per_value: int = 4) -> int:
    """04.3: each trainable parameter holds its value, its gradient and AdamW's two moments (``exp_avg``,
    ``exp_avg_sq``, in the parameter's dtype): 4 values of ``bytes_per_value`` bytes."""
    return 4 * bytes_per_value * lora_trainable_params(shapes, r)


def roundtrip_error(W, delta, dtype):
    """04.4: store ``W`` in ``dtype``, merge (``W + dW``, rounded to ``dtype``), unmerge (``- dW``, rounded again);
    the largest absolute difference from the stored ``W``."""
    w, d = W.to(dtype), delta.to(dtype)
    back = (w + d) - d
    return float((back.float() - w.float()).abs().max())


# ---------------------------------------------------------------- typical wrong answers (each must fail its grader)
def _fp32_roundtrip(W, d, dtype):  # merged in fp32: no rounding at all
    return float(((W + d) - d - W).abs().max())


def _vs_fp32_w(W, d, dtype):  # compares with the fp32 W: counts the initial cast as "unmerge error"
    w, dd = W.to(dtype), d.to(dtype)
    return float((((w + dd) - dd).float() - W).abs().max())


def _always_half(W, d, dtype):  # ignores the dtype argument
    import torch

    return roundtrip_error(W, d, torch.float16)


def _in_place(W, d, dtype):  # right number, but modifies W
    W.copy_(W.to(dtype).float())
    return roundtrip_error(W, d, dtype)


WRONG: dict[str, list[Callable[..., Any]]] = {
    # the ratio without the square; its square root; the ratio upside down
    "04.1": [lambda a, b: a / b, lambda a, b: math.sqrt(a / b), lambda a, b: (b / a) ** 2],
    # a full-rank r*in*out; counting only A
    "04.2": [lambda shapes, r: sum(r * o * i for o, i in shapes), lambda shapes, r: sum(r * i for o, i in shapes)],
    # values not bytes; forgetting Adam's moments; one moment only; SGD-like (value + gradient)
    "04.3": [
        lambda s, r, b=4: 4 * lora_trainable_params(s, r),
        lambda s, r, b=4: 2 * b * lora_trainable_params(s, r),
        lambda s, r, b=4: 3 * b * lora_trainable_params(s, r),
        lambda s, r, b=4: 4 * b * sum(r * o * i for o, i in s),
    ],
    "04.4": [_fp32_roundtrip, _vs_fp32_w, _always_half, _in_place],
}
