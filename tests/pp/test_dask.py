"""Preprocessing on a dask.distributed cluster: tiles and sections on 2 worker processes, equal to the local run."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import sthisto as st
from sthisto._region import Region
from sthisto.pp._parallel import DaskRunner, Pixels, Runner, TileRead, tile_input
from tests._unchanged import assert_unchanged

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture(scope="module")
def sections(tmp_path_factory):
    """Three small sections whose full-resolution images are .npy files referenced lazily (as the readers do)."""
    from sthisto._image import file_fingerprint

    root = tmp_path_factory.mktemp("dask_sections")
    out = []
    for seed in range(3):
        a = st.datasets.synthetic(n_spots=30, n_genes=12, seed=seed)
        entry = a.uns["spatial"][next(iter(a.uns["spatial"]))]
        path = root / f"s{seed}.npy"
        np.save(path, np.asarray(entry["images"].pop("fullres")))
        entry.setdefault("metadata", {})["fullres_path"] = str(path)
        entry["metadata"]["fullres_fingerprint"] = {**file_fingerprint(path), "shape": list(np.load(path).shape)}
        out.append(a)
    return out


def _fullres(a):
    from sthisto._image import fullres_image

    return fullres_image(a)


def _tables_equal(a, b, key="sthisto_nuclei"):
    pd.testing.assert_frame_equal(a.uns[key]["nuclei"], b.uns[key]["nuclei"])
    assert {**a.uns[key]["params"], "labels_path": ""} == {**b.uns[key]["params"], "labels_path": ""}


def test_workers_read_their_own_tile(sections, client):
    img = _fullres(sections[0])
    assert isinstance(img, np.memmap)
    run = DaskRunner(client)
    mapped = tile_input(Region(img), (0, 0, 64, 64), run)
    assert isinstance(mapped, TileRead)  # the file travels, not the pixels
    in_memory = tile_input(Region(np.asarray(img).copy()), (0, 0, 64, 64), run)
    assert isinstance(in_memory, Pixels) and in_memory.pixels.shape == (64, 64, 3)  # only the tile is sent
    assert isinstance(tile_input(Region(np.asarray(img)), (0, 0, 64, 64), Runner()), TileRead)
    remote = client.submit(lambda t: (t.read(), type(t.region.image).__name__), mapped).result()
    np.testing.assert_array_equal(remote[0], np.asarray(img[:64, :64]))
    assert remote[1] == "memmap"


def test_segment_and_nuclei_features_equal_the_local_run(sections, client):
    local, remote = sections[0].copy(), sections[0].copy()
    st.pp.segment_nuclei(local, tile_size=256)
    st.pp.segment_nuclei(remote, tile_size=256, client=client)
    _tables_equal(local, remote)
    assert local.uns["sthisto_nuclei"]["params"]["n_tiles"] > 2 and len(local.uns["sthisto_nuclei"]["nuclei"]) > 50
    st.pp.nuclei_features(local)
    st.pp.nuclei_features(remote, client="auto")  # the client in force
    for key in ("sthisto_morphology", "sthisto_topology"):
        pd.testing.assert_frame_equal(local.obsm[key], remote.obsm[key])


def test_segment_in_memory_image_and_labels_equal_the_local_run(synthetic_adata, client, tmp_path):
    remote = synthetic_adata.copy()
    st.pp.segment_nuclei(synthetic_adata, tile_size=256, region="all", labels_path=tmp_path / "local.npy")
    st.pp.segment_nuclei(remote, tile_size=256, region="all", client=client, labels_path=tmp_path / "remote.npy")
    _tables_equal(synthetic_adata, remote)
    np.testing.assert_array_equal(np.load(tmp_path / "local.npy"), np.load(tmp_path / "remote.npy"))


def test_texture_features_equal_the_local_run(sections, client):
    local, remote = sections[1].copy(), sections[1].copy()
    st.pp.image_features(local, model="texture", patch_px=32)
    st.pp.image_features(remote, model="texture", patch_px=32, client=client)
    pd.testing.assert_frame_equal(local.obsm["sthisto_texture"], remote.obsm["sthisto_texture"])
    assert local.uns["sthisto_texture"]["params"] == remote.uns["sthisto_texture"]["params"]
    assert local.obsm["sthisto_texture"].to_numpy().std(axis=0).max() > 0


def test_run_cohort_writes_every_section_as_the_local_steps_do(sections, client, tmp_path):
    paths = []
    for i, a in enumerate(sections):
        paths.append(tmp_path / f"sec{i}.h5ad")
        a.write_h5ad(paths[-1])
    steps = [("segment_nuclei", {"tile_size": 256}), "nuclei_features", ("image_features", {"model": "texture",
                                                                                             "patch_px": 16})]
    written = st.pp.run_cohort(paths, steps, client=client, out=tmp_path / "out")
    assert written == [tmp_path / "out" / f"sec{i}.h5ad" for i in range(3)]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["sec0.h5ad", "sec1.h5ad", "sec2.h5ad"]
    import anndata as ad

    for path, written_path in zip(paths, written, strict=True):
        ref = ad.read_h5ad(path)
        st.pp.segment_nuclei(ref, tile_size=256)
        st.pp.nuclei_features(ref)
        st.pp.image_features(ref, model="texture", patch_px=16)
        got = ad.read_h5ad(written_path)
        _tables_equal(ref, got)
        for key in ("sthisto_morphology", "sthisto_topology", "sthisto_texture"):
            pd.testing.assert_frame_equal(ref.obsm[key], got.obsm[key])



def test_run_cohort_in_memory_sections_with_mapped_images(sections, client, tmp_path):
    """AnnData inputs: new sections come back (a memory-mapped image travels as its file), inputs unchanged."""
    mapped = []
    for a in sections[:2]:
        a = a.copy()
        entry = a.uns["spatial"][next(iter(a.uns["spatial"]))]
        entry["images"]["fullres"] = _fullres(a)
        del entry["metadata"]["fullres_path"]
        mapped.append(a)
    before = [a.copy() for a in mapped]
    steps = [("segment_nuclei", {"tile_size": 256})]
    back = st.pp.run_cohort({"a": mapped[0], "b": mapped[1]}, steps, client=client)
    ref = st.pp.segment_nuclei(mapped[0], tile_size=256, copy=True)
    _tables_equal(ref, back[0])
    assert type(back[1].uns["spatial"][next(iter(back[1].uns["spatial"]))]["images"]["fullres"]) is np.memmap
    for a, b in zip(mapped, before, strict=True):
        assert_unchanged(b, a)
    # written: the mapped image is stored as a reference to its file, not as pixels
    import anndata as ad

    [path] = st.pp.run_cohort({"a": mapped[0]}, steps, client=client, out=tmp_path)
    got = ad.read_h5ad(path)
    entry = got.uns["spatial"][next(iter(got.uns["spatial"]))]
    assert "fullres" not in entry["images"] and entry["metadata"]["fullres_path"].endswith("s0.npy")
    _tables_equal(ref, got)


class _FailsOnWideTiles:
    """A segmenter that raises on tiles wider than 300 px (the interior ones)."""

    name = "fails_on_wide_tiles"

    def prepare(self, image, *, microns_per_pixel, bbox):
        return self

    def source(self, image):
        return image

    def record(self):
        return {}

    def __call__(self, tile):
        if tile.shape[1] > 300:
            raise ValueError(f"cannot segment a tile {tile.shape[1]} px wide")
        return np.zeros(tile.shape[:2], dtype=np.int32)


def test_a_failing_tile_is_named_and_nothing_is_written(synthetic_adata, client):
    before = synthetic_adata.copy()
    with pytest.raises(ValueError, match=r"cannot segment a tile \d+ px wide \(in tile 1 of \d+ at rows 0:\d+, "
                                         r"columns 0:\d+\)") as info:
        st.pp.segment_nuclei(synthetic_adata, tile_size=256, region="all", method=_FailsOnWideTiles(),
                             client=client)
    assert isinstance(info.value.__cause__, ValueError)  # the worker's error, chained
    assert_unchanged(before, synthetic_adata)


def test_a_failing_section_is_named_and_not_written(sections, client, tmp_path):
    good, bad = tmp_path / "good.h5ad", tmp_path / "bad.h5ad"
    sections[0].copy().write_h5ad(good)
    broken = sections[1].copy()
    broken.uns["spatial"][next(iter(broken.uns["spatial"]))]["scalefactors"].pop("spot_diameter_fullres")
    broken.write_h5ad(bad)
    with pytest.raises(KeyError, match=r"spot_diameter_fullres.*in step 1 of 1, segment_nuclei.*in section 'bad' "
                                       r"\(file .*bad\.h5ad\)"):
        st.pp.run_cohort([good, bad], ["segment_nuclei"], client=client, out=tmp_path / "out")
    left = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert left in ([], ["good.h5ad"])  # a finished section is complete; no partial file is left


def test_bad_client_and_steps_are_named(synthetic_adata, tmp_path):
    before = synthetic_adata.copy()
    for bad in (5, "tcp://scheduler:8786", object()):
        with pytest.raises(TypeError, match="client must be a dask.distributed.Client"):
            st.pp.segment_nuclei(synthetic_adata, client=bad)
    with pytest.raises(TypeError, match="client must be"):
        st.pp.image_features(synthetic_adata, model="texture", client=5)
    with pytest.raises(TypeError, match="client must be"):
        st.pp.run_cohort([synthetic_adata], ["segment_nuclei"], client=3)
    assert_unchanged(before, synthetic_adata)
    with pytest.raises(ValueError, match=r"steps\[0\] = 'segment_nucleus' is not a sthisto.pp step"):
        st.pp.run_cohort([synthetic_adata], ["segment_nucleus"])
    with pytest.raises(TypeError, match=r"steps\[1\] \(nuclei_features\) got unknown keyword\(s\) \['tile_size'\]"):
        st.pp.run_cohort([synthetic_adata], ["segment_nuclei", ("nuclei_features", {"tile_size": 3})])
    with pytest.raises(ValueError, match=r"steps\[0\] \(segment_nuclei\) sets \['copy'\]"):
        st.pp.run_cohort([synthetic_adata], [("segment_nuclei", {"copy": True})])
    with pytest.raises(FileNotFoundError, match="missing.h5ad"):
        st.pp.run_cohort(["missing.h5ad"], ["segment_nuclei"])
    with pytest.raises(ValueError, match=r"sections \['synthetic'\] share a name"):
        st.pp.run_cohort([synthetic_adata, synthetic_adata], ["segment_nuclei"], out=tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert_unchanged(before, synthetic_adata)


def test_local_run_cohort_leaves_inputs_unchanged(synthetic_adata):
    before = synthetic_adata.copy()
    steps = [("segment_nuclei", {"tile_size": 256}), lambda a: a[:10].copy()]  # a step may return a new AnnData
    [out] = st.pp.run_cohort([synthetic_adata], steps)
    assert len(out.uns["sthisto_nuclei"]["nuclei"]) > 0 and out.n_obs == 10
    assert_unchanged(before, synthetic_adata)


def test_import_does_not_import_distributed():
    code = "import sys, sthisto as st; st.pp.segment_nuclei; print('distributed' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_region_travels_as_its_file_or_a_small_graph(tmp_path):
    import pickle

    import dask.array as da
    import zarr

    pixels = np.random.default_rng(0).integers(0, 255, (300, 200, 3), dtype=np.uint8)
    np.save(tmp_path / "a.npy", pixels)
    mapped = np.load(tmp_path / "a.npy", mmap_mode="r")
    for view, offset in ((mapped, (0, 0)), (mapped[40:], (40, 0))):  # a row slice is still one file range
        region = Region(view)
        assert region.portable and len(pickle.dumps(region)) < 1000
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(region))((5, 7, 60, 90)),
                                      pixels[5 + offset[0]:60 + offset[0], 7:90])
    assert not Region(mapped[:, 10:]).portable  # not contiguous: the caller reads its tiles
    assert not Region(pixels).portable
    with pytest.raises(TypeError, match="in-memory array"):
        pickle.dumps(Region(pixels))
    store = zarr.open(str(tmp_path / "a.zarr"), mode="w", shape=pixels.shape, chunks=(64, 64, 3), dtype="u1")
    store[:] = pixels
    lazy = Region(da.from_zarr(str(tmp_path / "a.zarr")))
    assert lazy.portable
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(lazy))((0, 0, 100, 100)), pixels[:100, :100])
    held = np.zeros((1500, 1500, 3), dtype=np.uint8)  # a graph over an in-memory array carries its pixels
    assert not Region(da.from_array(held, chunks=512)).portable
