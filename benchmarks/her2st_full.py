"""Full-resolution HER2ST C2, C3, C4 with every sthisto feature, cached as .h5ad.

The generalisation benchmark and the model studies read these. The features are computed
on the *full* images (not the cropped demo), exactly as a user would:
``pp.segment_nuclei``, ``pp.nuclei_features``, ``pp.image_features(model="texture")``,
``pp.spatial_graph(n_neighs=6)``, the GO graph and the Gene2Vec vectors bundled with
sthisto (trained on the HER2ST patients other than C, so nothing leaks from C2-C4).

Run:  python benchmarks/her2st_full.py [--data ../shared/data/her2st] [--cache DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import anndata as ad

import sthisto as st

SECTIONS = ("C2", "C3", "C4")
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "her2st"
DEFAULT_CACHE = Path(__file__).resolve().parent / ".cache"


def _prepare(section: str, data: Path) -> ad.AnnData:
    a = st.read.legacy_st(data / "counts" / f"{section}.tsv.gz",
                          data / "spots" / f"{section}_selection.tsv",
                          data / "images" / f"{section}.jpg", library_id=section)
    a.obs["section"] = section
    panel = [g for g in st.datasets.her2st_panel() if g in a.var_names]
    a = a[:, panel].copy()
    t0 = time.perf_counter()
    st.pp.segment_nuclei(a)
    st.pp.nuclei_features(a)
    st.pp.image_features(a, model="texture")
    st.pp.spatial_graph(a, n_neighs=6)
    st.pp.gene_ontology_graph(a)
    st.pp.gene_embeddings(a, path=st.datasets.her2st_gene2vec())
    print(f"{section}: {a.n_obs} spots, {a.n_vars} genes, features in {time.perf_counter() - t0:.1f} s")
    # the per-nucleus table is large and not needed downstream
    a.uns.pop(st._constants.NUCLEI, None)
    return a


def load(sections=SECTIONS, *, data: Path = DEFAULT_DATA, cache: Path = DEFAULT_CACHE) -> list[ad.AnnData]:
    """Return the prepared sections, computing and caching them on the first call."""
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for s in sections:
        f = cache / f"{s}_full.h5ad"
        if not f.exists():
            a = _prepare(s, data)
            a.write_h5ad(f)
        out.append(ad.read_h5ad(f))
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = p.parse_args()
    st.settings.progress_bar = False
    for a in load(data=args.data, cache=args.cache):
        print(a)
