"""Driver of the original Tiny Dancer router (npm ``@ruvector/tiny-dancer@0.1.22``) for parity tests.

Each call runs one node script from ``tests/oracle/`` with a JSON request on stdin and reads the JSON
result from the line of stdout marked ``TINYDANCER_ORACLE_RESULT`` (the native trainer prints progress
to stdout too). The package is found in ``$TINYDANCER_ORACLE_DIR`` (set by the Makefile) or else in
``.cache/oracle`` of the repository; ``make oracle`` installs it there. Outside CI a missing node or
package skips the test; under CI it fails it.

Facts about the original measured with these scripts (0.1.22, native core 2.2.3):

- ``createdAt`` is Unix SECONDS (the .d.ts comment says milliseconds; milliseconds look like the
  future and give recency 1.0). A fractional value is truncated to an integer.
- The original's clock is the wall clock truncated to whole seconds, read inside ``route()``.
- A candidate without ``createdAt`` is treated as created *now* (recency 1.0); without
  ``accessCount`` / ``successRate`` as 0. ``accessCount`` is a u32 (negative or >= 2**32 wraps).
- Metadata values compare as serde_json values: 1 and 1.0 differ, true and 1 differ,
  1.0 == 1e0, object key order does not matter; non-object metadata is an error.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests._requires import missing, require_tool

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "tests" / "oracle"
PACKAGE = ("@ruvector", "tiny-dancer")
VERSION = "0.1.22"
MARKER = "TINYDANCER_ORACLE_RESULT "


def oracle_dir() -> Path:
    """Folder holding ``node_modules/@ruvector/tiny-dancer`` (env TINYDANCER_ORACLE_DIR or .cache/oracle)."""
    env = os.environ.get("TINYDANCER_ORACLE_DIR")
    return Path(env) if env else REPO / ".cache" / "oracle"


@dataclass(frozen=True)
class Oracle:
    """The installed original router, driven through node.

    Attributes:
        node: path of the node executable.
        root: folder holding ``node_modules/@ruvector/tiny-dancer``.
        version: the npm package version found there.
    """

    node: str
    root: Path
    version: str

    def call(self, script: str, request: dict[str, Any], timeout_s: float = 120.0) -> dict[str, Any]:
        """Run ``tests/oracle/<script>`` with ``request`` as JSON on stdin and return its JSON result.

        Args:
            script: file name in tests/oracle, e.g. "route.js".
            request: JSON-serialisable request (floats are written with full precision).
            timeout_s: kill node after this many seconds.

        Returns:
            The decoded result object.

        Raises:
            AssertionError: node exited non-zero or printed no marked result.
        """
        env = dict(os.environ, TINYDANCER_ORACLE_DIR=str(self.root))
        proc = subprocess.run(
            [self.node, str(SCRIPTS / script)],
            input=json.dumps(request, allow_nan=False),
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout_s,
            check=False,
        )
        assert proc.returncode == 0, f"{script} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}"
        lines = [line for line in proc.stdout.splitlines() if line.startswith(MARKER)]
        assert lines, f"{script} printed no {MARKER.strip()} line; stdout tail: {proc.stdout[-2000:]!r}"
        result: dict[str, Any] = json.loads(lines[-1][len(MARKER) :])
        return result

    def route(self, request: dict[str, Any], max_tries: int = 5) -> tuple[int, dict[str, Any]]:
        """Route through the original so that its clock second is known exactly.

        The original reads the wall clock (whole seconds) inside ``route()``; route.js records
        ``Date.now()`` just before and after. A call whose bracket spans a second boundary is
        retried, so the returned second is the one the original used.

        Args:
            request: see tests/oracle/route.js.
            max_tries: attempts before giving up.

        Returns:
            (now_s, result): the integer Unix second the original saw, and route.js's result.
        """
        seen = []
        for _ in range(max_tries):
            result = self.call("route.js", request)
            before_s, after_s = result["before_ms"] // 1000, result["after_ms"] // 1000
            if before_s == after_s:
                return int(before_s), result
            seen.append((result["before_ms"], result["after_ms"]))
        raise AssertionError(f"route() straddled a second boundary in all {max_tries} tries: {seen}")


def require_oracle() -> Oracle:
    """The installed original router; skips the test outside CI when node or the package is absent."""
    node = require_tool("node")
    root = oracle_dir()
    manifest = root.joinpath("node_modules", *PACKAGE, "package.json")
    if not manifest.is_file():
        missing(f"the npm package {'/'.join(PACKAGE)}@{VERSION} (looked in {root})", "make oracle")
    version = json.loads(manifest.read_text())["version"]
    assert version == VERSION, f"oracle package is {version}, expected {VERSION} (rerun `make oracle`)"
    return Oracle(node=node, root=root, version=version)
