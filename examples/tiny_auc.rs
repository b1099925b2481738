#[path = "../tests/common/mod.rs"]
mod common;
use tch::Device;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n1: u64 = args[1].parse().unwrap();
    let n2: u64 = args[2].parse().unwrap();
    let lr: f64 = args[3].parse().unwrap();
    let init: &str = &args[4];
    for seed in 0..3 {
        let data = adgan::TrainingData { patches: common::normal_patches(800, 42), channel_names: vec!["flair".into()] };
        let mut c = common::tiny_config(n1, n2);
        c.seed = seed;
        c.adam.lr = lr;
        if init == "reset" { c.critic_init = adgan::train::CriticInit::Reset; }
        let t = std::time::Instant::now();
        let model = adgan::train(&data, &c, Device::Cpu, &Default::default(), &mut |_| true).unwrap();
        let s_n = model.scores(&common::normal_patches(200, 999), 256).unwrap();
        let s_a = model.scores(&common::anomalous_patches(200, 998), 256).unwrap();
        let mut s = s_n.clone(); s.extend(&s_a);
        let l: Vec<bool> = (0..400).map(|i| i >= 200).collect();
        println!("n1={n1} n2={n2} lr={lr} {init} seed={seed}: AUROC {:.3} ({:.1}s)", adgan::metrics::auroc(&s, &l).unwrap(), t.elapsed().as_secs_f64());
    }
}
