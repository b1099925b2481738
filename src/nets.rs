//! The two networks of the paper's Fig. 1.
//!
//! Generator: z (128) -> FC 4096 -> BN -> LeakyReLU -> 256x4x4 -> three 5x5
//! stride-2 transposed convolutions (256->128->64->C), batch norm and
//! LeakyReLU between them, `scale * tanh` out (32x32xC).
//!
//! Critic: 5x5 stride-2 convolutions with 64, 128, 256 maps, a 4x4
//! convolution to 1x1x512, a fully connected layer to one output; LeakyReLU
//! after every convolution, no batch norm (it would break the per-sample
//! gradient penalty).
//!
//! A critic may also be an ensemble: `members` independent critics of
//! `width` maps in the first layer (64 in the paper), held as one network
//! whose convolutions are grouped (member k sees only its own maps) and
//! whose output is the mean of the members'. One grouped network instead of
//! a list of networks: one call per layer however many members, and every
//! caller (training, validation, scoring, attribution) sees one critic.
//! Training gives each member its own copy of the input
//! ([`Critic::forward_members`]), so that each has its own gradient
//! penalty and they train as separate critics would. With one member of
//! width 64 the variables, their names and the operations are the paper's.
//!
//! The output scale of the generator: the paper feeds data normalised to
//! zero mean and unit variance inside the brain, which reaches well beyond
//! ±1 (lesions in FLAIR sit at +3 to +8). A plain tanh could never produce
//! such patches, so the critic would learn "anything beyond ±1 is real".
//! We keep tanh (its saturation keeps early training stable) and multiply by
//! a scale measured on the training patches: the largest absolute
//! normalised value seen, stored in the model. See `README.md`.

use tch::nn::{self, Module, ModuleT};
use tch::{TchError, Tensor};

/// Side of the square patches the networks take and make.
pub use crate::config::{PAPER_WIDTH, PATCH};
/// Dimension of the generator's latent input.
pub const LATENT: i64 = 128;
/// Slope of the LeakyReLU for negative inputs.
pub const LEAKY_SLOPE: f64 = 0.2;

fn leaky_relu(x: &Tensor) -> Tensor {
    // max(x, 0.2 x): one fused elementwise op pair that has a double
    // backward (needed by the gradient penalty); tch's leaky_relu has no
    // slope argument.
    x.maximum(&(x * LEAKY_SLOPE))
}

/// The critic D_w: 32x32xC patch -> one real number (higher = more normal).
#[derive(Debug)]
pub struct Critic {
    c1: nn::Conv2D,
    c2: nn::Conv2D,
    c3: nn::Conv2D,
    c4: nn::Conv2D,
    fc: nn::Linear,
    members: i64,
}

impl Critic {
    /// Build the paper's critic under `p` for `channels` input channels.
    pub fn new(p: &nn::Path, channels: i64) -> Critic {
        Critic::ensemble(p, channels, 1, PAPER_WIDTH as i64)
    }

    /// The critic `config` asks for (its members and width).
    pub fn of(p: &nn::Path, channels: i64, config: &crate::config::TrainConfig) -> Critic {
        Critic::ensemble(
            p,
            channels,
            config.critic_members as i64,
            config.critic_width as i64,
        )
    }

    /// An ensemble of `members` critics with `width`, `2 width`, `4 width`
    /// and `8 width` maps (the paper: 1 and 64).
    pub fn ensemble(p: &nn::Path, channels: i64, members: i64, width: i64) -> Critic {
        let k = members.max(1);
        let conv = |name: &str, i: i64, o: i64, size: i64, stride: i64, pad: i64| {
            let config = nn::ConvConfig {
                stride,
                padding: pad,
                groups: k,
                ..Default::default()
            };
            nn::conv2d(p / name, k * i, k * o, size, config)
        };
        Critic {
            c1: conv("c1", channels, width, 5, 2, 2),
            c2: conv("c2", width, 2 * width, 5, 2, 2),
            c3: conv("c3", 2 * width, 4 * width, 5, 2, 2),
            c4: conv("c4", 4 * width, 8 * width, 4, 1, 0),
            // One output per member: row k of the weight is member k's (for
            // one member exactly the paper's fully connected layer).
            fc: nn::linear(p / "fc", 8 * width, k, Default::default()),
            members: k,
        }
    }

    /// How many critics this one averages (1: the paper's).
    pub fn members(&self) -> i64 {
        self.members
    }

    /// Maps of the first layer of each member (64: the paper's).
    pub fn width(&self) -> i64 {
        self.c1.ws.size()[0] / self.members
    }

    /// Each member's output `[B, K]` for inputs `[B, K C, 32, 32]`: channels
    /// `k C .. (k + 1) C` are member k's input.
    pub fn forward_members(&self, x: &Tensor) -> Tensor {
        let h = self.trunk(x);
        let b = h.size()[0];
        let out = (h.view([b, self.members, -1]) * &self.fc.ws).sum_dim_intlist(2, false, None);
        match &self.fc.bs {
            Some(bias) => out + bias,
            None => out,
        }
    }

