"""sthisto.models."""

__all__: list[str] = []
