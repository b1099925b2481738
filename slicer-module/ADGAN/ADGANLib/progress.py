"""Turning progress events into what a panel shows: a percentage and a line."""

import math
import time

STAGE_LABELS = {
    "prepare": "Preparing patches",
    "wgan": "Phase 1 (WGAN-GP)",
    "critic": "Phase 2 (critic, concentration loss)",
    "calibrate": "Calibrating scores",
    "score": "Scoring",
}


def _fmt(value):
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(v):
        return str(v)
    return f"{v:.4g}"


def describe(event):
    """A one-line description of an event (adgan JSON line or our own)."""
    kind = event.get("event")
    if kind == "progress":
        stage = event.get("stage", "")
        label = STAGE_LABELS.get(stage, stage)
        it, total = event.get("iteration"), event.get("total")
        text = f"{label}: {it}/{total}" if total else label
        losses = []
        for key, name in (("critic_loss", "critic loss"), ("generator_loss", "generator loss"),
                          ("wasserstein", "Wasserstein estimate")):
            v = _fmt(event.get(key))
            if v is not None:
                losses.append(f"{name} {v}")
        if losses:
            text += " - " + ", ".join(losses)
        return text
    if kind == "error":
        return "Error: " + str(event.get("message", ""))
    if kind == "result":
        if "model" in event:
            return f"Model written: {event['model']}"
        return "Result: " + ", ".join(f"{k}={v}" for k, v in event.items() if k != "event")
    if kind == "finished":
        return str(event.get("message", ""))
    return str(event.get("message", ""))


class ProgressTracker:
    """Overall progress of a training run (0-100) from its progress events.

    Phase 1 iterations cost about ``n_critic + 1`` phase 2 iterations (each
    runs ``n_critic`` critic updates with gradient penalty and one generator
    update), so the bar moves evenly in time rather than per iteration."""

    PREPARE = 3.0
    CALIBRATE = 3.0

    def __init__(self, phase1_iterations=None, phase2_iterations=None, n_critic=5):
        n1 = max(0, phase1_iterations or 0)
        n2 = max(0, phase2_iterations or 0)
        body = 100.0 - self.PREPARE - self.CALIBRATE
        if n1 + n2 == 0:
            w1 = w2 = body / 2
        else:
            cost1, cost2 = n1 * (n_critic + 1), n2
            w1 = body * cost1 / (cost1 + cost2)
            w2 = body - w1
        self._spans = {
            "prepare": (0.0, self.PREPARE),
            "wgan": (self.PREPARE, self.PREPARE + w1),
            "critic": (self.PREPARE + w1, self.PREPARE + w1 + w2),
            "calibrate": (100.0 - self.CALIBRATE, 100.0),
            "score": (0.0, 100.0),
        }
        self.percent = 0.0
        self.stage = None
        self.text = ""

    def update(self, event):
        """Take an event; returns True when the percentage or text changed."""
        kind = event.get("event")
        before = (self.percent, self.text)
        if kind == "progress":
            stage = event.get("stage")
            lo, hi = self._spans.get(stage, (self.percent, self.percent))
            total = event.get("total") or 0
            it = event.get("iteration") or 0
            frac = min(1.0, max(0.0, it / total)) if total else 0.0
            # Never move backwards (a resumed checkpoint restarts counting).
            self.percent = max(self.percent, lo + (hi - lo) * frac)
            self.stage = stage
            self.text = describe(event)
        elif kind == "finished":
            if event.get("status") == "succeeded":
                self.percent = 100.0
            self.text = describe(event)
        elif kind in ("info", "error"):
            self.text = describe(event)
        return (self.percent, self.text) != before

    @property
    def value(self):
        """Integer percentage for a progress bar."""
        return int(round(self.percent))


def wait_for_finish(job, what, timeout=None, on_event=None, interval=0.05, on_idle=None):
    """Poll ``job`` (``poll()`` gives the new events, ``finished`` the final
    one once there is one) until it has finished, and return the final event.
    ``on_event`` sees every event; ``on_idle`` (e.g. Slicer's processEvents)
    runs between polls. Raises TimeoutError after ``timeout`` seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        for event in job.poll():
            if on_event is not None:
                on_event(event)
        if job.finished is not None:
            return job.finished
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"{what} still running after {timeout} s")
        if on_idle is not None:
            on_idle()
        time.sleep(interval)
