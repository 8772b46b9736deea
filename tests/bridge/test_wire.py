"""Unit tests of the wire format (tinct.bridge.wire), no sockets needed except socketpair."""

import ast
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from tinct.bridge import wire as P

ROOT = Path(__file__).resolve().parents[2]


def test_round_trip_with_sections():
    img = bytes(range(256)) * 3
    hint = b"\x01\x02\x03\x04" * 5
    data = P.encode_frame(
        {"type": "colorize", "width": 16, "token": "t", "note": "ünïcode"},
        [("image", img), ("hint_layer", hint, {"width": 5, "height": 1, "format": "rgba8"})],
    )
    assert data[:4] == P.MAGIC
    magic, version, _hlen = struct.unpack("<4sHI", data[:10])
    assert (magic, version) == (b"TNCT", P.PROTOCOL_VERSION)
    frame = P.decode_frame(data)
    assert frame.type == "colorize"
    assert frame.header["note"] == "ünïcode"
    assert frame.header["payload_bytes"] == len(img) + len(hint)
    assert bytes(frame.section("image")) == img
    assert bytes(frame.section("hint_layer")) == hint
    assert frame.header["sections"]["hint_layer"]["width"] == 5
    assert frame.section("reference") is None


def test_empty_payload_round_trip():
    frame = P.decode_frame(P.encode_frame({"type": "hello"}))
    assert frame.header == {"type": "hello", "payload_bytes": 0}
    assert frame.payload == b""


def test_version_mismatch_names_both_versions():
    data = bytearray(P.encode_frame({"type": "hello"}))
    struct.pack_into("<H", data, 4, 7)
    with pytest.raises(P.VersionMismatch) as info:
        P.decode_frame(bytes(data))
    assert info.value.code == "version_mismatch"
    assert "7" in str(info.value) and str(P.PROTOCOL_VERSION) in str(info.value)
    assert (info.value.remote, info.value.local) == (7, P.PROTOCOL_VERSION)


def test_bad_magic():
    data = b"XXXX" + P.encode_frame({"type": "hello"})[4:]
    with pytest.raises(P.ProtocolError) as info:
        P.decode_frame(data)
    assert info.value.code == "bad_frame"


@pytest.mark.parametrize("cut", [0, 3, 9, 10, 15, -1])
def test_truncated_frame(cut):
    data = P.encode_frame({"type": "colorize"}, [("image", b"abcdef")])
    with pytest.raises(P.ConnectionClosed) as info:
        P.decode_frame(data[:cut])
    assert info.value.mid_frame


def test_trailing_bytes_rejected():
    with pytest.raises(P.ProtocolError):
        P.decode_frame(P.encode_frame({"type": "hello"}) + b"x")


def test_oversize_header_rejected_before_reading_it():
    prefix = P.PREFIX.pack(P.MAGIC, P.PROTOCOL_VERSION, P.DEFAULT_MAX_HEADER_BYTES + 1)
    with pytest.raises(P.ProtocolError) as info:
        P.decode_frame(prefix)
    assert info.value.code == "too_large"


def test_oversize_payload_rejected():
    data = P.encode_frame({"type": "colorize"}, [("image", b"x" * 100)])
    with pytest.raises(P.ProtocolError) as info:
        P.decode_frame(data, max_frame_bytes=99)
    assert info.value.code == "too_large"
    assert "99" in info.value.message


@pytest.mark.parametrize(
    "header",
    [
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'{"no_type": 1}',
        b'{"type": "x", "payload_bytes": -1}',
        b'{"type": "x", "payload_bytes": "3"}',
        b'{"type": "x", "payload_bytes": 2, "sections": {"a": {"offset": 1, "size": 5}}}',
        b'{"type": "x", "payload_bytes": 2, "sections": {"a": {"offset": "0", "size": 1}}}',
        b'{"type": "x", "payload_bytes": 2, "sections": [1]}',
    ],
)
def test_malformed_headers(header):
    data = P.PREFIX.pack(P.MAGIC, P.PROTOCOL_VERSION, len(header)) + header + b"\0\0"
    with pytest.raises(P.ProtocolError) as info:
        P.decode_frame(data)
    assert info.value.code == "bad_frame"


def test_socket_send_and_read():
    a, b = socket.socketpair()
    with a, b:
        payload = bytearray(b"\x07" * 100_000)
        P.send_frame(a, {"type": "result", "width": 1}, [("image", memoryview(payload))])
        frame = P.read_frame(b)
        assert frame.header["width"] == 1
        assert bytes(frame.section("image")) == bytes(payload)
        a.close()
        with pytest.raises(P.ConnectionClosed) as info:
            P.read_frame(b)
        assert not info.value.mid_frame