    /// Critic output for a batch `[B, C, 32, 32]`, shape `[B]`: with
    /// several members, the mean of theirs.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        if self.members > 1 {
            return self
                .forward_members(&x.repeat([1, self.members, 1, 1]))
                .mean_dim(1, false, None);
        }
        self.trunk(x).flatten(1, -1).apply(&self.fc).squeeze_dim(1)
    }

    /// The four convolutions, each followed by a LeakyReLU.
    fn trunk(&self, x: &Tensor) -> Tensor {
        let h = leaky_relu(&x.apply(&self.c1));
        let h = leaky_relu(&h.apply(&self.c2));
        let h = leaky_relu(&h.apply(&self.c3));
        leaky_relu(&h.apply(&self.c4))
    }

    /// [`Critic::forward`] with libtorch's failures (out of memory, a
    /// device gone) returned as errors instead of panics: the same
    /// operations in the same order, so the same numbers. Scoring uses it.
    pub fn f_forward(&self, x: &Tensor) -> Result<Tensor, TchError> {
        let k = self.members;
        if k > 1 {
            return self
                .f_forward_members(&x.f_repeat([1, k, 1, 1])?)?
                .f_mean_dim(1, false, None);
        }
        self.f_trunk(x)?
            .f_flatten(1, -1)?
            .f_linear(&self.fc.ws, self.fc.bs.as_ref())?
            .f_squeeze_dim(1)
    }

    /// [`Critic::forward_members`] with libtorch's failures returned as
    /// errors: each member's output `[B, K]` for inputs `[B, K C, 32, 32]`.
    /// Attribution feeds each member its own copy of the window through it,
    /// so that each copy's gradient is that member's alone.
    pub fn f_forward_members(&self, x: &Tensor) -> Result<Tensor, TchError> {
        let h = self.f_trunk(x)?;
        let b = h.size()[0];
        let out = h
            .f_view([b, self.members, -1])?
            .f_mul(&self.fc.ws)?
            .f_sum_dim_intlist(2, false, None)?;
        match &self.fc.bs {
            Some(bias) => out.f_add(bias),
            None => Ok(out),
        }
    }

    /// [`Critic::trunk`], fallible.
    fn f_trunk(&self, x: &Tensor) -> Result<Tensor, TchError> {
        // Strides and paddings as `ensemble` configures the layers.
        let conv = |x: &Tensor, c: &nn::Conv2D, stride: i64, pad: i64| {
            x.f_conv2d(
                &c.ws,
                c.bs.as_ref(),
                [stride; 2],
                [pad; 2],
                [1, 1],
                self.members,
            )
        };
        fn f_leaky_relu(x: &Tensor) -> Result<Tensor, TchError> {
            x.f_maximum(&x.f_mul_scalar(LEAKY_SLOPE)?)
        }
        let h = f_leaky_relu(&conv(x, &self.c1, 2, 2)?)?;
        let h = f_leaky_relu(&conv(&h, &self.c2, 2, 2)?)?;
        let h = f_leaky_relu(&conv(&h, &self.c3, 2, 2)?)?;
        f_leaky_relu(&conv(&h, &self.c4, 1, 0)?)
    }

    /// Put each member's output on the same scale: member k's becomes
    /// `(D_k - mean[k]) / std[k]` (its weights rescaled in place), so the
    /// mean over members weighs each alike.
    pub fn standardise_members(&self, mean: &[f64], std: &[f64]) {
        let k = self.members as usize;
        assert!(
            mean.len() == k && std.len() == k,
            "one mean and SD per member"
        );
        let dev = self.fc.ws.device();
        let m = Tensor::from_slice(mean)
            .to_kind(tch::Kind::Float)
            .to_device(dev);
        let s = Tensor::from_slice(std)
            .to_kind(tch::Kind::Float)
            .to_device(dev);
        tch::no_grad(|| {
            let mut ws = self.fc.ws.shallow_clone();
            let new_ws = &ws / s.unsqueeze(1);
            ws.copy_(&new_ws);
            if let Some(bs) = &self.fc.bs {
                let mut bs = bs.shallow_clone();
                let new_bs = (&bs - &m) / &s;
                bs.copy_(&new_bs);
            }
        });
    }
}

impl Module for Critic {
    fn forward(&self, xs: &Tensor) -> Tensor {
        Critic::forward(self, xs)
    }
}

/// The generator G_theta: z `[B, 128]` -> patches `[B, C, 32, 32]`.
#[derive(Debug)]
pub struct Generator {
    fc: nn::Linear,
    bn0: nn::BatchNorm,
    t1: nn::ConvTranspose2D,
    bn1: nn::BatchNorm,
    t2: nn::ConvTranspose2D,
    bn2: nn::BatchNorm,
    t3: nn::ConvTranspose2D,
    /// Output range: patches lie in `[-scale, scale]`.
    pub scale: f64,
}

