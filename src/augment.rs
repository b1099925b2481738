//! Augmentation of normal training patches ([`Augment`]): what the critic
//! and the counterfeiters see of normal tissue, varied in ways that keep it
//! normal.
//!
//! Measured why (docs/BENCHMARKS.md): trained on two subjects, the critic
//! marks a new subject's lowest slices (skull base, cerebellum, temporal
//! poles) as abnormal while scoring the same slices of its training
//! subjects as normal: it has learned those subjects' anatomy in the
//! orientations they happen to have. Orientation is no evidence of a
//! lesion, so each patch is shown in a random one of its eight
//! orientations. Intensities are left alone: they are what anomalies are
//! made of. All randomness comes from the caller's seeded [`Rng`].

pub use crate::config::Augment;
use crate::rng::Rng;
use tch::{Kind, Tensor};

/// `x` (`[B, C, H, W]`, square patches) as `augment` varies it. `None`
/// returns the patches unchanged and draws nothing from `rng`, so training
/// without augmentation is what it was before this option.
pub fn apply(x: &Tensor, augment: Augment, rng: &mut Rng) -> Tensor {
    match augment {
        Augment::None => x.shallow_clone(),
        Augment::Dihedral => dihedral(x, rng),
    }
}

/// Each patch transposed, mirrored up-down and mirrored left-right, each
/// with probability one half: the eight symmetries of the square, equally
/// likely.
fn dihedral(x: &Tensor, rng: &mut Rng) -> Tensor {
    let b = x.size()[0];
    let coin = |rng: &mut Rng| {
        rng.uniform(&[b, 1, 1, 1], 0.0, 1.0, x.device())
            .ge(0.5)
            .to_kind(Kind::Bool)
    };
    let (t, v, h) = (coin(rng), coin(rng), coin(rng));
    let y = x.transpose(2, 3).where_self(&t, x);
    let y = y.flip([2]).where_self(&v, &y);
    y.flip([3]).where_self(&h, &y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// The eight orientations of a patch.
    fn orientations(p: &Tensor) -> Vec<Tensor> {
        let mut out = Vec::new();
        for t in [p.shallow_clone(), p.transpose(1, 2)] {
            for v in [false, true] {
                for h in [false, true] {
                    let mut q = t.shallow_clone();
                    if v {
                        q = q.flip([1]);
                    }
                    if h {
                        q = q.flip([2]);
                    }
                    out.push(q);
                }
            }
        }
        out
    }

    #[test]
    fn none_is_the_identity_and_draws_nothing() {
        let x = Rng::stream(1, 0, 0).normal(&[4, 2, 8, 8], Device::Cpu);
        let mut a = Rng::stream(2, 0, 0);
        assert!(apply(&x, Augment::None, &mut a).equal(&x));
        let mut b = Rng::stream(2, 0, 0);
        assert!(a
            .normal(&[3], Device::Cpu)
            .equal(&b.normal(&[3], Device::Cpu)));
    }

    #[test]
    fn dihedral_gives_each_patch_one_of_its_eight_orientations_all_of_them_seeded() {
        let x = Rng::stream(3, 0, 0).normal(&[256, 2, 8, 8], Device::Cpu);
        let y = apply(&x, Augment::Dihedral, &mut Rng::stream(4, 0, 0));
        let again = apply(&x, Augment::Dihedral, &mut Rng::stream(4, 0, 0));
        assert!(y.equal(&again), "same seed, same orientations");
        assert_eq!(y.size(), x.size());
        let mut seen = [0usize; 8];
        for i in 0..256 {
            let (p, q) = (x.get(i), y.get(i));
            // Both channels turn together: the orientation is the patch's.
            let k = orientations(&p)
                .iter()
                .position(|o| o.equal(&q))
                .expect("an orientation of the patch");
            seen[k] += 1;
        }
        // 256 draws of 8 equally likely orientations: each about 32.
        assert!(seen.iter().all(|&n| n >= 12), "{seen:?}");
        // Values are moved, never changed.
        let sorted = |t: &Tensor| t.flatten(0, -1).sort(0, false).0;
        assert!(sorted(&x).equal(&sorted(&y)));
    }
}
