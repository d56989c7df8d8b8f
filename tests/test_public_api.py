"""One curated public API: notebooks, examples, benchmarks and the README import only its names.

Public means ``tinydancer.<name>`` for a name in ``tinydancer.__all__`` or ``tinydancer.<wing>.<name>``
for a name in that wing's ``__all__``. The benchmarks that inspect internals on purpose are the listed
exception. Importing tinydancer changes no process-wide JAX setting.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import tinydancer as td

REPO = Path(__file__).resolve().parents[1]
WINGS = ("model", "datasets", "routing", "observability", "learning", "plots", "examples")
#: Benchmarks that inspect internals on purpose: single functions timed alone (where a route spends its
#: time, what one Candidate costs with and without the C extension, the prompt router's tokenisers and kernel
#: settings side by side) and the batch kernels' compile caches. Every other benchmark times the API as users
#: call it.
PROFILING_BENCHMARKS = {
    "profile_route.py", "route_parts.py", "host_route.py", "span_overhead.py", "metrics_overhead.py",
    "batch_throughput.py", "candidate_parts.py", "prompt_tokens.py",
}  # fmt: skip


def _sources() -> list[tuple[str, str]]:
    found = []
    for notebook in sorted((REPO / "notebooks").glob("*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        found.append((notebook.name, "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")))
    for script in sorted((REPO / "benchmarks").glob("*.py")):
        if script.name not in PROFILING_BENCHMARKS:
            found.append((f"benchmarks/{script.name}", script.read_text()))
    for example in sorted((REPO / "tinydancer" / "examples").glob("*.py")):
        found.append((f"examples/{example.name}", example.read_text()))
    readme = (REPO / "README.md").read_text()
    found.append(("README.md", "\n".join(re.findall(r"```python\n(.*?)```", readme, re.DOTALL))))
    return found


def _private_imports(name: str, source: str) -> list[str]:
    wrong = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            wrong += [f"import {a.name}" for a in node.names if a.name.startswith("tinydancer.")]
        if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith("tinydancer"):
            continue
        module, imported = str(node.module), [a.name for a in node.names]
        if name.startswith("examples/") and module.startswith("tinydancer.examples"):
            continue  # an example may use its own wing's modules
        if module == "tinydancer":
            public = set(td.__all__)
        elif module.count(".") == 1 and module.split(".")[1] in WINGS:
            public = set(importlib.import_module(module).__all__)
        else:
            wrong.append(f"from {module} import ...")
            continue
        wrong += [f"from {module} import {n}" for n in imported if n not in public]
    for attribute in re.findall(r"\btd\.(\w+(?:\.\w+)?)", source):  # `import tinydancer as td` users
        head, _, tail = attribute.partition(".")
        if head not in td.__all__ or (head in WINGS and tail and tail not in getattr(td, head).__all__):
            wrong.append(f"td.{attribute}")
    return wrong


@pytest.mark.parametrize(("name", "source"), _sources(), ids=[n for n, _ in _sources()])
def test_users_of_the_package_import_only_public_names(name: str, source: str) -> None:
    assert _private_imports(name, source) == []


def test_the_check_sees_a_private_import() -> None:
    source = (
        "from tinydancer.routing.kernel import DeviceModel\nfrom tinydancer.learning import apgr, secret\n"
        "td.Router, td.learning.apgr, td.RouterMetrics, td.learning.secret\n"
    )
    assert _private_imports("x.ipynb", source) == [
        "from tinydancer.routing.kernel import ...",
        "from tinydancer.learning import secret",
        "td.RouterMetrics",
        "td.learning.secret",
    ]


@pytest.mark.parametrize("wing", ("", *WINGS))
def test_every_public_name_resolves(wing: str) -> None:
    module = importlib.import_module(f"tinydancer.{wing}" if wing else "tinydancer")
    assert module.__all__ and all(hasattr(module, name) for name in module.__all__)
    if wing:
        assert getattr(td, wing) is module  # td.<wing>.<name> works after `import tinydancer as td`


def test_import_changes_no_jax_setting() -> None:
    code = (
        "import jax\n"
        "before = {k: jax.config.read(k) for k in ('jax_cpu_enable_async_dispatch', 'jax_enable_x64')}\n"
        "import tinydancer, tinydancer.routing.kernel, tinydancer.learning\n"
        "after = {k: jax.config.read(k) for k in before}\n"
        "print(before == after, after['jax_cpu_enable_async_dispatch'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True"]  # JAX's default (asynchronous dispatch) survives the import


def test_configure_jax_switches_dispatch_only_when_asked() -> None:
    code = (
        "import jax, tinydancer as td\n"
        "print(td.configure_jax(), jax.config.read('jax_cpu_enable_async_dispatch'))\n"
        "import jax.numpy as jnp; jnp.ones(2).block_until_ready()\n"
        "import warnings\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    print(td.configure_jax(async_dispatch=True), len(caught))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "False", "False", "1"]  # too late once the backend runs: warned, False
