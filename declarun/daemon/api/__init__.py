"""declarun.daemon.api."""
