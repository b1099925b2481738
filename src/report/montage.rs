//! Slice montages of a volume: one pixel per voxel, a grey window, a hot
//! overlay blended on top and a label outlined by a neighbour test, all
//! mapped by hand into an RGB buffer (a plotting library adds nothing to a
//! pixel mapping). Only the tiles' slice numbers are drawn with `plotters`
//! text, in the bundled font of [`super::render`], which also writes the PNG
//! atomically.

use std::path::Path;

use plotters::drawing::IntoDrawingArea;
use plotters::style::{IntoFont, RGBColor, TextStyle};

use super::render::{drawing_error, write_rgb_png, FigureBackend, FONT};
use crate::error::{Error, Result};

/// Colour of label contours in montages (bright green).
const CONTOUR_RGB: [u8; 3] = [0, 255, 0];
/// Colour of the slice numbers in montages.
const MONTAGE_TEXT_RGB: [u8; 3] = [200, 200, 200];
/// Pixel height of the slice numbers' font.
const MONTAGE_TEXT_SIZE: f64 = 12.0;
/// Black margin between montage tiles, in pixels.
const TILE_MARGIN: usize = 4;
/// Slices with fewer non-zero voxels than this fraction of the fullest slice
/// are not drawn (they are the thin caps of the brain).
const MIN_SLICE_FILL: f64 = 0.2;
/// Largest image written, in pixels.
const MAX_PIXELS: usize = 1 << 27;

/// How [`write_montage`] lays out and colours the slices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MontageOptions {
    /// Axis across which slices are taken: 0 (sagittal), 1 (coronal) or 2
    /// (axial, the default).
    pub slice_axis: usize,
    /// Number of slices drawn (default 12); fewer when the volume has fewer
    /// non-empty slices.
    pub n_slices: usize,
    /// Tiles per row (default 4).
    pub columns: usize,
    /// Overlay values below this are transparent; at it the colour ramp starts
    /// (default 0.5, for maps normalised to 0..1).
    pub heat_min: f32,
    /// Overlay value at which the colour ramp reaches white (default 1.0).
    pub heat_max: f32,
    /// Opacity of the overlay, 0..1 (default 0.6).
    pub alpha: f32,
    /// Reverse these voxel axes (x, y, z) before display (default: none).
    ///
    /// The display assumes voxel axes pointing to the patient's left,
    /// anterior and superior (LAS storage, as FSL's MNI152); use
    /// [`display_flips`] to get the flips for a volume's header, e.g.
    /// `[false, true, false]` for LPS-stored BraTS/TCGA volumes.
    pub flip: [bool; 3],
}

impl Default for MontageOptions {
    fn default() -> Self {
        Self {
            slice_axis: 2,
            n_slices: 12,
            columns: 4,
            heat_min: 0.5,
            heat_max: 1.0,
            alpha: 0.6,
            flip: [false; 3],
        }
    }
}

/// Which voxel axes to reverse (for [`MontageOptions::flip`]) so that a
/// volume is displayed in radiological convention.
///
/// Each voxel axis is matched to the world (RAS) axis it is closest to in the
/// header's affine (the sform when `sform_code > 0`, else the qform when
/// `qform_code > 0`, else the NIfTI default, which is RAS): an axis is
/// reversed when it points to the patient's right, posterior or inferior.
/// Permuted axes (e.g. a volume stored sagittal-first) are not reordered: the
/// montage always slices voxel axes.
pub fn display_flips(header: &nifti::NiftiHeader) -> [bool; 3] {
    let m = voxel_to_world_rotation(header);
    let mut flips = [false; 3];
    for (axis, flip) in flips.iter_mut().enumerate() {
        let column = [m[0][axis], m[1][axis], m[2][axis]];
        let world = (0..3)
            .max_by(|&a, &b| column[a].abs().total_cmp(&column[b].abs()))
            .unwrap_or(axis);
        let component = column[world];
        // Wanted directions: +x is patient right in RAS, so "left" is -x.
        *flip = if world == 0 {
            component > 0.0
        } else {
            component < 0.0
        };
    }
    flips
}

