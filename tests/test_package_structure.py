"""Every public pp/tl function follows the scanpy-style signature conventions."""

import inspect

import pytest

import sthisto as st

# functions that take something other than one AnnData first, by design
NOT_ADATA_FIRST = {
    "tl.fit", "tl.cross_validate", "tl.select_genes",  # take a list of sections
    "pp.hop_rings", "pp.knn_graph",  # pure array helpers
}


def _public_functions():
    for ns_name in ("pp", "tl"):
        ns = getattr(st, ns_name)
        for name in ns.__all__:
            obj = getattr(ns, name)
            if inspect.isfunction(obj):
                yield f"{ns_name}.{name}", obj


FUNCTIONS = dict(_public_functions())


def test_namespaces_export_what_they_list():
    for ns_name in ("pp", "tl", "pl", "read", "io", "datasets"):
        ns = getattr(st, ns_name)
        for name in ns.__all__:
            assert hasattr(ns, name), f"{ns_name}.__all__ lists missing {name}"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_signature(name):
    func = FUNCTIONS[name]
    params = list(inspect.signature(func).parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    assert len(positional) <= 3, f"{name}: at most 3 positional parameters"
    if name not in NOT_ADATA_FIRST:
        assert params[0].name in ("adata", "adatas"), f"{name}: first parameter must be adata"
    for p in params:
        if isinstance(p.default, bool):
            assert p.kind == p.KEYWORD_ONLY, f"{name}: boolean {p.name} must be keyword-only"
    if "copy" in (p.name for p in params):
        copy = inspect.signature(func).parameters["copy"]
        assert copy.kind == copy.KEYWORD_ONLY and copy.default is False
    assert func.__doc__ and "Returns" in func.__doc__, f"{name}: numpydoc with a Returns section"


def test_writers_take_copy():
    writers = [n for n, f in FUNCTIONS.items() if "key_added" in inspect.signature(f).parameters]
    assert writers, "expected pp/tl functions that write keys"
    for name in writers:
        assert "copy" in inspect.signature(FUNCTIONS[name]).parameters, f"{name}: needs copy="
