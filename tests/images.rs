//! The 2-D image path: decoding, listing, normalisation as one window,
//! training patches, scoring (one score per small image, maps for larger
//! ones), the CSV, and the command line (train, score, eval on images).

mod common;

use adgan::images::{self, read_image, read_image_mask, Image};
use adgan::preprocess::normalise;
use adgan::train::{train, Checkpointing, TrainingData};
use adgan::windows::window_grid;
use adgan::{Model, ScoreOptions};
use std::path::{Path, PathBuf};
use std::process::Command;
use tch::Device;

fn write_png(
    path: &Path,
    w: u32,
    h: u32,
    colour: png::ColorType,
    depth: png::BitDepth,
    data: &[u8],
) {
    let f = std::fs::File::create(path).unwrap();
    let mut e = png::Encoder::new(std::io::BufWriter::new(f), w, h);
    e.set_color(colour);
    e.set_depth(depth);
    e.write_header().unwrap().write_image_data(data).unwrap();
}

fn write_grey(path: &Path, w: usize, h: usize, f: impl Fn(usize, usize) -> u8) {
    let data: Vec<u8> = (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .map(|(x, y)| f(x, y))
        .collect();
    write_png(
        path,
        w as u32,
        h as u32,
        png::ColorType::Grayscale,
        png::BitDepth::Eight,
        &data,
    );
}

/// A textured 28x28 grey image (a "garment" on a zero background).
fn textured(seed: u64) -> impl Fn(usize, usize) -> u8 {
    move |x, y| {
        let mut r = common::Lcg(seed.wrapping_mul(7919) + (x * 31 + y) as u64);
        if (4..24).contains(&x) && (3..25).contains(&y) {
            (120.0 + 60.0 * ((x as f32 * 0.4 + seed as f32).sin()) + 20.0 * r.next_f32()) as u8
        } else {
            0
        }
    }
}

#[test]
fn decodes_grey_colour_alpha_and_16_bit_pngs() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("g.png");
    write_grey(&p, 3, 2, |x, y| (10 * x + 100 * y) as u8);
    let im = read_image(&p).unwrap();
    assert_eq!((im.width, im.height, im.channels.len()), (3, 2, 1));
    assert_eq!(im.channels[0], vec![0.0, 10.0, 20.0, 100.0, 110.0, 120.0]); // x fastest
    assert!(!im.is_colour());

    let p = dir.path().join("rgb.png");
    let rgb = [10u8, 20, 30, 40, 50, 60];
    write_png(&p, 2, 1, png::ColorType::Rgb, png::BitDepth::Eight, &rgb);
    let im = read_image(&p).unwrap();
    assert_eq!(
        im.channels,
        vec![vec![10.0, 40.0], vec![20.0, 50.0], vec![30.0, 60.0]]
    );
    assert!(im.is_colour());
    let luma = im.to_channels(1).unwrap();
    assert!((luma[0][0] - (0.299 * 10.0 + 0.587 * 20.0 + 0.114 * 30.0)).abs() < 1e-4);

    // Grey stored as RGB is grey; alpha is dropped.
    let p = dir.path().join("rgba-grey.png");
    write_png(
        &p,
        2,
        1,
        png::ColorType::Rgba,
        png::BitDepth::Eight,
        &[7, 7, 7, 255, 9, 9, 9, 0],
    );
    let im = read_image(&p).unwrap();
    assert_eq!(im.channels, vec![vec![7.0, 9.0]]);
    assert_eq!(im.to_channels(3).unwrap().len(), 3);

    let p = dir.path().join("ga.png");
    write_png(
        &p,
        2,
        1,
        png::ColorType::GrayscaleAlpha,
        png::BitDepth::Eight,
        &[5, 0, 6, 255],
    );
    assert_eq!(read_image(&p).unwrap().channels, vec![vec![5.0, 6.0]]);

    let p = dir.path().join("g16.png");
    write_png(
        &p,
        2,
        1,
        png::ColorType::Grayscale,
        png::BitDepth::Sixteen,
        &[0x01, 0x02, 0xFF, 0xFF],
    );
    assert_eq!(read_image(&p).unwrap().channels, vec![vec![258.0, 65535.0]]);

    // Errors name the file.
    let bad = dir.path().join("bad.png");
    std::fs::write(&bad, b"not a png").unwrap();
    let e = read_image(&bad).unwrap_err().to_string();
    assert!(e.contains("bad.png") && e.contains("PNG"), "{e}");
    let e = read_image(&dir.path().join("bad.jpg"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.jpg"), "{e}");
}

/// Baseline JPEGs made by a 40-line DC-only encoder (constant 8x8 blocks,
/// quantiser 1): a 16x8 grey image of 200, and an 8x8 YCbCr image of
/// (150, 100, 170), which is RGB (208.9, 129.6, 100.4) by JFIF's transform.
const GREY_16X8_200: &[u8] = &[
    0xff, 0xd8, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0xff, 0xc0, 0x00, 0x0b, 0x08, 0x00, 0x08, 0x00, 0x10,
    0x01, 0x01, 0x11, 0x00, 0xff, 0xc4, 0x00, 0x15, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0xff, 0xc4, 0x00, 0x14, 0x10,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3f, 0x00, 0x64, 0x00, 0xff, 0xd9,
];
const YCBCR_8X8: &[u8] = &[
    0xff, 0xd8, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0xff, 0xc0, 0x00, 0x11, 0x08, 0x00, 0x08, 0x00, 0x08,
    0x03, 0x01, 0x11, 0x00, 0x02, 0x11, 0x00, 0x03, 0x11, 0x00, 0xff, 0xc4, 0x00, 0x15, 0x00, 0x00,
    0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08,
    0x09, 0xff, 0xc4, 0x00, 0x14, 0x10, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xda, 0x00, 0x0c, 0x03, 0x01, 0x00, 0x02, 0x00,
    0x03, 0x00, 0x00, 0x3f, 0x00, 0x2c, 0x00, 0xf9, 0xa8, 0x3f, 0xff, 0xd9,
];

#[test]
fn decodes_grey_and_colour_jpegs_and_jpeg_masks() {
    let dir = tempfile::tempdir().unwrap();
    let g = dir.path().join("g.jpg");
    std::fs::write(&g, GREY_16X8_200).unwrap();
    let im = read_image(&g).unwrap();
    assert_eq!((im.width, im.height, im.channels.len()), (16, 8, 1));
    assert!(
        im.channels[0].iter().all(|&v| (v - 200.0).abs() <= 1.0),
        "{:?}",
        &im.channels[0][..4]
    );
    assert!(read_image_mask(&g, 16, 8).unwrap().iter().all(|&b| b)); // 200 >= 128
    let c = dir.path().join("c.JPEG");
    std::fs::write(&c, YCBCR_8X8).unwrap();
    let im = read_image(&c).unwrap();
    assert_eq!((im.width, im.height, im.channels.len()), (8, 8, 3));
    for (ch, want) in im.channels.iter().zip([208.9f32, 129.6, 100.4]) {
        assert!(
            ch.iter().all(|&v| (v - want).abs() <= 2.0),
            "{} vs {want}",
            ch[0]
        );
    }
    let bad = dir.path().join("bad.jpeg");
    std::fs::write(&bad, &GREY_16X8_200[..40]).unwrap();
    let e = read_image(&bad).unwrap_err().to_string();
    assert!(e.contains("bad.jpeg") && e.contains("JPEG"), "{e}");
}

#[test]
fn reads_masks_and_refuses_other_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.png");
    write_grey(&p, 4, 2, |x, y| u8::from(x == y));
    assert_eq!(
        read_image_mask(&p, 4, 2).unwrap(),
        vec![true, false, false, false, false, true, false, false]
    );
    let e = read_image_mask(&p, 5, 2).unwrap_err().to_string();
    assert!(e.contains("4x2") && e.contains("5x2"), "{e}");
}

#[test]
fn lists_folders_files_and_lists() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("imgs");
    std::fs::create_dir(&d).unwrap();
    for n in ["b.png", "a.PNG", "c.jpeg"] {
        std::fs::write(d.join(n), b"x").unwrap();
    }
    std::fs::write(d.join("notes.txt"), b"x").unwrap();
    let got = images::list_images(std::slice::from_ref(&d)).unwrap();
    let names: Vec<_> = got
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["a.PNG", "b.png", "c.jpeg"]);
    let list = dir.path().join("list.txt");
    std::fs::write(&list, "# test images\nimgs/b.png\n\n/abs/x.png\n").unwrap();
    let got = images::list_images(&[list, d.join("a.PNG")]).unwrap();
    assert_eq!(
        got,
        vec![
            d.join("b.png"),
            PathBuf::from("/abs/x.png"),
            d.join("a.PNG")
        ]
    );
    assert!(images::list_images(&[dir.path().join("missing.png")]).is_err());
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(images::list_images(&[empty]).is_err());
    assert!(images::list_images(&[dir.path().join("x.nii")]).is_err());
    assert!(images::is_image_path(Path::new("a/b.JpG")));
    assert!(!images::is_image_path(Path::new("a/b.nii.gz")));
}

