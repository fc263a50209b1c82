import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

import sthisto as st
from sthisto.pp._patches import extract_patch


def _marker_section(mpp: float, *, spot_um: float = 55.0, seed: int = 0, n: int = 3) -> AnnData:
    """White image with dark Gaussian markers: one at each spot centre (sub-pixel), and two
    at ±spot/4 to the left and right of it."""
    rng = np.random.default_rng(seed)
    pitch = 100.0 / mpp
    size = spot_um / mpp
    gx, gy = np.meshgrid(np.arange(n), np.arange(n))
    xy = np.column_stack([gx.ravel(), gy.ravel()]) * pitch + pitch / 2
    xy += rng.uniform(-0.5, 0.5, xy.shape)  # sub-pixel centres
    h = w = int(n * pitch)
    img = np.full((h, w), 255.0)
    sigma = 1.5 / mpp  # 1.5 µm markers
    for x, y in xy:
        for dx in (-size / 4, 0.0, size / 4):
            r = int(5 * sigma) + 1
            x0, y0 = int(x + dx) - r, int(y) - r
            yy, xx = np.mgrid[y0 : y0 + 2 * r + 1, x0 : x0 + 2 * r + 1]
            g = np.exp(-((xx - x - dx) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
            img[yy, xx] -= 200 * g
    rgb = np.repeat(np.clip(img, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    adata = AnnData(np.zeros((len(xy), 1), dtype=np.float32), obs=pd.DataFrame(index=[f"s{i}" for i in range(len(xy))]))
    adata.obsm["spatial"] = xy
    adata.uns["spatial"] = {
        "lib": {
            "images": {"fullres": rgb},
            "scalefactors": {"spot_diameter_fullres": size, "microns_per_pixel": mpp, "tissue_hires_scalef": 1.0},
        }
    }
    return adata


def _centroid_x_y(patch: np.ndarray, x_lo: float, x_hi: float) -> tuple[float, float]:
    dark = 255.0 - patch[..., 0].astype(float)
    dark[dark < 20] = 0
    yy, xx = np.mgrid[: patch.shape[0], : patch.shape[1]]
    m = dark * ((xx >= x_lo) & (xx < x_hi))
    return (m * xx).sum() / m.sum(), (m * yy).sum() / m.sum()


@pytest.mark.parametrize("mpp", [0.25, 0.5, 0.73])
def test_patches_are_centred_and_physically_sized(mpp):
    adata = _marker_section(mpp)
    p = 96
    seen = []
    for batch in st.pp.patches(adata, patch_px=p, batch_size=4):
        assert batch.images.shape[1:] == (p, p, 3) and batch.images.dtype == np.uint8
        assert not batch.border.any()
        for patch in batch.images:
            c = (p - 1) / 2
            cx, cy = _centroid_x_y(patch, c - p / 8, c + p / 8)
            assert abs(cx - c) < 1 and abs(cy - c) < 1
            # side markers are spot/4 away: a quarter of the patch when patch = spot diameter
            lx, _ = _centroid_x_y(patch, 0, c - p / 8)
            rx, _ = _centroid_x_y(patch, c + p / 8, p)
            assert abs(lx - (c - p / 4)) < 1 and abs(rx - (c + p / 4)) < 1
        seen.extend(batch.index.tolist())
    assert sorted(seen) == list(range(adata.n_obs))


@pytest.mark.parametrize("mpp", [0.25, 0.73])
def test_patch_um_sets_the_physical_size(mpp):
    adata = _marker_section(mpp)
    p = 64
    c = (p - 1) / 2
    # a 110 µm patch: the ±13.75 µm markers sit an eighth of the patch from the centre
    patch = next(iter(st.pp.patches(adata, patch_um=110.0, patch_px=p))).images[0]
    rx, _ = _centroid_x_y(patch, c + p / 16, c + 3 * p / 16)
    assert abs(rx - (c + p / 8)) < 1


def test_native_resolution_patches_are_centred_within_half_a_pixel():
    adata = _marker_section(0.5)
    size = adata.uns["spatial"]["lib"]["scalefactors"]["spot_diameter_fullres"]
    for batch in st.pp.patches(adata, patch_px=None):
        n = batch.images.shape[1]
        assert n == round(size)
        for i, patch in zip(batch.index, batch.images, strict=True):
            x, y = adata.obsm["spatial"][i]
            cx, cy = _centroid_x_y(patch, n / 2 - n / 8, n / 2 + n / 8)
            # window origin is integer: the marker sits at its sub-pixel offset from the middle
            off_x = x - np.floor(x - (n - 1) / 2 + 0.5)
            off_y = y - np.floor(y - (n - 1) / 2 + 0.5)
            assert abs(cx - off_x) < 0.25 and abs(cy - off_y) < 0.25
            assert abs(cx - (n - 1) / 2) <= 0.5 + 0.25


def test_hires_only_section_uses_scaled_geometry():
    from sthisto._image import downsample

    adata = _marker_section(0.5)
    entry = adata.uns["spatial"]["lib"]
    hires, scalef = downsample(entry["images"].pop("fullres"), max_dim=300)
    entry["images"]["hires"] = hires
    entry["scalefactors"]["tissue_hires_scalef"] = scalef
    p = 32
    c = (p - 1) / 2
    for batch in st.pp.patches(adata, patch_px=p):
        for patch in batch.images:
            cx, cy = _centroid_x_y(patch, c - p / 8, c + p / 8)
            assert abs(cx - c) < 1 and abs(cy - c) < 1


def test_lazy_images_give_identical_patches_and_are_read_by_tiles(tmp_path):
    da = pytest.importorskip("dask.array")
    adata = _marker_section(0.5, n=4)
    img = adata.uns["spatial"]["lib"]["images"]["fullres"]
    ref = {int(i): p for b in st.pp.patches(adata, patch_px=48) for i, p in zip(b.index, b.images, strict=True)}

    np.save(tmp_path / "img.npy", img)
    reads = []

    class Spy:  # records every region read from the image
        def __init__(self, arr):
            self.arr, self.shape, self.dtype = arr, arr.shape, arr.dtype

        def __getitem__(self, key):
            out = self.arr[key]
            reads.append(out.shape[0] * out.shape[1])
            return out

    for lazy in (np.load(tmp_path / "img.npy", mmap_mode="r"), da.from_array(img, chunks=256), Spy(img)):
        adata.uns["spatial"]["lib"]["images"]["fullres"] = lazy
        got = {int(i): p for b in st.pp.patches(adata, patch_px=48, tile_px=256) for i, p in zip(b.index, b.images, strict=True)}
        assert got.keys() == ref.keys()
        for i in ref:
            np.testing.assert_array_equal(got[i], ref[i])
    assert reads and max(reads) < img.shape[0] * img.shape[1] / 2


def test_border_spots_are_padded_and_flagged():
    adata = _marker_section(0.5)
    adata.obsm["spatial"][0] = [3.2, 5.7]  # near the corner: most of the patch is outside
    flags = {}
    for batch in st.pp.patches(adata, patch_px=40):
        flags.update(zip(batch.index.tolist(), batch.border.tolist(), strict=True))
        assert np.isfinite(batch.images).all()
    assert flags[0] and not any(v for k, v in flags.items() if k != 0)
    native = {int(i): (p, b) for bt in st.pp.patches(adata, patch_px=None) for i, p, b in zip(bt.index, bt.images, bt.border, strict=True)}
    patch, border = native[0]
    assert border and patch.shape[:2] == (110, 110)


def test_reflect_padding_mirrors_the_image():
    img = np.arange(20 * 20 * 3, dtype=np.uint8).reshape(20, 20, 3)
    patch, border = extract_patch(img, 0.0, 10.0, 5, None)
    assert border
    np.testing.assert_array_equal(patch[:, 0], img[8:13, 2])  # reflect: column -2 -> 2
    np.testing.assert_array_equal(patch[:, 2], img[8:13, 0])


def test_bad_input_is_reported():
    adata = _marker_section(0.5)
    adata.obsm["spatial"][1] = [1e6, 10.0]
    with pytest.raises(ValueError, match="outside"):
        next(iter(st.pp.patches(adata)))
    adata = _marker_section(0.5)
    img = adata.uns["spatial"]["lib"]["images"]["fullres"]
    adata.uns["spatial"]["lib"]["images"]["fullres"] = np.concatenate([img, img[..., :1]], axis=2)
    with pytest.raises(ValueError, match="alpha"):
        st.pp.patches(adata)
    adata.uns["spatial"]["lib"]["images"]["fullres"] = img.astype(np.float32)
    with pytest.raises(ValueError, match="uint8"):
        st.pp.patches(adata)
    adata.uns["spatial"]["lib"]["images"]["fullres"] = img
    with pytest.raises(ValueError, match="patch_um"):
        st.pp.patches(adata, patch_um=-1)


def test_synthetic_section_patches(synthetic_adata):
    batches = list(st.pp.patches(synthetic_adata, patch_px=32, batch_size=30))
    assert [len(b.index) for b in batches] == [30, 30, 30, 10]
    assert sorted(np.concatenate([b.index for b in batches])) == list(range(synthetic_adata.n_obs))
