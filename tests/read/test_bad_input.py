"""Damaged or inconsistent reader input: each class ends in a message naming the file."""

import gzip
import json
import logging
import re

import numpy as np
import pandas as pd
import pytest

import sthisto as st
from sthisto._errors import FileFormatError, InputError

# --- legacy ST: counts table -----------------------------------------------------------------


def _counts(path):
    return pd.read_csv(path, sep="\t", index_col=0)


def _write_counts(path, table):
    with gzip.open(path, "wt") as fh:
        table.to_csv(fh, sep="\t")


@pytest.mark.parametrize(
    ("damage", "detail"),
    [
        (lambda raw: b"", r"Not a gzipped file|EOFError|No columns to parse"),
        (lambda raw: raw[:30] + bytes(b ^ 0x5A for b in raw[30:90]) + raw[90:], r"\[(zlib\.error|gzip\.BadGzipFile)\]"),
        (lambda raw: raw[: len(raw) // 2], r"Compressed file ended before the end-of-stream marker was reached"),
        (lambda raw: gzip.decompress(raw), r"Not a gzipped file"),
    ],
)
def test_damaged_counts_file(legacy_st_files, damage, detail):
    counts, spots, image = legacy_st_files
    counts.write_bytes(damage(counts.read_bytes()))
    with pytest.raises(FileFormatError, match=rf"^cannot read the counts file {re.escape(str(counts))}: .*({detail}).*"
                                              r"Expected a tab-separated spots × genes table \(plain or gzip\)"):
        st.read.legacy_st(counts, spots, image)


def test_text_in_a_gene_column(legacy_st_files):
    counts, spots, image = legacy_st_files
    table = _counts(counts).astype(object)
    spot = table.index[4]
    table.iloc[4, 3] = "12a"
    _write_counts(counts, table)
    with pytest.raises(FileFormatError, match=rf"^counts file {re.escape(str(counts))}: gene column 'GENE0003' holds "
                                              rf"text \(e\.g\. '12a' at spot '{spot}'\)\. Expected"):
        st.read.legacy_st(counts, spots, image)


def test_empty_cell_and_all_zero_counts(legacy_st_files):
    counts, spots, image = legacy_st_files
    table = _counts(counts).astype(float)
    table.iloc[2, 5] = np.nan
    _write_counts(counts, table)
    with pytest.raises(InputError, match=rf"^{re.escape(str(counts))} contains 1 NaN or infinite value\(s\) at spot "
                                         rf"'{table.index[2]}', gene 'GENE0005'; counts must be finite\."):
        st.read.legacy_st(counts, spots, image)
    _write_counts(counts, table.fillna(0) * 0)
    with pytest.raises(InputError, match=r"holds no counts \(every value is 0\)"):
        st.read.legacy_st(counts, spots, image)


def test_duplicated_gene_columns_are_reported_and_made_unique(legacy_st_files, caplog):
    counts, spots, image = legacy_st_files
    table = _counts(counts)
    table.columns = [*table.columns[:-1], "GENE0000"]  # pandas would read it as 'GENE0000.1'
    _write_counts(counts, table)
    with caplog.at_level(logging.WARNING, logger="sthisto"):
        adata = st.read.legacy_st(counts, spots, image)
    assert f"counts file {counts} has 1 duplicated gene name(s) (e.g. ['GENE0000'])" in caplog.text
    assert adata.var_names[0] == "GENE0000" and adata.var_names[-1] == "GENE0000-1"
    np.testing.assert_array_equal(adata[:, "GENE0000-1"].X.toarray().ravel(), table.iloc[:, -1].to_numpy())


# --- legacy ST: spot table and geometry --------------------------------------------------------


def _edit_spots(path, fn):
    table = pd.read_csv(path, sep="\t")
    fn(table)
    table.to_csv(path, sep="\t", index=False)
    return table


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.__setitem__("pixel_x", t["pixel_x"].where(t.index != 3)),
         r"column 'pixel_x' holds 1 value\(s\) that are not finite numbers \(e\.g\. nan at line 5\)"),
        (lambda t: t.__setitem__("pixel_y", t["pixel_y"].astype(object).where(t.index != 0, "12,5")),
         r"column 'pixel_y' holds 1 value\(s\) that are not finite numbers \(e\.g\. '12,5' at line 2\)"),
        (lambda t: t.__setitem__("x", t["x"] + 0.5 * (t.index == 1)),
         r"column 'x' holds 1 value\(s\) that are not whole numbers \(e\.g\. .*\.5 at line 3\)"),
        (lambda t: t.__setitem__("selected", t["selected"].astype(object).where(t.index != 2, "yes")),
         r"column 'selected' holds 1 value\(s\) that are not whole numbers \(e\.g\. 'yes' at line 4\)"),
        (lambda t: t.__setitem__("selected", 0), r"has no \(selected\) spots"),
    ],
)
def test_bad_spot_table(legacy_st_files, edit, message):
    counts, spots, image = legacy_st_files
    _edit_spots(spots, edit)
    with pytest.raises(FileFormatError, match=rf"^spot selection file {re.escape(str(spots))}: {message}"):
        st.read.legacy_st(counts, spots, image)


