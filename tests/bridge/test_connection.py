"""One connection's conversation (tinct.bridge.connection), over real sockets on 127.0.0.1.

Refusals answer with an error frame and close or keep the connection as
docs/protocol.md says; nothing a client does (garbage, stalls, vanishing, a
failing backend) harms the server or other connections. What happens while a
job runs (progress, cancel, frames meanwhile) is test_running_job.py.
"""

import struct
import time

import pytest

from bridge_helpers import (
    FakeBackend,
    authed,
    client_for,
    make_server,
    raw,
    raw_frame,
    request,
    start_job,
)
from tinct.bridge import wire as P

# --------------------------------------------------------------------------- handshake


def _challenge(sock):
    """Send a well-formed auth and return (client nonce, the server's challenge header)."""
    nonce = P.new_nonce()
    P.send_frame(sock, {"type": "auth", "client_nonce": nonce})
    return nonce, P.read_frame(sock).header


def test_handshake_proves_the_server_then_the_client(served):
    server, _ = served
    with raw(server) as sock:
        nonce, challenge = _challenge(sock)
        assert challenge["type"] == "auth_challenge"
        assert challenge["server_proof"] == P.auth_proof(
            server.token, "server", nonce, challenge["server_nonce"]
        )
        proof = P.auth_proof(server.token, "client", nonce, challenge["server_nonce"])
        P.send_frame(sock, {"type": "auth_response", "client_proof": proof})
        assert P.read_frame(sock).header["type"] == "auth_ok"
        reply = request(sock, {"type": "hello", "id": "h1"})
        assert reply.header["type"] == "hello" and reply.header["id"] == "h1"


@pytest.mark.parametrize(
    "forge",
    [
        lambda token, nonce, ch: "0" * 64,  # a guess
        lambda token, nonce, ch: ch["server_proof"],  # reflect the server's proof
        lambda token, nonce, ch: P.auth_proof("wrong", "client", nonce, ch["server_nonce"]),
        lambda token, nonce, ch: token,  # the plain token is not a proof
        lambda token, nonce, ch: None,
        lambda token, nonce, ch: ["x"] * 64,
    ],
    ids=["guess", "reflected", "wrong-token", "plain-token", "missing", "list"],
)
def test_forged_client_proofs_refused_and_closed(served, forge):
    server, backend = served
    with raw(server) as sock:
        nonce, challenge = _challenge(sock)
        proof = forge(server.token, nonce, challenge)
        P.send_frame(sock, {"type": "auth_response", "client_proof": proof})
        reply = P.read_frame(sock).header
        assert reply["code"] == "unauthorized"
        assert sock.recv(1) == b""  # closed
    with client_for(server) as client:
        assert client.hello()["server"] == "tinct"
    assert not backend.calls


def test_wrong_token_client_sends_nothing_secret(served):
    server, backend = served
    with P.BridgeClient(port=server.port, token="wrong", timeout=5) as client:
        with pytest.raises(P.BridgeError) as info:
            client.hello()
        assert info.value.code == "unauthorized"
        assert isinstance(info.value, P.ServerUnverified)  # refused before any proof went out
        assert client._sock is None
    assert not backend.calls


@pytest.mark.parametrize(
    "header",
    [
        {"type": "hello", "id": "x"},  # a request before the handshake
        {"type": "hello", "token": "whatever"},  # protocol 1 style
        {"type": "auth"},  # no nonce
        {"type": "auth", "client_nonce": "abc"},
        {"type": "auth", "client_nonce": "G" * 64},
        {"type": "auth", "client_nonce": 5},
        {"type": "auth_response", "client_proof": "0" * 64},  # skipping the challenge
    ],
)
def test_requests_before_authentication_refused(served, header):
    server, _ = served
    with raw(server) as sock:
        reply = request(sock, header).header
        assert reply["type"] == "error" and reply["code"] == "unauthorized"
        assert "id" not in reply
        assert sock.recv(1) == b""


