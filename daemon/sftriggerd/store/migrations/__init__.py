"""Versioned schema migrations, one list per engine; version N is the N-th entry."""
