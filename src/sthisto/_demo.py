"""``sthisto demo``: the whole pipeline on the bundled HER2ST sections, end to end.

Loads C2, C3, C4; segments nuclei and computes morphology/topology features; computes
weights-free colour/texture image features (no pretrained CNN weights can be assumed
offline); builds the spot graph, the GO gene graph and Gene2Vec gene embeddings; runs
leave-one-section-out cross-validation of M2TGLGO and the baselines with the `paper`,
`selected` and `hest` protocols; prints a table and writes figures plus ``report.md``.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ._logging import logger

METHODS = ("m2tglgo", "ridge", "knn", "mean")
PROTOCOLS = ("paper", "selected", "hest")
MODALITIES = ("texture", "morphology", "topology")


@contextlib.contextmanager
def _step(name: str, timings: dict[str, float]):
    print(f"[sthisto demo] {name} …", flush=True)
    t0 = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - t0
    print(f"[sthisto demo] {name}: {timings[name]:.1f} s", flush=True)


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """Mean ± sd over test sections of each protocol's headline PCC, per method and gene set.

    Rows are ``"protocol / gene set"`` in the order paper, selected, hest; columns are methods.
    """
    pcc = df[df["metric"] == "pcc"]
    table = pcc.groupby(["protocol", "gene_set", "method"], sort=False)["value"].agg(["mean", "std"])
    table["cell"] = [
        "undefined" if np.isnan(m) else f"{m:.3f} ± {0.0 if np.isnan(s) else s:.3f}"
        for m, s in zip(table["mean"], table["std"], strict=True)
    ]
    wide = table["cell"].unstack("method")
    order = {p: i for i, p in enumerate(PROTOCOLS)}
    wide = wide.loc[sorted(wide.index, key=lambda pg: (order.get(pg[0], len(order)), pg[1] != "hvg"))]
    wide.index = [f"{p} / {g}" for p, g in wide.index]
    wide.columns.name = None
    return wide[[m for m in METHODS if m in wide.columns]]


def _prepare_sections(adatas, *, timings: dict[str, float]):
    import sthisto as st

    panel = st.datasets.her2st_panel()
    adatas = [a[:, panel].copy() for a in adatas]
    with _step("nuclei segmentation + features", timings):
        for a in adatas:
            st.pp.segment_nuclei(a)
            st.pp.nuclei_features(a)
    with _step("colour/texture image features", timings):
        for a in adatas:
            st.pp.image_features(a, model="texture")
    with _step("spot graph", timings):
        for a in adatas:
            st.pp.spatial_graph(a, n_neighs=6)
    with _step("GO gene graph", timings):
        st.pp.gene_ontology_graph(adatas[0])
        for a in adatas[1:]:
            for key in ("sthisto_go_similarity", "sthisto_go_connectivities"):
                a.varp[key] = adatas[0].varp[key]
            a.uns["sthisto_go"] = adatas[0].uns["sthisto_go"]
    with _step("gene embeddings (pretrained on other HER2ST patients)", timings):
        path = st.datasets.her2st_gene2vec()
        for a in adatas:
            st.pp.gene_embeddings(a, path=path)
    return adatas


def _as_figure(obj):
    """Return the Figure behind what a ``sthisto.pl`` function returned (Figure, Axes or array)."""
    from matplotlib.figure import Figure

    if isinstance(obj, Figure):
        return obj
    if isinstance(obj, tuple):
        obj = obj[0]
    if hasattr(obj, "get_figure"):
        return obj.get_figure()
    return np.asarray(obj, dtype=object).ravel()[0].get_figure()


def _typical_spot(adata) -> str:
    """Return the spot whose nucleus count is closest to the section median (a typical spot)."""
    counts = adata.obsm["sthisto_morphology"]["nucleus_count"]
    return str((counts - counts.median()).abs().idxmin())


def _figures(adatas, df: pd.DataFrame, *, epochs: int, device, out: Path) -> list[str]:
    """CV summary plus one showcase fold (train on C2+C3, show C4)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import sthisto as st

    train, test = adatas[:-1], adatas[-1]
    genes = df.attrs["genes"][str(test.obs["section"].iloc[0])]["hvg"]
    model = st.tl.fit(train, genes=genes, modalities=MODALITIES, epochs=epochs, device=device, seed=0)
    st.tl.predict(test, model)
    st.tl.evaluate(test, genes=genes)
    top = test.var.loc[genes, "sthisto_pcc"].sort_values(ascending=False).index[:4].tolist()
    plots = {
        "cv_summary.png": lambda: st.pl.cv_summary(df),
        "spatial_pred_top_genes.png": lambda: st.pl.spatial_pred(test, top),
        "gene_correlation.png": lambda: st.pl.gene_correlation(test, genes),
        "training_history.png": lambda: st.pl.training_history(model),
        "nuclei_example.png": lambda: st.pl.nuclei_outlines(test, spot=_typical_spot(test)),
    }
    written = []
    for name, draw in plots.items():
        fig = _as_figure(draw())
        fig.savefig(out / name, dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(name)
    return written


def run_demo(args) -> int:
    """Run the demo with parsed CLI arguments (``out``, ``epochs``, ``device``, ``quick``)."""
    import sthisto as st

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    epochs = args.epochs if args.epochs is not None else (30 if args.quick else 500)
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    with _step("load bundled HER2ST sections C2, C3, C4", timings):
        adatas = st.datasets.her2st_demo()
    for a in adatas:
        print(f"  {a.obs['section'].iloc[0]}: {a.n_obs} spots × {a.n_vars} genes")
    adatas = _prepare_sections(adatas, timings=timings)

    fit_kwargs = {"m2tglgo": {"epochs": epochs, "device": args.device}}
    with _step(f"leave-one-section-out CV ({', '.join(METHODS)}; M2TGLGO {epochs} epochs)", timings):
        df, per_gene = st.tl.cross_validate(
            adatas, method=list(METHODS), protocol=list(PROTOCOLS), n_top=50, modalities=MODALITIES,
            fit_kwargs=fit_kwargs, n_candidates=None, seed=0, return_per_gene=True,
        )
    df.to_csv(out / "cv_results.csv", index=False)
    per_gene.to_csv(out / "cv_per_gene.csv", index=False)
    table = summary_table(df)
    with _step("figures", timings):
        figures = _figures(adatas, df, epochs=epochs, device=args.device, out=out)
    timings["total"] = time.perf_counter() - t_start

    print("\nPer-gene PCC on held-out sections (leave-one-section-out over C2, C3, C4):")
    print(table.to_markdown())
    print("\n" + "\n".join(f"  {p}: {d}" for p, d in df.attrs["protocols"].items()))
    _write_report(out, table, df, timings, figures, epochs)
    print(f"\nwrote {out / 'report.md'} and {len(figures)} figures in {out}/ ({timings['total']:.0f} s)")
    logger.info("demo timings: %s", json.dumps(timings))
    return 0


def _write_report(out: Path, table: pd.DataFrame, df: pd.DataFrame, timings, figures, epochs) -> None:
    lines = [
        "# sthisto demo report",
        "",
        "Bundled HER2ST sections C2, C3, C4 (one patient; legacy ST, 100 µm spots), the 785-gene",
        "Hist2ST panel, leave-one-section-out. Image features are the weights-free colour/texture",
        f"extractor plus nuclei morphology and topology. M2TGLGO: {epochs} epochs.",
        "",
        "## Mean ± sd over test sections of the per-gene PCC",
        "",
        table.to_markdown(),
        "",
        "Protocols:",
        *[f"- `{p}`: {d}" for p, d in df.attrs["protocols"].items()],
        "",
        "## Step timings (s)",
        "",
        *[f"- {k}: {v:.1f}" for k, v in timings.items()],
        "",
        "## Figures",
        "",
        *[f"![{f}]({f})" for f in figures],
        "",
    ]
    (out / "report.md").write_text("\n".join(lines))
