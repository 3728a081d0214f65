"""Reference solutions to chapter 04's exercises (spoilers!). The test-suite checks that each passes its grader."""
from __future__ import annotations


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