@pytest.mark.parametrize("microns_per_pixel", [None, 2.0])
def test_swapped_array_columns(legacy_st_files, microns_per_pixel):
    counts, spots, image = legacy_st_files
    _edit_spots(spots, lambda t: t.rename(columns={"x": "y", "y": "x"}, inplace=True))
    with pytest.raises(InputError, match=rf"^{re.escape(str(spots))}: pixel_x follows the array y and pixel_y follows "
                                         r"x \(the grid is mirrored\): the x/y \(or pixel_x/pixel_y\) columns look "
                                         r"swapped\. To fix: exchange them"):
        st.read.legacy_st(counts, spots, image, microns_per_pixel=microns_per_pixel)


def test_grid_that_is_not_square_needs_a_pixel_size(legacy_st_files):
    counts, spots, image = legacy_st_files
    _edit_spots(spots, lambda t: t.__setitem__("pixel_y", t["pixel_y"] / 2))
    with pytest.raises(InputError, match=rf"^{re.escape(str(spots))}: the pixel positions do not follow the spot grid: "
                                         r"one step of x spans 100\.0 px and one step of y 50\.0 px, but on this "
                                         r"platform they are 200 and 200 µm; the x/y"):
        st.read.legacy_st(counts, spots, image)
    assert st.read.legacy_st(counts, spots, image, microns_per_pixel=2.0).n_obs == 100  # given: not derived


def test_pixel_positions_of_another_section(legacy_st_files):
    counts, spots, image = legacy_st_files
    rng = np.random.default_rng(0)
    _edit_spots(spots, lambda t: t.__setitem__("pixel_x", rng.permutation(t["pixel_x"].to_numpy())))
    with pytest.raises(InputError, match=r"the pixel positions do not follow the spot grid: .*; the x/y \(or "
                                         r"pixel_x/pixel_y\) columns may be mixed up, or the positions may come from "
                                         r"another file\.$"):
        st.read.legacy_st(counts, spots, image)
    _edit_spots(spots, lambda t: t.__setitem__("pixel_x", t["x"] * 100 + 100 + rng.normal(0, 50, len(t))))
    with pytest.raises(InputError, match=r"the pixel positions scatter around the spot grid by \d+ px \(RMS\), "
                                         r"\d+% of the \d+ px spot pitch; check that pixel_x/pixel_y belong to these"):
        st.read.legacy_st(counts, spots, image)


