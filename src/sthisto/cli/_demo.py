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

import anndata
import numpy as np
import pandas as pd

from sthisto._logging import logger

from ._report import METHODS, choices, legend, summary_table, write_report

PROTOCOLS = ("paper", "selected", "hest")
MODALITIES = ("texture", "morphology", "topology")


@contextlib.contextmanager
def _step(name: str, timings: dict[str, float]):
    print(f"[sthisto demo] {name} …", flush=True)
    t0 = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - t0
    print(f"[sthisto demo] {name}: {timings[name]:.1f} s", flush=True)


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
    with _step("GO gene graph + gene embeddings (pretrained on other HER2ST patients)", timings):
        genes = anndata.AnnData(var=pd.DataFrame(index=adatas[0].var_names))  # the gene set, once
        st.pp.gene_ontology_graph(genes)
        st.pp.gene_embeddings(genes, path=st.datasets.her2st_gene2vec())
    return adatas, genes


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
    from sthisto.pp.nuclei import NUCLEUS_COUNT

    counts = adata.obsm["sthisto_morphology"][NUCLEUS_COUNT]
    return str((counts - counts.median()).abs().idxmin())


def _figures(adatas, df: pd.DataFrame, *, fit_kwargs: dict, out: Path) -> list[str]:
    """CV summary plus one showcase fold (train on C2+C3, show C4)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import sthisto as st

    train, test = adatas[:-1], adatas[-1]
    genes = df.attrs["genes"][str(test.obs["section"].iloc[0])]["hvg"]
    model = st.tl.fit(train, genes=genes, modalities=MODALITIES, seed=0, **fit_kwargs)
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


def m2tglgo_settings(*, preset: str, epochs: int | None, quick: bool) -> tuple[dict, str]:
    """Keyword arguments of ``tl.fit`` for the demo, and a one-line description of the recipe."""
    settings: dict = {"preset": preset}
    if quick:
        settings.update(epochs=epochs or 30, n_ensemble=1)
    elif epochs is not None:
        settings["epochs"] = epochs
    from sthisto.tl import M2TGLGOConfig

    cfg = M2TGLGOConfig.paper() if preset == "paper" else M2TGLGOConfig()
    cfg = cfg.replace(**{k: v for k, v in settings.items() if k != "preset"})
    how = (f"epochs chosen by inner validation (at most {cfg.epochs})" if cfg.epoch_selection == "inner"
           else f"{cfg.epochs} epochs")
    return settings, f"{preset} recipe, {how}, {cfg.n_ensemble} ensemble member(s)"


def run_demo(*, out: Path, epochs: int | None = None, preset: str = "default", device: str | None = None,
             quick: bool = False) -> int:
    """Run the demo end to end and write its outputs to ``out`` (already checked to be writable).

    Parameters
    ----------
    out
        Output folder.
    epochs
        M2TGLGO epochs (the most inner validation may choose); ``None``: the preset's.
    preset
        ``"default"`` or ``"paper"`` (see :class:`sthisto.tl.M2TGLGOConfig`).
    device
        Torch device of M2TGLGO (``None``: ``sthisto.settings.device``).
    quick
        A fast smoke run: at most 30 epochs and one ensemble member.
    """
    import sthisto as st

    settings, recipe = m2tglgo_settings(preset=preset, epochs=epochs, quick=quick)
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    with _step("load bundled HER2ST sections C2, C3, C4", timings):
        adatas = st.datasets.her2st_demo()
    for a in adatas:
        print(f"  {a.obs['section'].iloc[0]}: {a.n_obs} spots × {a.n_vars} genes")
    adatas, genes = _prepare_sections(adatas, timings=timings)

    fit_kwargs = {**settings, "device": device, "gene_prior": genes}
    with _step(f"leave-one-section-out CV ({', '.join(METHODS)}; M2TGLGO {recipe})", timings):
        df, per_gene = st.tl.cross_validate(
            adatas, method=list(METHODS), protocol=list(PROTOCOLS), n_top=50, modalities=MODALITIES,
            fit_kwargs={"m2tglgo": fit_kwargs}, n_candidates=None, seed=0, return_per_gene=True,
        )
    df.to_csv(out / "cv_results.csv", index=False)
    per_gene.to_csv(out / "cv_per_gene.csv", index=False)
    with _step("figures", timings):
        figures = _figures(adatas, df, fit_kwargs={**fit_kwargs, "progress": False}, out=out)
    timings["total"] = time.perf_counter() - t_start

    print("\nPer-gene PCC on held-out sections (leave-one-section-out over C2, C3, C4):")
    print(summary_table(df).to_markdown())
    print("\n" + "\n".join(legend(df)))
    print("\nWhat inner validation chose (HVG fits):")
    print(choices(df).to_markdown(index=False))
    report = write_report(out, df, recipe=recipe, timings=timings, figures=figures)
    print(f"\nwrote {report} and {len(figures)} figures in {out}/ ({timings['total']:.0f} s)")
    logger.info("demo timings: %s", json.dumps(timings))
    return 0
