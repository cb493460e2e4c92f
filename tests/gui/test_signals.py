"""Guard against PySide6 builds whose Signal.emit() from Python drops a reference to True (6.12.0 on
Python 3.11: the editor crashed with "bool_dealloc" after some hundreds of emits, i.e. a few strokes)."""
import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    changed = Signal(object)
    flag = Signal(bool)


def test_emit_keeps_the_refcounts_of_true_and_false():
    e = _Emitter()
    got = []
    e.flag.connect(got.append)
    t0, f0 = sys.getrefcount(True), sys.getrefcount(False)
    for i in range(5000):
        e.changed.emit((i, i + 1))
        e.flag.emit(i % 2 == 0)
    assert len(got) == 5000
    del got[:]
    assert abs(sys.getrefcount(True) - t0) < 50 and abs(sys.getrefcount(False) - f0) < 50
