"""Picklable readers of image windows: tiles are read where they are processed.

A worker process or a dask worker gets a :class:`Region` instead of pixels: a memory-mapped
file travels as its name and offset, a small lazy dask graph as that graph.
"""

from __future__ import annotations

import numpy as np

from ._image import read_region


class Region:
    """A picklable reader of rectangular windows of an image, for tiles read where they are processed.

    ``region((y0, x0, y1, x1))`` returns ``read_region(image, np.s_[y0:y1, x0:x1])``. A
    memory-mapped image (``np.memmap`` over a ``.npy``/TIFF file, what the readers give for a
    lazily referenced full-resolution image) pickles as its file name, offset, shape and
    dtype, so a worker process or a dask worker reopens the file and reads only its own
    tile. A dask array whose task graph pickles small (over zarr or files, not over an
    in-memory array) travels as that graph and is computed on the worker with the
    synchronous scheduler. Other images (in memory, or a graph holding an open file) are not
    :attr:`portable`: the caller reads each tile and sends its pixels
    (see :func:`sthisto.pp._parallel.tile_input`), never the whole image.

    Parameters
    ----------
    image
        ``(H, W, ...)`` array-like (numpy, ``np.memmap``, dask, zarr).
    source
        Where the image comes from, named when it cannot be read.
    """

    def __init__(self, image, source: str = "the image") -> None:
        self.image = image
        self.source = source
        self._file = memmap_file(image)
        self._graph: bytes | None = None  # the pickled dask array, when it is small
        self._checked = False
        self._remote = False  # set when unpickled: compute dask arrays synchronously there

    @property
    def portable(self) -> bool:
        """Whether the reader travels to another process without the pixels (a file map or a lazy graph)."""
        if self._file is not None:
            return True
        if not self._checked and _is_dask(self.image):
            import pickle

            try:
                graph = pickle.dumps(self.image)
            except (TypeError, AttributeError, pickle.PicklingError):  # e.g. an open TIFF handle
                graph = None
            self._graph = graph if graph is not None and len(graph) <= _MAX_GRAPH_BYTES else None
        self._checked = True
        return self._graph is not None

    def __call__(self, window: tuple[int, int, int, int]) -> np.ndarray:
        """Return the pixels of ``window = (y0, x0, y1, x1)`` (exclusive ends) as a numpy array."""
        y0, x0, y1, x1 = window
        if self._remote and _is_dask(self.image):
            import dask

            with dask.config.set(scheduler="synchronous"):  # a worker never waits on its own cluster
                return read_region(self.image, np.s_[y0:y1, x0:x1], source=self.source)
        return read_region(self.image, np.s_[y0:y1, x0:x1], source=self.source)

    def __getstate__(self) -> dict:
        if self._file is not None:
            return {"file": self._file, "source": self.source}
        if not self.portable:
            raise TypeError(f"{self.source} is an in-memory array: its tiles are read by the caller and sent as "
                            "pixels (Region.portable is False), the reader itself does not travel.")
        return {"graph": self._graph, "source": self.source}

    def __setstate__(self, state: dict) -> None:
        self.source, self._remote, self._checked = state["source"], True, True
        self._file, self._graph = state.get("file"), state.get("graph")
        if self._file is not None:
            path, offset, shape, dtype = self._file
            self.image = np.memmap(path, dtype=np.dtype(dtype), mode="r", offset=offset, shape=shape, order="C")
        else:
            import pickle

            self.image = pickle.loads(state["graph"])


_MAX_GRAPH_BYTES = 4 << 20  # a larger pickled graph holds pixels: the caller reads the tiles then


def _is_dask(image) -> bool:
    return type(image).__module__.startswith("dask.")


def memmap_file(image) -> tuple[str, int, tuple[int, ...], str] | None:
    """``(path, byte offset, shape, dtype)`` of a C-contiguous memory map of a file, else ``None``."""
    import mmap

    buffer = getattr(image, "_mmap", None)
    if not isinstance(image, np.memmap) or buffer is None or not image.filename or not image.flags.c_contiguous:
        return None
    try:
        start = image.offset - image.offset % mmap.ALLOCATIONGRANULARITY
        file_offset = start + int(image.ctypes.data - np.frombuffer(buffer, dtype=np.uint8).ctypes.data)
    except (ValueError, TypeError, BufferError):  # a closed map
        return None
    return str(image.filename), int(file_offset), tuple(int(s) for s in image.shape), image.dtype.str
