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
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from sthisto import _constants as K
from sthisto._expression import targets
from sthisto._logging import logger
from sthisto._settings import progress, settings
from sthisto._validate import flag, integer, name_list, raw_counts

from ._data import read_features
from ._methods import FitFunction, resolve_method
from ._metrics import gene_metrics, ggc_arrays
from ._select_genes import common_genes, sections, select_genes

PROTOCOLS = {
    "paper": "top-n HVG/HEG chosen on training sections; per-section mean per-gene PCC",
    "selected": "mean of the n best per-gene PCCs among candidate genes (optimistic: genes chosen on the test result)",
    "hest": "log1p targets; per-gene PCC pooled over the test split (HEST-Benchmark style)",
}
#: the gene sets each protocol scores
_PROTOCOL_GENE_SETS = {"paper": ("hvg", "heg"), "hest": ("hvg",), "selected": ("candidates",)}


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


def _folds(names: list[str], groups: Sequence | None, folds) -> list[tuple[str, list[int], list[int]]]:
    """``[(fold label, training indices, test indices)]``.

    Leave one section (or one group) out, or the explicit ``folds``: pairs of (training
    section names, test section names).
    """
    if folds is not None:
        if groups is not None:
            raise ValueError("give groups= or folds=, not both.")
        index = {n: i for i, n in enumerate(names)}
        out = []
        for k, fold in enumerate(folds):
            try:
                train, test = ([train_or_test] if isinstance(train_or_test, str) else list(train_or_test)
                               for train_or_test in fold)
            except (TypeError, ValueError) as err:
                raise ValueError(f"folds[{k}] must be a pair (training section names, test section names), "
                                 f"got {fold!r}.") from err
            unknown = [n for n in [*train, *test] if n not in index]
            if unknown or not train or not test or set(train) & set(test):
                raise ValueError(f"folds[{k}] = {fold!r}: training and test sections must be non-empty, "
                                 f"disjoint names from {names} (unknown: {unknown}).")
            out.append((f"{'+'.join(train)}→{'+'.join(test)}", [index[n] for n in train], [index[n] for n in test]))
        if not out:
            raise ValueError("folds is empty.")
        return out
    if groups is None:
        test_sets = [(n, [i]) for i, n in enumerate(names)]
    else:
        groups = [str(g) for g in groups]
        if len(groups) != len(names):
            raise ValueError(f"groups has {len(groups)} labels for {len(names)} sections.")
        labels = list(dict.fromkeys(groups))
        test_sets = [(g, [i for i, x in enumerate(groups) if x == g]) for g in labels]
    if len(test_sets) < 2:
        raise ValueError("cross-validation needs at least two sections (or two groups).")
    return [(label, [i for i in range(len(names)) if i not in test], test) for label, test in test_sets]


def _predict(name: str, model, adata: AnnData, genes: list[str]) -> np.ndarray:
    pred = np.asarray(model.predict(adata), dtype=np.float64)
    if pred.shape != (adata.n_obs, len(genes)):
        raise ValueError(f"method {name!r} predicted shape {pred.shape}, expected {(adata.n_obs, len(genes))}.")
    return pred


