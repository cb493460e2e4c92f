"""Entry point of the frozen app (PyInstaller): the same `semstudio` command as a source install."""
import multiprocessing
import os
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()          # distributed training spawns workers (Windows needs this)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from app.__main__ import main

    sys.exit(main())
