import threading
import time

import numpy as np
import pytest

from engine.api import CallableRequest, GenerateRequest
from engine.worker import Worker


class Recorder:
    def __init__(self):
        self.events = []
        self.cv = threading.Condition()

    def __call__(self, ev):
        with self.cv:
            self.events.append(ev)
            self.cv.notify_all()

    def wait_for(self, job_id, kinds, timeout=60):
        end = time.monotonic() + timeout
        with self.cv:
            while True:
                for ev in self.events:
                    if ev.job_id == job_id and ev.kind in kinds:
                        return ev
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"job {job_id}: no {kinds} in {[(e.job_id, e.kind) for e in self.events]}")
                self.cv.wait(left)

    def kinds(self, job_id):
        return [e.kind for e in self.events if e.job_id == job_id]


@pytest.fixture
def worker():
    w = Worker("cpu")
    rec = Recorder()
    w.add_listener(rec)
    w.rec = rec
    yield w
    w.shutdown()


def _spin(ctx):
    for i in range(10_000):
        ctx.progress(i / 10_000, "spinning")
        time.sleep(0.002)
    return "finished"


def test_cancel_running_and_queued_jobs(worker):
    running = worker.submit(CallableRequest(fn=_spin))
    queued = worker.submit(CallableRequest(fn=_spin))
    worker.rec.wait_for(running, {"progress"})
    assert worker.cancel(queued)
    assert worker.cancel(running)
    worker.rec.wait_for(running, {"cancelled"})
    worker.rec.wait_for(queued, {"cancelled"})
    assert "result" not in worker.rec.kinds(running)
    assert worker.rec.kinds(queued) == ["queued", "cancelled"]       # never started
    assert worker.rec.kinds(running)[:2] == ["queued", "started"]


def test_exception_becomes_error_event_and_worker_survives(worker):
    def boom(ctx):
        raise RuntimeError("the model exploded")
    j = worker.submit(CallableRequest(fn=boom))
    ev = worker.rec.wait_for(j, {"error"})
    assert ev.error == "the model exploded"
    k = worker.submit(CallableRequest(fn=lambda ctx: 42))
    assert worker.rec.wait_for(k, {"result"}).result == 42


def test_latest_wins_replaces_queued_live_requests(worker):
    block = worker.submit(CallableRequest(fn=lambda ctx: time.sleep(0.3)))
    ids = [worker.submit(CallableRequest(fn=lambda ctx, i=i: i, replace_key="live")) for i in range(5)]
    last = worker.rec.wait_for(ids[-1], {"result"})
    assert last.result == 4
    for i in ids[:-1]:
        assert worker.rec.kinds(i) == ["queued", "cancelled"]
    worker.rec.wait_for(block, {"result"})


def test_generate_with_demo_model(worker):
    from engine.labels import read_label_png, get_labelset
    from engine.paths import demo_dir

    labels = read_label_png(demo_dir() / "scene_labels.png", get_labelset("camvid_11"))
    j = worker.submit(GenerateRequest(labels=labels))
    res = worker.rec.wait_for(j, {"result", "error"}, timeout=120)
    assert res.kind == "result", res.error
    img = res.result.image
    assert img.dtype == np.uint8 and img.shape[2] == 3 and img.std() > 5
    assert (img.shape[1], img.shape[0]) == res.result.size
    bad = worker.submit(GenerateRequest(labels=np.full((10, 10), 99)))
    ev = worker.rec.wait_for(bad, {"error", "result"})
    assert ev.kind == "error" and "99" in ev.error


def test_video_request_reports_each_frame_and_cancels_between_frames(worker, tmp_path):
    from engine.api import VideoRequest
    from engine.labels import get_labelset, write_label_png
    from engine.video.export import probe_mp4
    from engine.video.sequence import load_sequence

    ls = get_labelset("camvid_11")
    for t in range(16):
        lab = np.full((48, 64), 3, np.int32)
        lab[10:30, 5 + 2 * t:25 + 2 * t] = 8
        write_label_png(tmp_path / "lab" / f"{t:03d}.png", lab, ls)
    tl = load_sequence(tmp_path / "lab", ls, fps=10)
    tl.set_range(0, 4)
    j = worker.submit(VideoRequest(timeline=tl, output=str(tmp_path / "v.mp4"), size=(64, 48)))
    res = worker.rec.wait_for(j, {"result", "error"}, timeout=120)
    assert res.kind == "result", res.error
    stages = [e.stage for e in worker.rec.events if e.job_id == j and e.kind == "progress"]
    assert [s for s in stages if s.startswith("frame")] == ["frame 1", "frame 2", "frame 3", "frame 4"]
    assert res.result.frames == 4 and probe_mp4(tmp_path / "v.mp4")["frames"] == 4
    # cancelled after the first frame: no video file, a cancelled event
    tl.set_range(0, None)
    seen = threading.Event()
    worker.add_listener(lambda ev: ev.stage == "frame 1" and seen.set())
    k = worker.submit(VideoRequest(timeline=tl, output=str(tmp_path / "c.mp4"), size=(64, 48)))
    assert seen.wait(60)
    worker.cancel(k)
    ev = worker.rec.wait_for(k, {"result", "cancelled", "error"}, timeout=60)
    assert ev.kind == "cancelled" and not (tmp_path / "c.mp4").exists()


def test_import_torch_pauses_and_restores_the_collector_and_freezes_the_import():
    """In a fresh interpreter (torch not imported yet): the engine's torch import leaves the collector
    enabled as it was, with torch's objects moved to the permanent generation."""
    import subprocess
    import sys

    code = ("import gc, sys\n"
            "from engine.torch_preload import import_torch\n"
            "assert 'torch' not in sys.modules\n"
            "before = gc.get_freeze_count()\n"
            "t = import_torch()\n"
            "print(t.__name__, gc.isenabled(), gc.get_freeze_count() - before > 100000)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-500:]
    assert out.stdout.split() == ["torch", "True", "True"]
