"""The ``sthisto`` command line."""

from __future__ import annotations

import argparse
import sys


def _build_parser() -> argparse.ArgumentParser:
    import sthisto

    parser = argparse.ArgumentParser(prog="sthisto", description=__doc__)
    parser.add_argument("--version", action="version", version=f"sthisto {sthisto.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the end-to-end pipeline on the bundled HER2ST demo")
    demo.add_argument("--out", default="sthisto_demo_out", help="output directory (default: %(default)s)")
    demo.add_argument("--epochs", type=int, default=None, help="M2TGLGO epochs (default 500, 30 with --quick)")
    demo.add_argument("--device", default=None, help="torch device: cpu, cuda, auto (default: settings)")
    demo.add_argument("--quick", action="store_true", help="a fast smoke run (fewer epochs)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sthisto`` console script."""
    args = _build_parser().parse_args(argv)
    if args.command == "demo":
        from ._demo import run_demo

        return run_demo(args)
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
