//! Scoring whole volumes: every 32x32 window of every slice at a stride is
//! scored by the critic, calibrated, and painted back onto the voxels it
//! covers ([`Painting`]: each window's score spread over its pixels by the
//! critic's gradient times the input, and for models with an intensity gate
//! averaged with the plain mean of the windows covering each voxel), then
//! gated by intensity where the model has a gate ([`crate::gate`]).

use crate::error::{Error, Result};
use crate::io::tensor_file::to_f32_vec;
use crate::metrics::quantile;
use crate::model::{map_threshold_quantile, MapCalibration, Model};
use crate::nets::PATCH;
use crate::preprocess::{background_tensor, normalise, Case};
use crate::progress::{Progress, ProgressFn, Stage};
use crate::windows::{plane_dims, slice_count, voxel_of};
use serde::Serialize;

/// Options of scoring.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreOptions {
    /// Step between window origins in pixels (1 to 32). Smaller is sharper
    /// and slower: the number of windows grows as 1/stride^2.
    pub stride: usize,
    /// Windows per critic call.
    pub batch_size: usize,
    /// Slice axis; `None`: the model's.
    pub slice_axis: Option<usize>,
    /// Windows with at least this brain fraction paint the map; `None`: the
    /// fraction the model was trained with. Brain voxels no such window
    /// covers take the mean of the windows that do touch them.
    pub min_brain_fraction: Option<f64>,
    /// Also return the per-window table.
    pub patch_table: bool,
    /// How window scores become voxel scores; `None`: the model's
    /// ([`Model::painting`]).
    pub painting: Option<Painting>,
    /// Apply the model's intensity gate to the map ([`crate::gate`]; models
    /// without one are never gated). Window scores are never gated.
    pub intensity_gate: bool,
}

/// The painting of maps gated by intensity: equal parts of the mean and
/// the attribution painting ([`Painting::Mixed`]). The gate marks the
/// bright voxels; the mean of the windows covering a voxel says whether
/// its surroundings look abnormal, evenly across a large lesion, and the
/// attribution keeps lesions smaller than a window. Measured with the
/// quick preset (docs/BENCHMARKS.md, "The painting of gated maps"): gated,
/// the mean alone is best on large lesions and worst on small ones, the
/// attribution alone the reverse; the mixture is better than attribution
/// on both dev cases and close to it on small lesions.
pub const GATED_PAINTING: Painting = Painting::Mixed(ATTRIBUTION_SMOOTHING);

/// The painting of maps without a gate: attribution, which alone follows
/// lesions smaller than a window (docs/BENCHMARKS.md, "Maps at lesion
/// resolution").
pub const UNGATED_PAINTING: Painting = Painting::Attribution(ATTRIBUTION_SMOOTHING);

/// The painting of a model's maps, by whether they are gated.
pub fn painting_for(gated: bool) -> Painting {
    if gated {
        GATED_PAINTING
    } else {
        UNGATED_PAINTING
    }
}

/// Pixels of a window.
const WINDOW_PIXELS: usize = (PATCH * PATCH) as usize;

/// The box filter of `attribution` without `:K`, in pixels: measured on a
/// large glioma and on small synthetic lesions (docs/BENCHMARKS.md), 5 is
/// the middle ground (1 is speckled, 9 blurs lesions of a few voxels).
pub const ATTRIBUTION_SMOOTHING: usize = 5;

/// How window scores are painted onto voxels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Painting {
    /// Each voxel: the mean score of the windows covering it.
    Mean,
    /// Each voxel: the mean score of the windows covering it, each weighted
    /// by a Gaussian of the voxel's distance from the window's centre with
    /// this standard deviation in pixels: windows centred on a voxel count
    /// most, so maps follow lesions more closely than the plain mean.
    Centred(f64),
    /// Each window spreads its score over its pixels in proportion to how
    /// much each pixel raises it (gradient times input, box-filtered over
    /// this many pixels, normalised to mean 1 over the window's brain
    /// pixels); each voxel gets the mean over the windows covering it. The
    /// map follows lesions smaller than a window (the mean cannot), at
    /// about three times the scoring time (a backward pass per window).
    Attribution(usize),
    /// Each voxel: the average of the [`Painting::Mean`] and the
    /// [`Painting::Attribution`] (smoothed over this many pixels) maps:
    /// each window's score spread half evenly, half by attribution. The
    /// scoring time of attribution.
    Mixed(usize),
}

