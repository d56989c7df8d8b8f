"""Process-wide JAX settings for serving, applied only when the user asks: :func:`configure_jax`.

Importing tinydancer changes nothing in JAX's configuration, so a notebook's own JAX code runs as it
would without tinydancer. A route kernel is ~10-60 us of work; with XLA's default asynchronous CPU
dispatch every call is handed to a worker thread and the caller waits for it, which on a busy 2-core
machine cost 100-3000 us per route (BENCHMARKS.md, "Synchronous dispatch"). Serving processes (the demo,
the benchmarks, a router behind an endpoint) call ``configure_jax()`` once, first thing.
"""

from __future__ import annotations

import warnings

import jax

#: The JAX option this module sets.
ASYNC_DISPATCH_OPTION = "jax_cpu_enable_async_dispatch"


def _backend_started() -> bool:
    try:
        from jax._src import xla_bridge  # private: JAX has no public "has the backend started" query

        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):  # a JAX without it: assume started, so the caller is warned
        return True


def configure_jax(*, async_dispatch: bool = False) -> bool:
    """Set JAX's CPU dispatch mode for this process (synchronous by default: the fast mode for routing).

    The option is read when JAX's CPU backend starts, so call this before the first JAX computation
    (before building a Router). Called later it still records the option, warns, and returns False.

    Args:
        async_dispatch: True restores JAX's default (asynchronous) CPU dispatch.

    Returns:
        True when the setting took effect (the backend had not started yet).

    Examples:
        >>> import subprocess, sys  # a fresh process: its JAX backend has not started yet
        >>> code = "import jax, tinydancer as td; print(td.configure_jax(), jax.config.read(ASYNC))".replace(
        ...     "ASYNC", repr(ASYNC_DISPATCH_OPTION))
        >>> subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
        ['True', 'False']
    """
    started = _backend_started()
    jax.config.update(ASYNC_DISPATCH_OPTION, bool(async_dispatch))  # type: ignore[no-untyped-call]
    if started:
        warnings.warn(
            f"configure_jax(async_dispatch={async_dispatch}) was called after JAX's CPU backend started; "
            "it takes effect only in a process that calls it before its first JAX computation",
            RuntimeWarning,
            stacklevel=2,
        )
    return not started


__all__ = ["ASYNC_DISPATCH_OPTION", "configure_jax"]
