"""Leave-one-section-out (or leave-one-group-out) cross-validation with labelled protocols.

Every method — M2TGLGO, the baselines, or a user callable — sees the same folds, the
same features, the same genes (chosen on the training sections of each fold only) and
is trained on the same targets (``normalize_total(1e4)`` + ``log1p``). One fit per fold and
gene set serves every requested protocol:

``paper``
    Top-``n_top`` HVG and HEG of the training sections (two gene sets, two fits); per test
    section the mean (and median) per-gene PCC, Spearman, MSE, MAE, the number of genes
    with undefined PCC, and the gene-gene correlation recovery (GGC).
``selected``
    Optimistic, labelled so: a model is fitted on ``n_candidates`` training HVGs and the
    mean of the ``n_top`` *best* per-gene PCCs on the test section is reported (genes
    chosen by looking at the test result, as several papers do).
``hest``
    HEST-Benchmark-style evaluation: the HVG fit's predictions against ``log1p`` of the
    raw counts, per-gene PCC over all spots of the test split pooled (one value per fold).
    The models are trained on the log-normalised target like everywhere else.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from sthisto._expression import targets
from sthisto._logging import logger
from sthisto._settings import progress
from sthisto.tl._baselines import BASELINES, fit_baseline
from sthisto.tl._evaluate import gene_metrics, ggc_arrays
from sthisto.tl._select_genes import common_genes, select_genes

PROTOCOLS = {
    "paper": "top-n HVG/HEG chosen on training sections; per-section mean per-gene PCC",
    "selected": "mean of the n best per-gene PCCs among candidate genes (optimistic: genes chosen on the test result)",
    "hest": "log1p targets; per-gene PCC pooled over the test split (HEST-Benchmark style)",
}
_TMP_KEY = "_sthisto_cv_pred"


def _section_names(adatas: Sequence[AnnData], names: Sequence[str] | None) -> list[str]:
    if names is not None:
        names = [str(n) for n in names]
        if len(names) != len(adatas) or len(set(names)) != len(names):
            raise ValueError("section_names must give one unique name per section.")
        return names
    libs = []
    for a in adatas:
        spatial = a.uns.get("spatial", {})
        libs.append(next(iter(spatial)) if isinstance(spatial, dict) and len(spatial) == 1 else None)
    if None not in libs and len(set(libs)) == len(libs):
        return [str(x) for x in libs]
    return [f"section{i}" for i in range(len(adatas))]


def _folds(names: list[str], groups: Sequence | None) -> list[tuple[str, list[int]]]:
    """``[(fold label, test section indices)]``: one section, or one group, per fold."""
    if groups is None:
        folds = [(n, [i]) for i, n in enumerate(names)]
    else:
        groups = [str(g) for g in groups]
        if len(groups) != len(names):
            raise ValueError(f"groups has {len(groups)} labels for {len(names)} sections.")
        labels = list(dict.fromkeys(groups))
        folds = [(g, [i for i, x in enumerate(groups) if x == g]) for g in labels]
    if len(folds) < 2:
        raise ValueError("cross-validation needs at least two sections (or two groups).")
    return folds


class _Method:
    """Uniform fit/predict over M2TGLGO, baselines and user callables."""

    def __init__(self, method: str | Callable, fit_kwargs: dict[str, Any]):
        self.method = method
        self.fit_kwargs = fit_kwargs
        if callable(method):
            self.name = getattr(method, "__name__", type(method).__name__)
        elif method == "m2tglgo" or method in BASELINES:
            self.name = method
        else:
            raise ValueError(
                f"method must be 'm2tglgo', one of {BASELINES}, or a callable; got {method!r}"
            )

    def fit(self, train, *, genes, modalities, layer, seed):
        kw = dict(self.fit_kwargs)
        if callable(self.method):
            return self.method(train, genes=genes, modalities=modalities, layer=layer, seed=seed, **kw)
        if self.method == "m2tglgo":
            import sthisto as st

            return st.tl.fit(train, genes=genes, modalities=modalities, layer=layer, seed=seed, **kw)
        return fit_baseline(train, method=self.method, genes=genes, features=modalities,
                            layer=layer, seed=seed, **kw)

    def predict(self, model, adata: AnnData, genes: list[str]) -> np.ndarray:
        if self.method == "m2tglgo":
            import sthisto as st

            had_layer, had_uns = _TMP_KEY in adata.layers, _TMP_KEY in adata.uns
            try:
                st.tl.predict(adata, model, key_added=_TMP_KEY)
                x = adata.layers[_TMP_KEY]
                x = np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)
                pred = x[:, adata.var_names.get_indexer(genes)]
            finally:
                if not had_layer and _TMP_KEY in adata.layers:
                    del adata.layers[_TMP_KEY]
                if not had_uns and _TMP_KEY in adata.uns:
                    del adata.uns[_TMP_KEY]
        else:
            pred = np.asarray(model.predict(adata), dtype=np.float64)
        if pred.shape != (adata.n_obs, len(genes)):
            raise ValueError(
                f"method {self.name!r} predicted shape {pred.shape}, expected {(adata.n_obs, len(genes))}."
            )
        return pred


def _rows(base: dict, values: dict) -> list[dict]:
    return [{**base, "metric": m, "value": float(v)} for m, v in values.items()]


_KEY_COLUMNS = ("fold", "test_section", "method", "gene_set", "protocol")


def _per_gene(base: dict, table: pd.DataFrame) -> pd.DataFrame:
    out = table.reset_index()
    for k in reversed(_KEY_COLUMNS):
        out.insert(0, k, base[k])
    return out


def cross_validate(
    adatas: Sequence[AnnData],
    *,
    method: str | Callable | Sequence[str | Callable] = "m2tglgo",
    protocol: str | Sequence[str] = "paper",
    n_top: int = 50,
    groups: Sequence | None = None,
    modalities: Sequence[str] = ("deep", "morphology", "topology"),
    fit_kwargs: dict[str, Any] | None = None,
    layer: str | None = None,
    n_candidates: int | None = 1000,
    section_names: Sequence[str] | None = None,
    seed: int = 0,
    return_per_gene: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Cross-validate expression prediction across sections with labelled protocols.

    Leave-one-section-out by default; with ``groups`` (one label per section, e.g. the
    patient) leave-one-group-out. In each fold the genes are chosen on the training
    sections only (:func:`sthisto.tl.select_genes`), every method is fitted on the
    training sections and predicts each test section.

    Parameters
    ----------
    adatas
        Sections with raw counts and the feature blocks in ``obsm``.
    method
        ``"m2tglgo"`` (:func:`sthisto.tl.fit` / :func:`sthisto.tl.predict`), ``"ridge"``,
        ``"knn"``, ``"mean"``, a callable, or a list of these (compared on the same folds
        and genes). A callable is called as ``method(train_adatas, genes=, modalities=,
        layer=, seed=, **fit_kwargs)`` and returns an object whose ``predict(adata)``
        returns an ``(n_obs, len(genes))`` array of log-normalised expression.
    protocol
        ``"paper"``, ``"selected"``, ``"hest"`` or a list of them (computed from one fit
        per fold and gene set).
    n_top
        Number of HVG/HEG genes (``paper``, ``hest``) and of best genes (``selected``).
    groups
        One label per section; sections sharing a label are held out together.
    modalities
        Modality names (see :func:`sthisto.tl.fit`) or ``obsm`` keys; every method uses the
        same blocks (the baselines concatenate them).
    fit_kwargs
        Extra keyword arguments of the fit function (e.g. ``{"epochs": 100}`` for
        M2TGLGO, ``{"n_neighbors": 5}`` for kNN), passed to every method; a dict keyed by
        method name (``{"m2tglgo": {"epochs": 100}, "knn": {"n_neighbors": 5}}``) gives
        per-method arguments.
    layer
        Layer holding raw counts; ``None`` uses ``X``.
    n_candidates
        Candidate genes of the ``selected`` protocol: the top training HVGs (``None``: all
        genes shared by the sections).
    section_names
        Names of the sections in the output; default: their ``uns['spatial']`` library ids
        when unique, else ``section0``, ``section1``…
    seed
        Seed passed to every fit.
    return_per_gene
        Also return the per-gene table.

    Returns
    -------
    A tidy :class:`pandas.DataFrame` with columns ``fold``, ``test_section``, ``method``,
    ``gene_set`` (``"hvg"``, ``"heg"``, ``"candidates"``), ``protocol``, ``metric``
    (``pcc`` — the headline number of each protocol —, ``pcc_median``, ``spearman``,
    ``mse``, ``mae``, ``ggc``, ``n_genes``, ``n_pcc_undefined``) and ``value``; its
    ``attrs`` hold ``protocols`` (what each label means), ``genes`` (per fold and gene
    set), ``timings`` (fit/predict seconds) and ``params``. With ``return_per_gene``, a
    second DataFrame with one row per fold, test section, method, gene set, protocol and
    gene (``pcc``, ``spearman``, ``mse``, ``mae``, ``pcc_undefined``).
    """
    if isinstance(adatas, AnnData) or len(adatas) < 2:
        raise ValueError("cross_validate needs a list of at least two sections.")
    protocols = [protocol] if isinstance(protocol, str) else list(protocol)
    bad = [p for p in protocols if p not in PROTOCOLS]
    if bad or not protocols:
        raise ValueError(f"protocol must be one of {list(PROTOCOLS)} (or a list), got {protocol!r}")
    methods = [method] if isinstance(method, str) or callable(method) else list(method)
    fit_kwargs = dict(fit_kwargs or {})
    method_names = {"m2tglgo", *BASELINES} | {getattr(m, "__name__", "") for m in methods}
    per_method = bool(fit_kwargs) and all(
        k in method_names and isinstance(v, dict) for k, v in fit_kwargs.items()
    )
    runners = []
    for m in methods:
        name = m if isinstance(m, str) else getattr(m, "__name__", "")
        runners.append(_Method(m, dict(fit_kwargs.get(name, {})) if per_method else fit_kwargs))
    if len({r.name for r in runners}) != len(runners):
        raise ValueError("methods must have distinct names.")
    modalities = (modalities,) if isinstance(modalities, str) else tuple(modalities)
    names = _section_names(adatas, section_names)
    folds = _folds(names, groups)
    common = common_genes(adatas)  # genes shared by *all* sections, so the test section has them

    rows: list[dict] = []
    per_gene: list[pd.DataFrame] = []
    genes_used: dict[str, dict[str, list[str]]] = {}
    timings: list[dict] = []
    tasks = [(f, r) for f in folds for r in runners]
    for (fold, test_idx), runner in progress(tasks, desc="cross-validation"):
        train = [a for i, a in enumerate(adatas) if i not in test_idx]
        tests = [adatas[i] for i in test_idx]
        if fold not in genes_used:
            genes_used[fold] = _gene_sets(train, common, protocols, n_top, n_candidates, layer)
        for gene_set, genes in genes_used[fold].items():
            t0 = time.perf_counter()
            model = runner.fit(train, genes=genes, modalities=modalities, layer=layer, seed=seed)
            t1 = time.perf_counter()
            preds = [runner.predict(model, a, genes) for a in tests]
            t2 = time.perf_counter()
            timings.append({"fold": fold, "method": runner.name, "gene_set": gene_set,
                            "fit_s": t1 - t0, "predict_s": t2 - t1})
            logger.info("fold %s, %s, %s: fit %.2fs, predict %.2fs", fold, runner.name, gene_set,
                        t1 - t0, t2 - t1)
            for p in protocols:
                _score(p, gene_set, genes, tests, preds, [names[i] for i in test_idx],
                       {"fold": fold, "method": runner.name}, n_top, layer, rows, per_gene)

    df = pd.DataFrame(rows, columns=["fold", "test_section", "method", "gene_set", "protocol",
                                     "metric", "value"])
    df.attrs = {
        "protocols": {p: PROTOCOLS[p] for p in protocols},
        "genes": genes_used,
        "timings": timings,
        "params": {"method": [r.name for r in runners], "protocol": protocols, "n_top": n_top,
                   "groups": None if groups is None else [str(g) for g in groups],
                   "modalities": list(modalities), "fit_kwargs": repr(fit_kwargs), "layer": layer,
                   "n_candidates": n_candidates, "seed": seed, "sections": names},
    }
    if return_per_gene:
        return df, pd.concat(per_gene, ignore_index=True)
    return df


