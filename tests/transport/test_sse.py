"""The SSE parser keeps everything but data byte-for-byte meaningful, across chunk borders."""

from __future__ import annotations

import pytest

from mcpfence.transport import sse


def parse(*chunks: bytes) -> list[sse.Event]:
    parser = sse.Parser()
    return [event for chunk in chunks for event in parser.feed(chunk)]


def test_an_event_is_yielded_only_once_complete() -> None:
    parser = sse.Parser()
    assert list(parser.feed(b"event: message\ndata: {")) == []
    (event,) = parser.feed(b'"a":1}\n\n')
    assert event.data == '{"a":1}'


def test_ids_retry_and_comments_survive_a_round_trip() -> None:
    (event,) = parse(b": keep-alive\nid: ev-7\nretry: 500\ndata: x\n\n")
    assert event.encode() == b": keep-alive\nid: ev-7\nretry: 500\ndata: x\n\n"


def test_a_priming_event_with_empty_data_is_kept() -> None:
    (event,) = parse(b"id: 0\ndata:\n\n")
    assert event.data == ""
    assert event.encode() == b"id: 0\ndata:\n\n"


def test_crlf_line_ends_split_across_chunks_are_one_event_border() -> None:
    events = parse(b"data: a\r", b"\n\r\ndata: b\r\n\r\n")
    assert [e.data for e in events] == ["a", "b"]


def test_multiline_data_is_joined_and_replaced_in_place() -> None:
    (event,) = parse(b"id: 1\ndata: a\ndata: b\nevent: message\n\n")
    assert event.data == "a\nb"
    assert event.with_data("c").encode() == b"id: 1\ndata: c\nevent: message\n\n"


def test_an_event_without_a_name_is_a_message() -> None:
    (event,) = parse(b"data: x\n\n")
    assert event.name == "message"


def test_an_event_that_outgrows_the_limit_is_refused_before_it_completes() -> None:
    parser = sse.Parser(max_event_bytes=8)
    with pytest.raises(ValueError, match="larger than 8 bytes"):
        list(parser.feed(b"data: " + b"x" * 8))


def test_an_event_split_into_many_small_chunks_is_parsed_whole() -> None:
    raw = b"id: 9\ndata: " + b"x" * 10_000 + b"\n\n"
    (event,) = parse(*(raw[i : i + 7] for i in range(0, len(raw), 7)))
    assert event.data == "x" * 10_000
    assert event.encode() == raw
