"""Property tests: random client input against a running mcpfence and a real upstream.

Invariants: no 500 and no hang, nothing reaches the upstream that the policies did
not check (``danger`` never runs, ``echo`` only ever sees lower-cased text), and
every ``tools/call`` is answered exactly once and logged exactly once.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.e2e.fuzz.conftest import FUZZ, TOOLS, Target
from tests.e2e.fuzz.invariants import answers_to, assert_no_crash, received_messages
from tests.e2e.fuzz.strategies import BODIES, HEADERS, TEXT, encode

_markers = itertools.count(1)


def ascii_lower(text: str) -> str:
    return "".join(c.lower() if "A" <= c <= "Z" else c for c in text)


def expected_decision(tool: str, sent: str, checked: str) -> str:
    if tool == "danger" or (tool == "echo" and "\x00" in sent):  # policies cannot read past a NUL
        return "deny"
    return "mutate" if checked != sent else "allow"


def assert_policies_held(target: Target) -> None:
    """Only checked calls reached the upstream's tools."""
    ran = target.recorder.calls
    assert not [call for call in ran if call[0] == "danger"], "a denied tool ran"
    assert not [text for tool, text in ran if tool == "echo" and any("A" <= c <= "Z" for c in text)]


@FUZZ
@given(body=BODIES)
def test_random_bodies_in_a_session_never_crash_hang_or_bypass_policies(target: Target, body: bytes) -> None:
    response = target.post("rec", body, target.in_session())
    assert_no_crash(response)
    assert_policies_held(target)


@FUZZ
@given(body=BODIES)
def test_random_bodies_without_a_session_never_crash_or_hang(target: Target, body: bytes) -> None:
    response = target.post("rec", body)
    assert_no_crash(response)
    assert_policies_held(target)


@FUZZ
@given(headers=HEADERS, method=st.sampled_from(["POST", "GET", "DELETE"]))
def test_random_headers_never_crash_or_hang(target: Target, headers: dict[str, str], method: str) -> None:
    body = encode({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}) if method == "POST" else None
    with target.http.stream(method, target.url("rec"), content=body, headers=headers) as response:
        # A GET may open a server stream that stays open: its head is the answer.
        if method != "GET" or response.status_code != 200:
            response.read()
            assert_no_crash(response)
        else:
            assert response.headers["content-type"].startswith("text/event-stream")


@FUZZ
@given(tool=st.sampled_from(TOOLS), text=TEXT, request_id=st.one_of(st.integers(-(2**53), 2**53), TEXT))
def test_every_call_is_answered_once_and_logged_once(
    target: Target, tool: str, text: str, request_id: Any
) -> None:
    marker = f"{text}-m{next(_markers)}"
    call = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": tool, "arguments": {"text": marker}},
    }
    response = target.post("rec", encode(call), target.in_session())
    assert_no_crash(response)
    assert response.status_code == 200, response.text
    assert len(answers_to(received_messages(response), request_id)) == 1

    checked = ascii_lower(marker) if tool == "echo" else marker  # what the policy forwards

    def logged(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [line for line in lines if line.get("args", {}).get("text") == checked]

    lines = logged(target.wait_for_decisions(lambda found: logged(found)))
    assert len(lines) == 1, lines
    assert lines[0]["decision"] == expected_decision(tool, marker, checked)
    assert_policies_held(target)


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"])
def test_decision_log_lines_survive_splitlines(target: Target, separator: str) -> None:
    marker = f"split{separator}me-{next(_markers)}"
    call = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": "list_items", "arguments": {"text": marker}},
    }
    target.post("rec", encode(call), target.in_session())
    target.wait_for_decisions(lambda lines: any(line.get("args", {}).get("text") == marker for line in lines))
    text = target.decision_log.read_text("utf-8")
    assert [json.loads(line) for line in text.splitlines()]


@pytest.mark.parametrize("text", ["\x00ABC", "ok\x00ABC"])
def test_a_nul_cannot_hide_text_from_policies(target: Target, text: str) -> None:
    before = list(target.recorder.calls)
    call = {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": text}},
    }
    (answer,) = answers_to(received_messages(target.post("rec", encode(call), target.in_session())), 3)
    assert answer["result"]["isError"] is True
    assert target.recorder.calls == before
