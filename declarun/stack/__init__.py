"""declarun.stack."""
