"""Shared helpers for the course *Hands-on LLM post-training for reasoning*, in layers (lowest first)::

    world                 tasks, verifiers, rewards, preferences (no torch)      from utils import world
    runtime, report, plotting, checkpoint, numerics, stats
                          profiles, self-checks, figures, resume, comparisons, intervals
    lm                    tokenizer, models, sampling, log-probs, batches, training loop
                                                                                 from utils.lm import load_model, sample
    sft                   supervised fine-tuning, distillation, PEFT             from utils import sft
    reward_models         outcome, process and preference reward models, judges
    rl | prefs            RL for LMs (PPO, GRPO, OREO) | direct preference losses
    search                best-of-N, majority vote at test time
    exercises             graders per chapter; solutions apart                   from utils.exercises import grade
    tools                 run_course, nbclean, colab, bench (command line)       python -m utils.tools.run_course

A module imports only from its own package and from the lines above it here; the two packages of one line (``rl | prefs``)
may not import each other. ``tests/test_layers.py`` (``RANK``) checks both the imports and this order.

The course runs offline by default: importing this package sets ``HF_HUB_OFFLINE=1`` unless
``COURSE_ONLINE=1`` (set it, e.g. on Colab, to let the model loader download Hub ids).
"""
import os

if os.environ.get("COURSE_ONLINE", "0") != "1":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

__all__ = ["ONLINE"]
ONLINE = os.environ.get("COURSE_ONLINE", "0") == "1"
