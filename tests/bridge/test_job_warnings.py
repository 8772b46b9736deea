"""What the engine warns about a served request reaches its client (tinct.bridge.job_warnings).

The warnings are caught while the job runs, worded for a bridge client (its data named
by the request's precision, no normalisation advice: the GIMP plug-in has no such
control), bounded, sent in the ``result`` frame's optional ``"warnings"`` field and
returned by ``BridgeClient``.
"""

import logging
import threading
import warnings

import numpy as np
import pytest

from bridge_helpers import FakeBackend, authed, client_for, make_server, request
from tinct.bridge import wire as P
from tinct.bridge.job_warnings import caught_warnings, for_client
from tinct.engine.contrast import NEUTRAL_ADVICE
from tinct.engine.inputs import InputWarning

BLACK = (
    "the input maps to nearly black (dtype: 99.5% of pixels below 3% gray), so the result is "
    f"nearly black (try {NEUTRAL_ADVICE})"
)


class Warns(FakeBackend):
    """Warns as the engine does (the same text each time), then colorizes like FakeBackend."""

    def __init__(self, texts=(BLACK,)):
        super().__init__()
        self.texts = texts

    def colorize(self, job, progress):
        for text in self.texts:
            warnings.warn(text, InputWarning, stacklevel=2)
        return super().colorize(job, progress)


def test_caught_warnings_takes_this_threads_engine_notes_every_time():
    """The engine's notes go to the client; a library's own UserWarning (PyTorch's, say)
    stays in the server's stderr: the GIMP user can do nothing about it."""
    other = []

    def elsewhere():
        warnings.warn("from another thread", UserWarning, stacklevel=1)

    with warnings.catch_warnings(record=True) as outside:
        warnings.simplefilter("always")
        for _ in range(2):
            with caught_warnings() as told:
                for _ in range(2):  # Python would show the second from one place not at all
                    warnings.warn(BLACK, InputWarning, stacklevel=1)
                warnings.warn("a library's own", UserWarning, stacklevel=1)
                warnings.warn("not for the user", DeprecationWarning, stacklevel=1)
                thread = threading.Thread(target=elsewhere)
                thread.start()
                thread.join()
            other.append(told)
    assert other == [[BLACK, BLACK]] * 2
    passed_on = sorted({str(w.message) for w in outside})
    assert passed_on == ["a library's own", "from another thread", "not for the user"]


def test_for_client_names_the_data_and_no_normalisation_and_bounds_the_list():
    told = for_client([BLACK, BLACK, "the reference image is ignored"], "16-bit integer")
    assert told == [
        "the image is nearly black (16-bit integer: 99.5% of its pixels below 3% gray), so "
        "the result is nearly black (try stretching its levels first)",
        "the reference image is ignored",
    ]
    assert not any("normali" in t or "percentile" in t or "dtype" in t for t in told)
    many = for_client(f"note {i}" for i in range(40))
    assert len(many) == P.MAX_RESULT_WARNINGS


def test_round_trip_result_carries_the_warnings_of_each_request(cfgdir, caplog):
    server, _ = make_server(cfgdir, backend=Warns())
    try:
        with client_for(server) as client, caplog.at_level(logging.WARNING):
            first = client.colorize(4, 4, "gray8", bytes(16))
            again = client.colorize(4, 4, "gray8", bytes(16))  # the same text: told again
            named = client.colorize(4, 4, "rgba16", bytes(128), precision="32-bit floating point")
            wide = client.colorize(4, 4, "gray16", bytes(32))
    finally:
        server.shutdown()
    expected = ["the image is nearly black (8-bit: 99.5% of its pixels below 3% gray), so the "
                "result is nearly black (try stretching its levels first)"]  # fmt: skip
    assert first.warnings == expected and again.warnings == expected
    assert first.header["warnings"] == expected and first.width == 4
    assert named.warnings == [expected[0].replace("8-bit", "32-bit floating point")]
    assert wide.warnings == [expected[0].replace("8-bit", "16-bit")]  # the format's bits
    logged = [r.getMessage() for r in caplog.records if "nearly black" in r.getMessage()]
    assert len(logged) == 4 and NEUTRAL_ADVICE in logged[0]  # the log keeps the engine's words


@pytest.mark.parametrize("precision", ["", 7, "x" * 41, "16-bit\nforged log line", ["8-bit"]])
def test_a_precision_that_is_no_short_text_is_refused(cfgdir, precision):
    server, _ = make_server(cfgdir, backend=Warns())
    try:
        sock = authed(server)
        reply = request(sock, {"type": "colorize", "id": "r", "width": 2, "height": 2,
                               "format": "gray8", "precision": precision},
                        [("image", bytes(4))])  # fmt: skip
        sock.close()
    finally:
        server.shutdown()
    assert reply.type == "error" and reply.header["code"] == P.E_BAD_REQUEST
    message = reply.header["message"]
    assert message == '"precision" must be a text of 1 to 40 printable characters'


def test_a_result_without_warnings_has_no_field_and_many_are_bounded(cfgdir):
    texts = tuple(f"note {i}: " + "x" * 2000 for i in range(30))
    server, _ = make_server(cfgdir, backend=Warns(texts))
    plain, _ = make_server(cfgdir, backend=FakeBackend(), config_path=False)
    try:
        with client_for(server) as client:
            res = client.colorize(2, 2, "gray8", bytes(4))
        sock = authed(plain)
        reply = request(sock, {"type": "colorize", "id": "r", "width": 2, "height": 2,
                               "format": "gray8"}, [("image", bytes(4))])  # fmt: skip
        while reply.type == "progress":
            reply = P.read_frame(sock)
        sock.close()
    finally:
        server.shutdown()
        plain.shutdown()
    assert len(res.header["warnings"]) == P.MAX_RESULT_WARNINGS
    assert all(len(t) == P.MAX_WARNING_CHARS for t in res.warnings)
    assert reply.type == "result" and "warnings" not in reply.header  # as before the field


def test_real_engine_tells_a_nearly_black_input(cfgdir):
    """The engine's own note, through the real server and client, worded for a client."""
    from tinct.bridge.backend import EngineBackend
    from tinct.bridge.embedded import start_server_in_thread
    from tinct.engine.colorizer import Colorizer

    colorizer = Colorizer(model="tinct-base", device="cpu", pretrained=False)
    dark = np.random.default_rng(0).integers(0, 12, (48, 64), dtype=np.uint8)
    bright = np.random.default_rng(0).integers(0, 256, (48, 64), dtype=np.uint8)
    with (
        start_server_in_thread(EngineBackend(colorizer=colorizer), port=0) as handle,
        P.BridgeClient(port=handle.port, token=handle.token, timeout=120) as client,
    ):
        told = [
            client.colorize(64, 48, "gray8", img.tobytes(), normalize="dtype").warnings
            for img in (dark, dark, bright)
        ]
    assert told[0] == told[1] and len(told[0]) == 1, told  # each request is told
    assert told[0][0].startswith("the image is nearly black (8-bit: 99.5% of its pixels"), told
    assert "percentile" not in told[0][0], told
    assert told[2] == []
