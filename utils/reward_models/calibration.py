"""How far to trust a reward model's comparisons: calibration against the annotator's own probabilities, and
an ensemble's disagreement as an uncertainty signal (survey §3.1.1, §3.1.5)."""
from __future__ import annotations

from typing import Sequence

import torch

from ..world.preferences import PreferencePair


def annotator_probability(pairs: Sequence[PreferencePair], tau: float) -> torch.Tensor:
    """``[N]`` the Bradley-Terry annotator's true ``P(chosen > rejected) = sigmoid((r*_w - r*_l) / tau)``."""
    if tau <= 0:
        raise ValueError("tau must be positive")
    return torch.tensor([(p.chosen_reward - p.rejected_reward) / tau for p in pairs], dtype=torch.float32).sigmoid()


def calibration_curve(pred: torch.Tensor, truth: torch.Tensor, n_bins: int = 10) -> dict[str, list[float]]:
    """Reliability diagram data: ``pred`` ``[N]`` predicted probabilities binned into ``n_bins`` equal-width bins
    of [0, 1]; per non-empty bin the mean prediction, the mean of ``truth`` ``[N]`` (true probabilities or 0/1
    outcomes) and the count. Keys ``"pred"``, ``"truth"``, ``"count"``."""
    if pred.shape != truth.shape or pred.dim() != 1:
        raise ValueError(f"pred and truth must be [N] of one shape, got {tuple(pred.shape)} and {tuple(truth.shape)}")
    if n_bins < 1:
        raise ValueError("n_bins must be >= 1")
    b = (pred.float() * n_bins).long().clamp(0, n_bins - 1)
    out: dict[str, list[float]] = {"pred": [], "truth": [], "count": []}
    for i in range(n_bins):
        m = b == i
        if m.any():
            out["pred"].append(float(pred[m].float().mean()))
            out["truth"].append(float(truth[m].float().mean()))
            out["count"].append(float(m.sum()))
    return out


def expected_calibration_error(pred: torch.Tensor, truth: torch.Tensor, n_bins: int = 10) -> float:
    """``sum_b (n_b / N) |mean pred_b - mean truth_b|`` over the bins of :func:`calibration_curve`."""
    c = calibration_curve(pred, truth, n_bins)
    n = sum(c["count"])
    return sum(k / n * abs(p - t) for p, t, k in zip(c["pred"], c["truth"], c["count"])) if n else 0.0


def error_rate_by_disagreement(margins: torch.Tensor, pairs: Sequence[PreferencePair], n_groups: int = 3,
                               measure: str = "std") -> dict[str, list[float]]:
    """Split pairs into ``n_groups`` equal groups by an ensemble's disagreement on the predicted margins
    ``margins`` ``[M, N]`` and return, per group from least to most disagreement, the mean disagreement
    (``"std"``) and the error rate of the ensemble's mean margin by the true reward (``"error"``; ties skipped).

    ``measure``: ``"std"`` the std over models; ``"relative"`` that std divided by the mean margin's size
    (``std / |mean|``: members that agree on a margin near 0 are *not* sure of its sign)."""
    if margins.dim() != 2 or margins.shape[0] < 2 or margins.shape[1] != len(pairs):
        raise ValueError(f"margins must be [M >= 2, N = {len(pairs)}], got {tuple(margins.shape)}")
    if measure not in ("std", "relative"):
        raise ValueError(f"measure must be 'std' or 'relative', got {measure!r}")
    truth = torch.tensor([p.chosen_reward - p.rejected_reward for p in pairs])
    keep = truth != 0
    spread = margins.std(0)
    if measure == "relative":
        spread = spread / margins.mean(0).abs().clamp(min=1e-8)
    std, wrong = spread[keep], (margins.mean(0) * truth.sign() <= 0)[keep].float()
    order = std.argsort()
    out: dict[str, list[float]] = {"std": [], "error": []}
    for g in order.tensor_split(n_groups):
        out["std"].append(float(std[g].mean()) if len(g) else float("nan"))
        out["error"].append(float(wrong[g].mean()) if len(g) else float("nan"))
    return out
