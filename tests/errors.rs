//! Bad input gives a clear error that names the file, never a crash.

mod common;

use adgan::{Case, Error, Model, ScoreOptions, TrainingData};
use std::io::Write;
use tch::Device;

fn message(e: Error) -> String {
    e.to_string()
}

#[test]
fn missing_and_corrupt_volumes_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.nii.gz");
    let e = Case::from_files(std::slice::from_ref(&missing), None, None).unwrap_err();
    assert!(matches!(e, Error::Io { .. }));
    assert!(message(e).contains("nope.nii.gz"));
    let corrupt = dir.path().join("corrupt.nii.gz");
    let mut f = std::fs::File::create(&corrupt).unwrap();
    f.write_all(&[0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
        .unwrap();
    drop(f);
    let e = Case::from_files(&[corrupt], None, None).unwrap_err();
    assert!(matches!(e, Error::Format { .. }), "{e}");
    assert!(message(e).contains("corrupt.nii.gz"));
}

#[test]
fn nan_voxels_and_bad_shapes_are_refused() {
    let (mut case, _) = common::synthetic_case([40, 40, 4], false);
    case.channels[0][123] = f32::NAN;
    let e = adgan::preprocess::normalise(&case, Default::default()).unwrap_err();
    assert!(message(e).contains("NaN"));
    let (mut case, _) = common::synthetic_case([40, 40, 4], false);
    case.dims = [40, 40, 0];
    assert!(
        message(adgan::preprocess::normalise(&case, Default::default()).unwrap_err())
            .contains("zero-length")
    );
    let (mut case, _) = common::synthetic_case([40, 40, 4], false);
    case.channels[0].pop();
    assert!(adgan::preprocess::normalise(&case, Default::default()).is_err());
    let (case, _) = common::synthetic_case([40, 40, 4], false);
    let mut empty = case.clone();
    empty.channels[0].iter_mut().for_each(|v| *v = 0.0);
    assert!(
        message(adgan::preprocess::normalise(&empty, Default::default()).unwrap_err())
            .contains("brain mask is empty")
    );
}

#[test]
fn a_model_refuses_the_wrong_channel_count() {
    let model = common::tiny_model();
    let (mut case, _) = common::synthetic_case([40, 40, 4], false);
    case.channels.push(case.channels[0].clone());
    let e = model
        .score_case(&case, &ScoreOptions::default(), &mut |_| true)
        .unwrap_err();
    let m = message(e);
    assert!(m.contains("1 channel") && m.contains("got 2"), "{m}");
}

#[test]
fn bad_model_files_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::tiny_model();
    let good = dir.path().join("good.adgan");
    model.save(&good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    // truncated
    let truncated = dir.path().join("truncated.adgan");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let m = message(Model::load(&truncated, Device::Cpu).unwrap_err());
    assert!(
        m.contains("truncated.adgan") && m.contains("truncated"),
        "{m}"
    );
    // not a model at all
    let junk = dir.path().join("junk.adgan");
    std::fs::write(&junk, b"this is not a model, just some text").unwrap();
    let m = message(Model::load(&junk, Device::Cpu).unwrap_err());
    assert!(
        m.contains("junk.adgan") && m.contains("not an adGAN model"),
        "{m}"
    );
    // missing
    let m = message(Model::load(&dir.path().join("none.adgan"), Device::Cpu).unwrap_err());
    assert!(m.contains("none.adgan"), "{m}");
    // newer format: rewrite the metadata
    let mut newer = model.meta.clone();
    newer.format_version = 99;
    let tensors = adgan::io::tensor_file::read(&good, "m").unwrap().tensors;
    let mut named: Vec<(String, tch::Tensor)> = tensors.into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let newer_path = dir.path().join("newer.adgan");
    adgan::io::tensor_file::write(&newer_path, &named, &serde_json::to_string(&newer).unwrap())
        .unwrap();
    let m = message(Model::load(&newer_path, Device::Cpu).unwrap_err());
    assert!(m.contains("newer") && m.contains("newer.adgan"), "{m}");
    // wrong tensor shapes for the declared channel count
    let mut more = model.meta.clone();
    more.channels = 2;
    more.channel_names = vec!["a".into(), "b".into()];
    let shape_path = dir.path().join("shape.adgan");
    adgan::io::tensor_file::write(&shape_path, &named, &serde_json::to_string(&more).unwrap())
        .unwrap();
    let m = message(Model::load(&shape_path, Device::Cpu).unwrap_err());
    assert!(m.contains("shape"), "{m}");
    // one bit flipped in the weights (the last byte of the file is data)
    let mut flipped = bytes.clone();
    *flipped.last_mut().unwrap() ^= 0x01;
    let flipped_path = dir.path().join("flipped.adgan");
    std::fs::write(&flipped_path, &flipped).unwrap();
    let m = message(Model::load(&flipped_path, Device::Cpu).unwrap_err());
    assert!(
        m.contains("flipped.adgan") && m.contains("damaged") && m.contains("checksum"),
        "{m}"
    );
    // the metadata edited in place (alpha's first digit), same length
    let at = bytes.windows(5).position(|w| w == b"alpha").unwrap();
    let digit = at + bytes[at..].iter().position(|c| c.is_ascii_digit()).unwrap();
    let mut edited = bytes.clone();
    edited[digit] = if edited[digit] == b'7' { b'8' } else { b'7' };
    let edited_path = dir.path().join("edited.adgan");
    std::fs::write(&edited_path, &edited).unwrap();
    let m = message(Model::load(&edited_path, Device::Cpu).unwrap_err());
    assert!(m.contains("edited.adgan") && m.contains("checksum"), "{m}");
    // the untouched file still loads
    Model::load(&good, Device::Cpu).unwrap();
}

#[test]
fn libtorch_failures_are_errors_that_say_so() {
    // A device libtorch cannot use (the CUDA device after the last one; on
    // a CPU-only machine the first) is libtorch's error, not a panic, when
    // a model file is loaded onto it ...
    let dir = tempfile::tempdir().unwrap();
    let model = common::tiny_model();
    let path = dir.path().join("m.adgan");
    model.save(&path).unwrap();
    let missing = Device::Cuda(adgan::device::cuda_device_count());
    match Model::load(&path, missing) {
        Err(Error::Torch(m)) => assert!(!m.is_empty()),
        other => panic!("expected a torch error, got {other:?}"),
    }
    // ... and when patches are scored in a batch libtorch cannot allocate
    // (a [2^40, 1, 32, 32] view of one patch: no memory until the critic's
    // first layer needs its output).
    let one = common::normal_patches(1, 3);
    let huge = one.expand([1i64 << 40, 1, 32, 32], false);
    match model.raw_scores(&huge, 1usize << 40) {
        Err(Error::Torch(m)) => assert!(m.contains("allocate"), "{m}"),
        other => panic!("expected a torch error, got {other:?}"),
    }
}

#[test]
fn bad_options_are_refused_before_any_work() {
    let mut c = common::tiny_config(2, 2);
    c.batch_size = 1;
    assert!(matches!(c.validate(), Err(Error::InvalidArgument(_))));
    let mut c = common::tiny_config(2, 2);
    c.sampling.slice_axis = 3;
    assert!(c.validate().is_err());
    let mut c = common::tiny_config(2, 2);
    c.alpha = f64::NAN;
    assert!(c.validate().is_err());
    let mut c = common::tiny_config(2, 0);
    assert!(
        c.validate().is_ok(),
        "phase 1 only (the WGAN-GP critic) is a model"
    );
    c.critic_init = adgan::train::CriticInit::Reset;
    let m = message(c.validate().unwrap_err());
    assert!(m.contains("reset critic"), "{m}");
    assert!(
        adgan::device::parse_device("cuda:7").is_err() || adgan::device::cuda_device_count() > 7
    );
    assert!(adgan::device::parse_device("tpu").is_err());
    // too few patches
    let data = TrainingData {
        groups: None,
        layout: None,
        patches: common::normal_patches(10, 1),
        channel_names: vec!["flair".into()],
    };
    let e = adgan::train(
        &data,
        &common::tiny_config(2, 2),
        Device::Cpu,
        &Default::default(),
        &mut |_| true,
    )
    .unwrap_err();
    assert!(message(e).contains("training patch"));
}

#[test]
fn an_image_header_claiming_a_terabyte_is_refused_before_allocating() {
    // Found by the image fuzzer (fuzz/regressions/image/png-claims-1tb): a
    // PNG header of 128 x 2,113,929,344 pixels made the reader allocate its
    // claim (1 TB) and abort where the allocation fails.
    let input = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions/image/png-claims-1tb");
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("claims.png");
    std::fs::write(&png, &std::fs::read(input).unwrap()[1..]).unwrap();
    let e = adgan::images::read_image(&png).unwrap_err().to_string();
    assert!(e.contains("claims.png") && e.contains("claims 128x"), "{e}");
}
