#!/usr/bin/env python3
"""Small lesions: the development check of docs/BENCHMARKS.md ("The painting
of gated maps", drawn anew in "Two critics trained half as long"). Forty
soft ellipsoids (semi-axes 1.5 to 4 voxels, 1.5 to 3 brain SD brighter)
are added to TCGA-FG-6692's FLAIR at least 20 voxels from its tumour; the
brain mask leaves the tumour's surroundings out, so the map is judged on
the blobs alone. The draw is seeded, so every model meets the same blobs.

  .venv/bin/python bench/small_lesions.py --model M.adgan [--stride 8] [--threads 1]

Prints the model map's and FLAIR thresholding's voxel AUPRC and best Dice
(and writes the blob volume, label and mask to the work folder once).
"""
import argparse
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

CASE = common.ROOT.parent / "shared" / "data" / "brain-mr" / "TCGA-FG-6692"
BLOBS, SEED = 40, 20261206


def draw(case, out):
    """Write flair.nii.gz, label.nii.gz and mask.nii.gz with the blobs into
    `out`. Arrays are handled as [z, y, x], the order the draw was first
    made in."""
    img = nib.load(case / "fla_bet.nii.gz")
    a = np.asarray(img.get_fdata(dtype=np.float32)).T.copy()
    seg = np.asarray(nib.load(case / "fusion_simple_seg.nii.gz").dataobj).T > 0
    brain = a > 0
    sd = a[brain & ~seg].std()
    mask = brain & (ndimage.distance_transform_edt(~seg) >= 20)
    inner = ndimage.binary_erosion(mask, iterations=5)
    cand = np.argwhere(inner)
    rng = np.random.default_rng(SEED)
    flair, label = a.copy(), np.zeros(a.shape, np.uint8)
    zz, yy, xx = np.indices(a.shape)
    n = 0
    while n < BLOBS:
        c = cand[rng.integers(len(cand))]
        if label[tuple(c)]:
            continue
        r = rng.uniform(1.5, 4, 3)
        amp = rng.uniform(1.5, 3) * sd
        sl = tuple(slice(max(0, ci - 6), ci + 7) for ci in c)
        d = np.sqrt(((zz[sl] - c[0]) / r[0]) ** 2 + ((yy[sl] - c[1]) / r[1]) ** 2
                    + ((xx[sl] - c[2]) / r[2]) ** 2)
        flair[sl] += amp * np.clip(1.5 - d, 0, 1) * inner[sl]  # soft edge to d = 1.5
        label[sl] |= (d <= 1.0) & inner[sl]
        n += 1
    out.mkdir(parents=True, exist_ok=True)
    for name, arr, dtype in [("flair", flair, np.float32), ("label", label, np.uint8),
                             ("mask", mask, np.uint8)]:
        o = nib.Nifti1Image(arr.T.astype(dtype), img.affine, img.header)
        o.set_data_dtype(dtype)
        o.header.set_slope_inter(1, 0)
        nib.save(o, out / f"{name}.nii.gz")
    common.log(f"{n} blobs, {int(label.sum())} label voxels, brain SD {sd:.2f}, in {out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--stride", type=int, default=8)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--work", type=Path, default=common.ROOT / "target" / "bench" / "small_lesions")
    ap.add_argument("--data", type=Path, default=CASE)
    a = ap.parse_args()
    blobs = a.work / "blobs"
    if not (blobs / "mask.nii.gz").exists():
        draw(a.data, blobs)
    r = common.run_adgan(["eval", "-m", a.model, "-v", blobs / "flair.nii.gz", "--label", blobs / "label.nii.gz",
                          "--mask", blobs / "mask.nii.gz", "--stride", a.stride,
                          "-o", a.work / "eval" / a.model.stem], a.threads, a.device)
    for v in r["cases"]["voxels"]:
        print(f"{v['name']:40s} AUPRC {v['auprc']:.3f}  best Dice {v['best_dice']:.3f}")


if __name__ == "__main__":
    main()
