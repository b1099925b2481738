"""Check a finished cohort run of the test (workflows/cohort/test.sh).

    python check.py DIR OUT

DIR holds the inputs make_data.py wrote (cohort/<id>/...), OUT the
workflow's output folder (relative to DIR). Checks cohort.csv (one row per
volume, numbers that agree with each other and with the masks), every map
(a readable NIfTI on its input's grid), cohort.png (decodes, not blank), and
that the report's fall-backs for results without the burden fields give the
same rows as the fields adgan printed, and that a result file that is not
adgan's result is named.
"""

import csv
import importlib.util
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


nifti = load("nifti", REPO / "slicer-module" / "ADGAN" / "ADGANLib" / "nifti.py")
report = load("report", HERE.parent / "scripts" / "report.py")


def check(cond, message):
    if not cond:
        raise SystemExit(f"cohort test: {message}")


def main(root, out):
    root = Path(root)
    os.chdir(root)
    out = Path(out)
    ids = sorted(p.name for p in (root / "cohort").iterdir() if p.is_dir())

    with open(out / "cohort.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    check([r["id"] for r in rows] == ids, f"cohort.csv ids {[r['id'] for r in rows]}, expected {ids}")
    check(list(rows[0]) == report.COLUMNS, f"cohort.csv columns {list(rows[0])}")
    thresholds = {float(r["threshold"]) for r in rows}
    check(len(thresholds) == 1 and all(math.isfinite(t) for t in thresholds), f"thresholds {thresholds}")

    for r in rows:
        i = r["id"]
        flair = nifti.read(root / "cohort" / i / "flair.nii.gz")
        mask = nifti.read(root / "cohort" / i / "brainmask.nii.gz").array != 0
        brain, above = int(r["brain_voxels"]), int(r["voxels_above_threshold"])
        fraction, volume = float(r["anomalous_fraction"]), float(r["anomalous_volume_ml"])
        check(brain == int(mask.sum()), f"{i}: brain_voxels {brain}, the mask has {int(mask.sum())}")
        check(0 <= above <= brain, f"{i}: {above} voxels above the threshold of {brain}")
        check(abs(fraction - above / brain) < 1e-6, f"{i}: anomalous_fraction {fraction}")
        check(0.0 <= fraction <= 1.0, f"{i}: anomalous_fraction {fraction}")
        check(abs(volume - above * 0.001) < 1e-3, f"{i}: {volume} mL for {above} voxels of 1 mm^3")
        check(math.isfinite(float(r["max_score"])), f"{i}: max_score {r['max_score']}")
        check(float(r["seconds"]) > 0, f"{i}: seconds {r['seconds']}")

        # The map: a readable NIfTI on the input's grid, scores in the brain.
        check(r["map"] == str(out / "maps" / f"{i}.nii.gz"), f"{i}: map {r['map']}")
        m = nifti.read(r["map"])
        check(m.array.shape == flair.array.shape, f"{i}: map shape {m.array.shape}, input {flair.array.shape}")
        check(np.allclose(m.affine, flair.affine, atol=1e-4), f"{i}: the map's affine differs from the input's")
        check(np.isfinite(m.array).all(), f"{i}: the map has non-finite values")
        check(np.abs(m.array[mask]).max() > 0, f"{i}: the map is zero in the brain")
        check(abs(float(m.array.max()) - float(r["max_score"])) < 1e-3, f"{i}: max_score {r['max_score']}")
        check(
            int((m.array[mask] >= float(r["threshold"])).sum()) == above,
            f"{i}: the map has {int((m.array[mask] >= float(r['threshold'])).sum())} brain voxels "
            f"at or above the threshold, the CSV {above}",
        )
        result = json.loads((out / "scores" / f"{i}.json").read_text())
        check(result["event"] == "result" and result["map"] == r["map"], f"{i}: scores/{i}.json")

    # The plot decodes and is not blank.
    import matplotlib.image

    png = matplotlib.image.imread(out / "cohort.png")
    check(png.ndim == 3 and png.shape[0] > 150 and png.shape[1] > 500, f"cohort.png is {png.shape}")
    check(float(png[..., :3].std()) > 0.05, "cohort.png is blank")

    # Results without the burden fields: the report computes the same rows
    # from the masks and the maps' headers.
    with tempfile.TemporaryDirectory() as tmp:
        stripped = []
        for i in ids:
            result = json.loads((out / "scores" / f"{i}.json").read_text())
            for key in ("brain_voxels", "anomalous_fraction", "voxel_volume_ml", "anomalous_volume_ml"):
                result.pop(key, None)
            path = Path(tmp) / f"{i}.json"
            path.write_text(json.dumps(result))
            stripped.append(str(path))
        masks = [f"cohort/{i}/brainmask.nii.gz" for i in ids]
        channels = [[f"cohort/{i}/flair.nii.gz", f"cohort/{i}/t1.nii.gz"] for i in ids]
        maps = [str(out / "maps" / f"{i}.nii.gz") for i in ids]
        for with_masks in (masks, [None] * len(ids)):
            again = report.cohort_rows(ids, stripped, maps, with_masks, channels, REPO)
            for r, a in zip(rows, again):
                for key in ("brain_voxels", "voxels_above_threshold"):
                    check(int(r[key]) == a[key], f"{r['id']}: fall-back {key} {a[key]}, adgan {r[key]}")
                for key in ("anomalous_fraction", "anomalous_volume_ml"):
                    check(abs(float(r[key]) - a[key]) < 1e-4, f"{r['id']}: fall-back {key} {a[key]}, adgan {r[key]}")

        # A result file that is not adgan's result: the report names it.
        for text in ('{"event": "result", "max_score": 1.0}', "{not json", "[]"):
            bad = Path(tmp) / "bad result.json"
            bad.write_text(text)
            try:
                report.row_of("x", str(bad), maps[0], masks[0], channels[0], REPO)
            except ValueError as e:
                check(str(e).startswith(str(bad) + ": "), f"the report's error does not name the file: {e}")
            else:
                check(False, f"the report took {text!r} as a result")

    for r in rows:
        print(
            f"  {r['id']}: {r['voxels_above_threshold']} of {r['brain_voxels']} brain voxels "
            f"({float(r['anomalous_fraction']) * 100:.2f} %, {r['anomalous_volume_ml']} mL) at or above "
            f"{float(r['threshold']):.2f}; max {float(r['max_score']):.2f}; {r['seconds']} s"
        )
    print(f"cohort outputs check out: {len(rows)} volumes, maps, cohort.csv, cohort.png ({png.shape[1]}x{png.shape[0]})")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
