"""JSON lines are read as they complete, bounded per line, whatever the chunk borders."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mcpfence.transport.json_lines import LineReader, whole_value

pytestmark = pytest.mark.anyio


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def read_all(reader: LineReader) -> list[bytes]:
    lines = []
    while (line := await reader.line()) is not None:
        lines.append(line)
    return lines


async def test_lines_split_across_chunks_come_out_whole() -> None:
    reader = LineReader(chunks(b'{"a":', b'1}\n{"b"', b":2}\n\n"))
    assert await read_all(reader) == [b'{"a":1}', b'{"b":2}', b""]


async def test_the_tail_without_a_line_feed_is_the_last_line() -> None:
    reader = LineReader(chunks(b"one\ntw", b"o"))
    assert await read_all(reader) == [b"one", b"two"]


async def test_many_lines_in_one_chunk_are_read_one_by_one() -> None:
    reader = LineReader(chunks(b"\n".join(b"%d" % n for n in range(1000))))
    assert await read_all(reader) == [b"%d" % n for n in range(1000)]


async def test_a_line_longer_than_the_bound_is_refused() -> None:
    reader = LineReader(chunks(b"12345", b"6789\n"), max_line_bytes=8)
    with pytest.raises(ValueError, match="longer than 8 bytes"):
        await reader.line()


async def test_rest_is_everything_not_read_yet() -> None:
    reader = LineReader(chunks(b"{\n", b'  "a": 1\n', b"}"))
    assert await reader.line() == b"{"
    assert await reader.rest(100) == b'  "a": 1\n}'


async def test_rest_beyond_its_limit_is_refused() -> None:
    reader = LineReader(chunks(b"x" * 6, b"y" * 6))
    with pytest.raises(ValueError, match="exceeds 10 bytes"):
        await reader.rest(10)


def test_only_a_whole_strict_json_value_is_one() -> None:
    assert whole_value(b'{"a":1}') == {"a": 1}
    assert whole_value(b"{") is None
    assert whole_value(b'{"a":1,"a":2}') is None
