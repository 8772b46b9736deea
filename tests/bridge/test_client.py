"""BridgeClient against the real server: what the client reports when the server goes away."""

import threading

import pytest

from bridge_helpers import client_for, make_server
from tinct.bridge import wire as P
from tinct.bridge.wire import client as client_module


@pytest.mark.timeout(60)
def test_shutdown_mid_upload_reports_the_servers_shutting_down_frame(cfgdir, monkeypatch):
    """The server stops while the client is still sending a large image: the client reads
    the server's last frame and reports ``shutting_down``, not "connection lost"."""
    server, backend = make_server(cfgdir)
    real_send = P.send_frame
    half_sent = threading.Event()

    def send_in_two_halves(sock, header, sections=None):
        if header.get("type") != "colorize":
            return real_send(sock, header, sections)
        data = P.encode_frame(header, sections)
        cut = len(data) // 4
        sock.sendall(data[:cut])
        half_sent.set()
        server.shutdown()  # the server stops while the upload is under way
        sock.sendall(data[cut:])

    monkeypatch.setattr(client_module, "send_frame", send_in_two_halves)
    side = 2048
    try:
        with client_for(server) as client:
            client.hello()
            with pytest.raises(P.BridgeError) as err:
                client.colorize(side, side, "rgba8", bytes(side * side * 4))
    finally:
        server.shutdown()
    assert half_sent.is_set()
    assert err.value.code == P.E_SHUTTING_DOWN, err.value.message
    assert "shutting down" in err.value.message
    assert not backend.calls


@pytest.mark.timeout(60)
def test_a_frame_over_the_servers_limit_is_refused_with_its_message(cfgdir):
    """The server refuses the frame at its header and closes while the client still sends
    the payload: the client reports the server's ``too_large`` and the limit it names."""
    server, backend = make_server(cfgdir, max_frame_bytes=1 << 20)
    side = 2048
    try:
        with client_for(server) as client:
            with pytest.raises(P.BridgeError) as err:
                client.colorize(side, side, "rgba8", bytes(side * side * 4))
            assert client.hello()["server"] == "tinct"  # and the client can go on
    finally:
        server.shutdown()
    assert err.value.code == P.E_TOO_LARGE, err.value.message
    assert "max-frame-mb" in err.value.message
    assert not backend.calls
