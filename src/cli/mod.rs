//! Command-line front end: argument parsing, progress display, JSON output.
//! Every command returns an exit status; errors print one line naming the
//! file and the problem.

mod bench;
mod commands;
mod demo;
mod eval;
mod ui;

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// adGAN: find what is abnormal in MR volumes after learning only from
/// normal ones (Shen et al., IEEE Access 2020).
#[derive(Parser, Debug)]
#[command(name = "adgan", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a model on normal patches of one or more volumes.
    Train(TrainArgs),
    /// Score a volume: write its voxel anomaly map (NIfTI, float32).
    Score(ScoreArgs),
    /// Show what a model file holds.
    Info(InfoArgs),
    /// List the compute devices libtorch can use here (for --device).
    Devices(DevicesArgs),
    /// Train on the shipped demo case, score another, write map, PNG and report.
    Demo(DemoArgs),
    /// Measure training and scoring speed on this machine (JSON, in the
    /// units of the reference implementation's benchmark).
    Bench(BenchArgs),
    /// Evaluate a model on labelled cases (patch protocol, voxel metrics) or
    /// on images labelled normal/abnormal, next to the intensity baseline.
    Eval(eval::EvalArgs),
    /// Train several variants sharing one phase 1 (for ablations; bench/).
    #[command(hide = true)]
    TrainVariants(eval::TrainVariantsArgs),
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// What to measure: train (phase-1/2 iterations and patch scoring at
    /// batch 64), volume (a whole random volume at a stride), or all.
    #[arg(long, default_value = "all", value_parser = ["train", "volume", "all"])]
    pub what: String,
    /// Timed iterations of each phase.
    #[arg(long, default_value_t = 5)]
    pub iters: u64,
    /// Volume dims for the volume benchmark.
    #[arg(long, num_args = 3, default_values_t = [240usize, 240, 155])]
    pub shape: Vec<usize>,
    /// Stride for the volume benchmark.
    #[arg(long, default_value_t = 8)]
    pub stride: usize,
    #[command(flatten)]
    pub common: Common,
}

