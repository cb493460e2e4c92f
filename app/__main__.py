"""``semstudio`` entry point: the editor, or a headless command.

- ``semstudio`` / ``semstudio open FILE``: the editor (the demo scene when no file is given);
- ``semstudio bench [--json]``: the benchmark;
- anything else (``generate``, ``stylize``, ``models``, ``train``, ``eval``): the engine's CLI.

Torch is not imported here: the window appears before any model loads.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

_T0 = time.perf_counter()


def run_editor(argv: list[str]) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="semstudio", description="Semantic Studio editor")
    p.add_argument("file", nargs="?", help="project (.semstudio) or label map to open (default: the demo scene)")
    p.add_argument("-m", "--model", help="model folder or checkpoint (default: the bundled demo model)")
    p.add_argument("--startup-probe", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--self-test", action="store_true",
                   help="open the demo scene, generate with the bundled model, check the bundled assets, exit")
    args = p.parse_args(argv)
    if args.self_test:
        return self_test()

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from engine.paths import demo_dir

    from .main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Semantic Studio")
    app.setOrganizationName("SemanticStudio")
    path = args.file or (demo_dir() / "scene_labels.png")
    win = MainWindow(labels_path=path, model=args.model)
    win.show()
    if args.startup_probe:
        def report():
            print(f"first-window {time.perf_counter() - _T0:.4f}", flush=True)
            win.client.shutdown()
            app.quit()
        QTimer.singleShot(0, report)
    else:
        QTimer.singleShot(200, lambda: win.client.preload(args.model))   # warm the model after the window is up
        QTimer.singleShot(300, win.offer_recovery)                        # after a crash: offer the autosave
    return app.exec()


def self_test(timeout_s: float = 300.0) -> int:
    """What an installed (or frozen) app must be able to do offline: the window on the demo scene, a
    generation with the bundled model on the engine thread, the bundled models and assets found, and
    settings written to the user's config folder. Prints one line per check; exit 0 when all pass."""
    import json
    import os

    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from engine.paths import demo_dir, resources_dir

    from .main_window import MainWindow
    from .settings import Settings, config_dir

    checks: list[tuple[str, bool, str]] = []
    app = QApplication.instance() or QApplication(sys.argv[:1])
    win = MainWindow(labels_path=demo_dir() / "scene_labels.png", interactive_errors=False)
    win.show()
    app.processEvents()
    checks.append(("window on the demo scene", win.doc.labels.shape == (360, 480), str(resources_dir())))
    box: dict = {}
    loop = QEventLoop()
    win.generated.connect(lambda res: (box.setdefault("res", res), loop.quit()))
    win.client.error.connect(lambda _j, msg: (box.setdefault("err", msg), loop.quit()))
    t0 = time.perf_counter()
    win.generate()
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()
    res = box.get("res")
    ok = res is not None and res.image.ndim == 3 and float(res.image.std()) > 5
    checks.append(("generate with the bundled model", ok,
                   f"{res.model_name} {res.size[0]}x{res.size[1]} on {res.device} in "
                   f"{time.perf_counter() - t0:.1f} s" if res is not None else box.get("err", "timed out")))
    from engine.registry import catalog

    states = {e["name"]: e["state"] for e in catalog() if e["where"] == "bundled"}
    checks.append(("bundled models intact", bool(states) and all(v == "ok" for v in states.values()),
                   json.dumps(states)))
    from engine.models.vgg import weights_path
    from engine.text.encoder import model_dir

    for name, fn in (("VGG19 weights (stylization)", weights_path), ("MiniLM text encoder", model_dir)):
        try:
            checks.append((name, True, str(fn())))
        except Exception as e:  # noqa: BLE001 - reported as a failed check
            checks.append((name, False, str(e)))
    s = Settings()
    s.set("self_test", time.strftime("%Y-%m-%d %H:%M:%S"))
    exe_dir = Path(sys.executable).resolve().parent
    where = Path(s.path).resolve()
    checks.append(("settings in the user config folder", where.exists() and exe_dir not in where.parents,
                   str(where)))
    win.client.shutdown()
    win.doc.undo_stack.setClean()
    win.close()
    for name, good, detail in checks:
        print(f"{'ok  ' if good else 'FAIL'} {name}: {detail}", flush=True)
    print(f"config folder: {config_dir()}; offline: {os.environ.get('HF_HUB_OFFLINE', '1') == '1'}")
    return 0 if all(c[1] for c in checks) else 1


USAGE = """usage: semstudio [open] [FILE]      the editor (a project, label map or photo)
       semstudio COMMAND ...        (semstudio COMMAND -h for its options)

commands:
  generate    label map to photo with a model
  stylize     photorealistic stylization from a style photo
  edit        text-guided edit of a photo (SIMGAN models)
  segment     label a photo with the segmenter
  video       label-map sequence to MP4 or PNG frames
  models      list, inspect, import and cluster models
  train       train a model (resumable)
  eval        evaluate a model (segmentation-based protocol, video metrics)
  bench       speed and memory benchmarks (--json)

options:
  --self-test  check the installation (window, bundled models, assets, settings) and exit"""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":
        from .bench import main as bench_main

        return bench_main(argv[1:])
    if not argv or argv[0] == "open" or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        return run_editor(argv[1:] if argv and argv[0] == "open" else argv)
    if argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    from engine.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
