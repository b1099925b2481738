//! The one walk from a normalised volume to its 32x32 windows, slice by
//! slice: training takes the windows clear of excluded voxels, scoring all
//! that touch the brain, evaluation those it can label. Each keeps its own
//! rule for which windows count; where they are and what they hold comes
//! from here.

use crate::error::{Error, Result};
use crate::nets::PATCH;
use tch::{Device, Kind, Tensor};

/// Number of slices across `axis`.
pub fn slice_count(dims: [usize; 3], axis: usize) -> usize {
    dims[axis]
}

/// `(H, W)` of a slice across `axis` (see the module's conventions).
pub fn plane_dims(dims: [usize; 3], axis: usize) -> (usize, usize) {
    match axis {
        0 => (dims[2], dims[1]),
        1 => (dims[2], dims[0]),
        _ => (dims[1], dims[0]),
    }
}

/// The voxel `[x, y, z]` of pixel `(h, w)` on slice `index` across `axis`.
pub fn voxel_of(axis: usize, index: usize, h: usize, w: usize) -> [usize; 3] {
    match axis {
        0 => [index, w, h],
        1 => [w, index, h],
        _ => [w, h, index],
    }
}

/// Window origins along one side of `len` pixels at `stride`, padded so
/// the last window reaches the end: `count` windows, padded length.
pub fn window_grid(len: usize, stride: usize) -> (usize, usize) {
    let p = PATCH as usize;
    if len <= p {
        return (1, p);
    }
    let steps = (len - p).div_ceil(stride);
    (steps + 1, p + steps * stride)
}

/// Slice `index` across `axis` of a `[.., nz, ny, nx]` tensor: `[.., H, W]`.
pub fn take_slice(t: &Tensor, axis: usize, index: usize) -> Tensor {
    let d = t.dim() as i64;
    let dim = match axis {
        0 => d - 1,
        1 => d - 2,
        _ => d - 3,
    };
    t.select(dim, index as i64)
}

/// The windows of one plane.
#[derive(Debug)]
pub struct Windows {
    /// `[L, C, 32, 32]` patches (on the device of the input).
    pub patches: Tensor,
    /// Number of window rows and columns (`L = rows * cols`, row-major).
    pub rows: usize,
    pub cols: usize,
    /// Padded plane size.
    pub padded: (usize, usize),
}

/// All windows of a plane `[C, H, W]` at `stride`; `background` is `[C]`.
pub fn plane_windows(plane: &Tensor, background: &Tensor, stride: usize) -> Windows {
    let size = plane.size();
    let (c, h, w) = (size[0], size[1] as usize, size[2] as usize);
    let (rows, ph) = window_grid(h, stride);
    let (cols, pw) = window_grid(w, stride);
    let bg = background.view([c, 1, 1]);
    let padded = (plane - &bg).constant_pad_nd([0, (pw - w) as i64, 0, (ph - h) as i64]) + &bg;
    let s = stride as i64;
    let cols_t = padded
        .unsqueeze(0)
        .im2col([PATCH, PATCH], [1, 1], [0, 0], [s, s]); // [1, C*1024, L]
    let l = (rows * cols) as i64;
    let patches = cols_t
        .view([c, PATCH, PATCH, l])
        .permute([3, 0, 1, 2])
        .contiguous();
    Windows {
        patches,
        rows,
        cols,
        padded: (ph, pw),
    }
}

/// Fraction of each window of a mask plane `[H, W]` (values 0/1) that is
/// set, `[L]` in the windows' order (padding counts as unset).
pub fn window_fractions(mask_plane: &Tensor, stride: usize) -> Tensor {
    let size = mask_plane.size();
    let (h, w) = (size[0] as usize, size[1] as usize);
    let (_, ph) = window_grid(h, stride);
    let (_, pw) = window_grid(w, stride);
    let s = stride as i64;
    mask_plane
        .constant_pad_nd([0, (pw - w) as i64, 0, (ph - h) as i64])
        .view([1, 1, ph as i64, pw as i64])
        .avg_pool2d([PATCH, PATCH], [s, s], [0, 0], false, true, None::<i64>)
        .flatten(0, -1)
}

/// Window fractions `[L]` (on the CPU already) as a vector. Not
/// `io::tensor_file::to_f32_vec`: `io` builds cases and so sits above this
/// module.
fn fractions_vec(t: &Tensor) -> Result<Vec<f32>> {
    Vec::<f32>::try_from(t.to_kind(Kind::Float).contiguous())
        .map_err(|e| Error::Torch(e.to_string()))
}

/// The windows of one slice of a volume, at a stride.
pub struct SliceWindows<'a> {
    /// Slice index across the axis.
    pub index: usize,
    pub axis: usize,
    pub stride: usize,
    /// Number of window rows and columns (windows are row-major).
    pub rows: usize,
    pub cols: usize,
    /// Plane size after padding for the last windows.
    pub padded: (usize, usize),
    /// Fraction of each window inside the brain.
    pub brain_fraction: Vec<f32>,
    data: &'a Tensor,
    background: &'a Tensor,
    brain: Tensor,
}