def _methods(method, fit_kwargs) -> list[tuple[str, FitFunction, dict]]:
    """``[(name, fit function, its keyword arguments)]``; ``fit_kwargs`` is keyed by method name."""
    if isinstance(method, str) or callable(method):
        methods = [method]
    elif isinstance(method, list | tuple):
        methods = list(method)
    else:
        raise TypeError(f"method must be a method name, a callable or a list of them, got {type(method).__name__}.")
    resolved = [resolve_method(m) for m in methods]
    names = [n for n, _ in resolved]
    if len(set(names)) != len(names):
        raise ValueError(f"methods must have distinct names, got {names}.")
    fit_kwargs = dict(fit_kwargs or {})
    unknown = [k for k in fit_kwargs if k not in names]
    if unknown or not all(isinstance(v, dict) for v in fit_kwargs.values()):
        raise ValueError(
            f"fit_kwargs must map method names to their keyword arguments, e.g. "
            f"{{'m2tglgo': {{'epochs': 100}}}}; got keys {list(fit_kwargs)} for methods {names}."
        )
    return [(n, f, dict(fit_kwargs.get(n, {}))) for n, f in resolved]


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
    gene_sets: str | Sequence[str] | None = None,
    groups: Sequence | None = None,
    folds: Sequence[tuple[Sequence[str], Sequence[str]]] | None = None,
    modalities: Sequence[str] = K.DEFAULT_MODALITIES,
    fit_kwargs: dict[str, dict[str, Any]] | None = None,
    layer: str | None = None,
    n_candidates: int | None = 1000,
    section_names: Sequence[str] | None = None,
    seed: int | None = None,
    return_per_gene: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Cross-validate expression prediction across sections with labelled protocols.

    Leave-one-section-out by default; with ``groups`` (one label per section, e.g. the
    patient) leave-one-group-out. In each fold the genes are chosen on the training
    sections only (:func:`sthisto.tl.select_genes`), every method is fitted on the
    training sections and predicts each test section. Every argument and every section
    (raw counts, the feature blocks of ``modalities``) is checked before the first fit.

    Parameters
    ----------
    adatas
        Sections with raw counts and the feature blocks in ``obsm``.
    method
        A method name — ``"m2tglgo"`` (:func:`sthisto.tl.fit`), or a baseline:
        ``"ridge"``, ``"ridge_context"``, ``"knn"`` (each tuned by inner validation on the
        training sections of the fold), ``"hest_probe"``, ``"mean"`` (see
        :func:`sthisto.tl.fit_baseline`) — a callable, or a list of these
        (compared on the same folds and genes). Every method follows one protocol: it is
        called as ``method(train_adatas, genes=, modalities=, layer=, seed=,
        **fit_kwargs[name])`` and returns an object whose ``predict(adata)`` returns an
        ``(n_obs, len(genes))`` array of log-normalised expression.
    protocol
        ``"paper"``, ``"selected"``, ``"hest"`` or a list of them (computed from one fit
        per fold and gene set).
    n_top
        Number of HVG/HEG genes (``paper``, ``hest``) and of best genes (``selected``).
    gene_sets
        Fit only these of the protocols' gene sets (``"hvg"``, ``"heg"``, ``"candidates"``);
        default: all of them.
    groups
        One label per section; sections sharing a label are held out together.
    folds
        Explicit folds instead: pairs of (training section names, test section names),
        e.g. ``[(["C2"], ["C3", "C4"]), …]`` for "train on one, test on the others".
    modalities
        Modality names (see :func:`sthisto.tl.fit`) or ``obsm`` keys; every method uses the
        same blocks (the baselines concatenate them).
    fit_kwargs
        Keyword arguments per method name, e.g. ``{"m2tglgo": {"epochs": 100},
        "knn": {"neighbors": [5]}}``; a key that names no requested method raises.
    layer
        Layer holding raw counts; ``None`` uses ``X``.
    n_candidates
        Candidate genes of the ``selected`` protocol: the top training HVGs (``None``: all
        genes shared by the sections).
    section_names
        Names of the sections in the output; default: their ``uns['spatial']`` library ids
        when unique, else ``section0``, ``section1``…
    seed
        Seed passed to every fit (``None``: ``sthisto.settings.seed``).
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
    if isinstance(adatas, AnnData):
        raise ValueError("cross_validate needs a list of at least two sections, got one AnnData.")
    adatas = sections(adatas)
    if len(adatas) < 2:
        raise ValueError("cross_validate needs a list of at least two sections.")
    n_top = integer(n_top, "n_top", minimum=1)
    n_candidates = None if n_candidates is None else integer(n_candidates, "n_candidates", minimum=1)
    return_per_gene = flag(return_per_gene, "return_per_gene")
    protocols = list(name_list(protocol, "protocol"))
    bad = [p for p in protocols if p not in PROTOCOLS]
    if bad or not protocols:
        raise ValueError(f"protocol must be one of {list(PROTOCOLS)} (or a list), got {protocol!r}")
    runners = _methods(method, fit_kwargs)
    seed = settings.resolve_seed(seed)
    modalities = name_list(modalities, "modalities")
    names = _section_names(adatas, section_names)
    fold_list = _folds(names, groups, folds)
    needed = list(dict.fromkeys(g for p in protocols for g in _PROTOCOL_GENE_SETS[p]))
    wanted = needed if gene_sets is None else list(name_list(gene_sets, "gene_sets"))
    if not wanted or any(g not in needed for g in wanted):
        raise ValueError(f"gene_sets must be a subset of {needed} (the gene sets of protocols {protocols}), "
                         f"got {gene_sets!r}.")
    common = common_genes(adatas)  # genes shared by *all* sections, so the test section has them
    _check_sections(adatas, names, modalities, layer)  # before the first fit, not hours into the folds

    rows: list[dict] = []
    per_gene: list[pd.DataFrame] = []
    genes_used: dict[str, dict[str, list[str]]] = {}
    timings: list[dict] = []
    tasks = [(f, r) for f in fold_list for r in runners]
    for (fold, train_idx, test_idx), (name, fit, kwargs) in progress(tasks, desc="cross-validation"):
        train = [adatas[i] for i in train_idx]
        tests = [adatas[i] for i in test_idx]
        if fold not in genes_used:
            genes_used[fold] = _gene_sets(train, common, wanted, n_top, n_candidates, layer)
        for gene_set, genes in genes_used[fold].items():
            t0 = time.perf_counter()
            model = fit(train, genes=genes, modalities=modalities, layer=layer, seed=seed, **kwargs)
            t1 = time.perf_counter()
            preds = [_predict(name, model, a, genes) for a in tests]
            t2 = time.perf_counter()
            timings.append({"fold": fold, "method": name, "gene_set": gene_set, "fit_s": t1 - t0,
                            "predict_s": t2 - t1, "choice": _choice(model)})
            logger.info("fold %s, %s, %s: fit %.2fs, predict %.2fs", fold, name, gene_set, t1 - t0, t2 - t1)
            scored = _Scored(fold=fold, method=name, gene_set=gene_set, genes=genes, tests=tests, preds=preds,
                             test_names=[names[i] for i in test_idx], layer=layer)
            for p in protocols:
                if gene_set in _PROTOCOL_GENE_SETS[p]:
                    rows += _SCORERS[p](scored, n_top, per_gene)

    df = pd.DataFrame(rows, columns=["fold", "test_section", "method", "gene_set", "protocol",
                                     "metric", "value"])
    df.attrs = {
        "protocols": {p: PROTOCOLS[p] for p in protocols},
        "genes": genes_used,
        "timings": timings,
        "params": {"method": [n for n, _, _ in runners], "protocol": protocols, "n_top": n_top,
                   "groups": None if groups is None else [str(g) for g in groups],
                   "folds": [label for label, _, _ in fold_list],
                   "modalities": list(modalities), "fit_kwargs": repr(fit_kwargs), "layer": layer,
                   "n_candidates": n_candidates, "seed": seed, "sections": names},
    }
    if return_per_gene:
        return df, pd.concat(per_gene, ignore_index=True)
    return df