def test_given_pixel_size_far_from_the_grid_warns(legacy_st_files, caplog):
    with caplog.at_level(logging.WARNING, logger="sthisto"):
        st.read.legacy_st(*legacy_st_files, microns_per_pixel=0.5)
    assert "microns_per_pixel=0.5, but the spot grid of" in caplog.text and "implies 2 µm/px" in caplog.text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"spot_diameter_um": float("inf")}, r"spot_diameter_um must be a positive finite number, got inf\."),
        ({"spot_diameter_um": 0}, r"spot_diameter_um must be a positive finite number, got 0\."),
        ({"spot_diameter_um": "100"}, r"spot_diameter_um must be a positive finite number, got '100'\."),
        ({"microns_per_pixel": float("nan")}, r"microns_per_pixel must be a positive finite number, got nan\. "
                                              r"To fix: pass the pixel size in µm, or None"),
        ({"microns_per_pixel": -0.7}, r"microns_per_pixel must be a positive finite number, got -0\.7\."),
        ({"library_id": 3}, r"library_id must be a non-empty string or None, got 3\."),
    ],
)
def test_bad_arguments_fail_before_any_file_is_read(legacy_st_files, kwargs, message):
    counts, spots, image = legacy_st_files
    counts.write_bytes(b"")  # would fail later: the argument check comes first
    with pytest.raises(InputError, match=f"^{message}"):
        st.read.legacy_st(counts, spots, image, **kwargs)


def test_folder_instead_of_a_file(legacy_st_files, tmp_path):
    counts, spots, image = legacy_st_files
    with pytest.raises(IsADirectoryError, match=rf"^counts file {re.escape(str(tmp_path))} is a folder; pass the file"):
        st.read.legacy_st(tmp_path, spots, image)


# --- full-resolution image referenced by path -----------------------------------------------------


def test_image_changed_on_disk_is_detected(legacy_st_files):
    from PIL import Image

    adata = st.read.legacy_st(*legacy_st_files)
    image = legacy_st_files[2]
    original = image.read_bytes()
    arr = np.asarray(Image.open(image)).copy()
    arr[:10] = 0
    Image.fromarray(arr).save(image)
    with pytest.raises(FileFormatError, match=rf"^full-resolution image {re.escape(str(image))}: changed on disk since "
                                              r"the section was read \(\d+ bytes then, \d+ now.*\)\. To fix: read the "
                                              r"section again"):
        st._image.fullres_image(adata)
    image.write_bytes(original)  # the same bytes again (new mtime): accepted
    np.testing.assert_array_equal(st._image.fullres_image(adata), np.asarray(Image.open(image)))
    image.unlink()
    with pytest.raises(FileNotFoundError, match=r"referenced by adata\.uns\['spatial'\]\['counts'\]\['metadata'\]"
                                                r"\['fullres_path'\] is missing"):
        st._image.fullres_image(adata)


def test_image_shape_is_checked_and_fingerprint_survives_h5ad(legacy_st_files, tmp_path):
    import anndata as ad

    adata = st.read.legacy_st(*legacy_st_files)
    adata.write_h5ad(tmp_path / "s.h5ad")
    back = ad.read_h5ad(tmp_path / "s.h5ad")
    assert st._image.fullres_image(back).shape == st._image.fullres_image(adata).shape
    meta = back.uns["spatial"]["counts"]["metadata"]
    meta["fullres_fingerprint"]["shape"] = [1, 2, 3]
    with pytest.raises(FileFormatError, match=r"has shape \(\d+, \d+, 3\), but \(1, 2, 3\) when the section was read"):
        st._image.fullres_image(back)


# --- Visium -------------------------------------------------------------------------------------


def test_damaged_count_matrix(visium_dir):
    import h5py

    h5 = visium_dir / "filtered_feature_bc_matrix.h5"
    h5.write_bytes(b"\x89HDF" + b"\0" * 64)
    with pytest.raises(FileFormatError, match=rf"^cannot read the 10x count matrix {re.escape(str(h5))}: .*file "
                                              r"signature not found.*Expected a Space Ranger feature-barcode matrix"):
        st.read.visium(visium_dir)
    h5.unlink()
    with h5py.File(h5, "w") as f:
        f.create_group("matrix")
    with pytest.raises(FileFormatError, match=r"File is missing one or more required datasets\. \[Exception\]"):
        st.read.visium(visium_dir)


def _scalefactors(folder, value=None, **changes):
    path = folder / "spatial" / "scalefactors_json.json"
    if value is None:
        value = {**json.loads(path.read_text()), **changes}
    path.write_text(value if isinstance(value, str) else json.dumps(value))
    return path


