import numpy as np
import pytest

import sthisto as st
from sthisto.datasets import _fetch

from .http_server import serve


def test_download_from_local_server_and_cache(mirror, tmp_path, monkeypatch):
    with serve(mirror) as url:
        adata = st.datasets.her2st("S1", base_url=url)
    assert adata.n_obs == 100
    assert (tmp_path / "cache" / "her2st" / "S1_counts.tsv.gz").is_file()
    # second call: served from the cache, no server needed
    again = st.datasets.her2st("S1", base_url="http://127.0.0.1:9")
    np.testing.assert_array_equal(again.X.toarray(), adata.X.toarray())


def test_env_var_overrides_base_url(mirror, monkeypatch):
    with serve(mirror) as url:
        monkeypatch.setenv("STHISTO_DATA_URL", url)
        path = st.datasets.fetch("her2st", "S1/selection.tsv")
    assert path.read_text().startswith("x\ty")


def test_hash_mismatch_fails(mirror):
    (mirror / "data" / "S1_selection.tsv").write_text("tampered")
    with serve(mirror) as url, pytest.raises(ValueError, match="(?i)hash"):
        st.datasets.fetch("her2st", "S1/selection.tsv", base_url=url)


def test_unknown_names(mirror):
    with pytest.raises(KeyError, match="unknown HER2ST section"):
        st.datasets.her2st("Z9")
    with pytest.raises(KeyError, match="has no file"):
        st.datasets.fetch("her2st", "S1/nothing")
    with pytest.raises(KeyError, match="unknown dataset"):
        st.datasets.fetch("nothing", "x")


def test_real_registry_entries_are_complete():
    reg = _fetch.registry.__wrapped__() if hasattr(_fetch.registry, "__wrapped__") else _fetch.registry()
    her2st = reg["her2st"]
    assert her2st["license"] and her2st["attribution"]
    assert {"C2", "C3", "C4"} <= set(st.datasets.her2st_sections(with_image=True))
    assert len(st.datasets.her2st_sections()) >= 20
    assert all(len(f["sha256"]) == 64 for f in her2st["files"].values())
