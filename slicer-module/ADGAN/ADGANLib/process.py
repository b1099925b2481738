"""Running ``adgan`` in its own process without blocking the caller.

:class:`JsonLinesProcess` starts a program that prints JSON lines on stdout
(``adgan train --json``), reads stdout and stderr on two threads into a
queue, and offers ``poll()`` (new events, never blocks), ``cancel()`` (never
blocks) and ``wait()``. A GUI polls it from a timer; a script waits on it.
A crash of the process becomes a ``finished`` event with status "failed"
and a message; it never raises into the caller.

Events are the program's own JSON objects (``{"event": "progress", ...}``,
``info``, ``result``, ``error``) plus:

- ``{"event": "log", "stream": "stdout"|"stderr", "message": line}`` for a
  line that is not a JSON object;
- exactly one final ``{"event": "finished", "status": "succeeded"|"failed"|
  "cancelled", "returncode": int, "message": str, "result": dict|None}``.
"""

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from . import locate
from .errors import AdganError
from .progress import wait_for_finish

_EOF = object()

PRESETS = {
    # Mirrors `adgan train --preset` (tests/python/test_parameters_and_maps.py
    # checks it against `adgan train --help`); shown in the panel, the
    # program applies them.
    "quick": {"phase1_iterations": 0, "phase2_iterations": 600, "batch_size": 32},
    "paper": {"phase1_iterations": 200000, "phase2_iterations": 150000, "batch_size": 64},
    "paper-quick": {"phase1_iterations": 200, "phase2_iterations": 300, "batch_size": 32},
}

CRITIC_INITS = ("fine-tune", "reset")


def parse_line(line, stream="stdout"):
    """One output line -> event dict (non-JSON lines become ``log`` events)."""
    text = line.rstrip("\r\n")
    if stream == "stdout" and text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and isinstance(obj.get("event"), str):
            return obj
    return {"event": "log", "stream": stream, "message": text}


def _signal_name(number):
    try:
        return signal.Signals(number).name
    except (ValueError, AttributeError):
        return f"signal {number}"


