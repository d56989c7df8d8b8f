"""A real Prometheus server for tests: start on loopback, scrape local targets, query, stop by PID.

Usage::

    with PrometheusServer.start(["127.0.0.1:8000"], rule_files=[...]) as prom:
        prom.wait_for(lambda: prom.query_scalar("up") == 1)

The server runs Debian's ``prometheus`` binary (``make system-deps``) with a temporary TSDB directory,
a 1 s scrape and evaluation interval, and a free port on 127.0.0.1. It is stopped by the PID this
helper started (SIGTERM, then SIGKILL after a grace period), and its log is kept for error messages.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from tests._requires import require_tool

__all__ = ["PrometheusServer", "free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrometheusServer:
    """A running Prometheus process owned by the test; create it with :meth:`start`."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, workdir: Path, log_path: Path) -> None:
        self.proc = proc
        self.port = port
        self.workdir = workdir
        self.log_path = log_path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(
        cls,
        targets: Sequence[str],
        *,
        job: str = "tiny-dancer",
        config: dict[str, Any] | None = None,
        rule_files: Sequence[Path] = (),
        interval_s: int = 1,
        ready_timeout_s: float = 30.0,
    ) -> PrometheusServer:
        """Start Prometheus scraping ``targets`` (``host:port``) as ``job``, wait until it is ready.

        Args:
            targets: Scrape targets of the one job.
            job: Job name.
            config: A base configuration (e.g. the shipped prometheus.yml, parsed); its
                ``scrape_configs`` are replaced by the one job, its intervals by ``interval_s``.
            rule_files: Rule files copied next to the config and loaded.
            interval_s: Scrape and rule-evaluation interval in seconds.
            ready_timeout_s: How long to wait for ``/-/ready``.
        """
        binary = require_tool("prometheus")
        workdir = Path(tempfile.mkdtemp(prefix="tinydancer-prom-"))
        cfg = dict(config or {})
        cfg["global"] = {
            **cfg.get("global", {}),
            "scrape_interval": f"{interval_s}s",
            "evaluation_interval": f"{interval_s}s",
        }
        cfg["scrape_configs"] = [
            {"job_name": job, "scrape_interval": f"{interval_s}s", "static_configs": [{"targets": list(targets)}]}
        ]
        if rule_files:
            for f in rule_files:
                shutil.copy(f, workdir / Path(f).name)
            cfg["rule_files"] = [Path(f).name for f in rule_files]
        else:
            cfg.pop("rule_files", None)
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(cfg))
        port = free_port()
        log_path = workdir / "prometheus.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={workdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--storage.tsdb.retention.time=1h",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=workdir,
            )
        server = cls(proc, port, workdir, log_path)
        try:
            server.wait_for(server._ready, timeout_s=ready_timeout_s, what="Prometheus /-/ready")
        except BaseException:
            server.stop()
            raise
        return server

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"prometheus exited with {self.proc.returncode}:\n{self.log()}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def log(self) -> str:
        """The server's log so far (for assertion messages)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def api(self, path: str, **params: str) -> Any:
        """GET ``/api/v1/<path>`` and return its ``data``; raises on a non-success status."""
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as resp:
            body = json.loads(resp.read())
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus API {path} {params}: {body}")
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query; returns the vector result as a list of ``{"metric": labels, "value": [t, v]}``."""
        data = self.api("query", query=promql)
        result: list[dict[str, Any]] = data["result"] if data["resultType"] == "vector" else [data]
        return result

    def query_values(self, promql: str) -> dict[tuple[tuple[str, str], ...], float]:
        """Instant query as ``{sorted label items: value}``."""
        return {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in self.query(promql)}

    def query_scalar(self, promql: str) -> float | None:
        """The value of a query that returns one series, or None when it returns none."""
        values = list(self.query_values(promql).values())
        if len(values) > 1:
            raise AssertionError(f"{promql!r} returned {len(values)} series, expected at most one")
        return values[0] if values else None

    def wait_for(self, condition: Callable[[], bool], timeout_s: float = 30.0, what: str = "condition") -> None:
        """Poll ``condition`` every 0.25 s until it is true; fail with the server log on timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            if condition():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} not met within {timeout_s} s; prometheus log:\n{self.log()}")
            time.sleep(0.25)

    def stop(self) -> None:
        """Stop the process this helper started (by its PID) and delete the temporary directory."""
        try:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> PrometheusServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