def _check_sections(adatas: list[AnnData], names: list[str], modalities: tuple[str, ...], layer: str | None) -> None:
    """Raise unless every section holds raw counts and the feature blocks every method reads."""
    if not modalities:
        raise ValueError("modalities is empty: name at least one feature block (e.g. 'deep').")
    for a, name in zip(adatas, names, strict=True):
        raw_counts(a, layer, where=f"section {name!r}")
        read_features(a, modalities, where=f"section {name!r}")


def _gene_sets(train, common, wanted, n_top, n_candidates, layer) -> dict[str, list[str]]:
    """Return the ``wanted`` gene sets of a fold, chosen on its training sections (among shared genes)."""
    shared = set(common)
    train = [a[:, [g for g in a.var_names if g in shared]] for a in train]
    sizes = {"hvg": n_top, "heg": n_top, "candidates": len(common) if n_candidates is None else n_candidates}
    flavors = {"hvg": "hvg", "heg": "heg", "candidates": "hvg"}
    return {g: select_genes(train, flavor=flavors[g], n_top=sizes[g], layer=layer) for g in wanted}


@dataclass
class _Scored:
    """One fitted gene set of one method in one fold, with its predictions on the test sections."""

    fold: str
    method: str
    gene_set: str
    genes: list[str]
    tests: list[AnnData]
    preds: list[np.ndarray]
    test_names: list[str]
    layer: str | None

    def key(self, protocol: str, test_section: str) -> dict:
        return {"fold": self.fold, "test_section": test_section, "method": self.method,
                "gene_set": self.gene_set, "protocol": protocol}


def _choice(model) -> dict:
    """Return what a fitted method chose by inner validation (epochs, alpha, k), for the timings."""
    if hasattr(model, "selection"):
        return {"epochs": model.selection.get("epochs")}
    params = getattr(model, "params", {})
    return {k: v for k, v in params.items() if k in ("alpha", "n_neighbors", "n_components")}


def _summary(table: pd.DataFrame) -> dict:
    defined = table["pcc"].dropna()
    return {"pcc": defined.mean() if len(defined) else np.nan,
            "pcc_median": defined.median() if len(defined) else np.nan,
            "mse": table["mse"].mean(), "mae": table["mae"].mean(),
            "n_genes": len(table), "n_pcc_undefined": table["pcc"].isna().sum()}


def _score_paper(s: _Scored, n_top: int, per_gene: list) -> list[dict]:
    rows = []
    for a, pred, name in zip(s.tests, s.preds, s.test_names, strict=True):
        y = targets(a, s.genes, s.layer)
        table = gene_metrics(y, pred, s.genes)
        key = s.key("paper", name)
        rows += _rows(key, {**_summary(table), "spearman": table["spearman"].mean(skipna=True),
                            "ggc": ggc_arrays(y, pred)[0]})
        per_gene.append(_per_gene(key, table))
    return rows


def _score_selected(s: _Scored, n_top: int, per_gene: list) -> list[dict]:
    rows = []
    for a, pred, name in zip(s.tests, s.preds, s.test_names, strict=True):
        table = gene_metrics(targets(a, s.genes, s.layer), pred, s.genes)
        key = s.key("selected", name)
        best = np.sort(table["pcc"].dropna().to_numpy())[::-1][:n_top]  # the n_top best defined PCCs
        rows += _rows(key, {"pcc": best.mean() if best.size else np.nan, "n_genes": len(table),
                            "n_pcc_undefined": table["pcc"].isna().sum()})
        per_gene.append(_per_gene(key, table))
    return rows


def _score_hest(s: _Scored, n_top: int, per_gene: list) -> list[dict]:
    y = np.concatenate([targets(a, s.genes, s.layer, transform="log1p") for a in s.tests])
    table = gene_metrics(y, np.concatenate(s.preds), s.genes)
    key = s.key("hest", "+".join(s.test_names))
    per_gene.append(_per_gene(key, table))
    return _rows(key, _summary(table))


_SCORERS = {"paper": _score_paper, "selected": _score_selected, "hest": _score_hest}
