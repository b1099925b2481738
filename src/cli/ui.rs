//! Progress display: a bar on a terminal, JSON lines with `--json`.

use adgan::progress::{Progress, Stage};
use indicatif::{ProgressBar, ProgressStyle};

/// Shows progress for one command.
pub struct Reporter {
    json: bool,
    bar: Option<ProgressBar>,
    stage: Option<Stage>,
}

fn stage_label(s: Stage) -> &'static str {
    match s {
        Stage::Prepare => "prepare",
        Stage::Wgan => "phase 1 (WGAN-GP + fake pool)",
        Stage::Critic => "phase 2 (critic, concentration loss)",
        Stage::Calibrate => "calibrate",
        Stage::Score => "score slices",
    }
}

impl Reporter {
    pub fn new(json: bool) -> Reporter {
        Reporter {
            json,
            bar: None,
            stage: None,
        }
    }

    /// Print a line of information (stderr; JSON event with --json).
    pub fn info(&self, message: &str) {
        if self.json {
            println!(
                "{}",
                serde_json::json!({"event": "info", "message": message})
            );
        } else if let Some(b) = &self.bar {
            b.println(message);
        } else {
            eprintln!("{message}");
        }
    }

    /// Print a warning (stderr, `adgan: warning: ...`; a JSON event with
    /// --json).
    pub fn warn(&self, message: &str) {
        if self.json {
            println!(
                "{}",
                serde_json::json!({"event": "warning", "message": message})
            );
        } else if let Some(b) = &self.bar {
            b.println(format!("adgan: warning: {message}"));
        } else {
            eprintln!("adgan: warning: {message}");
        }
    }

    /// Emit the final result object (JSON mode) .
    pub fn result(&self, value: serde_json::Value) {
        if self.json {
            let mut v = value;
            v["event"] = serde_json::json!("result");
            println!("{v}");
        }
    }

    /// Show one progress report; never cancels (Ctrl-C ends the process,
    /// and training resumes from its checkpoint).
    pub fn update(&mut self, p: &Progress) -> bool {
        if self.json {
            let every = (p.total / 200).max(1);
            if p.iteration % every == 0 || p.iteration == p.total || p.iteration <= 1 {
                let mut v = serde_json::to_value(p).unwrap_or_default();
                v["event"] = serde_json::json!("progress");
                for k in ["critic_loss", "generator_loss", "wasserstein"] {
                    if v[k].is_null() {
                        v.as_object_mut().map(|o| o.remove(k));
                    }
                }
                println!("{v}");
            }
            return true;
        }
        if self.stage != Some(p.stage) {
            if let Some(b) = self.bar.take() {
                b.finish();
            }
            let b = ProgressBar::new(p.total);
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix:>38} [{bar:30}] {pos}/{len} {elapsed_precise} eta {eta} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b.set_prefix(stage_label(p.stage));
            self.bar = Some(b);
            self.stage = Some(p.stage);
        }
        if let Some(b) = &self.bar {
            b.set_position(p.iteration);
            let mut msg = String::new();
            if p.critic_loss.is_finite() {
                msg.push_str(&format!("L_D {:.3}", p.critic_loss));
            }
            if p.generator_loss.is_finite() {
                msg.push_str(&format!(" L_G {:.3}", p.generator_loss));
            }
            if p.wasserstein.is_finite() {
                msg.push_str(&format!(" W {:.3}", p.wasserstein));
            }
            b.set_message(msg);
        }
        true
    }

    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish();
        }
        self.stage = None;
    }
}
