"""The revision table: which protocol revision has which feature."""

from __future__ import annotations

from mcpfence import protocol


def test_batches_end_with_2025_06_18_and_an_undeclared_revision_may_batch() -> None:
    assert sorted(protocol.BATCH_VERSIONS) == ["", "2024-11-05", "2025-03-26"]


def test_2026_07_28_is_stateless_with_routing_headers_json_lines_cache_scope_and_typed_results() -> None:
    features = (
        protocol.STATELESS_VERSIONS,
        protocol.ROUTING_HEADER_VERSIONS,
        protocol.JSON_LINES_VERSIONS,
        protocol.CACHE_SCOPE_VERSIONS,
        protocol.TYPED_RESULT_VERSIONS,
    )

    assert [sorted(versions) for versions in features] == [["2026-07-28"]] * 5


def test_the_http_sse_transport_speaks_2024_11_05() -> None:
    assert [protocol.LEGACY_SSE_VERSION] == ["2024-11-05"]
