//! PNG figures without a plotting dependency: slice montages of a volume with
//! an anomaly heat overlay and a label contour, ROC curves, and score
//! histograms.
//!
//! Everything is drawn into an RGB buffer (Bresenham lines, a built-in 5×7
//! bitmap font for labels) and written with the `png` crate through
//! [`write_atomically`], so a figure is either complete or absent.

use std::io::{self, BufWriter, Write};
use std::path::Path;

use crate::error::{Error, Result};
use crate::io::atomic::write_atomically;

/// Colour of label contours in montages (bright green).
const CONTOUR_RGB: [u8; 3] = [0, 255, 0];
/// Colour of the slice numbers in montages.
const MONTAGE_TEXT_RGB: [u8; 3] = [200, 200, 200];
/// Black margin between montage tiles, in pixels.
const TILE_MARGIN: usize = 4;
/// Slices with fewer non-zero voxels than this fraction of the fullest slice
/// are not drawn (they are the thin caps of the brain).
const MIN_SLICE_FILL: f64 = 0.2;
/// Largest image written, in pixels.
const MAX_PIXELS: usize = 1 << 27;
/// Largest number of histogram bins.
const MAX_BINS: usize = 100_000;
/// Curve colours (matplotlib's "tab10").
const PALETTE: [[u8; 3]; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];
const WHITE: [u8; 3] = [255, 255, 255];
const BLACK: [u8; 3] = [0, 0, 0];
const GRID: [u8; 3] = [225, 225, 225];
const DIAGONAL: [u8; 3] = [150, 150, 150];

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
/// their slice number. The PNG is written atomically.
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
    let mut canvas = match (width, height) {
        (Some(w), Some(h)) if w.checked_mul(h).is_some_and(|p| p <= MAX_PIXELS) => {
            Canvas::new(w, h, BLACK)
        }
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
                canvas.set(x0 + col, y0 + row, rgb);
            }
        }
        // Slice number, when the tile is large enough to hold it.
        if n_u >= 24 && n_v >= 12 {
            let axis_name = ["x", "y", "z"][axis];
            canvas.text(
                (x0 + 2) as i64,
                (y0 + 2) as i64,
                &format!("{axis_name}{slice}"),
                MONTAGE_TEXT_RGB,
                1,
            );
        }
    }
    canvas.write_png(path)?;
    Ok(slices)
}

/// Write ROC curves as a PNG: axes 0..1 with a grid, the dashed chance
/// diagonal, one coloured line per named curve and a legend. Points are
/// `(false positive rate, true positive rate)`; they are clamped to 0..1 and
/// non-finite points are skipped. The PNG is written atomically.
///
/// # Errors
///
/// [`Error::Io`] when the file cannot be written.
pub fn write_roc_png(path: &Path, curves: &[(String, Vec<(f64, f64)>)]) -> Result<()> {
    const SIZE: usize = 460;
    let plot = PlotArea {
        left: 64,
        top: 44,
        width: SIZE,
        height: SIZE,
    };
    let mut canvas = Canvas::new(plot.left + SIZE + 24, plot.top + SIZE + 56, WHITE);
    canvas.title("ROC");
    let tick = |f: f64| format!("{f:.1}");
    let (x0, y0) = plot.map(0.0, 0.0);
    let (x1, y1) = plot.map(1.0, 1.0);
    canvas.dashed_line(x0, y0, x1, y1, DIAGONAL, 6);
    canvas.axes(
        &plot,
        &tick,
        &tick,
        plot.left as i64 - 24,
        "FALSE POSITIVE RATE",
    );
    canvas.text(4, plot.top as i64 - 12, "TRUE POSITIVE RATE", BLACK, 1);

    for (k, (_, points)) in curves.iter().enumerate() {
        let colour = PALETTE[k % PALETTE.len()];
        let mut previous: Option<(i64, i64)> = None;
        for &(fpr, tpr) in points {
            if !(fpr.is_finite() && tpr.is_finite()) {
                previous = None;
                continue;
            }
            let p = plot.map(fpr.clamp(0.0, 1.0), tpr.clamp(0.0, 1.0));
            if let Some(q) = previous {
                canvas.thick_line(q.0, q.1, p.0, p.1, colour);
            }
            previous = Some(p);
        }
    }
    let entries: Vec<(String, [u8; 3])> = curves
        .iter()
        .enumerate()
        .map(|(k, (name, _))| (name.clone(), PALETTE[k % PALETTE.len()]))
        .collect();
    canvas.legend(&plot, &entries, Corner::BottomRight);
    canvas.write_png(path)
}

