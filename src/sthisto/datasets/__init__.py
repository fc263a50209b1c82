"""Datasets: the bundled HER2ST demo, pooch-fetched real data and a synthetic section."""

from ._synthetic import synthetic

__all__ = ["synthetic"]
