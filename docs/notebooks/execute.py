"""Execute the documentation notebooks in place, so they are committed with outputs.

Usage (from the repository root, in an environment with ``pip install -e ".[docs]"``)::

    python docs/notebooks/execute.py                 # every notebook in docs/notebooks
    python docs/notebooks/execute.py tutorial.ipynb  # one of them

Sphinx renders the stored outputs (``nb_execution_mode = "off"`` in ``docs/conf.py``) and
never runs the notebooks itself. The wall time of each run is printed and stored in the
notebook metadata (``sthisto_execution``).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent


def execute(path: Path, *, timeout: int, kernel_name: str) -> float:
    """Run every cell of ``path`` in a fresh kernel (cwd = the notebook's folder) and save it."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name=kernel_name, resources={"metadata": {"path": str(path.parent)}}
    )
    t0 = time.perf_counter()
    client.execute()
    wall = time.perf_counter() - t0
    import sthisto

    nb.metadata["sthisto_execution"] = {
        "wall_s": round(wall, 1),
        "sthisto": sthisto.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}",
    }
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return wall


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and execute the notebooks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="notebook files (default: all in docs/notebooks)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel name")
    args = parser.parse_args(argv)
    paths = [Path(p) if Path(p).exists() else HERE / p for p in args.notebooks] or sorted(HERE.glob("*.ipynb"))
    for path in paths:
        print(f"executing {path} …", flush=True)
        wall = execute(path.resolve(), timeout=args.timeout, kernel_name=args.kernel)
        print(f"{path.name}: {wall:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