def test_no_payload_is_read_before_authentication(served):
    server, _ = served
    with raw(server) as sock:
        sock.sendall(raw_frame({"type": "auth", "payload_bytes": 500_000_000}) + bytes(1000))
        assert P.read_frame(sock).header["code"] == "too_large"
    with raw(server) as sock:  # the handshake's headers are small
        sock.sendall(P.PREFIX.pack(P.MAGIC, P.PROTOCOL_VERSION, P.AUTH_MAX_HEADER_BYTES + 1))
        assert P.read_frame(sock).header["code"] == "too_large"


def test_handshake_must_finish_in_time(cfgdir):
    server, _ = make_server(cfgdir, auth_timeout=0.5)
    try:
        with raw(server) as idle, raw(server) as slow:
            nonce = P.new_nonce()
            data = P.encode_frame({"type": "auth", "client_nonce": nonce})
            for sock in (idle, slow):  # the server must answer well before this
                sock.settimeout(2.5)
            for i in range(4):  # a byte at a time: the deadline is for the whole handshake
                slow.sendall(data[i : i + 1])
                time.sleep(0.2)
            for sock in (idle, slow):
                assert P.read_frame(sock).header["code"] == "timeout"
                assert sock.recv(1) == b""
    finally:
        server.shutdown()


# --------------------------------------------------------------------------- refusals


def test_version_mismatch_reply_names_both(served):
    server, _ = served
    with raw(server) as sock:
        data = bytearray(P.encode_frame({"type": "auth", "client_nonce": P.new_nonce()}))
        struct.pack_into("<H", data, 4, 1)
        sock.sendall(data)
        reply = P.read_frame(sock).header
    assert reply["code"] == "version_mismatch"
    assert "version 1" in reply["message"] and f"version {P.PROTOCOL_VERSION}" in reply["message"]


def test_bad_magic_reply(served):
    server, _ = served
    with raw(server) as sock:
        sock.sendall(b"HTTP/1.1 GET /\r\n\r\n")
        assert P.read_frame(sock).header["code"] == "bad_frame"
        assert sock.recv(1) == b""


def test_oversize_frame_refused(cfgdir):
    server, _backend = make_server(cfgdir, max_frame_bytes=1000)
    try:
        with client_for(server) as client:
            with pytest.raises(P.BridgeError) as info:
                client.colorize(40, 40, "rgba8", bytes(6400))
            assert info.value.code == "too_large"
            assert "this server's limit of 0.000954 MiB" in info.value.message  # 1000 bytes
        with authed(server) as sock:
            sock.sendall(P.PREFIX.pack(P.MAGIC, P.PROTOCOL_VERSION, 1 << 30))
            assert P.read_frame(sock).header["code"] == "too_large"
        with client_for(server) as client:
            assert client.colorize(10, 10, "gray8", bytes(100)).width == 10
    finally:
        server.shutdown()