@pytest.mark.parametrize(
    ("value", "changes", "message"),
    [
        ('{"spot_diameter_fullres": 89.4,', {}, r"^cannot read the scale factors {path}: .*\[json\.JSONDecodeError\]"),
        ([89.4, 0.15], {}, r"^scale factors {path}: holds a JSON list, not an object\. Expected a Space Ranger JSON"),
        (None, {"spot_diameter_fullres": "89.4"},
         r"^{path}: 'spot_diameter_fullres' must be a positive finite number, got '89\.4'\. To fix: use the "
         r"scalefactors_json\.json that Space Ranger wrote\."),
        (None, {"tissue_lowres_scalef": None}, r"^{path}: 'tissue_lowres_scalef' must be a positive finite number"),
        (None, {"spot_diameter_fullres": 1e308 * 10}, r"^{path}: 'spot_diameter_fullres' must be a positive finite"),
    ],
)
def test_bad_scale_factors(visium_dir, value, changes, message):
    path = _scalefactors(visium_dir, value, **changes)
    with pytest.raises(ValueError, match=message.format(path=re.escape(str(path)))):
        st.read.visium(visium_dir)


def test_scale_factors_of_another_image(visium_dir):
    sf = json.loads((visium_dir / "spatial" / "scalefactors_json.json").read_text())
    path = _scalefactors(visium_dir, spot_diameter_fullres=sf["spot_diameter_fullres"] * 1.5)
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}: spot_diameter_fullres = .* px implies 0\.485 µm/px, "
                                         r"but the spot grid of tissue_positions_list\.csv \(100 µm pitch\) implies "
                                         r"0\.72\d µm/px: the scale factors and the positions do not belong together"):
        st.read.visium(visium_dir)


def _set(table, column, row, value):
    table[column] = table[column].astype(object)
    table.loc[row, column] = value
    return table


def _positions(folder):
    path = folder / "spatial" / "tissue_positions_list.csv"
    return path, pd.read_csv(path, header=None)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.drop(columns=5), r"has 5 columns\. Expected a Space Ranger tissue positions CSV"),
        (lambda t: _set(t, 4, 7, np.nan),
         r"column 'pxl_row_in_fullres' holds 1 value\(s\) that are not finite numbers \(e\.g\. nan at spot "),
        (lambda t: _set(t, 3, 2, "abc"),
         r"column 'array_col' holds 1 value\(s\) that are not whole numbers \(e\.g\. 'abc' at spot "),
        (lambda t: _set(t, 1, 0, 2), r"column 'in_tissue' holds values other than 0 and 1"),
        (lambda t: pd.concat([t, t.iloc[:1]]), r"has duplicated barcodes \(e\.g\. \['ACGCCTGACACGCGCT-1'\]\)"),
    ],
)
def test_bad_tissue_positions(visium_dir, edit, message):
    path, table = _positions(visium_dir)
    edit(table).to_csv(path, header=False, index=False)
    with pytest.raises(FileFormatError, match=rf"^tissue positions file {re.escape(str(path))}: {message}"):
        st.read.visium(visium_dir)


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ([2, 3], r": the pixel positions do not follow the spot grid: one step of array_col spans 119\.7 px and one "
                 r"step of array_row 68\.8 px, but on this platform they are 50 and 86\.6025 µm"),
        ([4, 5], r" \(checked against tissue_lowres_image\.png\): pxl_row_in_fullres and pxl_col_in_fullres look "
                 r"swapped: the spots flagged in_tissue lie on the tissue of the image only with the two columns "
                 r"exchanged"),
    ],
)
def test_swapped_position_columns(visium_dir, columns, message):
    """array_row/array_col swapped break the hexagonal grid; pxl_row/pxl_col swapped (square image) do not."""
    path, table = _positions(visium_dir)
    table[columns] = table[columns[::-1]].to_numpy()
    table.to_csv(path, header=False, index=False)
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}{message}"):
        st.read.visium(visium_dir)
