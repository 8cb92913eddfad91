"""Tests for daemon/images."""