/// Write a montage of slices of a volume as an RGB PNG.
///
/// `grey` (e.g. FLAIR) is the background, windowed to the 1st..99th percentile
/// of its non-zero voxels. `overlay` (e.g. an anomaly map) is drawn with a hot
/// colour ramp (black, red, yellow, white from `heat_min` to `heat_max`),
/// blended with opacity `alpha`, and transparent below `heat_min` (and where
/// it is NaN). `label` is outlined in bright green: a label voxel is on the
/// outline when one of its four in-plane neighbours is outside the label or
/// outside the image. All three are x-fastest arrays of `dims`.
///
/// The slices drawn are `n_slices` evenly spaced among the non-empty slices
/// (those holding at least a fifth as many non-zero grey voxels as the fullest
/// slice); with a label, the slice of largest label area is always among them.
/// When the grey volume is entirely zero, slices are spread over the whole
/// volume.
///
/// Each tile shows one slice at one pixel per voxel, in radiological
/// convention when the voxel axes, after the flips of
/// [`MontageOptions::flip`], point to the patient's left, anterior and
/// superior: axial and coronal tiles have the patient's right on the left,
/// anterior (axial) or superior (coronal) up; sagittal tiles have anterior on
/// the left and superior up. With the default (no flip) this is "image row =
/// y flipped, column = x"; pass [`display_flips`] of the volume's header to
/// follow its affine. Tiles are ordered from inferior (right, posterior) to
/// superior (left, anterior), separated by a small black margin, and carry
/// their slice number (e.g. `z42`, in the bundled font) in the top-left
/// corner when it fits the tile. The PNG is written atomically.
///
/// Returns the voxel indices (along `slice_axis`, before any flip) of the
/// slices drawn, in tile order: increasing, or decreasing when the slice axis
/// is flipped.
///
/// # Errors
///
/// [`Error::InvalidArgument`] for array lengths that do not match `dims`, a
/// zero dim, a slice axis above 2, zero slices or columns, a heat range that
/// is not finite and increasing, an alpha outside 0..1, or a montage larger
/// than 2²⁷ pixels; [`Error::Io`] when the file cannot be written.
pub fn write_montage(
    path: &Path,
    dims: [usize; 3],
    grey: &[f32],
    overlay: Option<&[f32]>,
    label: Option<&[bool]>,
    opts: &MontageOptions,
) -> Result<Vec<usize>> {
    let n_voxels = check_montage_args(dims, grey, overlay, label, opts)?;
    let axis = opts.slice_axis;
    let (u_axis, v_axis) = match axis {
        0 => (1, 2),
        1 => (0, 2),
        _ => (0, 1),
    };
    let strides = [1, dims[0], dims[0] * dims[1]];
    let (n_u, n_v) = (dims[u_axis], dims[v_axis]);

    // Non-zero grey voxels and label voxels per slice.
    let mut fill = vec![0usize; dims[axis]];
    let mut label_area = vec![0usize; dims[axis]];
    for i in 0..n_voxels {
        let slice = (i / strides[axis]) % dims[axis];
        if grey[i] != 0.0 && grey[i].is_finite() {
            fill[slice] += 1;
        }
        if label.is_some_and(|l| l[i]) {
            label_area[slice] += 1;
        }
    }
    let largest_label_slice = label_area
        .iter()
        .enumerate()
        .filter(|(_, &a)| a > 0)
        .max_by(|(i, a), (j, b)| a.cmp(b).then(j.cmp(i)))
        .map(|(i, _)| i);
    let mut slices = choose_slices(&fill, opts.n_slices, largest_label_slice);
    if opts.flip[axis] {
        slices.reverse();
    }

    let (lo, hi) = grey_window(grey);
    let columns = opts.columns.min(slices.len()).max(1);
    let rows = slices.len().div_ceil(columns);
    let width = tiles_extent(columns, n_u);
    let height = tiles_extent(rows, n_v);
    let (width, height) = match (width, height) {
        (Some(w), Some(h)) if w.checked_mul(h).is_some_and(|p| p <= MAX_PIXELS) => (w, h),
        _ => {
            return Err(Error::InvalidArgument(format!(
                "{}: a montage of {} slices of {}x{} pixels in {} columns is too large",
                path.display(),
                slices.len(),
                n_u,
                n_v,
                columns
            )))
        }
    };

    // Black background (the margins).
    let mut pixels = vec![0u8; width * height * 3];
    let heat_span = opts.heat_max - opts.heat_min;
    // Sagittal tiles put anterior (increasing flipped y) on the left.
    let reverse_u = opts.flip[u_axis] != (axis == 0);
    for (k, &slice) in slices.iter().enumerate() {
        let x0 = TILE_MARGIN + (k % columns) * (n_u + TILE_MARGIN);
        let y0 = TILE_MARGIN + (k / columns) * (n_v + TILE_MARGIN);
        let base = slice * strides[axis];
        let voxel = |u: usize, v: usize| base + u * strides[u_axis] + v * strides[v_axis];
        for row in 0..n_v {
            // Display "up" is the increasing (flipped) v axis.
            let v = if opts.flip[v_axis] {
                row
            } else {
                n_v - 1 - row
            };
            for col in 0..n_u {
                let u = if reverse_u { n_u - 1 - col } else { col };
                let i = voxel(u, v);
                let g = grey[i];
                let level = if g.is_finite() {
                    ((g - lo) / (hi - lo)).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let grey_byte = (level * 255.0).round() as u8;
                let mut rgb = [grey_byte; 3];
                if let Some(map) = overlay {
                    let m = map[i];
                    if m >= opts.heat_min {
                        let t = ((m - opts.heat_min) / heat_span).clamp(0.0, 1.0);
                        rgb = blend(rgb, hot(t), opts.alpha);
                    }
                }
                if let Some(mask) = label {
                    if mask[i] {
                        let outside = |du: isize, dv: isize| match (
                            u.checked_add_signed(du),
                            v.checked_add_signed(dv),
                        ) {
                            (Some(nu), Some(nv)) if nu < n_u && nv < n_v => !mask[voxel(nu, nv)],
                            _ => true,
                        };
                        if outside(-1, 0) || outside(1, 0) || outside(0, -1) || outside(0, 1) {
                            rgb = CONTOUR_RGB;
                        }
                    }
                }
                let o = ((y0 + row) * width + x0 + col) * 3;
                pixels[o..o + 3].copy_from_slice(&rgb);
            }
        }
    }
    let tiles = slices.iter().enumerate().map(|(k, &slice)| {
        let x0 = TILE_MARGIN + (k % columns) * (n_u + TILE_MARGIN);
        let y0 = TILE_MARGIN + (k / columns) * (n_v + TILE_MARGIN);
        (x0, y0, format!("{}{slice}", ["x", "y", "z"][axis]))
    });
    label_tiles(path, &mut pixels, (width, height), (n_u, n_v), tiles)?;
    // Both fit in u32: their product is at most MAX_PIXELS.
    write_rgb_png(path, width as u32, height as u32, &pixels)?;
    Ok(slices)
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Write each tile's slice number (`(x0, y0, text)`: the tile's top-left
/// pixel and its label) in its top-left corner, in the bundled font, when
/// the label fits in a tile of `n_u` × `n_v` pixels.
fn label_tiles(
    path: &Path,
    pixels: &mut [u8],
    (width, height): (usize, usize),
    (n_u, n_v): (usize, usize),
    tiles: impl Iterator<Item = (usize, usize, String)>,
) -> Result<()> {
    // The backend registers the font, which plotters looks up when a font
    // description is made: the backend comes first.
    let root = FigureBackend::new(path, pixels, (width as u32, height as u32))?.into_drawing_area();
    let [r, g, b] = MONTAGE_TEXT_RGB;
    let colour = RGBColor(r, g, b);
    let style = TextStyle::from((FONT, MONTAGE_TEXT_SIZE).into_font()).color(&colour);
    for (x0, y0, text) in tiles {
        let (w, h) = root
            .estimate_text_size(&text, &style)
            .map_err(|e| drawing_error(path, e))?;
        if w as usize + 4 <= n_u && h as usize + 4 <= n_v {
            root.draw_text(&text, &style, (x0 as i32 + 2, y0 as i32 + 2))
                .map_err(|e| drawing_error(path, e))?;
        }
    }
    root.present().map_err(|e| drawing_error(path, e))
}

/// Validate the montage arguments; returns the number of voxels.
fn check_montage_args(
    dims: [usize; 3],
    grey: &[f32],
    overlay: Option<&[f32]>,
    label: Option<&[bool]>,
    opts: &MontageOptions,
) -> Result<usize> {
    let invalid = |message: String| Err(Error::InvalidArgument(message));
    let n_voxels = match dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)) {
        Some(n) if n > 0 => n,
        _ => return invalid(format!("montage dims {dims:?} hold no voxel or too many")),
    };
    if grey.len() != n_voxels {
        return invalid(format!(
            "montage: {} grey values for dims {dims:?} ({n_voxels} voxels)",
            grey.len()
        ));
    }
    if let Some(o) = overlay.filter(|o| o.len() != n_voxels) {
        return invalid(format!(
            "montage: {} overlay values for dims {dims:?} ({n_voxels} voxels)",
            o.len()
        ));
    }
    if let Some(l) = label.filter(|l| l.len() != n_voxels) {
        return invalid(format!(
            "montage: {} label values for dims {dims:?} ({n_voxels} voxels)",
            l.len()
        ));
    }
    if opts.slice_axis > 2 {
        return invalid(format!(
            "montage slice axis must be 0, 1 or 2, not {}",
            opts.slice_axis
        ));
    }
    if opts.n_slices == 0 || opts.columns == 0 {
        return invalid("montage needs at least one slice and one column".to_string());
    }
    if !(opts.heat_min.is_finite() && opts.heat_max.is_finite() && opts.heat_min < opts.heat_max) {
        return invalid(format!(
            "montage heat range {}..{} must be finite and increasing",
            opts.heat_min, opts.heat_max
        ));
    }
    if !(0.0..=1.0).contains(&opts.alpha) {
        return invalid(format!(
            "montage alpha must be between 0 and 1, not {}",
            opts.alpha
        ));
    }
    Ok(n_voxels)
}

