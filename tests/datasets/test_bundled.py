"""The bundled GO snapshot is reached through its public accessor."""

import json

import numpy as np

import sthisto as st


def test_bundled_gene_ontology_is_readable_and_documented():
    res = st.datasets.bundled_gene_ontology()
    with res.open("rb") as fh, np.load(fh, allow_pickle=False) as z:
        assert len(z.files) > 3
    meta = json.loads(res.parent.joinpath(res.name.replace(".npz", ".json")).read_text())
    assert meta["name"] == "go_human_2019-01-29" and len(meta["ontology"]["sha256"]) == 64
