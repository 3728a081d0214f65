"""LoRA from scratch (Hu et al. 2021; survey §4.7): a frozen linear layer plus a trainable low-rank update.

A linear layer computes ``y = x W^T (+ b)`` with ``W`` of shape ``[out, in]``. LoRA freezes ``W`` and learns

    y = x W^T + (alpha / r) * x A^T B^T          A: [r, in] (random),  B: [out, r] (zeros)

so the effective weight is ``W + (alpha / r) B A``, a rank-``r`` change trained with ``r * (in + out)``
parameters instead of ``in * out``. ``B = 0`` at the start, so the wrapped model computes exactly what the
base model computes until the first optimizer step. After training, the update can be *merged* into ``W``
(no extra cost at inference) and *unmerged* again.

**The scale.** Hu et al. use ``alpha / r`` with ``alpha`` fixed, so the update's scale falls as the rank
grows (16 at ``r = 1``, 1 at ``r = 16`` for ``alpha = 16``): a rank sweep at one learning rate then also
sweeps the effective step size. rsLoRA (Kalajdzievski 2023) argues for ``alpha / sqrt(r)``, which keeps
the size of the update's effect on the output of the same order at every rank; ``rslora=True`` selects it
(PEFT: ``LoraConfig(use_rslora=True)``). :func:`lora_scale` computes either.

The initialisation matches PEFT's default (``init_lora_weights=True``): ``A`` Kaiming-uniform with
``a = sqrt(5)`` (like ``nn.Linear``), ``B`` zeros, ``scaling = alpha / r`` (``alpha / sqrt(r)`` with
``rslora``). :func:`copy_lora_to_peft` copies ``A`` and ``B`` into a PEFT ``LoraModel`` so the two implementations can be compared exactly.

Shapes: ``...`` any leading dimensions (e.g. ``[B, L]``), ``in``/``out`` the layer's features, ``r`` the rank.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import torch
from torch import nn


def lora_scale(alpha: float, r: int, rslora: bool = False) -> float:
    """The factor in front of ``B A``: ``alpha / r`` (LoRA) or ``alpha / sqrt(r)`` (rsLoRA), as PEFT computes it."""
    if r < 1:
        raise ValueError(f"rank must be >= 1, got {r}")
    return float(alpha) / (math.sqrt(r) if rslora else r)


class LoRALinear(nn.Module):
    """``base(x) + scaling * dropout(x) @ A^T @ B^T`` around a frozen ``nn.Linear``, ``scaling = alpha / r``
    (or ``alpha / sqrt(r)`` with ``rslora``).

    Args:
        base: the layer to adapt; its parameters are frozen (``requires_grad=False``).
        r: the rank (>= 1).
        alpha: the scale numerator; the update is multiplied by ``alpha / r``.
        dropout: dropout on the adapter's input only (0 disables it).
        generator: optional ``torch.Generator`` for ``A``'s initialisation (reproducible injection).
        rslora: scale by ``alpha / sqrt(r)`` (rsLoRA) instead of ``alpha / r``.

    Attributes:
        lora_A: ``[r, in]`` trainable, Kaiming-uniform.
        lora_B: ``[out, r]`` trainable, zeros.
        scaling: ``alpha / r``, or ``alpha / sqrt(r)`` with ``rslora``.
        merged: whether ``(alpha / r) B A`` is currently added into ``base.weight``.
    """

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0,
                 generator: torch.Generator | None = None, rslora: bool = False) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps nn.Linear, got {type(base).__name__}")
        if r < 1:
            raise ValueError(f"rank must be >= 1, got {r}")
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.r, self.alpha, self.rslora = int(r), float(alpha), bool(rslora)
        self.scaling = lora_scale(self.alpha, self.r, self.rslora)
        w = base.weight
        self.lora_A = nn.Parameter(torch.empty(self.r, base.in_features, device=w.device, dtype=w.dtype))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, self.r, device=w.device, dtype=w.dtype))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False
        self.reset_parameters(generator)

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """``A`` ~ Kaiming-uniform(a=sqrt(5)) i.e. U(-1/sqrt(in), 1/sqrt(in)); ``B`` = 0 (as PEFT does)."""
        bound = 1.0 / math.sqrt(self.in_features)
        a = torch.empty(self.lora_A.shape, dtype=torch.float32).uniform_(-bound, bound, generator=generator)
        self.lora_A.copy_(a)
        self.lora_B.zero_()

    def delta_weight(self) -> torch.Tensor:
        """The update ``scaling * B A``: ``[out, in]``, same layout as ``base.weight``."""
        return (self.lora_B @ self.lora_A) * self.scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[..., in]`` -> ``[..., out]``."""
        y = self.base(x)
        if self.merged:
            return y
        z = self.dropout(x).to(self.lora_A.dtype) @ self.lora_A.T   # [..., r]: the low-rank "bottleneck"
        return y + (z @ self.lora_B.T).to(y.dtype) * self.scaling   # [..., out]

    @torch.no_grad()
    def merge(self) -> None:
        """Add the update into ``base.weight`` (then ``forward`` is a plain linear layer). Idempotent."""
        if not self.merged:
            self.base.weight += self.delta_weight().to(self.base.weight.dtype)
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Subtract the update from ``base.weight`` again (restores it up to float rounding). Idempotent."""
        if self.merged:
            self.base.weight -= self.delta_weight().to(self.base.weight.dtype)
            self.merged = False

    def extra_repr(self) -> str:
        rs = ", rslora" if self.rslora else ""
        return f"in={self.in_features}, out={self.out_features}, r={self.r}, alpha={self.alpha:g}{rs}, merged={self.merged}"


def _matches(name: str, targets: Sequence[str]) -> bool:
    """PEFT's rule for a list of target names: the module's name is a target or ends with ``.target``."""
    return any(name == t or name.endswith("." + t) for t in targets)


def inject_lora(model: nn.Module, target_modules: Sequence[str], r: int, alpha: float,
                dropout: float = 0.0, seed: int = 0, freeze_base: bool = True, rslora: bool = False) -> list[str]:
    """Replace every ``nn.Linear`` whose name ends with one of ``target_modules`` by a :class:`LoRALinear`.

    With ``freeze_base`` every other parameter of ``model`` is frozen too, so only ``A`` and ``B`` train.
    Returns the qualified names of the wrapped layers (e.g. ``"model.layers.0.self_attn.q_proj"``), in
    module order. ``rslora`` scales by ``alpha / sqrt(r)`` (see :func:`lora_scale`). Raises ``ValueError`` when nothing matches (a typo in a target name should not silently
    train nothing).
    """
    if freeze_base:
        for p in model.parameters():
            p.requires_grad_(False)
    gen = torch.Generator().manual_seed(seed)
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and _matches(n, target_modules)]
    if not names:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)})
        raise ValueError(f"no nn.Linear matches {list(target_modules)}; linear layer names here: {linear}")
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(getattr(parent, child), r, alpha, dropout, generator=gen, rslora=rslora))
    return names


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    """All :class:`LoRALinear` modules of ``model`` by qualified name."""
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


def merge_lora(model: nn.Module) -> int:
    """Merge every LoRA layer into its base weight; returns how many were merged."""
    layers = lora_layers(model)
    for m in layers.values():
        m.merge()
    return len(layers)


def unmerge_lora(model: nn.Module) -> int:
    """Undo :func:`merge_lora`; returns how many layers were unmerged."""
    layers = lora_layers(model)
    for m in layers.values():
        m.unmerge()
    return len(layers)


def remove_lora(model: nn.Module, merge: bool = True) -> nn.Module:
    """Put the plain ``nn.Linear`` layers back (merging the updates first when ``merge``); returns ``model``."""
    for name, m in list(lora_layers(model).items()):
        if merge:
            m.merge()
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, m.base)
    return model


def lora_param_count(shapes: Iterable[tuple[int, int]], r: int) -> int:
    """Trainable parameters of LoRA rank ``r`` on linear layers of the given ``(out, in)`` shapes:
    ``sum r * (in + out)`` (``A`` is ``[r, in]``, ``B`` is ``[out, r]``)."""
    return sum(r * (int(o) + int(i)) for o, i in shapes)


def linear_shapes(model: nn.Module, target_modules: Sequence[str]) -> list[tuple[int, int]]:
    """``(out, in)`` of every ``nn.Linear`` (or already wrapped layer) matching ``target_modules``."""
    out = []
    for n, m in model.named_modules():
        if isinstance(m, LoRALinear) and _matches(n, target_modules):
            out.append((m.out_features, m.in_features))
        elif isinstance(m, nn.Linear) and _matches(n, target_modules) and not n.endswith(".base"):
            out.append((m.out_features, m.in_features))
    return out


@torch.no_grad()
def copy_lora_to_peft(model: nn.Module, peft_model: nn.Module, adapter: str = "default") -> int:
    """Copy every ``A``/``B`` of a from-scratch model into the matching PEFT LoRA layers.

    PEFT stores ``lora_A[adapter]`` as an ``nn.Linear(in, r)`` (weight ``[r, in]``) and ``lora_B[adapter]``
    as ``nn.Linear(r, out)`` (weight ``[out, r]``): the same tensors as ours. ``peft_model`` must be
    ``get_peft_model(copy_of_the_same_base, LoraConfig(...))``; names are matched under
    ``peft_model.base_model.model``. Returns the number of layers copied; raises if a layer is missing or
    PEFT's scaling differs from ours.
    """
    inner = peft_model.base_model.model if hasattr(peft_model, "base_model") else peft_model
    layers = lora_layers(model)
    for name, m in layers.items():
        target = inner.get_submodule(name)
        if not hasattr(target, "lora_A") or adapter not in target.lora_A:
            raise ValueError(f"PEFT model has no LoRA adapter {adapter!r} at {name}")
        if abs(target.scaling[adapter] - m.scaling) > 1e-12:
            raise ValueError(f"scaling differs at {name}: PEFT {target.scaling[adapter]} vs ours {m.scaling}")
        target.lora_A[adapter].weight.copy_(m.lora_A)
        target.lora_B[adapter].weight.copy_(m.lora_B)
    return len(layers)