#[test]
fn a_small_image_is_one_normalised_window_padded_with_background() {
    let im = Image {
        path: "x.png".into(),
        width: 28,
        height: 28,
        channels: vec![(0..784)
            .map(|i| if i % 28 < 14 { 0.0 } else { 200.0 })
            .collect()],
    };
    let case = im.to_case(1).unwrap();
    assert_eq!(case.dims, [28, 28, 1]);
    assert!(case.brain.as_ref().unwrap().iter().all(|&b| b)); // every pixel, zeros too
    let w = images::single_window(&case, adgan::preprocess::Normalisation::ZScore).unwrap();
    assert_eq!(w.size(), vec![1, 32, 32]);
    let v: Vec<f32> = Vec::try_from(w.flatten(0, -1)).unwrap();
    // Half 0, half 200: mean 100, std 100.
    assert!((v[0] + 1.0).abs() < 1e-5 && (v[20] - 1.0).abs() < 1e-5);
    assert!((v[28] + 1.0).abs() < 1e-5, "right padding = raw 0");
    assert!(
        (v[31 * 32 + 5] + 1.0).abs() < 1e-5,
        "bottom padding = raw 0"
    );
    let norm = normalise(&case, Default::default()).unwrap();
    assert!((norm.stats[0].background + 1.0).abs() < 1e-9);
}

