"""Re-running every cell of a notebook twice in one kernel works (no duplicate registry or tracer errors)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_cell_runs_twice_in_one_kernel(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TINYDANCER_NOTEBOOK_SIZE", raising=False)  # the stored small size, as a plain run
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    code_cells = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    with client.setup_kernel():
        for _ in range(2):
            for index, cell in code_cells:
                client.execute_cell(cell, index)  # raises CellExecutionError on any error
    assert code_cells and all(not any(o.get("output_type") == "error" for o in c.outputs) for _, c in code_cells)


def test_every_notebook_is_in_the_nbval_list() -> None:
    makefile = (NOTEBOOK_DIR.parent / "Makefile").read_text()
    listed = next(line for line in makefile.splitlines() if line.startswith("NOTEBOOKS :="))
    assert {p.name for p in NOTEBOOKS} == {Path(n).name for n in listed.split(":=")[1].split()}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_size_comes_from_the_project_variable_not_ci(path: Path) -> None:
    # Many shells and services set CI; a notebook's size must not change with it (issue 11).
    code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    assert 'os.environ.get("TINYDANCER_NOTEBOOK_SIZE", "small")' in code
    assert '"CI"' not in code and "'CI'" not in code
