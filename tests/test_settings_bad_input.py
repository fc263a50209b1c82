"""Hostile STHISTO_* environment variables and invalid settings."""

import os
import subprocess
import sys
import warnings

import pytest

from sthisto._settings import ENV_VARS, Settings


@pytest.fixture
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("STHISTO_"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize(
    ("var", "value", "accepted", "default"),
    [
        ("STHISTO_N_JOBS", "abc", r"-1 \(all cores\) or a positive integer", "n_jobs=1"),
        ("STHISTO_N_JOBS", "0", r"-1 \(all cores\) or a positive integer", "n_jobs=1"),
        ("STHISTO_N_JOBS", "2.5", r"-1 \(all cores\) or a positive integer", "n_jobs=1"),
        ("STHISTO_SEED", "-3", r"an integer between 0 and 2\*\*32 - 1", "seed=0"),
        ("STHISTO_SEED", "1e3", r"an integer between 0 and 2\*\*32 - 1", "seed=0"),
        ("STHISTO_DEVICE", "gpu", "'auto', 'cpu', 'cuda', 'cuda:<i>' or 'mps'", "device='auto'"),
        ("STHISTO_DEVICE", "cuda:x", "'auto', 'cpu', 'cuda', 'cuda:<i>' or 'mps'", "device='auto'"),
        ("STHISTO_VERBOSITY", "9", "0-3 or error/warning/info/debug", "verbosity=1"),
        ("STHISTO_PROGRESS", "maybe", r"one of \('1', 'true', 'yes', 'on', '0', 'false', 'no', 'off'\)",
         "progress_bar=True"),
        ("STHISTO_DATA_DIR", "", "a folder path", "datasetdir=PosixPath"),
    ],
)
def test_bad_env_var_warns_and_uses_the_default(clean_env, var, value, accepted, default):
    clean_env.setenv(var, value)
    with pytest.warns(RuntimeWarning, match=rf"^ignoring the environment variable {var}='{value}': it accepts "
                                            rf"{accepted}; using the default \({default}"):
        s = Settings()
    attr, want, _ = ENV_VARS[var]
    if want is not None:
        assert getattr(s, attr) == want


def test_data_dir_that_is_a_file(clean_env, tmp_path):
    (tmp_path / "f").write_text("x")
    clean_env.setenv("STHISTO_DATA_DIR", str(tmp_path / "f"))
    with pytest.warns(RuntimeWarning, match=r"STHISTO_DATA_DIR='.*f': it accepts a folder path"):
        Settings()


def test_valid_env_strings(clean_env, tmp_path):
    for var, value in {"STHISTO_N_JOBS": " -1 ", "STHISTO_DEVICE": "cuda:1", "STHISTO_SEED": "42",
                       "STHISTO_VERBOSITY": "debug", "STHISTO_PROGRESS": "OFF",
                       "STHISTO_DATA_DIR": str(tmp_path)}.items():
        clean_env.setenv(var, value)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = Settings()
    assert (s.n_jobs, s.device, s.seed, s.verbosity, s.progress_bar) == (-1, "cuda:1", 42, 3, False)
    assert s.datasetdir == tmp_path.resolve()


def test_misspelt_variable_is_named(clean_env):
    clean_env.setenv("STHISTO_NJOBS", "4")
    clean_env.setenv("STHISTO_UPDATE_BASELINES", "1")  # a test-suite variable: not close to a setting
    with pytest.warns(RuntimeWarning) as record:
        Settings()
    assert [str(w.message) for w in record] == [
        "environment variable STHISTO_NJOBS is not a sthisto setting (ignored); did you mean STHISTO_N_JOBS?"]


def test_import_survives_every_bad_variable_at_once():
    env = {**os.environ, "STHISTO_N_JOBS": "abc", "STHISTO_SEED": "x", "STHISTO_DEVICE": "gpu",
           "STHISTO_VERBOSITY": "loud", "STHISTO_PROGRESS": "2", "STHISTO_DATA_DIR": ""}
    code = "import sthisto; s = sthisto.settings; print(s.n_jobs, s.seed, s.device, s.verbosity, s.progress_bar)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["1", "0", "auto", "1", "True"]
    for var in ("STHISTO_N_JOBS='abc'", "STHISTO_SEED='x'", "STHISTO_DEVICE='gpu'", "STHISTO_VERBOSITY='loud'",
                "STHISTO_PROGRESS='2'", "STHISTO_DATA_DIR=''"):
        assert f"ignoring the environment variable {var}" in out.stderr


@pytest.mark.parametrize(
    ("attr", "value", "message"),
    [
        ("n_jobs", "abc", r"n_jobs must be an integer >= -1, got 'abc'\. To fix: use -1 \(all cores\) or a positive"),
        ("n_jobs", 0, r"n_jobs must be -1 \(all cores\) or a positive integer, got 0\."),
        ("n_jobs", 2.5, r"n_jobs must be an integer >= -1, got 2\.5"),
        ("seed", -1, r"seed must be an integer between 0 and 4294967295, got -1\."),
        ("verbosity", 7, r"verbosity must be an integer between 0 and 3, got 7\. To fix: use 0 \(errors\)"),
        ("device", "gpu", r"device must be 'auto', 'cpu', 'cuda', 'cuda:<i>' or 'mps', got 'gpu'\."),
        ("progress_bar", 2, r"progress_bar must be True or False, got 2\."),
        ("datasetdir", 3, r"datasetdir must be a folder path, got 3\."),
    ],
)
def test_setting_an_invalid_value_raises(clean_env, attr, value, message):
    s = Settings()
    before = getattr(s, attr)
    with pytest.raises(ValueError, match=f"^{message}"):
        setattr(s, attr, value)
    assert getattr(s, attr) == before


def test_resolve_helpers_validate(clean_env):
    s = Settings()
    with pytest.raises(ValueError, match=r"n_jobs must be an integer >= -1, got -5"):
        s.resolve_n_jobs(-5)
    with pytest.raises(ValueError, match=r"seed must be an integer between 0 and 4294967295, got 1\.5"):
        s.resolve_seed(1.5)
