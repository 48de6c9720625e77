"""A minimal WebSocket client that sends exactly the bytes it is told to.

The ``websockets`` client refuses to send invalid UTF-8, malformed frames or
frames over its own limits, and it always reads what the server sends. The
safety tests need a client that does all of that on purpose: this one speaks
RFC 6455 frame by frame over a plain socket, blocking (``RawWebSocket``) or with
asyncio streams (``open_async`` / ``read_frame``).
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import time
from dataclasses import dataclass

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA


@dataclass(frozen=True)
class Frame:
    opcode: int
    payload: bytes
    fin: bool = True

    @property
    def close_code(self) -> int | None:
        if self.opcode != OP_CLOSE:
            return None
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else 1005

    @property
    def close_reason(self) -> str:
        return self.payload[2:].decode("utf-8", "replace") if self.opcode == OP_CLOSE else ""


class HandshakeRefused(Exception):
    """The server answered the upgrade request with something other than 101."""

    def __init__(self, status: int, response: bytes) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.response = response


class ServerClosedSocket(Exception):
    """The TCP connection ended without (more of) a frame."""


def encode_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bool = True,
) -> bytes:
    """Return one frame as a client would send it (masked unless told otherwise)."""
    first = (0x80 if fin else 0) | (rsv & 0x7) << 4 | opcode & 0xF
    length = len(payload)
    mask_bit = 0x80 if mask else 0
    if length < 126:
        header = struct.pack("!BB", first, mask_bit | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, length)
    if not mask:
        return header + payload
    key = os.urandom(4)
    return header + key + _mask(payload, key)


def _mask(payload: bytes, key: bytes) -> bytes:
    repeated = (key * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        len(payload), "big"
    )


def handshake_request(port: int, path: str, headers: dict[str, str] | None = None) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


class FrameParser:
    """Turn the bytes a server sends into frames, however they are split."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self.buffer += data

    def next_frame(self) -> Frame | None:
        """Return the next complete frame, or ``None`` if more bytes are needed."""
        buffer = self.buffer
        if len(buffer) < 2:
            return None
        first, second = buffer[0], buffer[1]
        length, offset = second & 0x7F, 2
        if length == 126:
            if len(buffer) < 4:
                return None
            length, offset = struct.unpack("!H", buffer[2:4])[0], 4
        elif length == 127:
            if len(buffer) < 10:
                return None
            length, offset = struct.unpack("!Q", buffer[2:10])[0], 10
        if len(buffer) < offset + length:
            return None
        payload = bytes(buffer[offset : offset + length])
        del buffer[: offset + length]
        return Frame(first & 0x0F, payload, bool(first & 0x80))


class RawWebSocket:
    """A blocking raw client; every read is bounded by ``timeout``."""

    def __init__(self, sock: socket.socket, leftover: bytes = b"") -> None:
        self.sock = sock
        self.parser = FrameParser()
        self.parser.feed(leftover)

    @classmethod
    def connect(
        cls,
        port: int,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        timeout: float = 5.0,
        receive_buffer: int | None = None,
    ) -> RawWebSocket:
        """Open a socket and do the handshake; raise ``HandshakeRefused`` if refused."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:  # before connect, so the window stays small
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", port))
        sock.sendall(handshake_request(port, path, headers))
        response = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in response:
            if time.monotonic() > deadline:
                raise TimeoutError("no handshake response")
            chunk = sock.recv(65536)
            if not chunk:
                break
            response += chunk
        head, _, rest = response.partition(b"\r\n\r\n")
        if not head:
            sock.close()
            raise ServerClosedSocket("connection closed during the handshake")
        status = _status_of(head)
        if status != 101:
            sock.close()
            raise HandshakeRefused(status, response)
        return cls(sock, rest)

    def send_frame(self, opcode: int, payload: bytes = b"", **options: object) -> None:
        self.sock.sendall(encode_frame(opcode, payload, **options))  # type: ignore[arg-type]

    def send_text(self, text: str) -> None:
        self.send_frame(OP_TEXT, text.encode())

    def send_bytes(self, data: bytes) -> None:
        self.send_frame(OP_BINARY, data)

    def recv_frame(self, timeout: float = 5.0) -> Frame:
        """Return the next data or close frame (pings are answered); raise on EOF."""
        while (frame := self._recv_any_frame(timeout)).opcode == OP_PING:
            self.send_frame(OP_PONG, frame.payload)  # uvicorn's keepalive
        return frame

    def _recv_any_frame(self, timeout: float) -> Frame:
        deadline = time.monotonic() + timeout
        while (frame := self.parser.next_frame()) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no frame within {timeout} s")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(1 << 20)
            except ConnectionResetError as error:
                raise ServerClosedSocket("connection reset") from error
            if not chunk:
                raise ServerClosedSocket("EOF")
            self.parser.feed(chunk)
        return frame

    def recv_until_close(self, timeout: float = 5.0) -> tuple[list[Frame], Frame]:
        """Read frames up to the close frame; return (frames before it, close frame)."""
        frames: list[Frame] = []
        while (frame := self.recv_frame(timeout)).opcode != OP_CLOSE:
            frames.append(frame)
        return frames, frame

    def close(self) -> None:
        self.sock.close()

    def abort(self) -> None:
        """Drop the connection with a TCP reset: no close frame, no FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


async def open_async(
    port: int, path: str, headers: dict[str, str] | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a raw connection with asyncio streams and do the handshake."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(handshake_request(port, path, headers))
    head = await reader.readuntil(b"\r\n\r\n")
    status = _status_of(head)
    if status != 101:
        writer.close()
        raise HandshakeRefused(status, head)
    return reader, writer


async def read_frame(reader: asyncio.StreamReader) -> Frame:
    """Read one frame from an asyncio stream (raises ``IncompleteReadError`` on EOF)."""
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        length = struct.unpack("!H", await reader.readexactly(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", await reader.readexactly(8))[0]
    return Frame(first & 0x0F, await reader.readexactly(length), bool(first & 0x80))


def abort_writer(writer: asyncio.StreamWriter) -> None:
    """Drop an asyncio connection with a TCP reset (no close frame)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
