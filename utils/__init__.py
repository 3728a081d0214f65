"""Shared helpers for the course *Hands-on LLM post-training for reasoning*.

One module per concept: ``runtime`` (profiles), ``world`` + ``countdown``/``addition``/``strings``
(tasks and verifiers), ``preferences`` (pairs with a hidden true reward), ``rewards``, ``tokenizer``,
``models``, ``generation``, ``evaluation``, ``training`` (the course's own loops), ``plotting``,
``report`` (self-checks and metrics), ``grader`` (exercises).

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
