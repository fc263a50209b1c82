"""Gene vector files that are damaged or odd, and bad Gene2Vec training arguments."""

import gzip
import logging
import re

import numpy as np
import pytest

import sthisto as st
from sthisto._errors import FileFormatError, InputError
from sthisto.pp._word2vec import read_gene_vectors
from tests._unchanged import assert_unchanged


def _vectors(adata, n=30, dim=4, seed=0):
    names = list(adata.var_names[:n])
    return names, np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def _write_text(path, names, vectors, *, header=True, edit=None):
    lines = [f"{n} " + " ".join(f"{v:.6f}" for v in row) for n, row in zip(names, vectors, strict=True)]
    if edit:
        edit(lines)
    text = "\n".join(([f"{len(lines)} {vectors.shape[1]}"] if header else []) + lines) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def test_one_malformed_line_is_an_error_naming_file_and_line(synthetic_adata, tmp_path):
    names, vectors = _vectors(synthetic_adata)
    path = _write_text(tmp_path / "g2v.txt", names, vectors, edit=lambda lines: lines.__setitem__(9, lines[9][:-20]))
    before = synthetic_adata.copy()
    with pytest.raises(FileFormatError, match=rf"^gene vector file {re.escape(str(path))}: line 11: expected a gene "
                                              r"symbol and 4 numbers, got 2 numbers \(the line starts 'GENE0009 "
                                              r".*'\)\. Expected word2vec text.*To fix: correct or remove that line\.$"):
        st.pp.gene_embeddings(synthetic_adata, path=path)
    assert_unchanged(synthetic_adata, before)


def test_a_value_that_is_not_a_number(synthetic_adata, tmp_path):
    names, vectors = _vectors(synthetic_adata)
    path = _write_text(tmp_path / "g2v.txt", names, vectors,
                       edit=lambda lines: lines.__setitem__(4, lines[4].replace(" ", " 0.1x ", 1)[:-10]))
    with pytest.raises(FileFormatError, match=r"line 6: '0\.1x' is not a number"):
        st.pp.gene_embeddings(synthetic_adata, path=path)


