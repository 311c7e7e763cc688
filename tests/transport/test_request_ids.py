"""Upstream ids stay unique per process, forked workers included."""

from __future__ import annotations

import os

from mcpfence.transport.downstream.request_ids import own_id, upstream_id


def test_each_forwarded_request_gets_a_different_upstream_id_naming_the_same_client_id() -> None:
    first, second = upstream_id(7), upstream_id(7)
    assert first != second
    assert own_id(first) == own_id(second) == 7


def test_string_ids_with_quotes_and_unicode_come_back_unchanged() -> None:
    assert own_id(upstream_id('a"b ü')) == 'a"b ü'


def test_a_forked_worker_draws_ids_the_parent_never_draws() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one id, then out without running the parent's cleanup
        os.write(write, upstream_id(1).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 200).decode()
    os.waitpid(pid, 0)
    parent = {upstream_id(1) for _ in range(1000)}
    assert child not in parent
    assert child.split(":")[1][:8] != upstream_id(1).split(":")[1][:8]
