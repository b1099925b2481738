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
pub use crate::config::PATCH;
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
}

impl Critic {
    /// Build the critic's variables under `p` for `channels` input channels.
    pub fn new(p: &nn::Path, channels: i64) -> Critic {
        let s2 = nn::ConvConfig {
            stride: 2,
            padding: 2,
            ..Default::default()
        };
        Critic {
            c1: nn::conv2d(p / "c1", channels, 64, 5, s2),
            c2: nn::conv2d(p / "c2", 64, 128, 5, s2),
            c3: nn::conv2d(p / "c3", 128, 256, 5, s2),
            c4: nn::conv2d(p / "c4", 256, 512, 4, Default::default()),
            fc: nn::linear(p / "fc", 512, 1, Default::default()),
        }
    }

    /// Critic output for a batch `[B, C, 32, 32]`, shape `[B]`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let h = leaky_relu(&x.apply(&self.c1));
        let h = leaky_relu(&h.apply(&self.c2));
        let h = leaky_relu(&h.apply(&self.c3));
        let h = leaky_relu(&h.apply(&self.c4));
        h.flatten(1, -1).apply(&self.fc).squeeze_dim(1)
    }

    /// [`Critic::forward`] with libtorch's failures (out of memory, a
    /// device gone) returned as errors instead of panics: the same
    /// operations in the same order, so the same numbers. Scoring uses it.
    pub fn f_forward(&self, x: &Tensor) -> Result<Tensor, TchError> {
        // Strides and paddings as `new` configures the layers.
        fn conv(x: &Tensor, c: &nn::Conv2D, stride: i64, pad: i64) -> Result<Tensor, TchError> {
            x.f_conv2d(&c.ws, c.bs.as_ref(), [stride; 2], [pad; 2], [1, 1], 1)
        }
        fn f_leaky_relu(x: &Tensor) -> Result<Tensor, TchError> {
            x.f_maximum(&x.f_mul_scalar(LEAKY_SLOPE)?)
        }
        let h = f_leaky_relu(&conv(x, &self.c1, 2, 2)?)?;
        let h = f_leaky_relu(&conv(&h, &self.c2, 2, 2)?)?;
        let h = f_leaky_relu(&conv(&h, &self.c3, 2, 2)?)?;
        let h = f_leaky_relu(&conv(&h, &self.c4, 1, 0)?)?;
        h.f_flatten(1, -1)?
            .f_linear(&self.fc.ws, self.fc.bs.as_ref())?
            .f_squeeze_dim(1)
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
