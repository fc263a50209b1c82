"""sthisto.read."""

__all__: list[str] = []
