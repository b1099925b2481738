//! Crashes lose nothing: a real `adgan train` process killed with SIGKILL
//! in phase 1 and again in phase 2, then rerun with the same command, ends
//! with the same model as an uninterrupted run with the same seed.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

fn train_args(volume: &Path, out: &Path) -> Vec<String> {
    let s = |p: &Path| p.to_str().unwrap().to_string();
    [
        "train",
        "-v",
        &s(volume),
        "-o",
        &s(out),
        "--preset",
        "paper-quick",
        "--phase1-iterations",
        "25",
        "--phase2-iterations",
        "25",
        "--batch-size",
        "8",
        "--checkpoint-every",
        "5",
        "--seed",
        "5",
        "--threads",
        "1",
        "--json",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect()
}

/// Run `adgan train` and SIGKILL it once a progress event of `stage` at
/// iteration `at` or later is printed; `None` runs it to the end. Returns
/// whether it was killed, and everything it printed.
fn run(args: &[String], kill_at: Option<(&str, u64)>) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_adgan"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run adgan");
    let mut log = String::new();
    let mut killed = false;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        let Some((stage, at)) = kill_at else { continue };
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if v["event"] == "progress" && v["stage"] == stage && v["iteration"].as_u64() >= Some(at) {
            child.kill().unwrap(); // SIGKILL: no handler, no clean-up
            killed = true;
            break;
        }
    }
    let status = child.wait().unwrap();
    if !killed {
        assert!(status.success(), "adgan train failed:\n{log}");
    }
    (killed, log)
}

/// A synthetic normal volume written as `normal.nii.gz` in `dir`.
fn normal_volume(dir: &Path) -> std::path::PathBuf {
    let (case, _) = common::synthetic_case([64, 64, 12], false);
    let volume = dir.join("normal.nii.gz");
    adgan::io::nifti::write_f32_volume(&volume, case.dims, None, &case.channels[0], "test")
        .unwrap();
    volume
}

#[test]
fn a_killed_training_resumes_to_the_same_model() {
    let dir = tempfile::tempdir().unwrap();
    let volume = normal_volume(dir.path());
    let straight = dir.path().join("straight.adgan");
    run(&train_args(&volume, &straight), None);

    let out = dir.path().join("killed.adgan");
    let ckpt = dir.path().join("killed.adgan.ckpt");
    let args = train_args(&volume, &out);
    let (killed, _) = run(&args, Some(("wgan", 12)));
    assert!(
        killed && ckpt.exists() && !out.exists(),
        "killed in phase 1"
    );
    let (killed, log) = run(&args, Some(("critic", 12)));
    assert!(
        killed && ckpt.exists() && !out.exists(),
        "killed in phase 2"
    );
    assert!(log.contains("resuming from checkpoint"), "{log}");
    let (_, log) = run(&args, None);
    assert!(log.contains("resuming from checkpoint"), "{log}");
    assert!(
        out.exists() && !ckpt.exists(),
        "finished, checkpoint removed"
    );

    // The same weights, to the bit, and the same calibration.
    let a = adgan::io::tensor_file::read(&straight, "model").unwrap();
    let b = adgan::io::tensor_file::read(&out, "model").unwrap();
    assert_eq!(a.tensors.len(), b.tensors.len());
    for (name, t) in &a.tensors {
        assert!(t.equal(&b.tensors[name]), "tensor {name} differs");
    }
    let ma = adgan::Model::load(&straight, tch::Device::Cpu).unwrap();
    let mb = adgan::Model::load(&out, tch::Device::Cpu).unwrap();
    assert_eq!(ma.meta.calibration, mb.meta.calibration);
    assert!(mb.meta.budget.resumed_at.is_some());
}

#[test]
fn a_checkpoint_that_cannot_be_written_fails_and_keeps_the_last_one() {
    // The disk "fills up" (a file-size limit: writes past 1 MB fail with
    // EFBIG) when training writes its next checkpoint: the run stops with
    // a message naming the checkpoint, the previous checkpoint is intact,
    // no temporary file is left, and a rerun with room resumes from it.
    let dir = tempfile::tempdir().unwrap();
    let volume = normal_volume(dir.path());
    let out = dir.path().join("full.adgan");
    let ckpt = dir.path().join("full.adgan.ckpt");
    let args = train_args(&volume, &out);
    let (killed, _) = run(&args, Some(("wgan", 12)));
    assert!(killed && ckpt.exists());
    let before = std::fs::read(&ckpt).unwrap();

    let mut quoted = vec![format!("'{}'", env!("CARGO_BIN_EXE_adgan"))];
    quoted.extend(args.iter().map(|a| format!("'{a}'")));
    let o = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f 1024; exec {}",
            quoted.join(" ")
        ))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("full.adgan.ckpt") && err.contains("write failed"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&ckpt).unwrap(),
        before,
        "the last checkpoint is intact"
    );
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["full.adgan.ckpt", "normal.nii.gz"],
        "no temporary file left"
    );

    let (_, log) = run(&args, None);
    assert!(
        log.contains("resuming from checkpoint") && out.exists(),
        "{log}"
    );
}
