"""Build the bundled GO snapshot ``src/sthisto/datasets/_data/go/`` from ../shared/data/go.

Usage (from the repository root)::

    python scripts/build_go_snapshot.py [--go-dir ../shared/data/go]

Writes ``go_human_2019-01-29.npz`` (the ontology as arrays — term ids, domains, obsolete
flags, is_a/part_of edges, alt_ids, is_a depths — and the GOA human annotations with NOT
qualifiers removed, as coded gene/term/evidence arrays plus synonyms) and
``go_human_2019-01-29.json`` (sources, sha256 of the inputs, license and attribution).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from sthisto.pp._go._gaf import read_gaf
from sthisto.pp._go._obo import read_obo

OUT = Path(__file__).resolve().parents[1] / "src" / "sthisto" / "datasets" / "_data" / "go"
NAME = "go_human_2019-01-29"


def main() -> None:
    """Parse the OBO and GAF and write the compact snapshot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--go-dir", default="../shared/data/go")
    args = parser.parse_args()
    src = Path(args.go_dir)
    obo, gaf = src / "go_2019-01-29.obo.gz", src / "goa_human_2019-01-29.gaf.gz"
    ont = read_obo(obo, cache=False)
    ann = read_gaf(gaf)
    ann.source = "GOA human 2019-01-29 (goa_human.gaf, NOT qualifiers removed)"
    ont.version = ont.version or "releases/2019-01-29"
    OUT.mkdir(parents=True, exist_ok=True)
    arrays = {**ont.to_arrays(), **ann.to_arrays()}
    np.savez_compressed(OUT / f"{NAME}.npz", **arrays)
    meta = {
        "name": NAME,
        "ontology": {"file": obo.name, "sha256": hashlib.sha256(obo.read_bytes()).hexdigest(),
                     "data_version": ont.version, "n_terms": int(ont.n_terms),
                     "n_is_a": int(ont.is_a.shape[1]), "n_part_of": int(ont.part_of.shape[1])},
        "annotations": {"file": gaf.name, "sha256": hashlib.sha256(gaf.read_bytes()).hexdigest(),
                        "n_genes": int(ann.gene_names.size), "n_annotations": int(ann.gene.size)},
        "license": "CC BY 4.0",
        "attribution": (
            "Gene Ontology data from the GO Consortium (http://geneontology.org), release 2019-01-29, and "
            "GOA human annotations (EMBL-EBI, Gene Ontology Annotation database), licensed under CC BY 4.0 "
            "(https://creativecommons.org/licenses/by/4.0/). Ashburner et al., Nat Genet 25, 25-29 (2000); "
            "The Gene Ontology Consortium, Nucleic Acids Res 47, D330-D338 (2019). Modified: converted to "
            "arrays by scripts/build_go_snapshot.py."
        ),
        "built_by": "scripts/build_go_snapshot.py",
    }
    (OUT / f"{NAME}.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {OUT / (NAME + '.npz')} ({(OUT / (NAME + '.npz')).stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
