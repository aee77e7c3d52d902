"""payments models: incentives."""

__all__: list[str] = []
