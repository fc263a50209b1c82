"""``sthisto.pp.run_cohort``: the same preprocessing steps on every section of a cohort, one task per section.

Sections are independent, so each one is a task of the runner of :mod:`sthisto.pp._parallel`
(the caller, local threads or processes, or a ``dask.distributed`` cluster). A section given
as an ``.h5ad`` path is read by the worker itself and, with ``out``, written by it, so
nothing but names and paths crosses the network; a memory-mapped image in ``uns['spatial']``
travels as its file (:class:`~sthisto._region.Region`), never as pixels.
"""

from __future__ import annotations

import inspect
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from anndata import AnnData

from sthisto import _constants as K
from sthisto._errors import InputError
from sthisto._logging import logger
from sthisto._region import Region, memmap_file
from sthisto._settings import progress
from sthisto._utils import detach
from sthisto.pp._parallel import check_client, failure, map_tiles, runner

Step = tuple[str | Callable[..., Any], dict[str, Any]]
_RESERVED = ("copy", "client")  # run_cohort's own: each step runs in place on the section's own copy


def run_cohort(
    adatas: Sequence[AnnData | str | os.PathLike] | Mapping[str, AnnData | str | os.PathLike],
    steps: Sequence[str | Callable[..., Any] | tuple],
    *,
    client: Any = None,
    out: str | os.PathLike | None = None,
    n_jobs: int | None = None,
    backend: str = "threads",
) -> list[AnnData] | list[Path]:
    """Run preprocessing steps on every section of a cohort, one section per worker task.

    Each section runs the ``steps`` in order on its own copy; sections run in parallel on
    the ``client``'s dask cluster (or on ``n_jobs`` local threads or processes). A section
    that fails raises an error naming it, its file and the step, chained to the worker's
    error; the sections still pending are cancelled.

    Parameters
    ----------
    adatas
        The sections: AnnData objects and/or paths of ``.h5ad`` files (read by the worker),
        as a list or a mapping ``name -> section``. A section is named by its key, its
        file's stem, or its library id in ``uns['spatial']`` (else ``"section <i>"``).
    steps
        The steps, in order. Each is the name of a :mod:`sthisto.pp` function
        (``"segment_nuclei"``), a callable ``f(adata)`` that changes the section in place
        (or returns the new AnnData), or a pair ``(name_or_callable, kwargs)``, e.g.
        ``[("segment_nuclei", {"tile_size": 1024}), "nuclei_features",
        ("image_features", {"model": "texture"})]``. Keyword names are checked against
        each function before any work starts.
    client
        A ``dask.distributed.Client`` whose workers run the sections (a LocalCluster, a
        dask-jobqueue or dask-kubernetes cluster); ``"auto"`` takes the client in force;
        ``None`` runs locally with ``n_jobs``. Needs ``pip install 'sthisto[dask]'``.
    out
        A folder: each section is written there as ``<name>.h5ad`` (by the worker, first to a
        temporary name, renamed when complete, so no half-written file is left); ``None``
        returns the processed sections.
    n_jobs
        Sections run at once without a client; ``None`` uses ``sthisto.settings.n_jobs``.
    backend
        ``"threads"`` or ``"processes"`` for ``n_jobs > 1``.

    Returns
    -------
    The processed sections (new AnnData objects, in input order; the inputs are not
    changed), or with ``out`` the paths written.

    Examples
    --------
    >>> from dask.distributed import Client, LocalCluster
    >>> client = Client(LocalCluster(n_workers=4, threads_per_worker=1))
    >>> paths = st.pp.run_cohort(["C1.h5ad", "C2.h5ad"], ["segment_nuclei", "nuclei_features"],
    ...                          client=client, out="processed/")
    """
    names, items = _sections(adatas)
    plan = [_step(s, i) for i, s in enumerate(_step_list(steps))]
    client = check_client(client)
    folder = None if out is None else _out_folder(out)
    if folder is not None and len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise InputError(f"sections {dup} share a name, so out= would write them to the same file. To fix: "
                         "pass a mapping name -> section with unique names.")
    targets = [None if folder is None else folder / f"{_safe(name)}.h5ad" for name in names]
    results: list[Any] = []
    with runner(client=client, n_jobs=n_jobs, backend=backend, n_tasks=len(items)) as run:
        def task(i):
            item = items[i]
            if isinstance(item, AnnData):
                item = _light_copy(item) if run.in_process else _pack(item)
            return item, plan, None if targets[i] is None else str(targets[i]), not run.in_process

        def where(i):
            item = items[i]
            return f"section {names[i]!r}" + ("" if isinstance(item, AnnData) else f" (file {item})")

        sections = map_tiles(_run_section, [(lambda i=i: task(i)) for i in range(len(items))], executor=run,
                             max_in_flight=2 * run.slots, names=where)
        for result in progress(sections, desc="sections", total=len(items)):
            results.append(Path(result) if isinstance(result, str) else _unpack(result))
    logger.info("processed %d sections with %d steps", len(items), len(plan))
    return results


