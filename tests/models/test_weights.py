"""tinct.models.weights: the real download path on a loopback HTTP server, caching, formats.

No test here touches the network beyond 127.0.0.1.
"""

import functools
import hashlib
import http.server
import os
import threading

import pytest
import torch

from tinct.models import (
    ModelRecord,
    Weights,
    get_record,
    load_model,
    register_model,
    unregister_model,
    weights_status,
)
from tinct.models import weights as W
from tinct.models.zhang import ECCV16

WIDTH = 1 / 32  # the official ECCV16 key layout at 2..16 channels: a ~0.3 MB file


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class LoopbackServer:
    """A static file server on 127.0.0.1 (ephemeral port) in a thread."""

    def __init__(self, folder):
        handler = functools.partial(_Quiet, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.hits = 0
        outer = self

        class Counting(handler.func):
            def do_GET(self):
                outer.hits += 1
                super().do_GET()

        self.httpd.RequestHandlerClass = functools.partial(Counting, directory=str(folder))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name):
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/{name}"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def env(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv(W.CACHE_ENV, str(cache))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    served = tmp_path / "served"
    served.mkdir()
    torch.manual_seed(0)
    state = ECCV16(width=WIDTH).state_dict()
    for v in state.values():
        if v.is_floating_point():
            v.copy_(torch.randn_like(v))
    path = served / "tiny-eccv16.pth"
    torch.save(state, path)
    server = LoopbackServer(served)
    names = []

    def register(name, sha256=None, file_name="tiny-eccv16.pth"):
        record = ModelRecord(
            name=name,
            display_name="tiny ECCV16 (test)",
            description="test record",
            builder=ECCV16,
            kwargs={"width": WIDTH},
            config=get_record("zhang-eccv16").config,
            weights=Weights(
                file_name=file_name,
                url=server.url("tiny-eccv16.pth"),
                sha256=sha256 or hashlib.sha256(path.read_bytes()).hexdigest(),
                size=path.stat().st_size,
                license="BSD-2-Clause",
                citation="test",
                format="pth",
            ),
        )
        names.append(name)
        return register_model(record)

    yield {"cache": cache, "served": path, "state": state, "server": server, "register": register}
    server.stop()
    for name in names:
        unregister_model(name)


def test_download_verify_cache_then_offline(env):
    record = env["register"]("test-tiny-eccv16")
    assert weights_status(record) == "downloadable"
    model = load_model("test-tiny-eccv16", progress=True)
    assert env["server"].hits == 1
    cached = env["cache"] / "tiny-eccv16.pth"
    assert cached.is_file() and W.sha256sum(cached) == record.weights.sha256
    assert weights_status(record) == "downloaded"
    for k, v in env["state"].items():
        torch.testing.assert_close(model.state_dict()[k], v)
    assert model.record is record and not model.training

    env["server"].stop()  # no network from here on: the cache must answer
    again = load_model("test-tiny-eccv16", progress=False)
    torch.testing.assert_close(again.model8[6].weight, model.model8[6].weight)
    assert env["server"].hits == 1

    # offline and nothing cached: a clear error naming the URL and the exact cache path
    cached.unlink()
    with pytest.raises(W.WeightsUnavailableError) as err:
        load_model("test-tiny-eccv16", progress=False)
    message = str(err.value)
    assert record.weights.url in message
    assert str(cached) in message and "tiny-eccv16.pth" in message
    assert record.weights.sha256 in message


def test_corrupted_download_is_rejected_and_not_kept(env):
    env["register"]("test-tiny-corrupt", sha256="0" * 64, file_name="corrupt.pth")
    with pytest.raises(ValueError, match="sha256"):
        load_model("test-tiny-corrupt", progress=False)
    assert env["server"].hits == 1
    leftovers = list(env["cache"].iterdir()) if env["cache"].exists() else []
    assert leftovers == []  # neither the file nor a temporary download remains


def test_corrupted_cache_file_is_replaced(env):
    record = env["register"]("test-tiny-recache")
    env["cache"].mkdir(parents=True)
    (env["cache"] / "tiny-eccv16.pth").write_bytes(b"garbage")
    load_model("test-tiny-recache", progress=False)
    assert env["server"].hits == 1
    assert W.sha256sum(env["cache"] / "tiny-eccv16.pth") == record.weights.sha256