impl Generator {
    /// Build the generator's variables under `p`.
    pub fn new(p: &nn::Path, channels: i64, scale: f64) -> Generator {
        let up = nn::ConvTransposeConfig {
            stride: 2,
            padding: 2,
            output_padding: 1,
            ..Default::default()
        };
        Generator {
            fc: nn::linear(p / "fc", LATENT, 4096, Default::default()),
            bn0: nn::batch_norm1d(p / "bn0", 4096, Default::default()),
            t1: nn::conv_transpose2d(p / "t1", 256, 128, 5, up),
            bn1: nn::batch_norm2d(p / "bn1", 128, Default::default()),
            t2: nn::conv_transpose2d(p / "t2", 128, 64, 5, up),
            bn2: nn::batch_norm2d(p / "bn2", 64, Default::default()),
            t3: nn::conv_transpose2d(p / "t3", 64, channels, 5, up),
            scale,
        }
    }

    /// Generate patches from latent codes; `train` selects batch statistics
    /// (training) or running statistics (evaluation) in batch norm.
    pub fn forward_t(&self, z: &Tensor, train: bool) -> Tensor {
        let h = leaky_relu(&z.apply(&self.fc).apply_t(&self.bn0, train));
        let h = h.view([-1, 256, 4, 4]);
        let h = leaky_relu(&h.apply(&self.t1).apply_t(&self.bn1, train));
        let h = leaky_relu(&h.apply(&self.t2).apply_t(&self.bn2, train));
        h.apply(&self.t3).tanh() * self.scale
    }
}

impl ModuleT for Generator {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        Generator::forward_t(self, xs, train)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn one_member_of_width_64_is_the_papers_critic() {
        let vs = nn::VarStore::new(Device::Cpu);
        let critic = Critic::new(&vs.root(), 2);
        let mut shapes: Vec<(String, Vec<i64>)> = vs
            .variables()
            .into_iter()
            .map(|(k, v)| (k, v.size()))
            .collect();
        shapes.sort();
        let want: Vec<(String, Vec<i64>)> = [
            ("c1.bias", vec![64]),
            ("c1.weight", vec![64, 2, 5, 5]),
            ("c2.bias", vec![128]),
            ("c2.weight", vec![128, 64, 5, 5]),
            ("c3.bias", vec![256]),
            ("c3.weight", vec![256, 128, 5, 5]),
            ("c4.bias", vec![512]),
            ("c4.weight", vec![512, 256, 4, 4]),
            ("fc.bias", vec![1]),
            ("fc.weight", vec![1, 512]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(shapes, want);
        assert_eq!((critic.members(), critic.width()), (1, 64));
    }

    #[test]
    fn an_ensemble_is_the_mean_of_its_members_each_on_one_scale() {
        tch::manual_seed(5);
        let vs = nn::VarStore::new(Device::Cpu);
        let (k, c) = (3, 2);
        let critic = Critic::ensemble(&vs.root(), c, k, 8);
        assert_eq!((critic.members(), critic.width()), (3, 8));
        let x = Tensor::randn([40, c, PATCH, PATCH], (Kind::Float, Device::Cpu));
        let members = |x: &Tensor| critic.forward_members(&x.repeat([1, k, 1, 1]));
        // The output is the mean of the members', each fed the patch.
        let m = members(&x);
        assert_eq!(m.size(), vec![40, 3]);
        let diff = (critic.forward(&x) - m.mean_dim(1, false, None))
            .abs()
            .max();
        assert!(diff.double_value(&[]) < 1e-5);
        let f = critic.f_forward(&x).unwrap();
        assert!(f.equal(&critic.forward(&x)));
        let fm = critic.f_forward_members(&x.repeat([1, k, 1, 1])).unwrap();
        assert!(fm.equal(&m));
        // Members differ (their own initial weights).
        let spread = (m.select(1, 0) - m.select(1, 1)).abs().max();
        assert!(spread.double_value(&[]) > 1e-4);
        // Standardised on these patches, each member has mean 0 and SD 1 there.
        let mean = Vec::<f64>::try_from(m.mean_dim(0, false, Kind::Double)).unwrap();
        let std = Vec::<f64>::try_from(m.to_kind(Kind::Double).std_dim(0, false, false)).unwrap();
        critic.standardise_members(&mean, &std);
        let z = tch::no_grad(|| members(&x)).to_kind(Kind::Double);
        for j in 0..k {
            let col = z.select(1, j);
            let (mu, sd) = (
                col.mean(Kind::Double).double_value(&[]),
                col.std(false).double_value(&[]),
            );
            assert!(
                mu.abs() < 1e-4 && (sd - 1.0).abs() < 1e-4,
                "member {j}: {mu} {sd}"
            );
        }
    }

    #[test]
    fn fallible_forward_gives_the_same_numbers() {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let critic = Critic::new(&vs.root(), 2);
        let x = Tensor::randn([5, 2, PATCH, PATCH], (Kind::Float, Device::Cpu));
        let a = critic.forward(&x);
        let b = critic.f_forward(&x).unwrap();
        assert_eq!(a.size(), vec![5]);
        assert!(a.equal(&b), "{a} {b}");
        // A wrong input is an error, not a panic.
        let bad = Tensor::zeros([5, 3, PATCH, PATCH], (Kind::Float, Device::Cpu));
        let e = critic.f_forward(&bad).unwrap_err();
        assert!(e.to_string().contains("channels"), "{e}");
    }
}