/// Write phase 2's validation curve as a PNG: validation AUROC (y, on the
/// range the points span, padded) against the phase-2 iteration (x), with
/// the chosen snapshot marked by a vertical line. Written atomically.
///
/// # Errors
///
/// [`Error::InvalidArgument`] when there is no point; [`Error::Io`] when the
/// file cannot be written.
pub fn write_validation_png(path: &Path, curve: &[(u64, f64)], chosen: u64) -> Result<()> {
    if curve.is_empty() {
        return Err(Error::invalid("the validation curve has no point"));
    }
    const W: usize = 520;
    const H: usize = 300;
    let plot = PlotArea {
        left: 64,
        top: 44,
        width: W,
        height: H,
    };
    let mut canvas = Canvas::new(plot.left + W + 24, plot.top + H + 56, WHITE);
    canvas.title("VALIDATION AUROC (HELD-OUT SLICES)");
    let x_max = curve.iter().map(|p| p.0).max().unwrap_or(1).max(1) as f64;
    let finite = curve.iter().map(|p| p.1).filter(|v| v.is_finite());
    let lo = finite.clone().fold(f64::INFINITY, f64::min);
    let hi = finite.fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() && hi > lo {
        let pad = (hi - lo) * 0.1;
        ((lo - pad).max(0.0), (hi + pad).min(1.0))
    } else if lo.is_finite() {
        ((lo - 0.05).max(0.0), (lo + 0.05).min(1.0))
    } else {
        (0.0, 1.0)
    };
    let fy = |v: f64| (v - lo) / (hi - lo);
    canvas.axes(
        &plot,
        &|f| format_number(f * x_max),
        &|f| format_number(lo + f * (hi - lo)),
        4,
        "PHASE-2 ITERATION",
    );
    let (cx, _) = plot.map(chosen as f64 / x_max, 0.0);
    canvas.dashed_line(cx, plot.top as i64, cx, plot.bottom(), DIAGONAL, 6);
    let colour = PALETTE[0];
    let mut previous: Option<(i64, i64)> = None;
    for &(it, v) in curve {
        if !v.is_finite() {
            previous = None;
            continue;
        }
        let p = plot.map(it as f64 / x_max, fy(v).clamp(0.0, 1.0));
        if let Some(q) = previous {
            canvas.thick_line(q.0, q.1, p.0, p.1, colour);
        }
        canvas.fill_rect(p.0 - 2, p.1 - 2, p.0 + 2, p.1 + 2, colour, 1.0);
        previous = Some(p);
    }
    let entries = vec![
        ("VALIDATION AUROC".to_string(), colour),
        (format!("CHOSEN: ITERATION {chosen}"), DIAGONAL),
    ];
    canvas.legend(&plot, &entries, Corner::BottomRight);
    canvas.write_png(path)
}