impl std::fmt::Display for Painting {
    /// As [`Painting::parse`] reads it (`mean`, `centred:8`, `attribution:5`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Painting::Mean => write!(f, "mean"),
            Painting::Centred(sigma) => write!(f, "centred:{sigma}"),
            Painting::Attribution(k) => write!(f, "attribution:{k}"),
            Painting::Mixed(k) => write!(f, "mixed:{k}"),
        }
    }
}

impl Painting {
    /// `mean`, `centred:SIGMA`, `attribution[:K]` or `mixed[:K]`.
    pub fn parse(s: &str) -> Result<Painting> {
        let s = s.trim();
        if s == "mean" {
            return Ok(Painting::Mean);
        }
        for (name, make) in [
            (
                "attribution",
                Painting::Attribution as fn(usize) -> Painting,
            ),
            ("mixed", Painting::Mixed),
        ] {
            if s == name {
                return Ok(make(ATTRIBUTION_SMOOTHING));
            }
            if let Some(v) = s.strip_prefix(name).and_then(|v| v.strip_prefix(':')) {
                if let Ok(k) = v.parse::<usize>() {
                    if k % 2 == 1 && k <= PATCH as usize {
                        return Ok(make(k));
                    }
                }
            }
        }
        if let Some(v) = s.strip_prefix("centred:").or(s.strip_prefix("centered:")) {
            if let Ok(sigma) = v.parse::<f64>() {
                if sigma.is_finite() && sigma > 0.0 {
                    return Ok(Painting::Centred(sigma));
                }
            }
        }
        Err(Error::invalid(format!(
            "painting '{s}' (expected mean, centred:SIGMA with SIGMA > 0 pixels, attribution[:K] or mixed[:K] with K odd, 1 to 31)"
        )))
    }
}

impl Default for ScoreOptions {
    fn default() -> Self {
        ScoreOptions {
            stride: 8,
            batch_size: 1024,
            slice_axis: None,
            min_brain_fraction: None,
            patch_table: false,
            painting: None,
            intensity_gate: true,
        }
    }
}

/// One scored window.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct PatchScore {
    pub slice_axis: usize,
    /// Slice index along the slice axis.
    pub slice: usize,
    /// Window origin in the plane: row (H) and column (W); see `preprocess`.
    pub row: usize,
    pub col: usize,
    /// Voxel `[x, y, z]` of the window's origin.
    pub origin: [usize; 3],
    /// Fraction of the window inside the brain.
    pub brain_fraction: f32,
    /// Raw critic output (higher = more normal).
    pub raw: f32,
    /// Calibrated anomaly score (higher = more anomalous).
    pub score: f32,
}

/// A scored volume.
#[derive(Debug, Clone)]
pub struct ScoreResult {
    /// Voxel anomaly map, x fastest, 0 outside the brain.
    pub map: Vec<f32>,
    /// Windows scored (with the table when asked for).
    pub patches: Vec<PatchScore>,
    pub windows_scored: usize,
    pub seconds: f64,
}