class JsonLinesProcess:
    """A child process whose stdout is JSON lines; see the module docstring."""

    def __init__(self, program, args, env=None, cwd=None, grace_seconds=5.0, name=None):
        self.program = str(program)
        self.args = [str(a) for a in args]
        self.env = env
        self.cwd = cwd
        self.grace_seconds = grace_seconds
        self.name = name or Path(self.program).name
        self._proc = None
        self._queue = queue.Queue()
        self._open_streams = 0
        self._cancel_requested = False
        self._finished = None
        self._result = None
        self._error_message = None
        self._stderr_tail = deque(maxlen=20)
        self._lock = threading.Lock()
        self.last_progress = None
        self.started_at = None

    @property
    def command(self):
        return [self.program, *self.args]

    def start(self):
        if self._proc is not None:
            raise AdganError(f"{self.name} was already started.")
        kwargs = {}
        if os.name == "posix":
            # Own process group: cancel reaches any helpers, and the terminal's
            # Ctrl-C does not reach the child (the host decides).
            kwargs["start_new_session"] = True
        elif sys.platform.startswith("win"):
            kwargs["creationflags"] = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0) | getattr(
                subprocess, "CREATE_NO_WINDOW", 0)
        try:
            self._proc = subprocess.Popen(
                self.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                env=self.env, cwd=self.cwd, text=True, encoding="utf-8", errors="replace", bufsize=1,
                **kwargs)
        except OSError as e:
            raise AdganError(f"Could not start {self.program}: {e.strerror or e}.") from e
        self.started_at = time.monotonic()
        self._open_streams = 2
        for stream, pipe in (("stdout", self._proc.stdout), ("stderr", self._proc.stderr)):
            t = threading.Thread(target=self._read, args=(stream, pipe), daemon=True,
                                 name=f"{self.name}-{stream}")
            t.start()
        return self

    def _read(self, stream, pipe):
        try:
            for line in pipe:
                self._queue.put(parse_line(line, stream))
        except (OSError, ValueError):
            pass
        finally:
            try:
                pipe.close()
            except OSError:
                pass
            self._queue.put(_EOF)

    @property
    def pid(self):
        return self._proc.pid if self._proc else None

    @property
    def running(self):
        return self._proc is not None and self._finished is None

    @property
    def finished(self):
        """The final event once the process ended and its output was read."""
        return self._finished

    @property
    def result(self):
        return self._result

    @property
    def stderr_tail(self):
        return "\n".join(self._stderr_tail)

    @property
    def cancel_requested(self):
        return self._cancel_requested

    def _note(self, event):
        kind = event.get("event")
        if kind == "progress":
            self.last_progress = event
        elif kind == "result":
            self._result = event
        elif kind == "error":
            self._error_message = str(event.get("message", ""))
        elif kind == "log" and event.get("stream") == "stderr" and event.get("message"):
            self._stderr_tail.append(event["message"])

    def poll(self):
        """New events since the last call (never blocks)."""
        if self._proc is None:
            return []
        events = []
        with self._lock:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _EOF:
                    self._open_streams -= 1
                    continue
                self._note(item)
                events.append(item)
            if self._finished is None and self._open_streams == 0:
                returncode = self._proc.poll()
                if returncode is None:
                    # Streams closed but the process lingers: give it a moment.
                    try:
                        returncode = self._proc.wait(timeout=0.05)
                    except subprocess.TimeoutExpired:
                        returncode = None
                if returncode is not None:
                    self._finished = self._final_event(returncode)
                    events.append(self._finished)
        return events

    def _final_event(self, returncode):
        if returncode == 0 and self._error_message is None:
            status, message = "succeeded", f"{self.name} finished."
        elif self._cancel_requested:
            status, message = "cancelled", f"{self.name} was cancelled."
        else:
            status = "failed"
            if self._error_message:
                message = self._error_message
            elif returncode < 0:
                sig = _signal_name(-returncode)
                message = f"{self.name} crashed (killed by {sig})."
            else:
                message = f"{self.name} exited with code {returncode}."
            tail = self.stderr_tail.strip()
            if tail and not self._error_message:
                message += "\nLast output:\n" + tail
        return {"event": "finished", "status": status, "returncode": returncode,
                "message": message, "result": self._result}

    def cancel(self):
        """Ask the process to stop (SIGTERM, then SIGKILL after the grace
        period, on a helper thread). Returns at once."""
        if self._proc is None or self._proc.poll() is not None:
            return  # not started, or already ended: its own outcome stands
        self._cancel_requested = True
        self._signal(signal.SIGTERM if os.name == "posix" else None)

        def escalate(proc=self._proc, grace=self.grace_seconds):
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL if os.name == "posix" else None, kill=True)

        threading.Thread(target=escalate, daemon=True, name=f"{self.name}-cancel").start()

    def _signal(self, sig, kill=False):
        proc = self._proc
        try:
            if os.name == "posix" and sig is not None:
                try:
                    os.killpg(proc.pid, sig)
                except (ProcessLookupError, PermissionError):
                    proc.send_signal(sig)
            elif kill:
                proc.kill()
            else:
                proc.terminate()
        except (ProcessLookupError, OSError):
            pass

    def wait(self, timeout=None, on_event=None, interval=0.05):
        """Block until finished; returns the final event. ``on_event`` sees
        every event. Raises TimeoutError after ``timeout`` seconds."""
        return wait_for_finish(self, self.name, timeout, on_event, interval)


