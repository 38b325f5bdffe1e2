"""The Sandbox is handed its parts (bwsandbox/parts.py) rather than building
its worker itself; `Sandbox(settings)` keeps working as the shorthand."""

from __future__ import annotations

from pathlib import Path

import pytest

from bwsandbox.clock import Clock
from bwsandbox.config import load
from bwsandbox.ingest.worker import Worker
from bwsandbox.parts import Parts, build
from bwsandbox.sandbox import Sandbox


def test_the_sandbox_uses_the_parts_it_is_handed(tmp_path: Path) -> None:
    settings = load({"data_dir": tmp_path}, env={})
    clock = Clock()
    parts = build(settings, clock=clock)
    sandbox = Sandbox(settings, parts=parts)
    assert sandbox.worker is parts.worker and sandbox.clock is clock
    assert sandbox.file_events is parts.file_events
    assert parts.worker is not None and parts.worker.events is parts.file_events  # one signal


def test_the_shorthands_build_the_same_parts(tmp_path: Path) -> None:
    settings = load({"data_dir": tmp_path}, env={})
    clock = Clock()
    assert Sandbox(settings, ingest=False).worker is None
    with_worker = Sandbox(settings, clock=clock)
    assert with_worker.clock is clock and isinstance(with_worker.worker, Worker)


def test_parts_and_shorthands_together_are_refused(tmp_path: Path) -> None:
    settings = load({"data_dir": tmp_path}, env={})
    with pytest.raises(TypeError):
        Sandbox(settings, ingest=False, parts=build(settings))


def test_a_worker_telling_another_signal_is_refused(tmp_path: Path) -> None:
    """Waiters listen to the sandbox's file_events: a worker notifying
    another one would leave them waiting until their timeout."""
    settings = load({"data_dir": tmp_path}, env={})
    usual = build(settings)
    stray = Parts(clock=usual.clock, file_events=usual.file_events, worker=Worker(settings),
                  connect=usual.connect, inbox=usual.inbox)
    with pytest.raises(ValueError, match="file_events"):
        Sandbox(settings, parts=stray)