/// Write the histograms of the scores of normal and of lesion samples, on a
/// shared range split into `bins` bins, as a PNG. Each histogram is
/// normalised to fractions of its own sample count so that classes of
/// different sizes compare; normal is blue, lesion red. Non-finite scores are
/// ignored. The PNG is written atomically.
///
/// # Errors
///
/// [`Error::InvalidArgument`] when `bins` is 0 or above 100 000;
/// [`Error::Io`] when the file cannot be written.
pub fn write_histogram_png(
    path: &Path,
    normal: &[f64],
    abnormal: &[f64],
    bins: usize,
) -> Result<()> {
    if bins == 0 || bins > MAX_BINS {
        return Err(Error::InvalidArgument(format!(
            "{}: histogram bins must be between 1 and {MAX_BINS}, not {bins}",
            path.display()
        )));
    }
    let finite =
        |values: &[f64]| -> Vec<f64> { values.iter().copied().filter(|v| v.is_finite()).collect() };
    let (normal, abnormal) = (finite(normal), finite(abnormal));
    let (mut lo, mut hi) = normal
        .iter()
        .chain(&abnormal)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        (lo, hi) = (0.0, 1.0);
    } else if lo == hi {
        (lo, hi) = (lo - 0.5, hi + 0.5);
    }
    let histogram = |values: &[f64]| -> Vec<f64> {
        let mut counts = vec![0.0; bins];
        for &v in values {
            let b = ((v - lo) / (hi - lo) * bins as f64) as usize;
            counts[b.min(bins - 1)] += 1.0;
        }
        let total = values.len().max(1) as f64;
        counts.iter_mut().for_each(|c| *c /= total);
        counts
    };
    let classes = [
        (histogram(&normal), PALETTE[0], "NORMAL", normal.len()),
        (histogram(&abnormal), PALETTE[3], "LESION", abnormal.len()),
    ];
    let peak = classes
        .iter()
        .flat_map(|(h, ..)| h.iter().copied())
        .fold(0.0, f64::max);
    let y_max = if peak > 0.0 { peak * 1.05 } else { 1.0 };

    let plot = PlotArea {
        left: 64,
        top: 44,
        width: 560,
        height: 320,
    };
    let mut canvas = Canvas::new(
        plot.left + plot.width + 24,
        plot.top + plot.height + 56,
        WHITE,
    );
    canvas.title("SCORE HISTOGRAM");
    for k in 0..=4 {
        let f = k as f64 / 4.0;
        let (x, y) = plot.map(f, f);
        canvas.line(plot.left as i64, y, plot.right(), y, GRID);
        canvas.text(4, y - 3, &format_number(f * y_max), BLACK, 1);
        let label = format_number(lo + f * (hi - lo));
        canvas.text(
            x - 3 * label.len() as i64,
            plot.bottom() + 6,
            &label,
            BLACK,
            1,
        );
    }
    canvas.text(
        plot.left as i64 + plot.width as i64 / 2 - 15,
        plot.bottom() + 22,
        "SCORE",
        BLACK,
        1,
    );
    canvas.text(4, plot.top as i64 - 12, "FRACTION", BLACK, 1);

    let bin_x = |b: usize| plot.left as i64 + (b * plot.width / bins) as i64;
    let bar_y = |fraction: f64| plot.map(0.0, fraction / y_max).1;
    for (counts, colour, ..) in &classes {
        for (b, &c) in counts.iter().enumerate() {
            if c > 0.0 {
                canvas.fill_rect(
                    bin_x(b),
                    bar_y(c),
                    bin_x(b + 1),
                    plot.bottom(),
                    *colour,
                    0.35,
                );
            }
        }
    }
    for (counts, colour, ..) in &classes {
        // Step outline.
        let mut y_prev = plot.bottom();
        for (b, &c) in counts.iter().enumerate() {
            let y = bar_y(c);
            canvas.line(bin_x(b), y_prev, bin_x(b), y, *colour);
            canvas.line(bin_x(b), y, bin_x(b + 1), y, *colour);
            y_prev = y;
        }
        canvas.line(bin_x(bins), y_prev, bin_x(bins), plot.bottom(), *colour);
    }
    canvas.rect_outline(
        plot.left as i64,
        plot.top as i64,
        plot.right(),
        plot.bottom(),
        BLACK,
    );
    let entries: Vec<(String, [u8; 3])> = classes
        .iter()
        .map(|(_, colour, name, n)| (format!("{name} N={n}"), *colour))
        .collect();
    canvas.legend(&plot, &entries, Corner::TopRight);
    canvas.write_png(path)
}

// ---------------------------------------------------------------------------
// Montage helpers
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Plot helpers
// ---------------------------------------------------------------------------

/// Rectangle of a plot on the canvas, mapping data 0..1 × 0..1 onto it.
struct PlotArea {
    left: usize,
    top: usize,
    width: usize,
    height: usize,
}

