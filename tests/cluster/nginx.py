"""deploy/nginx.conf run for real: the same config, pointed at local replicas."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.cluster.redis_server import listening
from tests.servers import free_port

DEPLOY_CONF = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"


def render(upstream_ports: list[int], port: int, directory: Path) -> str:
    """deploy/nginx.conf with the compose service names replaced by local ports
    (as many ``server`` lines as ports: the first ones, in order)."""
    text = DEPLOY_CONF.read_text()
    servers = iter(upstream_ports)

    def local(match: re.Match[str]) -> str:
        port = next(servers, None)
        return "" if port is None else f"{match.group(1)}server 127.0.0.1:{port}{match.group(2)}"

    text = re.sub(r"(\s*)server\s+mcpfence-\d+:\d+([^;]*;)", local, text)
    text = text.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    text = text.replace("pid /tmp/nginx.pid;", f"pid {directory}/nginx.pid;")
    temp = "".join(
        f"    {kind}_temp_path {directory}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return text.replace("http {\n", "http {\n" + temp, 1)


@contextmanager
def nginx(upstream_ports: list[int], directory: Path) -> Iterator[str]:
    """Run nginx in front of ``upstream_ports``; yields its base URL."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    conf = directory / "nginx.conf"
    conf.write_text(render(upstream_ports, port, directory))
    with listening([binary, "-p", str(directory), "-c", str(conf), "-g", "daemon off;"], port):
        yield f"http://127.0.0.1:{port}"
