"""declarun.spec."""
