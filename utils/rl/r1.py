"""DeepSeek-R1 in miniature (survey §3.3): the rule-based rewards, the glue between stages, the per-stage table.

The stages themselves are other modules' work: SFT (:func:`utils.sft.fine_tune`), GRPO
(:func:`utils.rl.grpo.train_grpo`), rejection sampling (:func:`utils.sft.rejection_sample`). What is here:

* :class:`R1Reward` - correctness + format (+ an optional preference term), a ``reward_fn`` for GRPO that also
  logs what it saw at every call (accuracy, format compliance, tokens per answer): the training curves;
* :func:`r1_rewards` - the same reward as a plain function, ``[B]``;
* :func:`pool_stream` - an endless stream over a fixed pool of problems, reshuffled every pass;
* :func:`mixed_stream` - an endless stream of problems drawn from several (family, level) streams;
* :func:`completion_tokens` - tokens per completion, as the policy's tokenizer counts them;
* :func:`stage_row` - one row of the per-stage table (accuracy per skill from the one evaluator, format, tokens
  per answer);
* :func:`student_model` - a smaller, randomly initialised tiny model (the distillation student);
* :func:`save_stage` - save a stage's model under ``P.model_dir("r1-<stage>")``;
* R1-Zero in the base's own template: :func:`native_prompts` (a ``prompt_fn`` for
  :func:`utils.rl.grpo.train_grpo`), :data:`NATIVE_STOP` (``GRPOConfig(stop=NATIVE_STOP)``: the base ends its
  document with ``<|bos|>``), :func:`from_native` (its text -> the course's completion format, so the world's
  verifier, step labels and rewards apply unchanged), :func:`native_reward` and :func:`native_decoder` (the
  evaluator's ``decode=`` hook).
"""
from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch
from transformers import LlamaForCausalLM, PreTrainedModel, PreTrainedTokenizerBase

from ..lm.evaluation import evaluate_skills
from ..lm.models import new_tiny_model, save_model
from ..runtime import Profile
from ..world import Problem, format_completion, iter_problems
from ..world.preferences import true_reward
from ..world.rewards import format_reward, outcome_reward


def r1_rewards(problems: Sequence[Problem], texts: Sequence[str], format_weight: float = 0.5,
               preference_weight: float = 0.0) -> torch.Tensor:
    """``[B]`` R1's rule-based reward: ``correct + format_weight * well_formed + preference_weight * preference``.

    ``correct``: :func:`utils.world.rewards.outcome_reward` (1 for a right final answer); ``well_formed``:
    :func:`utils.world.rewards.format_reward` (exactly ``<think>...</think><answer>...</answer>``);
    ``preference``: the world's hidden preference score :func:`utils.world.preferences.true_reward` (correctness,
    format, good steps, minus verbosity), standing in for the reward model of R1's second RL stage.
    ``problems[i]`` belongs to ``texts[i]`` (GRPO repeats each problem once per sample). Never raises on a text.
    """
    if len(problems) != len(texts):
        raise ValueError(f"{len(problems)} problems but {len(texts)} completions")
    out = []
    for p, t in zip(problems, texts):
        r = outcome_reward(p, t) + format_weight * format_reward(p, t)
        if preference_weight:
            r += preference_weight * true_reward(p, t)
        out.append(r)
    return torch.tensor(out, dtype=torch.float32)


def completion_tokens(tok: PreTrainedTokenizerBase, texts: Sequence[str]) -> list[int]:
    """Number of tokens of each completion text (tags included, without the end-of-turn token)."""
    return [len(ids) for ids in tok(list(texts), add_special_tokens=False)["input_ids"]] if texts else []