impl PlotArea {
    fn right(&self) -> i64 {
        (self.left + self.width) as i64
    }

    fn bottom(&self) -> i64 {
        (self.top + self.height) as i64
    }

    /// Pixel of the data point `(fx, fy)` in 0..1 (y up).
    fn map(&self, fx: f64, fy: f64) -> (i64, i64) {
        let x = self.left as f64 + fx * self.width as f64;
        let y = self.top as f64 + (1.0 - fy) * self.height as f64;
        (x.round() as i64, y.round() as i64)
    }
}

/// Where a legend goes in the plot area.
#[derive(Clone, Copy)]
enum Corner {
    TopRight,
    BottomRight,
}

/// Compact tick label: 3 significant decimals, or scientific for extremes.
fn format_number(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        format!("{v:.1e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "-0" {
            "0".to_string()
        } else {
            s.to_string()
        }
    }
}

// ---------------------------------------------------------------------------
// RGB canvas
// ---------------------------------------------------------------------------

/// An RGB8 image, row-major, with drawing primitives that clip silently.
struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: usize, height: usize, background: [u8; 3]) -> Self {
        let mut pixels = Vec::with_capacity(width * height * 3);
        for _ in 0..width * height {
            pixels.extend_from_slice(&background);
        }
        Self {
            width,
            height,
            pixels,
        }
    }

    fn offset(&self, x: i64, y: i64) -> Option<usize> {
        let x = usize::try_from(x).ok().filter(|&x| x < self.width)?;
        let y = usize::try_from(y).ok().filter(|&y| y < self.height)?;
        Some((y * self.width + x) * 3)
    }

    fn set(&mut self, x: usize, y: usize, rgb: [u8; 3]) {
        if x < self.width && y < self.height {
            let o = (y * self.width + x) * 3;
            self.pixels[o..o + 3].copy_from_slice(&rgb);
        }
    }

    fn put(&mut self, x: i64, y: i64, rgb: [u8; 3]) {
        if let Some(o) = self.offset(x, y) {
            self.pixels[o..o + 3].copy_from_slice(&rgb);
        }
    }

    fn put_blended(&mut self, x: i64, y: i64, rgb: [u8; 3], alpha: f32) {
        if let Some(o) = self.offset(x, y) {
            let under = [self.pixels[o], self.pixels[o + 1], self.pixels[o + 2]];
            self.pixels[o..o + 3].copy_from_slice(&blend(under, rgb, alpha));
        }
    }

    /// Bresenham line, both ends included; `keep(i)` decides whether the
    /// i-th pixel is drawn (for dashes).
    fn line_with(
        &mut self,
        (x0, y0): (i64, i64),
        (x1, y1): (i64, i64),
        rgb: [u8; 3],
        keep: impl Fn(usize) -> bool,
    ) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        let mut i = 0;
        loop {
            if keep(i) {
                self.put(x, y, rgb);
            }
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
            i += 1;
        }
    }

    fn line(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, rgb: [u8; 3]) {
        self.line_with((x0, y0), (x1, y1), rgb, |_| true);
    }

    fn dashed_line(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, rgb: [u8; 3], dash: usize) {
        let dash = dash.max(1);
        self.line_with((x0, y0), (x1, y1), rgb, |i| (i / dash) % 2 == 0);
    }

    /// A 2-pixel-wide line.
    fn thick_line(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, rgb: [u8; 3]) {
        self.line(x0, y0, x1, y1, rgb);
        self.line(x0 + 1, y0, x1 + 1, y1, rgb);
        self.line(x0, y0 - 1, x1, y1 - 1, rgb);
    }

    fn rect_outline(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, rgb: [u8; 3]) {
        self.line(x0, y0, x1, y0, rgb);
        self.line(x1, y0, x1, y1, rgb);
        self.line(x1, y1, x0, y1, rgb);
        self.line(x0, y1, x0, y0, rgb);
    }

    /// Fill `[x0, x1) × [y0, y1)` with `rgb` at opacity `alpha`.
    fn fill_rect(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, rgb: [u8; 3], alpha: f32) {
        let (w, h) = (self.width as i64, self.height as i64);
        for y in y0.clamp(0, h)..y1.clamp(0, h) {
            for x in x0.clamp(0, w)..x1.clamp(0, w) {
                self.put_blended(x, y, rgb, alpha);
            }
        }
    }

    /// Draw text with the 5×7 font, `scale` pixels per font pixel.
    fn text(&mut self, x: i64, y: i64, text: &str, rgb: [u8; 3], scale: i64) {
        for (k, c) in text.chars().enumerate() {
            let glyph = glyph(c);
            let cx = x + k as i64 * 6 * scale;
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        for dy in 0..scale {
                            for dx in 0..scale {
                                self.put(cx + col * scale + dx, y + row as i64 * scale + dy, rgb);
                            }
                        }
                    }
                }
            }
        }
    }

    /// A title centred at the top, at twice the font size.
    /// A plot's frame: a 5 x 5 grid with tick labels (`x_tick`, `y_tick`
    /// of the fraction 0..1 along each axis; y labels start at column
    /// `y_tick_at`), the outline and the x axis's label.
    fn axes(
        &mut self,
        plot: &PlotArea,
        x_tick: &dyn Fn(f64) -> String,
        y_tick: &dyn Fn(f64) -> String,
        y_tick_at: i64,
        x_label: &str,
    ) {
        for k in 0..=5 {
            let f = k as f64 / 5.0;
            let (x, y) = plot.map(f, f);
            self.line(x, plot.top as i64, x, plot.bottom(), GRID);
            self.line(plot.left as i64, y, plot.right(), y, GRID);
            self.text(x - 8, plot.bottom() + 6, &x_tick(f), BLACK, 1);
            self.text(y_tick_at, y - 3, &y_tick(f), BLACK, 1);
        }
        self.rect_outline(
            plot.left as i64,
            plot.top as i64,
            plot.right(),
            plot.bottom(),
            BLACK,
        );
        self.text(
            plot.left as i64 + plot.width as i64 / 2 - 60,
            plot.bottom() + 22,
            x_label,
            BLACK,
            1,
        );
    }

    fn title(&mut self, text: &str) {
        let width = text.chars().count() as i64 * 12;
        self.text((self.width as i64 - width) / 2, 8, text, BLACK, 2);
    }

    /// A boxed legend of coloured swatches and names in a corner of `plot`.
    fn legend(&mut self, plot: &PlotArea, entries: &[(String, [u8; 3])], corner: Corner) {
        const MAX_CHARS: usize = 40;
        if entries.is_empty() {
            return;
        }
        let names: Vec<String> = entries
            .iter()
            .map(|(name, _)| name.chars().take(MAX_CHARS).collect())
            .collect();
        let longest = names.iter().map(|n| n.chars().count()).max().unwrap_or(0) as i64;
        let line_height = 12;
        let width = 8 + 20 + 6 + longest * 6 + 8;
        let height = 8 + entries.len() as i64 * line_height + 4;
        let x0 = plot.right() - width - 8;
        let y0 = match corner {
            Corner::TopRight => plot.top as i64 + 8,
            Corner::BottomRight => plot.bottom() - height - 8,
        };
        self.fill_rect(x0, y0, x0 + width, y0 + height, WHITE, 1.0);
        self.rect_outline(x0, y0, x0 + width, y0 + height, DIAGONAL);
        for (k, (name, (_, colour))) in names.iter().zip(entries).enumerate() {
            let y = y0 + 8 + k as i64 * line_height;
            self.thick_line(x0 + 8, y + 3, x0 + 28, y + 3, *colour);
            self.text(x0 + 34, y, name, BLACK, 1);
        }
    }

    /// Encode as an RGB PNG and write it atomically.
    fn write_png(&self, path: &Path) -> Result<()> {
        let (Ok(width), Ok(height)) = (u32::try_from(self.width), u32::try_from(self.height))
        else {
            return Err(Error::InvalidArgument(format!(
                "{}: image of {}x{} pixels is too large",
                path.display(),
                self.width,
                self.height
            )));
        };
        write_atomically(path, |file| {
            let mut buffered = BufWriter::new(file);
            let mut encoder = png::Encoder::new(&mut buffered, width, height);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().map_err(io::Error::other)?;
            writer
                .write_image_data(&self.pixels)
                .map_err(io::Error::other)?;
            writer.finish().map_err(io::Error::other)?;
            buffered.flush()
        })
    }
}

