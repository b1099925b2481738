"""The training runner: `adgan train --json` in its own process, polled,
cancellable, and a crash reported as a message."""

import os
import stat
import sys
import time

import numpy as np
import pytest
from ADGANLib import nifti, process
from ADGANLib.errors import AdganError
from ADGANLib.process import JsonLinesProcess, TrainingProcess, TrainOptions, parse_line
from ADGANLib.progress import ProgressTracker, describe
from conftest import DEMO_FLAIR, TINY


def script(tmp_path, body, name="fake-adgan"):
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_tiny_training_reports_progress(trained):
    events = trained["events"]
    print(f"tiny training took {trained['seconds']:.1f} s")
    progress = [e for e in events if e["event"] == "progress"]
    stages = [e["stage"] for e in progress]
    assert {"wgan", "critic", "calibrate"} <= set(stages)
    assert stages.index("wgan") < stages.index("critic") < stages.index("calibrate")
    wgan = [e for e in progress if e["stage"] == "wgan"]
    assert wgan[-1]["iteration"] == wgan[-1]["total"] == 3
    assert "critic_loss" in wgan[-1] and "generator_loss" in wgan[-1]
    assert any(e["event"] == "info" for e in events)
    final = trained["final"]
    assert final["status"] == "succeeded" and final["returncode"] == 0
    assert final["result"]["model"] == str(trained["path"])
    assert events[-1] is final  # exactly one final event, last

    tracker = ProgressTracker(3, 3)
    values = []
    for e in events:
        tracker.update(e)
        values.append(tracker.percent)
    assert values == sorted(values) and values[-1] == 100
    assert "Phase 1 (WGAN-GP): 3/3 - critic loss" in describe(wgan[-1])


def test_cancel_stops_training_quickly(tmp_path, binary_path):
    img = nifti.read(DEMO_FLAIR)
    small = nifti.write(tmp_path / "small.nii.gz", img.array[60:90], img.affine)
    out = tmp_path / "never.adgan"
    options = TrainOptions(cases=[[str(small)]], output=str(out),
                           **dict(TINY, phase1_iterations=100000, phase2_iterations=100000))
    proc = process.start_training(options, setting=str(binary_path))
    assert proc.running and proc.pid
    assert proc.poll() == [] or True  # never blocks
    deadline = time.monotonic() + 120
    seen = []
    while not any(e["event"] == "progress" and e.get("stage") == "wgan" for e in seen):
        assert proc.finished is None, proc.finished
        assert time.monotonic() < deadline, "no progress within 120 s"
        seen += proc.poll()
        time.sleep(0.05)
    t0 = time.monotonic()
    proc.cancel()
    final = proc.wait(timeout=30)
    assert time.monotonic() - t0 < 10
    assert final["status"] == "cancelled" and final["message"] == "adgan train was cancelled."
    assert not out.exists()
    assert proc.poll() == []  # the final event came once
    proc.cancel()  # after the end: nothing happens


def test_crash_is_reported(tmp_path):
    fake = script(tmp_path, """
echo '{"event":"progress","stage":"wgan","iteration":1,"total":10,"critic_loss":1.5}'
echo 'thread main panicked: out of memory' >&2
kill -SEGV $$
""")
    proc = JsonLinesProcess(fake, [], name="adgan train").start()
    events = []
    final = proc.wait(timeout=30, on_event=events.append)
    # stdout and stderr are read on two threads: their relative order is not
    # defined, only that every line of each arrives.
    assert [e["event"] for e in events if e.get("stream") != "stderr"][0] == "progress"
    assert any(e.get("stream") == "stderr" and "out of memory" in e["message"] for e in events)
    assert final["status"] == "failed" and final["returncode"] < 0
    assert final["message"].startswith("adgan train crashed (killed by SIGSEGV).")
    assert "out of memory" in final["message"]


def test_error_event_is_the_message(tmp_path, binary_path):
    missing = tmp_path / "missing.nii.gz"
    options = TrainOptions(cases=[[str(missing)]], output=str(tmp_path / "m.adgan"), **TINY)
    proc = TrainingProcess(binary_path, options).start()
    final = proc.wait(timeout=60)
    assert final["status"] == "failed" and final["returncode"] != 0
    assert str(missing) in final["message"]
    assert "Last output" not in final["message"]


def test_exit_code_and_non_json_output(tmp_path):
    fake = script(tmp_path, "echo hello\necho '{not json'\nexit 3\n")
    proc = JsonLinesProcess(fake, []).start()
    events = []
    final = proc.wait(timeout=30, on_event=events.append)
    assert [e["message"] for e in events if e["event"] == "log"] == ["hello", "{not json"]
    assert final["status"] == "failed" and final["message"] == "fake-adgan exited with code 3."


def test_missing_program(tmp_path):
    options = TrainOptions(cases=[["a.nii"]], output="m.adgan")
    with pytest.raises(AdganError, match="Could not start .*no-such-adgan"):
        TrainingProcess(tmp_path / "no-such-adgan", options).start()


def test_gui_never_blocks_on_poll(tmp_path):
    fake = script(tmp_path, "sleep 5\n")
    proc = JsonLinesProcess(fake, [], grace_seconds=1).start()
    t0 = time.monotonic()
    for _ in range(20):
        assert proc.poll() == []
    proc.cancel()
    assert time.monotonic() - t0 < 0.5
    assert proc.wait(timeout=10)["status"] == "cancelled"


