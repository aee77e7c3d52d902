"""Admin: banks."""
