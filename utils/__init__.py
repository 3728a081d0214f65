"""Shared helpers for the course *Hands-on LLM post-training for reasoning*, in layers (lowest first)::

    world      tasks, verifiers, rewards, preferences (pure Python, no torch)    from utils import world
    runtime, report, plotting, checkpoint, numerics   profiles, self-checks, figures, resume, comparisons
    lm         tokenizer, models, sampling, log-probs, batches, training loop     from utils.lm import load_model, sample
    sft, rl    algorithm families (later reward_models, prefs, search)           from utils import sft
    exercises  graders per chapter; solutions apart                              from utils.exercises import grade
    tools      run_course, nbclean, colab, bench (command line)                  python -m utils.tools.run_course

A module imports only from its own package and from the layers above it here (``tests/test_layers.py``).

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