def test_sigterm_ignored_then_killed(tmp_path):
    fake = script(tmp_path, "trap '' TERM\nwhile true; do sleep 0.1; done\n")
    proc = JsonLinesProcess(fake, [], grace_seconds=0.5).start()
    time.sleep(0.3)
    proc.cancel()
    final = proc.wait(timeout=15)
    assert final["status"] == "cancelled" and final["returncode"] == -9


def test_train_options_to_args():
    o = TrainOptions(cases=[["a.nii", "b.nii"], ["c.nii", "d.nii"]], output="out.adgan",
                     excludes=["la.nii", "lc.nii"], channel_names=["flair", "t2"], preset="paper",
                     phase1_iterations=10, alpha=0.5, critic_init="reset", slice_axis=1, device="cuda", seed=4)
    args = o.to_args()
    assert args[:5] == ["train", "--volume", "a.nii,b.nii", "--volume", "c.nii,d.nii"]
    assert args[args.index("--exclude") + 1] == "la.nii"
    assert args.count("--exclude") == 2
    assert args[args.index("--channel-names") + 1] == "flair,t2"
    for flag, value in (("--preset", "paper"), ("--phase1-iterations", "10"), ("--alpha", "0.5"),
                        ("--critic-init", "reset"), ("--slice-axis", "1"), ("--device", "cuda"), ("--seed", "4")):
        assert args[args.index(flag) + 1] == value
    assert "--phase2-iterations" not in args and "--mask" not in args
    assert args[-1] == "--json"
    assert o.iterations() == (10, 150000)


@pytest.mark.parametrize("kwargs,message", [
    (dict(cases=[]), "Add at least one training volume."),
    (dict(cases=[["a"], ["b", "c"]]), "Training case 2 has 2 channel(s), case 1 has 1"),
    (dict(cases=[["a"], ["b"]], excludes=["la", None]), "Give a lesion label for every training case or for none."),
    (dict(cases=[["a"]], channel_names=["x", "y"]), "2 channel name(s) for 1 channel(s)."),
    (dict(cases=[["a"]], preset="fast"), "Unknown preset 'fast'"),
    (dict(cases=[["a"]], output=""), "Choose the output model file."),
])
def test_train_options_validation(kwargs, message):
    kwargs.setdefault("output", "m.adgan")
    with pytest.raises(AdganError) as e:
        TrainOptions(**kwargs).validate()
    assert str(e.value).startswith(message)


def test_parse_line():
    assert parse_line('{"event":"info","message":"x"}\n') == {"event": "info", "message": "x"}
    assert parse_line("[1, 2]\n") == {"event": "log", "stream": "stdout", "message": "[1, 2]"}
    assert parse_line('{"event":"info"}', "stderr")["event"] == "log"


def test_progress_tracker_weights():
    t = ProgressTracker(300, 300)
    t.update({"event": "progress", "stage": "wgan", "iteration": 300, "total": 300})
    assert 80 < t.percent < 85  # phase 1 costs ~6x a phase-2 iteration
    t.update({"event": "progress", "stage": "wgan", "iteration": 10, "total": 300})
    assert 80 < t.percent  # never backwards
    t.update({"event": "progress", "stage": "calibrate", "iteration": 1, "total": 1})
    assert t.value == 100
    t = ProgressTracker()
    t.update({"event": "progress", "stage": "critic", "iteration": 1, "total": 2})
    assert 50 < t.percent < 100
    assert describe({"event": "progress", "stage": "calibrate", "iteration": 0, "total": 1}) == \
        "Calibrating scores: 0/1"
    assert describe({"event": "error", "message": "boom"}) == "Error: boom"


def test_runner_does_not_need_a_terminal(tmp_path):
    """The child gets its own session (the host's Ctrl-C does not reach it) and no stdin."""
    fake = script(tmp_path, f"exec {sys.executable} -c \"import os,sys; print(os.getsid(0)==os.getpid()); "
                            "print(sys.stdin.read()=='')\"\n")
    proc = JsonLinesProcess(fake, []).start()
    events = []
    proc.wait(timeout=30, on_event=events.append)
    assert [e["message"] for e in events if e["event"] == "log"] == ["True", "True"]


def test_written_volume_trains(tmp_path, binary_path):
    """What the panel exports (ADGANLib.nifti) is what adgan train reads,
    with a lesion label excluded; checked up to the first progress line."""
    img = nifti.read(DEMO_FLAIR)
    vol = nifti.write(tmp_path / "v.nii.gz", img.array[60:90].astype(np.float32), img.affine)
    label = np.zeros(img.array[60:90].shape, np.uint8)
    label[:, 100:140, 100:140] = 1
    lab = nifti.write(tmp_path / "l.nii.gz", label, img.affine)
    options = TrainOptions(cases=[[str(vol)]], excludes=[str(lab)], output=str(tmp_path / "m.adgan"),
                           **dict(TINY, phase1_iterations=1000))
    proc = TrainingProcess(binary_path, options).start()
    try:
        deadline = time.monotonic() + 120
        seen = []
        while not any(e["event"] == "progress" for e in seen):
            assert proc.finished is None, proc.finished
            assert time.monotonic() < deadline
            seen += proc.poll()
            time.sleep(0.05)
        infos = [e["message"] for e in seen if e["event"] == "info"]
        assert any("normal patch" in m for m in infos), infos
    finally:
        proc.cancel()
        proc.wait(timeout=30)
    assert os.path.exists(vol)
