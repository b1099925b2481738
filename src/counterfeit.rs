//! Counterfeit anomalies beyond the generator: local anomalies made from real
//! normal patches, for phase 2's fake batches and for choosing a critic
//! without labels.
//!
//! The paper's idea is that the critic learns "abnormal" from counterfeits;
//! its only counterfeiter is the phase-1 generator. Here are three more,
//! each a soft-edged region of random position (always on brain pixels),
//! shape, size and strength, changed in one of these ways:
//!
//! - [`Counterfeit::Blend`]: foreign-patch interpolation (Tan et al. 2020,
//!   the MOOD 2020 winner): the region is blended with the same region of
//!   another normal patch;
//! - [`Counterfeit::Intensity`]: the region is made brighter or darker
//!   (hyper- or hypo-intense), independently per channel;
//! - [`Counterfeit::Texture`]: the region is blurred or gets added noise;
//! - [`Counterfeit::Fill`]: the region's fine structure is smoothed away
//!   (a 9-pixel box filter) and its level shifted brighter or darker, as
//!   oedema or a tumour replaces tissue with something homogeneous.
//!
//! None of them is a benchmark's own anomaly (ab-FMNIST pastes hard-edged
//! squares of constant intensity). All randomness comes from the caller's
//! seeded [`Rng`], so a seed gives the same counterfeits every time.

pub use crate::config::Counterfeit;
use crate::nets::PATCH;
use crate::rng::Rng;
use tch::{Kind, Tensor};

/// Smallest and largest semi-axis of a region, in pixels: from a few pixels
/// to larger than the window, so that a window lying wholly inside a large
/// lesion is a counterfeit too.
const RADIUS: (f64, f64) = (2.0, 24.0);

/// Soft elliptical regions `[B, 1, 32, 32]` in [0, 1], one per patch, each
/// centred on a brain pixel of its patch (a pixel brighter than the
/// patch's darkest value in channel 0: the background is each channel's
/// minimum after normalisation). Edges fall off over 1 to 3 pixels.
fn regions(x: &Tensor, rng: &mut Rng) -> Tensor {
    let b = x.size()[0];
    let device = x.device();
    let p = PATCH;
    let first = x.narrow(1, 0, 1).flatten(1, -1); // [B, 1024]
    let lowest = first.amin([1].as_slice(), true);
    let brain = first.gt_tensor(&(lowest + 1e-3)).to_kind(Kind::Float);
    // A patch with no brain pixel at all picks among every pixel.
    let none = brain.sum_dim_intlist(1, true, Kind::Float).eq(0.0);
    let weights = brain.where_self(&none.logical_not(), &brain.ones_like());
    let cdf = weights.cumsum(1, Kind::Float);
    let total = cdf.narrow(1, p * p - 1, 1);
    let u = rng.uniform(&[b, 1], 0.0, 1.0, device) * &total;
    let pick = cdf
        .lt_tensor(&u)
        .sum_dim_intlist(1, true, Kind::Int64)
        .clamp_max(p * p - 1); // [B, 1]
    let cy = pick.divide_scalar_mode(p, "floor").to_kind(Kind::Float);
    let cx = pick.remainder(p).to_kind(Kind::Float);
    let (cy, cx) = (cy.view([b, 1, 1]), cx.view([b, 1, 1]));
    // Log-uniform sizes: every scale equally likely, small regions as
    // often as large ones; the aspect ratio up to 2.
    let (lo, hi) = (RADIUS.0.ln(), RADIUS.1.ln());
    let ry = rng.uniform(&[b, 1, 1], lo, hi, device).exp();
    let rx = &ry
        * rng
            .uniform(&[b, 1, 1], 0.5f64.ln(), 2f64.ln(), device)
            .exp();
    let theta = rng.uniform(&[b, 1, 1], 0.0, std::f64::consts::PI, device);
    let edge = rng.uniform(&[b, 1, 1], 1.0, 3.0, device);
    let opts = (Kind::Float, device);
    let yy = Tensor::arange(p, opts).view([1, p, 1]) - cy;
    let xx = Tensor::arange(p, opts).view([1, 1, p]) - cx;
    let (c, s) = (theta.cos(), theta.sin());
    let u_ = (&xx * &c + &yy * &s) / &rx;
    let v_ = (-(&xx * &s) + &yy * &c) / &ry;
    let r = (u_.square() + v_.square()).sqrt(); // 1 on the ellipse's rim
                                                // Distance past the rim in pixels, approximately, over the edge width.
    let rmin = rx.minimum(&ry);
    let soft = ((-(r - 1.0)) * rmin / edge * 2.0).sigmoid();
    soft.unsqueeze(1)
}

