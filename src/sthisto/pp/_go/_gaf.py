"""Gene annotations from a GAF 2.x or NCBI ``gene2go`` file, as coded arrays.

``NOT`` qualifiers are dropped at read time; everything else (evidence codes, synonyms)
is kept so that :func:`sthisto.pp.gene_ontology_graph` can filter by evidence and match
genes on synonyms.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

GAF_COLUMNS = 17
GAF1_COLUMNS = 15
GENE2GO_HEADER = "#tax_id\tGeneID\tGO_ID"


@dataclass
class Annotations:
    """Gene → GO term annotations as categorical codes (one row per unique triple)."""

    gene_names: np.ndarray  # (n_genes,) str, symbols (GAF) or GeneIDs (gene2go)
    gene: np.ndarray  # (N,) int32 into gene_names
    term_names: np.ndarray  # (n_terms,) str, GO ids as written in the file
    term: np.ndarray  # (N,) int32 into term_names
    evidence_names: np.ndarray  # (n_codes,) str
    evidence: np.ndarray  # (N,) int16 into evidence_names
    syn_names: np.ndarray  # (S,) str synonyms
    syn_gene: np.ndarray  # (S,) int32 into gene_names
    source: str = ""

    def to_arrays(self, prefix: str = "ann_") -> dict[str, np.ndarray]:
        """Arrays for ``np.savez_compressed``."""
        names = ("gene_names", "gene", "term_names", "term", "evidence_names", "evidence",
                 "syn_names", "syn_gene")
        out = {prefix + n: getattr(self, n) for n in names}
        out[prefix + "source"] = np.array(self.source)
        return out

    @classmethod
    def from_arrays(cls, z, prefix: str = "ann_") -> Annotations:
        """Inverse of :meth:`to_arrays`."""
        return cls(
            gene_names=np.asarray(z[prefix + "gene_names"]), gene=np.asarray(z[prefix + "gene"], dtype=np.int32),
            term_names=np.asarray(z[prefix + "term_names"]), term=np.asarray(z[prefix + "term"], dtype=np.int32),
            evidence_names=np.asarray(z[prefix + "evidence_names"]),
            evidence=np.asarray(z[prefix + "evidence"], dtype=np.int16),
            syn_names=np.asarray(z[prefix + "syn_names"]), syn_gene=np.asarray(z[prefix + "syn_gene"], dtype=np.int32),
            source=str(z[prefix + "source"]),
        )


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8", errors="replace")


def _codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    codes, uniques = pd.factorize(values, sort=True)
    return codes.astype(np.int32), np.asarray(uniques, dtype=str)


def _build(symbol, go, evidence, synonyms, source: str) -> Annotations:
    df = pd.DataFrame({"symbol": symbol, "go": go, "evidence": evidence})
    df = df[(df["symbol"] != "") & (df["go"] != "")].drop_duplicates(["symbol", "go", "evidence"])
    if df.empty:
        raise ValueError(f"{source} holds no usable (non-NOT) gene annotations")
    gene, gene_names = _codes(df["symbol"])
    term, term_names = _codes(df["go"])
    ev, ev_names = _codes(df["evidence"])
    pos = {g: i for i, g in enumerate(gene_names.tolist())}
    syn_n, syn_g = [], []
    if synonyms is not None:
        pairs = pd.DataFrame({"symbol": symbol, "syn": synonyms}).drop_duplicates()
        for sym, syns in zip(pairs["symbol"].tolist(), pairs["syn"].tolist(), strict=True):
            if sym not in pos or not syns:
                continue
            for s in syns.split("|"):
                s = s.strip()
                if s and s != sym:
                    syn_n.append(s)
                    syn_g.append(pos[sym])
    syn = pd.DataFrame({"n": syn_n, "g": syn_g}).drop_duplicates()
    return Annotations(
        gene_names=gene_names, gene=gene, term_names=term_names, term=term,
        evidence_names=ev_names, evidence=ev.astype(np.int16),
        syn_names=syn["n"].to_numpy(dtype=str), syn_gene=syn["g"].to_numpy(dtype=np.int32), source=source,
    )


def _not_mask(qualifier: pd.Series) -> np.ndarray:
    return qualifier.str.split("|").map(lambda q: "NOT" in q).to_numpy(dtype=bool)


def read_gaf(path: str | os.PathLike) -> Annotations:
    """Read a GAF 2.x (17 columns; GAF 1.0 with 15 is accepted) or NCBI gene2go file."""
    from sthisto._errors import reading
    from sthisto._validate import existing_file

    path = existing_file(path, "annotation file")
    with reading(path, "annotation file", expected="a GAF 2.x or NCBI gene2go file (plain or .gz)"):
        text = _read_text(path)
    if text.lstrip().startswith(GENE2GO_HEADER):
        return _read_gene2go(text, str(path))
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("!")]
    if not lines:
        raise ValueError(f"{path} holds no annotation lines (only '!' comments or nothing)")
    ncol = np.fromiter((ln.count("\t") + 1 for ln in lines), dtype=np.int32, count=len(lines))
    bad = np.flatnonzero((ncol != GAF_COLUMNS) & (ncol != GAF1_COLUMNS))
    if bad.size or np.unique(ncol).size > 1:
        i = int(bad[0]) if bad.size else int(np.flatnonzero(ncol != ncol[0])[0])
        raise ValueError(
            f"{path}: annotation line {i + 1} has {ncol[i]} tab-separated columns; a GAF 2.x file has "
            f"{GAF_COLUMNS} (GAF 1.0: {GAF1_COLUMNS}) on every line. Is this a GAF or gene2go file? "
            f"Offending line: {lines[i][:120]!r}"
        )
    df = pd.read_csv(
        io.StringIO("\n".join(lines)), sep="\t", header=None, dtype=str, quoting=csv.QUOTE_NONE,
        keep_default_na=False, usecols=[2, 3, 4, 6, 10],
    )
    df.columns = ["symbol", "qualifier", "go", "evidence", "synonyms"]
    if not df["go"].str.contains(":").all():
        i = int(np.flatnonzero(~df["go"].str.contains(":").to_numpy())[0])
        raise ValueError(f"{path}: column 5 of annotation line {i + 1} is {df['go'].iloc[i]!r}, not a GO id")
    keep = ~_not_mask(df["qualifier"])
    df = df[keep]
    return _build(df["symbol"].to_numpy(), df["go"].to_numpy(), df["evidence"].to_numpy(),
                  df["synonyms"].to_numpy(), str(path))


def _read_gene2go(text: str, source: str) -> Annotations:
    df = pd.read_csv(io.StringIO(text), sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE)
    need = {"GeneID", "GO_ID", "Evidence", "Qualifier"}
    if not need <= set(df.columns):
        raise ValueError(f"{source}: a gene2go file needs columns {sorted(need)}, got {list(df.columns)}")
    df = df[~_not_mask(df["Qualifier"])]
    return _build(df["GeneID"].to_numpy(), df["GO_ID"].to_numpy(), df["Evidence"].to_numpy(), None, source)
