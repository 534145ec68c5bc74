"""The toolchain cache: input keys (key.py)."""
