import subprocess
import sys

import sthisto as st


def test_version():
    out = subprocess.run([sys.executable, "-m", "sthisto.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and st.__version__ in out.stdout