def test_too_many_pixels(cfgdir):
    server, _ = make_server(cfgdir, max_pixels=100)
    try:
        with client_for(server) as client:
            with pytest.raises(P.BridgeError) as info:
                client.colorize(11, 10, "gray8", bytes(110))
            assert info.value.code == "too_large"
            assert client.hello()["limits"]["max_pixels"] == 100  # connection still usable
    finally:
        server.shutdown()


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"width": 4, "height": 4, "fmt": "gray8", "pixels": bytes(15)}, "bad_request"),
        ({"width": 0, "height": 4, "fmt": "gray8", "pixels": b""}, "bad_request"),
        (
            {"width": 4, "height": 4, "fmt": "gray8", "pixels": bytes(16), "model": "nope"},
            "unknown_model",
        ),
        (
            {"width": 4, "height": 4, "fmt": "gray8", "pixels": bytes(16), "temperature": -1},
            "bad_request",
        ),
        (
            {
                "width": 4,
                "height": 4,
                "fmt": "gray8",
                "pixels": bytes(16),
                "hints": [{"row": 9, "col": 0, "r": 1, "g": 2, "b": 3}],
            },
            "bad_request",
        ),
        (
            {
                "width": 4,
                "height": 4,
                "fmt": "gray8",
                "pixels": bytes(16),
                "hints": [{"row": 0, "col": 0, "r": 256, "g": 2, "b": 3}],
            },
            "bad_request",
        ),
        (
            {"width": 4, "height": 4, "fmt": "gray8", "pixels": bytes(16), "hint_layer": bytes(10)},
            "bad_request",
        ),
        (
            {
                "width": 4,
                "height": 4,
                "fmt": "gray8",
                "pixels": bytes(16),
                "result_format": "rgb32",
            },
            "bad_request",
        ),
    ],
)
def test_bad_requests_keep_connection(served, kwargs, code):
    server, backend = served
    with client_for(server) as client:
        args = [kwargs.pop(k) for k in ("width", "height", "fmt", "pixels")]
        with pytest.raises(P.BridgeError) as info:
            client.colorize(*args, **kwargs)
        assert info.value.code == code
        assert client.hello()["server"] == "tinct"
    assert not backend.calls


def test_unknown_type(served):
    server, _ = served
    with authed(server) as sock:
        reply = request(sock, {"type": "frobnicate", "id": "f"}).header
        assert (reply["code"], reply["id"]) == ("unknown_type", "f")
        assert request(sock, {"type": "hello"}).header["type"] == "hello"


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ({"format": ["gray8"]}, "bad_request"),
        ({"format": {"a": 1}}, "bad_request"),
        ({"width": "4"}, "bad_request"),
        ({"width": 2**40}, "bad_request"),
        ({"width": True}, "bad_request"),
        ({"model": ["fake"]}, "bad_request"),
        ({"model": "nope"}, "unknown_model"),
        ({"decoder": "larsson"}, "bad_request"),
        ({"decoder": 3}, "bad_request"),
        ({"result_format": ["rgb8"]}, "bad_request"),
        ({"temperature": "hot"}, "bad_request"),
        ({"temperature": 1e300}, "bad_request"),
        ({"mrf_iters": -1}, "bad_request"),
        ({"mrf_iters": 10**6}, "too_large"),
        ({"hints": {"row": 1}}, "bad_request"),
        ({"hints": [[1, 2]]}, "bad_request"),
        ({"hints": [{"row": 0, "col": 0, "r": 1.5, "g": 0, "b": 0}]}, "bad_request"),
        ({"hints": [{"row": 0, "col": 0, "r": 1, "g": 0, "b": 0}] * 5000}, "too_large"),
        (
            {
                "sections": {
                    "image": {"offset": 0, "size": 16},
                    "reference": {
                        "offset": 0,
                        "size": 16,
                        "width": 4,
                        "height": 4,
                        "format": ["gray8"],
                    },
                }
            },
            "bad_request",
        ),
        (
            {
                "sections": {
                    "image": {"offset": 0, "size": 16},
                    "hint_layer": {
                        "offset": 0,
                        "size": 16,
                        "width": 2,
                        "height": 2,
                        "format": "rgba8",
                    },
                }
            },
            "bad_request",
        ),
        ({"sections": {"image": {"offset": 0, "size": 8}}}, "bad_request"),
        ({"sections": {}}, "bad_request"),
        ({"id": 5}, "bad_request"),
        ({"id": "x" * 129}, "bad_request"),
    ],
)
def test_every_malformed_field_gets_its_code_and_keeps_the_connection(served, header, code):
    server, backend = served
    base = {"type": "colorize", "id": "r", "width": 4, "height": 4, "format": "gray8"}
    with authed(server) as sock:
        sections = None if "sections" in header else [("image", bytes(16))]
        h = {**base, **header}
        if sections is None:
            sock.sendall(raw_frame({**h, "payload_bytes": 16}, bytes(16)))
            reply = P.read_frame(sock).header
        else:
            reply = request(sock, h, sections).header
        assert reply["type"] == "error" and reply["code"] == code, reply
        assert len(reply["message"]) < 300
        assert request(sock, {"type": "hello"}).header["type"] == "hello"  # still open
    assert not backend.calls


