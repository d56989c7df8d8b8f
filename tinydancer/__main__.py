"""Command line: ``python -m tinydancer demo | assets | train | calibrate | evaluate``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

LEARNING_COMMANDS = ("train", "calibrate", "evaluate")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in LEARNING_COMMANDS:
        cli_learn = importlib.import_module("tinydancer.cli_learn")
        return int(cli_learn.main(args))
    parser = argparse.ArgumentParser(prog="tinydancer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="fit a router on bundled synthetic data, route traffic, report")
    demo.add_argument("--out", default="models", help="folder for the fitted model")
    demo.add_argument("--requests", type=int, default=200)
    demo.add_argument("--reports", default="reports", help="folder for the report")
    assets = sub.add_parser("assets", help="write the Prometheus config, alert rules and Grafana dashboard")
    assets.add_argument("--out", default="deploy")
    for name in LEARNING_COMMANDS:
        sub.add_parser(name, help=f"{name} a FastGRNN router (see `tinydancer {name} --help`)")
    ns = parser.parse_args(args)
    if ns.command == "demo":
        from tinydancer.demo import run_demo

        return run_demo(ns.out, n_requests=ns.requests, report_dir=ns.reports)
    from tinydancer.deploy import write_assets

    for path in write_assets(ns.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
