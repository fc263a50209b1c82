import numpy as np
import pandas as pd
import pytest

import sthisto as st
from sthisto._expression import log_normalized
from sthisto.tl._baselines import fit_baseline

from ._eval_data import sections_with_features


@pytest.fixture
def sections(synthetic_sections):
    return sections_with_features(synthetic_sections)


def test_tidy_output_and_labels(sections):
    df, per_gene = st.tl.cross_validate(
        sections, method=["ridge", "knn", "mean"], protocol=["paper", "selected", "hest"],
        n_top=10, n_candidates=30, modalities=["deep"], return_per_gene=True,
        section_names=["A", "B", "C"],
    )
    assert list(df.columns) == ["fold", "test_section", "method", "gene_set", "protocol", "metric", "value"]
    assert set(df["fold"]) == {"A", "B", "C"} and set(df["method"]) == {"ridge", "knn", "mean"}
    combos = set(map(tuple, df[["gene_set", "protocol"]].drop_duplicates().to_numpy()))
    assert combos == {("hvg", "paper"), ("heg", "paper"), ("candidates", "selected"), ("hvg", "hest")}
    assert set(df.attrs["protocols"]) == {"paper", "selected", "hest"}
    assert "optimistic" in df.attrs["protocols"]["selected"]
    pcc = df[df.metric == "pcc"].set_index(["fold", "method", "gene_set", "protocol"])["value"]
    # the mean predictor: PCC undefined, reported as NaN with every gene counted
    assert pcc.xs("mean", level="method").isna().all()
    und = df[(df.method == "mean") & (df.metric == "n_pcc_undefined") & (df.protocol == "paper")]
    assert (und["value"] == 10).all()
    # ridge clearly beats the mean (MSE) and learns (PCC) on every fold
    mse = df[(df.metric == "mse") & (df.protocol == "paper")].set_index(["fold", "method", "gene_set"])["value"]
    assert (mse.xs("ridge", level="method") < mse.xs("mean", level="method")).all()
    assert (pcc.xs(("ridge", "hvg", "paper"), level=("method", "gene_set", "protocol")) > 0.4).all()
    # selected (best 10 of 30) is at least the mean of the 30
    sel = per_gene[(per_gene.protocol == "selected") & (per_gene.method == "ridge")]
    for fold, g in sel.groupby("fold"):
        top = np.sort(g["pcc"].dropna().to_numpy())[::-1][:10].mean()
        assert pcc[(fold, "ridge", "candidates", "selected")] == pytest.approx(top)
        assert top >= g["pcc"].mean()
    # per-gene table agrees with the summary
    pg = per_gene[(per_gene.protocol == "paper") & (per_gene.method == "knn") & (per_gene.gene_set == "heg")]
    for fold, g in pg.groupby("fold"):
        assert pcc[(fold, "knn", "heg", "paper")] == pytest.approx(g["pcc"].mean())
    assert len(df.attrs["timings"]) == 3 * 3 * 3
    pd.concat([df, df])  # attrs hold only plain values: concatenating results works


def test_genes_chosen_on_training_sections(sections):
    df = st.tl.cross_validate(sections, method="ridge", n_top=8, modalities=["deep"],
                              section_names=["A", "B", "C"])
    for fold, test in zip("ABC", range(3), strict=True):
        train = [s for i, s in enumerate(sections) if i != test]
        assert df.attrs["genes"][fold]["hvg"] == st.tl.select_genes(train, flavor="hvg", n_top=8)
        assert df.attrs["genes"][fold]["heg"] == st.tl.select_genes(train, flavor="heg", n_top=8)


def test_hest_pools_the_test_split_with_groups(sections):
    df, per_gene = st.tl.cross_validate(
        sections, method="ridge", protocol="hest", n_top=6, modalities=["deep"],
        groups=["p1", "p1", "p2"], section_names=["A", "B", "C"], return_per_gene=True,
    )
    assert set(df["fold"]) == {"p1", "p2"}
    assert set(df["test_section"]) == {"A+B", "C"}
    genes = df.attrs["genes"]["p1"]["hvg"]
    model = fit_baseline([sections[2]], method="ridge", genes=genes, modalities=["deep"])
    pred = np.concatenate([model.predict(a) for a in sections[:2]])
    y = np.concatenate([np.log1p(a[:, genes].X.toarray()) for a in sections[:2]])
    expected = np.mean([np.corrcoef(y[:, j], pred[:, j])[0, 1] for j in range(len(genes))])
    got = df[(df.fold == "p1") & (df.metric == "pcc")]["value"].item()
    assert got == pytest.approx(expected)