def test_pretrained_false_never_downloads(env):
    env["register"]("test-tiny-nodl")
    model = load_model("test-tiny-nodl", pretrained=False)
    assert env["server"].hits == 0 and not env["cache"].exists()
    assert model.record.name == "test-tiny-nodl"


def test_cache_dir_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv(W.CACHE_ENV, str(tmp_path / "x"))
    assert W.cache_dir() == tmp_path / "x"
    assert not (tmp_path / "x").exists()  # never created just by asking
    monkeypatch.delenv(W.CACHE_ENV)
    assert W.cache_dir().name == "tinct"


def test_save_and_load_weights_roundtrip(tmp_path):
    model = load_model("tinct-small", pretrained=False)
    path = W.save_weights(model, tmp_path / "m.safetensors", {"metrics": {"psnr": 24.5}})
    state, meta = W.load_weights(path)
    assert meta["model"] == "tinct-small" and meta["format"] == "tinct"
    assert meta["config"]["default_temperature"] == model.record.config.default_temperature
    assert meta["metrics"] == {"psnr": 24.5}
    assert meta["builder_kwargs"] == {"widths": [16, 32, 64, 128, 160]}
    for k, v in model.state_dict().items():
        torch.testing.assert_close(state[k], v)


def test_load_model_from_a_tinct_file_restores_config_and_kwargs(tmp_path):
    import dataclasses

    record = get_record("zhang2016")
    model = record.build(width=0.0625)
    model.record = dataclasses.replace(
        record,
        kwargs={"width": 0.0625},
        config=dataclasses.replace(
            record.config, input_size=192, default_temperature=0.3, default_decoder="ab"
        ),
    )
    path = W.save_weights(model, tmp_path / "trained.safetensors", {"epochs": 3})
    loaded = load_model(path)
    assert loaded.record.name == "zhang2016"
    assert loaded.record.config.input_size == 192  # the file describes the network
    # ... but how to decode it is the registry record's alone (one source of defaults)
    assert loaded.record.config.default_temperature == record.config.default_temperature
    assert loaded.record.config.default_decoder == record.config.default_decoder
    assert loaded.record.kwargs["width"] == 0.0625
    assert loaded.weights_metadata["epochs"] == 3
    torch.testing.assert_close(loaded.model8[6].weight, model.model8[6].weight)
    loaded2 = load_model(str(path))  # a string path works too
    assert loaded2.record.name == "zhang2016"


class Payload:
    """Stands for an arbitrary pickled object."""


