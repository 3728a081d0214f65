"""utils.tools.outputs: publishing a cpu run's outputs into a notebook, cleaned, with the hash of its code."""
import base64
import io

import nbformat
import pytest

from utils.tools.outputs import clean_outputs, code_sha256, problems, publish


def _png(size=(300, 200)) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(size[0] / 100, size[1] / 100), dpi=100)
    ax.plot(range(50), [i**0.5 for i in range(50)])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _pair(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# title"), nbformat.v4.new_code_cell("PROFILE = None"),
                nbformat.v4.new_code_cell("print(1)\nplot()")]
    src = tmp_path / "src.ipynb"
    nbformat.write(nb, str(src))
    run = nbformat.v4.new_notebook()
    run.cells = [nbformat.v4.new_markdown_cell("# title"),
                 nbformat.v4.new_code_cell("# Parameters\nPROFILE = 'cpu'", metadata={"tags": ["injected-parameters"]}),
                 nbformat.v4.new_code_cell("PROFILE = None"), nbformat.v4.new_code_cell("print(1)\nplot()")]
    run.cells[3].outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="1\n"),
        nbformat.v4.new_output("stream", name="stderr", text="training: 100%|#####| 10/10\r"),
        nbformat.v4.new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "x"},
                                                     "text/plain": "training:   0%|          | 0/10"}),
        nbformat.v4.new_output("display_data", data={"image/png": _png(), "text/plain": "<Figure>"}),
    ]
    run.metadata["widgets"] = {"state": "a lot"}
    exe = tmp_path / "run.ipynb"
    nbformat.write(run, str(exe))
    return src, exe


def test_publish_cleans_and_records_the_code_hash(tmp_path):
    src, exe = _pair(tmp_path)
    assert "no committed outputs" in problems(src)[0]
    assert publish(exe, src, "cpu", device="CPU, 1 threads") == 1
    nb = nbformat.read(str(src), as_version=4)
    outs = nb.cells[2].outputs
    assert [o.get("name", o["output_type"]) for o in outs] == ["stdout", "display_data"]  # stderr and widget gone
    assert nb.cells[2].execution_count == 2 and "widgets" not in nb.metadata
    assert nb.metadata["course"]["code_sha256"] == code_sha256(nb) and nb.metadata["course"]["outputs"] == "cpu"
    assert problems(src) == []
    nb.cells[2].source = "print(2)"
    nbformat.write(nb, str(src))
    assert any("stale" in p for p in problems(src))
    nb.cells[2].source = "print(1)\nplot()  # a markdown-like edit of a comment is still code"
    with pytest.raises(ValueError, match="other code"):
        nbformat.write(nb, str(src))
        publish(exe, src)


def test_markdown_edits_keep_outputs_current(tmp_path):
    src, exe = _pair(tmp_path)
    publish(exe, src)
    nb = nbformat.read(str(src), as_version=4)
    nb.cells[0].source = "# a better title"
    nbformat.write(nb, str(src))
    assert problems(src) == []


def test_pngs_are_shrunk_and_still_pngs():
    png = _png((700, 400))
    out = clean_outputs([nbformat.v4.new_output("display_data", data={"image/png": png})])
    small = base64.b64decode(out[0]["data"]["image/png"])
    assert small[:8] == b"\x89PNG\r\n\x1a\n" and len(small) <= len(base64.b64decode(png))