def test_callable_method(sections):
    calls = []

    def oracle(train, *, genes, modalities, layer, seed, scale=1.0):
        calls.append((len(train), tuple(modalities), seed, scale))

        class Predictor:
            def predict(self, adata):
                return scale * log_normalized(adata, genes)

        return Predictor()

    df = st.tl.cross_validate(sections, method=oracle, n_top=5, modalities=["deep"], seed=3,
                              fit_kwargs={"oracle": {"scale": 2.0}})
    pcc = df[df.metric == "pcc"]["value"]
    assert np.allclose(pcc, 1.0) and set(df["method"]) == {"oracle"}
    assert calls[0] == (2, ("deep",), 3, 2.0) and len(calls) == 6  # 3 folds x (hvg, heg)


def test_m2tglgo_follows_the_predictor_protocol(sections, monkeypatch):
    """'m2tglgo' is tl.fit behind the same protocol as every method: nothing is written to the sections."""
    from sthisto.tl import _methods

    seen = {}

    class Fitted:
        def __init__(self, genes):
            self.genes = list(genes)

        def predict(self, adata):
            return log_normalized(adata, self.genes)

    def fake_fit(adatas, *, genes, modalities, layer, seed, epochs, progress):
        seen.update(n_train=len(adatas), modalities=modalities, epochs=epochs, progress=progress)
        return Fitted(genes)

    monkeypatch.setattr("sthisto.tl._fit.fit", fake_fit)
    before = [(set(a.layers), set(a.uns)) for a in sections]
    df = st.tl.cross_validate(sections, n_top=5, modalities=["deep"], fit_kwargs={"m2tglgo": {"epochs": 2}})
    assert seen == {"n_train": 2, "modalities": ("deep",), "epochs": 2, "progress": False}
    assert np.allclose(df[df.metric == "pcc"]["value"], 1.0)
    assert set(df["method"]) == {"m2tglgo"} and _methods.METHODS["m2tglgo"] is _methods._fit_m2tglgo
    assert [(set(a.layers), set(a.uns)) for a in sections] == before


def test_explicit_folds_train_on_one(sections):
    df = st.tl.cross_validate(sections, method="ridge", n_top=5, modalities=["deep"], section_names=list("ABC"),
                              folds=[(["A"], ["B", "C"]), ("B", "A")])
    assert set(df["fold"]) == {"A→B+C", "B→A"}
    assert set(df[df.fold == "A→B+C"]["test_section"]) == {"B", "C"}
    assert df.attrs["genes"]["A→B+C"]["hvg"] == st.tl.select_genes(sections[:1], flavor="hvg", n_top=5)
    for bad in ([(["A"], ["A"])], [(["A"], ["Z"])], [("A",)], []):
        with pytest.raises(ValueError, match="folds"):
            st.tl.cross_validate(sections, method="ridge", modalities=["deep"], section_names=list("ABC"),
                                 folds=bad)


def test_bad_input(sections):
    with pytest.raises(ValueError, match="at least two"):
        st.tl.cross_validate(sections[:1], method="ridge")
    with pytest.raises(ValueError, match="protocol"):
        st.tl.cross_validate(sections, method="ridge", protocol="best")
    with pytest.raises(ValueError, match="method"):
        st.tl.cross_validate(sections, method="svm")
    with pytest.raises(ValueError, match="groups"):
        st.tl.cross_validate(sections, method="ridge", groups=["a", "b"])
    with pytest.raises(ValueError, match="two sections"):
        st.tl.cross_validate(sections, method="ridge", groups=["a", "a", "a"])
    with pytest.raises(KeyError, match="sthisto.pp.nuclei_features"):
        st.tl.cross_validate(sections, method="ridge", modalities=["morphology"])


def test_per_method_fit_kwargs(sections):
    df = st.tl.cross_validate(sections, method="knn", n_top=5, modalities=["deep"],
                              fit_kwargs={"knn": {"neighbors": [1]}})
    df2 = st.tl.cross_validate(sections, method=["knn", "ridge"], n_top=5, modalities=["deep"],
                               fit_kwargs={"knn": {"neighbors": [1]}})
    one = df[df.metric == "mse"]["value"].to_numpy()
    np.testing.assert_allclose(one, df2[(df2.metric == "mse") & (df2.method == "knn")]["value"])
    default = st.tl.cross_validate(sections, method="knn", n_top=5, modalities=["deep"])
    assert not np.allclose(one, default[default.metric == "mse"]["value"])
    with pytest.raises(ValueError, match="fit_kwargs must map method names"):
        st.tl.cross_validate(sections, method="knn", modalities=["deep"], fit_kwargs={"neighbors": [1]})
    with pytest.raises(ValueError, match="fit_kwargs must map method names"):
        st.tl.cross_validate(sections, method="knn", modalities=["deep"], fit_kwargs={"ridge": {}})
