"""Reader for 10x Genomics Visium HD (Space Ranger) output, through spatialdata-io."""

from __future__ import annotations

import json
import os
from pathlib import Path

from anndata import AnnData

from sthisto import _constants as K
from sthisto._errors import DEPENDENCY_ERRORS, file_format_error, reading
from sthisto._image import lazy_tiff
from sthisto._logging import logger
from sthisto._validate import existing_file, existing_folder, number, one_of

from ._spatialdata import spatialdata as read_spatialdata

BIN_SIZES_UM = (2, 8, 16)


def _lazy_image(path: Path, dataset_id: str):
    """Wrap a TIFF in a multiscale Image2DModel that is read tile by tile."""
    from spatialdata.models import Image2DModel
    from spatialdata.transformations import Identity

    levels = lazy_tiff(path)
    base = levels[0]
    if base.ndim != 3 or base.shape[2] not in (3, 4):
        raise ValueError(f"{path} must hold an RGB H&E image, got shape {base.shape}")
    return Image2DModel.parse(base[..., :3].transpose(2, 0, 1), dims=("c", "y", "x"), rgb=True,
                              scale_factors=[2, 2, 2, 2], transformations={dataset_id: Identity()},
                              chunks=(3, 2048, 2048))


_IMAGE_SUFFIXES = (".tif", ".tiff", ".btf", ".png", ".jpg", ".jpeg")


def _image_file(path) -> Path:
    """Check the microscope image before spatialdata-io opens it (its loaders raise their own types)."""
    path = existing_file(path, "full-resolution image (fullres_image=)")
    expected = "the microscope H&E image given to Space Ranger (TIFF/BTF, PNG or JPEG)"
    if path.suffix.lower() not in _IMAGE_SUFFIXES:
        raise file_format_error(path, "full-resolution image", f"has the suffix {path.suffix!r}", expected=expected)
    with reading(path, "full-resolution image", expected=expected):
        if path.suffix.lower() in (".tif", ".tiff", ".btf"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                tif.pages[0].shape  # noqa: B018 - parses the first page's header
        else:
            from PIL import Image

            with Image.open(path) as im:
                im.verify()
    return path


def visium_hd(
    path: str | os.PathLike,
    *,
    bin_size: int = 8,
    fullres_image: str | os.PathLike | None = None,
    dataset_id: str | None = None,
    library_id: str | None = None,
) -> AnnData:
    """Read one bin size of a Visium HD Space Ranger output folder.

    The folder is read with :func:`spatialdata_io.visium_hd` and the bins go through
    :func:`sthisto.read.spatialdata`: squares in full-resolution pixels of the microscope
    image, ``array_row``/``array_col`` kept (for :func:`sthisto.pp.lattice_graph` and
    :func:`sthisto.pp.bin_nuclei_features`), the pixel size from the bin's
    ``scalefactors_json.json``. A TIFF/BTF image is opened tile by tile (tifffile's zarr
    interface), so no step loads the whole slide; for repeated work write the SpatialData
    to zarr once and use :func:`sthisto.read.spatialdata` on it.

    Parameters
    ----------
    path
        The ``outs`` folder (``binned_outputs/square_008um/...``, ``spatial/``, ``feature_slice.h5``).
    bin_size
        2, 8 or 16 (µm).
    fullres_image
        The full-resolution microscope H&E given to Space Ranger; default: the file in
        ``microscope_image/`` (spatialdata-io's convention) or ``{dataset_id}_tissue_image.*``.
    dataset_id
        Prefix of the files (``{dataset_id}_feature_slice.h5``); inferred by spatialdata-io.
    library_id
        Key in ``uns['spatial']`` (default: ``square_{bin:03d}um``).

    Returns
    -------
    AnnData as :func:`sthisto.read.spatialdata` returns it (bins × genes, raw counts,
    ``uns['spatial'][library_id]['metadata']['spot_shape'] == "square"``).
    """
    try:
        import spatialdata_io
    except ImportError as err:
        raise ImportError(f'reading Visium HD needs spatialdata-io: pip install "sthisto[spatial]" ({err})') from err
    bin_size = one_of(bin_size, "bin_size", BIN_SIZES_UM, fix="give the bin side in µm")
    path = existing_folder(path, "Visium HD folder")
    name = f"square_{bin_size:03d}um"
    bins_dir = path / "binned_outputs"
    if not (bins_dir / name).is_dir():
        found = sorted(p.name for p in bins_dir.glob("square_*um")) if bins_dir.is_dir() else []
        raise FileNotFoundError(f"{bins_dir / name} not found (bin sizes in {path}: {found or 'none'}).")
    sf_path = existing_file(bins_dir / name / "spatial" / "scalefactors_json.json", "Visium HD bin scale factors")
    with reading(sf_path, "Visium HD bin scale factors", expected="a JSON object from Space Ranger"):
        scalefactors = json.loads(sf_path.read_text())
    if not isinstance(scalefactors, dict):
        raise file_format_error(sf_path, "Visium HD bin scale factors", f"holds a {type(scalefactors).__name__}",
                                expected="a JSON object from Space Ranger")
    if K.MICRONS_PER_PIXEL not in scalefactors:
        raise file_format_error(sf_path, "Visium HD bin scale factors", f"lacks {K.MICRONS_PER_PIXEL!r}",
                                expected="Space Ranger's scalefactors_json.json of the bins")
    mpp = number(scalefactors[K.MICRONS_PER_PIXEL], f"{K.MICRONS_PER_PIXEL!r} in {sf_path}", positive=True)
    if fullres_image is None:
        found = sorted((path / "microscope_image").glob("*")) if (path / "microscope_image").is_dir() else []
        found = found or sorted(path.glob(f"{dataset_id or ''}*tissue_image.*"))
        if not found:
            raise FileNotFoundError(
                f"no full-resolution H&E in {path} (microscope_image/ or *tissue_image.*): pass fullres_image= "
                "(the microscope image given to Space Ranger).")
        fullres_image = found[0]
    fullres_image = _image_file(fullres_image)
    # spatialdata-io parses the h5, parquet and JSON files: a damaged one is named in the detail
    with reading(path, "Visium HD folder", expected="a Space Ranger Visium HD 'outs' folder",
                 fix="check that the folder is complete (re-copy it from Space Ranger's output)",
                 errors=(*DEPENDENCY_ERRORS, RuntimeError)):
        sdata = spatialdata_io.visium_hd(
            path, dataset_id=dataset_id, bin_size=bin_size, load_segmentations_only=False,
            fullres_image_file=fullres_image, bins_as_squares=True,
        )
    full = [k for k in sdata.images if k.endswith("_full_image")]
    if not full or name not in sdata.tables:
        raise file_format_error(path, "Visium HD folder", f"gave no full-resolution image or no {name} table "
                                f"(images {list(sdata.images)}, tables {list(sdata.tables)})",
                                expected="a Space Ranger Visium HD 'outs' folder with its microscope image")
    dataset_id = full[0].removesuffix("_full_image")
    image_key = f"{dataset_id}_full_image"
    if fullres_image.suffix.lower() in (".tif", ".tiff", ".btf"):
        sdata.images[image_key] = _lazy_image(fullres_image, dataset_id)
    logger.info("Visium HD %s: %d bins", name, sdata.tables[name].n_obs)
    return read_spatialdata(sdata, table_key=name, image_key=image_key, shapes_key=f"{dataset_id}_{name}",
                            coordinate_system=dataset_id, library_id=library_id or name,
                            microns_per_pixel=mpp)
