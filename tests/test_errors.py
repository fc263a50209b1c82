"""The general mechanism: wrapped dependency errors, scalar checks, count checks, staged writes."""

import gzip
import json
import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata import AnnData

from sthisto import _utils
from sthisto._errors import DownloadError, FileFormatError, InputError, downloading, reading
from sthisto._utils import Outputs, detach
from sthisto._validate import (
    counts_matrix,
    existing_file,
    existing_folder,
    integer,
    number,
    one_of,
    raw_counts,
)
from tests._unchanged import assert_unchanged


def _table(tmp_path, data: bytes, name="counts.tsv.gz"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _read(path):
    with reading(path, "counts table", expected="a tab-separated table"):
        return pd.read_csv(path, sep="\t", index_col=0)


GOOD = gzip.compress(b"\tA\tB\n" + b"".join(b"%dx1\t1\t2\n" % i for i in range(3000)))


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b"", r"No columns to parse from file \[pandas\.EmptyDataError\]"),
        (GOOD[:20] + bytes(b ^ 0x55 for b in GOOD[20:60]) + GOOD[60:], r"\[zlib\.error\]"),
        (GOOD[: len(GOOD) // 2], r"Compressed file ended before the end-of-stream marker was reached \[EOFError\]"),
        (b"\x1f\x8b\x08\x00garbage", r"\[(gzip\.BadGzipFile|EOFError|zlib\.error)\]"),
        (b"\tA\n1x1\t1\n", r"Not a gzipped file \(b'\\tA'\) \[gzip\.BadGzipFile\]"),
        (b"\tA\xff\n1x1\t1\n", r"can't decode byte 0xff .*\[UnicodeDecodeError\]"),
    ],
)
def test_reading_wraps_parser_errors_with_file_and_format(tmp_path, data, detail):
    path = _table(tmp_path, data, "counts.tsv" if data.startswith(b"\tA\xff") else "counts.tsv.gz")
    with pytest.raises(FileFormatError, match=rf"^cannot read the counts table {path}: .*{detail}\. "
                                              r"Expected a tab-separated table\. To fix: check that the file is "
                                              r"complete and in this format") as info:
        _read(path)
    assert isinstance(info.value, ValueError) and info.value.__cause__ is not None
    assert info.value.path == str(path) and info.value.what == "counts table"


def test_reading_wraps_h5py_json_and_pil(tmp_path):
    import h5py
    from PIL import Image

    junk = _table(tmp_path, b"not hdf5 at all" * 10, "m.h5")
    with pytest.raises(FileFormatError, match=r"cannot read the 10x matrix .*m\.h5: .*file signature not found"):
        with reading(junk, "10x matrix"):
            h5py.File(junk, "r")
    bad_json = _table(tmp_path, b"{'spot_diameter_fullres': 1}", "sf.json")
    with pytest.raises(FileFormatError, match=r"cannot read the scale factors .*sf\.json: .*\[json\.JSONDecodeError\]"):
        with reading(bad_json, "scale factors"):
            json.loads(bad_json.read_text())
    with pytest.raises(FileFormatError, match=r"cannot read the image .*m\.h5: .*\[PIL\.UnidentifiedImageError\]"):
        with reading(junk, "image"):
            Image.open(junk)


def test_reading_keeps_access_errors_as_oserror(tmp_path):
    with pytest.raises(IsADirectoryError, match=r"cannot open the counts table .*: Is a directory\. "
                                                r"To fix: pass the file itself, not a folder"):
        with reading(tmp_path, "counts table"):
            open(tmp_path)  # noqa: SIM115
    with pytest.raises(FileNotFoundError, match=r"cannot open the counts table .*nope.*To fix: check the path"):
        with reading(tmp_path / "nope", "counts table"):
            open(tmp_path / "nope")  # noqa: SIM115


def test_reading_lets_own_errors_and_memory_errors_through(tmp_path):
    own = InputError("already has context")
    with pytest.raises(InputError) as info, reading(tmp_path, "x"):
        raise own
    assert info.value is own
    with pytest.raises(MemoryError), reading(tmp_path, "x"):
        raise MemoryError


