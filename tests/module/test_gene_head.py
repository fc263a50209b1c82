import pytest
import torch

from sthisto.module import GeneHead


def _graph(c):
    i = torch.arange(c)
    return torch.cat([torch.stack([i, (i + 1) % c]), torch.stack([(i + 1) % c, i])], 1)


def test_go_head_predicts_h_times_p_transpose():
    torch.manual_seed(0)
    emb = torch.randn(10, 6)
    head = GeneHead(10, 8, gene_embeddings=emb, gene_edge_index=_graph(10))
    h = torch.rand(5, 8)
    p = head.gene_matrix()
    assert p.shape == (10, 8)
    assert torch.allclose(head(h), h @ p.T)
    assert head.P is None and head.gat is not None


def test_go_head_depends_on_graph_and_embeddings():
    torch.manual_seed(0)
    emb = torch.randn(10, 6)
    head = GeneHead(10, 8, gene_embeddings=emb, gene_edge_index=_graph(10))
    p = head.gene_matrix()
    head.gene_edge_index = torch.empty(2, 0, dtype=torch.long)  # only self loops remain
    assert not torch.allclose(p, head.gene_matrix())
    # embeddings are saved with the model (buffers), not trained
    assert "gene_embeddings" in dict(head.named_buffers())
    assert "gene_embeddings" not in dict(head.named_parameters())


def test_learned_p_without_go():
    head = GeneHead(10, 8)
    assert head.gat is None and head.P.shape == (10, 8) and head.P.requires_grad


def test_bad_gene_prior():
    with pytest.raises(ValueError, match="rows"):
        GeneHead(10, 8, gene_embeddings=torch.randn(9, 4), gene_edge_index=_graph(9))
    with pytest.raises(ValueError, match="beyond"):
        GeneHead(5, 8, gene_embeddings=torch.randn(5, 4), gene_edge_index=_graph(9))
    with pytest.raises(ValueError, match="gene_edge_index"):
        GeneHead(5, 8, gene_embeddings=torch.randn(5, 4))
