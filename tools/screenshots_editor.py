"""Render the editor's layer and instance state to docs/screenshots/ (offscreen): the demo scene with
three cars painted as separate instances (outlines on), a sketch on the edge layer, the Layers panel
and the History panel.

    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/screenshots_editor.py
"""
import sys
import tempfile
from pathlib import Path

from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.main_window import MainWindow  # noqa: E402
from app.settings import Settings  # noqa: E402
from engine.paths import demo_dir  # noqa: E402


def main() -> int:
    out = ROOT / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication([])
    win = MainWindow(labels_path=demo_dir() / "scene_labels.png", interactive_errors=False,
                     settings=Settings(Path(tempfile.mkdtemp()) / "s.json"))
    win.resize(1400, 820)
    win.show()
    app.processEvents()
    c, doc = win.canvas, win.doc
    c.current_class = doc.labelset.index_of("car")
    win.palette_panel.select(c.current_class)
    for x0 in (40, 170, 300):                     # three cars, each its own instance (N before each)
        win.new_instance()
        doc.begin_stroke(x0, 280, 34, c.current_class, instance=c.current_instance)
        for dx in range(0, 100, 8):
            doc.continue_stroke(x0 + dx, 280 + (dx % 16) / 4)
        doc.end_stroke("Brush stroke")
    win.actions_["tool_split"].trigger()           # and one of them cut in two along a line
    from app.tools.shapes import line_mask

    doc.split_instance(3, line_mask((350, 250), (350, 310), 2, *doc.size, "round"))
    win.sketch_brush()
    doc.begin_stroke(250, 40, 3, 255, layer="edges")
    for x in range(250, 460, 6):
        doc.continue_stroke(x, 40 + 30 * ((x // 30) % 2))
    doc.end_stroke("Sketch")
    win.layers_panel.select("instances")
    win.palette_panel.toggle_favourite(doc.labelset.index_of("car"))
    win.palette_panel.toggle_favourite(doc.labelset.index_of("road"))
    c.fit()
    c._mouse = None
    app.processEvents()
    win.grab().save(str(out / "editor_layers_instances.png"))
    print(f"wrote {out}/editor_layers_instances.png")
    win.client.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
