// The fuzz harnesses, shared by the cargo-fuzz targets (fuzz/fuzz_targets/,
// `scripts/fuzz.sh`) and by the regression test that replays every saved
// input in `make test` (tests/fuzz_regressions.rs). Each takes arbitrary
// bytes and must return without a panic, an abort or an out-of-bounds
// access: errors are the expected outcome for nearly every input.

#[allow(dead_code)]
pub mod harness {
    use std::path::PathBuf;
    use std::sync::OnceLock;

    /// A file of this process holding `bytes` (the readers take paths).
    fn file_with(name: &str, bytes: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("adgan-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temporary folder");
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("write the input");
        path
    }

    /// The NIfTI reader (NIfTI-1 and -2, gzip or not) and a case from it.
    pub fn nifti(bytes: &[u8]) {
        let path = file_with("input.nii", bytes);
        if let Ok(v) = adgan::io::nifti::read_volume(&path) {
            let _ = v.non_finite();
            if v.data.len() <= 1 << 20 {
                let _ = adgan::Case::from_files(std::slice::from_ref(&path), None, None);
                let _ = adgan::io::nifti::read_mask(&path, v.dims);
            }
        }
    }

    /// The 2-D image reader (PNG or JPEG by the first byte's parity).
    pub fn image(bytes: &[u8]) {
        let Some((&first, rest)) = bytes.split_first() else {
            return;
        };
        let name = if first % 2 == 0 {
            "input.png"
        } else {
            "input.jpg"
        };
        let path = file_with(name, rest);
        if let Ok(img) = adgan::images::read_image(&path) {
            if img.width * img.height <= 1 << 22 {
                let _ = img.to_case(1);
                let _ = adgan::images::read_image_mask(&path, img.width, img.height);
            }
        }
    }

    /// A tiny trained model, saved once per process.
    fn model_file() -> &'static PathBuf {
        static FILE: OnceLock<PathBuf> = OnceLock::new();
        FILE.get_or_init(|| {
            let mut c = adgan::TrainConfig::preset(adgan::config::Preset::Quick);
            c.phase2_iterations = 2;
            c.batch_size = 8;
            c.validate_every = 0;
            let patches = tch::Tensor::randn([64, 1, 32, 32], (tch::Kind::Float, tch::Device::Cpu));
            let data = adgan::TrainingData {
                groups: None,
                layout: None,
                patches,
                channel_names: vec!["flair".into()],
            };
            let model = adgan::train(
                &data,
                &c,
                tch::Device::Cpu,
                &Default::default(),
                &mut |_| true,
            )
            .expect("train the fuzzing model");
            let dir = std::env::temp_dir().join(format!("adgan-fuzz-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("temporary folder");
            let path = dir.join("model.adgan");
            model.save(&path).expect("save the fuzzing model");
            path
        })
    }

    /// The model-file loader; a model that loads must score.
    pub fn model(bytes: &[u8]) {
        let path = file_with("input.adgan", bytes);
        if let Ok(m) = adgan::Model::load(&path, tch::Device::Cpu) {
            let x = tch::Tensor::zeros(
                [2, m.channels() as i64, 32, 32],
                (tch::Kind::Float, tch::Device::Cpu),
            );
            let _ = m.raw_scores(&x, 2);
        }
    }

    /// Seed inputs for `model`: a real model file.
    pub fn model_seed() -> Vec<u8> {
        std::fs::read(model_file()).expect("read the fuzzing model")
    }

    /// `adgan_score_volume`'s argument checks: dims, channel count, stride,
    /// axis, mask, values from the input. The buffers honour the C contract
    /// (nx*ny*nz floats per channel) whenever that is at most 2^12 voxels;
    /// dims the library must refuse (a zero, an axis over ADGAN_MAX_DIM, a
    /// product over ADGAN_MAX_VOXELS or overflowing) get one-voxel buffers
    /// and must be refused without reading them; other large dims are
    /// skipped (a caller could not honour them either).
    pub fn c_api(bytes: &[u8]) {
        use adgan::ffi::*;
        static MODEL: OnceLock<usize> = OnceLock::new();
        let model = *MODEL.get_or_init(|| {
            let path = std::ffi::CString::new(model_file().to_str().unwrap()).unwrap();
            let mut m: *mut AdganModel = std::ptr::null_mut();
            let cpu = c"cpu";
            let status = unsafe { adgan_model_load(path.as_ptr(), cpu.as_ptr(), &mut m) };
            assert_eq!(status, 0, "load the fuzzing model");
            m as usize
        }) as *const AdganModel;
        if bytes.len() < 16 {
            return;
        }
        let word = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap());
        let a = word(0);
        let b = word(8);
        // Dims: mostly small, sometimes huge (the top bit of each byte pair
        // picks a 64-bit value).
        let dim = |k: u32| -> usize {
            let v = (a >> (16 * k)) & 0xffff;
            if v & 0x8000 != 0 {
                (b.rotate_left(k * 21)) as usize
            } else {
                (v & 0x7f) as usize
            }
        };
        let (nx, ny, nz) = (dim(0), dim(1), dim(2));
        let n_channels = ((a >> 48) & 0x3) as usize;
        let stride = ((a >> 50) & 0x3f) as u32;
        let axis = ((a >> 56) & 0x7) as i32 - 2;
        let with_mask = (a >> 59) & 1 == 1;
        let values = &bytes[16..];
        let product = nx.checked_mul(ny).and_then(|p| p.checked_mul(nz));
        let must_refuse = nx == 0
            || ny == 0
            || nz == 0
            || [nx, ny, nz].iter().any(|&d| d > ADGAN_MAX_DIM)
            || !matches!(product, Some(p) if p <= ADGAN_MAX_VOXELS);
        let n = match product {
            Some(p) if p <= 1 << 12 && !must_refuse => p,
            _ if must_refuse => 1,
            _ => return,
        };
        let bufs: Vec<Vec<f32>> = (0..n_channels.max(1))
            .map(|c| {
                (0..n)
                    .map(|i| {
                        let j = (i * 4 + c) % values.len().max(1);
                        let x = values
                            .get(j..j + 4)
                            .map_or(0.0, |w| f32::from_le_bytes(w.try_into().unwrap()));
                        if x.is_finite() {
                            x.clamp(-1e6, 1e6)
                        } else {
                            x
                        }
                    })
                    .collect()
            })
            .collect();
        let ptrs: Vec<*const f32> = bufs.iter().map(|v| v.as_ptr()).collect();
        let mask: Vec<u8> = (0..n).map(|i| (i % 3 != 0) as u8).collect();
        let mut map = vec![0f32; n];
        let status = unsafe {
            adgan_score_volume(
                model,
                ptrs.as_ptr(),
                n_channels,
                nx,
                ny,
                nz,
                if with_mask {
                    mask.as_ptr()
                } else {
                    std::ptr::null()
                },
                stride,
                axis,
                map.as_mut_ptr(),
                None,
                std::ptr::null_mut(),
            )
        };
        if must_refuse {
            assert_eq!(status, 1, "dims {nx}x{ny}x{nz} must be refused");
        }
        assert_ne!(
            status, 6,
            "a panic inside adgan_score_volume (dims {nx}x{ny}x{nz})"
        );
        if status == 0 {
            assert!(map.iter().all(|v| v.is_finite()), "a non-finite map value");
        }
    }
}
