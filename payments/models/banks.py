"""payments models: banks."""

__all__: list[str] = []
