"""Where preprocessing tasks run: the one executor seam (in the caller, threads, processes, dask).

A step of :mod:`sthisto.pp` cuts its work into independent tasks (the tiles of a slide, the
sections of a cohort) and hands them to a :class:`Runner`, chosen once by :func:`runner`:

- :class:`Runner` runs each task in the calling thread;
- :class:`PoolRunner` wraps a ``concurrent.futures`` pool (``n_jobs`` threads or processes)
  or any object with ``submit(fn, *args) -> future``;
- :class:`DaskRunner` submits to a ``dask.distributed.Client`` (a ``LocalCluster``, a
  dask-jobqueue ``SLURMCluster``/``PBSCluster``, a dask-kubernetes ``KubeCluster``: all are
  used through a plain ``Client``).

:func:`map_tiles` streams tasks through a runner with a bound on those in flight, so memory
is bounded by the tile, and turns a task's failure into an error naming the task (its tile
or section), chained to the original. :func:`tile_input` decides where a tile is read: by
the worker from the image's :class:`~sthisto._region.Region` (a memory-mapped file, a lazy
dask graph), or, for an image that lives only in the caller's memory, by the caller, who
then sends that tile's pixels — never the whole slide.

``distributed`` is imported only when a client is given (``import sthisto`` does not import
it).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from sthisto._region import Region
from sthisto._settings import settings
from sthisto._validate import one_of

BACKENDS = ("threads", "processes")


class TaskError(RuntimeError):
    """A task (a tile, a section) failed with an error that cannot be re-raised as its own type."""


def failure(err: Exception, where: str) -> Exception:
    """Return ``err`` as the same type with a message that names ``where``, chained to ``err``.

    ``"<message> (in tile 3 of 12 at rows 0:2048, columns 4096:6144)"``: an ``except
    ValueError`` around a step keeps working, and the traceback still shows the original
    (for a dask worker, the remote one). Types that cannot be built from a message become
    :class:`TaskError`.
    """
    plain = isinstance(err, KeyError) and len(err.args) == 1 and isinstance(err.args[0], str)
    message = f"{err.args[0] if plain else err} (in {where})"  # a KeyError's str() quotes its message
    try:
        if isinstance(err, OSError) and err.errno is not None:
            new = type(err)(err.errno, message)
        else:
            new = type(err)(message)
    except Exception:  # noqa: BLE001 - e.g. UnicodeDecodeError needs five arguments
        new = TaskError(message)
    new.__cause__ = err
    return new


class Runner:
    """Runs every task at once in the calling thread (one task in flight)."""

    in_process = True  # tasks see the caller's memory: tiles need not be read by the caller
    slots = 1

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Run ``fn(*args)`` now; return a finished future holding its result or its error."""
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except Exception as err:  # noqa: BLE001 - handed to the caller through result()
            future.set_exception(err)
        return future

    def share(self, obj: Any) -> Any:
        """Return a handle of ``obj`` to pass to every task (sent to each worker once on a cluster)."""
        return obj

    def close(self) -> None:
        """Release the workers this runner started."""


class PoolRunner(Runner):
    """A ``concurrent.futures`` pool, or any object with ``submit(fn, *args) -> future``.

    Parameters
    ----------
    executor
        The executor.
    slots
        Its number of workers (bounds the tasks in flight).
    own
        Shut the executor down on :meth:`close` (the pools :func:`runner` starts).
    """

    def __init__(self, executor: Any, slots: int, *, own: bool = False) -> None:
        self.executor, self.slots, self.own = executor, max(1, int(slots)), own
        self.in_process = not isinstance(executor, ProcessPoolExecutor)

    def submit(self, fn, *args):  # noqa: D102
        return self.executor.submit(fn, *args)

    def close(self):  # noqa: D102
        if self.own:
            self.executor.shutdown()


class DaskRunner(Runner):
    """A ``dask.distributed.Client``: tasks run on its workers, shared objects are scattered once."""

    in_process = False

    def __init__(self, client: Any) -> None:
        self.client = client
        self.slots = max(1, sum(client.nthreads().values()))

    def submit(self, fn, *args):  # noqa: D102
        return self.client.submit(fn, *args, pure=False)

    def share(self, obj):  # noqa: D102
        return self.client.scatter(obj, broadcast=True, hash=False)


def check_client(client: Any, name: str = "client"):
    """Return the ``distributed.Client`` of ``client`` (a client or ``"auto"``), or ``None`` for ``None``.

    Raises an error naming ``name`` for anything else, a closed client or ``"auto"``
    without a client in force; ``distributed`` missing says which extra installs it.
    """
    if client is None:
        return None
    if not (isinstance(client, str) and client == "auto") and not type(client).__module__.startswith("distributed"):
        raise TypeError(f"{name} must be a dask.distributed.Client, 'auto' (the client in force) or None (run "
                        f"locally), got {type(client).__name__} {client!r:.60}. To fix: client = "
                        "distributed.Client(cluster) for a LocalCluster, SLURMCluster or KubeCluster.")
    try:
        import distributed
    except ImportError as err:  # pragma: no cover - the client itself came from distributed
        raise ImportError(f"{name}= needs dask.distributed: pip install 'sthisto[dask]'") from err
    if isinstance(client, str):
        try:
            client = distributed.get_client()
        except ValueError as err:
            raise ValueError(f"{name}='auto' found no dask client in force. To fix: create one first "
                             "(client = distributed.Client(...)) or pass it as client=.") from err
    if not isinstance(client, distributed.Client):
        raise TypeError(f"{name} must be a dask.distributed.Client, got {type(client).__name__}; pass "
                        f"distributed.Client({type(client).__name__}) for a cluster object.")
    if client.status not in ("running", "connecting", "newly-created"):
        raise ValueError(f"{name} is {client.status}: pass a running dask client.")
    return client