/// The 3×3 voxel-to-world matrix of a header, up to positive scaling of its
/// columns: sform, else qform, else identity (NIfTI "method 1").
fn voxel_to_world_rotation(h: &nifti::NiftiHeader) -> [[f64; 3]; 3] {
    let finite = |m: [[f64; 3]; 3]| m.iter().flatten().all(|v| v.is_finite());
    if h.sform_code > 0 {
        let row = |r: [f32; 4]| [f64::from(r[0]), f64::from(r[1]), f64::from(r[2])];
        let m = [row(h.srow_x), row(h.srow_y), row(h.srow_z)];
        if finite(m) && m.iter().flatten().any(|&v| v != 0.0) {
            return m;
        }
    }
    if h.qform_code > 0 {
        let (b, c, d) = (
            f64::from(h.quatern_b),
            f64::from(h.quatern_c),
            f64::from(h.quatern_d),
        );
        let a = (1.0 - (b * b + c * c + d * d)).max(0.0).sqrt();
        let qfac = if h.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
        let m = [
            [
                a * a + b * b - c * c - d * d,
                2.0 * (b * c - a * d),
                qfac * 2.0 * (b * d + a * c),
            ],
            [
                2.0 * (b * c + a * d),
                a * a + c * c - b * b - d * d,
                qfac * 2.0 * (c * d - a * b),
            ],
            [
                2.0 * (b * d - a * c),
                2.0 * (c * d + a * b),
                qfac * (a * a + d * d - b * b - c * c),
            ],
        ];
        if finite(m) {
            return m;
        }
    }
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
}

