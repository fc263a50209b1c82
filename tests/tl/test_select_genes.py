import numpy as np
import pytest

import sthisto as st
from sthisto._expression import log_normalized
from sthisto.tl._select_genes import gene_scores


def test_hvg_and_heg_match_pooled_statistics(synthetic_sections):
    train = synthetic_sections[:2]
    pooled = np.concatenate([log_normalized(a) for a in train])
    genes = np.asarray(train[0].var_names)
    hvg = st.tl.select_genes(train, flavor="hvg", n_top=7)
    heg = st.tl.select_genes(train, flavor="heg", n_top=7)
    assert hvg == genes[np.argsort(-pooled.var(axis=0, ddof=1), kind="stable")[:7]].tolist()
    assert heg == genes[np.argsort(-pooled.mean(axis=0), kind="stable")[:7]].tolist()
    assert hvg != heg


def test_choice_depends_on_training_sections_only(synthetic_sections):
    train, test = synthetic_sections[:2], synthetic_sections[2]
    before = st.tl.select_genes(train, flavor="hvg", n_top=10)
    # blow up the test section's counts of other genes: the training-only choice must not move
    test.X = test.X.multiply(np.arange(1, test.n_vars + 1)[None, :]).tocsr()
    assert st.tl.select_genes(train, flavor="hvg", n_top=10) == before
    with_test = st.tl.select_genes([*train, test], flavor="hvg", n_top=10)
    assert with_test != before  # the test data would have changed it


def test_only_genes_present_in_all_sections(synthetic_sections):
    a, b = synthetic_sections[:2]
    b = b[:, b.var_names[5:]].copy()
    scores = gene_scores([a, b], flavor="heg")
    assert list(scores.index) == list(a.var_names[5:])
    chosen = st.tl.select_genes([a, b], flavor="heg", n_top=100)
    assert len(chosen) == a.n_vars - 5 and set(chosen) <= set(b.var_names)


def test_bad_input(synthetic_sections):
    with pytest.raises(ValueError, match="flavor"):
        st.tl.select_genes(synthetic_sections, flavor="seurat")
    with pytest.raises(ValueError, match="n_top"):
        st.tl.select_genes(synthetic_sections, n_top=0)
    with pytest.raises(ValueError, match="at least one section"):
        st.tl.select_genes([])