def _sections(adatas: Any) -> tuple[list[str], list[AnnData | Path]]:
    """Names and items (AnnData or an existing ``.h5ad`` path) of the cohort."""
    if isinstance(adatas, AnnData | str | os.PathLike):
        raise TypeError("adatas must be a list (or a mapping name -> section) of AnnData objects or .h5ad paths, "
                        f"got one {type(adatas).__name__}. To fix: wrap it in a list.")
    if isinstance(adatas, Mapping):
        pairs = list(adatas.items())
    elif isinstance(adatas, Sequence):
        pairs = [(None, a) for a in adatas]
    else:
        raise TypeError(f"adatas must be a list or a mapping of AnnData objects or .h5ad paths, got "
                        f"{type(adatas).__name__}.")
    if not pairs:
        raise ValueError("adatas is empty: give at least one section.")
    names, items = [], []
    for i, (key, item) in enumerate(pairs):
        if key is not None and (not isinstance(key, str) or not key):
            raise TypeError(f"adatas: section names must be non-empty strings, got {key!r}.")
        if isinstance(item, AnnData):
            libs = list(item.uns.get(K.SPATIAL_UNS, {}))
            names.append(key or (libs[0] if len(libs) == 1 else f"section {i}"))
            items.append(item)
        elif isinstance(item, str | os.PathLike):
            path = Path(item).expanduser()
            if path.suffix != ".h5ad":
                raise InputError(f"adatas[{key or i!r}] = {os.fspath(item)!r}: a section path must be an .h5ad file.")
            if not path.is_file():
                raise FileNotFoundError(f"adatas[{key or i!r}]: the section file {path} does not exist. To fix: check "
                                        "the path.")
            names.append(key or path.stem)
            items.append(path.resolve())
        else:
            raise TypeError(f"adatas[{key or i!r}] must be an AnnData or an .h5ad path, got {type(item).__name__}.")
    return names, items


def _step_list(steps: Any) -> list:
    if isinstance(steps, str | tuple) or callable(steps):
        steps = [steps]
    if not isinstance(steps, Sequence) or not steps:
        raise TypeError("steps must be a non-empty list of step names, callables or (name, kwargs) pairs, e.g. "
                        f"['segment_nuclei', ('image_features', {{'model': 'texture'}})]; got {steps!r:.80}.")
    return list(steps)


def _step(spec: Any, i: int) -> tuple[str | Callable, dict[str, Any], str]:
    """Check one step: ``(function or pp name, kwargs, label)``, kwargs checked against its signature."""
    where = f"steps[{i}]"
    if isinstance(spec, tuple):
        if len(spec) != 2 or not isinstance(spec[1], Mapping):
            raise TypeError(f"{where} must be a name, a callable or a pair (name_or_callable, kwargs dict), "
                            f"got {spec!r:.80}.")
        spec, kwargs = spec[0], dict(spec[1])
    else:
        kwargs = {}
    if isinstance(spec, str):
        fn, label = _pp_function(spec, where), spec
    elif callable(spec):
        fn, label = spec, getattr(spec, "__name__", type(spec).__name__)
    else:
        raise TypeError(f"{where} must be the name of a sthisto.pp function, a callable or a (name, kwargs) pair, "
                        f"got {type(spec).__name__}.")
    bad = [k for k in kwargs if not isinstance(k, str)]
    if bad:
        raise TypeError(f"{where} ({label}): keyword names must be strings, got {bad}.")
    reserved = sorted(set(kwargs) & set(_RESERVED))
    if reserved:
        raise InputError(f"{where} ({label}) sets {reserved}: run_cohort runs every step in place on the section's "
                         "own copy, on the cluster given to run_cohort itself. To fix: drop them.")
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        sig = None
    if sig is not None and not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        unknown = sorted(set(kwargs) - set(sig.parameters))
        if unknown:
            raise TypeError(f"{where} ({label}) got unknown keyword(s) {unknown}; it takes "
                            f"{[p for p in sig.parameters if p != 'adata']}.")
    return (spec if isinstance(spec, str) else fn), kwargs, label


