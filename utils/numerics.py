"""How the course compares two computations of the same quantity (a from-scratch loss and a library's, one
batch and four micro-batches): by the **relative** size of their difference.

Two correct float32 computations that add the same numbers in another order (other kernels, AVX2 vs AVX-512,
1 or 2 threads) differ by rounding, ~1e-7 of the quantity's size. An absolute tolerance (``atol=1e-6``) is
therefore too strict for large values and meaningless for tiny ones, and it changes with the CPU. A relative
error of a whole gradient (its norm) does not. Compare the quantity the claim is about - the loss, the gradient
- not something an optimizer step derived from it (Adam's first step is ~``lr * sign(g)``, which turns rounding
noise on near-zero gradients into ``lr``-sized weight differences).
"""
from __future__ import annotations

from typing import Sequence, Union

import torch

Tensors = Union[torch.Tensor, Sequence[torch.Tensor]]


def _flat(x: Tensors) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().reshape(-1).double().cpu()
    return torch.cat([t.detach().reshape(-1).double().cpu() for t in x])


def rel_error(a: Tensors, b: Tensors) -> float:
    """``||a - b|| / ||b||`` (Euclidean norms; ``b`` is the reference). ``a``, ``b``: tensors of one shape, or
    equal-length sequences of such tensors (e.g. the gradients of every parameter). 0 when both are zero."""
    fa, fb = _flat(a), _flat(b)
    if fa.shape != fb.shape:
        raise ValueError(f"shapes differ: {tuple(fa.shape)} vs {tuple(fb.shape)}")
    diff, ref = float((fa - fb).norm()), float(fb.norm())
    if ref == 0.0:
        return 0.0 if diff == 0.0 else float("inf")
    return diff / ref


def grads(model: torch.nn.Module) -> list[torch.Tensor]:
    """The ``.grad`` of every parameter that has one (copies), in parameter order."""
    return [p.grad.detach().clone() for p in model.parameters() if p.grad is not None]
