"""External tools a test needs: skip when absent on a developer machine, fail under CI.

``make test`` (which sets ``TINYDANCER_REQUIRE_ALL=1``) and CI (``CI`` set) must run every test, so a missing
tool there is an error, never a silent skip.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest


def missing(what: str, fix: str) -> NoReturn:
    """Skip (an ad-hoc run) or fail (make test, CI) because ``what`` is unavailable; ``fix`` says how to get it.

    Args:
        what: the missing tool or package.
        fix: the command that installs it.
    """
    message = f"{what} is not available; install it with `{fix}`"
    if os.environ.get("TINYDANCER_REQUIRE_ALL") or os.environ.get("CI"):
        pytest.fail(f"{message} (TINYDANCER_REQUIRE_ALL or CI is set, so this test may not be skipped)")
    pytest.skip(message)


def require_tool(name: str) -> str:
    """Path of the executable ``name``; skips the test outside CI when absent, fails it under CI.

    Args:
        name: executable name looked up on PATH, e.g. "node" or "promtool".

    Returns:
        The absolute path of the executable.
    """
    path = shutil.which(name)
    if path is None:
        missing(f"the executable {name!r}", "make system-deps")
    return path
