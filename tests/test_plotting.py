"""utils.plotting: the concept-diagram helper draws what it is given and refuses edges to unknown nodes."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from utils.plotting import diagram  # noqa: E402


def test_diagram_draws_nodes_and_labelled_edges():
    ax = diagram({"a": (0.2, 0.5, "prompt"), "b": (0.8, 0.5, "policy", "#D55E00")},
                 [("a", "b", "tokens"), ("b", "a", "reward", "--")], title="loop")
    texts = [t.get_text() for t in ax.texts]
    assert {"prompt", "policy", "tokens", "reward"} <= set(texts) and ax.get_title() == "loop"
    assert len([c for c in ax.get_children() if type(c).__name__ == "Annotation"]) >= 2
    plt.close("all")


def test_diagram_names_the_missing_node():
    with pytest.raises(KeyError, match="'c'"):
        diagram({"a": (0.2, 0.5, "x")}, [("a", "c")])
    plt.close("all")
