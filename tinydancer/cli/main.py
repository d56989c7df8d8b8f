"""The entry point of ``python -m tinydancer demo | assets | train | calibrate | tune | evaluate | route``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: The learning and serving commands (``tinydancer.cli.learn``), with their one-line help.
LEARNING_COMMANDS = {
    "train": "train a FastGRNN prompt router on routing outcomes (writes one artifact)",
    "calibrate": "fit a calibrator and a conformal quantile on the stored calibration rows",
    "tune": "add a named operating point (strong share, quality or guaranteed weak error)",
    "evaluate": "RouteLLM-protocol metrics, calibration and guarantees on held-out rows",
    "route": "route prompts with a trained artifact through a Router",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code.

    Args:
        argv: Arguments starting with the command name (default: ``sys.argv[1:]``).

    Examples:
        >>> import contextlib, io, tempfile
        >>> folder = tempfile.mkdtemp()
        >>> with contextlib.redirect_stdout(io.StringIO()) as out:
        ...     code = main(["assets", "--out", folder])
        >>> code, "alerts.yml" in out.getvalue()
        (0, True)
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in LEARNING_COMMANDS:
        cli_learn = importlib.import_module("tinydancer.cli.learn")
        return int(cli_learn.main(args))
    parser = argparse.ArgumentParser(prog="tinydancer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    fmt = argparse.ArgumentDefaultsHelpFormatter
    demo = sub.add_parser(
        "demo",
        help="train a prompt router on the bundled MMLU outcomes and serve it; fit and route the candidate router",
        formatter_class=fmt,
    )
    demo.add_argument("--out", default="models", help="folder for the fitted models")
    demo.add_argument(
        "--requests",
        type=int,
        default=200,
        help="example requests the candidate router is fitted on (a quarter as many, at least 10, are then routed)",
    )
    demo.add_argument("--reports", default="reports", help="folder for the report (plots, metrics, summary)")
    assets = sub.add_parser(
        "assets", help="write the Prometheus config, alert rules and Grafana dashboard", formatter_class=fmt
    )
    assets.add_argument("--out", default="monitoring", help="folder to write them to (as `make monitoring`)")
    for name, summary in LEARNING_COMMANDS.items():
        sub.add_parser(name, help=f"{summary} (`tinydancer {name} --help`)")
    ns = parser.parse_args(args)
    if ns.command == "demo":
        from tinydancer.cli.demo import run_demo
        from tinydancer.runtime import configure_jax

        configure_jax()  # a serving process: synchronous dispatch, set before the first JAX computation
        return run_demo(ns.out, n_requests=ns.requests, report_dir=ns.reports)
    from tinydancer.observability.monitoring_assets import write_assets

    for path in write_assets(ns.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
