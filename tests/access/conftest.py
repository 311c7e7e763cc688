"""The access tests drive the same running admin API as the admin tests."""

from tests.admin.conftest import admin, upstream_url

__all__ = ["admin", "upstream_url"]