/// Options shared by every command that computes.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Compute device: auto (a GPU when there is one), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// CPU threads libtorch may use (0: libtorch's default).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Machine-readable output: JSON lines on stdout (progress events, then
    /// one result object), no progress bar.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// A training case: its channel files (NIfTI .nii or .nii.gz), comma
    /// separated, in the same order for every case. Repeat for more cases.
    #[arg(
        long = "volume",
        short = 'v',
        required_unless_present = "images",
        value_name = "CH1[,CH2...]"
    )]
    pub volumes: Vec<String>,
    /// 2-D training images (PNG or JPEG, grey or colour): files, folders or
    /// .txt lists. Each image is a one-slice case; all its pixels count.
    #[arg(long = "images", value_name = "PATH")]
    pub images: Vec<PathBuf>,
    /// Brain mask of each case (non-zero = brain), in the order of --volume;
    /// give none (masks become the non-zero voxels) or one per case.
    #[arg(long = "mask", value_name = "FILE")]
    pub masks: Vec<PathBuf>,
    /// Label map of voxels to keep out of training (e.g. lesions; non-zero =
    /// exclude), one per case in --volume order, or none.
    #[arg(long = "exclude", value_name = "FILE")]
    pub excludes: Vec<PathBuf>,
    /// Names of the channels, comma separated (default: flair for one
    /// channel, ch0,ch1,... for several).
    #[arg(long, value_name = "NAMES")]
    pub channel_names: Option<String>,
    /// Output model file (written atomically).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: PathBuf,
    /// Option set to start from: paper (N=200000, M=150000, batch 64: the
    /// paper's method and budget, a GPU job); quick (N=0, M=600, batch 32:
    /// minutes on a CPU; synthetic counterfeits, a moving average and
    /// label-free selection instead of the fake pool); paper-quick (N=200,
    /// M=300, batch 32: the paper's method at a CPU budget). Options below
    /// override it.
    #[arg(long, value_enum, default_value = "paper")]
    pub preset: PresetArg,
    /// N: phase-1 WGAN-GP iterations.
    #[arg(long, value_name = "N")]
    pub phase1_iterations: Option<u64>,
    /// M: phase-2 critic iterations with the concentration loss.
    #[arg(long, value_name = "M")]
    pub phase2_iterations: Option<u64>,
    /// Patches per batch (paper: 64).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Critic updates per generator update in phase 1 (paper: 5).
    #[arg(long)]
    pub n_critic: Option<usize>,
    /// Gradient-penalty weight lambda (paper: 10).
    #[arg(long)]
    pub lambda_gp: Option<f64>,
    /// Concentration-loss weight alpha (paper: 1; 0 gives Eq. 1).
    #[arg(long)]
    pub alpha: Option<f64>,
    /// Concentration-loss weight inside phase 1's critic loss (Algorithm 1:
    /// 0). Set to alpha with --phase2-iterations 0 for the paper's stdWGAN
    /// ablation (Eq. 2 in a plain WGAN-GP, no fake pool).
    #[arg(long, value_name = "A")]
    pub phase1_alpha: Option<f64>,
    /// k: add generator samples to the fake pool every k iterations (paper: 100).
    #[arg(long, value_name = "K")]
    pub pool_every: Option<u64>,
    /// n: samples added each time (paper: 64).
    #[arg(long, value_name = "N")]
    pub pool_draw: Option<usize>,
    /// Phase-2 critic: fine-tune the phase-1 critic (adGAN(c), default) or
    /// reset it (adGAN).
    #[arg(long, value_enum)]
    pub critic_init: Option<CriticInitArg>,
    /// Adam learning rate (paper: 1e-4).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Adam beta1 (default 0.5).
    #[arg(long)]
    pub beta1: Option<f64>,
    /// Adam beta2 (default 0.9).
    #[arg(long)]
    pub beta2: Option<f64>,
    /// Slice axis of the patches: 0, 1 or 2 (default 2, axial on BraTS-like grids).
    #[arg(long)]
    pub slice_axis: Option<usize>,
    /// Step between training windows in pixels (default 8).
    #[arg(long)]
    pub patch_stride: Option<usize>,
    /// Keep windows with at least this fraction of brain (default 0.5).
    #[arg(long)]
    pub min_brain_fraction: Option<f64>,
    /// Fraction of normal patches held out to calibrate scores (default 0.1).
    #[arg(long)]
    pub calibration_fraction: Option<f64>,
    /// Use at most this many training patches, a random subset (0: all).
    #[arg(long)]
    pub max_patches: Option<usize>,
    /// Random seed; the same seed, data and options give the same model on CPU.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Checkpoint every this many iterations (0: only when phase 2 starts).
    #[arg(long)]
    pub checkpoint_every: Option<u64>,
    /// Checkpoint file (default: <out>.ckpt). An existing one for the same
    /// data and options is resumed from.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Ignore an existing checkpoint and start over.
    #[arg(long)]
    pub restart: bool,
    /// Measure and report losses every this many iterations.
    #[arg(long)]
    pub log_every: Option<u64>,
    /// Synthetic counterfeit anomalies mixed into phase 2's fake batches,
    /// comma separated: blend (foreign-patch interpolation), intensity
    /// (brighter or darker regions), texture (blurred or noisy regions), fill
    /// (regions smoothed to a homogeneous brighter or darker level), or
    /// none (the paper).
    #[arg(long, value_name = "KINDS", value_parser = parse_kinds)]
    pub counterfeits: Option<Kinds>,
    /// Share of each phase-2 fake batch that is synthetic: 0 the paper's
    /// fake pool only, 1 synthetic only (then phase 1 may be 0 iterations).
    #[arg(long, value_name = "F")]
    pub synthetic_fraction: Option<f64>,
    /// Exponential moving average of the phase-2 critic's weights (0: off).
    #[arg(long, value_name = "DECAY")]
    pub ema_decay: Option<f64>,
    /// Critics trained side by side, each from its own initial weights,
    /// and averaged into the model (1: the paper's one critic).
    #[arg(long, value_name = "K")]
    pub critic_members: Option<usize>,
    /// Maps in the first layer of each critic (64: the paper's; the later
    /// layers have 2, 4 and 8 times as many).
    #[arg(long, value_name = "MAPS")]
    pub critic_width: Option<usize>,
    /// Validate every K phase-2 iterations on held-out normal slices
    /// against synthetic anomalies and keep the best critic (0: off).
    #[arg(long, value_name = "K")]
    pub validate_every: Option<u64>,
    /// Kinds of the validation anomalies, made from the held-out slices
    /// with a seed of their own (the quick preset: its training kinds;
    /// kinds training never saw scored about 0.5 throughout: no signal).
    #[arg(long, value_name = "KINDS", value_parser = parse_kinds)]
    pub validation_kinds: Option<Kinds>,
    /// Intensity normalisation of every volume, per channel over the brain:
    /// zscore (mean and SD; the paper's and every preset's) or clipped (mean
    /// and SD of the voxels below mean + 3 SD, recomputed from the median
    /// and MAD until stable: large bright lesions no longer set the scale;
    /// less stable across seeds, docs/BENCHMARKS.md). The model file
    /// records it and scoring applies the same.
    #[arg(long, value_name = "METHOD", value_parser = parse_normalisation)]
    pub normalisation: Option<adgan::config::Normalisation>,
    /// Gate the maps by intensity: bright (on the first channel), bright:N
    /// (on channel N) or off. Gated, a voxel's score is the critic's map
    /// (0 when negative) times how far the voxel is brighter than the
    /// training volumes' normal tissue (0 up to its median, 1 at its 99.9th
    /// percentile): lesions FLAIR shows are bright on it (the quick
    /// preset: bright; the paper's presets: off; 2-D images are never
    /// gated). Scoring can leave it out (--no-intensity-gate).
    #[arg(long, value_name = "GATE", value_parser = parse_gate)]
    pub intensity_gate: Option<adgan::gate::GateChoice>,
    /// Vary the normal training patches: none, or dihedral (each patch
    /// rotated by a multiple of 90 degrees and mirrored at random, so the
    /// critic sees normal structures in every orientation; intensities are
    /// never changed). The model file records it.
    #[arg(long, value_name = "HOW", value_parser = parse_augment)]
    pub augment: Option<adgan::config::Augment>,
    #[command(flatten)]
    pub common: Common,
}

