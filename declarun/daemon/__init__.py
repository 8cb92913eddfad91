"""declarun.daemon."""