@dataclass
class TrainOptions:
    """Options of ``adgan train``; ``None`` leaves the preset's value."""

    cases: list  # one list of channel files per case
    output: str
    excludes: list = None  # one lesion label file per case, or None
    masks: list = None  # one brain mask per case, or None
    channel_names: list = None
    preset: str = "quick"
    phase1_iterations: int = None
    phase2_iterations: int = None
    batch_size: int = None
    alpha: float = None
    critic_init: str = None
    slice_axis: int = None
    max_patches: int = None
    seed: int = None
    log_every: int = None
    checkpoint_every: int = None
    restart: bool = False
    device: str = "auto"
    threads: int = 0
    extra_args: list = field(default_factory=list)

    def validate(self):
        if not self.cases:
            raise AdganError("Add at least one training volume.")
        cases = [[c] if isinstance(c, (str, os.PathLike)) else list(c) for c in self.cases]
        n = len(cases[0])
        if n == 0:
            raise AdganError("Training case 1 has no volume.")
        for i, case in enumerate(cases, start=1):
            if len(case) != n:
                raise AdganError(f"Training case {i} has {len(case)} channel(s), case 1 has {n}: "
                                 "every case needs the same channels in the same order.")
            for p in case:
                if not p:
                    raise AdganError(f"Training case {i} is missing a volume.")
        for what, lst in (("lesion label", self.excludes), ("brain mask", self.masks)):
            if lst is not None and any(lst):
                if len(lst) != len(cases) or not all(lst):
                    raise AdganError(f"Give a {what} for every training case or for none.")
        if self.channel_names is not None and len(self.channel_names) not in (0, n):
            raise AdganError(f"{len(self.channel_names)} channel name(s) for {n} channel(s).")
        if self.preset not in PRESETS:
            raise AdganError(f"Unknown preset {self.preset!r} (expected {', '.join(PRESETS)}).")
        if self.critic_init is not None and self.critic_init not in CRITIC_INITS:
            raise AdganError(f"Unknown critic initialisation {self.critic_init!r}.")
        if not self.output:
            raise AdganError("Choose the output model file.")
        return cases

    def iterations(self):
        preset = PRESETS[self.preset]
        n1 = self.phase1_iterations if self.phase1_iterations is not None else preset["phase1_iterations"]
        n2 = self.phase2_iterations if self.phase2_iterations is not None else preset["phase2_iterations"]
        return n1, n2

    def to_args(self):
        cases = self.validate()
        args = ["train"]
        for case in cases:
            args += ["--volume", ",".join(str(p) for p in case)]
        if self.masks and any(self.masks):
            for m in self.masks:
                args += ["--mask", str(m)]
        if self.excludes and any(self.excludes):
            for e in self.excludes:
                args += ["--exclude", str(e)]
        if self.channel_names:
            args += ["--channel-names", ",".join(self.channel_names)]
        args += ["--out", str(self.output), "--preset", self.preset]
        for flag, value in (
            ("--phase1-iterations", self.phase1_iterations),
            ("--phase2-iterations", self.phase2_iterations),
            ("--batch-size", self.batch_size),
            ("--alpha", self.alpha),
            ("--critic-init", self.critic_init),
            ("--slice-axis", self.slice_axis),
            ("--max-patches", self.max_patches),
            ("--seed", self.seed),
            ("--log-every", self.log_every),
            ("--checkpoint-every", self.checkpoint_every),
        ):
            if value is not None:
                args += [flag, str(value)]
        if self.restart:
            args.append("--restart")
        args += ["--device", self.device or "auto", "--threads", str(int(self.threads or 0))]
        args += [str(a) for a in self.extra_args]
        args.append("--json")
        return args


class TrainingProcess(JsonLinesProcess):
    """``adgan train --json`` in its own process."""

    def __init__(self, binary, options, env=None, grace_seconds=5.0):
        self.options = options
        super().__init__(binary, options.to_args(), env=env, grace_seconds=grace_seconds,
                         name="adgan train")


def start_training(options, binary=None, setting=None, environ=None, env=None):
    """Find the program (see :mod:`ADGANLib.locate`) and start training."""
    if binary is None:
        binary = locate.find_binary(setting=setting, environ=environ)
    return TrainingProcess(binary, options, env=env).start()


class JsonDocumentProcess(JsonLinesProcess):
    """A program that prints one JSON document on stdout (``adgan info
    --json``, pretty-printed over many lines): the document is parsed once the
    process ended and becomes ``document`` and the final event's ``result``."""

    def __init__(self, program, args, **kwargs):
        super().__init__(program, args, **kwargs)
        self._stdout_lines = []
        self.document = None

    def _note(self, event):
        super()._note(event)
        if event.get("event") == "log" and event.get("stream") == "stdout":
            self._stdout_lines.append(event["message"])

    def _final_event(self, returncode):
        final = super()._final_event(returncode)
        if final["status"] == "succeeded":
            text = "\n".join(self._stdout_lines).strip()
            try:
                self.document = json.loads(text)
            except ValueError:
                final.update(status="failed", message=f"{self.name} printed no JSON document: {text[:200]!r}")
            else:
                final["result"] = self.document
        return final


