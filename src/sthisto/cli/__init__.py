"""The ``sthisto`` command line: ``sthisto demo`` (and ``python -m sthisto.cli``).

Every argument is checked before any work starts — a bad ``--epochs`` or ``--device``, or
an ``--out`` folder that cannot be written, ends with a one-line error and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def _build_parser() -> argparse.ArgumentParser:
    import sthisto

    parser = argparse.ArgumentParser(prog="sthisto", description="Predict spatial gene expression from H&E.")
    parser.add_argument("--version", action="version", version=f"sthisto {sthisto.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the end-to-end pipeline on the bundled HER2ST demo")
    demo.add_argument("--out", default="sthisto_demo_out", help="output folder (default: %(default)s)")
    demo.add_argument("--epochs", type=_positive_int, default=None,
                      help="M2TGLGO epochs: the most inner validation may choose (default: the preset's; "
                           "30 with --quick)")
    demo.add_argument("--preset", choices=("default", "paper"), default="default",
                      help="M2TGLGO recipe: sthisto's default or the published model (default: %(default)s)")
    demo.add_argument("--device", default=None, help="torch device: cpu, cuda, cuda:<i>, mps, auto (default: settings)")
    demo.add_argument("--quick", action="store_true", help="a fast smoke run (30 epochs, one ensemble member)")
    return parser


def _writable_folder(path: Path) -> Path:
    """Create ``path`` and prove it can be written; raise ``OSError`` naming it otherwise."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".sthisto_write_test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise OSError(f"--out {path}: cannot write there ({err.strerror or err}); choose another folder.") from err
    return path


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sthisto`` console script."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command != "demo":  # pragma: no cover - argparse requires a known command
        return 1
    from sthisto._device import resolve_device

    try:
        device = None if args.device is None else str(resolve_device(args.device))
        out = _writable_folder(Path(args.out))
    except (ValueError, RuntimeError, OSError) as err:
        parser.error(str(err))
    from ._demo import run_demo

    return run_demo(out=out, epochs=args.epochs, preset=args.preset, device=device, quick=args.quick)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
