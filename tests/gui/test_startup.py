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
