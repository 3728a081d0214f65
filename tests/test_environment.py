"""Project shape: pinned requirements agree with environment.yml; the two commands exist."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pins(text):
    return {m.group(1).lower(): m.group(2) for m in re.finditer(r"^\s*-?\s*([A-Za-z0-9_.\-]+)==([^\s#]+)", text, re.M)}


def test_environment_yml_matches_requirements():
    req = pins((ROOT / "requirements.txt").read_text()) | pins((ROOT / "requirements-torch.txt").read_text())
    env = pins((ROOT / "environment.yml").read_text())
    assert req == env
    for pkg in ["torch", "transformers", "trl", "peft", "datasets", "accelerate", "matplotlib", "tqdm",
                "jupyterlab", "ipykernel", "papermill", "nbval", "pytest", "gguf"]:
        assert pkg in req, f"{pkg} must be pinned"
    assert req["trl"].startswith("1.16")
    assert "torch" not in pins((ROOT / "requirements.txt").read_text()), "Colab installs requirements.txt: no torch there"


def test_layout_and_commands():
    for p in ["notebooks", "utils", "data", "tests", "environment.yml", "README.md", "Makefile", ".ci/run",
              "CONTRIBUTING.md", "LICENSE"]:
        assert (ROOT / p).exists(), p
    mk = (ROOT / "Makefile").read_text()
    for target in ("course:", "test:", "lab:", "setup:"):
        assert target in mk
    assert "make test" in (ROOT / ".ci/run").read_text()