def test_downloading_names_url_and_what_to_do(tmp_path):
    import requests

    url = "http://127.0.0.1:9/data/x.tsv"
    with pytest.raises(DownloadError, match=r"cannot download the file 'x' of dataset 'd' from "
                                            r"http://127\.0\.0\.1:9/data/x\.tsv into .*: refused.*To fix: check the "
                                            r"network connection"):
        with downloading(url, "file 'x' of dataset 'd'", target=tmp_path):
            raise requests.exceptions.ConnectionError("refused")
    with pytest.raises(InputError, match=r"downloaded from http://127\.0\.0\.1:9/data/x\.tsv is not the registered "
                                         r"file: SHA256 hash of downloaded file"):
        with downloading(url, "file"):
            raise ValueError("SHA256 hash of downloaded file (x) does not match the known hash")
    with pytest.raises(NotADirectoryError, match=r"cannot write the file into .*: .*To fix: set "
                                                 r"sthisto\.settings\.datasetdir \(or STHISTO_DATA_DIR\)"):
        with downloading(url, "file", target=tmp_path / "f"):
            raise NotADirectoryError(20, "Not a directory")


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        (2.5, {"minimum": 1}, r"epochs must be an integer >= 1, got 2\.5\."),
        ("6", {}, r"epochs must be an integer, got '6'\."),
        (True, {}, r"epochs must be an integer, got True\."),
        (0, {"minimum": 1}, r"epochs must be an integer >= 1, got 0\."),
        (9, {"minimum": 0, "maximum": 3}, r"epochs must be an integer between 0 and 3, got 9\."),
        (float("nan"), {}, r"epochs must be an integer, got nan\."),
    ],
)
def test_integer_rejects(value, kwargs, message):
    with pytest.raises(InputError, match=f"^{message}$"):
        integer(value, "epochs", **kwargs)


def test_scalar_checks_accept_and_convert():
    assert integer(np.int64(3), "n") == 3 and integer(4.0, "n") == 4
    assert number(np.float32(0.5), "x", positive=True) == 0.5
    assert one_of("a", "mode", ("a", "b")) == "a"
    for bad in (float("inf"), float("nan"), "1.0", True, 0.0, -1):
        with pytest.raises(InputError, match=r"^radius must be a positive finite number, got .*\."):
            number(bad, "radius", positive=True)
    with pytest.raises(InputError, match=r"^mode must be one of \('a', 'b'\), got \['a'\]\. To fix: pick one\.$"):
        one_of(["a"], "mode", ("a", "b"), fix="pick one")


def test_existing_file(tmp_path):
    with pytest.raises(IsADirectoryError, match=r"^counts file .* is a folder; pass the file itself\.$"):
        existing_file(tmp_path, "counts file")
    with pytest.raises(FileNotFoundError, match=r"^counts file not found: .*nope$"):
        existing_file(tmp_path / "nope", "counts file")
    with pytest.raises(TypeError, match=r"^counts file must be a path \(str or os\.PathLike\), got int 3\.$"):
        existing_file(3, "counts file")


def test_existing_folder(tmp_path):
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(NotADirectoryError, match=r"^Visium folder .*f\.txt is a file; pass the folder\.$"):
        existing_folder(tmp_path / "f.txt", "Visium folder")
    with pytest.raises(FileNotFoundError, match=r"^Visium folder not found: .*nope$"):
        existing_folder(tmp_path / "nope", "Visium folder")
    with pytest.raises(TypeError, match=r"^Visium folder must be a path \(str or os\.PathLike\), got NoneType None\.$"):
        existing_folder(None, "Visium folder")
    assert existing_folder(str(tmp_path), "Visium folder") == tmp_path


