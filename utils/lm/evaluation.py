"""The one evaluator: greedy accuracy and sampled pass@k / maj@k over problems, averaged over orderings.

:func:`evaluate` scores completions with :func:`utils.world.score`; :func:`evaluate_skills` does it for several named
skills in one call; :func:`compare` puts a paired bootstrap interval on the difference of two evaluations.

pass@k (Chen et al. 2021): with ``n`` samples of which ``c`` are correct, the probability that at
least one of ``k`` samples drawn without replacement is correct is ``1 - C(n-c, k) / C(n, k)``.
Averaging this over problems is unbiased, unlike "fraction of problems solved within the first k".

Order-averaged evaluation: a Countdown problem is a multiset of numbers, but its prompt lists them in one
order, and a small model's accuracy on the same problems moves by several points between orderings. With
``orders=k`` every problem is asked in up to ``k`` orderings (:func:`utils.world.reorderings`) and its
per-problem accuracy is the mean over them: the same expected accuracy, with the ordering's noise averaged out.
Shapes: ``P`` problems, ``O`` orderings (the most any problem has; fewer for repeated numbers, 1 for families
without an order), ``n`` samples per ordering.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from math import comb
from typing import Callable, Mapping, Sequence

import numpy as np
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..stats import Interval, paired_bootstrap
from ..world import Problem, get_family, label_steps, parse_completion, reorderings, score
from .generation import build_prompts, sample
from .samples import Samples

#: ``decode(problems, max_new_tokens, batch_size) -> one greedy completion per problem``: a decoder for models
#: that :func:`utils.lm.generation.sample` cannot drive (``functools.partial(utils.sft.peft.greedy_texts, model, tok)``).
Decoder = Callable[[list[Problem], int, int], list[str]]


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


def _by_problem(flat: Sequence, counts: Sequence[int]) -> list[list]:
    """Split a flat list (problem-major) into one list per problem of ``counts[i]`` items."""
    out, at = [], 0
    for c in counts:
        out.append(list(flat[at : at + c]))
        at += c
    return out


def _padded(rows: Sequence[np.ndarray], width: int, tail: tuple[int, ...] = ()) -> np.ndarray:
    """``[P, width, *tail]`` float array of per-problem ``[O_p, *tail]`` rows, NaN beyond each row's ``O_p``."""
    out = np.full((len(rows), width, *tail), np.nan)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


