"""End to end in a real GIMP 3.0 (Debian trixie chroot, headless batch mode).

Needs root (chroot) and the chroot built by ``scripts/gimp_chroot.sh`` (built on
first use, about 3-10 minutes, cached outside the repository). Runs the real
server on the host's 127.0.0.1 with the real engine (untrained ``tinct-base``
when no trained weights are installed; a fake colorizer if ``tinct.engine.colorizer`` is
missing); the plug-in in the chroot reaches it over loopback (a chroot shares
the host's network namespace).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest

from bridge_helpers import Impostor
from gimp_helpers import chroot_path, free_port, messages_during, run_gimp
from tinct.bridge import wire as P
from tinct.bridge.backend import EngineBackend
from tinct.bridge.embedded import start_server_in_thread
from tinct.bridge.install import install_plugin

pytestmark = pytest.mark.gimp

ROOT = Path(__file__).resolve().parents[2]


class Recorder:
    """Wraps a colorizer and records what reached it."""

    def __init__(self, inner):
        self.inner = inner
        self.model_name = getattr(inner, "model_name", "tinct-base")
        self.calls = []

    def colorize(self, image, *, hints, reference, options, progress, cancel, rgb):
        self.calls.append(
            {"shape": image.shape, "hints": list(hints), "local_hints": options.local_hints}
        )
        return self.inner.colorize(
            image, hints=hints, reference=reference, options=options, progress=progress,
            cancel=cancel, rgb=rgb,
        )  # fmt: skip


def _colorizer():
    from tinct.engine.colorizer import Colorizer

    try:
        return Colorizer("tinct-base", device="cpu"), "engine (trained weights)"
    except Exception:
        return Colorizer("tinct-base", device="cpu", pretrained=False), "engine (untrained)"


def _fake_challenge(conn, data):
    """Answer like a server, but without the token: the proof cannot be right."""
    P.send_frame(conn, {"type": "auth_challenge", "server_nonce": P.new_nonce(),
                        "server_proof": P.new_nonce()})  # fmt: skip


def gray_pixels_prefix() -> bytes:
    """The first row of the driver's gray test image (scripts/gimp_e2e_driver.py)."""
    w = 96
    return bytes((x * 255 // (w - 1)) % 256 for x in range(w))


@pytest.fixture
def gimp_work():
    chroot = chroot_path()
    work = Path(tempfile.mkdtemp(prefix="tinct-e2e-", dir=chroot / "tmp"))
    inside = "/" + str(work.relative_to(chroot))
    for sub in ("cfg", "home", "out"):
        (work / sub).mkdir()
    try:
        yield chroot, work, inside
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_model_list_follows_a_server_restart_and_unknown_models_are_refused(gimp_work, tmp_path):
    import tinct
    from tinct.bridge.install import refresh_registration
    from tinct.models.weights import save_weights

    chroot, work, inside = gimp_work
    recorder = Recorder(_colorizer()[0])
    install_plugin(work / "cfg")
    first = EngineBackend(colorizer_factory=lambda name: recorder, model="tinct-base")
    handle = start_server_in_thread(first, port=0, config_path=work / "bridge.json")
    try:
        proc, results, context = run_gimp(chroot, inside, handle.port, "list")
    finally:
        handle.stop()
    assert proc.returncode == 0 and "done" in results, context
    before = results["models"]["names"]
    assert "tinct-base" in before and "tinct-small" in before, context

    # restart: the server now also serves a weights file from `tinct train`
    weights = save_weights(
        tinct.load_model("tinct-small", pretrained=False), tmp_path / "my-finetune.safetensors"
    )
    second = EngineBackend(colorizer_factory=lambda name: recorder, model=str(weights))
    assert refresh_registration(second.models(), work / "cfg")  # what `tinct serve` does
    handle = start_server_in_thread(second, port=0, config_path=work / "bridge.json")
    try:
        proc, results, context = run_gimp(
            chroot, inside, handle.port, "restarted", TINCT_E2E_NEW_MODEL="my-finetune"
        )
    finally:
        handle.stop()
    assert proc.returncode == 0 and "done" in results, context
    after = results["models"]["names"]
    assert "my-finetune" in after and "my-finetune" not in before, context  # re-registered
    pluginrc = (work / "cfg" / "pluginrc").read_text(errors="replace")
    recorded = re.search(r'tinct-colorize\.py" (\d+)', pluginrc)
    script = work / "cfg" / "plug-ins" / "tinct-colorize" / "tinct-colorize.py"
    assert recorded and int(recorded.group(1)) == int(script.stat().st_mtime), pluginrc[-2000:]
    assert results["new-model"]["status"] == "success", context
    assert results["new-model"]["layers"] == ["Colorized (my-finetune)", "bg"]
    unknown = results["unknown-model"]
    assert unknown["status"] == "execution-error", context  # not a silent default
    assert "unknown model 'no-such-model'" in unknown["message"] and unknown["layers"] == ["bg"]
    none = results["no-weights"]
    assert none["status"] == "execution-error" and "no trained weights" in none["message"]
    assert "tinct serve --model PATH" in none["message"]
    repeat = results["repeat"]  # Filters > Repeat: the model the dialog chose, not the default
    assert repeat == {"case": "repeat", "status": "success",
                      "layers": ["Colorized (my-finetune)", "bg"]}, context  # fmt: skip
    assert len(recorder.calls) == 2  # only the new model's runs reached the engine


def test_colorize_in_realrun_gimp(gimp_work):
    chroot, work, inside = gimp_work
    inner, kind = _colorizer()
    recorder = Recorder(inner)
    plugin = install_plugin(work / "cfg")
    assert (plugin / "tinct-colorize.py").stat().st_mode & 0o100
    handle = start_server_in_thread(
        EngineBackend(colorizer=recorder), port=0, config_path=work / "bridge.json"
    )
    impostor = Impostor(answer=_fake_challenge)
    try:
        proc, results, context = run_gimp(
            chroot, inside, handle.port, TINCT_E2E_IMPOSTOR_PORT=str(impostor.port)
        )
    finally:
        token = handle.token
        handle.stop()
        impostor.close()
    context = f"{kind}: {context}"
    assert proc.returncode == 0, context
    assert "done" in results, context
    assert results["registered"]["ok"], context

    gray = results["gray"]
    assert gray["status"] == "success", context
    assert gray["layers"] == ["Colorized (tinct-base)", "bg"]  # says which model
    assert gray["base_type"] == "rgb"  # GRAY image converted inside the undo group
    assert gray["top_size"] == [96, 64]
    assert gray["top_chroma"] > 2.0, context

    hints = results["hints"]
    assert hints["status"] == "success", context
    assert hints["layers"] == ["hints", "Colorized (tinct-base)", "photo"]
    assert hints["colorized_size"] == [96, 64]
    assert hints["colorized_offsets"] == [8, 4]
    assert hints["hint_visible"] is False
    assert hints["colorized_chroma"] > 2.0, context

    dead = results["no-server"]
    assert dead["status"] == "execution-error"
    assert dead["message"] == (  # no "[Errno 111] Connection refused"
        f"Tinct: the tinct server is not running (nothing answers on 127.0.0.1:{dead['port']}). "
        "Start the server with: tinct serve"
    ), context
    assert dead["layers"] == ["bg"] and dead["base_type"] == "gray"  # untouched

    fake = results["impostor"]  # a process on the port that does not hold the token
    assert fake["status"] == "execution-error", context
    assert "could not prove" in fake["message"] and "tinct serve" in fake["message"]
    assert fake["layers"] == ["bg"]
    got = bytes(impostor.received)
    assert impostor.connections == 1 and token.encode() not in got
    assert gray_pixels_prefix() not in got  # no pixels either

    hello = P.decode_frame(got)  # all it got: one auth frame with a nonce
    assert hello.type == "auth" and hello.payload == b""

    # What reached the engine: the layer's pixels, the two hint blobs and the record case
    # (the refused hint layers never reached it).
    assert len(recorder.calls) == 3
    assert recorder.calls[0]["shape"] == (64, 96, 3)
    got = sorted((h.row, h.col, tuple(round(c) for c in h.color))
                 for h in recorder.calls[1]["hints"])  # fmt: skip
    assert got == [(10.0, 20.0, (1, 0, 0)), (40.0, 70.0, (0, 0, 1))]
    # the dialog's "Local hints" (on in the hints case only) reaches the engine's options
    assert [c["local_hints"] for c in recorder.calls] == [False, True, False]

    gray_hints = results["gray-hints"]  # painted in a grayscale image: gray dots
    assert gray_hints["status"] == "execution-error", context
    assert "Image > Mode > RGB" in gray_hints["message"]
    assert gray_hints["layers"] == ["hints", "bg"] and gray_hints["base_type"] == "gray"
    assert gray_hints["hint_visible"] is True
    opaque = results["opaque-hints"]  # a whole layer is not a set of hints
    assert opaque["status"] == "execution-error", context
    assert "no transparent pixels" in opaque["message"] and opaque["layers"] == ["hints", "bg"]
    active = results["active-hints"]  # the dots' layer is active after painting: not colorized
    assert active["status"] == "execution-error" and active["layers"] == ["hints", "bg"], context
    assert active["message"] == ("Tinct: the layer to colorize, 'hints', is the hint layer: "
                                 "select the photo's layer in the Layers dialog, then run "
                                 "Tinct Colorize again")  # fmt: skip
    alone = results["dots-only"]  # ... nor without a Hint layer chosen
    assert alone["status"] == "execution-error" and alone["layers"] == ["hints", "bg"], context
    assert alone["message"].startswith("Tinct: the layer 'hints' is 99% transparent"), context

    record = results["record"]  # a run never rewrites what GIMP registered
    assert record["status"] == "success", context
    assert record["kept"] is True and record["touched"] is True, context

    from PIL import Image

    for name in ("gray.png", "hints.png"):
        img = np.asarray(Image.open(work / "out" / name).convert("RGB")).astype(int)
        chroma = (img.max(-1) - img.min(-1)).mean()
        assert chroma > 2.0, f"{name} has no colour"
    assert Image.open(work / "out" / "gray.png").size == (96, 64)


def test_gimp_started_before_the_server_registers_the_plugin_cleanly(gimp_work):
    """No server answers while GIMP registers the plug-in: it registers (fallback list), and
    ends without crashing (Python's teardown freed GIMP-owned objects a second time)."""
    chroot, work, inside = gimp_work
    install_plugin(work / "cfg")
    proc, results, context = run_gimp(chroot, inside, free_port(), "list")
    assert proc.returncode == 0 and results["registered"]["ok"], context
    assert results["models"]["names"] == [], context  # recorded as unknown: asks again later
    assert b"Segmentation fault" not in proc.stderr, context


def test_only_what_is_visible_and_selected_changes(gimp_work):
    """A layer mask and a selection, as a GIMP filter would honour them (one undo group);
    a 16-bit scan keeps its tones; a server that stops mid-run says so."""
    from bridge_helpers import FakeBackend

    chroot, work, inside = gimp_work
    install_plugin(work / "cfg")

    class StopsMidJob(FakeBackend):
        def colorize(self, job, progress):
            if job.image.shape[1] == 50:  # the driver's last case: the server stops now
                threading.Thread(target=handle.stop).start()
                job.cancel.wait(10)
            return super().colorize(job, progress)

    backend = StopsMidJob()
    handle = start_server_in_thread(backend, port=0, config_path=work / "bridge.json")
    try:
        proc, results, context = run_gimp(chroot, inside, handle.port, "masked")
    finally:
        handle.stop()
    assert proc.returncode == 0 and "done" in results, context
    rec = results["masked"]
    assert rec["status"] == "success" and rec["layers"] == ["Colorized (fake)", "photo"], context
    assert rec["mask"] == {"selected": 255, "hidden": 0, "outside": 0}, context
    assert rec["selection"] == [True, 8, 8, 72, 48] and rec["channels"] == 0, context
    scan = results["gray16"]  # sent and returned in 16 bits: 96 levels, not 8-bit's 4
    assert scan["status"] == "success" and scan["precision"] == "u16-non-linear", context
    assert scan["levels"] == 96, context
    job = backend.calls[1]  # a photo's full range as is: not stretched like 16-bit data
    assert job.image.dtype == np.uint16 and job.options.normalize == "dtype"
    active = results["active-mask"]  # the mask was active: its layer is colorized
    assert active["status"] == "success", context
    assert active["layers"] == ["group", "Colorized (fake)", "bg"], context
    assert active["group"] == ["execution-error", "Tinct: 'group' is a layer group: select one "
                               "of its layers"], context  # fmt: skip
    stopped = results["stopped"]  # one clear message, not a silent "cancel"
    assert stopped["status"] == "execution-error" and stopped["layers"] == ["bg"], context
    assert stopped["message"] == (  # "cancelled" once: the server's message already says it
        "Tinct: cancelled: the server is shutting down; the image is unchanged"
    ), context


def test_the_result_sits_where_and_how_its_source_sits(gimp_work):
    """Opacity, mode, blend and composite settings, visibility and offsets are the source's;
    the result is directly above it, in its parent (a layer group, or the image)."""
    from bridge_helpers import FakeBackend

    chroot, work, inside = gimp_work
    install_plugin(work / "cfg")
    handle = start_server_in_thread(FakeBackend(), port=0, config_path=work / "bridge.json")
    try:
        proc, results, context = run_gimp(chroot, inside, handle.port, "placed")
    finally:
        handle.stop()
    assert proc.returncode == 0 and "done" in results, context
    grouped, top = results["placed-in-group"], results["placed-top"]
    assert grouped["source"] == {
        "parent": "group", "offsets": [5, 3], "opacity": 60.0, "mode": "multiply",
        "visible": False, "blend_space": "rgb-linear", "composite_space": "rgb-perceptual",
        "composite_mode": "clip-to-backdrop",
    }, context  # fmt: skip
    assert grouped["siblings"] == ["above", "Colorized (fake)", "in-group", "below"], context
    # one image: GIMP gives the second result a unique name
    assert top["siblings"] == ["group", "Colorized (fake) #1", "top", "bg"], context
    assert top["source"]["opacity"] == 35.0 and top["source"]["mode"] == "screen", context
    assert top["source"]["visible"] is True and top["source"]["offsets"] == [-4, 2], context
    for rec in (grouped, top):
        assert rec["status"] == "success" and rec["result_name"] == rec["siblings"][1], context
        assert rec["result"] == rec["source"], context


def test_a_nearly_black_layer_is_colorized_with_a_message_that_says_why(gimp_work):
    """The engine's note about a nearly black input reaches the GIMP user as a message in
    a GIMP user's words: the layer's precision as Image > Precision names it (a float
    layer travels as 16-bit integers), no normalisation setting the plug-in has no control
    for; a batch run carries on (the message does not wait for anyone), and a plain layer
    gets none."""
    chroot, work, inside = gimp_work
    install_plugin(work / "cfg")
    recorder = Recorder(_colorizer()[0])
    handle = start_server_in_thread(
        EngineBackend(colorizer=recorder), port=0, config_path=work / "bridge.json"
    )
    try:
        proc, results, context = run_gimp(chroot, inside, handle.port, "noted")
    finally:
        handle.stop()
    assert proc.returncode == 0 and "done" in results, context
    precisions = {"nearly-black": "8-bit integer", "nearly-black-16": "16-bit integer",
                  "nearly-black-float": "32-bit floating point"}  # fmt: skip
    for case in (*precisions, "plain"):
        assert results[case]["status"] == "success", context
        assert results[case]["layers"] == ["Colorized (tinct-base)", "bg"], context
    for case, precision in precisions.items():
        assert messages_during(proc, case) == [
            f"Tinct warning: the image is nearly black ({precision}: 99.5% of its pixels "
            "below 4% gray), so the result is nearly black (try stretching its levels first)"
        ], context
    assert messages_during(proc, "plain") == [], context
    assert len(recorder.calls) == 4


def _tiles(folder: Path) -> Path:
    """Eight H&E-like colour tiles (pink and purple) from four source images."""
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for s, base in enumerate([(220, 140, 190), (150, 90, 170), (230, 160, 200), (170, 100, 180)]):
        for x in (0, 64):
            tone = rng.uniform(0.6, 1.0, (64, 64, 1))
            arr = np.clip(np.array(base) * tone + rng.normal(0, 6, (64, 64, 3)), 0, 255)
            Image.fromarray(arr.astype(np.uint8)).save(folder / f"slide{s}_x{x}_y0.png")
    return folder


def _tinct(*args: str, env: dict, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tinct", *args], env=env, text=True, **kw
    )  # fmt: skip


@pytest.mark.slow
def test_a_user_model_trained_from_the_cli_is_served_torun_gimp(gimp_work, tmp_path, monkeypatch):
    """`tinct train --name` -> `tinct serve --model NAME` -> the GIMP plug-in uses it."""
    chroot, work, inside = gimp_work
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "TINCT_USER_MODELS": str(tmp_path / "user-models"),
        "GIMP3_DIRECTORY": str(work / "cfg"),  # `tinct serve` refreshes this registration
    }
    train = _tinct(
        "train", "--init", "tinct-base", "--data", str(_tiles(tmp_path / "tiles")),
        "--steps", "3", "--batch-size", "4", "--crop", "64", "--name", "gimp-he",
        "--device", "cpu", env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    log, _ = train.communicate(timeout=600)
    assert train.returncode == 0, log
    assert "registered user model gimp-he" in log, log
    assert (tmp_path / "user-models" / "gimp-he.safetensors").is_file()

    install_plugin(work / "cfg")
    serve = _tinct(
        "serve", "--model", "gimp-he", "--device", "cpu", "--config", str(work / "bridge.json"),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        line = serve.stdout.readline()  # "tinct server listening on 127.0.0.1:PORT ..."
        found = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        assert found, line + serve.stderr.read() if serve.poll() is not None else line
        proc, results, context = run_gimp(
            chroot, inside, int(found.group(1)), "served", TINCT_E2E_MODEL="gimp-he"
        )
    finally:
        serve.terminate()
        serve.wait(timeout=60)
    assert proc.returncode == 0 and "done" in results, context
    assert results["models"]["names"][0] == "gimp-he", context  # registered: the default
    for case in ("default", "by-name"):
        rec = results[case]
        assert rec["status"] == "success", context
        assert rec["layers"] == ["Colorized (gimp-he)", "bg"], context  # which model made it
        assert rec["top_chroma"] > 2.0, context

    # the colour is the user model's own: the same image colorized here by name
    from PIL import Image

    import tinct

    w, h = 96, 64
    gray = np.array([[(x * 255 // (w - 1) + y) % 256 for x in range(w)] for y in range(h)])
    rgb = np.repeat(gray[..., None], 3, axis=-1).astype(np.uint8)
    from tinct.models import user_store

    monkeypatch.setenv("TINCT_USER_MODELS", env["TINCT_USER_MODELS"])
    user_store.refresh()
    try:
        expected = np.asarray(tinct.Colorizer("gimp-he", device="cpu").colorize(rgb))[..., :3]
        base = np.asarray(tinct.Colorizer("tinct-base", device="cpu").colorize(rgb))[..., :3]
    finally:
        monkeypatch.undo()
        user_store.refresh()
    got = np.asarray(Image.open(work / "out" / "by-name.png").convert("RGB")).astype(int)
    assert np.abs(got - expected.astype(int)).mean() < 1.5
    assert np.abs(got - base.astype(int)).mean() > 3 * np.abs(got - expected.astype(int)).mean()