fn image_model(dir: &Path) -> (Model, Vec<PathBuf>) {
    let mut paths = Vec::new();
    for k in 0..40u64 {
        let p = dir.join(format!("t{k:02}.png"));
        write_grey(&p, 28, 28, textured(k));
        paths.push(p);
    }
    let c = dir.join("constant.png");
    write_grey(&c, 28, 28, |_, _| 9);
    paths.push(c.clone());
    let mut config = common::tiny_config(2, 2);
    config.batch_size = 8;
    // As the quick preset asks: 2-D images are never gated by intensity.
    config.intensity_gate = adgan::gate::GateChoice::Bright(0);
    let (patches, channels, skipped) = images::training_patches_of_images(
        &paths,
        None,
        &config.sampling,
        config.normalisation,
        &mut |_| true,
    )
    .unwrap();
    assert_eq!(channels, 1);
    assert_eq!(skipped, vec![c]);
    assert_eq!(patches.size(), vec![40, 1, 32, 32]);
    let data = TrainingData {
        groups: None,
        layout: None,
        patches,
        channel_names: images::default_channel_names(1),
    };
    let model = train(
        &data,
        &config,
        Device::Cpu,
        &Checkpointing::default(),
        &mut |_| true,
    )
    .unwrap();
    assert!(model.meta.intensity_gate.is_none());
    (model, paths)
}

