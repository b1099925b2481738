//! The `adgan` command line as a user meets it.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn adgan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_adgan"))
        .args(args)
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .expect("run adgan")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn help_describes_every_option() {
    let o = adgan(&["train", "--help"]);
    assert!(o.status.success());
    let h = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--volume",
        "--mask",
        "--exclude",
        "--channel-names",
        "--out",
        "--preset",
        "--phase1-iterations",
        "--phase2-iterations",
        "--batch-size",
        "--n-critic",
        "--lambda-gp",
        "--alpha",
        "--phase1-alpha",
        "--pool-every",
        "--pool-draw",
        "--critic-init",
        "--lr",
        "--beta1",
        "--beta2",
        "--slice-axis",
        "--patch-stride",
        "--min-brain-fraction",
        "--calibration-fraction",
        "--max-patches",
        "--seed",
        "--checkpoint-every",
        "--checkpoint",
        "--restart",
        "--log-every",
        "--device",
        "--threads",
        "--json",
    ] {
        assert!(h.contains(flag), "train --help lacks {flag}");
    }
    every_option_is_described(&h);
    // The presets' budgets as the help states them are the ones training uses
    // (the Slicer panel mirrors them from this text, tests/python checks it).
    let flat = h.split_whitespace().collect::<Vec<_>>().join(" ");
    for (name, preset) in [
        ("paper", adgan::train::Preset::Paper),
        ("quick", adgan::train::Preset::Quick),
        ("paper-quick", adgan::train::Preset::PaperQuick),
    ] {
        let c = adgan::train::TrainConfig::preset(preset);
        let said = format!(
            "{name} (N={}, M={}, batch {}",
            c.phase1_iterations, c.phase2_iterations, c.batch_size
        );
        assert!(flat.contains(&said), "train --help does not say {said}");
    }
    let o = adgan(&["score", "--help"]);
    let h = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--model",
        "--volume",
        "--mask",
        "--out",
        "--stride",
        "--slice-axis",
        "--min-brain-fraction",
        "--batch-size",
        "--patches",
        "--device",
        "--json",
    ] {
        assert!(h.contains(flag), "score --help lacks {flag}");
    }
    every_option_is_described(&h);
}

/// In clap's long help every option header line is followed by an indented
/// description line.
fn every_option_is_described(help: &str) {
    let lines: Vec<&str> = help.lines().collect();
    let mut n = 0;
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim_start();
        if (t.starts_with("--") || t.starts_with("-"))
            && l.starts_with("  ")
            && !l.starts_with("          ")
        {
            n += 1;
            let next = lines.get(i + 1).copied().unwrap_or("");
            assert!(
                next.starts_with("          ") && next.trim().len() > 5,
                "option without description: {l}"
            );
        }
    }
    assert!(n > 5);
}

fn one_line_error_naming(o: &Output, name: &str) {
    assert!(!o.status.success());
    let e = stderr(o);
    let lines: Vec<&str> = e.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected: {e}");
    assert!(lines[0].contains(name), "{e}");
}

#[test]
fn score_with_a_missing_or_corrupt_model_or_volume_fails_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let flair = common::demo_dir().join("TCGA-FG-6692/fla_bet.nii.gz");
    let out = dir.path().join("map.nii.gz");
    let score = |model: &Path, volume: &Path, out: &Path| {
        adgan(&[
            "score",
            "-m",
            model.to_str().unwrap(),
            "-v",
            volume.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--device",
            "cpu",
        ])
    };
    let o = score(Path::new("missing.adgan"), &flair, &out);
    one_line_error_naming(&o, "missing.adgan");
    let corrupt = dir.path().join("corrupt.adgan");
    std::fs::write(&corrupt, vec![7u8; 1000]).unwrap();
    let o = score(&corrupt, &flair, &out);
    one_line_error_naming(&o, "corrupt.adgan");
    assert!(!out.exists());

    // A good model with a missing, then a corrupt volume.
    let model = common::tiny_model();
    let good = dir.path().join("good.adgan");
    model.save(&good).unwrap();
    let bad_volume = dir.path().join("broken_flair.nii.gz");
    std::fs::write(&bad_volume, [0x1f, 0x8b, 8, 0, 9, 9, 9, 9, 9, 9]).unwrap();
    for (volume, name) in [
        (
            dir.path().join("absent_flair.nii.gz"),
            "absent_flair.nii.gz",
        ),
        (bad_volume.clone(), "broken_flair.nii.gz"),
    ] {
        let o = score(&good, &volume, &out);
        one_line_error_naming(&o, name);
    }
    assert!(!out.exists());

    // An output that cannot be written is refused before any work: a
    // folder, or a file in a folder that does not exist (train and score).
    let nowhere = dir.path().join("no-such-folder/map.nii.gz");
    for o_path in [dir.path().to_path_buf(), nowhere.clone()] {
        let o = score(&good, &flair, &o_path);
        one_line_error_naming(&o, o_path.to_str().unwrap());
        let o = adgan(&[
            "train",
            "-v",
            flair.to_str().unwrap(),
            "-o",
            o_path.to_str().unwrap(),
            "--preset",
            "quick",
            "--device",
            "cpu",
        ]);
        one_line_error_naming(&o, o_path.to_str().unwrap());
    }
    assert!(!nowhere.parent().unwrap().exists());
}

