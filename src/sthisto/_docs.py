"""Shared parameter documentation, inserted into docstrings with :func:`doc_params`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)

DOC_PARAMS = {
    "adata": """adata
    Annotated data matrix of one section (spots × genes).""",
    "library_id": """library_id
    Key of the section in ``adata.uns['spatial']``; ``None`` when there is only one.""",
    "spatial_key": """spatial_key
    Key in ``adata.obsm`` of the spot centres in full-resolution pixels.""",
    "copy": """copy
    Return a modified copy instead of writing to ``adata``.""",
    "device": """device
    ``"cpu"``, ``"cuda"``, ``"cuda:i"`` or ``"auto"``; ``None`` uses ``sthisto.settings.device``.""",
    "seed": """seed
    Random seed; ``None`` uses ``sthisto.settings.seed``.""",
    "n_jobs": """n_jobs
    Number of parallel workers; ``None`` uses ``sthisto.settings.n_jobs``, ``-1`` all cores.""",
    "client": """client
    A ``dask.distributed.Client`` whose workers run the tiles (each reads its own tile of a
    memory-mapped or lazy image; the result equals the local run, ``n_jobs`` and ``backend``
    are then unused); ``"auto"`` takes the client in force (``distributed.get_client()``);
    ``None`` (default) runs locally. Needs ``pip install 'sthisto[dask]'``.""",
    "returns_copy": """Returns ``None`` and writes to ``adata``, or returns the modified copy if ``copy=True``.""",
}


def doc_params(func: F) -> F:
    """Fill ``{adata}``-style placeholders in ``func.__doc__`` from :data:`DOC_PARAMS`."""
    if func.__doc__:
        func.__doc__ = func.__doc__.format(**DOC_PARAMS)
    return func
