"""sthisto.pl."""

__all__: list[str] = []
