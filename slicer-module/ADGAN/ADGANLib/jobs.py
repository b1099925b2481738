"""Scoring on a worker thread, with the same poll()/cancel()/wait() shape as
:class:`ADGANLib.process.JsonLinesProcess`.

ctypes releases the GIL while the library works, so the GUI thread stays
free; progress comes back through a queue the GUI drains from a timer.
"""

import queue
import threading
import time

from .errors import AdganError, CancelledError
from .progress import wait_for_finish


class ScoreJob:
    """``model.score(...)`` on a thread. Events: ``progress`` (stage "score"),
    then one ``finished`` with status succeeded/failed/cancelled; on success
    ``job.map`` holds the anomaly map."""

    def __init__(self, model, channels, mask=None, stride=8, slice_axis=-1):
        self.model = model
        # Copies made now, on the caller's thread: the caller may change its
        # arrays (Slicer volumes) while the job runs.
        self._channels = [a.copy() for a in channels]
        self._mask = None if mask is None else mask.copy()
        self.stride = stride
        self.slice_axis = slice_axis
        self._queue = queue.Queue()
        self._cancel = threading.Event()
        self._thread = None
        self._finished = None
        self.map = None
        self.error = None
        self.started_at = None
        self.seconds = None

    def start(self):
        if self._thread is not None:
            raise AdganError("The scoring job was already started.")
        self.started_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True, name="adgan-score")
        self._thread.start()
        return self

    def _on_progress(self, stage, iteration, total, critic_loss, generator_loss):
        self._queue.put({"event": "progress", "stage": stage, "iteration": iteration, "total": total})
        return self._cancel.is_set()

    def _run(self):
        try:
            result = self.model.score(self._channels, mask=self._mask, stride=self.stride,
                                      slice_axis=self.slice_axis, progress=self._on_progress)
            self.map = result
            event = {"event": "finished", "status": "succeeded", "message": "Scoring finished."}
        except CancelledError:
            event = {"event": "finished", "status": "cancelled", "message": "Scoring was cancelled."}
        except AdganError as e:
            self.error = e
            event = {"event": "finished", "status": "failed", "message": str(e)}
        except Exception as e:  # report, never lose an error on a thread
            self.error = e
            event = {"event": "finished", "status": "failed", "message": f"Scoring failed: {e!r}"}
        finally:
            self._channels, self._mask = None, None
        self.seconds = time.monotonic() - self.started_at
        event["seconds"] = self.seconds
        self._queue.put(event)

    @property
    def running(self):
        return self._thread is not None and self._finished is None

    @property
    def finished(self):
        return self._finished

    def cancel(self):
        self._cancel.set()

    def poll(self):
        events = []
        while True:
            try:
                event = self._queue.get_nowait()
            except queue.Empty:
                break
            if event.get("event") == "finished":
                self._finished = event
            events.append(event)
        return events

    def wait(self, timeout=None, on_event=None, interval=0.05):
        """Block until finished; see ``progress.wait_for_finish``."""
        return wait_for_finish(self, "scoring", timeout, on_event, interval)