/// Pick `n` evenly spaced slices among the well-filled ones, forcing in
/// `must_have`; sorted, without duplicates.
fn choose_slices(fill: &[usize], n: usize, must_have: Option<usize>) -> Vec<usize> {
    let max_fill = fill.iter().copied().max().unwrap_or(0);
    let mut candidates: Vec<usize> = if max_fill == 0 {
        (0..fill.len()).collect()
    } else {
        let min_fill = ((max_fill as f64 * MIN_SLICE_FILL).ceil() as usize).max(1);
        (0..fill.len()).filter(|&s| fill[s] >= min_fill).collect()
    };
    let mut chosen: Vec<usize> = if candidates.len() <= n {
        std::mem::take(&mut candidates)
    } else {
        // Centres of n equal parts of the candidate list.
        (0..n)
            .map(|k| candidates[(2 * k + 1) * candidates.len() / (2 * n)])
            .collect()
    };
    if let Some(slice) = must_have {
        if !chosen.contains(&slice) {
            if chosen.len() < n {
                chosen.push(slice);
            } else if let Some(nearest) = chosen.iter_mut().min_by_key(|s| s.abs_diff(slice)) {
                *nearest = slice;
            }
        }
    }
    chosen.sort_unstable();
    chosen.dedup();
    chosen
}

