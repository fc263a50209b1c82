"""sthisto.datasets."""

__all__: list[str] = []