class R1Reward:
    """A GRPO ``reward_fn(problems [B], texts [B]) -> [B]`` (:func:`r1_rewards`) that keeps a log of each call.

    Every call appends ``{"reward", "correct", "format", "tokens"}`` (batch means; ``tokens`` per completion by
    ``tok``) and the per-family ``reward:<family>``, ``correct:<family>``, ``share:<family>`` to :attr:`log`: since
    GRPO scores every rollout once, the log is the training curve of the run.
    """

    def __init__(self, tok: PreTrainedTokenizerBase, format_weight: float = 0.5, preference_weight: float = 0.0):
        self.tok, self.format_weight, self.preference_weight = tok, format_weight, preference_weight
        self.log: list[dict[str, float]] = []

    def __call__(self, problems: Sequence[Problem], texts: Sequence[str]) -> torch.Tensor:
        r = r1_rewards(problems, texts, self.format_weight, self.preference_weight)
        correct = np.array([outcome_reward(p, t) for p, t in zip(problems, texts)], dtype=float)
        row = {
            "reward": float(r.mean()),
            "correct": float(correct.mean()),
            "format": float(np.mean([format_reward(p, t) for p, t in zip(problems, texts)])),
            "tokens": float(np.mean(completion_tokens(self.tok, texts))),
        }
        fams = np.array([p.family for p in problems])
        for f in sorted(set(fams)):  # per-family means: a mixed batch's mean moves with its composition
            at = fams == f
            row.update({f"reward:{f}": float(r.numpy()[at].mean()), f"correct:{f}": float(correct[at].mean()),
                        f"share:{f}": float(at.mean())})
        self.log.append(row)
        return r

    def curve(self, key: str) -> list[float]:
        """One logged quantity per call, in order (``nan`` where a call had no such key, e.g. ``"reward:addition"``
        for a batch without addition problems). Per-family keys: ``reward:<family>``, ``correct:<family>``,
        ``share:<family>`` (the family's share of the batch)."""
        return [row.get(key, float("nan")) for row in self.log]


def pool_stream(problems: Sequence[Problem], seed: int = 0) -> Iterator[Problem]:
    """An endless stream over a fixed pool: every pass visits each problem once, in a fresh seeded order
    (RL on a pool sees each prompt again and again, as R1's RL stages revisit their prompt set)."""
    pool = list(problems)
    if not pool:
        raise ValueError("pool_stream needs at least one problem")
    rng = random.Random(f"pool-{seed}")
    while True:
        order = pool[:]
        rng.shuffle(order)
        yield from order


def mixed_stream(tasks: Sequence[tuple[str, int]], weights: Sequence[float] | None = None, split: str = "train",
                 seed: int = 0) -> Iterator[Problem]:
    """An endless deterministic stream that draws each problem from one of ``tasks`` (``(family, level)``),
    chosen with probability ``weights`` (default uniform); each task's own stream is
    :func:`utils.world.iter_problems`."""
    if not tasks:
        raise ValueError("mixed_stream needs at least one (family, level)")
    streams = [iter_problems(f, lvl, split, seed) for f, lvl in tasks]
    rng = random.Random(f"mixed-{seed}")
    w = list(weights) if weights is not None else [1.0] * len(tasks)
    while True:
        yield next(rng.choices(streams, w)[0])


def stage_row(model: PreTrainedModel, tok: PreTrainedTokenizerBase, skills: Mapping[str, Sequence[Problem]],
              format_skill: str, max_new_tokens: int = 96, batch_size: int = 256,
              verdicts: dict[str, np.ndarray] | None = None, orders: int = 1, decode=None,
              results: dict | None = None) -> dict[str, float]:
    """One row of the per-stage table, from one greedy :func:`utils.lm.evaluation.evaluate_skills` call.

    Returns ``{skill: greedy accuracy for each skill, "format": well-formed share on format_skill,
    "tokens": mean tokens per greedy completion on format_skill}``, each problem asked in up to ``orders``
    orderings (format and tokens over every ordering's completion). ``verdicts``: a dict to receive each skill's
    ``[n]`` per-problem greedy accuracy (for paired comparisons between stages, :func:`utils.stats.paired_bootstrap`).
    ``decode``: the evaluator's greedy decoder hook (:func:`native_decoder` for a base model in its own template);
    ``results``: a dict to receive each skill's :class:`utils.lm.evaluation.EvalResult` (faithfulness, paired tests).
    The row also has ``"faithful"``: the share of right greedy answers on ``format_skill`` whose every step holds.
    """
    if format_skill not in skills:
        raise ValueError(f"format_skill {format_skill!r} is not one of the skills {list(skills)}")
    res = evaluate_skills(model, tok, skills, max_new_tokens=max_new_tokens, batch_size=batch_size, progress=False,
                          orders=orders, decode=decode)
    row = {s: r.accuracy for s, r in res.items()}
    if results is not None:
        results.update(res)
    if verdicts is not None:
        verdicts.update({s: r.scores("greedy") for s, r in res.items()})
    texts = [t for ts in res[format_skill].greedy_order_texts for t in ts]
    row["format"] = float(np.mean([format_reward(None, t) for t in texts]))
    row["tokens"] = float(np.mean(completion_tokens(tok, texts)))
    row["faithful"] = float(res[format_skill].faithful_share)
    return row


