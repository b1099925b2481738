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

/// [`critic_loss`] for an ensemble of `members` critics
/// ([`crate::nets::Critic::forward_members`]: inputs `[B, K C, 32, 32]`,
/// outputs `[B, K]`), each seeing the same patches: the sum of the members'
/// losses, each with its own Wasserstein term, concentration and gradient
/// penalty, so that each member's weights get exactly the gradient they
/// would get trained alone. The terms returned are the members' means.
pub fn ensemble_critic_loss(
    critic_members: &dyn Fn(&Tensor) -> Tensor,
    members: i64,
    real: &Tensor,
    fake: &Tensor,
    mix: &Tensor,
    alpha: f64,
    lambda: f64,
) -> (Tensor, [Tensor; 3]) {
    let k = members;
    let b = real.size()[0];
    let copies = |x: &Tensor| x.repeat([1, k, 1, 1]);
    let d = critic_members(&copies(&Tensor::cat(&[real, fake], 0)));
    let d_real = d.narrow(0, 0, b);
    let d_fake = d.narrow(0, b, fake.size()[0]);
    // Per member, then summed.
    let w = (d_fake.mean_dim(0, false, Kind::Float) - d_real.mean_dim(0, false, Kind::Float))
        .sum(Kind::Float);
    let s = if alpha != 0.0 {
        d_real.std_dim(0, false, false).sum(Kind::Float)
    } else {
        Tensor::zeros([], (Kind::Float, real.device()))
    };
    let mixed: Tensor = mix * real + (mix.ones_like() - mix) * fake;
    let x_hat = copies(&mixed).detach().set_requires_grad(true);
    let out = critic_members(&x_hat).sum(Kind::Float);
    let grads = Tensor::run_backward(&[out], &[&x_hat], true, true);
    // Member k's gradient is its own block of channels.
    let g = grads[0].view([b, k, -1]);
    let norm = g.square().sum_dim_intlist(2, false, Kind::Float).sqrt();
    let gp = (norm - 1.0)
        .square()
        .mean_dim(0, false, Kind::Float)
        .sum(Kind::Float);
    let loss = &w + alpha * &s + lambda * &gp;
    let per = |t: &Tensor| t / k as f64;
    (loss, [per(&w), per(&s), per(&gp)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::Critic;
    use tch::{nn, Device};

    /// An ensemble's loss is the sum of its members' losses as separate
    /// critics: the same values, and the same gradients for each member.
    #[test]
    fn an_ensemble_trains_its_members_as_separate_critics() {
        tch::manual_seed(7);
        let cpu = (Kind::Float, Device::Cpu);
        let (k, width) = (3, 8);
        let vs = nn::VarStore::new(Device::Cpu);
        let ensemble = Critic::ensemble(&vs.root(), 2, k, width);
        let real = Tensor::randn([6, 2, 32, 32], cpu);
        let fake = Tensor::randn([6, 2, 32, 32], cpu) * 2.0;
        let mix = Tensor::rand([6, 1, 1, 1], cpu);
        let members = |x: &Tensor| ensemble.forward_members(x);
        let (loss, terms) = ensemble_critic_loss(&members, k, &real, &fake, &mix, 1.0, 10.0);
        loss.backward();
        let vars = vs.variables();
        let mut total = 0.0;
        let mut gp_mean = 0.0;
        for m in 0..k {
            // Member m alone: its slices of every variable.
            let one = nn::VarStore::new(Device::Cpu);
            let single = Critic::ensemble(&one.root(), 2, 1, width);
            let mine = |t: &Tensor| {
                let rows = t.size()[0] / k;
                t.narrow(0, m * rows, rows).detach()
            };
            tch::no_grad(|| {
                for (name, mut v) in one.variables() {
                    v.copy_(&mine(&vars[&name]));
                }
            });
            let critic = |x: &Tensor| single.forward(x);
            let (l, t) = critic_loss(&critic, &real, &fake, &mix, 1.0, 10.0);
            l.backward();
            total += l.double_value(&[]);
            gp_mean += t[2].double_value(&[]) / k as f64;
            for (name, v) in one.variables() {
                let g_ens = mine(&vars[&name].grad());
                let g_one = v.grad();
                let diff = (&g_ens - &g_one).abs().max().double_value(&[]);
                let scale = g_one.abs().max().double_value(&[]);
                // (The bias's gradient is 0 up to rounding: it cancels.)
                assert!(
                    diff <= 1e-3 * scale + 1e-5,
                    "member {m}, {name}: {diff} vs {scale}"
                );
            }
        }
        let l = loss.double_value(&[]);
        assert!(
            (l - total).abs() < 1e-3 * total.abs().max(1.0),
            "{l} vs {total}"
        );
        let gp = terms[2].double_value(&[]);
        assert!(
            (gp - gp_mean).abs() < 1e-4 * gp_mean.max(1.0),
            "{gp} vs {gp_mean}"
        );
    }
}
