"""Inject faults while traffic flows: each step fires when the sender has finished a given share
of its deliveries, or at the latest ``max_wait`` seconds after the previous step (so a restart is
never held back by a stall that the outage itself caused)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Step:
    at_fraction: float
    name: str
    action: Callable[[], object]
    max_wait: float = 30.0


@dataclass
class FaultInjector:
    total: int
    steps: list[Step]
    done: int = 0
    finished: bool = False
    log: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self):
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="fault-injector", daemon=True)
        self._started = time.monotonic()

    def progress(self, finished: int) -> None:
        with self._lock:
            self.done = max(self.done, finished)

    def start(self) -> None:
        self._thread.start()

    def finish(self) -> None:
        """The sender is done: run whatever steps are left (restarts above all), then return."""
        self.finished = True
        self._thread.join(timeout=600)

    def _run(self) -> None:
        last = time.monotonic()
        for step in self.steps:
            threshold = int(step.at_fraction * self.total)
            while (
                self.done < threshold
                and not self.finished
                and time.monotonic() - last < step.max_wait
            ):
                time.sleep(0.02)
            try:
                result = step.action()
            except Exception as exc:  # noqa: BLE001 - reported by the test
                self.errors.append(f"{step.name}: {exc!r}")
                result = None
            last = time.monotonic()
            self.log.append(
                {
                    "step": step.name,
                    "after_deliveries": self.done,
                    "seconds": round(last - self._started, 2),
                    "result": result,
                }
            )