/// [`adgan::config::Preset`] on the command line (the library has no clap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PresetArg {
    /// The paper's budget: N = 200,000, M = 150,000, batch 64 (a GPU job).
    Paper,
    /// The detector for a CPU, in minutes: N = 0, M = 600, batch 32; phase
    /// 2 trains a fresh critic against synthetic counterfeits (blend and
    /// intensity) instead of a fake pool, keeps a moving average of its
    /// weights (decay 0.995) and validates it every 50 iterations on
    /// held-out slices against counterfeits of a seed of their own; its
    /// normal patches are turned and mirrored at random (dihedral
    /// augmentation) and its maps gated by intensity (see
    /// docs/BENCHMARKS.md for what each part measured).
    Quick,
    /// The paper's method at the quick budget: N = 200, M = 300, batch 32,
    /// a pool draw every 10 iterations (the "adGAN (paper)" row of the
    /// CPU benchmarks).
    PaperQuick,
}

impl From<PresetArg> for adgan::config::Preset {
    fn from(p: PresetArg) -> Self {
        match p {
            PresetArg::Paper => adgan::config::Preset::Paper,
            PresetArg::Quick => adgan::config::Preset::Quick,
            PresetArg::PaperQuick => adgan::config::Preset::PaperQuick,
        }
    }
}

/// [`adgan::config::CriticInit`] on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CriticInitArg {
    /// adGAN(c): continue from the phase-1 critic (the paper's choice on real data).
    FineTune,
    /// adGAN: re-initialise the critic at random.
    Reset,
}

