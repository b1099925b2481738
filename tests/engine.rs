//! The method's building blocks: networks, losses, fake pool, patches.

mod common;

use adgan::fake_pool::FakePool;
use adgan::losses;
use adgan::nets::{Critic, Generator, LATENT};
use adgan::preprocess::{normalise, training_patches, Case, PatchSampling};
use tch::{nn, Device, Kind, Tensor};

#[test]
fn networks_have_the_shapes_of_fig_1() {
    for c in [1i64, 3, 4] {
        let vs = nn::VarStore::new(Device::Cpu);
        let g = Generator::new(&vs.root().sub("g"), c, 3.0);
        let d = Critic::new(&vs.root().sub("d"), c);
        let z = Tensor::randn([5, LATENT], (Kind::Float, Device::Cpu));
        let x = g.forward_t(&z, true);
        assert_eq!(x.size(), vec![5, c, 32, 32]);
        // the generator reaches its scale, not just +-1
        assert!(x.abs().max().double_value(&[]) <= 3.0 + 1e-5);
        assert_eq!(d.forward(&x).size(), vec![5]);
    }
    // Critic parameter shapes: 5x5 convs 64/128/256, a 4x4 conv to 512, FC to 1.
    let vs = nn::VarStore::new(Device::Cpu);
    let _d = Critic::new(&vs.root(), 1);
    let v = vs.variables();
    assert_eq!(v["c1.weight"].size(), vec![64, 1, 5, 5]);
    assert_eq!(v["c2.weight"].size(), vec![128, 64, 5, 5]);
    assert_eq!(v["c3.weight"].size(), vec![256, 128, 5, 5]);
    assert_eq!(v["c4.weight"].size(), vec![512, 256, 4, 4]);
    assert_eq!(v["fc.weight"].size(), vec![1, 512]);
    // Generator: FC 128 -> 4096, transposed convs 256->128->64->C.
    let vs = nn::VarStore::new(Device::Cpu);
    let _g = Generator::new(&vs.root(), 2, 1.0);
    let v = vs.variables();
    assert_eq!(v["fc.weight"].size(), vec![4096, 128]);
    assert_eq!(v["t1.weight"].size(), vec![256, 128, 5, 5]);
    assert_eq!(v["t2.weight"].size(), vec![128, 64, 5, 5]);
    assert_eq!(v["t3.weight"].size(), vec![64, 2, 5, 5]);
}

/// The penalty is taken at x_hat = a * real + (1 - a) * fake, one `a` per
/// sample: with D(x) = sum(x^2), ||grad D(x_hat)|| = 2 ||x_hat||, so the
/// expected value follows by hand.
#[test]
fn gradient_penalty_interpolates_real_and_fake_per_sample() {
    let real = Tensor::from_slice(&[1.0f64, 0.0, 0.0, 2.0]).view([2, 1, 1, 2]);
    let fake = Tensor::from_slice(&[0.0f64, 3.0, 0.0, 0.0]).view([2, 1, 1, 2]);
    let a = Tensor::from_slice(&[0.25f64, 0.5]).view([2, 1, 1, 1]);
    let critic = |x: &Tensor| {
        x.square()
            .sum_dim_intlist(&[1i64, 2, 3][..], false, Kind::Double)
    };
    let got = losses::gradient_penalty(&critic, &real, &fake, &a).double_value(&[]);
    // x_hat = (0.25, 2.25) and (0, 1): norms 2*sqrt(5.125) and 2.
    let n0 = 2.0 * (0.25f64 * 0.25 + 2.25 * 2.25).sqrt();
    let n1 = 2.0f64;
    let expected = ((n0 - 1.0).powi(2) + (n1 - 1.0).powi(2)) / 2.0;
    // (the penalty is reduced in float32)
    assert!(
        (got - expected).abs() < 1e-6 * expected,
        "GP {got}, expected {expected}"
    );
    // Swapping the weights between the samples changes it: each sample
    // has its own mix.
    let swapped = Tensor::from_slice(&[0.5f64, 0.25]).view([2, 1, 1, 1]);
    let other = losses::gradient_penalty(&critic, &real, &fake, &swapped).double_value(&[]);
    assert!((other - expected).abs() > 1e-3);
}

