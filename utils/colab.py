"""Where the course lives online, in one place: Colab badges and the notebooks' bootstrap read it.

The first code cell of every notebook repeats :data:`COURSE_REPO` (it runs before ``utils`` can be
imported on Colab); ``tests/test_notebooks_structure.py`` checks every copy and every badge agree.
"""
from __future__ import annotations

COURSE_REPO = "llm-post-training-course/reasoning"
BRANCH = "main"


def colab_url(notebook: str) -> str:
    """Colab link for ``notebooks/<notebook>`` on :data:`COURSE_REPO`."""
    return f"https://colab.research.google.com/github/{COURSE_REPO}/blob/{BRANCH}/notebooks/{notebook}"


def badge(notebook: str) -> str:
    """Markdown 'Open in Colab' badge for a notebook file name."""
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(notebook)})"