impl From<CriticInitArg> for adgan::config::CriticInit {
    fn from(c: CriticInitArg) -> Self {
        match c {
            CriticInitArg::FineTune => adgan::config::CriticInit::FineTune,
            CriticInitArg::Reset => adgan::config::CriticInit::Reset,
        }
    }
}

/// A list of counterfeit kinds on the command line.
#[derive(Debug, Clone)]
pub struct Kinds(pub Vec<adgan::counterfeit::Counterfeit>);

fn parse_kinds(s: &str) -> std::result::Result<Kinds, String> {
    adgan::counterfeit::Counterfeit::parse_list(s)
        .map(Kinds)
        .map_err(|e| e.to_string())
}

fn parse_gate(s: &str) -> std::result::Result<adgan::gate::GateChoice, String> {
    adgan::gate::GateChoice::parse(s).map_err(|e| e.to_string())
}

fn parse_augment(s: &str) -> std::result::Result<adgan::config::Augment, String> {
    adgan::config::Augment::parse(s).map_err(|e| e.to_string())
}

fn parse_normalisation(s: &str) -> std::result::Result<adgan::config::Normalisation, String> {
    adgan::config::Normalisation::parse(s).map_err(|e| e.to_string())
}

#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// Model file made by `adgan train`.
    #[arg(long, short = 'm', value_name = "FILE")]
    pub model: PathBuf,
    /// The case's channel files, comma separated, in the model's channel order.
    #[arg(
        long = "volume",
        short = 'v',
        required_unless_present = "images",
        value_name = "CH1[,CH2...]"
    )]
    pub volume: Option<String>,
    /// 2-D images to score (PNG or JPEG: files, folders or .txt lists); -o
    /// is then a CSV of per-image scores.
    #[arg(long = "images", value_name = "PATH", conflicts_with = "volume")]
    pub images: Vec<PathBuf>,
    /// With --images: write the maps of images larger than 32x32 pixels
    /// into this folder (NIfTI float32, one slice).
    #[arg(long, value_name = "DIR")]
    pub maps: Option<PathBuf>,
    /// Brain mask (non-zero = brain); default: the non-zero voxels.
    #[arg(long, value_name = "FILE")]
    pub mask: Option<PathBuf>,
    /// Output anomaly map (NIfTI float32 on the input's grid; .nii or
    /// .nii.gz), or with --images the per-image scores (CSV).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: PathBuf,
    /// Step between scored windows in pixels (1-32); smaller is sharper and
    /// slower (windows grow as 1/stride^2).
    #[arg(long, default_value_t = 8)]
    pub stride: usize,
    #[command(flatten)]
    pub map: PaintingArg,
    /// Slice axis (default: the model's).
    #[arg(long)]
    pub slice_axis: Option<usize>,
    /// Minimum brain fraction of a painting window (default: the model's).
    #[arg(long)]
    pub min_brain_fraction: Option<f64>,
    /// Windows per critic call.
    #[arg(long, default_value_t = 1024)]
    pub batch_size: usize,
    /// Also write the per-window table (CSV: slice axis, slice, row, col,
    /// origin x y z, brain fraction, raw critic output, anomaly score).
    #[arg(long, value_name = "CSV")]
    pub patches: Option<PathBuf>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Model file.
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,
    /// Print the metadata as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also draw the validation curve of a model trained with validation
    /// (phase-2 iteration against validation AUROC, the chosen snapshot
    /// marked) into this PNG file.
    #[arg(long, value_name = "FILE")]
    pub validation_png: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct DevicesArgs {
    /// One JSON object on stdout: {"event": "result", "devices": [...],
    /// "default": ..., "cuda_device_count": N, "cpu_threads": T}.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Output folder.
    #[arg(long, short = 'o', default_value = "demo-output")]
    pub out: PathBuf,
    /// Folder with the demo cases (default: data/demo of the source tree, or
    /// $ADGAN_DEMO_DATA).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Training preset for the demo.
    #[arg(long, value_enum, default_value = "quick")]
    pub preset: PresetArg,
    /// Modalities of the demo cases to use, comma separated, FLAIR first:
    /// flair, t1, t1c, t2.
    #[arg(long, default_value = "flair", value_name = "NAMES")]
    pub channels: String,
    /// Phase-1 iterations (overrides the preset).
    #[arg(long)]
    pub phase1_iterations: Option<u64>,
    /// Phase-2 iterations (overrides the preset).
    #[arg(long)]
    pub phase2_iterations: Option<u64>,
    /// Scoring stride.
    #[arg(long, default_value_t = 4)]
    pub stride: usize,
    #[command(flatten)]
    pub map: PaintingArg,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub common: Common,
}

