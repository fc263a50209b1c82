import numpy as np

import sthisto as st


def test_deterministic_per_seed():
    a, b = st.datasets.synthetic(n_spots=30, n_genes=10, seed=3), st.datasets.synthetic(n_spots=30, n_genes=10, seed=3)
    np.testing.assert_array_equal(a.X.toarray(), b.X.toarray())
    np.testing.assert_array_equal(a.uns["spatial"]["synthetic"]["images"]["fullres"],
                                  b.uns["spatial"]["synthetic"]["images"]["fullres"])
    c = st.datasets.synthetic(n_spots=30, n_genes=10, seed=4)
    assert not np.array_equal(a.X.toarray(), c.X.toarray())


def test_structure(synthetic_adata):
    a = synthetic_adata
    assert a.shape == (100, 50)
    img = a.uns["spatial"]["synthetic"]["images"]["fullres"]
    assert img.dtype == np.uint8 and img.ndim == 3
    nuclei = a.uns["sthisto_synthetic"]["nuclei"]
    assert len(nuclei) > 500
    assert (nuclei["x"] < img.shape[1]).all() and (nuclei["y"] < img.shape[0]).all()
    # nuclei are dark (hematoxylin) at their centres
    centre = img[nuclei["y"].astype(int), nuclei["x"].astype(int)].mean()
    assert centre < img.mean() - 40
    assert "[Term]" in a.uns["sthisto_synthetic"]["go_obo"]
    assert a.uns["sthisto_synthetic"]["go_gaf"].count("\n") > 50


def test_expression_follows_nuclei(synthetic_adata):
    a = synthetic_adata
    z = a.uns["sthisto_synthetic"]["latents"]["density"].to_numpy()
    logx = np.log1p(a.X.toarray())
    density_genes = np.flatnonzero(a.var["program"].to_numpy() == 0)
    r = [abs(np.corrcoef(z, logx[:, g])[0, 1]) for g in density_genes]
    assert np.median(r) > 0.5
    noise_genes = np.flatnonzero(a.var["program"].to_numpy() == -1)
    r_noise = [abs(np.corrcoef(z, logx[:, g])[0, 1]) for g in noise_genes]
    assert np.median(r_noise) < 0.3
