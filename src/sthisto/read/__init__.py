"""Readers that turn spatial transcriptomics folders and files into AnnData."""

from ._legacy_st import legacy_st
from ._visium import visium

__all__ = ["legacy_st", "visium"]
