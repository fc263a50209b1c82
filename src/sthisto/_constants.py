"""Every AnnData key that sthisto reads or writes, in one place."""

from __future__ import annotations

# inputs (scanpy / squidpy conventions)
SPATIAL_KEY = "spatial"  # obsm: full-resolution pixel coordinates (x, y)
SPATIAL_UNS = "spatial"  # uns[SPATIAL_UNS][library_id] = {"images", "scalefactors", "metadata"}
HIRES = "hires"
FULLRES = "fullres"
SCALEF_HIRES = "tissue_hires_scalef"
SPOT_DIAMETER = "spot_diameter_fullres"
MICRONS_PER_PIXEL = "microns_per_pixel"  # scalefactors entry added by sthisto readers
FULLRES_PATH = "fullres_path"  # uns["spatial"][lib]["metadata"] entry: lazy full-resolution image
FULLRES_FINGERPRINT = "fullres_fingerprint"  # metadata entry: size, sampled CRC-32, shape of that image
# coarser levels of a full-resolution pyramid (e.g. a SpatialData multiscale image): images["fullres_1"],
# images["fullres_2"], ... with scalefactors["tissue_fullres_1_scalef"], ... (image px per full-res px)
FULLRES_LEVEL = "fullres_{level}"

# pp outputs
NUCLEI = "sthisto_nuclei"
MORPHOLOGY = "sthisto_morphology"
TOPOLOGY = "sthisto_topology"
DEEP = "sthisto_deep"
TEXTURE = "sthisto_texture"
SPATIAL_NEIGHBORS = "spatial"  # -> obsp["spatial_connectivities"], obsp["spatial_distances"]
GO = "sthisto_go"  # -> varp["sthisto_go_similarity"], varp["sthisto_go_connectivities"]
GENE2VEC = "sthisto_gene2vec"

# tl outputs
PRED = "sthisto_pred"
METRICS = "sthisto_metrics"
PCC = "sthisto_pcc"
SPEARMAN = "sthisto_spearman"
MSE = "sthisto_mse"
MAE = "sthisto_mae"

# modality name -> obsm key (the paper's three, plus the weights-free image features)
MODALITY_KEYS = {
    "deep": DEEP,
    "morphology": MORPHOLOGY,
    "topology": TOPOLOGY,
    "texture": TEXTURE,
}


def fullres_level_key(level: int) -> str:
    """Return the ``images`` key of pyramid level ``level`` (0 = ``"fullres"``)."""
    return FULLRES if level == 0 else FULLRES_LEVEL.format(level=level)


def scalef_key(img_key: str) -> str:
    """Return the ``scalefactors`` key of an image (Visium's ``tissue_{img_key}_scalef``)."""
    return f"tissue_{img_key}_scalef"


#: the modalities M2TGLGO uses unless told otherwise (the paper's three)
DEFAULT_MODALITIES = ("deep", "morphology", "topology")


def connectivities_key(key: str) -> str:
    """Return the obsp/varp key of a graph's connectivities."""
    return f"{key}_connectivities"


def distances_key(key: str) -> str:
    """Return the obsp key of a graph's distances."""
    return f"{key}_distances"


def similarity_key(key: str) -> str:
    """Return the varp key of the GO similarity matrix."""
    return f"{key}_similarity"
