"""Pipeline addons: each one job, applied to every message in order (see pipeline.py)."""