# --------------------------------------------------------------------------- robustness


def test_slow_client_times_out_others_served(cfgdir):
    server, _ = make_server(cfgdir, read_timeout=0.4)
    try:
        slow = authed(server)
        slow.sendall(P.encode_frame({"type": "hello"})[:7])
        slow.settimeout(3)  # the server's read timeout (0.4 s) must come well before this
        with client_for(server) as client:  # served while the slow one stalls
            assert client.hello()["server"] == "tinct"
        reply = P.read_frame(slow).header
        assert reply["code"] == "timeout"
        assert slow.recv(1) == b""
        slow.close()
        with client_for(server) as client:
            assert client.hello()["server"] == "tinct"
    finally:
        server.shutdown()


def test_client_dies_mid_frame(served):
    server, backend = served
    frame = P.encode_frame(
        {"type": "colorize", "width": 100, "height": 100, "format": "gray8"},
        [("image", bytes(10000))],
    )
    for cut in (5, 30, len(frame) - 100):
        sock = authed(server)
        sock.sendall(frame[:cut])
        sock.close()
        sock = raw(server)  # and before the handshake is done
        sock.sendall(P.encode_frame({"type": "auth", "client_nonce": P.new_nonce()})[:cut])
        sock.close()
    with client_for(server) as client:
        assert client.colorize(100, 100, "gray8", bytes(10000)).width == 100
    assert len(backend.calls) == 1


def test_backend_exception_is_isolated(cfgdir):
    class Broken(FakeBackend):
        def colorize(self, job, progress):
            raise RuntimeError("model exploded")

    server, _ = make_server(cfgdir, backend=Broken())
    try:
        with client_for(server) as client:
            with pytest.raises(P.BridgeError) as info:
                client.colorize(2, 2, "gray8", bytes(4))
            assert info.value.code == "internal" and "model exploded" in info.value.message
            assert client.hello()["server"] == "tinct"
    finally:
        server.shutdown()


def test_a_failure_is_told_to_the_client_in_one_line(cfgdir, caplog):
    # the whole message went out: PyTorch's can hold a C++ backtrace, which GIMP showed
    class Broken(FakeBackend):
        def colorize(self, job, progress):
            raise RuntimeError("out of memory\nException raised from malloc at alloc.cpp:42\n"
                               "frame #0: c10::Error::Error(...)\n" + "x" * 1000)  # fmt: skip

    server, _ = make_server(cfgdir, backend=Broken())
    try:
        with client_for(server) as client, pytest.raises(P.BridgeError) as info:
            client.colorize(2, 2, "gray8", bytes(4))
    finally:
        server.shutdown()
    assert info.value.code == "internal"
    assert info.value.message == "RuntimeError: out of memory"
    assert "frame #0" in caplog.text  # the log keeps it all


def test_the_payload_limit_names_its_flag(cfgdir):
    server, _ = make_server(cfgdir, max_frame_bytes=20 << 20)
    try:
        with authed(server) as sock:
            sock.sendall(raw_frame({"type": "hello", "payload_bytes": 48_000_000}))
            reply = P.read_frame(sock).header
        assert reply["code"] == "too_large"
        assert reply["message"] == (  # it was "payload of 48000000 bytes exceeds the limit
            # of 20971520 bytes (20 MiB) (max_frame_bytes; tinct serve --max-frame-mb)"
            "the request is 45.8 MiB, more than this server's limit of 20 MiB: scale the "
            "image down or crop it, or whoever runs the server can raise the limit (tinct "
            "serve --max-frame-mb 46)"
        )
    finally:
        server.shutdown()