#[test]
fn train_score_info_in_json_mode() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let (case, label) = common::synthetic_case([64, 64, 16], true);
    adgan::io::nifti::write_f32_volume(&p("a.nii.gz"), case.dims, None, &case.channels[0], "test")
        .unwrap();
    let lab: Vec<f32> = label.iter().map(|&b| b as u8 as f32).collect();
    adgan::io::nifti::write_f32_volume(&p("lab.nii.gz"), case.dims, None, &lab, "label").unwrap();
    let s = |x: &Path| x.to_str().unwrap().to_string();
    let o = adgan(&[
        "train",
        "-v",
        &s(&p("a.nii.gz")),
        "--exclude",
        &s(&p("lab.nii.gz")),
        "-o",
        &s(&p("m.adgan")),
        "--preset",
        "quick",
        "--phase1-iterations",
        "4",
        "--phase2-iterations",
        "4",
        "--batch-size",
        "8",
        "--patch-stride",
        "4",
        "--device",
        "cpu",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let events: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect(l))
        .collect();
    assert!(events
        .iter()
        .any(|e| e["event"] == "progress" && e["stage"] == "wgan"));
    assert!(events
        .iter()
        .any(|e| e["event"] == "progress" && e["stage"] == "critic"));
    assert_eq!(events.last().unwrap()["event"], "result");
    assert!(p("m.adgan").exists() && !p("m.adgan.ckpt").exists());

    let o = adgan(&[
        "score",
        "-m",
        &s(&p("m.adgan")),
        "-v",
        &s(&p("a.nii.gz")),
        "-o",
        &s(&p("map.nii")),
        "--patches",
        &s(&p("t.csv")),
        "--device",
        "cpu",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let map = adgan::io::nifti::read_volume(&p("map.nii")).unwrap();
    assert_eq!(map.dims, case.dims);
    // The result states the anomaly burden the map shows: brain voxels at or
    // above the model's threshold, as a count, a fraction and millilitres.
    let out = String::from_utf8_lossy(&o.stdout);
    let r: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(r["event"], "result");
    let brain = case.brain_mask();
    let threshold = r["threshold"].as_f64().unwrap();
    let above = map
        .data
        .iter()
        .zip(&brain)
        .filter(|&(&v, &b)| b && v as f64 >= threshold)
        .count();
    let brain_voxels = brain.iter().filter(|&&b| b).count();
    assert_eq!(r["brain_voxels"], brain_voxels);
    assert_eq!(r["voxels_above_threshold"], above);
    assert!(
        above > 0 && above < brain_voxels / 2,
        "{above} of {brain_voxels}"
    );
    let fraction = r["anomalous_fraction"].as_f64().unwrap();
    assert!((fraction - above as f64 / brain_voxels as f64).abs() < 1e-12);
    let voxel_ml = r["voxel_volume_ml"].as_f64().unwrap();
    assert!((voxel_ml - 0.001).abs() < 1e-9, "1 mm voxels: {voxel_ml}");
    let ml = r["anomalous_volume_ml"].as_f64().unwrap();
    assert!((ml - above as f64 * voxel_ml).abs() < 1e-9);
    assert_eq!(r["device"], "cpu");
    let csv = std::fs::read_to_string(p("t.csv")).unwrap();
    assert!(csv.starts_with("slice_axis,slice,row,col,x,y,z,brain_fraction,raw,score"));
    assert!(csv.lines().count() > 10);

    let o = adgan(&["info", &s(&p("m.adgan")), "--json"]);
    assert!(o.status.success());
    let meta: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(meta["channels"], 1);
    assert_eq!(meta["budget"]["phase1_iterations"], 4);

    // wrong channel count for the model: clear message, non-zero exit
    let o = adgan(&[
        "score",
        "-m",
        &s(&p("m.adgan")),
        "-v",
        &format!("{},{}", s(&p("a.nii.gz")), s(&p("a.nii.gz"))),
        "-o",
        &s(&p("x.nii")),
        "--device",
        "cpu",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("channel"), "{}", stderr(&o));
}

#[test]
fn a_closed_output_pipe_ends_quietly() {
    // `adgan info m.adgan | head -1`: the reader goes away first. The
    // command stops as a Unix tool killed by SIGPIPE would (status 141),
    // with no panic report.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.adgan");
    common::tiny_model().save(&path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_adgan"))
        .args(["info", path.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run adgan");
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(141), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn devices_lists_the_cpu_and_what_auto_picks() {
    let o = adgan(&["devices", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["event"], "result");
    let devices: Vec<&str> = r["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    let cuda = r["cuda_device_count"].as_u64().unwrap() as usize;
    assert_eq!(devices[0], "cpu");
    assert_eq!(devices.len(), 1 + cuda);
    for (i, d) in devices[1..].iter().enumerate() {
        assert_eq!(*d, format!("cuda:{i}"));
    }
    let default = r["default"].as_str().unwrap();
    assert_eq!(default, if cuda > 0 { "cuda:0" } else { "cpu" });
    assert!(r["cpu_threads"].as_u64().unwrap() >= 1);
    // Without --json: one device a line, the CPU first.
    let o = adgan(&["devices"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("cpu"));
}
