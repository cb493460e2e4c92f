"""The single bridge between the app and the engine worker.

Requests go out to :class:`engine.worker.Worker`; its events come back as Qt signals. The worker calls
listeners on its own thread; emitting a signal from there to this QObject (living on the UI thread)
is delivered as a queued connection, so slots always run on the UI thread.

The live scheduler debounces canvas changes (0.25 s), skips unchanged inputs (hash), keeps at most
one generation in flight and lets the latest canvas state win.
"""
from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

from engine.api import Event, GenerateRequest, LoadModelRequest
from engine.worker import Worker


class EngineClient(QObject):
    event = Signal(object)             # every engine Event
    result = Signal(object, object)    # (Event, GenerateResult) of generations
    error = Signal(int, str)           # (job id, one-line message)
    busy_changed = Signal(bool)

    def __init__(self, device: str = "auto", parent=None):
        super().__init__(parent)
        self.worker = Worker(device)
        self.worker.add_listener(self._from_worker)
        self.event.connect(self._on_event)
        self._in_flight: set[int] = set()

    def _from_worker(self, ev: Event) -> None:   # worker thread
        self.event.emit(ev)

    def _on_event(self, ev: Event) -> None:      # UI thread
        if ev.kind == "queued":
            self._in_flight.add(ev.job_id)
        elif ev.kind in ("result", "error", "cancelled"):
            self._in_flight.discard(ev.job_id)
        if ev.kind == "result" and ev.request_kind == "GenerateRequest":
            self.result.emit(ev, ev.result)
        elif ev.kind == "error":
            self.error.emit(ev.job_id, ev.error or "unknown engine error")
        self.busy_changed.emit(bool(self._in_flight))

    def submit(self, req) -> int:
        return self.worker.submit(req)

    def generate(self, labels, model=None, seed=None, size=None, live=False, instances=None, controls=None) -> int:
        """Queue a generation of a snapshot of ``labels`` (and ``instances``; copied here, once)."""
        return self.submit(GenerateRequest(labels=labels.copy(), model=model, seed=seed, size=size,
                                           instances=None if instances is None else instances.copy(),
                                           controls=controls, replace_key="live" if live else None))

    def preload(self, model=None) -> int:
        return self.submit(LoadModelRequest(model=model))

    def cancel(self, job_id: int) -> bool:
        return self.worker.cancel(job_id)

    def shutdown(self) -> None:
        self.worker.shutdown()


class LiveScheduler(QObject):
    """Debounced live preview: latest wins, unchanged input skipped, one job in flight.

    A failed live generation switches live mode off (``failed``) instead of failing again on every edit.
    """

    failed = Signal(str)

    def __init__(self, client: EngineClient, get_labels, get_hash, delay_ms: int = 250, parent=None,
                 get_inputs=None):
        super().__init__(parent)
        self.client, self.get_labels, self.get_hash = client, get_labels, get_hash
        # extra inputs of a generation (seed, instances, style controls) and their fingerprint
        self.get_inputs = get_inputs or (lambda: ({}, ""))
        self.enabled = False
        self.model = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(self._fire)
        self._last_hash: str | None = None
        self._job: int | None = None
        self._pending = False
        client.event.connect(self._on_event)

    def owns(self, job_id: int) -> bool:
        return job_id == self._job

    def set_enabled(self, on: bool) -> None:
        self.enabled = on
        if on:
            self.poke()
        else:
            self._timer.stop()

    def poke(self) -> None:
        if self.enabled:
            self._timer.start()

    def _fire(self) -> None:
        if self._job is not None:        # one in flight: run again when it finishes
            self._pending = True
            return
        kwargs, key = self.get_inputs()
        h = self.get_hash() + key
        if h == self._last_hash:
            return
        self._last_hash = h
        self._job = self.client.generate(self.get_labels(), model=self.model, live=True, **kwargs)

    def _on_event(self, ev: Event) -> None:
        if ev.job_id == self._job and ev.kind in ("result", "error", "cancelled"):
            self._job = None
            if ev.kind != "result":
                self._last_hash = None
            if ev.kind == "error":
                self._pending = False
                self.set_enabled(False)
                self.failed.emit(ev.error or "unknown engine error")
                return
            if self._pending:
                self._pending = False
                self._fire()
