"""A tiny HTTP forward proxy on loopback, so a test can prove requests went through it."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class ForwardProxy:
    seen: list[str] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._forward_one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _forward_one(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, _, rest = head.partition(b"\r\n")
        method, target, version = request_line.decode().split(" ")
        self.seen.append(f"{method} {target}")
        url = urlsplit(target)  # a proxy receives the absolute URL
        lines = [h for h in rest.split(b"\r\n") if h]
        length = 0
        for line in lines:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        body = await reader.readexactly(length) if length else b""
        path = url.path + (f"?{url.query}" if url.query else "")
        upstream_head = [f"{method} {path} {version}".encode()]
        upstream_head += [line for line in lines if not line.lower().startswith(b"proxy-")]
        upstream_head = [
            line for line in upstream_head if not line.lower().startswith(b"connection:")
        ]
        upstream_head.append(b"Connection: close")
        up_reader, up_writer = await asyncio.open_connection(url.hostname, url.port or 80)
        up_writer.write(b"\r\n".join(upstream_head) + b"\r\n\r\n" + body)
        await up_writer.drain()
        answer = await up_reader.read()
        up_writer.close()
        # The upstream closed its side; tell the client this connection ends with the answer.
        writer.write(answer.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1))
        await writer.drain()
        return False