@dataclass
class EvalResult:
    """What :func:`evaluate` measured; every per-problem number is a mean over the problem's orderings.

    Attributes:
        problems: the ``P`` evaluated problems (as given: the first ordering of each).
        greedy: ``[P]`` accuracy of the greedy completions, averaged over orderings (0/1 with one ordering;
            empty if not run).
        greedy_texts: ``P`` greedy completions of the first ordering.
        samples: ``[P, n]`` correctness of sample ``j``, averaged over orderings (``samples.mean(1)`` is each
            problem's pass@1; empty ``[P, 0]`` if ``n == 0``).
        sample_texts: ``P`` lists of ``n`` sampled completions of the first ordering.
        ks: the k values reported.
        orderings: ``P`` lists of the ``O_p`` orderings asked (``orderings[i][0] == problems[i]``).
        greedy_orders: ``[P, O]`` 0/1 greedy correctness per ordering, NaN beyond ``O_p``.
        greedy_order_texts: ``P`` lists of ``O_p`` greedy completions.
        sample_orders: ``[P, O, n]`` 0/1 correctness per ordering and sample, NaN beyond ``O_p``.
        sample_order_texts: ``P`` lists of ``O_p`` lists of ``n`` sampled completions.
        sampled: the raw sampled rollouts (token ids, log-probs), rows ordered by problem, ordering, sample;
            ``None`` without sampling and in a :meth:`select`-ed part.
    """

    problems: list[Problem]
    greedy: np.ndarray
    greedy_texts: list[str]
    samples: np.ndarray
    sample_texts: list[list[str]]
    ks: tuple[int, ...] = (1, 4, 16)
    orderings: list[list[Problem]] = field(default_factory=list)
    greedy_orders: np.ndarray | None = None
    greedy_order_texts: list[list[str]] = field(default_factory=list)
    sample_orders: np.ndarray | None = None
    sample_order_texts: list[list[list[str]]] = field(default_factory=list)
    sampled: Samples | None = None

    def __post_init__(self) -> None:
        # built by hand from one ordering per problem: the per-ordering views are the plain ones
        if not self.orderings:
            self.orderings = [[p] for p in self.problems]
        if self.greedy_orders is None:
            self.greedy_orders = np.asarray(self.greedy, dtype=float).reshape(len(self.greedy), 1)
            self.greedy_order_texts = [[t] for t in self.greedy_texts]
        if self.sample_orders is None:
            self.sample_orders = np.asarray(self.samples, dtype=float)[:, None, :]
            self.sample_order_texts = [[ts] for ts in self.sample_texts]

    @property
    def n_orders(self) -> np.ndarray:
        """``[P]`` number of orderings each problem was asked in."""
        return np.array([len(qs) for qs in self.orderings], dtype=int)

    def scores(self, metric: str = "greedy") -> np.ndarray:
        """``[P]`` per-problem numbers, averaged over orderings: ``"greedy"`` accuracy, sampled ``"pass@1"``, or the
        greedy completions that are right **and** ``"faithful"`` (every step valid, see :meth:`faithful`) or right
        but ``"unfaithful"`` (``greedy == faithful + unfaithful``)."""
        if metric in ("faithful", "unfaithful"):
            f = self.faithful()
            return f if metric == "faithful" else self.scores("greedy") - f
        if metric == "greedy":
            if not len(self.greedy) and len(self.problems):
                raise ValueError("this evaluation ran no greedy decoding")
            return np.asarray(self.greedy, dtype=float)
        if metric == "pass@1":
            if not self.samples.size and len(self.problems):
                raise ValueError("this evaluation drew no samples")
            return self.samples.mean(1) if self.samples.size else np.zeros(0)
        raise ValueError(f"metric must be 'greedy', 'pass@1', 'faithful' or 'unfaithful', got {metric!r}")

    def faithful(self) -> np.ndarray:
        """``[P]`` share of each problem's greedy completions (over orderings) that are right **and** whose reasoning
        holds: at least one step, and every step valid (Countdown: right arithmetic on numbers still available).

        The verifier reads only the final answer, so a policy rewarded on it can learn right answers after wrong
        steps (``7-6=2, 9+2=11`` then ``9+(7-6)``); ``faithful_share`` is the share of right answers that are not
        of that kind. Families without a step labeller count every right answer as faithful.
        """
        if not len(self.greedy):
            raise ValueError("this evaluation ran no greedy decoding")
        out = np.zeros(len(self.problems))
        for i, (qs, ts) in enumerate(zip(self.orderings, self.greedy_order_texts)):
            ok = []
            for q, t in zip(qs, ts):
                labels = label_steps(q, t)
                sound = labels is None or (bool(labels) and all(lab.valid for lab in labels))
                ok.append(score(q, t) == 1.0 and sound)
            out[i] = float(np.mean(ok)) if ok else 0.0
        return out

    @property
    def faithful_share(self) -> float:
        """Of all right greedy answers (every ordering), the share whose steps all hold (``nan`` if none is right)."""
        right = float(np.nansum(self.greedy_orders))
        return float(self.faithful() @ self.n_orders) / right if right else float("nan")

    @property
    def accuracy(self) -> float:
        """Mean greedy accuracy, or mean pass@1 for an evaluation without greedy decoding (``nan`` if empty)."""
        v = self.scores("greedy" if len(self.greedy) or not self.samples.size else "pass@1")
        return float(v.mean()) if len(v) else float("nan")

    def select(self, idx: Sequence[int]) -> "EvalResult":
        """The evaluation restricted to the problems at ``idx`` (without :attr:`sampled`)."""
        idx = list(idx)
        pick = lambda xs: [xs[i] for i in idx]  # noqa: E731
        g = self.greedy[idx] if len(self.greedy) else self.greedy
        return EvalResult(pick(self.problems), g, pick(self.greedy_texts) if self.greedy_texts else [],
                          self.samples[idx], pick(self.sample_texts) if self.sample_texts else [], self.ks,
                          pick(self.orderings), self.greedy_orders[idx], pick(self.greedy_order_texts) if self.greedy_order_texts else [],
                          self.sample_orders[idx], pick(self.sample_order_texts) if self.sample_order_texts else [])

    def _pass_at_problem(self, i: int, k: int) -> float:
        n = self.samples.shape[1]
        return float(np.mean([pass_at_k(n, int(self.sample_orders[i, o].sum()), k) for o in range(self.n_orders[i])]))

    def _maj_at_problem(self, i: int, k: int) -> float:
        return float(np.mean([
            maj_at_k([parse_completion(t).answer for t in texts], list(self.sample_orders[i, o].astype(bool)), k)
            for o, texts in enumerate(self.sample_order_texts[i])]))

    def pass_at(self, k: int, mask: np.ndarray | None = None) -> float:
        """Mean unbiased pass@k over problems (each averaged over its orderings; optionally a boolean mask)."""
        idx = np.arange(len(self.problems)) if mask is None else np.flatnonzero(mask)
        return float(np.mean([self._pass_at_problem(i, k) for i in idx])) if len(idx) else float("nan")

    def table(self) -> list[dict]:
        """One row per (family, level): greedy accuracy, format rate, pass@k, maj@k, step validity.

        Format and step statistics are over the greedy completions of every ordering.
        """
        rows = []
        keys = sorted({(p.family, p.level) for p in self.problems})
        for fam, lvl in keys:
            m = np.array([p.family == fam and p.level == lvl for p in self.problems])
            idx = np.flatnonzero(m)
            row: dict = {"family": fam, "level": lvl, "n": int(m.sum())}
            if len(self.greedy):
                pairs = [(q, t) for i in idx for q, t in zip(self.orderings[i], self.greedy_order_texts[i])]
                row["greedy"] = float(self.greedy[m].mean())
                row["format"] = float(np.mean([parse_completion(t).well_formed for _, t in pairs]))
                steps = [step_stats(q, t) for q, t in pairs]
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
                        row[f"maj@{k}"] = float(np.mean([self._maj_at_problem(i, k) for i in idx]))
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
    orders: int = 1,
    decode: Decoder | None = None,
) -> EvalResult:
    """Greedy and/or sampled evaluation of ``model`` on ``problems``, each asked in up to ``orders`` orderings.

    All orderings of all problems go through one generation call (greedy, then ``n_samples`` samples at
    ``temperature`` per ordering, seeded by ``seed``). ``decode`` replaces the greedy decoder (see
    :data:`Decoder`; sampling then is refused). ``orders=1`` asks each problem as given.
    """
    problems = list(problems)
    orderings = [reorderings(p, orders) for p in problems]
    counts = [len(qs) for qs in orderings]
    flat = [q for qs in orderings for q in qs]
    width = max(counts, default=1)
    g_texts: list[list[str]] = []
    g_orders = np.zeros((len(problems), width))
    g = np.zeros(0)
    if greedy and problems:
        if decode is not None:
            texts = decode(flat, max_new_tokens, batch_size)
        else:
            texts = sample(model, tok, build_prompts(tok, flat), n=1, max_new_tokens=max_new_tokens, temperature=0.0,
                           batch_size=batch_size, seed=seed, progress=progress).texts
        g_texts = _by_problem(texts, counts)
        g_orders = _padded([np.array([score(q, t) for q, t in zip(qs, ts)]) for qs, ts in zip(orderings, g_texts)], width)
        g = np.nanmean(g_orders, axis=1)
    s_texts: list[list[list[str]]] = []
    s_orders = np.zeros((len(problems), width, 0))
    s_raw = None
    if n_samples and problems:
        if decode is not None:
            raise ValueError("decode= replaces greedy decoding only; sampled evaluation needs a model sample() drives")
        s_raw = sample(model, tok, build_prompts(tok, flat), n=n_samples, max_new_tokens=max_new_tokens,
                       temperature=temperature, batch_size=batch_size, seed=seed, progress=progress)
        per_order = _by_problem([s_raw.texts[j * n_samples : (j + 1) * n_samples] for j in range(len(flat))], counts)
        s_texts = per_order
        s_orders = _padded([np.array([[score(q, t) for t in ts] for q, ts in zip(qs, tss)])
                            for qs, tss in zip(orderings, per_order)], width, (n_samples,))
    s = np.nanmean(s_orders, axis=1) if s_orders.size else np.zeros((len(problems), 0))
    return EvalResult(problems, g, [ts[0] for ts in g_texts], s, [tss[0] for tss in s_texts], tuple(ks),
                      orderings, g_orders if len(g) else np.zeros((len(problems), 0)), g_texts, s_orders, s_texts, s_raw)


