import subprocess
import sys

import pandas as pd
import pytest

import sthisto as st
from sthisto.cli import main
from sthisto.cli._demo import m2tglgo_settings
from sthisto.cli._report import legend, summary_table


def test_version():
    out = subprocess.run([sys.executable, "-m", "sthisto.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and st.__version__ in out.stdout


def _cv_rows():
    rows = []
    for protocol, gene_set in (("paper", "hvg"), ("paper", "heg"), ("hest", "hvg")):
        for method, values in (("m2tglgo", (0.3, 0.5)), ("ridge", (0.2, 0.2)), ("mean", (float("nan"),) * 2)):
            for section, v in zip(("C2", "C3"), values, strict=True):
                rows.append({"fold": section, "test_section": section, "method": method, "gene_set": gene_set,
                             "protocol": protocol, "metric": "pcc", "value": v})
    df = pd.DataFrame(rows)
    df.attrs["protocols"] = {"paper": "top-n HVG/HEG", "hest": "pooled"}
    return df


def test_demo_summary_table_labels_every_protocol_and_method():
    df = _cv_rows()
    table = summary_table(df)
    assert list(table.columns) == ["m2tglgo", "ridge", "mean"]
    assert list(table.index) == ["paper / hvg", "paper / heg", "hest / hvg"]
    assert table.loc["paper / hvg", "m2tglgo"] == "0.400 ± 0.141"
    assert table.loc["paper / hvg", "ridge"] == "0.200 ± 0.000"
    assert table.loc["hest / hvg", "mean"] == "undefined"
    lines = legend(df)
    assert any(line.strip().startswith("ridge: ridge regression, alpha chosen by inner validation") for line in lines)
    assert any(line.strip().startswith("paper:") for line in lines) and len(lines) == 5


def test_demo_recipe_settings():
    assert m2tglgo_settings(preset="default", epochs=None, quick=True)[0] == {
        "preset": "default", "epochs": 30, "n_ensemble": 1}
    settings, text = m2tglgo_settings(preset="paper", epochs=None, quick=False)
    assert settings == {"preset": "paper"} and "500 epochs" in text
    assert "inner validation (at most 300)" in m2tglgo_settings(preset="default", epochs=None, quick=False)[1]


def test_demo_help_lists_options():
    out = subprocess.run([sys.executable, "-m", "sthisto.cli", "demo", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for option in ("--out", "--epochs", "--device", "--quick", "--preset"):
        assert option in out.stdout


@pytest.mark.parametrize(("argv", "message"), [
    (["demo", "--epochs", "-1"], "--epochs: expected a positive whole number, got '-1'"),
    (["demo", "--epochs", "2.5"], "expected a positive whole number, got '2.5'"),
    (["demo", "--device", "nonsense"], "device must be 'auto', 'cpu', 'cuda'"),
    (["demo", "--preset", "best"], "invalid choice: 'best'"),
])
def test_bad_arguments_fail_at_once_with_one_line(argv, message, capsys, monkeypatch):
    monkeypatch.setattr("sthisto.cli._demo.run_demo", lambda **kw: pytest.fail("work started"))
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_unwritable_out_fails_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sthisto.cli._demo.run_demo", lambda **kw: pytest.fail("work started"))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--out", str(blocker / "sub")])
    assert exit_.value.code == 2 and f"--out {blocker / 'sub'}: cannot write there" in capsys.readouterr().err


def test_good_arguments_reach_the_demo(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr("sthisto.cli._demo.run_demo", lambda **kw: seen.update(kw) or 0)
    assert main(["demo", "--out", str(tmp_path / "o"), "--epochs", "7", "--device", "cpu", "--quick"]) == 0
    assert seen == {"out": tmp_path / "o", "epochs": 7, "preset": "default", "device": "cpu", "quick": True}
    assert (tmp_path / "o").is_dir()
