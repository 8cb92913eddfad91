"""declarun.plan."""
