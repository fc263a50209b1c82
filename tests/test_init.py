import subprocess
import sys

HEAVY = ("torch", "torch_geometric", "squidpy", "spatialdata", "matplotlib")


def _imported_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"import sys; {code}; print(','.join(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip().split(",")
    return {m.split(".")[0] for m in out}


def test_import_sthisto_is_light():
    loaded = _imported_after("import sthisto")
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_namespaces_do_not_import_torch_or_matplotlib():
    loaded = _imported_after("import sthisto as st; st.pp, st.tl, st.pl, st.read, st.io, st.datasets")
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_version_and_namespaces():
    import sthisto as st

    assert st.__version__.count(".") >= 2
    for name in ("pp", "tl", "pl", "read", "datasets"):
        assert hasattr(st, name)