def test_read_frame_eof_mid_frame():
    a, b = socket.socketpair()
    with a, b:
        a.sendall(P.encode_frame({"type": "x"}, [("image", b"12345")])[:-2])
        a.close()
        with pytest.raises(P.ConnectionClosed) as info:
            P.read_frame(b)
        assert info.value.mid_frame


def test_error_header():
    assert P.error_header("busy", "m", "id1") == {
        "type": "error",
        "code": "busy",
        "message": "m",
        "id": "id1",
    }


def test_a_path_that_cannot_be_bridge_json_says_to_check_it(monkeypatch, tmp_path):
    monkeypatch.setenv("TINCT_CONFIG_DIR", str(tmp_path))
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(P.ServerNotRunning) as info:  # GIMP's Token file set to a folder
        P.read_bridge_config(str(folder))
    assert info.value.message == (
        f"cannot read {folder} (Is a directory). Check the path: it should be the bridge.json "
        f"file that tinct serve writes ({tmp_path / 'bridge.json'})"
    )
    (tmp_path / "bridge.json").mkdir()  # the default path itself is in the way
    with pytest.raises(P.ServerNotRunning) as info:
        P.read_bridge_config()
    assert info.value.message.endswith("Remove it, then start the server with: tinct serve")


def test_config_dir_override(monkeypatch, tmp_path):
    monkeypatch.setenv("TINCT_CONFIG_DIR", str(tmp_path))
    assert P.bridge_config_path() == str(tmp_path / "bridge.json")
    with pytest.raises(P.ServerNotRunning) as info:
        P.read_bridge_config()
    assert info.value.message == (  # as a GIMP user reads it once the server has stopped
        f"the tinct server is not running (there is no {tmp_path / 'bridge.json'}, which it "
        "writes). Start the server with: tinct serve"
    )
    (tmp_path / "bridge.json").mkdir()
    with pytest.raises(P.ServerNotRunning, match=r"cannot read .*bridge\.json \(Is a directory\)"):
        P.read_bridge_config()
    (tmp_path / "bridge.json").rmdir()
    (tmp_path / "bridge.json").write_text(json.dumps({"port": 5, "token": "x"}))
    assert P.read_bridge_config()["port"] == 5
    (tmp_path / "bridge.json").write_text("{")
    with pytest.raises(P.ServerNotRunning):
        P.read_bridge_config()


def test_config_dir_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("TINCT_CONFIG_DIR", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setattr(sys, "platform", "linux")
    assert P.config_dir() == str(tmp_path / "tinct")


def test_wire_package_is_stdlib_only_relative_and_py38():
    """The plug-in gets the package as it is: only the standard library and itself."""
    files = sorted((ROOT / "src/tinct/bridge/wire").glob("*.py"))
    assert len(files) >= 5
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), feature_version=(3, 8))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # a sibling module of the package
                    continue
                names = {node.module.split(".")[0]}
            else:
                continue
            assert names <= sys.stdlib_module_names, (path.name, names)


def test_no_committed_copy_of_the_protocol():
    """One copy: the plug-in folder in the package holds the plug-in's own files only."""
    folder = ROOT / "src/tinct/bridge/gimp_plugin"
    assert sorted(p.name for p in folder.iterdir() if p.name != "__pycache__") == [
        "tinct-colorize.py",
        "tinct_layers.py",  # the image side (pixels out, result layer in), not the protocol
    ]
    assert not (ROOT / "gimp_bridge").exists()
    assert not (ROOT / "src/tinct/gimp_plugin").exists()


def test_plugin_layout():
    script = ROOT / "src/tinct/bridge/gimp_plugin/tinct-colorize.py"
    assert script.is_file()
    assert script.read_text().startswith("#!/usr/bin/env python3\n")
    assert script.stat().st_mode & 0o111
    ast.parse(script.read_text(), feature_version=(3, 8))
    text = script.read_text()
    for legacy in ("add_argument_from_property", "__gproperties__", "Gimp.RGB", "run_procedure("):
        assert legacy not in text, f"2.99-era call {legacy} in the plug-in"


# --------------------------------------------------------------------------- bounded JSON


