"""Unit tests of the wire format (tinct.protocol), no sockets needed except socketpair."""

import ast
import json
import socket
import struct
from pathlib import Path

import pytest

from tinct import protocol as P

ROOT = Path(__file__).resolve().parents[1]


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


def test_config_dir_override(monkeypatch, tmp_path):
    monkeypatch.setenv("TINCT_CONFIG_DIR", str(tmp_path))
    assert P.bridge_config_path() == str(tmp_path / "bridge.json")
    with pytest.raises(P.ServerNotRunning) as info:
        P.read_bridge_config()
    assert "tinct serve" in str(info.value)
    (tmp_path / "bridge.json").write_text(json.dumps({"port": 5, "token": "x"}))
    assert P.read_bridge_config()["port"] == 5
    (tmp_path / "bridge.json").write_text("{")
    with pytest.raises(P.ServerNotRunning):
        P.read_bridge_config()


def test_config_dir_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("TINCT_CONFIG_DIR", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setattr(P.sys, "platform", "linux")
    assert P.config_dir() == str(tmp_path / "tinct")


def test_protocol_module_is_stdlib_only_and_py38():
    src = (ROOT / "src/tinct/protocol.py").read_text(encoding="utf-8")
    tree = ast.parse(src, feature_version=(3, 8))
    allowed = {"__future__", "contextlib", "hashlib", "hmac", "json", "os", "socket", "struct"}
    allowed |= {"sys", "time", "uuid"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert {a.name.split(".")[0] for a in node.names} <= allowed
        elif isinstance(node, ast.ImportFrom):
            assert node.module.split(".")[0] in allowed


def test_gimp_client_is_a_byte_identical_copy():
    """One source of truth: the plug-in's tinct_client.py == tinct/protocol.py."""
    client = ROOT / "gimp_bridge/tinct-colorize/tinct_client.py"
    assert client.read_bytes() == (ROOT / "src/tinct/protocol.py").read_bytes(), (
        "run: cp src/tinct/protocol.py gimp_bridge/tinct-colorize/tinct_client.py"
    )


def test_plugin_layout():
    folder = ROOT / "gimp_bridge/tinct-colorize"
    script = folder / "tinct-colorize.py"
    assert script.is_file()
    assert script.read_text().startswith("#!/usr/bin/env python3\n")
    assert script.stat().st_mode & 0o111
    ast.parse(script.read_text(), feature_version=(3, 8))
    text = script.read_text()
    for legacy in ("add_argument_from_property", "__gproperties__", "Gimp.RGB", "run_procedure("):
        assert legacy not in text, f"2.99-era call {legacy} in the plug-in"