impl SliceWindows<'_> {
    /// Whether any window touches the brain (slices without brain have no
    /// window to train on or score).
    pub fn has_brain(&self) -> bool {
        self.brain_fraction.iter().any(|&f| f > 0.0)
    }

    /// Window origin in the plane: `(row, col)` of window `i`.
    pub fn origin(&self, i: usize) -> (usize, usize) {
        ((i / self.cols) * self.stride, (i % self.cols) * self.stride)
    }

    /// Fraction of each window set in a `[nz, ny, nx]` 0/1 mask of the same
    /// volume (an exclusion or a lesion label).
    pub fn fractions(&self, mask: &Tensor) -> Result<Vec<f32>> {
        fractions_vec(&window_fractions(
            &take_slice(mask, self.axis, self.index),
            self.stride,
        ))
    }

    /// The windows `keep` (indices into the slice's windows) of the volume's
    /// channels: `[K, C, 32, 32]` on the device of the walked data.
    pub fn patches(&self, keep: &[i64]) -> Tensor {
        let plane = take_slice(self.data, self.axis, self.index);
        let idx = Tensor::from_slice(keep).to_device(self.data.device());
        plane_windows(&plane, self.background, self.stride)
            .patches
            .index_select(0, &idx)
    }

    /// The brain mask of the windows `keep`: `[K, 32, 32]`, 1/0, on the CPU.
    pub fn brain_patches(&self, keep: &[i64]) -> Tensor {
        let zero = Tensor::zeros([1], (Kind::Float, Device::Cpu));
        plane_windows(&self.brain.unsqueeze(0), &zero, self.stride)
            .patches
            .index_select(0, &Tensor::from_slice(keep))
            .squeeze_dim(1)
    }
}

/// Every slice across `axis` of a volume of `dims` (`[nx, ny, nz]`, brain
/// `[nz, ny, nx]`, 1/0, on the CPU), in order, with its windows at
/// `stride`. `data` is the volume's `[C, nz, ny, nx]` voxels (on any device)
/// and `background` its `[C]` padding values on the same device.
pub fn slices<'a>(
    dims: [usize; 3],
    brain: &'a Tensor,
    data: &'a Tensor,
    background: &'a Tensor,
    axis: usize,
    stride: usize,
) -> impl Iterator<Item = Result<SliceWindows<'a>>> + 'a {
    let (h, w) = plane_dims(dims, axis);
    let (rows, ph) = window_grid(h, stride);
    let (cols, pw) = window_grid(w, stride);
    (0..slice_count(dims, axis)).map(move |index| {
        let brain = take_slice(brain, axis, index);
        let fraction = fractions_vec(&window_fractions(&brain, stride))?;
        Ok(SliceWindows {
            index,
            axis,
            stride,
            rows,
            cols,
            padded: (ph, pw),
            brain_fraction: fraction,
            data,
            background,
            brain,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preprocess::{background_tensor, normalise, Case};

    #[test]
    fn slices_without_brain_say_so_and_windows_hold_their_voxels() {
        // 40 x 36 x 3: brain only in slice 1, voxel value = x + 100 y.
        let dims = [40, 36, 3];
        let n = dims.iter().product::<usize>();
        let mut v = vec![0f32; n];
        for y in 0..36 {
            for x in 0..40 {
                v[x + 40 * (y + 36)] = 1.0 + x as f32 + 100.0 * y as f32;
            }
        }
        let case = Case {
            warnings: Vec::new(),
            name: "t".into(),
            dims,
            channels: vec![v],
            brain: None,
            exclude: None,
        };
        let norm = normalise(&case, crate::config::Normalisation::ZScore).unwrap();
        let bg = background_tensor(&norm);
        let all: Vec<_> = slices(norm.dims, &norm.brain, &norm.data, &bg, 2, 4)
            .map(|s| s.unwrap())
            .collect();
        assert_eq!(all.len(), 3);
        assert!(!all[0].has_brain() && all[1].has_brain() && !all[2].has_brain());
        let s = &all[1];
        assert_eq!(s.index, 1);
        assert_eq!((s.rows, s.cols), (2, 3)); // 36 -> 1 + ceil(4/4), 40 -> 1 + ceil(8/4)
        assert!(s.brain_fraction.iter().all(|&f| f > 0.0));
        let i = 4; // row 1, column 1
        assert_eq!(s.origin(i), (4, 4));
        let p = s.patches(&[i as i64]);
        assert_eq!(p.size(), [1, 1, 32, 32]);
        // Pixel (0, 0) of the window is voxel (4, 4) of slice 1, normalised.
        let st = norm.stats[0];
        let want = ((1.0 + 4.0 + 400.0) - st.mean) / st.std;
        let got = p.double_value(&[0, 0, 0, 0]);
        assert!((got - want).abs() < 1e-4, "{got} vs {want}");
        assert_eq!(s.brain_patches(&[0]).size(), [1, 32, 32]);
    }
}
