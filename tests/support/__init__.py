"""Shared test support: a real distribution registry and busybox test images."""
