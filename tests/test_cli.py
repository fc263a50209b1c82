import subprocess
import sys

import sthisto as st


def test_version():
    out = subprocess.run([sys.executable, "-m", "sthisto.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and st.__version__ in out.stdout


def test_demo_summary_table_labels_every_protocol():
    import pandas as pd

    from sthisto._demo import summary_table

    rows = []
    for protocol, gene_set in (("paper", "hvg"), ("paper", "heg"), ("hest", "hvg")):
        for method, values in (("m2tglgo", (0.3, 0.5)), ("ridge", (0.2, 0.2)), ("mean", (float("nan"),) * 2)):
            for section, v in zip(("C2", "C3"), values, strict=True):
                rows.append({"fold": section, "test_section": section, "method": method, "gene_set": gene_set,
                             "protocol": protocol, "metric": "pcc", "value": v})
    table = summary_table(pd.DataFrame(rows))
    assert list(table.columns) == ["m2tglgo", "ridge", "mean"]
    assert list(table.index) == ["paper / hvg", "paper / heg", "hest / hvg"]
    assert table.loc["paper / hvg", "m2tglgo"] == "0.400 ± 0.141"
    assert table.loc["paper / hvg", "ridge"] == "0.200 ± 0.000"
    assert table.loc["hest / hvg", "mean"] == "undefined"


def test_demo_help_lists_options():
    out = subprocess.run([sys.executable, "-m", "sthisto.cli", "demo", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for option in ("--out", "--epochs", "--device", "--quick"):
        assert option in out.stdout
