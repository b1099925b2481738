//! Adam (Kingma & Ba) over a list of parameters, with its state held in
//! tensors we can checkpoint: a resumed training continues exactly where it
//! stopped, moments included. libtorch's own optimizer keeps its state out
//! of tch's reach, hence this small re-implementation.

pub use crate::config::AdamConfig;
use tch::Tensor;

/// Adam over the given parameters.
#[derive(Debug)]
pub struct Adam {
    pub config: AdamConfig,
    params: Vec<Tensor>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Number of steps taken.
    pub step: i64,
}

impl Adam {
    /// A fresh optimiser (zero moments) over `params` (shallow clones of the
    /// variables: updates land in the networks).
    pub fn new(params: Vec<Tensor>, config: AdamConfig) -> Adam {
        let m = params.iter().map(|p| p.zeros_like()).collect();
        let v = params.iter().map(|p| p.zeros_like()).collect();
        Adam {
            config,
            params,
            m,
            v,
            step: 0,
        }
    }

    /// Clear the gradients of every parameter.
    pub fn zero_grad(&mut self) {
        for p in &self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.detach_().zero_();
            }
        }
    }

    /// One Adam update from the accumulated gradients.
    pub fn step(&mut self) {
        self.step += 1;
        let AdamConfig {
            lr,
            beta1,
            beta2,
            eps,
        } = self.config;
        let bc1 = 1.0 - beta1.powi(self.step.min(i32::MAX as i64) as i32);
        let bc2 = 1.0 - beta2.powi(self.step.min(i32::MAX as i64) as i32);
        tch::no_grad(|| {
            for ((p, m), v) in self.params.iter().zip(&mut self.m).zip(&mut self.v) {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                // m <- b1 m + (1 - b1) g ; v <- b2 v + (1 - b2) g^2
                let _ = m.lerp_(&g, 1.0 - beta1);
                let _ = v.g_mul_scalar_(beta2).addcmul_(&(&g * (1.0 - beta2)), &g);
                // p <- p - lr * m_hat / (sqrt(v_hat) + eps)
                let denom = (&*v / bc2).sqrt() + eps;
                let mut p = p.shallow_clone();
                let _ = p.g_sub_(&(&*m * (lr / bc1) / denom));
            }
        });
    }

    /// The optimiser state as named tensors (for checkpoints).
    pub fn state(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (i, (m, v)) in self.m.iter().zip(&self.v).enumerate() {
            out.push((format!("{prefix}.m.{i}"), m.shallow_clone()));
            out.push((format!("{prefix}.v.{i}"), v.shallow_clone()));
        }
        out
    }

    /// Restore moments saved by [`Adam::state`]; `get` looks a tensor up by name.
    pub fn load_state(
        &mut self,
        prefix: &str,
        step: i64,
        get: &mut dyn FnMut(&str) -> Option<Tensor>,
    ) -> Result<(), String> {
        for (i, (m, v)) in self.m.iter_mut().zip(&mut self.v).enumerate() {
            for (name, dst) in [
                (format!("{prefix}.m.{i}"), m),
                (format!("{prefix}.v.{i}"), v),
            ] {
                let src = get(&name).ok_or_else(|| format!("checkpoint lacks {name}"))?;
                if src.size() != dst.size() {
                    return Err(format!(
                        "{name}: shape {:?}, expected {:?}",
                        src.size(),
                        dst.size()
                    ));
                }
                tch::no_grad(|| dst.copy_(&src));
            }
        }
        self.step = step;
        Ok(())
    }
}
