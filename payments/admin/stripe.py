"""Admin: stripe."""
