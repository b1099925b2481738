#!/usr/bin/env python3
"""ab-FMNIST: the paper's ab-MNIST protocol (Sec. IV-A) on Fashion-MNIST.

Train on the 60,000 training images (normal); test on test images as normal
and the same images with 1-3 random squares (random position, side 3-10
pixels, random grey level 0-255 each) as abnormal; fixed seed. adGAN(c),
adGAN and the critic of a plain WGAN-GP (the same phase 1, no phase 2) are
trained in one run sharing their phase 1 (`adgan train-variants`), scored
with `adgan eval`, next to OC-SVM (scikit-learn, RBF) and the mean-intensity
baseline on the same test images.

  .venv/bin/python bench/abfmnist.py                 # quick preset, table to docs/BENCHMARKS.md
  .venv/bin/python bench/abfmnist.py --ablation      # + Table 5 ablations and the budget curve
  .venv/bin/python bench/abfmnist.py --n 100 --m 100 --test-size 2000

Data: Debian package dataset-fashion-mnist (scripts/bootstrap.sh installs it).
"""
import argparse
import gzip
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

FMNIST = Path("/usr/share/datasets/fashion-mnist")


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[:4], "big")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def add_squares(images, rng):
    """1-3 squares per image: side 3-10, anywhere inside, one grey level each."""
    out = images.copy()
    n, h, w = out.shape
    for i in range(n):
        for _ in range(rng.integers(1, 4)):
            s = int(rng.integers(3, 11))
            y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
            out[i, y:y + s, x:x + s] = rng.integers(0, 256)
    return out


def write_pngs(folder, images, marker):
    folder.mkdir(parents=True, exist_ok=True)
    done = folder / ".complete"
    if done.exists() and done.read_text() == marker:
        return
    for k, img in enumerate(images):
        common.write_png_grey(folder / f"{k:05d}.png", img)
    done.write_text(marker)


def per_image_windows(x):
    """What the critic sees (src/images.rs): each image z-scored over all its
    pixels, padded right and bottom to 32x32 with the value raw 0 maps to."""
    x = x.astype(np.float64)
    m = x.mean(axis=(1, 2), keepdims=True)
    s = x.std(axis=(1, 2), keepdims=True)
    z = (x - m) / np.maximum(s, 1e-12)
    out = np.repeat(-m / np.maximum(s, 1e-12), 32 * 32, axis=1).reshape(len(x), 32, 32)
    out[:, :28, :28] = z
    return out.reshape(len(x), -1).astype(np.float32)


