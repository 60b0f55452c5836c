"""A server that answers every request at once with the same small response.

Run as ``python -m graph.bench.canned PORT`` (in its own process, as the real server is). A
round trip to it is what the benchmark's client, the loopback and the least possible server cost
together: the floor under every figure, measured so it can be taken out of them.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Final, cast

from graph.bench.client import loop_factory

_BODY: Final = b'{"data":{"__typename":"Query"}}'
RESPONSE: Final = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
    + str(len(_BODY)).encode("ascii")
    + b"\r\n\r\n"
    + _BODY
)


class _Canned(asyncio.Protocol):
    """Answers each complete request (head plus Content-Length bytes of body)."""

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.WriteTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing asyncio's classes.
        self.transport = cast(asyncio.WriteTransport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            length = 0
            for line in self.buffer[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            self.buffer = self.buffer[total:]
            assert self.transport is not None
            self.transport.write(RESPONSE)


async def serve(port: int) -> None:
    """Serve on 127.0.0.1:``port`` until cancelled."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Canned, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main(argv: list[str]) -> None:
    """Entry point: ``python -m graph.bench.canned PORT``."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(serve(int(argv[0])))


if __name__ == "__main__":
    main(sys.argv[1:])
