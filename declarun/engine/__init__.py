"""declarun.engine."""
