"""The bundled HER2ST demo: sections C2, C3, C4 shipped inside the package."""

from __future__ import annotations

import json
from importlib.resources import as_file, files
from pathlib import Path

from anndata import AnnData

from sthisto import _constants as K
from sthisto._validate import name_list

DEMO_SECTIONS = ("C2", "C3", "C4")


def her2st_demo(sections: tuple[str, ...] | list[str] = DEMO_SECTIONS) -> list[AnnData]:
    """Load the bundled HER2ST demo sections (no download).

    Three sections of one HER2+ breast tumour (patient C of Andersson et al. 2021),
    legacy ST with 100 µm spots at 200 µm pitch, all ~15.7k genes as raw counts. The H&E
    is kept at full resolution (≈0.69 µm/px) inside and 25 µm around each spot; the rest
    of the slide is cropped or blanked to keep the package small (see
    ``datasets/_data/her2st_demo/provenance.json``). Pixel coordinates refer to the
    cropped image; the crop offset is in ``uns['spatial'][section]['metadata']``.

    Parameters
    ----------
    sections
        Which of ``"C2"``, ``"C3"``, ``"C4"`` to load (one name or a list).

    Returns
    -------
    One AnnData per section, read by :func:`sthisto.read.legacy_st`.
    """
    from sthisto.read import legacy_st

    sections = list(name_list(sections, "sections", allow_empty=False))
    unknown = set(sections) - set(DEMO_SECTIONS)
    if unknown:
        raise ValueError(f"unknown demo sections {sorted(unknown)}; choose from {DEMO_SECTIONS}")
    root = files("sthisto.datasets").joinpath("_data", "her2st_demo")
    provenance = json.loads(root.joinpath("provenance.json").read_text())
    adatas = []
    for section in sections:
        with as_file(root) as folder:
            adata = legacy_st(
                folder / f"{section}.tsv.gz",
                folder / f"{section}_selection.tsv",
                folder / f"{section}.jpg",
                library_id=section,
                microns_per_pixel=provenance["sections"][section]["microns_per_pixel"],
            )
        meta = adata.uns[K.SPATIAL_UNS][section]["metadata"]
        meta["crop_offset_xy"] = provenance["sections"][section]["crop_offset_xy"]
        meta["source"] = provenance["source"]
        meta["license"] = provenance["license"]
        adata.obs["section"] = section
        adatas.append(adata)
    return adatas


def her2st_demo_spatialdata(sections: tuple[str, ...] | list[str] = DEMO_SECTIONS):
    """Load the bundled HER2ST demo sections as one :class:`spatialdata.SpatialData` object.

    The sections of :func:`her2st_demo`, converted by :func:`sthisto.io.to_spatialdata`:
    per section ``{s}_image`` (multiscale H&E), ``{s}_spots`` (100 µm circles) and
    ``{s}_counts`` (raw counts annotating the spots, with the pixel size in
    ``uns['spatial']``), each in its own coordinate system ``{s}`` (full-resolution pixels).
    Needs the ``[spatial]`` extra.

    Parameters
    ----------
    sections
        Which of ``"C2"``, ``"C3"``, ``"C4"`` to load.

    Returns
    -------
    A SpatialData object; read a section back with
    ``sthisto.read.spatialdata(sdata, table_key="C2_counts")``.
    """
    from spatialdata import concatenate

    from sthisto.io import to_spatialdata

    return concatenate([to_spatialdata(adata) for adata in her2st_demo(sections)])


def her2st_panel() -> list[str]:
    """Return the 785-gene panel used by Hist2ST on HER2ST (gene symbols, in file order).

    Returns
    -------
    A list of gene symbols.
    """
    text = files("sthisto.datasets").joinpath("_data", "hist2st_panel_785.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]


def her2st_gene2vec() -> Path:
    """Return the path of the demo's pretrained Gene2Vec vectors (word2vec text, gzip).

    200-d vectors for the 785 panel genes, trained by ``scripts/build_her2st_gene2vec.py``
    on the count tables of the HER2ST patients *other* than C (A, B, D–H), so they carry
    no information about the demo sections. Load them with
    ``sthisto.pp.gene_embeddings(adata, path=sthisto.datasets.her2st_gene2vec())``.

    Returns
    -------
    Path to ``her2st_gene2vec_785.txt.gz`` inside the package.
    """
    return Path(str(files("sthisto.datasets").joinpath("_data", "her2st_gene2vec_785.txt.gz")))