/// Grey window: 1st and 99th percentile of the finite non-zero values, with a
/// non-empty range.
fn grey_window(grey: &[f32]) -> (f32, f32) {
    let mut values: Vec<f32> = grey
        .iter()
        .copied()
        .filter(|v| *v != 0.0 && v.is_finite())
        .collect();
    if values.is_empty() {
        return (0.0, 1.0);
    }
    let mut percentile = |p: f64| {
        let k = (p * (values.len() - 1) as f64).round() as usize;
        *values.select_nth_unstable_by(k, f32::total_cmp).1
    };
    let (mut lo, mut hi) = (percentile(0.01), percentile(0.99));
    if hi <= lo {
        // A constant image: show non-zero voxels as white (or black if negative).
        (lo, hi) = (lo.min(0.0), lo.max(0.0));
    }
    (lo, hi)
}

/// Total extent of `count` tiles of `tile` pixels with margins around them.
fn tiles_extent(count: usize, tile: usize) -> Option<usize> {
    tile.checked_add(TILE_MARGIN)?
        .checked_mul(count)?
        .checked_add(TILE_MARGIN)
}

/// "Hot" colour ramp: black, red, yellow, white as `t` goes 0..1.
fn hot(t: f32) -> [u8; 3] {
    let channel = |x: f32| (x.clamp(0.0, 1.0) * 255.0).round() as u8;
    [
        channel(3.0 * t),
        channel(3.0 * t - 1.0),
        channel(3.0 * t - 2.0),
    ]
}

/// `(1 - alpha) * under + alpha * over`, per channel.
fn blend(under: [u8; 3], over: [u8; 3], alpha: f32) -> [u8; 3] {
    let mix = |a: u8, b: u8| (f32::from(a) * (1.0 - alpha) + f32::from(b) * alpha).round() as u8;
    [
        mix(under[0], over[0]),
        mix(under[1], over[1]),
        mix(under[2], over[2]),
    ]
}
#[cfg(test)]
mod tests {
    use super::*;

    use super::super::render::decode_png as decode;

    fn pixel(buf: &[u8], width: u32, x: usize, y: usize) -> [u8; 3] {
        let o = (y * width as usize + x) * 3;
        [buf[o], buf[o + 1], buf[o + 2]]
    }

    /// A synthetic "head": a ball of intensity 100 + x in a 40×32×20 volume,
    /// a hot spot (map 1.0) and a labelled cube around it.
    fn phantom() -> ([usize; 3], Vec<f32>, Vec<f32>, Vec<bool>) {
        let dims = [40, 32, 20];
        let n = dims[0] * dims[1] * dims[2];
        let (mut grey, mut map, mut label) = (vec![0.0; n], vec![0.0; n], vec![false; n]);
        for z in 0..dims[2] {
            for y in 0..dims[1] {
                for x in 0..dims[0] {
                    let i = x + dims[0] * (y + dims[1] * z);
                    let (dx, dy, dz) = (x as f32 - 20.0, y as f32 - 16.0, (z as f32 - 10.0) * 1.5);
                    if dx * dx + dy * dy + dz * dz < 14.0 * 14.0 {
                        grey[i] = 100.0 + x as f32;
                    }
                    let in_cube =
                        (24..30).contains(&x) && (8..14).contains(&y) && (9..12).contains(&z);
                    if in_cube {
                        label[i] = true;
                        map[i] = 1.0;
                    }
                }
            }
        }
        (dims, grey, map, label)
    }