@pytest.mark.parametrize(
    ("header", "needle"),
    [
        (b'{"type": "x", "a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "deeper"),
        (b'{"type": "x", "a": ' + b"[" * 40 + b"]" * 40 + b"}", "deeper"),
        (b'{"type": "x", "a": ' + b'{"b": ' * 40 + b"1" + b"}" * 40 + b"}", "deeper"),
        (b'{"type": "x", "token": "\\ud800"}', "unicode"),
        (b'{"type": "x", "\\udfff": 1}', "unicode"),
        (b'{"type": "x", "n": ' + b"9" * 5000 + b"}", "digits"),
        (b'{"type": "x", "n": 1e999}', "range"),
        (b'{"type": "x", "n": NaN}', "NaN"),
        (b'{"type": "x", "n": -Infinity}', "Infinity"),
        (b'{"type": "x"} trailing', "JSON"),
    ],
    ids=["deep-100k", "deep-40", "deep-objects", "surrogate", "surrogate-key", "huge-int",
         "inf-float", "nan", "infinity", "trailing"],
)  # fmt: skip
def test_hostile_json_headers_are_bad_frames(header, needle):
    data = P.PREFIX.pack(P.MAGIC, P.PROTOCOL_VERSION, len(header)) + header
    with pytest.raises(P.ProtocolError) as info:
        P.decode_frame(data)
    assert info.value.code == "bad_frame"
    assert needle in info.value.message


def test_sane_json_passes_the_bounds():
    nested = {"type": "x", "a": [[[[{"b": [1, 2.5, "ü", "\U0001f600"]}]]]], "n": 2**64}
    assert P.decode_frame(P.encode_frame(nested)).header["a"] == nested["a"]


_TINY = 4 * 2**20 - 64  # a header just under DEFAULT_MAX_HEADER_BYTES


@pytest.mark.parametrize(
    "raw",
    [
        b"[" + b"0," * (_TINY // 2) + b"0]",
        b"[" + b"[]," * (_TINY // 3) + b"[]]",
        b"[" + b"{}," * (_TINY // 3) + b"{}]",
        b'{"a":' * 30 + b"[" + b"[[[[[[0]]]]]]," * (_TINY // 14) + b"0]" + b"}" * 30,
        b'["' + b'","'.join([b"ab"] * (_TINY // 5)) + b'"]',
        b"[" + b"[" * (_TINY // 2) + b"]" * (_TINY // 2) + b"]",
    ],
    ids=["zeros", "empty-arrays", "empty-objects", "nested-arrays", "short-strings", "deep"],
)
def test_a_header_of_tiny_values_is_refused_before_it_is_parsed(raw):
    """Parsed, 4 MiB of tiny values would cost ~40x that (and seconds of CPU)."""
    tracemalloc.start()
    try:
        with pytest.raises(P.ProtocolError) as info:
            P.loads_header(raw)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.code == "too_large", info.value.message
    assert f"more than {P.DEFAULT_MAX_HEADER_VALUES} values" in info.value.message
    assert peak < 3 * len(raw)


def test_the_value_bound_passes_real_headers_and_counts_no_strings():
    hint = {"row": 8191, "col": 8191, "r": 255, "g": 255, "b": 255, "size": 256}
    header = {"type": "colorize", "id": "x" * 128, "width": 8192, "height": 8192,
              "format": "rgba16", "hints": [hint] * P.DEFAULT_MAX_HINTS}  # fmt: skip
    assert P.decode_frame(P.encode_frame(header)).header["hints"] == header["hints"]
    many = P.DEFAULT_MAX_HEADER_VALUES + 10
    texts = {"type": "x", "a": "," * many, "b": '\\",[{' * many, "c": ['"[,'] * 1000}
    assert P.decode_frame(P.encode_frame(texts)).header == {**texts, "payload_bytes": 0}
    zeros = json.dumps({"type": "x", "a": [0] * many}).encode()
    assert P.loads_header(zeros, max_values=many + 2)["a"] == [0] * many
    with pytest.raises(P.ProtocolError, match="values"):
        P.loads_header(zeros)
    deep = b'{"type": "x", "a": ' + b"[0," * many + b"0" + b"]" * many + b"}"
    with pytest.raises(P.ProtocolError, match="deeper") as info:
        P.loads_header(deep)  # deep as well: told so
    assert info.value.code == "bad_frame"


# --------------------------------------------------------------------------- reading


def _rss():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmRSS:"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_a_declared_size_costs_only_what_arrives():
    """A header that declares 700 MiB and sends 10 bytes costs about nothing, not 700 MiB."""
    a, b = socket.socketpair()
    with a, b:
        a.sendall(_raw_header(700 * 2**20) + b"0123456789")
        a.shutdown(socket.SHUT_WR)
        rss0 = _rss()
        tracemalloc.start()
        try:
            header = P.read_header(b, max_frame_bytes=P.DEFAULT_MAX_FRAME_BYTES)
            with pytest.raises(P.ConnectionClosed) as info:
                P.read_payload(b, header)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        growth = _rss() - rss0
    assert info.value.mid_frame and "10 of 734003200" in str(info.value)
    assert peak < 1 << 20 and growth < 16 << 20


@pytest.mark.parametrize("size", [0, 1000, (1 << 20) + 1, 5_000_003])
def test_payloads_of_every_size_arrive_whole(size):
    a, b = socket.socketpair()
    data = (bytes(range(256)) * (size // 256 + 1))[:size]
    with a, b:
        t = threading.Thread(target=P.send_frame, args=(a, {"type": "x"}, [("p", data)]))
        t.start()
        frame = P.read_frame(b)
        t.join()
    assert bytes(frame.section("p")) == data


def test_deadline_bounds_the_whole_frame_not_each_recv():
    a, b = socket.socketpair()
    data = P.encode_frame({"type": "hello", "pad": "x" * 100})

    def trickle():
        for i in range(len(data)):  # one byte every 50 ms: each recv is quick
            try:
                a.sendall(data[i : i + 1])
            except OSError:
                return
            time.sleep(0.05)

    with a, b:
        b.settimeout(10)
        t = threading.Thread(target=trickle, daemon=True)
        t.start()
        with pytest.raises(socket.timeout):  # the whole frame would take longer than 0.5 s
            P.read_frame(b, deadline=time.monotonic() + 0.5)
        assert b.gettimeout() == 10  # restored


def _raw_header(payload_bytes):
    raw = json.dumps({"type": "x", "payload_bytes": payload_bytes}).encode()
    return P.PREFIX.pack(P.MAGIC, P.PROTOCOL_VERSION, len(raw)) + raw


# --------------------------------------------------------------------------- handshake


def test_auth_proofs_depend_on_role_token_and_both_nonces():
    c, s = P.new_nonce(), P.new_nonce()
    assert P.is_nonce(c) and c != s
    base = P.auth_proof("tok", "server", c, s)
    assert len(base) == 64
    assert base != P.auth_proof("tok", "client", c, s)
    assert base != P.auth_proof("tok2", "server", c, s)
    assert base != P.auth_proof("tok", "server", s, c)
    assert P.proof_matches(base, base)
    assert not P.proof_matches(base.upper(), base)
    for bad in (None, 5, base[:-1], "é" * 64, ["x"]):
        assert not P.proof_matches(bad, base)
    for bad in ("a" * 63, "A" * 64, "g" * 64, 7, None):
        assert not P.is_nonce(bad)


def _fake_server(sock, token, tamper=None):
    """Answer one handshake on ``sock`` like the real server (tamper: edit the challenge)."""
    first = P.read_frame(sock).header
    nonce = P.new_nonce()
    challenge = {
        "type": "auth_challenge",
        "server_nonce": nonce,
        "server_proof": P.auth_proof(token, "server", first["client_nonce"], nonce),
    }
    if tamper:
        tamper(challenge)
    P.send_frame(sock, challenge)
    try:
        second = P.read_frame(sock).header
    except P.ConnectionClosed:
        return first, None
    P.send_frame(sock, {"type": "auth_ok"})
    return first, second


def test_client_handshake_against_a_fake_server():
    a, b = socket.socketpair()
    with a, b:
        box = {}
        t = threading.Thread(target=lambda: box.update(r=_fake_server(b, "secret")))
        t.start()
        assert P.client_handshake(a, "secret", time.monotonic() + 5)["type"] == "auth_ok"
        t.join()
    first, second = box["r"]
    assert first["type"] == "auth" and P.is_nonce(first["client_nonce"])
    assert "secret" not in json.dumps([first, second])
    assert second["client_proof"] != "secret" and len(second["client_proof"]) == 64


@pytest.mark.parametrize(
    "tamper",
    [
        lambda ch: ch.update(server_proof="0" * 64),
        lambda ch: ch.update(server_nonce="1" * 64),
        lambda ch: ch.pop("server_proof"),
        lambda ch: ch.update(type="auth_ok"),
    ],
    ids=["guessed-proof", "changed-nonce", "no-proof", "skips-challenge"],
)
def test_client_sends_nothing_to_a_server_that_cannot_prove_the_token(tamper):
    a, b = socket.socketpair()
    with a, b:
        box = {}
        t = threading.Thread(target=lambda: box.update(r=_fake_server(b, "secret", tamper)))
        t.start()
        with pytest.raises(P.ServerUnverified) as info:
            P.client_handshake(a, "secret", time.monotonic() + 5)
        a.close()
        t.join()
    assert info.value.code == "unauthorized" and "tinct serve" in info.value.message
    assert box["r"][1] is None  # no auth_response was ever sent


# --------------------------------------------------------------------------- stale bridge.json


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.skipif(os.name != "posix", reason="the pid check is POSIX only")
def test_bridge_json_of_a_dead_server_is_stale(tmp_path):
    path = tmp_path / "bridge.json"
    ident = P.process_identity()
    assert ident["pid"] == os.getpid() and ident["started"] > 0
    path.write_text(json.dumps({"port": 5, "token": "t", **ident}))
    assert P.read_bridge_config(str(path))["port"] == 5  # this process: alive
    path.write_text(json.dumps({"port": 5, "token": "t", **ident, "pid": _dead_pid()}))
    with pytest.raises(P.ServerNotRunning) as info:
        P.read_bridge_config(str(path))
    assert "stale" in info.value.message and "tinct serve" in info.value.message
    assert P.read_bridge_config(str(path), check_process=False)["port"] == 5


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")
def test_reused_pid_and_other_namespaces():
    ident = P.process_identity()
    assert ident["pid_start"] and ident["pid_ns"].startswith("pid:")
    assert not P.server_gone(ident)
    assert P.server_gone({**ident, "pid_start": "1"})  # the pid now runs another process
    # another PID namespace (a Flatpak GIMP, a container): cannot tell, so not stale
    assert not P.server_gone({**ident, "pid": _dead_pid(), "pid_ns": "pid:[1]"})
    assert not P.server_gone({"pid": "12"}) and not P.server_gone({})


# --------------------------------------------------------------------------- client replies


def _scripted(script):
    """A BridgeClient wired to a socketpair whose far end runs ``script(sock)`` in a thread."""
    a, b = socket.socketpair()
    client = P.BridgeClient(port=1, token="t", timeout=5)
    client._sock = a  # already "authenticated"
    errors = []

    def run():
        try:
            script(b)
        except Exception as exc:  # pragma: no cover - reported by the test
            errors.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return client, b, t, errors


def _hello(rid):
    return {"type": "hello", "id": rid, "protocol_version": P.PROTOCOL_VERSION}


def test_late_replies_of_a_cancelled_request_are_dropped():
    def script(sock):
        req = P.read_frame(sock).header
        rid = req["id"]
        P.send_frame(sock, {"type": "progress", "id": rid, "fraction": 0.1})
        cancel = P.read_frame(sock).header
        assert cancel["type"] == "cancel" and cancel["request_id"] == rid
        # the result raced the cancel, then the cancel is acknowledged: both late
        P.send_frame(sock, {"type": "result", "id": rid, "width": 2, "height": 1,
                            "format": "rgb8"}, [("image", b"RESULT")])  # fmt: skip
        P.send_frame(sock, {"type": "cancel_ack", "id": cancel["id"], "found": False})
        P.send_frame(sock, {"type": "progress", "id": rid, "fraction": 0.9})
        hello = P.read_frame(sock).header
        P.send_frame(sock, _hello(hello["id"]))

    client, far, t, errors = _scripted(script)
    with client, far:
        with pytest.raises(P.BridgeError) as info:
            client.colorize(2, 1, "gray8", b"\0\0", progress=lambda f, m: False)
        assert info.value.code == "cancelled"
        assert client.hello()["type"] == "hello"  # the same connection, in step
        t.join(5)
    assert not errors


def test_reply_to_an_unknown_request_is_a_protocol_error():
    def script(sock):
        P.read_frame(sock)
        P.send_frame(sock, _hello("someone-else"))

    client, far, t, errors = _scripted(script)
    with client, far:
        with pytest.raises(P.BridgeError) as info:
            client.hello()
        assert info.value.code == "bad_frame" and client._sock is None
        t.join(5)
    assert not errors


def test_connection_level_error_closes_request_error_keeps():
    def script(sock):
        rid = P.read_frame(sock).header["id"]
        P.send_frame(sock, P.error_header("bad_request", "no", rid))
        rid = P.read_frame(sock).header["id"]
        P.send_frame(sock, _hello(rid))
        P.read_frame(sock)
        P.send_frame(sock, P.error_header("timeout", "too slow"))  # no id

    client, far, t, errors = _scripted(script)
    with client, far:
        with pytest.raises(P.BridgeError, match="bad_request"):
            client.hello()
        assert client._sock is not None
        assert client.hello()["type"] == "hello"
        with pytest.raises(P.BridgeError, match="timeout"):
            client.hello()
        assert client._sock is None
        t.join(5)
    assert not errors


def test_progress_callback_that_raises_closes_the_connection():
    def script(sock):
        rid = P.read_frame(sock).header["id"]
        P.send_frame(sock, {"type": "progress", "id": rid, "fraction": 0.1})

    client, far, t, errors = _scripted(script)
    with client, far:

        def boom(f, m):
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            client.colorize(1, 1, "gray8", b"\0", progress=boom)
        assert client._sock is None  # the next request reconnects
        t.join(5)
    assert not errors


def test_client_sends_local_hints_only_when_asked():
    headers = []

    def script(sock):
        for _ in range(2):
            req = P.read_frame(sock).header
            headers.append(req)
            P.send_frame(sock, {"type": "result", "id": req["id"], "width": 1, "height": 1,
                                "format": "rgb8"}, [("image", b"\0\0\0")])  # fmt: skip

    client, far, t, errors = _scripted(script)
    with client, far:
        client.colorize(1, 1, "gray8", b"\0", local_hints=True)
        client.colorize(1, 1, "gray8", b"\0")
        t.join(5)
    assert not errors
    assert headers[0]["local_hints"] is True
    assert "local_hints" not in headers[1]  # as before the field existed: old servers agree


# --------------------------------------------------------------------------- result warnings


def test_bounded_warnings_keeps_distinct_texts_within_the_bounds():
    long = "nearly black " * 100
    got = P.bounded_warnings(["  a  ", "a", "", "   ", 7, None, long, "b"])
    assert got[:1] == ["a"] and got[2] == "b" and len(got) == 3  # distinct, stripped, in order
    assert len(got[1]) == P.MAX_WARNING_CHARS and got[1].endswith("...")
    many = P.bounded_warnings(f"note {i}" for i in range(100))
    assert many == [f"note {i}" for i in range(P.MAX_RESULT_WARNINGS)]
    assert P.bounded_warnings(["x" * 50], max_count=1, max_chars=10) == ["x" * 7 + "..."]
    # not a list of texts (an old server sends none; a broken one anything): no warnings
    for value in (None, "one text", b"bytes", 3, {"a": "b"}, True):
        assert P.bounded_warnings(value) == []


def _result(rid, **extra):
    return {"type": "result", "id": rid, "width": 1, "height": 1, "format": "rgb8", **extra}


def test_client_returns_the_result_warnings_bounded_and_none_from_an_old_server():
    sent = [
        {"warnings": ["the input maps to nearly black", "the input maps to nearly black"]},
        {},  # a server that predates the field
        {"warnings": [f"w{i}" for i in range(50)] + ["y" * 100_000]},
        {"warnings": "not a list"},
    ]

    def script(sock):
        for extra in sent:
            rid = P.read_frame(sock).header["id"]
            P.send_frame(sock, _result(rid, **extra), [("image", b"\0\0\0")])

    client, far, t, errors = _scripted(script)
    with client, far:
        got = [client.colorize(1, 1, "gray8", b"\0").warnings for _ in sent]
        t.join(5)
    assert not errors
    assert got[0] == ["the input maps to nearly black"]
    assert got[1] == [] and got[3] == []
    assert got[2] == [f"w{i}" for i in range(P.MAX_RESULT_WARNINGS)]


def test_a_result_with_warnings_decodes_for_a_client_that_ignores_them():
    """The field is optional: the frame, its sections and its other fields are as before."""
    data = P.encode_frame(_result("r", warnings=["a note"]), [("image", b"\1\2\3")])
    frame = P.decode_frame(data)
    assert frame.type == "result" and bytes(frame.section("image")) == b"\1\2\3"
    result = P.ColorizeResult(1, 1, "rgb8", frame.payload, frame.header)
    assert result.warnings == ["a note"] and result.header["width"] == 1
    assert P.ColorizeResult(1, 1, "rgb8", b"", {"type": "result"}).warnings == []
