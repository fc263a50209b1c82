"""The one check of the ``ax=`` argument of every plot."""

from __future__ import annotations

from typing import Any


def axes_arg(ax: Any, n: int, what: str) -> list | None:
    """Return ``ax`` as a list of ``n`` matplotlib Axes, or ``None`` when ``ax`` is ``None``.

    Parameters
    ----------
    ax
        An Axes, or a list/array of Axes (``plt.subplots(...)[1]``).
    n
        How many the plot draws on.
    what
        What they are for, for the message (``"observed, predicted"``).

    Raises
    ------
    TypeError
        When an element is not a matplotlib Axes (a string, a number, a Figure).
    ValueError
        When there are not ``n`` of them.
    """
    if ax is None:
        return None
    import numpy as np
    from matplotlib.axes import Axes

    items = [ax] if isinstance(ax, Axes) or isinstance(ax, str) else np.ravel(np.asarray(ax, dtype=object)).tolist()
    bad = [a for a in items if not isinstance(a, Axes)]
    if bad:
        raise TypeError(f"ax must be {'a matplotlib Axes' if n == 1 else f'{n} matplotlib Axes'} ({what}), got "
                        f"{type(bad[0]).__name__}; e.g. fig, ax = plt.subplots({'' if n == 1 else f'1, {n}'}).")
    if len(items) != n:
        raise ValueError(f"ax must hold {n} axes ({what}), got {len(items)}")
    return items


def one_axis(ax: Any, what: str):
    """Return ``ax`` checked to be one matplotlib Axes (``None`` stays ``None``)."""
    items = axes_arg(ax, 1, what)
    return None if items is None else items[0]
