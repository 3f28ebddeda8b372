"""Hostile suite: each test reproduces a way the daemon lost changes or stopped (issue 13)."""
