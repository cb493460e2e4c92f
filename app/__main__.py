"""``semstudio`` entry point: the editor, or a headless command.

- ``semstudio`` / ``semstudio open FILE``: the editor (the demo scene when no file is given);
- ``semstudio bench [--json]``: the benchmark;
- anything else (``generate``, ``stylize``, ``models``, ``train``, ``eval``): the engine's CLI.

Torch is not imported here: the window appears before any model loads.
"""
from __future__ import annotations

import sys
import time

_T0 = time.perf_counter()


def run_editor(argv: list[str]) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="semstudio", description="Semantic Studio editor")
    p.add_argument("file", nargs="?", help="project (.semstudio) or label map to open (default: the demo scene)")
    p.add_argument("-m", "--model", help="model folder or checkpoint (default: the bundled demo model)")
    p.add_argument("--startup-probe", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

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


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":
        from .bench import main as bench_main

        return bench_main(argv[1:])
    if not argv or argv[0] == "open" or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        return run_editor(argv[1:] if argv and argv[0] == "open" else argv)
    if argv[0] in ("-h", "--help"):
        print("usage: semstudio [open FILE] | generate | stylize | models | train | eval | bench   "
              "(semstudio CMD -h for help)")
        return 0
    from engine.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