@pytest.mark.parametrize(
    ("x", "kwargs", "message"),
    [
        (np.array([["1", "a"]], dtype=object), {}, r"X holds non-numeric values \(dtype object\)"),
        (np.array([[1.0, np.nan]]), {}, r"X contains 1 NaN or infinite value\(s\) at spot 's0', gene 'g1'"),
        (np.array([[1.0, -2.0]]), {}, r"X contains negative values \(e\.g\. -2 at spot 's0', gene 'g1'\)"),
        (np.array([[1.0, 0.69]]), {"integer": True},
         r"X: counts are not integers \(1 of 2 stored values, e\.g\. 0\.69 at spot 's0', gene 'g1', largest value "
         r"1\): they look normalised or log-transformed; pass raw UMI/read counts\."),
        (np.zeros((1, 2)), {"nonzero": True}, r"X holds no counts \(every value is 0\)\."),
    ],
)
def test_counts_matrix_messages(x, kwargs, message):
    with pytest.raises(InputError, match=f"^{message}"):
        counts_matrix(x, where="X", labels=(["s0"], ["g0", "g1"]), **kwargs)


def test_counts_matrix_checks_sparse_stored_values_only():
    x = sp.csr_matrix(([1.0, 2.5], ([0, 999_999], [3, 999_999])), shape=(1_000_000, 1_000_000))
    with pytest.raises(InputError, match=r"not integers .* at row 999999, column 999999"):
        counts_matrix(x, integer=True)


def test_raw_counts_points_to_layers_and_log1p():
    a = AnnData(np.log1p(np.array([[1.0, 2.0], [3.0, 0.0]])))
    a.layers["counts"] = np.array([[1.0, 2.0], [3.0, 0.0]])
    a.uns["log1p"] = {"base": None}
    with pytest.raises(InputError, match=r"^training section 0: adata\.X: counts are not integers .* To fix: pass "
                                         r"layer= naming the layer of raw counts \(adata\.layers has \['counts'\]\) "
                                         r"\(adata\.uns\['log1p'\] shows that scanpy\.pp\.log1p was applied to X\)"):
        raw_counts(a, where="training section 0")
    raw_counts(a, "counts")
    with pytest.raises(KeyError, match=r"adata\.layers\['raw'\] is missing \(available: \['counts'\]\)"):
        raw_counts(a, "raw")


def _adata():
    a = AnnData(np.ones((3, 2)))
    a.obs_names = ["a", "b", "c"]
    a.uns["old"] = {"v": 1}
    return a


def test_outputs_check_everything_before_writing():
    a = _adata()
    before = a.copy()
    out = Outputs()
    out.add("obsm", "ok", np.zeros((3, 4)))
    out.add("uns", "new", {"x": 1})
    out.add("obsm", "bad", np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"cannot write adata\.obsm\['bad'\]: expected 3 rows, got shape \(2, 4\)"):
        out.write(a)
    assert_unchanged(a, before)
    shifted = Outputs()
    shifted.add("obs", "col", pd.Series([1, 2, 3], index=["c", "b", "x"]))
    with pytest.raises(ValueError, match=r"index differs from adata\.obs_names"):
        shifted.write(a)
    assert_unchanged(a, before)
    with pytest.raises(ValueError, match="attr must be one of"):
        Outputs().add("obsx", "k", 1)


def test_outputs_restore_when_a_write_fails(monkeypatch):
    a = _adata()
    before = a.copy()
    out = Outputs()
    out.add("uns", "old", {"v": 2})
    out.add("obs", "col", np.arange(3))
    out.add("obsm", "emb", np.zeros((3, 2)))
    calls, save = [], _utils.save_data

    def flaky(adata, *, attr, key, data):
        calls.append(key)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        save(adata, attr=attr, key=key, data=data)

    monkeypatch.setattr(_utils, "save_data", flaky)
    with pytest.raises(RuntimeError, match="disk full"):
        out.write(a)
    assert calls == ["old", "col", "emb"]
    assert_unchanged(a, before)


def test_outputs_write_all():
    a = _adata()
    out = Outputs()
    out.add("obs", "col", np.arange(3))
    out.add("obs", "section", "C2")
    out.add("layers", "l", np.zeros((3, 2)))
    out.write(a)
    assert a.obs["col"].tolist() == [0, 1, 2] and (a.obs["section"] == "C2").all() and "l" in a.layers