def model_info_process(binary, model_path, validation_png=None, env=None):
    """``adgan info --json MODEL`` (and the validation curve into a PNG)."""
    args = ["info", "--json"]
    if validation_png:
        args += ["--validation-png", str(validation_png)]
    args.append(str(model_path))
    return JsonDocumentProcess(binary, args, env=env, name="adgan info")


class ModelInfo:
    """What the panel shows about a model file, from ``adgan info --json``."""

    def __init__(self, path, document):
        self.path = Path(path)
        self.document = document
        self.channels = int(document.get("channels") or 0)
        names = list(document.get("channel_names") or [])
        if len(names) != self.channels:
            names = [f"ch{c}" for c in range(self.channels)]
        self.channel_names = names
        self.slice_axis = document.get("slice_axis")
        calibration = document.get("calibration") or {}
        self.patch_threshold = calibration.get("threshold")
        map_calibration = calibration.get("map") or {}
        # Maps are scored on the map calibration's scale when the model has
        # one (what `adgan score` reports as its threshold).
        self.threshold = float(map_calibration.get("threshold", self.patch_threshold or 3.0))
        self.training = document.get("training") or {}
        self.budget = document.get("budget") or {}
        self.selection = document.get("selection") or {}
        self.curve = [tuple(p) for p in (self.selection.get("curve") or [])]
        # The intensity gate of the maps (quick-preset models): the channel
        # and where normal tissue lies on it; None when maps are not gated.
        self.intensity_gate = document.get("intensity_gate")

    def check_channel_count(self, n):
        if n != self.channels:
            names = ", ".join(self.channel_names)
            raise AdganError(f"The model {self.path.name} needs {self.channels} input volume(s) ({names}), "
                             f"but {n} {'was' if n == 1 else 'were'} given.")

    def describe(self):
        """A few lines for the panel's model box."""
        lines = [f"{self.path.name}: {self.channels} channel(s) ({', '.join(self.channel_names)}), "
                 f"slice axis {self.slice_axis}."]
        b, t = self.budget, self.training
        n1 = b.get("phase1_iterations", t.get("phase1_iterations"))
        n2 = b.get("phase2_iterations", t.get("phase2_iterations"))
        if n1 is not None or n2 is not None:
            text = f"Budget: N={n1} phase-1, M={n2} phase-2 iterations"
            if t.get("batch_size"):
                text += f", batch {t['batch_size']}"
            seconds = (b.get("phase1_seconds") or 0) + (b.get("phase2_seconds") or 0)
            if seconds:
                text += f", {format_duration(seconds)} on {b.get('device', '?')}"
            if b.get("train_patches"):
                text += f", {b['train_patches']} training patches"
            lines.append(text + ".")
        text = f"Calibration: map threshold {self.threshold:.3g}"
        if self.patch_threshold is not None:
            text += f" (patch threshold {self.patch_threshold:.3g})"
        lines.append(text + ".")
        gate = self.intensity_gate
        if gate:
            c = int(gate.get("channel", 0))
            name = self.channel_names[c] if c < len(self.channel_names) else f"ch{c}"
            lines.append(f"Maps gated by intensity on {name}: only tissue brighter than the training "
                         f"volumes' normal median scores (1 at their 99.9th percentile).")
        else:
            lines.append("Maps not gated by intensity.")
        if self.curve:
            chosen = self.selection.get("chosen_iteration")
            auroc = self.selection.get("chosen_auroc")
            text = f"Validation: {len(self.curve)} point(s)"
            if chosen is not None and auroc is not None:
                text += f", snapshot of iteration {chosen} chosen (AUROC {auroc:.3f})"
            lines.append(text + ".")
        else:
            lines.append("Validation: none recorded.")
        return "\n".join(lines)


