"""``tinct gimp doctor`` on an installed plug-in that is not this tinct's (tmp folders)."""

import json

from tinct.bridge.config import write_bridge_config
from tinct.bridge.install import doctor, install_plugin


def test_doctor_finds_a_plugin_script_left_by_an_older_tinct(tmp_path, monkeypatch):
    # after an upgrade without `tinct gimp install`, GIMP runs the old script; doctor
    # compared its modules with this tinct's, not the script, and said it was all right
    monkeypatch.setenv("TINCT_CONFIG_DIR", str(tmp_path / "tinct"))
    dest = install_plugin(tmp_path / "gimp")
    lines: list[str] = []
    doctor(tmp_path / "gimp", out=lines.append)
    assert not [line for line in lines if "[FAIL]" in line and "tinct-colorize.py" in line]
    script = dest / "tinct-colorize.py"
    script.write_text(script.read_text(encoding="utf-8") + "# an older plug-in\n", "utf-8")
    lines.clear()
    assert doctor(tmp_path / "gimp", out=lines.append) == 1
    assert (
        "[FAIL] tinct-colorize.py is from another tinct (an old install?)\n"
        "       fix: run `tinct gimp install` again"
    ) in lines


def test_doctor_says_a_stale_bridge_json_and_its_fix_once(tmp_path, monkeypatch):
    # it was "[FAIL] ... is no longer running. Start the server with: tinct serve" and
    # then "fix: restart `tinct serve` to rewrite it": the advice twice, worded two ways
    monkeypatch.setenv("TINCT_CONFIG_DIR", str(tmp_path / "tinct"))
    install_plugin(tmp_path / "gimp")
    cfg = write_bridge_config(tmp_path / "bridge.json", "127.0.0.1", 5, "tok")
    cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "pid": 999_999_999}))
    lines: list[str] = []
    assert doctor(tmp_path / "gimp", cfg, out=lines.append) == 1
    assert (
        f"[FAIL] {cfg} is stale: the server that wrote it (pid 999999999) is no longer "
        "running\n       fix: Start the server with: tinct serve"
    ) in lines