/// Paint window scores onto a plane: each pixel gets the sum and count of
/// the windows covering it (box filter over the window origins via 2-D
/// prefix sums, O(H*W) whatever the stride).
fn paint(
    h: usize,
    w: usize,
    padded: (usize, usize),
    origins: &[(usize, usize, f64)],
) -> (Vec<f64>, Vec<f64>) {
    let (ph, pw) = padded;
    let p = PATCH as usize;
    let mut s = vec![0f64; (ph + 1) * (pw + 1)];
    let mut c = vec![0f64; (ph + 1) * (pw + 1)];
    for &(r, q, v) in origins {
        s[(r + 1) * (pw + 1) + q + 1] += v;
        c[(r + 1) * (pw + 1) + q + 1] += 1.0;
    }
    for a in [&mut s, &mut c] {
        for r in 1..=ph {
            for q in 1..=pw {
                let i = r * (pw + 1) + q;
                a[i] += a[i - 1] + a[i - (pw + 1)] - a[i - (pw + 1) - 1];
            }
        }
    }
    let rect = |a: &Vec<f64>, r0: usize, q0: usize, r1: usize, q1: usize| {
        // sum over origins [r0, r1) x [q0, q1)
        a[r1 * (pw + 1) + q1] - a[r0 * (pw + 1) + q1] - a[r1 * (pw + 1) + q0]
            + a[r0 * (pw + 1) + q0]
    };
    let mut sum = vec![0f64; h * w];
    let mut cnt = vec![0f64; h * w];
    for r in 0..h {
        let r0 = (r + 1).saturating_sub(p);
        for q in 0..w {
            let q0 = (q + 1).saturating_sub(p);
            sum[r * w + q] = rect(&s, r0, q0, r + 1, q + 1);
            cnt[r * w + q] = rect(&c, r0, q0, r + 1, q + 1);
        }
    }
    (sum, cnt)
}

/// [`paint`] with weights per window pixel: window `i` adds `k * score` to
/// the sum and `c` to the count of each pixel it covers, `(k, c) =
/// weight(i, pixel)` (pixel row-major in the `32 x 32` window).
fn paint_weighted(
    h: usize,
    w: usize,
    origins: &[(usize, usize, f64)],
    weight: impl Fn(usize, usize) -> (f64, f64),
) -> (Vec<f64>, Vec<f64>) {
    let p = PATCH as usize;
    let mut sum = vec![0f64; h * w];
    let mut cnt = vec![0f64; h * w];
    for (i, &(r0, q0, v)) in origins.iter().enumerate() {
        for dr in 0..p.min(h.saturating_sub(r0)) {
            let row = (r0 + dr) * w;
            for dq in 0..p.min(w.saturating_sub(q0)) {
                let (k, c) = weight(i, dr * p + dq);
                sum[row + q0 + dq] += k * v;
                cnt[row + q0 + dq] += c;
            }
        }
    }
    (sum, cnt)
}

/// Attributions `[L, K, 32, 32]` (one for each of the critic's `K`
/// members) of windows whose brain pixels are `in_brain` (1/0, `[L, 32,
/// 32]`): each box-filtered over `k x k` pixels and divided by its mean over
/// the window's brain pixels, then averaged over the members (`[L, 32,
/// 32]`), so that a window painting its score times these gives its brain
/// the score on average, each member's say in where alike.
fn relative_attribution(attr: &tch::Tensor, in_brain: &tch::Tensor, k: usize) -> tch::Tensor {
    let brain = in_brain.unsqueeze(1);
    let a = attr * &brain;
    let a = if k > 1 {
        let k = k as i64;
        a.avg_pool2d([k, k], [1, 1], [k / 2, k / 2], false, false, None::<i64>) * &brain
    } else {
        a
    };
    let dims = &[2i64, 3][..];
    let brain_px = brain
        .sum_dim_intlist(dims, true, tch::Kind::Float)
        .clamp_min(1.0);
    let mean = a.sum_dim_intlist(dims, true, tch::Kind::Float) / brain_px;
    (a / (mean + 1e-6)).mean_dim(1, false, None)
}

/// The Gaussian window kernel of [`Painting::Centred`].
fn centred_kernel(sigma: f64) -> Vec<f64> {
    let p = PATCH as usize;
    let c = (p as f64 - 1.0) / 2.0;
    (0..p * p)
        .map(|i| {
            let (r, q) = ((i / p) as f64 - c, (i % p) as f64 - c);
            (-(r * r + q * q) / (2.0 * sigma * sigma)).exp()
        })
        .collect()
}

impl Painting {
    /// Per window pixel (row-major), the Gaussian weight of
    /// [`Painting::Centred`]; empty for the other paintings.
    fn kernel(self) -> Vec<f64> {
        match self {
            Painting::Centred(sigma) => centred_kernel(sigma),
            Painting::Mean | Painting::Attribution(_) | Painting::Mixed(_) => Vec::new(),
        }
    }
}

