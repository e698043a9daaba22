"""Uploads that cannot stall: a body that sends nothing, or trickles, is dropped with 408 and frees its slot.

A raw socket plays the client, since a real HTTP client always sends the body it declares: it
sends an upload's headers (a 5 MB body declared) and then nothing, or a byte now and then, or
part of the body before hanging up.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from adapters.web.security import SESSION_COOKIE
from tests.integration.web_harness import WebHarness, jpeg, running_web

BOUNDARY = "----stalled"
#: Generous: the server is told to give up after 1 s of silence; a loaded machine may be slow.
ANSWER_WITHIN_S = 15.0


async def open_upload(
    web: WebHarness, declared: int = 5_000_000
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that has sent an upload's headers (signed in, our origin) and no body yet."""
    url = web.client.make_url("/")
    cookie = web.client.session.cookie_jar.filter_cookies(url)[SESSION_COOKIE].value
    reader, writer = await asyncio.open_connection(url.host, url.port)
    head = (
        "POST /upload HTTP/1.1\r\n"
        f"Host: {url.host}:{url.port}\r\n"
        f"Cookie: {SESSION_COOKIE}={cookie}\r\n"
        f"Origin: {web.origin}\r\n"
        "Accept: application/json\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    )
    writer.write(head.encode())
    await writer.drain()
    return reader, writer


async def status_of(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The status code and the rest of the answer, or a test failure if none comes in time."""
    answer = await asyncio.wait_for(reader.read(65536), ANSWER_WITHIN_S)
    assert answer.startswith(b"HTTP/1.1 "), answer[:100]
    return int(answer.split(b" ", 2)[1]), answer


async def test_an_upload_that_sends_nothing_is_dropped_and_frees_its_slots(tmp_path: Path) -> None:
    async with running_web(
        tmp_path,
        worker=False,
        web_upload_stall_s=1.0,
        web_account_concurrent_uploads=2,
        web_ip_concurrent_uploads=3,
    ) as web:
        await web.sign_in()
        stalled = [await open_upload(web) for _ in range(2)]
        answers = [await status_of(reader) for reader, _ in stalled]
        closed = [await asyncio.wait_for(reader.read(), ANSWER_WITHIN_S) for reader, _ in stalled]
        for _, writer in stalled:
            writer.close()
        after = await web.upload(("a.jpg", jpeg()))
    assert [status for status, _ in answers] == [408, 408]
    assert all(b'"upload_timeout"' in body and b"nothing arrived for 1 s" in body for _, body in answers)
    assert closed == [b"", b""]  # the server closed the connection, not waiting for the rest
    assert after.status == 202


async def test_an_upload_that_trickles_is_dropped_after_the_overall_limit(tmp_path: Path) -> None:
    async with running_web(tmp_path, worker=False, web_upload_stall_s=1.0, web_upload_timeout_s=2.0) as web:
        await web.sign_in()
        reader, writer = await open_upload(web)

        async def trickle() -> None:
            writer.write(f"--{BOUNDARY}\r\n".encode())
            while not writer.is_closing():
                writer.write(b"X-Slow: x\r\n")  # part header lines, one now and then
                await writer.drain()
                await asyncio.sleep(0.3)

        trickling = asyncio.create_task(trickle())
        try:
            status, body = await status_of(reader)
        finally:
            trickling.cancel()
            writer.close()
    assert status == 408
    assert b"took longer than 2 s" in body


async def test_a_client_hanging_up_mid_upload_is_its_own_doing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="adapters.web")
    async with running_web(tmp_path, worker=False, web_account_concurrent_uploads=1) as web:
        await web.sign_in()
        token = await web.csrf()
        _, writer = await open_upload(web)
        writer.write(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="photo"; filename="a.jpg"\r\n\r\n'.encode()
            + b"\xff" * 100_000
        )
        await writer.drain()
        writer.close()
        await writer.wait_closed()

        for _ in range(100):  # the server notices the hang-up on its own time
            if any("mid-upload" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.1)
        freed = (await web.upload(("b.jpg", jpeg()))).status == 202
    messages = [(r.levelno, r.getMessage()) for r in caplog.records if r.name.startswith("adapters.web")]
    assert freed
    assert not [m for level, m in messages if level >= logging.WARNING], messages
    assert any("closed the connection mid-upload" in m for _, m in messages), messages
