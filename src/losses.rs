//! The losses of Algorithm 1: the WGAN-GP critic and generator losses
//! (Eq. 1), the gradient penalty of Gulrajani et al., and the paper's
//! concentration loss (Eq. 2, 3).

use tch::{Kind, Tensor};

/// Gradient penalty: E[(||grad_x D(x_hat)||_2 - 1)^2] at random
/// interpolates x_hat = a x + (1 - a) f between real and fake patches.
/// `a` holds one mixing weight per sample, `[B, 1, 1, 1]` in [0, 1).
/// The graph is kept (create_graph) so the penalty itself can be
/// back-propagated into the critic's weights.
pub fn gradient_penalty(
    critic: &dyn Fn(&Tensor) -> Tensor,
    real: &Tensor,
    fake: &Tensor,
    a: &Tensor,
) -> Tensor {
    let mix: Tensor = a * real + (a.ones_like() - a) * fake;
    let x_hat = mix.detach().set_requires_grad(true);
    gradient_penalty_at(critic, &x_hat)
}

/// The penalty at given points `x_hat` (which must require grad).
pub fn gradient_penalty_at(critic: &dyn Fn(&Tensor) -> Tensor, x_hat: &Tensor) -> Tensor {
    let out = critic(x_hat).sum(Kind::Float);
    let grads = Tensor::run_backward(&[out], &[x_hat], true, true);
    let g = grads[0].flatten(1, -1);
    let norm = g.square().sum_dim_intlist(1, false, Kind::Float).sqrt();
    (norm - 1.0).square().mean(Kind::Float)
}

/// Population standard deviation, S of Eq. 3.
pub fn concentration(d_real: &Tensor) -> Tensor {
    d_real.std(false)
}

/// The parts of a critic loss, as numbers, for progress reports.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct CriticTerms {
    /// E[D(fake)] - E[D(real)]: minus the Wasserstein estimate.
    pub wasserstein: f64,
    /// S(D(real)) (0 in phase 1).
    pub concentration: f64,
    /// The gradient penalty, unweighted.
    pub gradient_penalty: f64,
}

/// Eq. 2: E[D(fake)] - E[D(real)] + alpha * S(D(real)) + lambda * GP.
/// With alpha = 0 this is Eq. 1, the WGAN-GP critic loss.
/// `mix` are the gradient penalty's interpolation weights (`[B, 1, 1, 1]`).
/// Returns the loss tensor and the three terms (as tensors, not synced).
pub fn critic_loss(
    critic: &dyn Fn(&Tensor) -> Tensor,
    real: &Tensor,
    fake: &Tensor,
    mix: &Tensor,
    alpha: f64,
    lambda: f64,
) -> (Tensor, [Tensor; 3]) {
    // One forward over real and fake together: half the kernel launches
    // of two separate calls, identical values (the critic has no batch norm).
    let b = real.size()[0];
    let d = critic(&Tensor::cat(&[real, fake], 0));
    let d_real = d.narrow(0, 0, b);
    let d_fake = d.narrow(0, b, fake.size()[0]);
    let w = d_fake.mean(Kind::Float) - d_real.mean(Kind::Float);
    let s = if alpha != 0.0 {
        concentration(&d_real)
    } else {
        Tensor::zeros([], (Kind::Float, real.device()))
    };
    let gp = gradient_penalty(critic, real, fake, mix);
    let loss = &w + alpha * &s + lambda * &gp;
    (loss, [w, s, gp])
}

/// Generator loss of line 8: -E[D(G(z))].
pub fn generator_loss(d_fake: &Tensor) -> Tensor {
    -d_fake.mean(Kind::Float)
}
