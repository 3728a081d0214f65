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
    from utils.models import load_model

    return load_model("tiny-sft")
