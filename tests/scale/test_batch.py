"""``tinct batch`` / :mod:`tinct.scale.batch`: cluster vs serial, worker loss, resume, bad files.

One small LocalCluster (2 worker processes, 1 thread each) is shared by the
module; the model is a random-weight ``tinct-small`` saved to a file so that
every process loads identical weights.
"""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import torch
from PIL import Image

from tinct.cli import main
from tinct.engine.options import ColorizeOptions
from tinct.engine.outputs import TMP_MARK
from tinct.scale.batch import LOCAL_CLUSTER_CONFIG, run_batch
from tinct.scale.planning import find_inputs, plan

distributed = pytest.importorskip("distributed")

N_IMAGES = 40


@pytest.fixture(scope="module")
def options(weights):
    return ColorizeOptions(model=weights, device="cpu")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """40 gray 48x64 PNGs with smooth structure (not pure noise)."""
    root = tmp_path_factory.mktemp("in")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:64]
    for i in range(N_IMAGES):
        f = rng.uniform(0.05, 0.3, 2)
        img = 127 + 80 * np.sin(f[0] * yy + i) * np.cos(f[1] * xx) + rng.normal(0, 8, (48, 64))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / f"img{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def serial(images, weights, tmp_path_factory):
    """Reference outputs from ``tinct colorize`` in this process."""
    out = tmp_path_factory.mktemp("serial")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the workers; more threads crawl on a busy 2-core box
    files = [str(p) for p in sorted(images.glob("*.png"))]
    try:
        argv = ["colorize", *files, "-o", str(out), "--model", weights, "--device", "cpu", "-q"]
        assert main(argv) == 0
    finally:
        torch.set_num_threads(threads)
    return out


@pytest.fixture(scope="module")
def client():
    import dask
    from distributed import Client, LocalCluster

    with (
        dask.config.set(LOCAL_CLUSTER_CONFIG),
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
            silence_logs=40,
        ) as cluster,
        Client(cluster) as c,
    ):  # fmt: skip
        yield c


def _assert_same(out_dir, serial_dir, n=N_IMAGES):
    ref = sorted(serial_dir.glob("*.png"))
    assert len(ref) == n
    for r in ref:
        p = out_dir / r.name
        assert p.is_file(), f"missing {p.name}"
        got = np.asarray(Image.open(p))  # decodes: not truncated/corrupt
        assert got.shape == (48, 64, 3)
        np.testing.assert_array_equal(got, np.asarray(Image.open(r)), err_msg=p.name)
        assert p.read_bytes() == r.read_bytes(), p.name
    assert not list(out_dir.glob(f".*{TMP_MARK}*"))


# ----------------------------------------------------------------------------- no cluster


