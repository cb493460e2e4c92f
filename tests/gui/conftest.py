"""The editor as the GUI tests drive it: the demo scene, its own settings and data folders."""
import pytest

from app.main_window import MainWindow
from app.settings import Settings
from engine.paths import demo_dir


@pytest.fixture
def win(qtbot, tmp_path, monkeypatch):
    """A shown MainWindow on the demo scene, settings and autosave/models under ``tmp_path``."""
    monkeypatch.setenv("SEMSTUDIO_DATA_DIR", str(tmp_path / "data"))
    w = MainWindow(labels_path=demo_dir() / "scene_labels.png", interactive_errors=False,
                   settings=Settings(tmp_path / "settings.json"))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    w.canvas.fit()
    yield w
    w.client.shutdown()

