"""Smoke test of a frozen Semantic Studio (the PyInstaller folder, or an installed /opt/semstudio).

    python packaging/smoke_test.py [BUNDLE_DIR_OR_EXECUTABLE]     (default: dist/semstudio)

Runs the frozen app offscreen with ``--self-test`` (demo scene, a generation with the bundled model, the
bundled models and assets found, settings written to the user's config folder), then two CLI commands
(``models list --json``, ``generate --demo``), with a fresh HOME and config folder and no network
settings. Reports the bundle's unpacked size and checks the CPU limit (1.2 GB). Exit 0 when all pass.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LIMIT_MB = 1200            # 1.2 GB, read strictly: 1.2e9 bytes (MB here are 10^6 bytes)


def folder_mb(d: Path) -> float:
    return sum(p.stat().st_size for p in d.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6


def main(argv: list[str]) -> int:
    target = Path(argv[0] if argv else "dist/semstudio")
    exe = (target if target.is_file() else target / ("semstudio.exe" if os.name == "nt" else "semstudio")).absolute()
    if not exe.exists():
        print(f"no frozen app at {exe}: build one with `make package`", file=sys.stderr)
        return 2
    bundle = exe.resolve().parent
    size = folder_mb(bundle)
    print(f"bundle {bundle}: {size:.0f} MB unpacked (CPU limit {LIMIT_MB} MB)")
    ok = size <= LIMIT_MB
    home = Path(tempfile.mkdtemp(prefix="semstudio_smoke_"))
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(QT_QPA_PLATFORM="offscreen", HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_DATA_HOME=str(home / ".local/share"), HF_HUB_OFFLINE="1", PYTHONNOUSERSITE="1")
    env.pop("SEMSTUDIO_CONFIG_DIR", None)
    env.pop("SEMSTUDIO_DATA_DIR", None)
    env.pop("SEMSTUDIO_RESOURCES", None)
    runs = [("self-test", [str(exe), "--self-test"]),
            ("models list", [str(exe), "models", "list", "--json"]),
            ("generate", [str(exe), "generate", "--demo", "-o", str(home / "demo.png")])]
    for name, cmd in runs:
        t = time.perf_counter()
        r = subprocess.run(cmd, env=env, cwd=home, capture_output=True, text=True, timeout=600)
        dt = time.perf_counter() - t
        good = r.returncode == 0
        if name == "models list" and good:
            states = {e["name"]: e["state"] for e in json.loads(r.stdout)}
            good = bool(states) and all(v == "ok" for v in states.values())
        if name == "generate" and good:
            good = (home / "demo.png").stat().st_size > 1000
        print(f"{'ok  ' if good else 'FAIL'} {name} ({dt:.1f} s, exit {r.returncode})")
        for line in (r.stdout.strip().splitlines() if name == "self-test" else []):
            print("     " + line)
        if not good:
            print(r.stdout[-2000:], r.stderr[-3000:], sep="\n")
        ok &= good
    settings = home / ".config" / "SemanticStudio" / "settings.json"
    placed = settings.exists() and not any(bundle.rglob("settings.json"))
    print(f"{'ok  ' if placed else 'FAIL'} settings written to {settings}, none beside the executable")
    ok &= placed
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
