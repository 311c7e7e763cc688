"""``mcpfence serve --workers N``: a pre-fork parent and N worker processes.

The parent binds the listening sockets once and forks; every worker accepts on
the same sockets, so the kernel spreads connections over all cores. Workers are
interchangeable only when they share state, so several workers need cluster mode
(Redis), exactly like several replicas. The parent restarts a worker that dies
and forwards SIGTERM/SIGINT to all of them.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from types import FrameType

from mcpfence.config import Config, ConfigError

log = logging.getLogger("mcpfence")

Worker = Callable[[list[socket.socket]], None]
"""Runs one worker on the inherited sockets (the proxy's first, then the admin listener's)."""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket, inheritable by forked workers."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def check_workers(config: Config, workers: int) -> None:
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    if workers > 1 and config.cluster is not None and config.cluster.internal_port is not None:
        raise ConfigError(
            "--workers above 1 cannot share cluster.internal_port: run hosted-session routes"
            " as one worker per replica"
        )
    if workers > 1 and config.cluster is None:
        raise ConfigError(
            "--workers above 1 needs cluster mode (cluster.redis_url or MCPFENCE_REDIS_URL): "
            "workers share token routes and rate limits through Redis, as replicas do"
        )


def run_workers(config: Config, workers: int, worker: Worker) -> int:
    """Bind, fork ``workers`` processes running ``worker``, supervise them until a signal."""
    server = config.server
    sockets = [bind(server.host, server.port)]
    if server.admin_port is not None:
        sockets.append(bind(server.admin_host, server.admin_port))
    children: dict[int, int] = {}  # pid -> worker index
    stopping = False

    def start(index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker: default signal handling, then serve until told to stop
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 0
            try:
                worker(sockets)
            except BaseException:
                log.exception("worker %d failed", index)
                code = 1
            finally:
                os._exit(code)
        children[pid] = index

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for index in range(workers):
        start(index)
    log.info("mcpfence: %d workers on %s:%d", workers, server.host, server.port)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        index = children.pop(pid, -1)
        if index >= 0 and not stopping:
            log.warning("worker %d (pid %d) exited with %d; starting it again", index, pid, status)
            start(index)
    for sock in sockets:
        sock.close()
    sys.stdout.flush()
    return 0
