"""Admin: incentives."""