/// Per-patch choice weights `[B, 1, 1, 1]` of `count` options: one-hot
/// masks, one per option, drawn uniformly.
fn choose(b: i64, count: usize, rng: &mut Rng, device: tch::Device) -> Vec<Tensor> {
    let u = rng.uniform(&[b, 1, 1, 1], 0.0, count as f64, device);
    (0..count)
        .map(|i| {
            u.ge(i as f64)
                .logical_and(&u.lt((i + 1) as f64))
                .to_kind(Kind::Float)
        })
        .collect()
}

/// Per patch and channel `[B, C, 1, 1]`: a shift of 0.5 to 3 (standard
/// deviations after normalisation), brighter or darker with equal odds.
fn signed_shift(b: i64, c: i64, rng: &mut Rng, device: tch::Device) -> Tensor {
    let amp = rng.uniform(&[b, c, 1, 1], 0.5, 3.0, device);
    let sign = rng
        .uniform(&[b, c, 1, 1], 0.0, 1.0, device)
        .ge(0.5)
        .to_kind(Kind::Float)
        * 2.0
        - 1.0;
    amp * sign
}

/// Counterfeits of a batch of normal patches `[B, C, 32, 32]`: each patch
/// becomes one synthetic anomaly of a kind drawn uniformly from `kinds`.
/// Values stay finite; nothing outside the region changes.
pub fn make(x: &Tensor, kinds: &[Counterfeit], rng: &mut Rng) -> Tensor {
    assert!(!kinds.is_empty(), "make needs at least one kind");
    let size = x.size();
    let (b, c) = (size[0], size[1]);
    let device = x.device();
    let m = regions(x, rng);
    let picks = choose(b, kinds.len(), rng, device);
    let mut out = x.zeros_like();
    for (kind, pick) in kinds.iter().zip(&picks) {
        let y = match kind {
            Counterfeit::Blend => {
                // Another patch of the batch (the next one, cyclically).
                let other = x.roll([1], [0]);
                let a = rng.uniform(&[b, 1, 1, 1], 0.3, 1.0, device);
                let w = &m * a;
                x * (w.ones_like() - &w) + other * &w
            }
            Counterfeit::Intensity => x + &m * signed_shift(b, c, rng, device),
            Counterfeit::Texture => {
                let blurred = x.avg_pool2d([5, 5], [1, 1], [2, 2], false, false, None::<i64>);
                let sigma = rng.uniform(&[b, 1, 1, 1], 0.3, 1.0, device);
                let noisy = x + rng.normal(&[b, c, PATCH, PATCH], device) * sigma;
                let blur = choose(b, 2, rng, device).swap_remove(0);
                let t = &blurred * &blur + noisy * (blur.ones_like() - &blur);
                x * (m.ones_like() - &m) + t * &m
            }
            Counterfeit::Fill => {
                let smooth = x.avg_pool2d([9, 9], [1, 1], [4, 4], false, false, None::<i64>);
                let t = smooth + signed_shift(b, c, rng, device);
                x * (m.ones_like() - &m) + t * &m
            }
        };
        out += y * pick;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn patches(b: i64) -> Tensor {
        let mut rng = Rng::stream(7, 9, 0);
        rng.normal(&[b, 2, PATCH, PATCH], Device::Cpu)
    }

    #[test]
    fn names_round_trip() {
        for k in Counterfeit::ALL {
            assert_eq!(Counterfeit::parse(k.name()).unwrap(), k);
        }
        assert_eq!(
            Counterfeit::parse_list("blend, intensity,blend").unwrap(),
            vec![Counterfeit::Blend, Counterfeit::Intensity]
        );
        assert!(Counterfeit::parse_list("none").unwrap().is_empty());
        let e = Counterfeit::parse_list("blend,square").unwrap_err();
        assert!(e.to_string().contains("square"), "{e}");
    }

    #[test]
    fn regions_are_soft_local_and_inside() {
        let x = patches(64);
        let m = regions(&x, &mut Rng::stream(1, 0, 0));
        assert_eq!(m.size(), vec![64, 1, PATCH, PATCH]);
        let min = m.min().double_value(&[]);
        let max = m.max().double_value(&[]);
        assert!(min >= 0.0 && max <= 1.0, "{min} {max}");
        // Every region covers something; sizes range from a few pixels to
        // most of the window.
        let area = m.sum_dim_intlist([1, 2, 3].as_slice(), false, Kind::Float);
        let (lo, hi) = (area.min().double_value(&[]), area.max().double_value(&[]));
        let full = (PATCH * PATCH) as f64;
        assert!(lo > 4.0 && lo < 0.1 * full && hi > 0.5 * full, "{lo} {hi}");
    }

    #[test]
    fn centres_land_on_brain_pixels() {
        // Left half background (the minimum), right half brain.
        let x = Tensor::ones([32, 1, PATCH, PATCH], (Kind::Float, Device::Cpu));
        let _ = x.narrow(3, 0, 16).fill_(-3.0);
        let m = regions(&x, &mut Rng::stream(2, 0, 0));
        let right = m.narrow(3, 16, 16).sum(Kind::Float).double_value(&[]);
        let left = m.narrow(3, 0, 16).sum(Kind::Float).double_value(&[]);
        assert!(right > 2.0 * left, "right {right} left {left}");
    }

    #[test]
    fn each_kind_changes_a_region_and_is_seeded() {
        let x = patches(16);
        for kind in Counterfeit::ALL {
            let a = make(&x, &[kind], &mut Rng::stream(3, 0, 0));
            let b = make(&x, &[kind], &mut Rng::stream(3, 0, 0));
            assert!(a.equal(&b), "{kind:?}: same seed, same counterfeits");
            assert_eq!(a.size(), x.size());
            assert!(bool::try_from(a.isfinite().all()).unwrap());
            let diff = (&a - &x)
                .abs()
                .sum_dim_intlist([1, 2, 3].as_slice(), false, Kind::Float);
            assert!(
                diff.min().double_value(&[]) > 0.0,
                "{kind:?}: every patch changes"
            );
            // The change is local: many counterfeits leave most of their
            // window (nearly) as it was.
            let same = (&a - &x).abs().lt(1e-2).to_kind(Kind::Float).mean_dim(
                [1, 2, 3].as_slice(),
                false,
                Kind::Float,
            );
            let local = same.gt(0.5).to_kind(Kind::Float).mean(Kind::Float);
            assert!(local.double_value(&[]) > 0.15, "{kind:?}: {local}");
        }
        let c = make(&x, &[Counterfeit::Blend], &mut Rng::stream(4, 0, 0));
        let a = make(&x, &[Counterfeit::Blend], &mut Rng::stream(3, 0, 0));
        assert!(!a.equal(&c), "another seed, other counterfeits");
    }

    #[test]
    fn intensity_stays_within_a_few_standard_deviations() {
        let x = patches(256);
        let y = make(&x, &[Counterfeit::Intensity], &mut Rng::stream(5, 0, 0));
        let d = (&y - &x).abs().max().double_value(&[]);
        assert!(d <= 3.0 + 1e-5 && d > 1.0, "{d}");
    }

    #[test]
    fn fill_smooths_its_region_away() {
        // Inside the region (where it is fully on) a fill counterfeit has
        // lost the patch's fine structure: its pixels differ from their 3x3
        // neighbourhood far less than the noise patch's own pixels do.
        let x = patches(64);
        let m = regions(&x, &mut Rng::stream(6, 0, 0));
        let a = make(&x, &[Counterfeit::Fill], &mut Rng::stream(6, 0, 0));
        let rough = |t: &Tensor| {
            (t - t.avg_pool2d([3, 3], [1, 1], [1, 1], false, false, None::<i64>)).abs()
        };
        let inside = m.ge(0.99).expand_as(&x);
        let r_fill = rough(&a).masked_select(&inside).mean(Kind::Float);
        let r_x = rough(&x).masked_select(&inside).mean(Kind::Float);
        let (r_fill, r_x) = (r_fill.double_value(&[]), r_x.double_value(&[]));
        assert!(r_fill < 0.3 * r_x, "roughness {r_fill} against {r_x}");
        // ... and it moved: the level is shifted by at least half an SD.
        let shift = (&a - &x).masked_select(&inside).abs().mean(Kind::Float);
        assert!(shift.double_value(&[]) > 0.5, "{shift}");
    }
}
