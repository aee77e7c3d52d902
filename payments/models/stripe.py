"""payments models: stripe."""

__all__: list[str] = []