impl Model {
    /// Raw critic outputs of the windows `patches`, and for the attribution
    /// painting each window pixel's weight: its attribution relative to the
    /// window's brain pixels (`in_brain`, asked for only then). Both on the
    /// CPU, flattened. Scoring and the map calibration paint with these.
    fn scores_and_weights(
        &self,
        patches: &tch::Tensor,
        in_brain: impl FnOnce() -> tch::Tensor,
        painting: Painting,
        batch: usize,
    ) -> Result<(Vec<f32>, Option<Vec<f32>>)> {
        match painting {
            Painting::Attribution(k) | Painting::Mixed(k) => {
                let (raw, attr) = self.raw_scores_and_attributions(patches, batch)?;
                let in_brain = in_brain();
                let mut weights = relative_attribution(&attr, &in_brain, k);
                if let Painting::Mixed(_) = painting {
                    // Half the attribution painting's weights, half the
                    // mean's (1 on every brain pixel): the average of the
                    // two maps.
                    weights = weights * 0.5 + in_brain * 0.5;
                }
                Ok((to_f32_vec(&raw)?, Some(to_f32_vec(&weights)?)))
            }
            Painting::Mean | Painting::Centred(_) => {
                Ok((to_f32_vec(&self.raw_scores(patches, batch)?)?, None))
            }
        }
    }

