"""Worker roles: one module per role, their shared runtime in one module."""