#[test]
fn gradient_penalty_matches_finite_differences() {
    tch::manual_seed(3);
    let vs = nn::VarStore::new(Device::Cpu);
    let d = Critic::new(&vs.root(), 1);
    vs.double_precision_hack();
    let critic = |x: &Tensor| d.forward(x);
    let x = Tensor::randn([3, 1, 32, 32], (Kind::Double, Device::Cpu)).set_requires_grad(true);
    let gp = losses::gradient_penalty_at(&critic, &x);
    // finite-difference input gradient of D at each sample: all 1024
    // +eps and -eps perturbations of a sample go through the critic as one
    // batch.
    let x0 = x.detach();
    let eps = 1e-6;
    let mut norms = Vec::new();
    let eye = Tensor::eye(1024, (Kind::Double, Device::Cpu)).view([1024, 1, 32, 32]) * eps;
    for b in 0..3 {
        let xb = x0.get(b).unsqueeze(0);
        let fp = d.forward(&(&xb + &eye));
        let fm = d.forward(&(&xb - &eye));
        let g = (fp - fm) / (2.0 * eps);
        norms.push(g.square().sum(Kind::Double).double_value(&[]).sqrt());
    }
    let expected: f64 = norms.iter().map(|n| (n - 1.0).powi(2)).sum::<f64>() / 3.0;
    let got = gp.double_value(&[]);
    assert!(
        (got - expected).abs() < 1e-6 * expected.max(1.0),
        "GP {got} vs finite differences {expected}"
    );
    // and the penalty is differentiable w.r.t. the critic's weights
    gp.backward();
    let w = &vs.variables()["c1.weight"];
    assert!(w.grad().abs().sum(Kind::Double).double_value(&[]) > 0.0);
}

trait DoubleHack {
    fn double_precision_hack(&self);
}
impl DoubleHack for nn::VarStore {
    fn double_precision_hack(&self) {
        for (_, mut v) in self.variables() {
            tch::no_grad(|| {
                let d = v.to_kind(Kind::Double);
                v.set_data(&d);
            });
        }
    }
}

#[test]
fn concentration_loss_on_a_known_batch() {
    // D(x) = [1, 2, 3, 4]: population std sqrt(1.25); D(fake) = [0, 0, 0, 0].
    let d_real = Tensor::from_slice(&[1f32, 2.0, 3.0, 4.0]);
    let s = losses::concentration(&d_real).double_value(&[]);
    assert!((s - 1.25f64.sqrt()).abs() < 1e-6);
    // Full Eq. 2 with a linear "critic" D(x) = mean(x): the gradient of
    // a linear critic is constant 1/1024 per pixel, so GP = (1/32 - 1)^2.
    let critic = |x: &Tensor| x.mean_dim([1i64, 2, 3].as_slice(), false, Kind::Float);
    let real = Tensor::from_slice(&[1f32, 2.0, 3.0, 4.0])
        .view([4, 1, 1, 1])
        .expand([4, 1, 32, 32], false)
        .contiguous();
    let fake = Tensor::zeros([4, 1, 32, 32], (Kind::Float, Device::Cpu));
    let a = Tensor::rand([4, 1, 1, 1], (Kind::Float, Device::Cpu));
    let (loss, [w, s, gp]) = losses::critic_loss(&critic, &real, &fake, &a, 2.0, 10.0);
    let gp_expected = (1.0f64 / 32.0 - 1.0).powi(2);
    assert!((w.double_value(&[]) - (0.0 - 2.5)).abs() < 1e-5);
    assert!((s.double_value(&[]) - 1.25f64.sqrt()).abs() < 1e-5);
    assert!((gp.double_value(&[]) - gp_expected).abs() < 1e-4);
    let expected = -2.5 + 2.0 * 1.25f64.sqrt() + 10.0 * gp_expected;
    assert!(
        (loss.double_value(&[]) - expected).abs() < 1e-3,
        "{} vs {expected}",
        loss.double_value(&[])
    );
    // alpha = 0 gives Eq. 1
    let (loss0, _) = losses::critic_loss(&critic, &real, &fake, &a, 0.0, 10.0);
    assert!((loss0.double_value(&[]) - (-2.5 + 10.0 * gp_expected)).abs() < 1e-3);
}

#[test]
fn fake_pool_schedule_follows_algorithm_1() {
    let pool = FakePool::new(100, 64);
    assert!(pool.due(0) && pool.due(100) && !pool.due(99) && !pool.due(101));
    assert_eq!(FakePool::draws_for(200_000, 100), 2000);
    assert_eq!(FakePool::draws_for(250, 100), 3);
    // In a real (tiny) training: N = 23, k = 5 -> draws after 0, 5, 10, 15, 20.
    let data = adgan::TrainingData {
        groups: None,
        layout: None,
        patches: common::normal_patches(200, 1),
        channel_names: vec!["flair".into()],
    };
    let mut c = common::tiny_config(23, 2);
    c.pool_every = 5;
    c.pool_draw = 7;
    let model = adgan::train(&data, &c, Device::Cpu, &Default::default(), &mut |_| true).unwrap();
    assert_eq!(model.meta.budget.pool_draws, 5);
    assert_eq!(model.meta.budget.pool_size, 35);
}

