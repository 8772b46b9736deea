"""The server-wide budget of payloads held at once (tinct.bridge.payload_budget).

Every payload was bounded by ``max_frame_bytes`` alone, so connections that each
uploaded a large request held their sum: four authenticated uploads of 512 MiB held
one byte short took a real ``tinct serve`` from 266 MiB to 2.3 GiB, and 32 of
800 MiB would be 25 GiB.
"""

import time

import pytest

from bridge_helpers import authed, client_for, make_server, raw_frame
from tinct.bridge import wire as P
from tinct.bridge.payload_budget import EXEMPT_BYTES, PayloadBudget

MIB = 1024 * 1024


def test_reservations_add_up_to_the_limit_and_small_payloads_are_exempt():
    budget = PayloadBudget(20 * MIB)
    assert budget.reserve(EXEMPT_BYTES) == 0  # no reservation, never refused
    first = budget.reserve(12 * MIB)
    assert first == 12 * MIB and budget.used == 12 * MIB
    with pytest.raises(P.ProtocolError) as info:
        budget.reserve(9 * MIB)
    assert info.value.code == P.E_BUSY
    assert "holds 12 MiB of other requests, and this one (9 MiB)" in info.value.message
    assert "past its limit of 20 MiB for all requests at once" in info.value.message
    assert budget.used == 12 * MIB  # a refusal reserves nothing
    assert budget.reserve(8 * MIB) == 8 * MIB  # what fits still does
    budget.release(first)
    budget.release(8 * MIB)
    assert budget.used == 0
    assert budget.reserve(20 * MIB) == 20 * MIB  # one payload of the whole limit fits


def _colorize_header(side, rid):
    size = side * side
    return {"type": "colorize", "id": rid, "width": side, "height": side, "format": "gray8",
            "sections": {"image": {"offset": 0, "size": size}}, "payload_bytes": size}  # fmt: skip


def _wait_for(predicate, seconds=30.0):
    end = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


@pytest.mark.timeout(120)
def test_uploads_beyond_the_budget_are_busy_and_the_budget_comes_back(cfgdir):
    side = 2900  # 8.0 MiB of gray8: over the exempt 4 MiB
    size = side * side
    server, backend = make_server(
        cfgdir, max_frame_bytes=10 * MIB, max_held_bytes=12 * MIB, read_timeout=30.0
    )
    assert server.payload_budget.limit == 12 * MIB
    try:
        with client_for(server) as client:
            assert client.hello()["limits"]["max_held_bytes"] == 12 * MIB
        held = authed(server)  # uploads all but the last byte, and holds it
        held.sendall(raw_frame(_colorize_header(side, "held"), bytes(size - 1)))
        _wait_for(lambda: server.payload_budget.used == size)
        with client_for(server) as client:
            with pytest.raises(P.BridgeError) as info:
                client.colorize(side, side, "gray8", bytes(size))
            assert info.value.code == P.E_BUSY
            assert "holds 8.02 MiB of other requests" in info.value.message
            assert "limit of 12 MiB for all requests at once" in info.value.message
            assert client.colorize(8, 8, "gray8", bytes(64)).width == 8  # small ones pass
        held.close()  # gone mid-frame: its reservation is given back
        _wait_for(lambda: server.payload_budget.used == 0)
        with client_for(server) as client:
            res = client.colorize(side, side, "gray8", bytes(size))
            assert (res.width, res.height) == (side, side)
        assert server.payload_budget.used == 0  # given back once the result was sent
    finally:
        server.shutdown()
    assert [job.request_id for job in backend.calls][-1] != "held"