def test_a_header_of_countless_tiny_values_is_refused_unparsed(cfgdir):
    """Such a header is refused before it is parsed; as many hints as allowed still pass."""
    server, _ = make_server(cfgdir, max_hints=5000)
    try:
        limit = server.max_header_values
        with client_for(server) as client:
            assert client.hello()["limits"]["max_header_values"] == limit == 16 * 5000 + 4096
            hints = [{"row": k % 8, "col": k // 8 % 8, "r": 1, "g": 2, "b": 3, "size": 256}
                     for k in range(5000)]  # fmt: skip
            assert client.colorize(8, 8, "gray8", bytes(64), hints=hints).width == 8
        with authed(server) as sock:
            sock.sendall(raw_frame({"type": "hello", "id": "h", "pad": [[]] * limit}))
            reply = P.read_frame(sock).header
            assert reply["code"] == "too_large" and f"more than {limit} values" in reply["message"]
            assert sock.recv(1) == b""  # closed, as for an oversize header
        with client_for(server) as client:
            assert client.hello()["server"] == "tinct"
    finally:
        server.shutdown()


def test_client_strings_are_clipped_in_replies_and_escaped_in_the_log(cfgdir, caplog):
    backend = FakeBackend(delay=3.0, steps=60)
    server, _ = make_server(cfgdir, backend=backend, heartbeat=0.05)
    try:
        with authed(server) as sock, caplog.at_level("INFO", logger="tinct.bridge"):
            reply = request(sock, {"type": "x" * 100_000, "id": "big"}).header
            assert reply["code"] == "unknown_type" and len(reply["message"]) < 200
            for target in ("y" * 3000, ["job"], {"a": 1}, 5):
                reply = request(sock, {"type": "cancel", "id": "c", "request_id": target}).header
                assert reply["code"] == "bad_request" and '"request_id"' in reply["message"]
            evil = "evil\n2026-01-01 00:00:00,000 tinct.bridge.server INFO FORGED"
            start_job(server, sock, rid=evil)
            P.send_frame(sock, {"type": "cancel", "id": "c2", "request_id": [1] * 100})
            P.send_frame(sock, {"type": "cancel", "id": "c3"})
            replies = {}
            while evil not in replies:
                h = P.read_frame(sock).header
                if h["type"] != "progress":
                    replies[h.get("id")] = h
            assert replies["c2"]["code"] == "bad_request"
            assert replies["c3"]["found"] is True and replies[evil]["code"] == "cancelled"
    finally:
        server.shutdown()
    lines = [r.getMessage() for r in caplog.records]
    assert all("\n" not in line for line in lines), [x for x in lines if "\n" in x]
    assert all(len(line) < 1000 for line in lines)
    assert any("evil\\n2026" in line for line in lines)  # logged, escaped


def test_an_idle_connection_is_told_before_it_is_closed(cfgdir):
    server, _ = make_server(cfgdir, idle_timeout=0.3)
    try:
        with authed(server) as sock:
            sock.settimeout(3)
            reply = P.read_frame(sock).header
            assert (reply["type"], reply["code"]) == ("error", "timeout") and "id" not in reply
            assert "idle" in reply["message"] and "--idle-timeout" in reply["message"]
            assert sock.recv(1) == b""
        with client_for(server) as client:  # the next request reconnects by itself
            assert client.hello()["server"] == "tinct"
            first = client._sock
            time.sleep(0.8)
            assert client.hello()["server"] == "tinct"
            assert client.models()
            assert client._sock is not first
    finally:
        server.shutdown()


def test_the_failure_line_is_clipped():
    from tinct.bridge.connection import internal_message

    text = internal_message(ValueError("y" * 2000))
    assert len(text) == 500 and text.startswith("ValueError: yyy") and text.endswith("...")
    assert internal_message(KeyError()) == "KeyError"