def test_plan_keeps_subfolders_and_skips_hidden_and_output(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    for p in ("x.png", "a/y.JPG", "a/b/z.tif", "notes.txt", ".hidden/h.png", "a/.dot.png"):
        (tmp_path / p).write_bytes(b"")
    out = tmp_path / "out"
    (out / "a").mkdir(parents=True)
    (out / "a" / "x_colorized.png").write_bytes(b"")  # nested output folder is not input
    got = {(str(s.relative_to(tmp_path)), str(d.relative_to(out))) for s, d in plan(tmp_path, out)}
    assert got == {("x.png", "."), ("a/y.JPG", "a"), ("a/b/z.tif", "a/b")}
    assert [p.name for p in find_inputs(tmp_path / "a")] == ["z.tif", "y.JPG"]


def test_same_stem_clash_is_reported(tmp_path, options):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a.bmp")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "b.png")
    out = tmp_path / "out"
    for name in ("a_colorized.png", "b_colorized.png"):
        out.mkdir(exist_ok=True)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(out / name)
    s = run_batch(tmp_path, out, options, progress=False)  # nothing to do: no cluster started
    assert (s.done, s.skipped, s.failed) == (0, 2, 1)
    assert "clashes" in next(r.error for r in s.results if r.status == "failed")


# ----------------------------------------------------------------------------- cluster


def test_cluster_output_identical_to_serial_then_rerun_skips(
    client, images, options, serial, tmp_path
):
    out = tmp_path / "out"
    s = run_batch(images, out, options, client=client, progress=False, threads_per_worker=1)
    assert (s.done, s.skipped, s.failed) == (N_IMAGES, 0, 0), [r.error for r in s.results]
    assert s.exit_code == 0
    assert len({r.worker for r in s.results}) == 2  # both workers took part
    _assert_same(out, serial)
    (out / "img07_colorized.png").unlink()
    s2 = run_batch(images, out, options, client=client, progress=False, threads_per_worker=1)
    assert (s2.done, s2.skipped, s2.failed) == (1, N_IMAGES - 1, 0)
    _assert_same(out, serial)


def test_worker_killed_mid_run_completes(client, images, options, serial, tmp_path):
    address, victim = next(iter(client.run(os.getpid).items()))
    killed = []

    def kill_once(result):
        # the victim just finished a task, so it is already running its next one
        if not killed and result.worker == address:
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

    out = tmp_path / "out"
    s = run_batch(
        images, out, options, client=client, progress=False, threads_per_worker=1,
        on_result=kill_once,
    )  # fmt: skip
    assert killed
    assert s.failed == 0, [r.error for r in s.results if r.error]
    assert s.done == N_IMAGES
    _assert_same(out, serial)
    # the scheduler lost the worker with tasks in flight, and rescheduled them
    events = [e for _, e in client.get_events(address) if e.get("action") == "remove-worker"]
    assert events and events[0]["processing-tasks"]
    client.wait_for_workers(2, timeout=60)  # the nanny restarted it
    assert victim not in client.run(os.getpid).values()


def test_cli_scheduler_nested_and_corrupt_file(client, images, weights, tmp_path, capsys):
    src = tmp_path / "in"
    (src / "day1").mkdir(parents=True)
    for i in range(3):
        (src / "day1" / f"img{i:02d}.png").write_bytes((images / f"img{i:02d}.png").read_bytes())
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    out = tmp_path / "out"
    argv = ["batch", str(src), str(out), "--scheduler", client.scheduler.address]
    argv += ["--model", weights, "--device", "cpu", "--threads-per-worker", "1", "-q"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "broken.png" in err
    assert "3 done, 0 skipped, 1 failed" in err
    ours = [ln for ln in err.splitlines() if ln.startswith("tinct batch:")]  # not Dask's logs
    assert ours[-1].endswith(f"; failed: {src.resolve() / 'broken.png'}")  # named, not counted
    assert not any("Error:" in ln for ln in ours)  # no Python exception class names
    assert sorted(p.name for p in (out / "day1").iterdir()) == [
        f"img{i:02d}_colorized.png" for i in range(3)
    ]
    assert not (out / "broken_colorized.png").exists()


def test_colorize_dask_on_the_cluster(client, weights):
    import dask.array as da

    from tinct.engine.colorizer import Colorizer
    from tinct.scale.distributed import colorize_dask

    rng = np.random.default_rng(5)
    stack = (rng.random((6, 32, 40)) * 255).astype(np.uint8)
    lazy = colorize_dask(da.from_array(stack, chunks=(2, 32, 40)), model=weights, device="cpu")
    got = client.compute(lazy).result()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        want = Colorizer(weights, device="cpu").colorize(stack)
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(got, want)


def _offline(monkeypatch, tmp_path):
    """No weights cached, and every download fails the way requests does offline."""
    import pooch

    from tinct.models import weights

    monkeypatch.setenv(weights.CACHE_ENV, str(tmp_path / "empty-cache"))
    calls = []

    def retrieve(**kwargs):
        calls.append(kwargs["url"])
        pooch.get_logger().info("Downloading data from '%s' to file '...'.", kwargs["url"])
        raise OSError(
            "HTTPSConnectionPool(host='colorizers.s3.us-east-2.amazonaws.com', port=443): Max "
            "retries exceeded with url: /colorization_release_v2-9b330a0b.pth (Caused by "
            'NameResolutionError("<urllib3.connection.HTTPSConnection object at 0x7f>: Failed '
            "to resolve 'colorizers.s3.us-east-2.amazonaws.com' ([Errno -3] Temporary failure "
            'in name resolution)"))' + " ..." * 100
        )

    monkeypatch.setattr(pooch, "retrieve", retrieve)
    return calls


def test_batch_offline_download_fails_once_up_front(tmp_path, images, monkeypatch, capsys):
    calls = _offline(monkeypatch, tmp_path)
    out = tmp_path / "out"
    assert main(["batch", str(images), str(out), "--model", "zhang-eccv16", "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(calls) == 1 and len(err) == 1, err  # once, not once per file
    assert err[0].startswith("tinct batch: error: cannot load model zhang-eccv16: could not")
    assert "no network" in err[0] and "empty-cache" in err[0] and len(err[0]) < 500
    assert "Downloading data from" not in err[0]
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("command", ["colorize", "demo"])
def test_offline_download_failure_is_one_short_line(tmp_path, images, monkeypatch, capsys, command):
    _offline(monkeypatch, tmp_path)
    if command == "colorize":
        argv = ["colorize", str(images / "img00.png"), "-o", str(tmp_path / "o.png")]
    else:
        argv = ["demo", "-o", str(tmp_path / "d.png")]
    assert main([*argv, "--model", "zhang-eccv16"]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "could not download" in err[0] and len(err[0]) < 500, err
    assert "Downloading data from" not in captured.err + captured.out


def test_a_file_warning_is_one_line_of_the_batch(client, options, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.full((32, 32), 3, np.uint8)).save(src / "flat.png")
    summary = run_batch(src, tmp_path / "out", options, client=client, progress=False)
    assert summary.done == 1 and summary.exit_code == 0
    err = capsys.readouterr().err
    flat = src.resolve() / "flat.png"
    assert f"tinct batch: {flat}: warning: the input is nearly constant" in err
    assert "; if the data varies more, try --normalize percentile\n" in err  # the CLI's flag


def test_output_depth_reaches_the_workers(client, options, tmp_path):
    from depth_helpers import gradient16, png_bits

    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(gradient16(32, 48)).save(src / "scan16.png")
    for depth, bits in (("auto", 16), ("8", 8)):
        out = tmp_path / depth
        s = run_batch(src, out, options, client=client, progress=False, output_depth=depth)
        assert s.done == 1 and s.exit_code == 0
        assert png_bits(out / "scan16_colorized.png") == bits


def _mixed_folder(root, images):
    """A good PNG, a truncated JPEG, text named .png, an empty file, a folder, a 16-bit TIFF."""
    import tifffile

    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "folder.png").mkdir()  # a folder with an image's name is not an input
    good = images / "img00.png"
    (root / "good.png").write_bytes(good.read_bytes())
    (root / "sub" / "deeper" / "nested.png").write_bytes(good.read_bytes())
    gray = np.asarray(Image.open(good))
    Image.fromarray(gray).save(root / "whole.jpg", quality=90)
    jpeg = (root / "whole.jpg").read_bytes()
    (root / "whole.jpg").unlink()
    (root / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (root / "notes.png").write_text("this is not an image\n")
    (root / "empty.png").write_bytes(b"")
    tifffile.imwrite(root / "sixteen.tif", gray.astype(np.uint16) * 257)
    return root


def test_a_mixed_folder_then_a_resume(client, images, weights, tmp_path, capsys):
    src = _mixed_folder(tmp_path / "in", images)
    out = tmp_path / "out"
    argv = ["batch", str(src), str(out), "--scheduler", client.scheduler.address]
    argv += ["--model", weights, "--device", "cpu", "--threads-per-worker", "1"]
    assert main([*argv, "-q"]) == 1
    ours = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("tinct batch:")]
    why = {ln.split(": ")[1]: ln.split(": ", 2)[2] for ln in ours[:-1]}
    root = src.resolve()
    # each failure named its file once (it was "PATH: PATH: not an image file ..."), and
    # the empty file said so (it was "not an image file of a format tinct reads")
    assert why == {
        str(root / "empty.png"): "the file is empty (0 bytes)",
        str(root / "notes.png"): "not an image file of a format tinct reads",
        str(root / "truncated.jpg"): why[str(root / "truncated.jpg")],
    }
    assert "truncated" in why[str(root / "truncated.jpg")]
    assert ours[-1].startswith("tinct batch: 3 done, 0 skipped, 3 failed in ")
    done = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert done == [
        "good_colorized.png",
        "sixteen_colorized.png",
        "sub/deeper/nested_colorized.png",
    ]
    from depth_helpers import png_bits

    assert png_bits(out / "sixteen_colorized.png") == 16  # the 16-bit TIFF stays 16-bit
    assert png_bits(out / "good_colorized.png") == 8
    # --resume was "tinct: error: unrecognized arguments: --resume"; a rerun always resumed
    assert main([*argv, "--resume"]) == 1
    err = capsys.readouterr().err
    assert "tinct batch: 0 done, 3 skipped, 3 failed in " in err
    # the bar starts at the skipped files (it drew 0/6 first, then jumped to 3/6)
    assert "0/6" not in err and "3/6" in err and "6/6" in err


def test_dask_shutdown_warnings_are_not_shown(caplog):
    import logging

    from tinct.scale.batch import _quiet_shutdown

    nanny = logging.getLogger("distributed.nanny")

    def nanny_lines() -> list[str]:  # an earlier test's Dask threads may still log elsewhere
        return [r.getMessage() for r in caplog.records if r.name == "distributed.nanny"]

    with caplog.at_level(logging.WARNING, logger="distributed.nanny"):
        with _quiet_shutdown():  # the user saw this after every local run on a busy machine
            nanny.warning("Worker process still alive after 4.0 seconds, killing")
        assert not nanny_lines()
        nanny.warning("outside the shutdown")  # the level comes back
    assert nanny_lines() == ["outside the shutdown"]


def test_a_client_that_fails_to_connect_closes_the_local_cluster(tmp_path, monkeypatch):
    # the LocalCluster's worker processes outlived a run whose Client(cluster) raised
    closed = []

    class Cluster:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

        def close(self):
            closed.append(self)

    def refuse(*args, **kwargs):
        raise OSError("Timed out during handshake while connecting")

    monkeypatch.setattr(distributed, "LocalCluster", Cluster)
    monkeypatch.setattr(distributed, "Client", refuse)
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.full((8, 8), 99, np.uint8)).save(src / "a.png")
    with pytest.raises(OSError, match="handshake"):
        run_batch(src, tmp_path / "out", workers=1, progress=False)
    assert len(closed) == 1
