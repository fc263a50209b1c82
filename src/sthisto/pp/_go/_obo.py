"""OBO ontologies (read with pronto) as compact arrays, cached on disk.

An :class:`Ontology` holds, per term, its id, domain (BP/MF/CC), obsolete flag and
``is_a``/``part_of`` edges as integer arrays, plus the ``is_a`` depth (longest path
from a root, roots = 0). Parsing the 2019 GO takes ~10 s with pronto; the arrays are
written to ``settings.datasetdir / "go_cache"`` keyed by the file's sha256, so a second
call loads them in milliseconds.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sthisto._logging import logger

DOMAINS = ("biological_process", "molecular_function", "cellular_component")
ASPECTS = {"P": 0, "F": 1, "C": 2}
CACHE_VERSION = 1


@dataclass
class Ontology:
    """An ontology as arrays (index = term position in ``ids``)."""

    ids: np.ndarray  # (T,) str
    domain: np.ndarray  # (T,) int8: 0 BP, 1 MF, 2 CC, -1 other
    obsolete: np.ndarray  # (T,) bool
    is_a: np.ndarray  # (2, E) int32 (child, parent)
    part_of: np.ndarray  # (2, E) int32 (child, parent)
    alt_ids: np.ndarray  # (A,) str
    alt_target: np.ndarray  # (A,) int32 index into ids
    depth: np.ndarray = field(default=None)  # (T,) int32, longest is_a path from a root
    version: str = ""

    def __post_init__(self) -> None:
        if self.depth is None:
            self.depth = is_a_depth(len(self.ids), self.is_a)
        self._index = None

    @property
    def n_terms(self) -> int:
        """Number of terms."""
        return len(self.ids)

    def index(self) -> dict[str, int]:
        """Map term id (and alt_id) → position of its primary term."""
        if self._index is None:
            idx = {t: i for i, t in enumerate(self.ids.tolist())}
            for a, j in zip(self.alt_ids.tolist(), self.alt_target.tolist(), strict=True):
                idx.setdefault(a, j)
            self._index = idx
        return self._index

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Arrays for ``np.savez_compressed``."""
        return {
            "ids": self.ids.astype(str), "domain": self.domain, "obsolete": self.obsolete,
            "is_a": self.is_a, "part_of": self.part_of, "alt_ids": self.alt_ids.astype(str),
            "alt_target": self.alt_target, "depth": self.depth,
            "version": np.array(self.version), "cache_version": np.array(CACHE_VERSION),
        }

    @classmethod
    def from_arrays(cls, z) -> Ontology:
        """Inverse of :meth:`to_arrays`."""
        return cls(
            ids=np.asarray(z["ids"]), domain=np.asarray(z["domain"], dtype=np.int8),
            obsolete=np.asarray(z["obsolete"], dtype=bool),
            is_a=np.asarray(z["is_a"], dtype=np.int32).reshape(2, -1),
            part_of=np.asarray(z["part_of"], dtype=np.int32).reshape(2, -1),
            alt_ids=np.asarray(z["alt_ids"]), alt_target=np.asarray(z["alt_target"], dtype=np.int32),
            depth=np.asarray(z["depth"], dtype=np.int32), version=str(z["version"]),
        )


def is_a_depth(n_terms: int, is_a: np.ndarray) -> np.ndarray:
    """Longest ``is_a`` path from a root (a term without parents) for every term.

    Raises ``ValueError`` when the ``is_a`` graph has a cycle.
    """
    import scipy.sparse as sp

    child, parent = np.asarray(is_a[0]), np.asarray(is_a[1])
    depth = np.zeros(n_terms, dtype=np.int32)
    if child.size == 0:
        return depth
    # Kahn's algorithm level by level (vectorised): a term's depth is final once all
    # its parents are done; depth = 1 + max(parent depth).
    up = sp.csr_matrix((np.ones(child.size, dtype=np.int32), (child, parent)), shape=(n_terms, n_terms))
    up.sum_duplicates()
    up.data[:] = 1
    down = up.T.tocsr()
    remaining = np.asarray(up.sum(axis=1)).ravel()
    frontier = np.flatnonzero(remaining == 0)
    done = frontier.size
    while frontier.size:
        kids = down[frontier]
        kid_idx = kids.indices
        np.maximum.at(depth, kid_idx, np.repeat(depth[frontier], np.diff(kids.indptr)) + 1)
        np.subtract.at(remaining, kid_idx, 1)
        cand = np.unique(kid_idx)
        frontier = cand[remaining[cand] == 0]
        done += frontier.size
    if done != n_terms:
        raise ValueError(f"the is_a graph has a cycle through {n_terms - done} terms; not a valid ontology")
    return depth