def as_runner(executor: Any, slots: int) -> Runner:
    """Return a :class:`Runner` for ``executor``: a runner, a dask client, or anything with ``submit``."""
    if isinstance(executor, Runner):
        return executor
    if type(executor).__module__.startswith("distributed"):
        return DaskRunner(check_client(executor, "executor"))
    if not callable(getattr(executor, "submit", None)):
        raise TypeError(f"executor must have submit(fn, *args) -> future, got {type(executor).__name__}.")
    return PoolRunner(executor, slots)


@contextmanager
def runner(*, client: Any = None, n_jobs: int | None = None, backend: str = "threads",
           n_tasks: int | None = None, executor: Any = None) -> Iterator[Runner]:
    """Yield the runner of a step: its ``client``, an ``executor``, an ``n_jobs`` pool, or the caller.

    Parameters
    ----------
    client
        ``dask.distributed.Client``, ``"auto"`` or ``None`` (see :func:`check_client`).
    n_jobs, backend
        Local workers (``None``: ``sthisto.settings.n_jobs``) and ``"threads"`` or
        ``"processes"``, used without a client or executor.
    n_tasks
        Number of tasks, when known: a single task runs in the caller.
    executor
        An executor with ``submit`` (``n_jobs`` then only bounds the tasks in flight).

    Returns
    -------
    A context manager yielding a :class:`Runner`; pools it started are shut down on exit.
    """
    backend = one_of(backend, "backend", BACKENDS)
    n_jobs = settings.resolve_n_jobs(n_jobs)
    found = check_client(client)
    if found is not None:
        chosen: Runner = DaskRunner(found)
    elif executor is not None:
        chosen = as_runner(executor, n_jobs)
    elif n_jobs > 1 and (n_tasks is None or n_tasks > 1):
        pool = ThreadPoolExecutor(n_jobs) if backend == "threads" else ProcessPoolExecutor(n_jobs)
        chosen = PoolRunner(pool, n_jobs, own=True)
    else:
        chosen = Runner()
    try:
        yield chosen
    finally:
        chosen.close()


def map_tiles(
    fn: Callable[..., Any],
    tasks: Iterable[Callable[[], tuple]],
    *,
    executor: Any = None,
    max_in_flight: int = 2,
    names: Sequence[str] | Callable[[int], str] | None = None,
) -> Iterator[Any]:
    """Yield ``fn(*task())`` for every task, in order, with at most ``max_in_flight`` submitted.

    Parameters
    ----------
    fn
        Per-task function, run by the executor (picklable for processes or a cluster).
    tasks
        Zero-argument callables returning the arguments of ``fn`` (they prepare the tile, so a
        tile is only prepared when a slot is free).
    executor
        A :class:`Runner`, a ``dask.distributed.Client`` or anything with ``submit(fn,
        *args)`` returning a future with ``result()`` (``ThreadPoolExecutor``,
        ``ProcessPoolExecutor``); ``None`` runs in the calling thread.
    max_in_flight
        Bound on submitted, unfinished tasks (bounds memory).
    names
        What task ``i`` is, for errors (``names[i]`` or ``names(i)``, e.g. ``"tile 3 of 12
        at rows ..."``); a failing task then raises :func:`failure` naming it, and the tasks
        still pending are cancelled. ``None`` re-raises errors as they are.

    Returns
    -------
    An iterator of the results, in the order of ``tasks``.
    """
    run = Runner() if executor is None else as_runner(executor, max_in_flight)
    label = names if names is None or callable(names) else names.__getitem__
    pending: deque = deque()
    it = enumerate(tasks)

    def submit_next() -> bool:
        for i, task in it:
            try:
                pending.append((i, run.submit(fn, *task())))
            except Exception as err:
                if label is None:
                    raise
                raise failure(err, label(i)) from err
            return True
        return False

    bound = 1 if type(run) is Runner else max(1, int(max_in_flight))  # the caller computes one at a time
    try:
        while len(pending) < bound and submit_next():
            pass
        while pending:
            i, future = pending.popleft()
            try:
                result = future.result()
            except Exception as err:
                if label is None:
                    raise
                raise failure(err, label(i)) from err
            submit_next()
            yield result
    finally:
        for _, future in pending:
            future.cancel()


@dataclass(frozen=True)
class TileRead:
    """A tile read where it is processed: ``read()`` reads ``window`` from ``region``."""

    region: Region
    window: tuple[int, int, int, int]

    def read(self) -> np.ndarray:
        """Return the tile's pixels."""
        return self.region(self.window)


@dataclass(frozen=True)
class Pixels:
    """A tile the caller has read (from an image in its own memory)."""

    pixels: np.ndarray

    def read(self) -> np.ndarray:
        """Return the tile's pixels."""
        return self.pixels


def tile_input(region: Region, window: tuple[int, int, int, int], run: Runner) -> TileRead | Pixels:
    """Return what a task reads its tile from: the region where it travels, else the tile's pixels.

    In the caller's process (threads, the caller) and for a portable region (a memory-mapped
    file, a small lazy graph) the worker reads its own tile; an in-memory image is read by
    the caller, one tile at a time, and only that tile is sent.
    """
    if run.in_process or region.portable:
        return TileRead(region, window)
    return Pixels(region(window))


def window_name(what: str, i: int, n: int, window: tuple[int, int, int, int]) -> str:
    """``"tile 3 of 12 at rows 0:2048, columns 4096:6144"``: a task named in errors."""
    y0, x0, y1, x1 = window
    return f"{what} {i + 1} of {n} at rows {y0}:{y1}, columns {x0}:{x1}"