    /// How maps of normal tissue look under `painting`: the held-out normal
    /// windows `patches` (`[N, C, 32, 32]`, cut at `stride`) painted onto
    /// their slices (`groups`) at their origins (`origins`: case, row,
    /// column; `backgrounds`: each case's values outside the brain) as
    /// [`Model::score_case`] paints a volume, and the covered brain voxels
    /// pooled. Uses the window calibration, so it comes after it. `None`
    /// when no brain voxel is covered.
    #[allow(clippy::too_many_arguments)]
    pub fn calibrate_map(
        &self,
        patches: &tch::Tensor,
        groups: &[u32],
        origins: &[(u32, u32, u32)],
        backgrounds: &[Vec<f32>],
        painting: Painting,
        stride: usize,
        batch: usize,
    ) -> Result<Option<MapCalibration>> {
        let n = patches.size()[0] as usize;
        if n == 0 || groups.len() != n || origins.len() != n {
            return Ok(None);
        }
        // A pixel is brain where any channel differs from its case's
        // background (raw 0 outside the brain maps exactly there).
        let mut bg = Vec::with_capacity(n * backgrounds.first().map_or(0, Vec::len));
        for &(case, _, _) in origins {
            let b = backgrounds.get(case as usize).ok_or_else(|| {
                Error::invalid(format!("patch of case {case}: no background for it"))
            })?;
            bg.extend_from_slice(b);
        }
        let channels = patches.size()[1];
        let bg = tch::Tensor::from_slice(&bg).view([n as i64, channels, 1, 1]);
        let on_cpu = patches
            .to_device(tch::Device::Cpu)
            .to_kind(tch::Kind::Float);
        let in_brain = on_cpu
            .f_ne_tensor(&bg)?
            .any_dim(1, false)
            .to_kind(tch::Kind::Float);
        let (raw, weights) =
            self.scores_and_weights(patches, || in_brain.shallow_clone(), painting, batch)?;
        let brain_px = to_f32_vec(&in_brain)?;
        let gate = self.meta.intensity_gate;
        let gated_px = match &gate {
            Some(g) => to_f32_vec(&on_cpu.select(1, g.channel as i64))?,
            None => Vec::new(),
        };
        let kernel = painting.kernel();
        let mut by_slice: std::collections::BTreeMap<u32, Vec<usize>> = Default::default();
        for (i, &g) in groups.iter().enumerate() {
            by_slice.entry(g).or_default().push(i);
        }
        let p = PATCH as usize;
        let mut values = Vec::new();
        for idx in by_slice.values() {
            // The plane as far as its windows reach.
            let (h, w) = idx.iter().fold((p, p), |(h, w), &i| {
                let (_, r, c) = origins[i];
                (h.max(r as usize + p), w.max(c as usize + p))
            });
            let windows: Vec<(usize, usize, f64)> = idx
                .iter()
                .map(|&i| {
                    let (_, r, c) = origins[i];
                    (
                        r as usize,
                        c as usize,
                        self.meta.calibration.score(raw[i] as f64),
                    )
                })
                .collect();
            let (sum, cnt) = match (&painting, &weights) {
                (Painting::Attribution(_) | Painting::Mixed(_), Some(a)) => {
                    paint_weighted(h, w, &windows, |j, px| {
                        (a[idx[j] * WINDOW_PIXELS + px] as f64, 1.0)
                    })
                }
                (Painting::Centred(_), _) => {
                    paint_weighted(h, w, &windows, |_, px| (kernel[px], kernel[px]))
                }
                _ => paint_weighted(h, w, &windows, |_, _| (1.0, 1.0)),
            };
            let mut brain = vec![false; h * w];
            // The gated channel's value of each pixel (any window covering
            // it holds the same).
            let mut value = vec![0f32; if gate.is_some() { h * w } else { 0 }];
            for &i in idx {
                let (_, r0, q0) = origins[i];
                for px in 0..WINDOW_PIXELS {
                    if brain_px[i * WINDOW_PIXELS + px] > 0.0 {
                        let k = (r0 as usize + px / p) * w + q0 as usize + px % p;
                        brain[k] = true;
                        if gate.is_some() {
                            value[k] = gated_px[i * WINDOW_PIXELS + px];
                        }
                    }
                }
            }
            values.extend((0..h * w).filter(|&k| brain[k] && cnt[k] > 0.0).map(|k| {
                let m = sum[k] / cnt[k];
                match &gate {
                    Some(g) => m.max(0.0) * g.weight(value[k]) as f64,
                    None => m,
                }
            }));
        }
        if values.is_empty() {
            return Ok(None);
        }
        values.sort_by(f64::total_cmp);
        let q = |p: f64| quantile(&values, p);
        let at = map_threshold_quantile(self.meta.training.augment);
        let quantiles: Vec<(f64, f64)> = [0.5, 0.9, 0.95, 0.99, 0.995, 0.999]
            .iter()
            .map(|&p| (p, q(p)))
            .collect();
        Ok(Some(MapCalibration {
            painting: painting.to_string(),
            gated: gate.is_some(),
            stride,
            voxels: values.len(),
            threshold: q(at).max(self.meta.calibration.threshold),
            quantiles,
        }))
    }

    /// The painting of this model's maps unless `asked` names one: the
    /// one its maps were calibrated with ([`MapCalibration::painting`]),
    /// else [`GATED_PAINTING`] for models with an intensity gate and
    /// [`UNGATED_PAINTING`] for the others.
    pub fn painting(&self, asked: Option<Painting>) -> Painting {
        asked
            .or_else(|| {
                let m = self.meta.calibration.map.as_ref()?;
                Painting::parse(&m.painting).ok()
            })
            .unwrap_or_else(|| painting_for(self.meta.intensity_gate.is_some()))
    }

    /// The suggested threshold of maps scored with `opts`: the map
    /// calibration's when it was made with their painting and gating, else
    /// the window threshold.
    pub fn map_threshold(&self, opts: &ScoreOptions) -> f64 {
        let gated = opts.intensity_gate && self.meta.intensity_gate.is_some();
        self.meta
            .calibration
            .threshold_for(&self.painting(opts.painting).to_string(), gated)
    }

