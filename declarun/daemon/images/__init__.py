"""declarun.daemon.images."""