def _pp_function(name: str, where: str) -> Callable:
    import sthisto.pp as pp

    fn = getattr(pp, name, None) if name in pp.__all__ and name != "run_cohort" else None
    if not inspect.isfunction(fn) or next(iter(inspect.signature(fn).parameters), None) != "adata":
        steps = sorted(n for n in pp.__all__ if n != "run_cohort" and inspect.isfunction(getattr(pp, n))
                       and next(iter(inspect.signature(getattr(pp, n)).parameters), None) == "adata")
        raise InputError(f"{where} = {name!r} is not a sthisto.pp step; known steps: {steps}, or pass a callable.")
    return fn


def _out_folder(out: Any) -> Path:
    if not isinstance(out, str | os.PathLike):
        raise TypeError(f"out must be a folder path or None, got {type(out).__name__}.")
    folder = Path(out).expanduser()
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"out={os.fspath(out)!r} is a file; give a folder for the .h5ad files.")
    folder.mkdir(parents=True, exist_ok=True)
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"out={os.fspath(out)!r}: the folder is not writable.")
    return folder.resolve()


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _run_section(item: AnnData | Path | str, plan: list, target: str | None, pack: bool) -> AnnData | str:
    """Read a section (a path) or unpack it, run the steps, then write it to ``target`` or return it (a worker's job).

    Step names travel as names and are resolved here; ``pack`` sends memory-mapped images
    back as their files.
    """
    import anndata as ad

    adata = ad.read_h5ad(item) if isinstance(item, str | os.PathLike) else _unpack(item)
    for j, (fn, kwargs, label) in enumerate(plan):
        if isinstance(fn, str):
            fn = _pp_function(fn, f"steps[{j}]")
        try:
            returned = fn(adata, **kwargs)
        except Exception as err:
            raise failure(err, f"step {j + 1} of {len(plan)}, {label}") from err
        if isinstance(returned, AnnData):
            adata = returned
    if target is None:
        return _pack(adata) if pack else adata
    _reference_images(adata)
    target = Path(target)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        adata.write_h5ad(partial)
        os.replace(partial, target)
    finally:
        if partial.exists():
            partial.unlink()
    return str(target)


def _reference_images(adata: AnnData) -> None:
    """Store a memory-mapped full-resolution image as its file (``metadata['fullres_path']``), in place.

    h5ad cannot hold a memory map, and writing its pixels would copy the slide into every
    file; the reference is what the readers write for a lazily read image.
    """
    from sthisto._image import file_fingerprint, read_image

    for entry in adata.uns.get(K.SPATIAL_UNS, {}).values():
        images = entry.get("images", {}) if isinstance(entry, Mapping) else {}
        file = memmap_file(images.get(K.FULLRES))
        if file is None or Path(file[0]).suffix.lower() not in (".npy", ".tif", ".tiff"):
            continue
        img = images[K.FULLRES]
        if tuple(read_image(file[0]).shape) != tuple(img.shape):
            continue  # a map of part of the file: keep it (the write then names it)
        entry.setdefault("metadata", {})
        entry["metadata"][K.FULLRES_PATH] = file[0]
        entry["metadata"][K.FULLRES_FINGERPRINT] = {**file_fingerprint(file[0]), "shape": [int(n) for n in img.shape]}
        del images[K.FULLRES]


def _light_copy(adata: AnnData) -> AnnData:
    """Copy ``adata``, sharing its read-only images (a memory-mapped slide is not duplicated)."""
    bare = AnnData(X=adata.X, obs=adata.obs, var=adata.var, obsm=dict(adata.obsm), varm=dict(adata.varm),
                   obsp=dict(adata.obsp), varp=dict(adata.varp), layers=dict(adata.layers), raw=adata.raw)
    copy = bare.copy()
    copy.uns = detach(dict(adata.uns))
    return copy


def _pack(adata: AnnData) -> AnnData:
    """Copy ``adata`` for another process: its memory-mapped images travel as their file (:class:`Region`)."""
    copy = _light_copy(adata)
    for entry in copy.uns.get(K.SPATIAL_UNS, {}).values():
        images = entry.get("images", {}) if isinstance(entry, Mapping) else {}
        for key, img in list(images.items()):
            if memmap_file(img) is not None:
                images[key] = Region(img, source=f"image {key!r}")
    return copy


def _unpack(adata: AnnData) -> AnnData:
    """Reopen the images :func:`_pack` sent as files (in place)."""
    for entry in adata.uns.get(K.SPATIAL_UNS, {}).values():
        images = entry.get("images", {}) if isinstance(entry, Mapping) else {}
        for key, img in list(images.items()):
            if isinstance(img, Region):
                images[key] = img.image
    return adata