#: What ends a document of the base's pretraining text: documents were packed as ``<|bos|>doc<|bos|>doc...``
#: (:func:`utils.lm.batches.pack_documents`), so after its answer the base writes ``<|bos|>`` and, if not stopped,
#: runs on into an unrelated next document (``...so (9+8)+9use 6 3 8 to``).
NATIVE_STOP: tuple[str, ...] = ("<|bos|>",)

_NATIVE = re.compile(r"\s*(.*?)\s+so\s+(\S+)\s*", re.DOTALL)


def native_prompts(tok: PreTrainedTokenizerBase, problems: Sequence[Problem]) -> list[str]:
    """The base model's own template (:func:`utils.lm.pretrain.textbook` without its solution), one per problem:
    ``<|bos|>use 3 5 7 to make 26:`` (no chat markers, no tags). A ``prompt_fn`` for ``train_grpo``/``collect``."""
    from ..lm.pretrain import textbook_prompt

    bos = tok.bos_token or ""
    return [bos + textbook_prompt(p) for p in problems]


def from_native(text: str | None) -> str:
    """The base's text ``" 7*3=21,21+5=26 so (7*3)+5"`` as the course's completion
    ``<think>7*3=21,21+5=26</think><answer>(7*3)+5</answer>`` (:func:`utils.world.format_completion`).

    Well-formed in the native template means: steps, then `` so ``, then one expression without spaces, then the end
    of the text (the sample stopped at :data:`NATIVE_STOP`). Anything else (no `` so ``, a run-on into the next
    document, a truncated text) is returned unchanged, which no verifier accepts and whose format reward is 0.
    Never raises."""
    if not isinstance(text, str):
        return ""
    m = _NATIVE.fullmatch(text.replace(NATIVE_STOP[0], ""))
    if m is None or " so " in m.group(1) or "<" in text.replace(NATIVE_STOP[0], ""):
        return text
    return format_completion(m.group(1), m.group(2))


def native_reward(reward_fn):
    """``reward_fn(problems, texts)`` applied to :func:`from_native` of each text: R1's reward for a policy that writes
    the native template (``native_reward(R1Reward(tok))``: the same rewards and log as in the course's format)."""

    def scored(problems: Sequence[Problem], texts: Sequence[str]) -> torch.Tensor:
        return reward_fn(problems, [from_native(t) for t in texts])

    return scored


def native_decoder(model: PreTrainedModel, tok: PreTrainedTokenizerBase):
    """A greedy :data:`utils.lm.evaluation.Decoder` for the native template: prompts by :func:`native_prompts`, stop at
    :data:`NATIVE_STOP`, completions converted by :func:`from_native` (``evaluate(..., decode=native_decoder(m, tok))``)."""
    from ..lm.generation import sample

    def decode(problems: list[Problem], max_new_tokens: int, batch_size: int) -> list[str]:
        s = sample(model, tok, native_prompts(tok, problems), n=1, max_new_tokens=max_new_tokens, temperature=0.0,
                   batch_size=batch_size, stop=NATIVE_STOP)
        return [from_native(t) for t in s.texts]

    return decode


def student_model(seed: int = 0, hidden_size: int = 64, layers: int = 2, heads: int = 4,
                  intermediate_size: int | None = None) -> tuple[LlamaForCausalLM, PreTrainedTokenizerBase]:
    """A randomly initialised tiny Llama smaller than tiny-base (default hidden 64, 2 layers, FFN 4x hidden),
    with the same tokenizer: the distillation student of survey §3.3.5."""
    return new_tiny_model(seed, hidden_size=hidden_size, num_hidden_layers=layers, num_attention_heads=heads,
                          num_key_value_heads=heads, intermediate_size=intermediate_size or 4 * hidden_size)


def save_stage(model: PreTrainedModel, tok: PreTrainedTokenizerBase, profile: Profile, stage: str) -> Path:
    """Save a stage's model and tokenizer under ``profile.model_dir("r1-<stage>")``; returns the folder (loadable with
    :func:`utils.lm.load_model`)."""
    out = profile.model_dir(f"r1-{stage}")
    save_model(model, tok, out)
    return out


__all__ = ["NATIVE_STOP", "R1Reward", "completion_tokens", "from_native", "mixed_stream", "native_decoder", "native_prompts",
           "native_reward", "pool_stream", "r1_rewards", "save_stage", "stage_row", "student_model"]
