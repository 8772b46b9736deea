"""bridge.json read by a client or by the server removing it: a small regular file only."""

from __future__ import annotations

import json
import os

import pytest

from tinct.bridge import wire as P
from tinct.bridge.config import remove_bridge_config, write_bridge_config
from tinct.bridge.wire.config import MAX_CONFIG_BYTES


def _promptly(fn, *args):
    """Run ``fn(*args)``; fail (not hang) if it is still waiting after 5 s."""
    from engine_helpers import within

    return within(5, fn, *args)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_for_bridge_json_is_refused_at_once(tmp_path):
    # open() of a FIFO waits for a writer: a client (GIMP) or a server's shutdown hung there
    path = tmp_path / "bridge.json"
    os.mkfifo(path)
    with pytest.raises(P.ServerNotRunning, match=r"cannot read .* \(not a regular file\)"):
        _promptly(P.read_bridge_config, str(path))
    _promptly(remove_bridge_config, path, "tok")
    assert path.exists()  # not ours: left alone


def test_a_large_bridge_json_is_not_read(tmp_path, monkeypatch):
    # json.load read the whole file, whatever its size
    path = write_bridge_config(tmp_path / "bridge.json", "127.0.0.1", 5, "tok")
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "pad": "x" * MAX_CONFIG_BYTES}))
    with pytest.raises(P.ServerNotRunning, match=r"\(\d+ bytes, more than 65536\)"):
        P.read_bridge_config(str(path), check_process=False)
    read = []
    monkeypatch.setattr(os, "read", lambda fd, n: read.append(n) or b"")
    remove_bridge_config(path, "tok")
    assert path.exists() and not read  # refused by its size, before a byte was read
    monkeypatch.undo()
    path.write_text(json.dumps(data))
    remove_bridge_config(path, "other")
    assert path.exists()  # another server's token
    remove_bridge_config(path, "tok")
    assert not path.exists()


def test_a_token_file_typed_with_a_tilde_or_blanks_is_found(tmp_path, monkeypatch):
    # GIMP's Token file box: "~/.config/tinct/other.json" was taken literally, and the
    # plug-in said the server was not running ("there is no ~/.config/...") while it ran
    monkeypatch.setenv("HOME", str(tmp_path))
    write_bridge_config(tmp_path / "other.json", "127.0.0.1", 5, "tok")
    for typed in ("~/other.json", f"  {tmp_path / 'other.json'} \n"):
        assert P.read_bridge_config(typed, check_process=False)["token"] == "tok"
    with pytest.raises(P.ServerNotRunning, match="there is no "):
        P.read_bridge_config("~/missing.json", check_process=False)