def format_duration(seconds):
    seconds = float(seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


@dataclass
class ScoreOptions:
    """Options of ``adgan score``."""

    model: str
    volumes: list  # channel files, in the model's order
    output: str
    mask: str = None
    stride: int = 8
    device: str = "auto"
    threads: int = 0
    extra_args: list = field(default_factory=list)

    def to_args(self):
        if not self.volumes:
            raise AdganError("Choose an input volume for every channel.")
        if not 1 <= int(self.stride) <= 32:
            raise AdganError(f"The stride must be 1 to 32 pixels, not {self.stride}.")
        args = ["score", "--json", "-m", str(self.model), "-v", ",".join(str(v) for v in self.volumes)]
        if self.mask:
            args += ["--mask", str(self.mask)]
        args += ["-o", str(self.output), "--stride", str(int(self.stride)), "--device", self.device or "auto",
                 "--threads", str(int(self.threads or 0))]
        return args + [str(a) for a in self.extra_args]


class ScoreProcess(JsonLinesProcess):
    """``adgan score --json`` in its own process: progress events (stage
    "score"), then the result (``map``, ``threshold``, ``max_score``, ...)."""

    def __init__(self, binary, options, env=None, grace_seconds=2.0):
        self.options = options
        super().__init__(binary, options.to_args(), env=env, grace_seconds=grace_seconds, name="adgan score")


# -- devices ---------------------------------------------------------------

# `adgan bench --what train --iters 5 --threads 2` on the project's 2-core
# CPU (2026-11-28, docs/SPEED.md): 0.538 phase-1 and 3.26 phase-2
# iterations/s at batch 64, i.e. 1.86 s and 0.31 s (a sixth) an iteration.
CPU_SECONDS_PER_PHASE1_ITERATION = 1.86
PHASE2_COST = 1 / 6


def devices_process(binary, env=None):
    """``adgan devices --json``: one result event with ``devices``,
    ``default``, ``cuda_device_count`` and ``cpu_threads``."""
    return JsonLinesProcess(binary, ["devices", "--json"], env=env, name="adgan devices")


def devices_from_final(final):
    """The device list from a finished ``adgan devices`` run. A program that
    cannot list them (older, or it failed) gives ``None``: offer auto and cpu."""
    result = final.get("result") if final else None
    if final and final.get("status") == "succeeded" and result and isinstance(result.get("devices"), list):
        return {"devices": [str(d) for d in result["devices"]], "default": result.get("default", "cpu"),
                "cuda_device_count": int(result.get("cuda_device_count") or 0),
                "cpu_threads": result.get("cpu_threads")}
    return None


def resolve_device(requested, devices):
    """The device to pass to adgan for a requested one, and a message when it
    falls back. ``devices`` is what :func:`devices_from_final` gave (``None``:
    unknown, pass the request on)."""
    requested = (requested or "auto").strip()
    if devices is None or requested in ("auto", "cpu"):
        return requested, None
    available = devices["devices"]
    if requested == "cuda":
        cudas = [d for d in available if d.startswith("cuda")]
        if cudas:
            return requested, None
    elif requested in available:
        return requested, None
    listed = ", ".join(available) or "none"
    return "cpu", f"{requested} is not available on this computer (devices: {listed}): using the CPU instead."


def runs_on_cpu(device, devices):
    """Whether a resolved device means the CPU (auto without a CUDA device too)."""
    if device == "cpu":
        return True
    if device == "auto":
        return devices is not None and devices.get("default", "cpu") == "cpu"
    return False


def cpu_training_estimate(phase1_iterations, phase2_iterations):
    """Rough seconds of a training run on a CPU: 1.86 s per phase-1 iteration
    and a sixth of that per phase-2 iteration at batch 64, as `adgan bench`
    measured on a 2-core machine; scaled by nothing else (cores, batch size,
    volume)."""
    n1, n2 = max(0, int(phase1_iterations or 0)), max(0, int(phase2_iterations or 0))
    return CPU_SECONDS_PER_PHASE1_ITERATION * (n1 + PHASE2_COST * n2)