def test_detach_copies_mutable_and_shares_read_only(tmp_path):
    hires = np.zeros((4, 4, 3), np.uint8)
    np.save(tmp_path / "full.npy", np.ones((8, 8, 3), np.uint8))
    full = np.load(tmp_path / "full.npy", mmap_mode="r")
    spatial = {"lib": {"images": {"hires": hires, "fullres": full}, "scalefactors": {"s": 1.0},
                       "metadata": {"list": [1, {"a": np.arange(2)}], "table": pd.DataFrame({"a": [1]})}}}
    copy = detach(spatial)
    assert copy == copy and copy is not spatial
    assert not np.shares_memory(copy["lib"]["images"]["hires"], hires)
    assert copy["lib"]["images"]["fullres"] is full  # read-only: shared, not duplicated
    copy["lib"]["scalefactors"]["s"] = 2.0
    copy["lib"]["metadata"]["list"][1]["a"][0] = 9
    copy["lib"]["metadata"]["table"].iloc[0, 0] = 9
    assert spatial["lib"]["scalefactors"]["s"] == 1.0
    assert spatial["lib"]["metadata"]["list"][1]["a"][0] == 0
    assert spatial["lib"]["metadata"]["table"].iloc[0, 0] == 1


def test_scalar_checks_of_wave_two():
    from sthisto._validate import affordable, flag, key_name, name_list

    assert key_name("sthisto_deep") == "sthisto_deep"
    for bad in ("", "  ", 5, None):
        with pytest.raises(InputError, match=r"^key_added must be a non-empty string \(an AnnData key\), got "):
            key_name(bad)
    assert flag(True, "symmetric") is True and flag(np.bool_(False), "symmetric") is False
    for bad in ("no", 1, None):
        with pytest.raises(InputError, match=r"^symmetric must be True or False, got "):
            flag(bad, "symmetric")
    assert name_list("IEA", "evidence_exclude") == ("IEA",)  # one name, not three letters
    assert name_list(["a", "b"], "genes") == ("a", "b")
    with pytest.raises(InputError, match=r"^genes must be a name or a list of names, got 5\.$"):
        name_list(5, "genes")
    with pytest.raises(InputError, match=r"^genes is empty: give at least one name\.$"):
        name_list([], "genes", allow_empty=False)
    affordable(1024, "a small array")
    with pytest.raises(InputError, match=r"^a huge array would need [\d.e+]+ GiB of memory, more than this machine "
                                         r"has \([\d.]+ GiB\)\. To fix: lower n\.$"):
        affordable(2.0**70, "a huge array", fix="lower n")


def test_unique_obs_names_and_outputs_keys(synthetic_adata):
    from sthisto._utils import Outputs
    from sthisto._validate import unique_obs_names

    unique_obs_names(synthetic_adata)
    synthetic_adata.obs_names = ["s"] * synthetic_adata.n_obs
    with pytest.raises(InputError, match=r"^adata\.obs_names are not unique \(e\.g\. \['s'\]\)"):
        unique_obs_names(synthetic_adata)
    with pytest.raises(InputError, match=r"^the key of adata\.obsm must be a non-empty string"):
        Outputs().add("obsm", 3, np.zeros((synthetic_adata.n_obs, 2)))


def test_reading_without_the_parsers_advice(tmp_path):
    path = tmp_path / "w.pt"

    def unsafe():
        raise pickle.UnpicklingError("Weights only load failed. Re-running with weights_only=False will succeed")

    with pytest.raises(FileFormatError) as info, reading(path, "weights file", detail=False):
        unsafe()
    assert str(info.value).startswith(f"cannot read the weights file {path}: the parser raised "
                                      "_pickle.UnpicklingError.")
    assert "weights_only=False" not in str(info.value) and isinstance(info.value.__cause__, pickle.UnpicklingError)


def test_read_region_names_the_image():
    from sthisto._image import read_region

    class Damaged:
        shape = (10, 10, 3)

        def __getitem__(self, index):
            raise RuntimeError("Zstd decompression error: invalid input data")

    with pytest.raises(FileFormatError, match=r"^cannot read the pixels of image 'he' of the SpatialData store "
                                              r"/x\.zarr: Zstd decompression error: invalid input data "
                                              r"\[RuntimeError\]\. To fix: the stored image is damaged"):
        read_region(Damaged(), np.s_[0:2, 0:2], source="image 'he' of the SpatialData store /x.zarr")
    assert read_region(np.ones((3, 3)), np.s_[:2, :2]).shape == (2, 2)