def evaluate_skills(
    model: PreTrainedModel, tok: PreTrainedTokenizerBase, skills: Mapping[str, Sequence[Problem]], **kwargs
) -> dict[str, EvalResult]:
    """:func:`evaluate` every named skill's problems (e.g. ``{"countdown-3": test}``) in one call; one result per
    skill (``result[name].accuracy``: greedy accuracy, or pass@1 with ``greedy=False``). ``kwargs`` go to
    :func:`evaluate`."""
    names = list(skills)
    res = evaluate(model, tok, [p for s in names for p in skills[s]], **kwargs)
    out, at = {}, 0
    for s in names:
        n = len(skills[s])
        out[s] = res.select(range(at, at + n))
        at += n
    return out


def compare(a: EvalResult, b: EvalResult, metric: str = "greedy", n_boot: int = 2000, level: float = 0.95,
            seed: int = 0) -> Interval:
    """Paired bootstrap interval of ``mean(a - b)`` over problems of per-problem ``metric`` (``"greedy"`` or
    ``"pass@1"``, ``"faithful"``, ``"unfaithful"``: see :meth:`EvalResult.scores`); the two evaluations must be of the same problems, in order."""
    if a.problems != b.problems:
        raise ValueError(f"compare() needs the same problems in the same order ({len(a.problems)} vs {len(b.problems)})")
    return paired_bootstrap(a.scores(metric), b.scores(metric), n_boot=n_boot, level=level, seed=seed)


def format_table(rows: list[dict], digits: int = 2) -> str:
    """A markdown table of :meth:`EvalResult.table` rows (for printing in notebooks and reports)."""
    if not rows:
        return "(empty)"
    cols = list(dict.fromkeys(k for r in rows for k in r))
    fmt = lambda v: f"{v:.{digits}f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)
