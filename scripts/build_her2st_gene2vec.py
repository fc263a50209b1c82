"""Pretrain the demo's Gene2Vec vectors on HER2ST sections of *other* patients.

The demo evaluates on patient C (sections C2-C4). Its gene-node inputs are Gene2Vec
vectors trained, like the published Gene2Vec, on external expression data: here the
count tables of all HER2ST sections of patients A, B, D, E, F, G and H (no image needed),
restricted to the 785-gene Hist2ST panel. No patient-C expression is used, so the
vectors leak nothing about the held-out sections.

Usage: python scripts/build_her2st_gene2vec.py [../shared/data/her2st]
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

import sthisto as st

OUT = Path(__file__).resolve().parents[1] / "src" / "sthisto" / "datasets" / "_data" / "her2st_gene2vec_785.txt.gz"
DIM = 200


def main(src: str = "../shared/data/her2st") -> None:
    panel = st.datasets.her2st_panel()
    sections = sorted(p for p in Path(src, "counts").glob("*.tsv.gz") if not p.name.startswith("C"))
    adatas = []
    for path in sections:
        table = pd.read_csv(path, sep="\t", index_col=0)
        a = ad.AnnData(sp.csr_matrix(table.to_numpy(np.float32)), var=pd.DataFrame(index=table.columns.astype(str)))
        a.var_names_make_unique()
        adatas.append(a[:, [g for g in panel if g in a.var_names]].copy())
    print(f"training on {len(adatas)} sections: {[p.name.split('.')[0] for p in sections]}")
    common = [g for g in panel if all(g in a.var_names for a in adatas)]
    adatas = [a[:, common].copy() for a in adatas]
    target = adatas[0].copy()
    st.pp.gene_embeddings(target, adatas=adatas, dim=DIM, seed=0)
    vectors = np.asarray(target.varm["sthisto_gene2vec"])
    found = ~target.var["sthisto_gene2vec_missing"].to_numpy(bool)
    with gzip.open(OUT, "wt") as fh:
        fh.write(f"{int(found.sum())} {DIM}\n")
        for gene, vec in zip(target.var_names[found], vectors[found], strict=True):
            fh.write(gene + " " + " ".join(f"{v:.5g}" for v in vec) + "\n")
    print(f"wrote {OUT} ({found.sum()} genes × {DIM}, {OUT.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main(*sys.argv[1:])