/// Parse arguments, run, return the exit status.
pub fn run() -> i32 {
    let cli = Cli::parse();
    let json = match &cli.command {
        Command::Train(a) => a.common.json,
        Command::Score(a) => a.common.json,
        Command::Info(a) => a.json,
        Command::Devices(a) => a.json,
        Command::Demo(a) => a.common.json,
        Command::Bench(a) => a.common.json,
        Command::Eval(a) => a.common.json,
        Command::TrainVariants(a) => a.train.common.json,
    };
    quiet_panics_for_expected_failures();
    let run_command = move || match cli.command {
        Command::Train(a) => commands::train(a),
        Command::Score(a) => commands::score(a),
        Command::Info(a) => commands::info(a),
        Command::Devices(a) => commands::devices(a),
        Command::Demo(a) => commands::demo(a),
        Command::Bench(a) => bench::run(a),
        Command::Eval(a) => eval::run(a),
        Command::TrainVariants(a) => eval::train_variants(a),
    };
    let result = match std::panic::catch_unwind(run_command) {
        Ok(result) => result,
        Err(payload) => {
            let message = adgan::error::panic_message(payload.as_ref());
            if is_broken_pipe(&message) {
                // The reader went away (`adgan info m | head`): stop as a
                // Unix tool killed by SIGPIPE would, without a message.
                return 141;
            }
            match adgan::error::torch_error_of_panic(&message) {
                Some(e) => Err(e),
                // A bug: the default hook has printed where it happened.
                None => return 101,
            }
        }
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"event": "error", "message": e.to_string()})
                );
            }
            eprintln!("adgan: error: {e}");
            match e {
                adgan::Error::Cancelled => 130,
                adgan::Error::InvalidArgument(_) => 2,
                _ => 1,
            }
        }
    }
}

/// `println!` panics when standard output is a closed pipe.
fn is_broken_pipe(message: &str) -> bool {
    message.contains("failed printing to stdout") && message.contains("Broken pipe")
}

/// Keep the default panic report for bugs, but not for a closed output
/// pipe or a libtorch failure: `run` reports those as ordinary errors.
fn quiet_panics_for_expected_failures() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = adgan::error::panic_message(info.payload());
        if is_broken_pipe(&message) || adgan::error::torch_error_of_panic(&message).is_some() {
            return;
        }
        default(info);
    }));
}

/// How a map is painted (score, eval and demo share the option).
#[derive(Args, Debug)]
pub struct PaintingArg {
    /// How window scores become voxel scores: mean (each voxel the mean of
    /// the windows covering it), centred:SIGMA (windows weighted by a
    /// Gaussian of the distance from their centre, SIGMA pixels), or
    /// attribution[:K] (each window's score spread over its pixels by
    /// gradient times input, smoothed over K pixels, default 5: follows
    /// lesions smaller than a window; scoring takes about 3 times longer),
    /// or mixed[:K] (the average of the mean and attribution[:K] maps).
    /// Default: the model's (`adgan info`, "map calibration"): mixed for
    /// models with an intensity gate, attribution for the others.
    #[arg(long, value_name = "HOW", value_parser = parse_painting)]
    pub painting: Option<adgan::score::Painting>,
    /// Leave the map ungated even when the model has an intensity gate
    /// (`adgan info` shows it): the critic's map as painted.
    #[arg(long)]
    pub no_intensity_gate: bool,
}

fn parse_painting(s: &str) -> std::result::Result<adgan::score::Painting, String> {
    adgan::score::Painting::parse(s).map_err(|e| e.to_string())
}
