import gzip

import pytest

import sthisto as st
from sthisto.datasets import _go

from .http_server import serve

OBO = "format-version: 1.2\nontology: go\n\n[Term]\nid: GO:0000001\nname: r\nnamespace: biological_process\n"
GAF = "!gaf-version: 2.1\n" + "\t".join(
    ["UniProtKB", "P1", "G1", "", "GO:0000001", "PMID:1", "IDA", "", "P", "n", "G1", "protein",
     "taxon:9606", "20190101", "X", "", ""]) + "\n"


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    root = tmp_path / "mirror" / "2020-01-01"
    (root / "ontology").mkdir(parents=True)
    (root / "annotations").mkdir(parents=True)
    (root / "ontology" / "go-basic.obo").write_text(OBO)
    (root / "annotations" / "goa_human.gaf.gz").write_bytes(gzip.compress(GAF.encode()))
    monkeypatch.setattr(st.settings, "_datasetdir", tmp_path / "cache")
    return tmp_path / "mirror"


def test_download_cache_and_parse(mirror, tmp_path):
    with serve(mirror) as url:
        paths = st.datasets.gene_ontology("2020-01-01", base_url=url)
    assert paths["ontology"] == tmp_path / "cache" / "gene_ontology" / "2020-01-01" / "go-basic.obo"
    assert paths["ontology"].read_text() == OBO
    # second call: from the cache, no server
    again = st.datasets.gene_ontology("2020-01-01", base_url="http://127.0.0.1:9")
    assert again == paths
    from sthisto.pp._go._gaf import read_gaf
    from sthisto.pp._go._obo import read_obo

    assert read_obo(paths["ontology"]).ids.tolist() == ["GO:0000001"]
    assert read_gaf(paths["annotations"]).gene_names.tolist() == ["G1"]


def test_env_var_and_pinned_hash(mirror, monkeypatch):
    monkeypatch.setitem(_go.GO_REGISTRY, "2020-01-01", {"ontology": "0" * 64, "annotations": None})
    with serve(mirror) as url:
        monkeypatch.setenv("STHISTO_DATA_URL", url)
        with pytest.raises(ValueError, match="(?i)hash"):
            st.datasets.gene_ontology("2020-01-01")


def test_bad_release():
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        st.datasets.gene_ontology("latest")