def _gene_sets(train, common, protocols, n_top, n_candidates, layer) -> dict[str, list[str]]:
    """Gene sets a fold needs, chosen on the training sections (restricted to shared genes)."""
    shared = set(common)
    train = [a[:, [g for g in a.var_names if g in shared]] for a in train]
    sets: dict[str, list[str]] = {}
    if "paper" in protocols or "hest" in protocols:
        sets["hvg"] = select_genes(train, flavor="hvg", n_top=n_top, layer=layer)
    if "paper" in protocols:
        sets["heg"] = select_genes(train, flavor="heg", n_top=n_top, layer=layer)
    if "selected" in protocols:
        n = len(common) if n_candidates is None else n_candidates
        sets["candidates"] = select_genes(train, flavor="hvg", n_top=n, layer=layer)
    return sets


def _score(protocol, gene_set, genes, tests, preds, test_names, base, n_top, layer, rows, per_gene):
    """Append the rows of one protocol for one fitted gene set."""
    if protocol == "paper" and gene_set not in ("hvg", "heg"):
        return
    if protocol == "hest" and gene_set != "hvg":
        return
    if protocol == "selected" and gene_set != "candidates":
        return
    if protocol == "hest":
        y = np.concatenate([targets(a, genes, layer, transform="log1p") for a in tests])
        table = gene_metrics(y, np.concatenate(preds), genes)
        key = {**base, "test_section": "+".join(test_names), "gene_set": gene_set,
               "protocol": protocol}
        defined = table["pcc"].dropna()
        rows += _rows(key, {
            "pcc": defined.mean() if len(defined) else np.nan,
            "pcc_median": defined.median() if len(defined) else np.nan,
            "mse": table["mse"].mean(), "mae": table["mae"].mean(),
            "n_genes": len(table), "n_pcc_undefined": table["pcc"].isna().sum(),
        })
        per_gene.append(_per_gene(key, table))
        return
    for a, pred, name in zip(tests, preds, test_names, strict=True):
        y = targets(a, genes, layer)
        table = gene_metrics(y, pred, genes)
        key = {**base, "test_section": name, "gene_set": gene_set, "protocol": protocol}
        defined = table["pcc"].dropna()
        if protocol == "paper":
            values = {
                "pcc": defined.mean() if len(defined) else np.nan,
                "pcc_median": defined.median() if len(defined) else np.nan,
                "spearman": table["spearman"].mean(skipna=True),
                "mse": table["mse"].mean(), "mae": table["mae"].mean(),
                "ggc": ggc_arrays(y, pred)[0],
                "n_genes": len(table), "n_pcc_undefined": table["pcc"].isna().sum(),
            }
        else:  # selected: the n_top best defined PCCs
            best = np.sort(defined.to_numpy())[::-1][:n_top]
            values = {"pcc": best.mean() if best.size else np.nan, "n_genes": len(table),
                      "n_pcc_undefined": table["pcc"].isna().sum()}
        rows += _rows(key, values)
        per_gene.append(_per_gene(key, table))
