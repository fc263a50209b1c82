import subprocess
import sys
from pathlib import Path

import pytest

import sthisto as st
from sthisto._settings import Settings


def test_env_vars(monkeypatch, tmp_path):
    monkeypatch.setenv("STHISTO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STHISTO_SEED", "7")
    monkeypatch.setenv("STHISTO_N_JOBS", "2")
    monkeypatch.setenv("STHISTO_DEVICE", "cpu")
    s = Settings()
    assert s.datasetdir == Path(tmp_path).resolve()
    assert (s.seed, s.n_jobs, s.device) == (7, 2, "cpu")


def test_validation():
    s = Settings()
    with pytest.raises(ValueError, match="device"):
        s.device = "gpu"
    with pytest.raises(ValueError, match="n_jobs"):
        s.n_jobs = 0
    s.n_jobs = -1
    assert s.resolve_n_jobs() >= 1
    assert s.resolve_seed(None) == s.seed and s.resolve_seed(3) == 3


def test_cuda_request_without_cuda_is_clear():
    import torch

    from sthisto._device import resolve_device

    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            resolve_device("cuda")
        assert resolve_device("auto").type == "cpu"


def test_no_handler_at_import():
    code = "import logging, sthisto; print(len(logging.getLogger('sthisto').handlers))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"


def test_repr():
    assert "datasetdir" in repr(st.settings)


def test_torch_threads_follow_n_jobs_and_are_restored(monkeypatch):
    import torch

    from sthisto._device import torch_threads

    before = torch.get_num_threads()
    monkeypatch.setattr(st.settings, "_n_jobs", 1)
    with torch_threads():
        assert torch.get_num_threads() == 1
    with torch_threads(2):
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == before