    #[test]
    fn montage_has_expected_size_overlay_and_contour() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("montage.png");
        let (dims, grey, map, label) = phantom();
        let opts = MontageOptions {
            n_slices: 6,
            columns: 3,
            heat_min: 0.5,
            heat_max: 1.0,
            alpha: 1.0,
            ..MontageOptions::default()
        };
        let slices = write_montage(&path, dims, &grey, Some(&map), Some(&label), &opts).unwrap();
        assert_eq!(slices.len(), 6);
        assert!(slices.windows(2).all(|w| w[0] < w[1]), "{slices:?}");
        // The largest label slices are 9..12 (all equal): the first one is forced in.
        assert!(slices.contains(&9), "{slices:?}");
        assert!(slices.iter().all(|&s| s < dims[2]));

        let (w, h, buf) = decode(&path);
        assert_eq!(w as usize, TILE_MARGIN + 3 * (dims[0] + TILE_MARGIN));
        assert_eq!(h as usize, TILE_MARGIN + 2 * (dims[1] + TILE_MARGIN));
        assert!(buf.chunks(3).any(|p| p == CONTOUR_RGB));

        // Tile of slice 9, voxel (26, 10) is inside the cube (not on its
        // outline): full-opacity heat at 1.0 is white; its outline voxel
        // (24, 10) is green; (20, 16) is plain grey; (0, 0) is background.
        let k = slices.iter().position(|&s| s == 9).unwrap();
        let (x0, y0) = (
            TILE_MARGIN + (k % 3) * (dims[0] + TILE_MARGIN),
            TILE_MARGIN + (k / 3) * (dims[1] + TILE_MARGIN),
        );
        let at = |x: usize, y: usize| pixel(&buf, w, x0 + x, y0 + (dims[1] - 1 - y));
        assert_eq!(at(26, 10), [255, 255, 255]);
        assert_eq!(at(24, 10), CONTOUR_RGB);
        let centre = at(20, 16);
        assert!(centre[0] == centre[1] && centre[1] == centre[2] && centre[0] > 0);
        // Brighter to the right (intensity grows with x), so x is not flipped.
        assert!(at(30, 16)[0] > at(10, 16)[0]);
        assert_eq!(at(39, 0), [0, 0, 0]);
    }

    #[test]
    fn montage_flips_follow_the_options() {
        let dir = tempfile::tempdir().unwrap();
        let (dims, grey, map, label) = phantom();
        for flip in [
            [false, true, false],
            [true, false, false],
            [false, false, true],
        ] {
            let path = dir.path().join("flipped.png");
            let opts = MontageOptions {
                n_slices: 6,
                columns: 3,
                alpha: 1.0,
                flip,
                ..MontageOptions::default()
            };
            let slices =
                write_montage(&path, dims, &grey, Some(&map), Some(&label), &opts).unwrap();
            if flip[2] {
                assert!(slices.windows(2).all(|w| w[0] > w[1]), "{slices:?}");
            } else {
                assert!(slices.windows(2).all(|w| w[0] < w[1]), "{slices:?}");
            }
            let (w, _, buf) = decode(&path);
            let k = slices.iter().position(|&s| s == 9).unwrap();
            let (x0, y0) = (
                TILE_MARGIN + (k % 3) * (dims[0] + TILE_MARGIN),
                TILE_MARGIN + (k / 3) * (dims[1] + TILE_MARGIN),
            );
            let at = |x: usize, y: usize| {
                let col = if flip[0] { dims[0] - 1 - x } else { x };
                let row = if flip[1] { y } else { dims[1] - 1 - y };
                pixel(&buf, w, x0 + col, y0 + row)
            };
            assert_eq!(at(26, 10), [255, 255, 255], "{flip:?}");
            assert_eq!(at(24, 10), CONTOUR_RGB, "{flip:?}");
            assert_eq!(at(29, 13), CONTOUR_RGB, "{flip:?}");
            assert!(at(30, 16)[0] > at(10, 16)[0], "{flip:?}");
        }
    }

    #[test]
    fn display_flips_follow_the_affine() {
        use nifti::NiftiHeader;
        let sform = |x: [f32; 4], y: [f32; 4], z: [f32; 4]| NiftiHeader {
            sform_code: 1,
            qform_code: 0,
            srow_x: x,
            srow_y: y,
            srow_z: z,
            ..NiftiHeader::default()
        };
        // BraTS/TCGA: LPS storage.
        let lps = sform([-1., 0., 0., 0.], [0., -1., 0., 239.], [0., 0., 1., 0.]);
        assert_eq!(display_flips(&lps), [false, true, false]);
        let ras = sform([1., 0., 0., 0.], [0., 1., 0., 0.], [0., 0., 1., 0.]);
        assert_eq!(display_flips(&ras), [true, false, false]);
        // FSL MNI152: LAS, the display's own convention.
        let las = sform([-2., 0., 0., 90.], [0., 2., 0., -126.], [0., 0., 2., -72.]);
        assert_eq!(display_flips(&las), [false, false, false]);
        // Oblique and permuted: voxel x ~ anterior, y ~ right, z ~ inferior.
        let odd = sform([0.1, 0.9, 0., 0.], [0.95, -0.2, 0., 0.], [0., 0., -1., 0.]);
        assert_eq!(display_flips(&odd), [false, true, true]);
        // qform only: 180 degrees about z is LPS; qfac -1 reverses z.
        let q = NiftiHeader {
            sform_code: 0,
            qform_code: 1,
            quatern_d: 1.0,
            ..NiftiHeader::default()
        };
        assert_eq!(display_flips(&q), [false, true, false]);
        let qfac = NiftiHeader {
            sform_code: 0,
            qform_code: 1,
            pixdim: [-1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0],
            ..NiftiHeader::default()
        };
        assert_eq!(display_flips(&qfac), [true, false, true]);
        // No transform at all: NIfTI's default is RAS.
        let none = NiftiHeader {
            sform_code: 0,
            qform_code: 0,
            ..NiftiHeader::default()
        };
        assert_eq!(display_flips(&none), [true, false, false]);
    }

    #[test]
    fn montage_overlay_colours_follow_the_hot_ramp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ramp.png");
        let dims = [8, 1, 1];
        let grey = vec![1.0; 8];
        // Below heat_min (transparent), then along the ramp.
        let map = vec![0.0, 0.4, 0.5, 0.6, 0.75, 0.9, 1.0, 2.0];
        let opts = MontageOptions {
            alpha: 1.0,
            ..MontageOptions::default()
        };
        let slices = write_montage(&path, dims, &grey, Some(&map), None, &opts).unwrap();
        assert_eq!(slices, vec![0]);
        let (w, h, buf) = decode(&path);
        assert_eq!(
            (w as usize, h as usize),
            (8 + 2 * TILE_MARGIN, 1 + 2 * TILE_MARGIN)
        );
        let row: Vec<[u8; 3]> = (0..8)
            .map(|x| pixel(&buf, w, TILE_MARGIN + x, TILE_MARGIN))
            .collect();
        // Constant grey image: non-zero voxels are white.
        assert_eq!(row[0], [255, 255, 255]);
        assert_eq!(row[1], [255, 255, 255]);
        assert_eq!(row[2], [0, 0, 0]);
        assert!(row[3][0] > 0 && row[3][1] == 0, "{:?}", row[3]);
        assert_eq!(row[6], [255, 255, 255]);
        assert_eq!(row[7], [255, 255, 255]);
        assert!(
            row[4][0] == 255 && row[4][1] > 0 && row[4][2] == 0,
            "{:?}",
            row[4]
        );
    }

    #[test]
    fn montage_slice_choice_and_axes() {
        let dir = tempfile::tempdir().unwrap();
        let (dims, grey, _, _) = phantom();
        for axis in 0..3 {
            let path = dir.path().join(format!("axis{axis}.png"));
            let opts = MontageOptions {
                slice_axis: axis,
                n_slices: 100,
                ..MontageOptions::default()
            };
            let slices = write_montage(&path, dims, &grey, None, None, &opts).unwrap();
            // Every well-filled slice, none of the empty ones.
            assert!(
                !slices.is_empty() && slices.len() < dims[axis],
                "{slices:?}"
            );
            let (w, h, _) = decode(&path);
            assert!(w > 0 && h > 0);
        }
        // An all-zero volume still renders.
        let path = dir.path().join("empty.png");
        let zeros = vec![0.0; 40 * 32 * 20];
        let slices =
            write_montage(&path, dims, &zeros, None, None, &MontageOptions::default()).unwrap();
        assert_eq!(slices.len(), 12);
        decode(&path);
    }

    #[test]
    fn montage_tiles_carry_their_slice_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("numbers.png");
        // An all-zero volume: tiles are black but for their labels.
        let dims = [40, 32, 20];
        let zeros = vec![0.0; dims.iter().product()];
        let opts = MontageOptions {
            n_slices: 2,
            columns: 2,
            ..MontageOptions::default()
        };
        let slices = write_montage(&path, dims, &zeros, None, None, &opts).unwrap();
        assert_eq!(slices.len(), 2);
        let (w, _, buf) = decode(&path);
        let lit = |x0: usize, x1: usize, y0: usize, y1: usize| {
            (y0..y1)
                .flat_map(|y| (x0..x1).map(move |x| (x, y)))
                .map(|(x, y)| pixel(&buf, w, x, y))
                .filter(|p| p[0] > 40 && p[0] == p[1] && p[1] == p[2])
                .count()
        };
        for k in 0..2 {
            let (x0, y0) = (TILE_MARGIN + k * (dims[0] + TILE_MARGIN), TILE_MARGIN);
            // Anti-aliased grey text in the top-left corner, nothing below it.
            assert!(lit(x0, x0 + 30, y0, y0 + 16) > 20, "tile {k}");
            assert_eq!(lit(x0, x0 + dims[0], y0 + 18, y0 + dims[1]), 0, "tile {k}");
        }
        // Two labels that differ ("z4", "z14"): not the same pixels.
        let tile = |k: usize| {
            let x0 = TILE_MARGIN + k * (dims[0] + TILE_MARGIN);
            (0..16)
                .flat_map(|y| (0..30).map(move |x| (x, y)))
                .map(|(x, y)| pixel(&buf, w, x0 + x, TILE_MARGIN + y))
                .collect::<Vec<_>>()
        };
        assert_ne!(tile(0), tile(1));
        // Tiles too small for a label get none.
        let small = [8, 6, 3];
        let ones = vec![0.0; small.iter().product()];
        write_montage(&path, small, &ones, None, None, &MontageOptions::default()).unwrap();
        let (_, _, buf) = decode(&path);
        assert!(buf.iter().all(|&c| c == 0));
    }

    #[test]
    fn choose_slices_spreads_and_forces_the_label_slice() {
        let mut fill = vec![0; 100];
        for f in fill.iter_mut().take(80).skip(20) {
            *f = 10;
        }
        let chosen = choose_slices(&fill, 6, None);
        assert_eq!(chosen, vec![25, 35, 45, 55, 65, 75]);
        let chosen = choose_slices(&fill, 6, Some(52));
        assert_eq!(chosen, vec![25, 35, 45, 52, 65, 75]);
        assert_eq!(choose_slices(&[0, 5, 0, 5], 10, None), vec![1, 3]);
        assert_eq!(choose_slices(&[0, 5, 0, 5], 10, Some(2)), vec![1, 2, 3]);
    }

    #[test]
    fn montage_rejects_bad_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.png");
        let grey = vec![1.0; 8];
        let ok = MontageOptions::default();
        let bad = |r: Result<Vec<usize>>| assert!(matches!(r, Err(Error::InvalidArgument(_))));
        bad(write_montage(&path, [2, 2, 3], &grey, None, None, &ok));
        bad(write_montage(
            &path,
            [2, 2, 2],
            &grey,
            Some(&[0.0; 7]),
            None,
            &ok,
        ));
        bad(write_montage(
            &path,
            [2, 2, 2],
            &grey,
            None,
            Some(&[true; 9]),
            &ok,
        ));
        bad(write_montage(&path, [0, 2, 2], &[], None, None, &ok));
        for opts in [
            MontageOptions {
                slice_axis: 3,
                ..ok
            },
            MontageOptions { n_slices: 0, ..ok },
            MontageOptions { columns: 0, ..ok },
            MontageOptions {
                heat_min: 1.0,
                heat_max: 1.0,
                ..ok
            },
            MontageOptions {
                heat_max: f32::NAN,
                ..ok
            },
            MontageOptions { alpha: 1.5, ..ok },
            MontageOptions {
                alpha: f32::NAN,
                ..ok
            },
        ] {
            bad(write_montage(&path, [2, 2, 2], &grey, None, None, &opts));
        }
        assert!(!path.exists());
    }
}
