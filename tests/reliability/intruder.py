"""What another local account can get from a kernel's ports: run as that account, standard library only.

    python3 intruder.py ui PORT [TOKEN]          GET /jobs/ (with ``Authorization: Bearer TOKEN`` if given)
    python3 intruder.py rpc PORT                 a message to the driver's RPC endpoint "endpoint-verifier"
    python3 intruder.py blocks PORT BLOCK_ID     OpenBlocks + the first chunk from the block manager
    python3 intruder.py py4j PORT [SECRET]       System.getProperty("user.name") through the py4j gateway

Each prints one JSON line: {"outcome": "reached"|"refused"|"timeout"|"error", "detail": ...}.
"reached" means the port did for this process what it does for the kernel's own clients (a page, a
dispatched message, a block's bytes, a JVM call); a timeout is never counted as a refusal. The
messages are Spark's own wire format (network-common's MessageEncoder: frame length, type byte,
message) and py4j's text protocol, written by hand because this script runs under a Python that has
neither pyspark nor py4j. It connects to 127.0.0.1 only.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import urllib.error
import urllib.request

HOST = "127.0.0.1"
TIMEOUT = 60.0  # generous: a loaded 2-core machine answers slowly, and a timeout is no refusal
# network-common Message.Type ids
CHUNK_FETCH_REQUEST, CHUNK_FETCH_SUCCESS, RPC_REQUEST, RPC_RESPONSE, RPC_FAILURE = 0, 1, 3, 4, 5


def report(outcome: str, detail: str) -> None:
    print(json.dumps({"outcome": outcome, "detail": detail[:400]}))


def string(text: str) -> bytes:
    """network-common Encoders.Strings: int length, UTF-8 bytes."""
    data = text.encode()
    return struct.pack(">i", len(data)) + data


def frame(message_type: int, message: bytes) -> bytes:
    return struct.pack(">qb", 8 + 1 + len(message), message_type) + message


def rpc_request(request_id: int, body: bytes) -> bytes:
    return frame(RPC_REQUEST, struct.pack(">qi", request_id, len(body)) + body)


def read_exact(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("connection closed by the server")
        data += chunk
    return data


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    length, message_type = struct.unpack(">qb", read_exact(sock, 9))
    return message_type, read_exact(sock, length - 9)


def read_string(data: bytes, offset: int) -> str:
    (length,) = struct.unpack_from(">i", data, offset)
    return data[offset + 4 : offset + 4 + length].decode(errors="replace")


def java_string(text: str) -> bytes:
    """A java.lang.String in Java serialization (stream header, TC_STRING, modified UTF-8)."""
    data = text.encode()
    return b"\xac\xed\x00\x05\x74" + struct.pack(">H", len(data)) + data


def java_utf(text: str) -> bytes:
    """DataOutputStream.writeUTF."""
    data = text.encode()
    return struct.pack(">H", len(data)) + data


def probe_rpc(port: int) -> None:
    """A RequestMessage (NettyRpcEnv's format: sender address, receiver address, endpoint name, then a
    Java-serialized body) for the driver's "endpoint-verifier". The endpoint only understands
    CheckExistence, so a dispatched message comes back as an RpcResponse holding a serialized
    RpcFailure ("Unsupported message"): proof it got past the transport to the driver's dispatcher. With spark.authenticate the transport
    answers with an auth error (or closes) before any endpoint sees it."""
    body = b"\x00" + b"\x01" + java_utf(HOST) + struct.pack(">i", port) + java_utf("endpoint-verifier") + java_string("hello from another account")
    with socket.create_connection((HOST, port), timeout=TIMEOUT) as sock:
        sock.sendall(rpc_request(1, body))
        try:
            message_type, message = read_frame(sock)
        except TimeoutError as error:
            return report("timeout", f"no answer in {TIMEOUT} s: {error}")
        except OSError as error:  # the server closed the connection or reset it
            return report("refused", f"{type(error).__name__}: {error}")
    if message_type == RPC_FAILURE:
        error_text = read_string(message, 8)
        return report("reached" if "Unsupported message" in error_text else "refused", error_text)
    if message_type == RPC_RESPONSE:  # the dispatcher's reply (a serialized RpcFailure: "Unsupported message")
        return report("reached", "the driver's RPC dispatcher answered: " + message[12:].decode("latin-1"))
    return report("refused", f"message type {message_type}")


def probe_blocks(port: int, block_id: str) -> None:
    """OpenBlocks (external-shuffle BlockTransferMessage type 0: appId, execId, block ids) for one block
    of the driver's block manager, then ChunkFetchRequest for chunk 0 of the stream it opens: the
    block's bytes, as a remote executor fetches cached data."""
    open_blocks = b"\x00" + string("app") + string("driver") + struct.pack(">i", 1) + string(block_id)
    with socket.create_connection((HOST, port), timeout=TIMEOUT) as sock:
        try:
            sock.sendall(rpc_request(1, open_blocks))
            message_type, message = read_frame(sock)
            if message_type != RPC_RESPONSE:
                detail = read_string(message, 8) if message_type == RPC_FAILURE else f"message type {message_type}"
                return report("refused", detail)
            handle = message[12:]  # requestId (8), body size (4), then the StreamHandle: type byte, streamId, numChunks
            stream_id, _chunks = struct.unpack_from(">qi", handle, 1)
            sock.sendall(frame(CHUNK_FETCH_REQUEST, struct.pack(">qi", stream_id, 0)))
            message_type, message = read_frame(sock)
        except TimeoutError as error:
            return report("timeout", f"no answer in {TIMEOUT} s: {error}")
        except OSError as error:  # the server closed the connection or reset it
            return report("refused", f"{type(error).__name__}: {error}")
    if message_type == CHUNK_FETCH_SUCCESS:
        return report("reached", message[12:].decode("latin-1"))
    return report("refused", f"message type {message_type}")


def probe_ui(port: int, token: str | None) -> None:
    request = urllib.request.Request(f"http://{HOST}:{port}/jobs/", headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return report("reached", f"HTTP {response.status}")
    except urllib.error.HTTPError as error:
        return report("refused", f"HTTP {error.code}")
    except (TimeoutError, urllib.error.URLError, OSError) as error:
        return report("timeout" if "timed out" in str(error) else "error", f"{type(error).__name__}: {error}")


def probe_py4j(port: int, secret: str | None) -> None:
    """py4j's text protocol: an auth command first when a secret is given, then a static call."""
    with socket.create_connection((HOST, port), timeout=TIMEOUT) as sock:
        reader = sock.makefile("r")
        try:
            if secret:
                sock.sendall(f"A\n{secret}\n".encode())
                reader.readline()
            sock.sendall(b"c\nz:java.lang.System\ngetProperty\nsuser.name\ne\n")
            answer = reader.readline().strip()
        except TimeoutError as error:
            return report("timeout", f"no answer in {TIMEOUT} s: {error}")
        except OSError as error:  # the server closed the connection or reset it
            return report("refused", f"{type(error).__name__}: {error}")
    return report("reached" if answer.startswith("!ys") else "refused", answer or "connection closed by the server")


def main(argv: list[str]) -> None:
    kind, port, rest = argv[0], int(argv[1]), argv[2:]
    if kind == "ui":
        probe_ui(port, rest[0] if rest else None)
    elif kind == "rpc":
        probe_rpc(port)
    elif kind == "blocks":
        probe_blocks(port, rest[0])
    elif kind == "py4j":
        probe_py4j(port, rest[0] if rest else None)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