def test_pth_loading_never_unpickles_objects(tmp_path):
    torch.save({"w": torch.zeros(1), "x": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(Exception, match=r"(?i)weights.only|unpickl|global"):
        W.load_state_dict_file(tmp_path / "evil.pth")
    torch.save({"w": torch.zeros(1), "x": 3}, tmp_path / "odd.pth")
    with pytest.raises(ValueError, match="state_dict"):
        W.load_state_dict_file(tmp_path / "odd.pth")


def test_bundled_weights_missing_present_and_hash_checked(tmp_path, monkeypatch):
    monkeypatch.setattr(W, "_BUNDLED_DIR", tmp_path)
    base = get_record("tinct-small")
    assert weights_status(base) == "train it yourself"
    with pytest.raises(W.WeightsUnavailableError, match="train"):
        load_model("tinct-small")

    trained = load_model("tinct-small", pretrained=False)
    W.save_weights(trained, tmp_path / "tinct-small.safetensors")
    assert weights_status(base) == "bundled"
    loaded = load_model("tinct-small")
    torch.testing.assert_close(loaded.class_head.weight, trained.class_head.weight)

    digest = W.sha256sum(tmp_path / "tinct-small.safetensors")
    good = Weights(file_name="tinct-small.safetensors", sha256=digest)
    assert W.fetch(good) == tmp_path / "tinct-small.safetensors"
    with pytest.raises(ValueError, match="sha256"):
        W.fetch(Weights(file_name="tinct-small.safetensors", sha256="f" * 64))


# --------------------------------------------------------------------------- hostile metadata


@pytest.fixture
def small_file(tmp_path):
    """Write tinct-small's (random) weights with extra or replaced metadata entries."""
    model = load_model("tinct-small", pretrained=False)

    def write(**metadata):
        return W.save_weights(model, tmp_path / "m.safetensors", metadata)

    return write


@pytest.fixture
def builds(monkeypatch):
    """Count real (non-meta) model builds."""
    from tinct.models import registry

    calls = []
    original = registry.ModelRecord.build

    def spy(self, **kw):
        model = original(self, **kw)
        if next(model.parameters()).device.type != "meta":
            calls.append(self.name)
        return model

    monkeypatch.setattr(registry.ModelRecord, "build", spy)
    return calls


@pytest.mark.parametrize(
    ("metadata", "needle"),
    [
        ({"config": {"input_size": 10**6}}, "input_size"),
        ({"config": {"input_size": "huge"}}, "input_size"),
        ({"config": {"stride": 0}}, "stride"),
        ({"config": {"num_bins": 10**9}}, "num_bins"),
        ({"config": {"default_temperature": 1e308}}, "default_temperature"),
        ({"config": {"hints": "yes"}}, "hints"),
        ({"config": {"heads": 5}}, "config"),
        ({"config": "not an object"}, "config"),
        ({"builder_kwargs": {"widths": [65536] * 5}}, "parameters"),
        ({"builder_kwargs": {"widths": [16, 32, 64, 128, 161]}}, "does not match its tensors"),
        ({"builder_kwargs": {"widths": [1e300] * 5}}, "beyond"),
        ({"builder_kwargs": {"widths": list(range(1000))}}, "items"),
        ({"builder_kwargs": {"depth": 10**9}}, "takes no builder argument"),
        ({"builder_kwargs": {"widths": [-4, 32, 64, 128, 160]}}, "does not build"),
        ({"builder_kwargs": [1, 2]}, "builder_kwargs"),
        ({"notes": "x" * (W.MAX_METADATA_VALUE + 1)}, "limit"),
        ({"config": "[" * 100_000 + "]" * 100_000}, "nests"),
        ({"metrics": "[" * 40 + "]" * 40}, "nests"),
        ({"model": 5}, "not a tinct weights file"),
    ],
)
def test_metadata_bombs_are_refused_before_building(small_file, builds, metadata, needle):
    import tracemalloc

    path = small_file(**metadata)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=needle) as info:
            load_model(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(path) in str(info.value)
    assert builds == []  # the network was never built for real
    assert peak < 64 * 2**20


def test_sane_metadata_still_loads(small_file, builds):
    path = small_file(config={"default_temperature": 0.2, "input_size": 512}, notes="ok")
    model = load_model(path)
    assert model.record.config.input_size == 512 and builds == ["tinct-small"]
    shapes, meta = W.read_weights_header(path)
    assert shapes == {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert meta["notes"] == "ok" and meta["config"]["input_size"] == 512


def test_not_a_safetensors_file(tmp_path):
    path = tmp_path / "junk.safetensors"
    path.write_bytes(b"\xff" * 64)
    with pytest.raises(ValueError, match="not a readable safetensors"):
        load_model(path)


def _within(seconds, fn, *args):
    from engine_helpers import within

    return within(seconds, fn, *args)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_for_weights_is_refused_at_once(tmp_path):
    # is_file() said "no weights file at PATH" for a FIFO; one swapped in later hung the reader
    fifo = tmp_path / "m.safetensors"
    os.mkfifo(fifo)
    for read in (W.read_weights_header, W.load_weights, load_model):
        with pytest.raises(ValueError, match=r"m\.safetensors is not a regular file \(a FIFO"):
            _within(5, read, fifo)


def test_weights_are_read_from_one_descriptor_bounded_first(small_file, monkeypatch):
    from tinct.models import _weights_file

    path = small_file(notes="ok")
    opened = []
    real_open = _weights_file.open_regular
    monkeypatch.setattr(_weights_file, "open_regular", lambda p: opened.append(p) or real_open(p))
    state, meta = W.load_weights(path)
    assert len(opened) == 1 and meta["notes"] == "ok"  # header and tensors: one open, one read
    assert state.keys() == W.read_weights_header(path)[0].keys()
    monkeypatch.setattr(_weights_file, "MAX_WEIGHTS_BYTES", path.stat().st_size - 1)
    for read in (W.read_weights_header, W.load_weights):
        with pytest.raises(ValueError, match=r"bytes, more than the .* a weights file may have"):
            read(path)
    with pytest.raises(FileNotFoundError, match=r"^no weights file at .*gone\.safetensors$"):
        W.load_weights(path.with_name("gone.safetensors"))
