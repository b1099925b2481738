//! Sweep helper: AUROC of tiny trainings on the synthetic data of the test
//! suite, for choosing test budgets. `tiny_auc N1 N2 LR fine|reset BATCH SEEDS [device]`
#[path = "../tests/common/mod.rs"]
mod common;
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let n1: u64 = a[1].parse().unwrap();
    let n2: u64 = a[2].parse().unwrap();
    let lr: f64 = a[3].parse().unwrap();
    let batch: usize = a[5].parse().unwrap();
    let seeds: u64 = a[6].parse().unwrap();
    let device =
        adgan::device::parse_device(a.get(7).map(|s| s.as_str()).unwrap_or("cpu")).unwrap();
    let mut aucs = Vec::new();
    for seed in 0..seeds {
        let data = adgan::TrainingData {
            groups: None,
            layout: None,
            patches: common::normal_patches(800, 42),
            channel_names: vec!["flair".into()],
        };
        let mut c = common::tiny_config(n1, n2);
        c.seed = seed;
        c.adam.lr = lr;
        c.batch_size = batch;
        if a[4] == "reset" {
            c.critic_init = adgan::train::CriticInit::Reset;
        }
        let t = std::time::Instant::now();
        let model = adgan::train(&data, &c, device, &Default::default(), &mut |_| true).unwrap();
        let s_n = model
            .scores(&common::normal_patches(200, 999), 256)
            .unwrap();
        let s_a = model
            .scores(&common::anomalous_patches(200, 998), 256)
            .unwrap();
        let mut s = s_n.clone();
        s.extend(&s_a);
        let l: Vec<bool> = (0..400).map(|i| i >= 200).collect();
        let auc = adgan::metrics::auroc(&s, &l).unwrap();
        aucs.push(auc);
        eprintln!(
            "  seed={seed}: AUROC {auc:.3} ({:.1}s)",
            t.elapsed().as_secs_f64()
        );
    }
    aucs.sort_by(|a, b| a.total_cmp(b));
    println!(
        "n1={n1} n2={n2} lr={lr} {} batch={batch}: min {:.3} median {:.3} max {:.3}",
        a[4],
        aucs[0],
        aucs[aucs.len() / 2],
        aucs[aucs.len() - 1]
    );
}
