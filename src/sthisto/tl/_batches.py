"""Spatial subgraph batches of a section: contiguous blocks of spots plus the halo the GAT layers need.

Mini-batch training (``batch_size`` of :class:`sthisto.tl.M2TGLGOConfig`) and streaming
prediction cut a section into *blocks*: contiguous tiles of spot coordinates, found by
recursive bisection along the longer axis (a k-d split), so every block holds between
``batch_size / 2`` and ``batch_size`` spots. A block's *core* spots are where the losses
are computed (or predictions written); its *halo* adds the spots within ``hops`` graph
hops of the core, so that ``hops`` message-passing layers give the core spots exactly the
embedding they have in the whole section. Nodes are ordered by hop distance (core first),
so the ``k``-hop subgraph of a block is a prefix of its nodes.

Everything here is numpy / scipy; memory is bounded by the block, whatever the section size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


def spatial_blocks(n_spots: int, batch_size: int, coords: np.ndarray | None = None,
                   graph: sp.spmatrix | None = None) -> list[np.ndarray]:
    """Partition spots ``0..n_spots-1`` into spatially contiguous blocks of at most ``batch_size``.

    Parameters
    ----------
    n_spots
        Number of spots.
    batch_size
        Largest number of spots in a block; blocks hold at least ``batch_size // 2``
        (unless the section is smaller).
    coords
        (n_spots, ≥2) spot coordinates: blocks are the leaves of a k-d bisection (split
        at the median of the longer axis, ties broken by spot index).
    graph
        Used only without ``coords``: consecutive runs of its reverse Cuthill–McKee order,
        which keeps graph neighbours close.

    Returns
    -------
    Sorted int64 index arrays, disjoint, covering every spot, in a deterministic order.
    """
    if n_spots <= batch_size:
        return [np.arange(n_spots, dtype=np.int64)]
    if coords is None:
        if graph is None:
            raise ValueError("spatial_blocks needs spot coordinates or the spot graph")
        from scipy.sparse.csgraph import reverse_cuthill_mckee

        order = reverse_cuthill_mckee(sp.csr_matrix(graph), symmetric_mode=True).astype(np.int64)
        n_blocks = -(-n_spots // batch_size)
        return [np.sort(part) for part in np.array_split(order, n_blocks)]
    xy = np.asarray(coords, dtype=np.float64)[:, :2]
    out: list[np.ndarray] = []
    stack = [np.arange(n_spots, dtype=np.int64)]
    while stack:
        idx = stack.pop()
        if idx.size <= batch_size:
            out.append(np.sort(idx))
            continue
        pts = xy[idx]
        axis = int(np.argmax(np.ptp(pts, axis=0)))
        order = np.lexsort((idx, pts[:, axis]))  # by coordinate, then by spot index
        half = idx.size // 2
        stack.extend([idx[order[half:]], idx[order[:half]]])  # the lower half is popped first
    return out


@dataclass
class Block:
    """One block: its nodes (core first, then the halo by hop distance) and its induced subgraph.

    Attributes
    ----------
    nodes
        Global spot indices, ``nodes[:n_core]`` the core.
    hop_counts
        ``hop_counts[k]``: number of nodes within ``k`` hops of the core (``hop_counts[0] == n_core``).
    edge_index
        (2, E) edges among ``nodes`` in local indices, sorted by (source, target).
    """

    nodes: np.ndarray
    hop_counts: list[int]
    edge_index: np.ndarray

    @property
    def n_core(self) -> int:
        """Number of core spots."""
        return int(self.hop_counts[0])

    @property
    def core(self) -> np.ndarray:
        """Global indices of the core spots."""
        return self.nodes[: self.n_core]

    def prefix(self, hops: int) -> tuple[np.ndarray, np.ndarray]:
        """Nodes within ``hops`` of the core and the edges among them (local indices)."""
        n = int(self.hop_counts[min(hops, len(self.hop_counts) - 1)])
        ei = self.edge_index
        keep = (ei[0] < n) & (ei[1] < n)
        return self.nodes[:n], ei[:, keep]


def with_halo(graph: sp.csr_matrix, core: np.ndarray, hops: int, *, _local: np.ndarray | None = None) -> Block:
    """Return the block of ``core`` with the spots within ``hops`` hops of it and the induced subgraph.

    ``graph`` is the symmetric CSR spot graph without self loops. The work is proportional
    to the block's edges (``_local``, an all ``-1`` int64 array of ``n_spots`` entries that
    is restored on return, lets :func:`section_blocks` reuse one buffer for every block).
    """
    local = np.full(graph.shape[0], -1, dtype=np.int64) if _local is None else _local
    core = np.asarray(core, dtype=np.int64)
    local[core] = np.arange(len(core))
    parts, counts, frontier = [core], [len(core)], core
    try:
        for _ in range(hops):
            nb = np.unique(graph[frontier].indices) if len(frontier) else np.empty(0, np.int64)
            nb = nb[local[nb] < 0].astype(np.int64)
            local[nb] = counts[-1] + np.arange(len(nb))
            parts.append(nb)
            counts.append(counts[-1] + len(nb))
            frontier = nb
        nodes = np.concatenate(parts)
        rows = graph[nodes]
        src = np.repeat(np.arange(len(nodes), dtype=np.int64), np.diff(rows.indptr))
        dst = local[rows.indices]
    finally:
        local[np.concatenate(parts)] = -1
    keep = dst >= 0
    src, dst = src[keep], dst[keep]
    order = np.lexsort((dst, src))
    return Block(nodes=nodes, hop_counts=counts, edge_index=np.vstack([src[order], dst[order]]))


def section_blocks(graph: sp.csr_matrix, batch_size: int, hops: int,
                   coords: np.ndarray | None = None) -> list[Block]:
    """Return every block of a section with its ``hops``-hop halo (see :func:`spatial_blocks`)."""
    graph = sp.csr_matrix(graph)
    cores = spatial_blocks(graph.shape[0], batch_size, coords, graph)
    local = np.full(graph.shape[0], -1, dtype=np.int64)
    return [with_halo(graph, c, hops, _local=local) for c in cores]


def block_rings(block: Block, max_hop: int) -> np.ndarray:
    """(n_core, max_hop, R) hop rings of the core spots, members restricted to the core, padded with -1.

    Hop distances are measured in the block's subgraph, where distances up to 3 between
    core spots equal those in the whole section as soon as the halo holds one hop (a
    shortest path of length ≤ 3 between two core spots leaves the core by at most one hop).
    """
    from ._data import padded_rings

    nodes, ei = block.prefix(1)
    m = len(nodes)
    a = sp.csr_matrix((np.ones(ei.shape[1], np.float32), (ei[0], ei[1])), shape=(m, m))
    rings = padded_rings(a, max_hop=max_hop)[: block.n_core]
    rings[rings >= block.n_core] = -1  # members outside the core do not count
    return _compact(rings)


def _compact(rings: np.ndarray) -> np.ndarray:
    """Move valid entries to the front of the last axis and drop all-padding columns."""
    valid = rings >= 0
    order = np.argsort(~valid, axis=-1, kind="stable")
    rings = np.take_along_axis(rings, order, axis=-1)
    width = max(1, int(valid.sum(-1).max(initial=0)))
    return np.ascontiguousarray(rings[..., :width])
