"""Small pure-Python nodes for engine tests (no torch)."""