/// The 5×7 glyph of a character (rows top to bottom, bit 4 = leftmost
/// column). Lower-case letters use the capitals; unknown characters show `?`.
fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_uppercase() {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        ' ' => [0; 7],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        ',' => [0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        '+' => [0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00],
        '=' => [0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        '/' => [0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00],
        '_' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F],
        '%' => [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
        _ => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    fn decode(path: &Path) -> (u32, u32, Vec<u8>) {
        let decoder = png::Decoder::new(File::open(path).unwrap());
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

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

    #[test]
    fn roc_png_decodes_with_coloured_curves() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roc.png");
        let curves = vec![
            (
                "adGAN AUC=0.91".to_string(),
                vec![(0.0, 0.0), (0.1, 0.6), (0.3, 0.9), (1.0, 1.0)],
            ),
            (
                "baseline".to_string(),
                vec![(0.0, 0.0), (f64::NAN, 0.5), (0.5, 0.6), (1.0, 1.0)],
            ),
        ];
        write_roc_png(&path, &curves).unwrap();
        let (w, h, buf) = decode(&path);
        assert!(w > 400 && h > 400);
        assert!(buf.chunks(3).any(|p| p == PALETTE[0]));
        assert!(buf.chunks(3).any(|p| p == PALETTE[1]));
        assert!(buf.chunks(3).any(|p| p == DIAGONAL));
        write_roc_png(&path, &[]).unwrap();
        decode(&path);
    }

    #[test]
    fn validation_png_decodes_with_a_curve() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.png");
        let curve = [(50, 0.9), (100, 0.95), (150, 0.93)];
        write_validation_png(&path, &curve, 100).unwrap();
        let (w, h, buf) = decode(&path);
        assert_eq!((w, h), (64 + 520 + 24, 44 + 300 + 56));
        let coloured = (0..h as usize)
            .flat_map(|y| (0..w as usize).map(move |x| (x, y)))
            .filter(|&(x, y)| pixel(&buf, w, x, y) == PALETTE[0])
            .count();
        assert!(coloured > 100, "{coloured}");
        assert!(write_validation_png(&path, &[], 0).is_err());
    }

    #[test]
    fn histogram_png_decodes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hist.png");
        let normal: Vec<f64> = (0..500).map(|i| (i as f64 * 0.37).sin() * 0.2).collect();
        let lesion: Vec<f64> = (0..50)
            .map(|i| 0.5 + (i as f64 * 0.77).cos() * 0.2)
            .collect();
        write_histogram_png(&path, &normal, &lesion, 30).unwrap();
        let (w, h, buf) = decode(&path);
        assert!(w > 400 && h > 300);
        assert!(buf.chunks(3).any(|p| p == PALETTE[0]));
        assert!(buf.chunks(3).any(|p| p == PALETTE[3]));
        // Degenerate inputs still make a figure.
        write_histogram_png(&path, &[], &[f64::NAN], 10).unwrap();
        write_histogram_png(&path, &[1.0; 4], &[1.0], 1).unwrap();
        decode(&path);
        assert!(matches!(
            write_histogram_png(&path, &normal, &lesion, 0),
            Err(Error::InvalidArgument(_))
        ));
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left behind");
    }

    #[test]
    fn number_labels() {
        assert_eq!(format_number(0.0), "0");
        assert_eq!(format_number(0.25), "0.25");
        assert_eq!(format_number(-1.5), "-1.5");
        assert_eq!(format_number(1234.0), "1234");
        assert_eq!(format_number(1e-6), "1.0e-6");
        assert_eq!(format_number(-0.0001), "-1.0e-4");
    }
}