#[test]
fn scores_small_images_one_each_and_large_ones_as_maps() {
    let dir = tempfile::tempdir().unwrap();
    let (model, paths) = image_model(dir.path());
    // A larger image: 64x48, a map and the largest window score.
    let big = dir.path().join("big.png");
    write_grey(&big, 64, 48, |x, y| {
        textured(3)(x % 28, y % 28).saturating_add((x * 2) as u8)
    });
    let mut list: Vec<PathBuf> = paths[..5].to_vec();
    list.push(big.clone());
    list.push(paths[40].clone()); // the constant one
    let opts = ScoreOptions {
        stride: 8,
        ..Default::default()
    };
    let r = images::score_images(&model, &list, &opts, true, &mut |_| true).unwrap();
    assert_eq!(r.scores.len(), 7);
    let direct = model
        .scores(
            &images::image_windows(&paths[..5], 1, model.normalisation()).unwrap(),
            64,
        )
        .unwrap();
    for (row, d) in r.scores[..5].iter().zip(&direct) {
        assert_eq!(row.windows, 1);
        assert!((row.score.unwrap() - d).abs() < 1e-9);
        assert!(r.maps[0].is_none());
    }
    let b = &r.scores[5];
    assert_eq!((b.width, b.height), (64, 48));
    let (rows, _) = window_grid(48, 8);
    let (cols, _) = window_grid(64, 8);
    assert_eq!(b.windows, rows * cols);
    let case = read_image(&big).unwrap().to_case(1).unwrap();
    let sr = model
        .score_case(
            &case,
            &ScoreOptions {
                stride: 8,
                patch_table: true,
                ..Default::default()
            },
            &mut |_| true,
        )
        .unwrap();
    let max = sr
        .patches
        .iter()
        .map(|p| p.score as f64)
        .fold(f64::MIN, f64::max);
    assert!((b.score.unwrap() - max).abs() < 1e-6);
    assert_eq!(r.maps[5].as_ref().unwrap().len(), 64 * 48);
    assert_eq!(r.maps[5].as_ref().unwrap(), &sr.map);
    assert!(r.scores[6].score.is_none() && r.scores[6].note.is_some());
    assert_eq!(r.scores[0].mean_intensity.len(), 1);

    let csv = dir.path().join("s.csv");
    adgan::report::csv::write_scores_csv(&csv, &r.scores, None).unwrap();
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 8);
    assert!(
        text.starts_with("image,width,height,windows,score,mean_window_score,mean_intensity,note")
    );

    // Image-level evaluation: the model's score next to mean intensity.
    let ev = adgan::evaluate::evaluate_images(
        &model,
        &paths[..3],
        &paths[3..6],
        &opts,
        None,
        &mut |_| true,
    )
    .unwrap();
    assert_eq!((ev.normal_images, ev.abnormal_images), (3, 3));
    assert_eq!(ev.scorers.len(), 2);
    assert!(ev.scorers[0].auroc.is_some());
}

fn adgan(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_adgan"))
        .args(args)
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .expect("run adgan")
}

