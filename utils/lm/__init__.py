"""The language model: tokenizer, models, sampling, log-probs, batches, the training loop. Builds on
:mod:`utils.world` and the top-level helpers (:mod:`utils.runtime`, :mod:`utils.checkpoint`, :mod:`utils.numerics`).

* :mod:`.tokenizer` - the tiny model's character tokenizer and chat template.
* :mod:`.models` - :func:`load_model` (tiny-base, tiny-sft, SmolLM2 offline, Hub ids online),
  :func:`random_model`, :func:`count_parameters`.
* :mod:`.samples` - :class:`Samples`, the rollout type (tokens, masks, log-probs, texts).
* :mod:`.generation` - :func:`sample` (tokens *and* log-probs; stop strings; a CUDA-graph fast path),
  :func:`build_prompts`.
* :mod:`.compute` - :class:`Ledger`, the counts of tokens generated, prefilled and scored and of model calls.
* :mod:`.logprobs` - the one ``log p(token)`` gather and the losses built on it, :func:`completion_logprobs`.
* :mod:`.batches` - :func:`sft_batch` (the one SFT batch builder, loss on every assistant turn), packing.
* :mod:`.training` - :func:`train_lm` (AdamW, warm-up + cosine, checkpoint/resume), data order.
* :mod:`.evaluation` - the one evaluator (:func:`evaluate`, order-averaged; :func:`evaluate_skills`,
  :func:`compare`): greedy accuracy, unbiased pass@k, maj@k, per-level tables, step statistics.
* :mod:`.lora` - LoRA from scratch; :mod:`.pretrain` - how tiny-base and tiny-sft were made.

Imports only :mod:`utils.world` and the top-level helpers (runtime, checkpoint).
"""
from .batches import sft_batch
from .compute import Ledger
from .evaluation import EvalResult, compare, evaluate, evaluate_skills, format_table, pass_at_k
from .generation import build_prompts, generate_texts, sample
from .logprobs import IGNORE, completion_logprobs, mle_loss, samples_logprobs, token_logprobs
from .models import count_parameters, load_model, random_model
from .samples import Samples
from .training import train_lm

__all__ = [
    "IGNORE", "EvalResult", "Ledger", "Samples", "build_prompts", "compare", "completion_logprobs", "count_parameters", "evaluate",
    "evaluate_skills",
    "format_table", "generate_texts", "load_model", "mle_loss", "pass_at_k", "random_model", "sample",
    "samples_logprobs", "sft_batch", "token_logprobs", "train_lm",
]
