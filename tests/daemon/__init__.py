"""Tests for daemon."""
