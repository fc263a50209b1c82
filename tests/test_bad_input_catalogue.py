"""A catalogue of hostile inputs, walked over the public API (pp, tl, pl, read, io, datasets).

Every public function has an entry: how to call it on a tiny valid input, and the kind of
each argument. Each kind comes with values a hostile user passes (wrong type, NaN/inf,
0/negative, empty, huge, a missing or damaged file, an unknown name); every AnnData-taking
function also meets damaged AnnData (missing keys, duplicated names, NaN coordinates). Each
call must end in a sthisto error or a builtin ValueError/TypeError/KeyError/OSError — never
a pandas/numpy/torch/zarr internal type — whose message names the argument (or the value,
file or key), and must leave its input AnnData exactly as it was.

A new public function without an entry fails :func:`test_every_public_function_is_catalogued`.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import sthisto as st
from tests._unchanged import assert_unchanged

DATA = Path(__file__).parent / "data"
ALLOWED = (ValueError, TypeError, KeyError, OSError)  # sthisto's errors subclass these

# --- hostile values per kind of argument -------------------------------------------------
NAN, INF = float("nan"), float("inf")
KINDS: dict[str, list[Any]] = {
    "count": ["3", 2.5, NAN, INF, 0, -1, True],                 # an integer >= 1
    "index": ["3", 2.5, NAN, -1, True],                         # an integer >= 0
    "positive": ["x", NAN, INF, -INF, 0, -1.0, True],           # a positive finite number
    "nonnegative": ["x", NAN, INF, -1.0, True],                 # a finite number >= 0
    "finite": ["x", NAN, INF, True],                            # any finite number
    "fraction": ["x", NAN, -0.5, 1.5],                          # a number in [0, 1]
    "choice": ["bogus", "", 5, ("x",)],                         # one name among a few
    "key": ["", 5, ("a",)],                                     # an AnnData key
    "flag": ["no", 2, None],                                    # True / False only
    "names": [5, [1, 2], [None]],                               # a name or a list of names
    "n_jobs": ["3", 2.5, NAN, 0, -2, True],                     # -1 or an integer >= 1
    "grid": ["x", [], [0], [-1.0], [NAN]],                      # a non-empty list of positive numbers
    "spot": ["bogus", "", 10**6, 2.5, True, ("x",)],            # an obs name or position
    "ax": ["x", 5, [1, 2]],                                     # matplotlib Axes
    "adata": [None, "adata", pd.DataFrame({"a": [1]})],         # the AnnData itself
    "matrix": [None, "x", np.zeros((3, 2)), np.array([["a", "b"], ["c", "d"]])],  # a square adjacency
    "points": [None, "x", np.zeros(5), np.array([[np.nan, 1.0], [0.0, 0.0]])],   # (n, 2) coordinates
    "client": ["tcp://scheduler:8786", 5, True, ("x",)],                  # a dask.distributed.Client
}
HUGE: dict[str, Any] = {"count": 10**12}  # may run only when it is cheap; else a clear error


@dataclass
class Entry:
    """How to call one public function on a valid tiny input, and what its arguments are."""

    call: Any                              # (section, **kwargs) -> result; section may be None
    section: str | None = "raw"            # the prepared input (see SECTIONS)
    kinds: dict[str, str] = field(default_factory=dict)   # argument -> kind
    valid: dict[str, Any] = field(default_factory=dict)   # arguments of the valid call
    damage: tuple[str, ...] = ()           # AnnData damages it must reject (see DAMAGES)
    first: str | None = "adata"            # name of the AnnData argument, for the "adata" kind
    huge: tuple[str, ...] = ()             # arguments whose huge value must be refused


# --- tiny valid inputs, built once -------------------------------------------------------
@cache
def _raw():
    return st.datasets.synthetic(n_spots=30, n_genes=20, seed=0)


@cache
def _segmented():
    a = _raw().copy()
    st.pp.segment_nuclei(a, tile_size=256)
    return a


@cache
def _modelled():
    from tests.tl._model_data import FAST, model_sections

    sections = model_sections((0, 1, 2), n_spots=30, n_genes=20)
    model = st.tl.fit(sections[:2], **{**FAST, "n_top_genes": 10})
    test = sections[2]
    st.tl.predict(test, model)
    return sections, model, test


@cache
def _bins():
    a = st.datasets.synthetic(n_spots=36, n_genes=10, grid="square", spot_diameter_um=50, spot_pitch_um=50)
    st.pp.segment_nuclei(a, tile_size=256)
    return a


@cache
def _cv_table():
    sections, _, _ = _modelled()
    return st.tl.cross_validate(sections, method="mean", n_top=5)


SECTIONS = {
    "raw": lambda: _raw().copy(),
    "segmented": lambda: _segmented().copy(),
    "predicted": lambda: _modelled()[2].copy(),
    "sections": lambda: [a.copy() for a in _modelled()[0]],
    "bins": lambda: _bins().copy(),
    "cv": lambda: _cv_table().copy(),
    "model": lambda: _modelled()[1],
    "xy": lambda: np.array(_raw().obsm["spatial"], dtype=float),
    "adjacency": lambda: np.eye(4),
    None: lambda: None,
}


# --- damaged AnnData: (mutation, a fragment the message must hold) -----------------------
def _drop_obsm_spatial(a):
    del a.obsm["spatial"]


def _drop_uns_spatial(a):
    del a.uns["spatial"]


def _nan_coordinates(a):
    a.obsm["spatial"] = np.asarray(a.obsm["spatial"], dtype=float).copy()
    a.obsm["spatial"][1, 0] = np.nan


def _duplicated_obs_names(a):
    a.obs_names = ["spot"] * a.n_obs


def _duplicated_var_names(a):
    a.var_names = ["GENE"] * a.n_vars


def _normalised_counts(a):
    a.X = a.X.astype(np.float32) / 3.3


def _drop_nuclei(a):
    del a.uns["sthisto_nuclei"]


def _drop_predictions(a):
    del a.layers["sthisto_pred"]


def _no_spots(a):
    a._inplace_subset_obs(np.zeros(a.n_obs, dtype=bool))


DAMAGES = {
    "obsm_spatial": (_drop_obsm_spatial, "obsm['spatial']"),
    "uns_spatial": (_drop_uns_spatial, "uns['spatial']"),
    "nan_xy": (_nan_coordinates, "NaN"),
    "dup_obs": (_duplicated_obs_names, "obs_names"),
    "dup_var": (_duplicated_var_names, "var_names"),
    "normalised": (_normalised_counts, "not integers"),
    "no_nuclei": (_drop_nuclei, "segment_nuclei"),
    "no_pred": (_drop_predictions, "sthisto_pred"),
    "no_spots": (_no_spots, "no spots"),
}


# --- the catalogue -------------------------------------------------------------------------
def _pp(name):
    return lambda a, **kw: getattr(st.pp, name)(a, **kw)


def _tl(name):
    return lambda a, **kw: getattr(st.tl, name)(a, **kw)


def _pl(name):
    def run(a, **kw):
        import matplotlib.pyplot as plt

        try:
            return getattr(st.pl, name)(a, **kw)
        finally:
            plt.close("all")
    return run


def _with_model(fn):
    return lambda a, **kw: fn(a, kw.pop("model", _modelled()[1]), **kw)


def _first_gene():
    return _modelled()[1].genes[0]


CATALOGUE: dict[str, Entry] = {
    "pp.segment_nuclei": Entry(
        _pp("segment_nuclei"), kinds={"tile_size": "count", "overlap": "index", "threshold": "nonnegative",
                                      "region": "choice", "backend": "choice", "n_jobs": "n_jobs",
                                      "key_added": "key", "sigma_um": "nonnegative", "min_area_um2": "nonnegative",
                                      "library_id": "choice", "method": "choice", "client": "client"},
        damage=("obsm_spatial", "uns_spatial", "nan_xy", "dup_obs", "no_spots")),
    "pp.nuclei_features": Entry(
        _pp("nuclei_features"), "segmented", kinds={"spot_diameter": "positive", "fill": "choice",
                                                   "morphology_key": "key", "topology_key": "key",
                                                   "nuclei_key": "choice", "client": "client"},
        damage=("obsm_spatial", "nan_xy", "dup_obs", "no_nuclei", "no_spots")),
    "pp.run_cohort": Entry(
        lambda a, **kw: st.pp.run_cohort([a], **{"steps": [("segment_nuclei", {"tile_size": 256})], **kw}),
        first="adatas", kinds={"steps": "names", "client": "client", "n_jobs": "n_jobs", "backend": "choice",
                               "adatas": "adata"}),
    "pp.image_features": Entry(
        _pp("image_features"), valid={"model": "texture", "patch_px": 16}, huge=("patch_px", "batch_size"),
        kinds={"patch_px": "count", "batch_size": "count", "n_pcs": "count", "tta": "choice", "patch_um": "positive",
               "seed": "index", "key_added": "key", "img_key": "choice", "model": "choice", "client": "client"},
        damage=("obsm_spatial", "uns_spatial", "nan_xy", "dup_obs", "no_spots")),
    "pp.patches": Entry(
        lambda a, **kw: next(st.pp.patches(a, **kw)), valid={"patch_px": 16}, huge=("patch_px", "batch_size"),
        kinds={"patch_px": "count", "batch_size": "count", "tile_px": "count", "patch_um": "positive",
               "img_key": "choice"},
        damage=("obsm_spatial", "uns_spatial", "nan_xy")),
    "pp.spatial_graph": Entry(
        _pp("spatial_graph"), kinds={"n_neighs": "count", "radius": "positive", "symmetric": "flag",
                                     "key_added": "key", "spatial_key": "choice"},
        damage=("obsm_spatial", "nan_xy")),
    "pp.lattice_graph": Entry(
        _pp("lattice_graph"), "bins", kinds={"n_neighs": "choice", "row_key": "choice", "col_key": "choice",
                                             "key_added": "key"},
        damage=("obsm_spatial", "nan_xy")),
    "pp.knn_graph": Entry(
        lambda xy, **kw: st.pp.knn_graph(xy, **kw), "xy", first="xy",
        kinds={"n_neighs": "count", "radius": "positive", "symmetric": "flag", "xy": "points"}),
    "pp.hop_rings": Entry(
        lambda a, **kw: st.pp.hop_rings(a, **kw), "adjacency", first="connectivities",
        kinds={"max_hop": "count", "connectivities": "matrix"}),
    "pp.gene_ontology_graph": Entry(
        _pp("gene_ontology_graph"), valid={"ontology": "TOY_OBO", "annotations": "TOY_GAF"}, kinds={"top_k": "count", "threshold": "finite", "norm": "choice",
                                           "relations": "names", "evidence_exclude": "names",
                                           "include_self": "flag", "key_added": "key"},
        damage=("dup_var",)),
    "pp.gene_embeddings": Entry(
        _pp("gene_embeddings"), valid={"dim": 4, "epochs": 1}, huge=("dim",),
        kinds={"dim": "count", "window": "count", "epochs": "count", "negative": "count", "min_corr": "finite",
               "n_neighbors": "index", "max_pairs": "index", "seed": "index", "method": "choice", "key_added": "key",
               "layer": "choice"},
        damage=("dup_var", "normalised")),
    "pp.bin_nuclei_features": Entry(
        _pp("bin_nuclei_features"), "bins", kinds={"context": "index", "morphology_key": "key",
                                                   "topology_key": "key", "nuclei_key": "choice"},
        damage=("obsm_spatial", "nan_xy", "dup_obs", "no_nuclei", "no_spots")),
    "pp.bins_to_nuclei": Entry(
        _pp("bins_to_nuclei"), "bins", kinds={"max_distance_um": "positive", "nuclei_key": "choice"},
        damage=("obsm_spatial", "nan_xy", "no_nuclei", "normalised", "no_spots")),
    "tl.fit": Entry(
        lambda a, **kw: st.tl.fit(a, **{"progress": False, **kw}), "sections", first="adatas",
        valid={"epochs": 1, "epoch_selection": "fixed", "n_ensemble": 1, "hidden_dims": (8, 8), "n_top_genes": 5},
        kinds={"epochs": "count", "n_top_genes": "count", "heads": "count", "lr": "positive", "seed": "index",
               "preset": "choice", "device": "choice", "layer": "choice", "modalities": "names",
               "batch_size": "count"}),
    "tl.fit_baseline": Entry(
        lambda a, **kw: _function("tl.fit_baseline")(a, **kw), "sections", first="adatas",
        valid={"method": "ridge", "genes": "FIRST_GENE", "alphas": [1.0]},
        kinds={"method": "choice", "genes": "names", "modalities": "names", "layer": "choice", "alphas": "grid",
               "neighbors": "grid", "n_components": "count", "seed": "index"}),
    "tl.predict": Entry(
        _with_model(st.tl.predict), "predicted", kinds={"key_added": "key", "model": "adata", "batch_size": "count"},
        damage=("dup_var",)),
    "tl.predict_anndata": Entry(_with_model(st.tl.predict_anndata), "predicted",
                                kinds={"model": "adata", "batch_size": "count"}),
    "tl.evaluate": Entry(
        _tl("evaluate"), "predicted", kinds={"pred_key": "choice", "layer": "choice", "genes": "names",
                                             "transform": "choice", "key_added": "key"},
        damage=("dup_var", "normalised", "no_pred")),
    "tl.gene_correlation_recovery": Entry(
        _tl("gene_correlation_recovery"), "predicted", kinds={"pred_key": "choice", "layer": "choice",
                                                             "genes": "names"},
        damage=("normalised", "no_pred")),
    "tl.select_genes": Entry(
        _tl("select_genes"), "sections", first="adatas", kinds={"n_top": "count", "flavor": "choice",
                                                              "layer": "choice"}),
    "tl.cross_validate": Entry(
        _tl("cross_validate"), "sections", first="adatas", valid={"method": "mean", "n_top": 5},
        kinds={"n_top": "count", "n_candidates": "count", "protocol": "choice", "method": "choice",
               "gene_sets": "choice", "seed": "index", "layer": "choice", "modalities": "names",
               "return_per_gene": "flag"}),
    "pl.spatial_pred": Entry(
        _pl("spatial_pred"), "predicted", valid={"genes": "FIRST_GENE"},
        kinds={"genes": "names", "pred_key": "choice", "layer": "choice", "img_key": "choice", "ax": "ax",
               "spot_alpha": "fraction", "library_id": "choice"},
        damage=("obsm_spatial", "nan_xy", "dup_var", "no_pred")),
    "pl.gene_correlation": Entry(
        _pl("gene_correlation"), "predicted", kinds={"genes": "names", "pred_key": "choice", "layer": "choice",
                                                     "ax": "ax"},
        damage=("dup_var", "no_pred")),
    "pl.cv_summary": Entry(
        _pl("cv_summary"), "cv", first="df", kinds={"metric": "choice", "protocol": "choice", "methods": "names",
                                                    "gene_sets": "names", "ax": "ax", "df": "adata"}),
    "pl.training_history": Entry(
        _pl("training_history"), "model", first="model", kinds={"run": "choice", "ax": "ax", "model": "adata"}),
    "pl.nuclei_outlines": Entry(
        _pl("nuclei_outlines"), "segmented", kinds={"spot": "spot", "margin": "nonnegative", "ax": "ax",
                                                    "nuclei_key": "choice"},
        damage=("obsm_spatial", "nan_xy", "no_nuclei")),
    "io.to_spatialdata": Entry(
        lambda a, **kw: st.io.to_spatialdata(a, **kw), "segmented", kinds={"features": "names",
                                                                           "library_id": "choice"},
        damage=("obsm_spatial", "uns_spatial", "nan_xy", "no_spots")),
    "read.legacy_st": Entry(lambda a, **kw: st.read.legacy_st(**kw), None, first=None,
                            kinds={"counts": "path", "spots": "path", "image": "path"},
                            valid={"counts": "LEGACY_COUNTS", "spots": "LEGACY_SPOTS", "image": "LEGACY_IMAGE"}),
    "read.visium": Entry(lambda a, **kw: st.read.visium(**kw), None, first=None,
                         kinds={"path": "folder", "fullres_image": "path", "library_id": "key"},
                         valid={"path": str(DATA / "visium_100spots")}),
    "read.visium_hd": Entry(lambda a, **kw: st.read.visium_hd(**kw), None, first=None,
                            kinds={"path": "folder", "bin_size": "choice", "fullres_image": "path"},
                            valid={"path": str(DATA / "visium_hd_tiny")}),
    "read.spatialdata": Entry(lambda a, **kw: st.read.spatialdata(**kw), None, first=None,
                              kinds={"sdata": "folder"}, valid={"sdata": "SDATA"}),
    "datasets.synthetic": Entry(lambda a, **kw: st.datasets.synthetic(**{"n_spots": 5, "n_genes": 4, **kw}), None,
                                first=None, huge=("n_spots",),
                                kinds={"n_spots": "count", "n_genes": "count", "microns_per_pixel": "positive",
                                       "spot_diameter_um": "positive", "spot_pitch_um": "positive",
                                       "grid": "choice", "seed": "index"}),
    "datasets.her2st": Entry(lambda a, **kw: st.datasets.her2st(**kw), None, first=None, kinds={"section": "choice"}),
    "datasets.her2st_demo": Entry(lambda a, **kw: st.datasets.her2st_demo(**kw), None, first=None,
                                  kinds={"sections": "choice"}),
    "datasets.her2st_sections": Entry(lambda a, **kw: st.datasets.her2st_sections(**kw), None, first=None,
                                      kinds={"with_image": "flag"}),
    "datasets.fetch": Entry(lambda a, **kw: st.datasets.fetch(**{"dataset": "her2st", "name": "C2/selection.tsv",
                                                                 **kw}), None, first=None,
                            kinds={"dataset": "choice", "name": "choice"}),
    "datasets.gene_ontology": Entry(lambda a, **kw: st.datasets.gene_ontology(**kw), None, first=None,
                                    kinds={"release": "choice"}),
}
# functions with nothing to attack: no arguments, or only the AnnData, covered by the damages above
NO_ARGUMENTS = {"datasets.registry", "datasets.bundled_gene_ontology", "datasets.her2st_panel",
                "datasets.her2st_gene2vec", "datasets.her2st_demo_spatialdata"}
NAMESPACES = ("pp", "tl", "pl", "read", "io", "datasets")
# where a catalogued function lives before its namespace exports it (tl.fit_baseline on main)
_IMPLEMENTATIONS = {"tl.fit_baseline": "sthisto.tl._baselines"}


def _function(name: str):
    import importlib

    ns, fn = name.split(".")
    found = getattr(getattr(st, ns), fn, None)
    return found if found is not None else getattr(importlib.import_module(_IMPLEMENTATIONS[name]), fn)


def test_every_public_function_is_catalogued():
    public = {f"{ns}.{name}" for ns in NAMESPACES for name in getattr(st, ns).__all__
              if inspect.isfunction(getattr(getattr(st, ns), name))}
    missing = sorted(public - set(CATALOGUE) - NO_ARGUMENTS)
    assert not missing, f"public functions without a bad-input catalogue entry: {missing}"
    for name, entry in CATALOGUE.items():
        params = inspect.signature(_function(name)).parameters
        has_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
        unknown = [k for k in entry.kinds if k not in params and not has_kwargs]
        assert not unknown, f"{name}: catalogue names arguments it does not take: {unknown}"


# --- files for the path kinds ---------------------------------------------------------------
@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("catalogue")
    (root / "empty.tsv").write_bytes(b"")
    (root / "garbage.bin").write_bytes(bytes(range(256)) * 8)
    (root / "folder").mkdir()
    out = {"path": [str(root / "missing.tsv"), str(root / "folder"), str(root / "empty.tsv"),
                    str(root / "garbage.bin"), 5],
           "folder": [str(root / "missing"), str(root / "garbage.bin"), str(root / "folder"), 5]}
    (root / "toy.obo").write_text(_raw().uns["sthisto_synthetic"]["go_obo"])
    (root / "toy.gaf").write_text(_raw().uns["sthisto_synthetic"]["go_gaf"])
    out["TOY_OBO"], out["TOY_GAF"] = str(root / "toy.obo"), str(root / "toy.gaf")
    from tests.conftest import write_legacy_st

    sq = st.datasets.synthetic(n_spots=16, n_genes=5, grid="square", spot_diameter_um=100.0, spot_pitch_um=200.0,
                               microns_per_pixel=2.0)
    counts, spots, image = write_legacy_st(sq, root / "legacy")
    out["LEGACY_COUNTS"], out["LEGACY_SPOTS"], out["LEGACY_IMAGE"] = str(counts), str(spots), str(image)
    return out


# Known gaps outside this test's reach (reported to the owner of the code), kept visible:
# strict xfails turn into failures once they are fixed, so the entry is then removed.
KNOWN: dict[tuple[str, str, str], str] = {}


def _cases():
    for name, entry in CATALOGUE.items():
        for arg, kind in entry.kinds.items():
            if kind in ("path", "folder"):
                for i in range(5 if kind == "path" else 4):
                    yield pytest.param(name, arg, (kind, i), id=f"{name}-{arg}-{kind}{i}")
                continue
            for value in KINDS[kind]:
                reason = KNOWN.get((name, arg, repr(value)))
                marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
                yield pytest.param(name, arg, value, id=f"{name}-{arg}-{value!r}"[:90], marks=marks)
        for arg in entry.huge:
            yield pytest.param(name, arg, HUGE["count"], id=f"{name}-{arg}-huge")


_FILE_NAMES = ("LEGACY_COUNTS", "LEGACY_SPOTS", "LEGACY_IMAGE", "TOY_OBO", "TOY_GAF")


def _resolve(value, files):
    if isinstance(value, str) and value == "FIRST_GENE":
        return _first_gene()
    if isinstance(value, str) and value in _FILE_NAMES:
        return files[value]
    if isinstance(value, str) and value == "SDATA":
        return st.io.to_spatialdata(_raw().copy())
    if isinstance(value, tuple) and len(value) == 2 and value[0] in ("path", "folder"):
        return files[value[0]][value[1]]
    return value


def _assert_clear(err: BaseException, names: list[str]) -> None:
    """A sthisto or builtin error of an allowed type, whose message names one of ``names``."""
    kind = type(err)
    assert isinstance(err, ALLOWED), f"{kind.__module__}.{kind.__name__} is not an allowed error type: {err}"
    assert kind.__module__ == "builtins" or kind.__module__.startswith("sthisto"), (
        f"a raw {kind.__module__}.{kind.__name__} reached the user: {err}")
    text = str(err)
    assert any(n and n in text for n in names), f"the message names none of {names}: {text}"


def _names(arg: str, value: Any) -> list[str]:
    """What a message may name: the argument, the value given, or (for the data) what was expected."""
    out = [arg, repr(value)]
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        out.append(str(value))
    if arg in ("adata", "adatas", "sdata", "df", "model", "xy", "connectivities"):
        out += ["AnnData", "SpatialData", "DataFrame"]
    return out


def _copies(section):
    """A copy of the input (an AnnData or a list of them) to compare with afterwards, else None."""
    if hasattr(section, "obs_names"):
        return section.copy()
    if isinstance(section, list) and section and all(hasattr(a, "obs_names") for a in section):
        return [a.copy() for a in section]
    return None


def _assert_same(section, before) -> None:
    if isinstance(before, list):
        for a, b in zip(section, before, strict=True):
            assert_unchanged(a, b)
    elif before is not None:
        assert_unchanged(section, before)


@pytest.mark.parametrize(("name", "arg", "value"), list(_cases()))
def test_hostile_argument(name, arg, value, files):
    entry = CATALOGUE[name]
    section = SECTIONS[entry.section]()
    kwargs = {k: _resolve(v, files) for k, v in entry.valid.items()}
    value = _resolve(value, files)
    target = section
    if arg == entry.first:
        target = value  # the data argument itself (AnnData, array, model, table) is hostile
    else:
        kwargs[arg] = value
    before = _copies(section)
    with pytest.raises(Exception) as info:  # noqa: B017, PT011 - the type is checked below
        entry.call(target, **kwargs)
    _assert_clear(info.value, _names(arg, value))
    _assert_same(section, before)


def _damage_cases():
    for name, entry in CATALOGUE.items():
        for damage in entry.damage:
            yield pytest.param(name, damage, id=f"{name}-{damage}")


@pytest.mark.parametrize(("name", "damage"), list(_damage_cases()))
def test_damaged_anndata(name, damage, files):
    entry = CATALOGUE[name]
    section = SECTIONS[entry.section]()
    mutate, fragment = DAMAGES[damage]
    mutate(section)
    before = section.copy()
    kwargs = {k: _resolve(v, files) for k, v in entry.valid.items()}
    with pytest.raises(Exception) as info:  # noqa: B017, PT011 - the type is checked below
        entry.call(section, **kwargs)
    _assert_clear(info.value, [fragment])
    assert_unchanged(section, before)


def test_catalogue_values_are_hostile():
    """Guard the catalogue itself: sthisto's own checks reject every value of a numeric kind."""
    from sthisto._validate import integer, number

    for value in KINDS["count"]:
        with pytest.raises(ValueError, match="must be an integer"):
            integer(value, "n", minimum=1)
    for value in KINDS["positive"]:
        with pytest.raises(ValueError, match="must be a positive finite number"):
            number(value, "x", positive=True)
    for value in KINDS["nonnegative"]:
        with pytest.raises(ValueError, match="must be a finite number"):
            number(value, "x", minimum=0)
