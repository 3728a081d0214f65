"""Evaluation: greedy accuracy, unbiased pass@k, maj@k, per-level tables and per-step correctness.

pass@k (Chen et al. 2021): with ``n`` samples of which ``c`` are correct, the probability that at
least one of ``k`` samples drawn without replacement is correct is ``1 - C(n-c, k) / C(n, k)``.
Averaging this over problems is unbiased, unlike "fraction of problems solved within the first k".
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from math import comb
from typing import Sequence

import numpy as np
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..world import Problem, get_family, label_steps, parse_completion, score
from .generation import generate_texts


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimate of pass@k from ``n`` samples with ``c`` correct (needs ``0 <= c <= n``, ``1 <= k <= n``)."""
    if not (0 <= c <= n) or not (1 <= k <= n):
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def normalize_answer(answer: str | None) -> str | None:
    """Answer key for voting: whitespace removed; ``None`` stays ``None`` (no vote)."""
    return None if answer is None else "".join(answer.split())


def majority_correct(answers: Sequence[str | None], correct: Sequence[bool]) -> bool:
    """Self-consistency: is the most frequent (non-empty) answer a correct one? Ties: first seen wins."""
    keys = [normalize_answer(a) for a in answers]
    votes = Counter(k for k in keys if k)
    if not votes:
        return False
    best = max(votes.values())
    winner = next(k for k in keys if k and votes[k] == best)
    return any(c for k, c in zip(keys, correct) if k == winner)


def maj_at_k(answers: Sequence[str | None], correct: Sequence[bool], k: int) -> float:
    """maj@k averaged over the ``len(answers) // k`` disjoint groups of ``k`` samples."""
    n = len(answers)
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= {n}, got {k}")
    groups = [(answers[i : i + k], correct[i : i + k]) for i in range(0, n - k + 1, k)]
    return float(np.mean([majority_correct(a, c) for a, c in groups]))


def step_stats(problem: Problem, completion: str) -> dict[str, float] | None:
    """Per-step correctness of one completion, or ``None`` for families without a step labeller.

    ``valid``: fraction of steps that are right in themselves (Countdown: arithmetic on available values;
    addition: the reference column step); ``reachable``: fraction after which the problem is still solvable
    (Countdown; ``nan`` for families without that notion).
    """
    labels = label_steps(problem, completion)
    if labels is None:
        return None
    if not get_family(problem.family).reachability:
        reachable = float("nan")
    else:
        reachable = float(np.mean([bool(lab.reachable) for lab in labels])) if labels else 0.0
    return {"steps": len(labels), "valid": float(np.mean([lab.valid for lab in labels])) if labels else 0.0,
            "reachable": reachable}


@dataclass
class EvalResult:
    """What :func:`evaluate` measured.

    Attributes:
        problems: the evaluated problems.
        greedy: ``[P]`` 0/1 correctness of the greedy completion (empty if not run).
        greedy_texts: the greedy completions.
        samples: ``[P, n]`` 0/1 correctness of sampled completions (empty if ``n == 0``).
        sample_texts: ``P`` lists of ``n`` sampled completions.
        ks: the k values reported.
    """

    problems: list[Problem]
    greedy: np.ndarray
    greedy_texts: list[str]
    samples: np.ndarray
    sample_texts: list[list[str]]
    ks: tuple[int, ...] = (1, 4, 16)
    rows: list[dict] = field(default_factory=list)

    def pass_at(self, k: int, mask: np.ndarray | None = None) -> float:
        """Mean unbiased pass@k over problems (optionally a boolean mask over problems)."""
        idx = np.arange(len(self.problems)) if mask is None else np.flatnonzero(mask)
        n = self.samples.shape[1]
        return float(np.mean([pass_at_k(n, int(self.samples[i].sum()), k) for i in idx])) if len(idx) else float("nan")

    def table(self) -> list[dict]:
        """One row per (family, level): greedy accuracy, format rate, pass@k, maj@k, step validity."""
        rows = []
        keys = sorted({(p.family, p.level) for p in self.problems})
        for fam, lvl in keys:
            m = np.array([p.family == fam and p.level == lvl for p in self.problems])
            idx = np.flatnonzero(m)
            row: dict = {"family": fam, "level": lvl, "n": int(m.sum())}
            if len(self.greedy):
                row["greedy"] = float(self.greedy[m].mean())
                row["format"] = float(np.mean([parse_completion(self.greedy_texts[i]).well_formed for i in idx]))
                steps = [step_stats(self.problems[i], self.greedy_texts[i]) for i in idx]
                steps = [s for s in steps if s is not None]
                if steps:
                    row["step_valid"] = float(np.mean([s["valid"] for s in steps]))
                    if get_family(fam).reachability:
                        row["step_reachable"] = float(np.mean([s["reachable"] for s in steps]))
            if self.samples.size:
                n = self.samples.shape[1]
                for k in self.ks:
                    if k <= n:
                        row[f"pass@{k}"] = self.pass_at(k, m)
                for k in self.ks:
                    if 1 < k <= n:
                        row[f"maj@{k}"] = float(np.mean([
                            maj_at_k([parse_completion(t).answer for t in self.sample_texts[i]], list(self.samples[i].astype(bool)), k)
                            for i in idx]))
            rows.append(row)
        return rows


def evaluate(
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    problems: Sequence[Problem],
    n_samples: int = 0,
    greedy: bool = True,
    temperature: float = 1.0,
    max_new_tokens: int = 96,
    batch_size: int = 256,
    ks: Sequence[int] = (1, 4, 16),
    seed: int = 0,
    progress: bool = True,
) -> EvalResult:
    """Greedy and/or sampled evaluation of ``model`` on ``problems`` (scores with :func:`utils.world.score`)."""
    problems = list(problems)
    g_texts: list[str] = []
    g = np.zeros(0)
    if greedy:
        g_texts = [t[0] for t in generate_texts(model, tok, problems, 1, 0.0, max_new_tokens, batch_size, seed, progress)]
        g = np.array([score(p, t) for p, t in zip(problems, g_texts)])
    s_texts: list[list[str]] = []
    s = np.zeros((len(problems), 0))
    if n_samples:
        s_texts = generate_texts(model, tok, problems, n_samples, temperature, max_new_tokens, batch_size, seed, progress)
        s = np.array([[score(p, t) for t in ts] for p, ts in zip(problems, s_texts)])
    return EvalResult(problems, g, g_texts, s, s_texts, tuple(ks))


def format_table(rows: list[dict], digits: int = 2) -> str:
    """A markdown table of :meth:`EvalResult.table` rows (for printing in notebooks and reports)."""
    if not rows:
        return "(empty)"
    cols = list(dict.fromkeys(k for r in rows for k in r))
    fmt = lambda v: f"{v:.{digits}f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)
