"""sthisto.pp."""

__all__: list[str] = []