    /// Score a case into a voxel anomaly map on its grid.
    pub fn score_case(
        &self,
        case: &Case,
        opts: &ScoreOptions,
        progress: &mut ProgressFn,
    ) -> Result<ScoreResult> {
        let t0 = std::time::Instant::now();
        self.check_channels(case.channels.len(), &case.name)?;
        if opts.stride == 0 || opts.stride > PATCH as usize {
            return Err(Error::invalid(format!(
                "stride {} (expected 1 to {PATCH})",
                opts.stride
            )));
        }
        let axis = opts.slice_axis.unwrap_or(self.meta.slice_axis);
        if axis > 2 {
            return Err(Error::invalid(format!(
                "slice axis {axis} (expected 0, 1 or 2)"
            )));
        }
        let min_frac = opts
            .min_brain_fraction
            .unwrap_or(self.meta.training.sampling.min_brain_fraction);
        let norm = normalise(case, self.normalisation())?;
        let dims = case.dims;
        let bg = background_tensor(&norm);
        let device = self.device();
        let data = norm.data.f_to_device(device)?;
        let bg_dev = bg.f_to_device(device)?;
        let (h, w) = plane_dims(dims, axis);
        let nslices = slice_count(dims, axis);
        let mut map = vec![0f32; case.voxels()];
        let mut table = Vec::new();
        let mut scored = 0usize;
        let brain = to_f32_vec(&norm.brain)?;
        let painting = self.painting(opts.painting);
        let kernel = painting.kernel();
        let walk = crate::windows::slices(dims, &norm.brain, &data, &bg_dev, axis, opts.stride);
        for sw in walk {
            let sw = sw?;
            let index = sw.index;
            let frac = &sw.brain_fraction;
            let any: Vec<i64> = (0..frac.len() as i64)
                .filter(|&i| frac[i as usize] > 0.0)
                .collect();
            if !any.is_empty() {
                let patches = sw.patches(&any);
                let (raw, attr) = self.scores_and_weights(
                    &patches,
                    || sw.brain_patches(&any),
                    painting,
                    opts.batch_size,
                )?;
                scored += raw.len();
                let mut strong = Vec::new();
                let mut weak = Vec::new();
                let mut strong_attr: Vec<&[f32]> = Vec::new();
                for (k, (&li, &r)) in any.iter().zip(&raw).enumerate() {
                    let li = li as usize;
                    let (row, col) = sw.origin(li);
                    let s = self.meta.calibration.score(r as f64);
                    if frac[li] as f64 >= min_frac - 1e-6 {
                        strong.push((row, col, s));
                        if let Some(a) = &attr {
                            strong_attr.push(&a[k * WINDOW_PIXELS..(k + 1) * WINDOW_PIXELS]);
                        }
                    } else {
                        weak.push((row, col, s));
                    }
                    if opts.patch_table {
                        table.push(PatchScore {
                            slice_axis: axis,
                            slice: index,
                            row,
                            col,
                            origin: voxel_of(axis, index, row, col),
                            brain_fraction: frac[li],
                            raw: r,
                            score: s as f32,
                        });
                    }
                }
                let ((s1, c1), (s2, c2)) = match painting {
                    Painting::Mean => (
                        paint(h, w, sw.padded, &strong),
                        paint(h, w, sw.padded, &weak),
                    ),
                    Painting::Centred(_) => {
                        let by_kernel = |_: usize, px: usize| (kernel[px], kernel[px]);
                        (
                            paint_weighted(h, w, &strong, by_kernel),
                            paint_weighted(h, w, &weak, by_kernel),
                        )
                    }
                    Painting::Attribution(_) | Painting::Mixed(_) => (
                        paint_weighted(h, w, &strong, |i, px| (strong_attr[i][px] as f64, 1.0)),
                        paint(h, w, sw.padded, &weak),
                    ),
                };
                for r in 0..h {
                    for q in 0..w {
                        let [x, y, z] = voxel_of(axis, index, r, q);
                        let vi = x + dims[0] * (y + dims[1] * z);
                        if brain[vi] == 0.0 {
                            continue;
                        }
                        let i = r * w + q;
                        map[vi] = if c1[i] > 0.0 {
                            (s1[i] / c1[i]) as f32
                        } else if c2[i] > 0.0 {
                            (s2[i] / c2[i]) as f32
                        } else {
                            0.0
                        };
                    }
                }
            }
            if !progress(&Progress::new(
                Stage::Score,
                index as u64 + 1,
                nslices as u64,
            )) {
                return Err(Error::Cancelled);
            }
        }
        if let (true, Some(g)) = (opts.intensity_gate, &self.meta.intensity_gate) {
            g.apply(&mut map, &to_f32_vec(&norm.data.get(g.channel as i64))?);
        }
        Ok(ScoreResult {
            map,
            patches: table,
            windows_scored: scored,
            seconds: t0.elapsed().as_secs_f64(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind, Tensor};

    #[test]
    fn paintings_parse_and_bad_ones_are_refused_by_name() {
        assert_eq!(Painting::parse("mean").unwrap(), Painting::Mean);
        assert_eq!(
            Painting::parse("centred:8").unwrap(),
            Painting::Centred(8.0)
        );
        assert_eq!(
            Painting::parse("attribution").unwrap(),
            Painting::Attribution(ATTRIBUTION_SMOOTHING)
        );
        assert_eq!(
            Painting::parse("attribution:3").unwrap(),
            Painting::Attribution(3)
        );
        assert_eq!(
            Painting::parse("mixed").unwrap(),
            Painting::Mixed(ATTRIBUTION_SMOOTHING)
        );
        for p in [Painting::Mixed(7), Painting::Attribution(3), Painting::Mean] {
            assert_eq!(Painting::parse(&p.to_string()).unwrap(), p);
        }
        for bad in [
            "attribution:4",
            "attribution:33",
            "mixed:2",
            "mixed5",
            "centred:0",
            "median",
        ] {
            let e = Painting::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn relative_attribution_keeps_the_spot_and_averages_one_over_the_brain() {
        // One window, one member: attribution on a 3x3 spot; the left half
        // is not brain.
        let a = Tensor::zeros([1, 1, 32, 32], (Kind::Float, Device::Cpu));
        let _ = a.narrow(2, 20, 3).narrow(3, 20, 3).fill_(1.0);
        let _ = a.narrow(3, 0, 4).fill_(5.0); // outside the brain
        let brain = Tensor::ones([1, 32, 32], (Kind::Float, Device::Cpu));
        let _ = brain.narrow(2, 0, 16).fill_(0.0);
        for k in [1, 5] {
            let r = relative_attribution(&a, &brain, k);
            assert_eq!(r.size(), vec![1, 32, 32]);
            let v = crate::io::tensor_file::to_f32_vec(&r).unwrap();
            let mean: f32 = v.iter().sum::<f32>() / (32.0 * 16.0);
            assert!((mean - 1.0).abs() < 1e-3, "k {k}: mean {mean}");
            assert_eq!(v[5 * 32 + 2], 0.0, "k {k}: outside the brain");
            assert!(v[21 * 32 + 21] > 10.0, "k {k}: spot {}", v[21 * 32 + 21]);
            assert!(v[5 * 32 + 28] < 1e-3, "k {k}: far from the spot");
        }
    }

    #[test]
    fn each_member_of_an_ensemble_has_an_equal_say_in_where() {
        // Two members, each pointing at its own spot, one with attributions
        // a hundred times the other's: both spots get the same weight, and
        // the window still averages one over its brain.
        let a = Tensor::zeros([1, 2, 32, 32], (Kind::Float, Device::Cpu));
        let _ = a.select(1, 0).narrow(1, 4, 3).narrow(2, 4, 3).fill_(100.0);
        let _ = a.select(1, 1).narrow(1, 24, 3).narrow(2, 24, 3).fill_(1.0);
        let brain = Tensor::ones([1, 32, 32], (Kind::Float, Device::Cpu));
        let r = relative_attribution(&a, &brain, 1);
        let v = crate::io::tensor_file::to_f32_vec(&r).unwrap();
        let mean: f32 = v.iter().sum::<f32>() / (32.0 * 32.0);
        assert!((mean - 1.0).abs() < 1e-3, "mean {mean}");
        let (first, second) = (v[5 * 32 + 5], v[25 * 32 + 25]);
        assert!((first - second).abs() < 1e-3 * first, "{first} {second}");
        assert!(first > 50.0, "{first}");
        assert!(v[15 * 32 + 15] < 1e-3);
    }
}