#[test]
fn patch_extraction_counts_on_a_known_volume() {
    // 64 x 64 x 3 volume; brain = the 40 x 40 square at (8..48, 8..48) on
    // slices 0 and 1, nothing on slice 2; an exclusion voxel at (45, 45, 1).
    let dims = [64usize, 64, 3];
    let n = 64 * 64 * 3;
    let mut data = vec![0f32; n];
    let mut brain = vec![false; n];
    let mut r = common::Lcg(5);
    for z in 0..2 {
        for y in 8..48 {
            for x in 8..48 {
                let i = x + 64 * (y + 64 * z);
                brain[i] = true;
                data[i] = 10.0 + r.next_f32();
            }
        }
    }
    let mut exclude = vec![false; n];
    let z1 = 1; // slice 1
    exclude[45 + 64 * (45 + 64 * z1)] = true;
    let case = Case {
        warnings: Vec::new(),
        name: "known".into(),
        dims,
        channels: vec![data],
        brain: Some(brain),
        exclude: Some(exclude),
    };
    let norm = normalise(&case, Default::default()).unwrap();
    // Windows at stride 8: origins 0, 8, 16, 24, 32 per side (5 x 5). A
    // window [o, o+32) overlaps the brain [8, 48) by min(o+32,48)-max(o,8).
    // Fully inside (fraction 1): origins 8 and 16 per side -> 4 windows.
    let full = PatchSampling {
        slice_axis: 2,
        stride: 8,
        min_brain_fraction: 1.0,
    };
    let p = training_patches(&norm, &full).unwrap();
    // slice 0: 4; slice 1: 4 minus those containing (45, 45): origin 16 covers
    // 16..48 -> windows (16,16) contains it -> 3; slice 2: none.
    assert_eq!(p.size(), vec![7, 1, 32, 32]);
    // Fraction >= 0.5: overlap per side must give product >= 512 pixels.
    // overlaps per origin: 0->24, 8->32, 16->32, 24->24, 32->16.
    let count_half = {
        let ov = [24usize, 32, 32, 24, 16];
        let mut c = 0;
        for a in ov {
            for b in ov {
                if a * b >= 512 {
                    c += 1;
                }
            }
        }
        c
    };
    let half = PatchSampling {
        slice_axis: 2,
        stride: 8,
        min_brain_fraction: 0.5,
    };
    let p = training_patches(&norm, &half).unwrap();
    // windows on slice 1 containing voxel (45, 45): origins 16, 24, 32 on each side
    let excluded = {
        let ov = [24usize, 32, 32, 24, 16];
        let mut c = 0;
        for (i, a) in ov.iter().enumerate() {
            for (j, b) in ov.iter().enumerate() {
                let (ox, oy) = (i * 8, j * 8);
                let covers = ox <= 45 && 45 < ox + 32 && oy <= 45 && 45 < oy + 32;
                if a * b >= 512 && covers {
                    c += 1;
                }
            }
        }
        c
    };
    assert_eq!(p.size()[0] as usize, 2 * count_half - excluded);
    // Normalisation: zero mean, unit variance inside the brain.
    let flat = common::to_vec(&norm.data);
    let vals: Vec<f64> = flat
        .iter()
        .zip(case.brain.as_ref().unwrap())
        .filter(|(_, &b)| b)
        .map(|(v, _)| *v as f64)
        .collect();
    let m = vals.iter().sum::<f64>() / vals.len() as f64;
    let v = vals.iter().map(|x| (x - m).powi(2)).sum::<f64>() / vals.len() as f64;
    assert!(m.abs() < 1e-4 && (v - 1.0).abs() < 1e-3);
}

#[test]
fn other_slice_axes_cut_other_planes() {
    let (case, _) = common::synthetic_case([40, 48, 36], false);
    let norm = normalise(&case, Default::default()).unwrap();
    for axis in 0..3 {
        let s = PatchSampling {
            slice_axis: axis,
            stride: 4,
            min_brain_fraction: 0.0,
        };
        let p = training_patches(&norm, &s).unwrap();
        assert!(p.size()[0] > 0, "axis {axis}");
    }
}
