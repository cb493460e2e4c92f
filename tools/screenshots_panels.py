"""Render the editor's panels to docs/screenshots/ (offscreen): Stylize with the jobs' result history,
the Timeline on real consecutive CamVid frames with rendered frames, the Prompt box, and the Models
dialog.

    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/screenshots_panels.py
"""
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.main_window import MainWindow  # noqa: E402
from app.settings import Settings  # noqa: E402
from engine.paths import demo_dir  # noqa: E402


def wait(win, app, kind: str, timeout_s: int = 600) -> None:
    loop = QEventLoop()

    def on(ev):
        if ev.kind in ("result", "error", "cancelled") and ev.request_kind == kind:
            QTimer.singleShot(200, loop.quit)
    win.client.event.connect(on)
    QTimer.singleShot(timeout_s * 1000, loop.quit)
    loop.exec()
    win.client.event.disconnect(on)
    app.processEvents()


def main() -> int:
    out = ROOT / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp())
    app = QApplication.instance() or QApplication([])
    win = MainWindow(labels_path=demo_dir() / "scene_labels.png", interactive_errors=False,
                     settings=Settings(tmp / "s.json"))
    win.resize(1500, 900)
    win.show()
    app.processEvents()
    win.generate()
    wait(win, app, "GenerateRequest")
    sp = win.stylize_panel
    titles = [sp.list.item(i).text() for i in range(sp.list.count())]
    sp.list.setCurrentRow(titles.index("CamVid street at dusk"))
    sp.region_btn.setChecked(True)
    win.side_docks["stylize"].raise_()
    sp.request()
    wait(win, app, "StylizeRequest")
    win.canvas.fit()
    win.grab().save(str(out / "panel_stylize_jobs.png"))
    win.side_docks["prompt"].raise_()
    app.processEvents()
    win.grab().save(str(out / "panel_prompt.png"))
    # the timeline on 8 consecutive CamVid validation frames with their labels; the first 4 rendered
    camvid = ROOT.parent / "shared" / "datasets" / "camvid_segnet"
    labels, frames = tmp / "labels", tmp / "frames"
    labels.mkdir()
    frames.mkdir()
    for p in sorted((camvid / "val").iterdir())[:8]:
        (frames / p.name).symlink_to(p)
        (labels / p.name).symlink_to(camvid / "valannot" / p.name)
    tp = win.timeline_panel
    tp.import_labels(str(labels), str(frames))
    tp.end.setValue(4)
    tp.render(str(tmp / "clip.mp4"))
    wait(win, app, "VideoRequest")
    tp.go_to(2)
    tp.onion.setChecked(True)
    win.side_docks["style"].raise_()
    win.opacity_slider.setValue(60)
    win.canvas.fit()
    app.processEvents()
    win.grab().save(str(out / "panel_timeline.png"))
    dlg = win.model_manager(interactive=False)
    wait(win, app, "CallableRequest")
    dlg.select("camvid_spade_demo")
    app.processEvents()
    dlg.grab().save(str(out / "models_dialog.png"))
    print(f"wrote {out}/panel_stylize_jobs.png, panel_prompt.png, panel_timeline.png, models_dialog.png")
    win.client.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
