"""Render the editor with the demo scene and a generated result to docs/editor.png (offscreen).

    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/screenshot.py [OUT.png]
"""
import sys
from pathlib import Path

from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.main_window import MainWindow  # noqa: E402
from engine.paths import demo_dir  # noqa: E402


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "editor.png"
    app = QApplication.instance() or QApplication([])
    win = MainWindow(labels_path=demo_dir() / "scene_labels.png", interactive_errors=False)
    win.resize(1400, 760)
    win.show()
    win.canvas.fit()
    loop = QEventLoop()
    win.generated.connect(lambda _r: loop.quit())
    QTimer.singleShot(120_000, loop.quit)
    win.generate()
    loop.exec()
    app.processEvents()
    win.canvas._mouse = None
    out.parent.mkdir(parents=True, exist_ok=True)
    win.grab().save(str(out))
    print(f"wrote {out}")
    win.client.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
