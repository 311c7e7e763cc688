"""The upstream HTTP/1.1 client against real peers: a raw asyncio server plays each answer.

Each test serves one canned HTTP exchange (or misbehaves on purpose) on 127.0.0.1 and
checks what the client makes of it: reuse, framing, decoding, deadlines, bounds.
"""

from __future__ import annotations

import asyncio
import datetime
import gzip
import ipaddress
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mcpfence.transport.upstream.client import HttpError
from mcpfence.transport.upstream.http1 import HIGH_WATER, MAX_HEAD_BYTES, Pool

pytestmark = pytest.mark.anyio

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def peer(handler: Handler) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A server running ``handler`` per connection; yields its URL and the request heads seen."""
    heads: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/mcp", heads
    finally:
        server.close()


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One request's head and body (by its content-length)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head, await reader.readexactly(length)


def answering(*answers: bytes, heads: list[bytes] | None = None) -> Handler:
    """Answer successive requests on one connection with ``answers``, then close."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for answer in answers:
            head, _ = await read_request(reader)
            if heads is not None:
                heads.append(head)
            writer.write(answer)
            await writer.drain()

    return handler


def ok(body: bytes, *extra: str) -> bytes:
    lines = ["HTTP/1.1 200 OK", "content-type: application/json", f"content-length: {len(body)}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def post(pool: Pool, url: str, deadline: float | None = None) -> tuple[int, bytes]:
    response = await pool.request("POST", url, {"content-type": "application/json"}, b"{}", deadline)
    try:
        return response.status, await response.read()
    finally:
        response.release()


async def test_a_connection_is_kept_alive_and_reused() -> None:
    connections = 0

    async def counting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await answering(ok(b"1"), ok(b"2"), ok(b"3"))(reader, writer)

    async with peer(counting) as (url, _):
        pool = Pool(url, limit=4, connect_timeout=5)
        assert [await post(pool, url) for _ in range(3)] == [(200, b"1"), (200, b"2"), (200, b"3")]
        assert connections == 1
        await pool.close()


async def test_a_connection_the_answer_closes_is_not_reused() -> None:
    connections = 0

    async def closing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await answering(ok(b"x", "connection: close"))(reader, writer)

    async with peer(closing) as (url, _):
        pool = Pool(url, limit=4, connect_timeout=5)
        assert await post(pool, url) == (200, b"x")
        assert await post(pool, url) == (200, b"x")
        assert connections == 2


async def test_a_chunked_body_is_reassembled() -> None:
    answer = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    async with peer(answering(answer)) as (url, _):
        assert await post(Pool(url, 4, 5), url) == (200, b"abcde")


async def test_a_body_framed_by_the_end_of_the_connection_is_complete() -> None:
    async with peer(answering(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end")) as (url, _):
        assert await post(Pool(url, 4, 5), url) == (200, b"until the end")


async def test_a_gzip_body_is_decoded_and_its_length_is_not_trusted() -> None:
    packed = gzip.compress(b'{"ok": true}')
    async with peer(answering(ok(packed, "content-encoding: gzip"))) as (url, _):
        pool = Pool(url, 4, 5)
        response = await pool.request("POST", url, {}, b"{}")
        assert response.content_length is None
        assert await response.read() == b'{"ok": true}'


async def test_a_deflate_body_is_decoded() -> None:
    async with peer(answering(ok(zlib.compress(b"plain"), "content-encoding: deflate"))) as (url, _):
        assert await post(Pool(url, 4, 5), url) == (200, b"plain")


async def test_a_compressed_body_inflates_in_bounded_steps() -> None:
    bomb = gzip.compress(b"0" * (8 * 1024 * 1024))
    async with peer(answering(ok(bomb, "content-encoding: gzip"))) as (url, _):
        response = await Pool(url, 4, 5).request("POST", url, {}, b"{}")
        sizes = [len(chunk) async for chunk in response.content.iter_any()]
        assert sum(sizes) == 8 * 1024 * 1024 and max(sizes) <= 1024 * 1024


async def test_an_unknown_content_coding_fails() -> None:
    async with peer(answering(ok(b"??", "content-encoding: br"))) as (url, _):
        with pytest.raises(HttpError, match="br"):
            await post(Pool(url, 4, 5), url)


async def test_an_interim_answer_is_skipped() -> None:
    answer = b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"final")
    async with peer(answering(answer)) as (url, _):
        assert await post(Pool(url, 4, 5), url) == (200, b"final")


async def test_a_connection_closed_mid_body_fails_the_read() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part")
        await writer.drain()

    async with peer(cut) as (url, _):
        with pytest.raises(HttpError, match="closed before the answer was complete"):
            await post(Pool(url, 4, 5), url)


async def test_a_malformed_answer_fails() -> None:
    async with peer(answering(b"NOT HTTP AT ALL\r\n\r\n")) as (url, _):
        with pytest.raises(HttpError, match="malformed"):
            await post(Pool(url, 4, 5), url)


async def test_the_deadline_bounds_an_answer_that_never_comes() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(30)

    async with peer(silent) as (url, _):
        deadline = asyncio.get_running_loop().time() + 0.2
        with pytest.raises(TimeoutError):
            await post(Pool(url, 4, 5), url, deadline)


async def test_the_deadline_bounds_a_body_that_stalls() -> None:
    async def stalling(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
        await writer.drain()
        await asyncio.sleep(30)

    async with peer(stalling) as (url, _):
        deadline = asyncio.get_running_loop().time() + 0.2
        with pytest.raises(TimeoutError):
            await post(Pool(url, 4, 5), url, deadline)


async def test_a_header_with_a_line_break_is_never_sent() -> None:
    async with peer(answering(ok(b""))) as (url, heads):
        with pytest.raises(HttpError, match="line break"):
            await Pool(url, 4, 5).request("POST", url, {"x-evil": "a\r\nhost: other"}, b"{}")
        assert heads == []


async def test_userinfo_becomes_basic_credentials_and_never_the_host() -> None:
    heads: list[bytes] = []
    async with peer(answering(ok(b""), heads=heads)) as (url, _):
        with_user = url.replace("http://", "http://ann:s%40cret@")
        await post(Pool(with_user, 4, 5), with_user)
    assert b"authorization: Basic YW5uOnNAY3JldA==\r\n" in heads[0]
    assert b"ann" not in heads[0].split(b"authorization")[0]


async def test_a_slow_reader_pauses_the_socket() -> None:
    size = HIGH_WATER * 8

    async def big(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(f"HTTP/1.1 200 OK\r\ncontent-length: {size}\r\n\r\n".encode() + b"x" * size)
        await writer.drain()

    async with peer(big) as (url, _):
        response = await Pool(url, 4, 5).request("POST", url, {}, b"{}")
        await asyncio.sleep(0.3)  # the reader reads nothing while the peer sends
        assert response._connection.buffered <= HIGH_WATER * 2
        assert len(b"".join([chunk async for chunk in response.content.iter_any()])) == size


async def test_requests_beyond_the_limit_wait_for_a_free_connection() -> None:
    async def one_each(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await answering(ok(b"a"), ok(b"b"))(reader, writer)

    async with peer(one_each) as (url, _):
        pool = Pool(url, limit=1, connect_timeout=5)
        first = await pool.request("POST", url, {}, b"{}")
        second = asyncio.ensure_future(post(pool, url))
        await asyncio.sleep(0.1)
        assert not second.done()
        assert await first.read() == b"a"
        first.release()
        assert await second == (200, b"b")


async def test_an_unreachable_upstream_raises_os_error() -> None:
    async with peer(answering()) as (url, _):
        pass  # closed: nothing listens on its port now
    with pytest.raises(OSError):
        await post(Pool(url, 4, 5), url)


async def test_bytes_sent_between_answers_close_the_connection() -> None:
    connections = 0

    async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        writer.write(ok(b"1") + ok(b"unasked"))
        await writer.drain()
        await answering(ok(b"2"))(reader, writer)

    async with peer(chatty) as (url, _):
        pool = Pool(url, 4, 5)
        assert await post(pool, url) == (200, b"1")
        await asyncio.sleep(0.05)
        assert await post(pool, url) == (200, b"1")  # a fresh connection, answered afresh
        assert connections == 2


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    loopback = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(loopback, False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


async def test_an_https_upstream_is_verified_against_the_trusted_certificates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = await asyncio.start_server(answering(ok(b"secure")), "127.0.0.1", 0, ssl=context)
    url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/mcp"
    try:
        with pytest.raises(ssl.SSLError):  # not trusted yet
            await post(Pool(url, 4, 5), url)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        assert await post(Pool(url, 4, 5), url) == (200, b"secure")
    finally:
        server.close()


async def test_an_endless_head_fails_instead_of_growing() -> None:
    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n")
        for n in range(10_000):
            writer.write(f"x-filler-{n}: {'y' * 100}\r\n".encode())
            await writer.drain()

    async with peer(endless) as (url, _):
        with pytest.raises(HttpError, match="head exceeds"):
            await post(Pool(url, 4, 5), url)


async def test_a_large_body_in_the_same_read_as_the_head_is_not_mistaken_for_a_long_head() -> None:
    body = b"z" * (MAX_HEAD_BYTES * 3)
    async with peer(answering(ok(body))) as (url, _):
        assert await post(Pool(url, 4, 5), url) == (200, body)


async def test_a_connection_paused_for_a_large_answer_reads_the_next_one() -> None:
    big = b"b" * (HIGH_WATER * 3)
    async with peer(answering(ok(big), ok(b"next"))) as (url, _):
        pool = Pool(url, limit=1, connect_timeout=5)
        assert await post(pool, url) == (200, big)
        deadline = asyncio.get_running_loop().time() + 5
        assert await post(pool, url, deadline) == (200, b"next")


async def test_endless_trailers_fail_instead_of_growing() -> None:
    async def trailing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n")
        for n in range(10_000):
            writer.write(f"x-trailer-{n}: {'y' * 100}\r\n".encode())
            await writer.drain()

    async with peer(trailing) as (url, _):
        with pytest.raises(HttpError, match="framing or trailers exceeds"):
            await post(Pool(url, 4, 5), url)
