"""Render the photo workflow to docs/screenshots/ (offscreen): a CamVid photo auto-labelled, its trees
swapped for buildings, and the changed region regenerated (the rest of the photo untouched).

    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/screenshots_photo.py
"""
import sys
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.main_window import MainWindow  # noqa: E402
from app.settings import Settings  # noqa: E402


def wait_jobs(win, app) -> None:
    loop = QEventLoop()
    timer = QTimer()
    timer.timeout.connect(lambda: (not win._photo_jobs) and loop.quit())
    timer.start(100)
    QTimer.singleShot(120_000, loop.quit)
    loop.exec()
    timer.stop()
    app.processEvents()


def main() -> int:
    out = ROOT / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication([])
    import tempfile

    win = MainWindow(interactive_errors=False, settings=Settings(Path(tempfile.mkdtemp()) / "s.json"))
    win.resize(1400, 760)
    win.show()
    photo = ROOT.parent / "shared" / "datasets" / "camvid_segnet" / "val" / "0016E5_08079.png"
    win.new_from_photo(photo)
    win.auto_label()
    wait_jobs(win, app)
    win.opacity_slider.setValue(55)
    win.canvas.fit()
    app.processEvents()
    win.canvas._mouse = None
    win.grab().save(str(out / "photo_autolabel.png"))
    ls = win.doc.labelset
    lab = win.doc.labels.copy()
    win.doc.replace_labels(np.where(lab == ls.index_of("tree"), ls.index_of("building"), lab), "Trees to buildings")
    win.regenerate_region()
    wait_jobs(win, app)
    win.opacity_slider.setValue(0)
    app.processEvents()
    win.grab().save(str(out / "photo_region_regenerated.png"))
    print(f"wrote {out}/photo_autolabel.png and photo_region_regenerated.png")
    win.client.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
