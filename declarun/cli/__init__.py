"""declarun.cli."""