def _open_bytes(path: Path) -> bytes:
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw


def _parse_obo(raw: bytes, source: str) -> Ontology:
    import pronto

    head = raw[:4096].lstrip().decode("utf-8", errors="replace")
    if not (head.startswith("format-version:") or head.startswith("[Term]") or "\n[Term]" in head
            or head.startswith("ontology:")):
        raise ValueError(
            f"{source} is not an OBO file (expected a 'format-version:' header and [Term] stanzas); "
            "pass an OBO 1.2/1.4 file such as go-basic.obo (plain or .gz)."
        )
    try:
        ont = pronto.Ontology(io.BytesIO(raw))
    except Exception as err:  # noqa: BLE001 - pronto raises many types; re-raise with context
        raise ValueError(f"could not parse {source} as OBO with pronto: {err}") from err
    terms = list(ont.terms())
    if not terms:
        raise ValueError(f"{source} holds no [Term] stanzas; is it an OBO ontology?")
    ids = [t.id for t in terms]
    pos = {t: i for i, t in enumerate(ids)}
    dom_code = {d: i for i, d in enumerate(DOMAINS)}
    domain = np.array([dom_code.get(t.namespace, -1) for t in terms], dtype=np.int8)
    obsolete = np.array([bool(t.obsolete) for t in terms], dtype=bool)
    isa_c, isa_p, po_c, po_p, alt, alt_t = [], [], [], [], [], []
    for i, t in enumerate(terms):
        for s in t.superclasses(distance=1, with_self=False):
            if s.id in pos:
                isa_c.append(i)
                isa_p.append(pos[s.id])
        rel = t._data().relationships
        for p in rel.get("part_of", ()):
            if p in pos:
                po_c.append(i)
                po_p.append(pos[p])
        for a in t.alternate_ids:
            alt.append(a)
            alt_t.append(i)
    version = ""
    meta = ont.metadata
    if getattr(meta, "data_version", None):
        version = str(meta.data_version)
    return Ontology(
        ids=np.array(ids), domain=domain, obsolete=obsolete,
        is_a=np.array([isa_c, isa_p], dtype=np.int32).reshape(2, -1),
        part_of=np.array([po_c, po_p], dtype=np.int32).reshape(2, -1),
        alt_ids=np.array(alt, dtype=str), alt_target=np.array(alt_t, dtype=np.int32), version=version,
    )


def _cache_dir() -> Path:
    from sthisto._settings import settings

    return Path(settings.datasetdir) / "go_cache"


def read_obo(path: str | os.PathLike, *, cache: bool = True) -> Ontology:
    """Read an OBO file (plain or gzip) into an :class:`Ontology`, using the on-disk cache."""
    from sthisto._errors import reading
    from sthisto._validate import existing_file

    path = existing_file(path, "ontology file")
    with reading(path, "ontology file", expected="an OBO 1.2/1.4 file such as go-basic.obo (plain or .gz)"):
        raw = _open_bytes(path)
    digest = hashlib.sha256(raw).hexdigest()[:24]
    target = _cache_dir() / f"obo_{digest}_v{CACHE_VERSION}.npz"
    if cache and target.is_file():
        try:
            with np.load(target, allow_pickle=False) as z:
                logger.info("GO: loaded cached ontology %s", target)
                return Ontology.from_arrays(z)
        except (OSError, ValueError, KeyError) as err:
            logger.warning("GO: ignoring unreadable cache %s (%s)", target, err)
    ont = _parse_obo(raw, str(path))
    if cache:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez_compressed(tmp, **ont.to_arrays())
            os.replace(tmp, target)
            logger.info("GO: cached parsed ontology in %s", target)
        except OSError as err:
            logger.warning("GO: could not write the ontology cache %s (%s)", target, err)
    return ont
