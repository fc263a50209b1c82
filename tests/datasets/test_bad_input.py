"""Downloads that fail, mirrors that are not URLs, and bad dataset arguments."""

import re

import pytest

import sthisto as st
from sthisto._errors import DownloadError, InputError

from .http_server import serve


def test_unreachable_server_names_the_url(mirror):
    with pytest.raises(DownloadError, match=r"^cannot download the file 'S1/selection\.tsv' of dataset 'her2st' from "
                                            r"http://127\.0\.0\.1:9/data/S1_selection\.tsv into .*her2st: .*Connection "
                                            r"refused.*To fix: check the network connection, or set base_url= / "
                                            r"STHISTO_DATA_URL to a reachable mirror"):
        st.datasets.fetch("her2st", "S1/selection.tsv", base_url="http://127.0.0.1:9")


def test_missing_file_on_the_mirror(mirror, tmp_path):
    (mirror / "data" / "S1_counts.tsv.gz").unlink()
    with serve(mirror) as url, pytest.raises(DownloadError, match=rf"^cannot download the file 'S1/counts\.tsv\.gz' of "
                                                                  rf"dataset 'her2st' from {re.escape(url)}/data/"
                                                                  r"S1_counts\.tsv\.gz .*404 Client Error"):
        st.datasets.her2st("S1", base_url=url)


def test_tampered_file_names_url(mirror):
    (mirror / "data" / "S1_selection.tsv").write_text("tampered")
    with serve(mirror) as url, pytest.raises(InputError, match=r"the file 'S1/selection\.tsv' of dataset 'her2st' "
                                                               rf"downloaded from {re.escape(url)}/data/S1_selection"
                                                               r"\.tsv is not the registered file: SHA256 hash"):
        st.datasets.fetch("her2st", "S1/selection.tsv", base_url=url)


@pytest.mark.parametrize("url", ["mirror.example.org", "C:\\data", "http//x", ""])
def test_mirror_that_is_not_a_url(mirror, monkeypatch, url):
    with pytest.raises(InputError, match=rf"^base_url = {re.escape(repr(url))} is not an http\(s\) or ftp URL\. To fix: "
                                         r"give the base URL of a mirror with the same layout"):
        st.datasets.fetch("her2st", "S1/selection.tsv", base_url=url)
    if url:
        monkeypatch.setenv("STHISTO_DATA_URL", url)
        with pytest.raises(InputError, match=r"^the environment variable STHISTO_DATA_URL = .* is not an http\(s\)"):
            st.datasets.gene_ontology("2019-01-29")


def test_cache_folder_that_cannot_be_written(mirror, monkeypatch, tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    monkeypatch.setattr(st.settings, "_datasetdir", blocker)
    with serve(mirror) as url, pytest.raises(NotADirectoryError, match=r"cannot write the file 'S1/selection\.tsv' of "
                                                                       r"dataset 'her2st' into .*not_a_folder/her2st: "
                                                                       r".*To fix: set sthisto\.settings\.datasetdir"):
        st.datasets.fetch("her2st", "S1/selection.tsv", base_url=url)


def test_demo_section_as_one_name():
    with pytest.raises(ValueError, match=r"unknown demo sections \['C9'\]"):
        st.datasets.her2st_demo("C9")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_spots": 0}, r"n_spots must be an integer >= 1, got 0\."),
        ({"n_genes": 2.5}, r"n_genes must be an integer >= 1, got 2\.5\."),
        ({"microns_per_pixel": 0}, r"microns_per_pixel must be a positive finite number, got 0\."),
        ({"grid": "hex"}, r"grid must be one of \('hexagonal', 'square'\), got 'hex'\."),
        ({"seed": -1}, r"seed must be an integer >= 0, got -1\."),
    ],
)
def test_bad_synthetic_arguments(kwargs, message):
    with pytest.raises(InputError, match=f"^{message}$"):
        st.datasets.synthetic(**kwargs)
