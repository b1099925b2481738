//! Real files users have (nibabel's own test data, tests/data/nibabel/):
//! each is read as a user's file would be, or refused with a message that
//! names the file and the problem.

mod common;

use adgan::io::nifti::read_volume;
use adgan::{Case, ScoreOptions};
use std::path::PathBuf;

fn file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/nibabel")
        .join(name)
}

#[test]
fn big_endian_int16_and_uint8_gzip_are_read() {
    let v = read_volume(&file("anatomical.nii")).unwrap();
    assert_eq!(v.dims, [33, 41, 25]);
    // Sum and maximum as nibabel reads them (284166082, 30393).
    let sum: f64 = v.data.iter().map(|&x| x as f64).sum();
    assert_eq!(sum, 284_166_082.0);
    assert_eq!(v.data.iter().cloned().fold(f32::MIN, f32::max), 30393.0);
    let v = read_volume(&file("standard.nii.gz")).unwrap();
    assert_eq!(v.dims, [4, 5, 7]);
}

#[test]
fn nifti2_is_read_like_its_nifti1_twin() {
    let one = read_volume(&file("anatomical.nii")).unwrap();
    let two = read_volume(&file("anatomical_nifti2.nii.gz")).unwrap();
    assert_eq!(two.dims, one.dims);
    assert_eq!(two.data, one.data);
    // The geometry (nibabel's affine: diag(-2, 2, 2), offset (32, -40, -16)).
    let h = &two.header;
    assert_eq!(h.srow_x, [-2.0, 0.0, 0.0, 32.0]);
    assert_eq!(h.srow_y, [0.0, 2.0, 0.0, -40.0]);
    assert_eq!(h.srow_z, [0.0, 0.0, 2.0, -16.0]);
    assert_eq!(&h.pixdim[1..4], &one.header.pixdim[1..4]);
    // A map written on its grid is NIfTI-1 with that geometry.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("map.nii.gz");
    adgan::io::nifti::write_map(&out, &two, &vec![1.0; two.data.len()]).unwrap();
    let back = read_volume(&out).unwrap();
    assert_eq!(back.dims, one.dims);
    assert_eq!(back.header.srow_x, h.srow_x);
    assert_eq!(back.header.sizeof_hdr, 348);
}

#[test]
fn four_dimensional_files_are_refused_by_name() {
    for name in ["functional.nii", "example_nifti2.nii.gz"] {
        let e = read_volume(&file(name)).unwrap_err().to_string();
        assert!(e.contains(name) && e.contains("4-D"), "{e}");
        assert!(!e.contains("NIfTI-1 header"), "{e}");
    }
}

#[test]
fn nan_outside_the_field_of_view_is_background_with_a_warning() {
    let path = file("resampled_anat_moved.nii");
    let v = read_volume(&path).unwrap();
    assert!(
        v.non_finite().unwrap().starts_with("153 NaN"),
        "{:?}",
        v.non_finite()
    );
    let (case, like) = Case::from_files(std::slice::from_ref(&path), None, None).unwrap();
    assert_eq!(case.warnings.len(), 1);
    assert!(
        case.warnings[0].contains("resampled_anat_moved.nii")
            && case.warnings[0].contains("153 NaN")
            && case.warnings[0].contains("background"),
        "{}",
        case.warnings[0]
    );
    assert!(case.channels[0].iter().all(|v| v.is_finite()));
    // It scores: the map is finite and 0 where the input was NaN.
    let model = common::tiny_model();
    let r = model
        .score_case(&case, &ScoreOptions::default(), &mut |_| true)
        .unwrap();
    assert!(r.map.iter().all(|m| m.is_finite()));
    let mut at_nan = 0;
    for (m, x) in r.map.iter().zip(&v.data) {
        if x.is_nan() {
            assert_eq!(*m, 0.0);
            at_nan += 1;
        }
    }
    assert_eq!(at_nan, 153);
    // The volume handed back for output geometry has no NaN either.
    assert!(like.data.iter().all(|v| v.is_finite()));
}
