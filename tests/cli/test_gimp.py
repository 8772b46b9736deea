"""``tinct gimp install``/``doctor`` and ``tinct serve`` (tmp folders, loopback only)."""

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tinct.bridge import wire as P
from tinct.bridge.install import doctor, gimp_profile_dir, install_plugin
from tinct.bridge.server import BridgeServer
from tinct.cli import main

ROOT = Path(__file__).resolve().parents[2]


class Backend:
    default_model = "fake"

    def models(self):
        return [{"name": "fake", "display_name": "Fake"}]

    def colorize(self, job, progress):
        return np.zeros((*job.image.shape[:2], 3), np.uint8)


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("TINCT_CONFIG_DIR", str(tmp_path / "tinct"))
    monkeypatch.setenv("GIMP3_DIRECTORY", str(tmp_path / "gimp"))
    return tmp_path


def run_doctor(**kw):
    lines = []
    code = doctor(out=lines.append, **kw)
    return code, "\n".join(lines)


def test_profile_dir_defaults(monkeypatch, tmp_path):
    monkeypatch.delenv("GIMP3_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setattr(sys, "platform", "linux")
    assert gimp_profile_dir() == tmp_path / "GIMP" / "3.0"
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert gimp_profile_dir() == tmp_path / "Library/Application Support/GIMP/3.0"
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("APPDATA", str(tmp_path / "roaming"))
    assert gimp_profile_dir() == tmp_path / "roaming" / "GIMP" / "3.0"
    monkeypatch.setenv("GIMP3_DIRECTORY", str(tmp_path / "g3"))
    assert gimp_profile_dir() == tmp_path / "g3"
    assert gimp_profile_dir(tmp_path / "x") == tmp_path / "x"


def test_install_respects_gimp3_directory(env, capsys):
    assert main(["gimp", "install"]) == 0
    dest = env / "gimp" / "plug-ins" / "tinct-colorize"
    script = dest / "tinct-colorize.py"
    assert script.is_file() and script.stat().st_mode & stat.S_IXUSR
    wire = ROOT / "src/tinct/bridge/wire"
    names = sorted(p.name for p in wire.glob("*.py"))
    assert "__init__.py" in names and "client.py" in names
    assert sorted(p.name for p in (dest / "tinct_wire").iterdir()) == names
    for name in names:
        assert (dest / "tinct_wire" / name).read_bytes() == (wire / name).read_bytes()
    assert not list(dest.glob("__pycache__"))
    assert "tinct serve" in capsys.readouterr().out


def test_install_gimp_dir_and_reinstall(tmp_path):
    dest = install_plugin(tmp_path / "profile")
    assert dest == tmp_path / "profile" / "plug-ins" / "tinct-colorize"
    (dest / "stale.txt").write_text("x")
    (dest / "tinct-colorize.py").chmod(0o644)
    dest2 = install_plugin(tmp_path / "profile" / "plug-ins")  # a plug-ins folder works too
    assert dest2 == dest
    assert not (dest / "stale.txt").exists()
    assert os.access(dest / "tinct-colorize.py", os.X_OK)


def test_doctor_reports_everything_missing(env):
    code, text = run_doctor()
    assert code == 1
    assert "plug-in not installed" in text and "tinct gimp install" in text
    assert "no server config" in text and "Start the server with: tinct serve" in text


def test_doctor_all_good(env):
    install_plugin()
    server = BridgeServer(Backend(), port=0).start()
    try:
        code, text = run_doctor()
    finally:
        server.shutdown()
    assert code == 0, text
    assert "all checks passed" in text
    assert "accepted the token" in text and "models: fake" in text


def test_doctor_finds_problems(env):
    dest = install_plugin()
    (dest / "tinct-colorize.py").chmod(0o644)
    (dest / "tinct_wire" / "client.py").write_text("# old\n")
    (dest.parent / "tinct-colorize.py").write_text("")
    server = BridgeServer(Backend(), port=0).start()
    cfg = Path(P.bridge_config_path())
    try:
        cfg.chmod(0o644)
        code, text = run_doctor()
        assert code == 1
        assert "not executable" in text and "chmod +x" in text
        assert "differs from this tinct's protocol" in text
        assert "stray tinct-colorize.py" in text
        assert "readable by others" in text and "chmod 600" in text
        data = json.loads(cfg.read_text())
        data["token"] = "wrong"
        cfg.write_text(json.dumps(data))
        code, text = run_doctor()
        assert "refused the token" in text
    finally:
        server.shutdown()
    data["token"] = server.token
    cfg.write_text(json.dumps(data))  # stale file, nobody listening
    code, text = run_doctor()
    assert "no server answers" in text and "tinct serve" in text


def test_doctor_misnamed_script(env):
    dest = install_plugin()
    (dest / "tinct-colorize.py").rename(dest / "colorize.py")
    code, text = run_doctor()
    assert code == 1 and "named like its folder" in text


def test_cli_doctor_exit_code(env, capsys):
    assert main(["gimp", "doctor"]) == 1
    assert "[FAIL]" in capsys.readouterr().out


@pytest.mark.slow
def test_tinct_serve_starts_and_stops_on_sigterm(tmp_path):
    cfg = tmp_path / "bridge.json"
    log = tmp_path / "serve.log"
    env = dict(os.environ, TINCT_CONFIG_DIR=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tinct", "serve", "--config", str(cfg), "--device", "cpu",
         "--untrained", "--log", str(log), "--max-megapixels", "0.001", "--max-hints", "7",
         "--max-connections", "3", "--idle-timeout", "60"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not cfg.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert cfg.exists(), proc.stderr.read().decode() if proc.poll() is not None else "timeout"
        assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
        data = json.loads(cfg.read_text())
        with P.BridgeClient(config_path=str(cfg), timeout=60) as client:
            info = client.hello()
            assert info["protocol_version"] == P.PROTOCOL_VERSION
            limits = info["limits"]
            assert (limits["max_pixels"], limits["max_hints"]) == (1000, 7)
            assert limits["idle_timeout_s"] == 60
            res = client.colorize(16, 16, "gray8", bytes(range(256)))
            assert (res.width, res.format) == (16, "rgb8")
            with pytest.raises(P.BridgeError, match="--max-megapixels"):  # 1,024 > 1,000 pixels
                client.colorize(32, 32, "gray8", bytes(1024))
        assert data["host"] == "127.0.0.1"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert not cfg.exists()
        assert "listening on 127.0.0.1" in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_tinct_serve_refuses_remote_without_flag(tmp_path, capsys):
    code = main(["serve", "--host", "0.0.0.0", "--config", str(tmp_path / "b.json")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("tinct serve: error: --host: '0.0.0.0' is not a loopback address")
    assert "--allow-remote" in err and err.count("\n") == 1  # named the Python allow_remote
    assert not (tmp_path / "b.json").exists()


def test_install_gives_fresh_file_times_so_gimp_queries_again(tmp_path):
    from tinct.bridge.install import plugin_source

    src = plugin_source()
    dest = install_plugin(tmp_path) / "tinct-colorize.py"
    assert dest.read_bytes() == src.read_bytes()
    old = 1_000_000_000
    os.utime(dest, (old, old))
    dest = install_plugin(tmp_path) / "tinct-colorize.py"
    assert dest.stat().st_mtime > old + 1  # not copy2: GIMP sees a changed plug-in


def test_refresh_registration_touches_the_plugin_only_when_the_list_changed(tmp_path):
    from tinct.bridge.install import models_signature, refresh_registration

    folder = install_plugin(tmp_path)
    script = folder / "tinct-colorize.py"
    models = [{"name": "tinct-base", "display_name": "tinct base", "weights": "bundled"}]
    (folder / "registered-models.json").write_text(json.dumps({"models": models_signature(models)}))
    os.utime(script, (1_000_000_000, 1_000_000_000))
    assert not refresh_registration(models, tmp_path)
    assert script.stat().st_mtime == 1_000_000_000
    more = [*models, {"name": "mine", "display_name": "mine (weights file)", "weights": "file"}]
    assert refresh_registration(more, tmp_path)
    assert script.stat().st_mtime > 1_000_000_000
    assert not refresh_registration(more, tmp_path / "elsewhere")  # no plug-in there