#[test]
fn command_line_trains_scores_and_evaluates_images() {
    let dir = tempfile::tempdir().unwrap();
    let train_dir = dir.path().join("train");
    let normal = dir.path().join("normal");
    let abnormal = dir.path().join("abnormal");
    for d in [&train_dir, &normal, &abnormal] {
        std::fs::create_dir(d).unwrap();
    }
    for k in 0..30u64 {
        write_grey(&train_dir.join(format!("{k:02}.png")), 28, 28, textured(k));
    }
    for k in 0..4u64 {
        write_grey(&normal.join(format!("{k}.png")), 28, 28, textured(100 + k));
        write_grey(&abnormal.join(format!("{k}.png")), 28, 28, |x, y| {
            if (8..16).contains(&x) && (8..16).contains(&y) {
                255
            } else {
                textured(100 + k)(x, y)
            }
        });
    }
    let model = dir.path().join("m.adgan");
    let m = model.to_str().unwrap();
    let o = adgan(&[
        "train",
        "--images",
        train_dir.to_str().unwrap(),
        "-o",
        m,
        "--preset",
        "quick",
        "--phase1-iterations",
        "2",
        "--phase2-iterations",
        "2",
        "--batch-size",
        "4",
        "--checkpoint-every",
        "0",
        "--device",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let info = adgan(&["info", "--json", m]);
    let meta: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(meta["channel_names"], serde_json::json!(["grey"]));

    let csv = dir.path().join("scores.csv");
    let o = adgan(&[
        "score",
        "-m",
        m,
        "--images",
        normal.to_str().unwrap(),
        "-o",
        csv.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_to_string(&csv).unwrap().lines().count(), 5);

    let out = dir.path().join("eval");
    let o = adgan(&[
        "eval",
        "-m",
        m,
        "--normal",
        normal.to_str().unwrap(),
        "--abnormal",
        abnormal.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("AUROC") && table.contains("mean intensity"),
        "{table}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert!(report["images"]["scorers"][0]["auroc"].is_number());
    for f in ["roc_images.png", "histogram_images.png", "scores.csv"] {
        assert!(out.join(f).exists(), "{f}");
    }

    // A pixel-labelled image (ISIC-like): the patch protocol and pixel metrics.
    let big = dir.path().join("lesion.png");
    let label = dir.path().join("lesion_label.png");
    let lesion = |x: usize, y: usize| (70..110).contains(&x) && (40..80).contains(&y);
    write_grey(&big, 128, 96, |x, y| {
        if lesion(x, y) {
            250
        } else {
            textured(7)(x % 28, y % 28)
        }
    });
    write_grey(&label, 128, 96, |x, y| u8::from(lesion(x, y)));
    let out2 = dir.path().join("eval2");
    let o = adgan(&[
        "eval",
        "-m",
        m,
        "-v",
        big.to_str().unwrap(),
        "--label",
        label.to_str().unwrap(),
        "-o",
        out2.to_str().unwrap(),
        "--stride",
        "8",
        "--write-maps",
        "--dump-patches",
        "--device",
        "cpu",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out2.join("report.json")).unwrap()).unwrap();
    let p = &report["cases"]["patches"][0];
    assert!(p["lesion_patches"].as_u64().unwrap() > 0, "{p}");
    assert!(p["healthy_patches"].as_u64().unwrap() > 0, "{p}");
    assert_eq!(
        report["cases"]["voxels"][0]["brain_voxels"],
        serde_json::json!(128 * 96)
    );
    // The bright square is the brightest thing: intensity finds it.
    assert_eq!(
        report["cases"]["voxels"][1]["auroc"],
        serde_json::json!(1.0)
    );
    let npy = std::fs::read(out2.join("patches.npy")).unwrap();
    assert!(npy.starts_with(b"\x93NUMPY"));
    let rows = std::fs::read_to_string(out2.join("patches.csv"))
        .unwrap()
        .lines()
        .count()
        - 1;
    let header_len = u16::from_le_bytes([npy[8], npy[9]]) as usize;
    assert_eq!((npy.len() - 10 - header_len) % 64, 0);
    assert_eq!((npy.len() - 10 - header_len) / (4 * 1024), rows);
    assert!(std::fs::read_dir(out2.join("maps")).unwrap().count() == 1);

    // Errors: a case without a label, nothing to evaluate.
    let o = adgan(&[
        "eval",
        "-m",
        m,
        "-v",
        big.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--label"));
    let o = adgan(&["eval", "-m", m, "--device", "cpu"]);
    assert!(!o.status.success());
}
