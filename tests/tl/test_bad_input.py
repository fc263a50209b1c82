"""Bad arguments to select_genes / cross_validate / predict / evaluate: checked before any fit or write."""

import numpy as np
import pytest

import sthisto as st
from sthisto._errors import InputError
from tests._unchanged import assert_unchanged

from ._model_data import FAST, model_sections


@pytest.fixture(scope="module")
def model():
    return st.tl.fit(model_sections((0, 1), n_spots=40, n_genes=20), **{**FAST, "n_top_genes": 10})


@pytest.fixture
def predicted(model):
    (a,) = model_sections((2,), n_spots=40, n_genes=20)
    st.tl.predict(a, model)
    return a


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_top": 2.5}, r"n_top must be an integer >= 1, got 2\.5\.$"),
        ({"n_top": "5"}, r"n_top must be an integer >= 1, got '5'\.$"),
        ({"flavor": "hvgs"}, r"flavor must be one of \('hvg', 'heg'\), got 'hvgs'$"),
    ],
)
def test_select_genes_arguments(kwargs, message):
    with pytest.raises(ValueError, match=f"^{message}"):
        st.tl.select_genes(model_sections((0,)), **kwargs)


def test_select_genes_sections_and_counts():
    with pytest.raises(TypeError, match=r"^adatas must be a list of AnnData sections, got int\.$"):
        st.tl.select_genes(5)
    with pytest.raises(TypeError, match=r"^adatas\[1\] must be an AnnData section, got str\.$"):
        st.tl.select_genes([model_sections((0,))[0], "C2"])
    (a,) = model_sections((0,))
    a.X = a.X / 3.3
    with pytest.raises(InputError, match=r"^adatas\[0\]: adata\.X: counts are not integers"):
        st.tl.select_genes([a])


def _never_called(*args, **kwargs):
    raise AssertionError("cross_validate fitted before checking its arguments")


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        ({"n_top": 0}, InputError, r"n_top must be an integer >= 1, got 0\.$"),
        ({"n_candidates": -1}, InputError, r"n_candidates must be an integer >= 1, got -1\.$"),
        ({"return_per_gene": "yes"}, InputError, r"return_per_gene must be True or False, got 'yes'\.$"),
        ({"protocol": 5}, InputError, r"protocol must be a name or a list of names, got 5\.$"),
        ({"modalities": 5}, InputError, r"modalities must be a name or a list of names, got 5\.$"),
        ({"modalities": ["nope"]}, KeyError, r"section 'section0': adata\.obsm\['nope'\] is missing: a modality is "
                                             r"one of \['deep', 'morphology', 'topology', 'texture'\] or an obsm key"),
        ({"layer": "counts"}, KeyError, r"adata\.layers\['counts'\] is missing"),
    ],
)
def test_cross_validate_checks_everything_before_the_first_fit(kwargs, exc, message):
    with pytest.raises(exc, match=message):
        st.tl.cross_validate(model_sections((0, 1)), method=_never_called, **kwargs)


def test_cross_validate_checks_every_section_before_the_first_fit():
    a, b, c = model_sections((0, 1, 2))
    c.X = c.X / 3.3  # the last section, reached only after two folds otherwise
    with pytest.raises(InputError, match=r"^section 'section2': adata\.X: counts are not integers"):
        st.tl.cross_validate([a, b, c], method=_never_called)
    del c.obsm["sthisto_deep"]
    c.X = model_sections((2,))[0].X
    with pytest.raises(KeyError, match=r"section 'section2': adata\.obsm\['sthisto_deep'\] \(deep features\) is "
                                       r"missing: run `sthisto\.pp\.image_features` first"):
        st.tl.cross_validate([a, b, c], method=_never_called)
    with pytest.raises(TypeError, match=r"^method must be a method name, a callable or a list of them, got int\.$"):
        st.tl.cross_validate([a, b], method=5)


def test_predict_and_evaluate_check_their_keys_and_write_all_or_nothing(model, predicted):
    before = predicted.copy()
    with pytest.raises(InputError, match=r"^key_added must be a non-empty string \(an AnnData key\), got 5\.$"):
        st.tl.predict(predicted, model, key_added=5)
    with pytest.raises(InputError, match=r"^key_added must be a non-empty string \(an AnnData key\), got ''\.$"):
        st.tl.evaluate(predicted, key_added="")
    with pytest.raises(InputError, match=r"^genes must hold names \(strings\), got 1 in \[1, 2\]\.$"):
        st.tl.evaluate(predicted, genes=[1, 2])
    assert_unchanged(predicted, before)
    st.tl.evaluate(predicted, genes=model.genes[0])  # one name is one gene
    assert np.isfinite(predicted.var["sthisto_pcc"]).sum() == 1


def test_gene_correlation_recovery_requires_raw_counts(predicted):
    predicted.X = predicted.X / 3.3
    with pytest.raises(InputError, match=r"^adata: adata\.X: counts are not integers"):
        st.tl.gene_correlation_recovery(predicted)
    with pytest.raises(TypeError, match=r"^adata must be an AnnData object, got NoneType\.$"):
        st.tl.gene_correlation_recovery(None)


def test_fit_baseline_arguments_and_a_single_gene():
    from sthisto.tl._baselines import fit_baseline

    sections = model_sections((0, 1))
    gene = sections[0].var_names[0]
    for kwargs, message in [({"alphas": []}, r"alphas must be a number or a non-empty list of numbers, got \[\]\."),
                            ({"alphas": [1.0, -1.0]}, r"alphas\[1\] must be a positive finite number, got -1\.0\."),
                            ({"neighbors": [0]}, r"neighbors\[0\] must be an integer >= 1, got 0\."),
                            ({"method": "lasso"}, r"method must be one of \('ridge', 'ridge_context', 'knn', "
                                                  r"'hest_probe', 'mean'\), got 'lasso'\.")]:
        with pytest.raises(InputError, match=f"^{message}$"):
            fit_baseline(sections, genes=[gene], **kwargs)
    model = fit_baseline(sections, genes=gene)  # one gene, alpha chosen by inner validation over the grid
    assert model.genes == [gene] and model.predict(sections[0]).shape == (sections[0].n_obs, 1)