def test_truncated_file_and_header_count(synthetic_adata, tmp_path):
    names, vectors = _vectors(synthetic_adata)
    path = _write_text(tmp_path / "g2v.txt.gz", names, vectors, edit=lambda lines: lines.__delitem__(slice(20, None)))
    path.write_bytes(gzip.compress(b"30 4\n" + gzip.decompress(path.read_bytes()).split(b"\n", 1)[1]))
    with pytest.raises(FileFormatError, match=r"header announces 30 vectors but the file holds 20 \(truncated or "
                                              r"edited\?\)"):
        st.pp.gene_embeddings(synthetic_adata, path=path)
    half = tmp_path / "half.txt.gz"
    full = _write_text(tmp_path / "full.txt.gz", names, vectors).read_bytes()
    half.write_bytes(full[: len(full) // 2])
    with pytest.raises(FileFormatError, match=rf"^cannot read the gene vector file {re.escape(str(half))}: "
                                              r"Compressed file ended before the end-of-stream marker was reached"):
        st.pp.gene_embeddings(synthetic_adata, path=half)


def test_text_without_header_gzip_and_tabs_are_read(synthetic_adata, tmp_path):
    names, vectors = _vectors(synthetic_adata)
    plain = _write_text(tmp_path / "noheader.txt.gz", names, vectors, header=False,
                        edit=lambda lines: lines.__setitem__(0, lines[0].replace(" ", "\t")))
    got = read_gene_vectors(plain)
    assert got.names == names and not got.binary
    np.testing.assert_allclose(got.vectors, vectors, atol=1e-6)


def test_nan_and_inf_vectors_are_left_out_and_count_as_missing(synthetic_adata, tmp_path, caplog):
    names, vectors = _vectors(synthetic_adata)
    vectors[[2, 5]] = [[np.nan] * 4, [np.inf, 0, 0, 0]]
    path = _write_text(tmp_path / "g2v.txt", names, vectors)
    with caplog.at_level(logging.WARNING, logger="sthisto"):
        st.pp.gene_embeddings(synthetic_adata, path=path)
    assert (f"gene vector file {path}: 2 vector(s) hold NaN or infinite values and are left out (e.g. 'GENE0002' at "
            "line 4); their genes count as missing") in caplog.text
    uns = synthetic_adata.uns["sthisto_gene2vec"]
    assert uns["n_nonfinite"] == 2 and uns["coverage"] == pytest.approx(28 / synthetic_adata.n_vars)
    missing = synthetic_adata.var["sthisto_gene2vec_missing"]
    assert missing["GENE0002"] and missing["GENE0005"] and not missing["GENE0003"]
    emb = synthetic_adata.varm["sthisto_gene2vec"]
    assert np.isfinite(emb).all()
    np.testing.assert_allclose(emb[2], np.delete(vectors, [2, 5], axis=0).mean(axis=0), rtol=1e-5)


def test_duplicated_symbol_keeps_the_first_vector(synthetic_adata, tmp_path, caplog):
    names, vectors = _vectors(synthetic_adata)
    names[7] = names[3]
    path = _write_text(tmp_path / "g2v.txt", names, vectors)
    with caplog.at_level(logging.WARNING, logger="sthisto"):
        got = read_gene_vectors(path)
    assert "1 duplicated gene symbol(s) (e.g. 'GENE0003' at line 9); the first vector of each is used" in caplog.text
    np.testing.assert_allclose(got.vectors[got.names.index("GENE0003")], vectors[3], atol=1e-6)


def test_damaged_binary_file(synthetic_adata, tmp_path):
    from gensim.models import KeyedVectors

    names, vectors = _vectors(synthetic_adata)
    kv = KeyedVectors(vector_size=4)
    kv.add_vectors(names, vectors)
    path = tmp_path / "g2v.bin"
    kv.save_word2vec_format(str(path), binary=True)
    assert read_gene_vectors(path).binary
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(FileFormatError, match=rf"^cannot read the gene vector file {re.escape(str(path))}: .*"
                                              r"Expected word2vec binary"):
        st.pp.gene_embeddings(synthetic_adata, path=path)


def test_binary_with_garbled_names_is_rejected(synthetic_adata, tmp_path):
    names, vectors = _vectors(synthetic_adata, n=3)
    names[1] = "457\nGENE0001"  # what a text file misread as binary used to store
    body = b"".join(f"{n} ".encode() + v.tobytes() for n, v in zip(names, vectors, strict=True))
    path = tmp_path / "g2v.bin"
    path.write_bytes(b"3 4\n" + body)
    with pytest.raises(FileFormatError, match=r"holds 1 gene name\(s\) with spaces or control characters \(e\.g\. "
                                              r"'457\\nGENE0001'\): it is damaged"):
        read_gene_vectors(path)


def test_random_bytes_and_missing_file(synthetic_adata, tmp_path):
    junk = tmp_path / "junk.vec"
    junk.write_bytes(bytes(range(256)) * 10)
    with pytest.raises(FileFormatError, match=r"is neither word2vec text nor binary"):
        st.pp.gene_embeddings(synthetic_adata, path=junk)
    with pytest.raises(FileNotFoundError, match=r"^gene vector file not found: .*nope\.txt$"):
        st.pp.gene_embeddings(synthetic_adata, path=tmp_path / "nope.txt")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dim": 0}, r"dim must be an integer >= 1, got 0\."),
        ({"epochs": 2.5}, r"epochs must be an integer >= 1, got 2\.5\."),
        ({"window": "1"}, r"window must be an integer >= 1, got '1'\."),
        ({"max_pairs": -1}, r"max_pairs must be an integer >= 0, got -1\."),
        ({"min_corr": 1.5}, r"min_corr must be a finite number <= 1\.0, got 1\.5\."),
        ({"method": "glove"}, r"method must be one of \('gene2vec',\), got 'glove'\."),
    ],
)
def test_bad_training_arguments(synthetic_adata, kwargs, message):
    before = synthetic_adata.copy()
    with pytest.raises(InputError, match=f"^{message}$"):
        st.pp.gene_embeddings(synthetic_adata, **kwargs)
    assert_unchanged(synthetic_adata, before)


def test_training_on_counts_that_are_not_counts(synthetic_sections):
    a, b, _ = synthetic_sections
    b.X = b.X.log1p()
    before = a.copy()
    with pytest.raises(InputError, match=r"^adatas\[1\]: adata\.X: counts are not integers .* they look normalised "
                                         r"or log-transformed"):
        st.pp.gene_embeddings(a, adatas=[a, b])
    assert_unchanged(a, before)