def dataset_scaled(x, mean, std):
    return ((x.astype(np.float32) / 255.0 - mean) / std).reshape(len(x), -1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_run_options(ap, "abfmnist")
    ap.add_argument("--test-size", type=int, default=2000,
                    help="normal test images (of 10,000; the abnormal set is the same images with squares)")
    ap.add_argument("--ocsvm-train", type=int, default=5000, help="training images for OC-SVM (a random subset)")
    ap.add_argument("--ablation", action="store_true", help="also Table 5's ablations and an AUROC-vs-budget curve")
    ap.add_argument("--curve", action="store_true", help="also the AUROC-vs-budget curve (N/4, N/2, N)")
    ap.add_argument("--fmnist", type=Path, default=FMNIST, help="folder of the Fashion-MNIST IDX files")
    a = ap.parse_args()
    t_start = time.time()
    machine = common.machine()
    n, m, batch = common.budget(a)

    # Data.
    train = read_idx(a.fmnist / "train-images-idx3-ubyte.gz")
    test = read_idx(a.fmnist / "t10k-images-idx3-ubyte.gz")
    rng = np.random.default_rng(a.seed)
    abnormal_all = add_squares(test, rng)  # all 10k, so a subset keeps its squares
    pick = np.sort(np.random.default_rng(a.seed + 1).permutation(len(test))[: a.test_size])
    normal, abnormal = test[pick], abnormal_all[pick]
    changed = np.abs(abnormal.astype(int) - normal.astype(int))
    faint = float(np.mean([(c[c > 0].mean() if (c > 0).any() else 0.0) < 16 for c in changed]))
    work = a.work
    write_pngs(work / "train", train, f"fmnist-train-{len(train)}")
    write_pngs(work / "test" / "normal", normal, f"normal-{a.seed}-{a.test_size}")
    write_pngs(work / "test" / "abnormal", abnormal, f"abnormal-{a.seed}-{a.test_size}")
    common.log(f"data ready: {len(train)} train, {len(normal)} + {len(abnormal)} test images")

    # adGAN variants sharing one phase 1.
    # Checkpoint spacing fixes where training's random streams restart; it
    # is the same with and without --ablation so both give the same models.
    variants = ["adgan-c", "adgan:init=reset", "wgan:m=0"]
    budgets = sorted({max(n // 4, 1), max(n // 2, 1)} - {n})
    ckpt_every = int(np.gcd.reduce(budgets + [n]))
    if a.ablation:
        variants += ["adgan-c-alpha0:alpha=0", "adgan-c-alpha0.5:alpha=0.5", "adgan-c-alpha2:alpha=2",
                     "adgan-c-alpha5:alpha=5", "adgan-alpha0:alpha=0,init=reset", "stdwgan:kind=std-wgan"]
    if a.ablation or a.curve:
        for b in budgets:
            variants += [f"adgan-c-n{b}:n={b},m={m}", f"wgan-n{b}:n={b},m=0"]
    models = work / "models"
    args = ["train-variants", "--images", work / "train", "--preset", a.preset,
            "--phase1-iterations", n, "--phase2-iterations", m, "--seed", a.seed,
            "--checkpoint-every", ckpt_every, "-o", models]
    budget_of, train_seconds = common.train_missing(args, variants, models, a.threads, a.device, a.fresh)
    # The detector's default (`adgan train --preset quick`: synthetic
    # counterfeits, none of them squares, the benchmark's own anomaly).
    ours = models / "ours.adgan"
    if a.fresh or not ours.exists():
        q = ["train", "--images", work / "train", "--preset", a.ours, "--seed", a.seed, "-o", ours, "--restart"]
        train_seconds += common.run_adgan(q, a.threads, a.device)["_seconds"]
    budget_of["ours"] = common.model_budget(ours)

    # Evaluate every model on the same images.
    results = {}
    for name in budget_of:
        r = common.run_adgan(["eval", "-m", models / f"{name}.adgan", "--normal", work / "test" / "normal",
                              "--abnormal", work / "test" / "abnormal", "-o", work / "eval" / name],
                             a.threads, a.device)
        results[name] = r["images"]
        common.log(f"  {name}: AUROC {common.fmt(r['images']['scorers'][0]['auroc'])}")
    intensity = results["adgan-c"]["scorers"][1]

    # OC-SVM on the same test images, with the adGAN's per-image
    # normalisation and with dataset-level scaling.
    sub = np.random.default_rng(a.seed + 2).permutation(len(train))[: a.ocsvm_train]
    labels = np.r_[np.zeros(len(normal)), np.ones(len(abnormal))]
    test_x = np.concatenate([normal, abnormal])
    t0 = time.time()
    oc_img = common.ocsvm_scores(per_image_windows(train[sub]), per_image_windows(test_x))
    mu, sd = train.mean() / 255.0, train.std() / 255.0
    oc_ds = common.ocsvm_scores(dataset_scaled(train[sub], mu, sd), dataset_scaled(test_x, mu, sd))
    ocsvm_seconds = time.time() - t0
    oc = {"per-image": (common.auroc(oc_img, labels), common.auprc(oc_img, labels)),
          "dataset": (common.auroc(oc_ds, labels), common.auprc(oc_ds, labels))}

    def row(label, name):
        s = results[name]["scorers"][0]
        b = budget_of[name]
        return [label, common.fmt(s["auroc"]), common.fmt(s["auprc"]),
                f"N={b['phase1_iterations']}, M={b['phase2_iterations']} "
                f"({b['phase1_seconds'] + b['phase2_seconds']:.0f} s)"]

    total = time.time() - t_start
    header = ["method", "AUROC", "AUPRC", "budget"]
    rows = [row(f"adGAN {a.ours} (default: synthetic counterfeits, EMA, selection)", "ours"),
            row("adGAN(c) (fine-tuned critic)", "adgan-c"), row("adGAN (reset critic)", "adgan"),
            row("WGAN-GP critic (phase 1 only)", "wgan"),
            ["OC-SVM (RBF, per-image z-score as adGAN)", common.fmt(oc["per-image"][0]), common.fmt(oc["per-image"][1]),
             f"{a.ocsvm_train} training images"],
            ["OC-SVM (RBF, dataset-level scaling)", common.fmt(oc["dataset"][0]), common.fmt(oc["dataset"][1]),
             f"{a.ocsvm_train} training images"],
            ["mean intensity", common.fmt(intensity["auroc"]), common.fmt(intensity["auprc"]), "-"]]
    best_base = max(oc["per-image"][0], oc["dataset"][0], results["wgan"]["scorers"][0]["auroc"], intensity["auroc"])
    ours = results["adgan-c"]["scorers"][0]["auroc"]
    cmd = "bench/abfmnist.py " + " ".join(sys.argv[1:])
    text = [f"### ab-FMNIST ({common.today()})", "",
            f"`.venv/bin/python {cmd.strip()}` on {machine}, device {a.device}; "
            f"preset {a.preset} with N={n}, M={m}, batch {batch}, seed {a.seed}; "
            f"training {len(train)} images, test {len(normal)} normal + {len(abnormal)} abnormal "
            f"(a seeded subset of the 10,000 test images and the same images with squares; "
            f"{faint * 100:.1f}% of the abnormal images have squares whose mean change is under 16 grey levels). "
            f"Training in this run: {train_seconds / 60:.1f} min (phase-1 and phase-2 seconds of each model in results.json); OC-SVM: {ocsvm_seconds / 60:.1f} min; "
            f"whole run {total / 60:.1f} min.", "",
            common.markdown_table(header, rows), "",
            f"Goal: adGAN(c) AUROC >= 0.97 and above every baseline: "
            f"{'met' if ours is not None and ours >= 0.97 and ours > best_base else 'not met'} "
            f"(adGAN(c) {common.fmt(ours)}, best baseline {common.fmt(best_base)})."]
    sections = [("abfmnist", "\n".join(text))]
    curve = []
    if a.ablation or a.curve:
        for b in budgets + [n]:
            w = "wgan" if b == n else f"wgan-n{b}"
            c = "adgan-c" if b == n else f"adgan-c-n{b}"
            curve.append([b, m, common.fmt(results[w]["scorers"][0]["auroc"]),
                          common.fmt(results[c]["scorers"][0]["auroc"]),
                          f"{budget_of[c]['phase1_seconds'] + budget_of[c]['phase2_seconds']:.0f}"])
        curve_table = common.markdown_table(["N", "M", "WGAN-GP critic", "adGAN(c)", "adGAN(c) train s"], curve)
    if a.curve and not a.ablation:
        sections[0] = ("abfmnist", sections[0][1] + "\n\nAUROC against the phase-1 budget N (phase 2 M as above):\n\n" + curve_table)
    if a.ablation:
        ab = [row("stdWGAN (Eq. 2 in a plain WGAN-GP, no fake pool)", "stdwgan"),
              row("adGAN (alpha = 0, reset)", "adgan-alpha0"),
              row("adGAN(c) (alpha = 0)", "adgan-c-alpha0"),
              row("adGAN(c) (alpha = 0.5)", "adgan-c-alpha0.5"),
              row("adGAN(c) (alpha = 1)", "adgan-c"),
              row("adGAN(c) (alpha = 2)", "adgan-c-alpha2"),
              row("adGAN(c) (alpha = 5)", "adgan-c-alpha5"),
              row("adGAN (alpha = 1, reset)", "adgan"),
              row("WGAN-GP critic (no fake pool, no concentration)", "wgan")]
        sections.append(("ablation", "\n".join([
            f"### Ablations on ab-FMNIST (Table 5; {common.today()})", "",
            f"Same run, data and machine as the ab-FMNIST table above (`{cmd.strip()}`); every variant shares "
            f"the phase 1 (N={n}) and differs only in what follows.", "",
            common.markdown_table(header, ab), "",
            "AUROC against the phase-1 budget N (phase 2 M as above; WGAN-GP critic = that phase 1's critic):", "",
            curve_table])))
    for name, t in sections:
        print(t + "\n")
        if not a.no_write:
            common.write_section(name, t)
    (work / "results.json").write_text(json.dumps({"results": results, "ocsvm": oc, "budgets": budget_of}, indent=1))


if __name__ == "__main__":
    main()
