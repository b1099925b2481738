"""The cohort report: cohort.csv (one row per volume) and cohort.png.

Run by the workflow's `report` rule (Snakemake's `script:` directive, which
provides the `snakemake` object). Each volume's figures come from the result
object `adgan score --json` printed (scores/<id>.json). Results that carry
`brain_voxels`, `anomalous_fraction`, `voxel_volume_ml` and
`anomalous_volume_ml` are used as they are; for results without them (an
adgan that does not print them) they are computed here: the brain is the
mask when the workflow has one, else the voxels where any channel is
non-zero (adgan score's default), and the voxel volume comes from the map's
header. Those fall-backs read NIfTI files with the project's own reader
(slicer-module/ADGAN/ADGANLib/nifti.py, numpy only).
"""

import csv
import importlib.util
import io
import json
import math
import os
import statistics
import sys
import tempfile
from pathlib import Path

COLUMNS = [
    "id",
    "map",
    "brain_voxels",
    "voxels_above_threshold",
    "anomalous_fraction",
    "anomalous_volume_ml",
    "max_score",
    "threshold",
    "seconds",
]

_NIFTI = None


def nifti_module(repo):
    """The project's NIfTI reader, loaded by path (its package imports more)."""
    global _NIFTI
    if _NIFTI is None:
        path = Path(repo) / "slicer-module" / "ADGAN" / "ADGANLib" / "nifti.py"
        spec = importlib.util.spec_from_file_location("adgan_cohort_nifti", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _NIFTI = module
    return _NIFTI


def brain_voxels_of(mask, channels, repo):
    import numpy as np

    nifti = nifti_module(repo)
    if mask:
        return int(np.count_nonzero(nifti.read(mask).array))
    brain = None
    for path in channels:
        a = nifti.read(path).array
        # adgan reads NaN and infinite voxels as background
        nonzero = (a != 0) & np.isfinite(a)
        brain = nonzero if brain is None else brain | nonzero
    return int(brain.sum())


def voxel_volume_ml_of(map_path, repo):
    """The voxel volume as adgan states it: the product of the header's
    spacings (pixdim), read as millimetres, over 1000."""
    h = nifti_module(repo).read_header(map_path)
    dx, dy, dz = (abs(float(v)) for v in h["pixdim"][1:4])
    return dx * dy * dz / 1000.0


def read_result(score_path):
    """adgan's result object from scores/<id>.json; a file that is not one
    is named."""
    try:
        with open(score_path, encoding="utf-8") as f:
            r = json.load(f)
        if not isinstance(r, dict) or r.get("event") != "result":
            raise ValueError("not an adgan result object")
        missing = [k for k in ("voxels_above_threshold", "max_score", "threshold", "seconds") if r.get(k) is None]
        if missing:
            raise ValueError(f"no {', '.join(missing)} in adgan's result")
    except ValueError as e:
        raise ValueError(f"{score_path}: {e} (remove it to score the volume again)") from e
    return r


def row_of(id, score_path, map_path, mask, channels, repo):
    r = read_result(score_path)
    above = int(r["voxels_above_threshold"])
    brain = r.get("brain_voxels")
    if brain is None:
        brain = brain_voxels_of(mask, channels, repo)
    brain = int(brain)
    fraction = r.get("anomalous_fraction")
    if fraction is None:
        fraction = above / brain if brain else 0.0
    volume = r.get("anomalous_volume_ml")
    if volume is None:
        voxel_ml = r.get("voxel_volume_ml")
        if voxel_ml is None:
            voxel_ml = voxel_volume_ml_of(map_path, repo)
        volume = above * float(voxel_ml)
    return {
        "id": id,
        "map": map_path,
        "brain_voxels": brain,
        "voxels_above_threshold": above,
        "anomalous_fraction": float(fraction),
        "anomalous_volume_ml": float(volume),
        "max_score": float(r["max_score"]),
        "threshold": float(r["threshold"]),
        "seconds": float(r["seconds"]),
    }


def cohort_rows(ids, scores, maps, masks, channels, repo):
    return [
        row_of(i, s, m, k, c, repo)
        for i, s, m, k, c in zip(ids, scores, maps, masks, channels, strict=True)
    ]


def write_atomically(path, write):
    """Write through a temporary file in the same folder (``write(tmp)``),
    then rename: the file is complete or absent (result.py uses it too)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_csv(rows, path):
    def fmt(key, v):
        if key == "anomalous_fraction":
            return f"{v:.8f}"
        if key in ("anomalous_volume_ml", "max_score", "threshold"):
            return f"{v:.4f}"
        if key == "seconds":
            return f"{v:.2f}"
        return v

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in rows:
        w.writerow([fmt(k, r[k]) for k in COLUMNS])

    def write(tmp):
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(buf.getvalue())

    write_atomically(path, write)


def _threshold_text(rows):
    ts = sorted({round(r["threshold"], 4) for r in rows})
    if len(ts) == 1:
        return f"threshold {ts[0]:.2f}"
    return f"thresholds {ts[0]:.2f} to {ts[-1]:.2f}"


def plot(rows, path, model=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(rows, key=lambda r: (-r["anomalous_volume_ml"], r["id"]))
    n = len(rows)
    vol = [r["anomalous_volume_ml"] for r in rows]
    pct = [100.0 * r["anomalous_fraction"] for r in rows]
    some = sum(1 for r in rows if r["voxels_above_threshold"] > 0)
    median = statistics.median(vol) if vol else 0.0
    title = (
        f"Anomaly burden of {n} volume{'s' if n != 1 else ''}: brain voxels at or above "
        f"the model's {_threshold_text(rows)}\n"
        f"{some} of {n} with anomalous voxels; median {median:.3g} mL, total {sum(vol):.3g} mL"
    )
    if n <= 40:
        # One labelled bar per volume, largest burden on top.
        height = 2.0 + 0.32 * n
        fig, (ax1, ax2) = plt.subplots(
            1, 2, figsize=(11, height), sharey=True, gridspec_kw={"width_ratios": [3, 2]}
        )
        y = list(range(n))
        ax1.barh(y, vol, color="#c0392b")
        ax2.barh(y, pct, color="#7f8c8d")
        ax1.set_yticks(y, [r["id"] for r in rows])
        ax1.invert_yaxis()
        for ax, values, unit in ((ax1, vol, "mL"), (ax2, pct, "%")):
            top = max(values) if values and max(values) > 0 else 1.0
            ax.set_xlim(0, top * 1.25)
            for yi, v in zip(y, values):
                ax.text(v + top * 0.01, yi, f"{v:.3g} {unit}", va="center", fontsize=8)
            ax.grid(axis="x", alpha=0.3)
        ax1.set_xlabel("anomalous volume (mL)")
        ax2.set_xlabel("anomalous fraction of the brain (%)")
    else:
        # Too many volumes to label: the sorted burden curve, the largest
        # ten named, and the distribution.
        fig, (ax1, ax2) = plt.subplots(
            1, 2, figsize=(12, 5), gridspec_kw={"width_ratios": [3, 2]}
        )
        ranks = list(range(1, n + 1))
        ax1.plot(ranks, vol, marker="o", markersize=3, linewidth=1, color="#c0392b")
        top = rows[:10]
        ax1.plot(ranks[: len(top)], vol[: len(top)], "o", markersize=5, color="#1f3a93")
        listing = "\n".join(
            f"{rank:>2}. {r['id']}  {r['anomalous_volume_ml']:.3g} mL" for rank, r in zip(ranks, top)
        )
        ax1.text(
            0.98, 0.97, f"largest {len(top)}:\n{listing}", transform=ax1.transAxes,
            ha="right", va="top", fontsize=8, family="monospace", color="#1f3a93",
            bbox={"facecolor": "white", "edgecolor": "#cccccc", "alpha": 0.9},
        )
        ax1.set_xlabel("volume, ranked by anomalous volume")
        ax1.set_ylabel("anomalous volume (mL)")
        ax1.grid(alpha=0.3)
        bins = max(10, min(60, int(math.sqrt(n)) * 2))
        ax2.hist(pct, bins=bins, color="#7f8c8d")
        ax2.set_xlabel("anomalous fraction of the brain (%)")
        ax2.set_ylabel("volumes")
        ax2.grid(alpha=0.3)
    fig.suptitle(title, fontsize=11)
    if model:
        fig.text(0.01, 0.005, f"model: {model}", fontsize=7, color="#555555", va="bottom")
    fig.tight_layout(rect=(0, 0.03, 1, 1))

    def write(tmp):
        fig.savefig(tmp, dpi=110, format="png")

    write_atomically(path, write)
    plt.close(fig)


def run(smk):
    repo = smk.params.get("repo")
    rows = cohort_rows(
        list(smk.params.ids),
        list(smk.input.scores),
        list(smk.input.maps),
        list(smk.params.masks),
        [list(c) for c in smk.params.channels],
        repo,
    )
    write_csv(rows, smk.output.csv)
    plot(rows, smk.output.png, smk.params.get("model"))
    burden = sum(r["anomalous_volume_ml"] for r in rows)
    print(
        f"{len(rows)} volume(s); {_threshold_text(rows)}; "
        f"anomalous volume {burden:.2f} mL in all; wrote {smk.output.csv} and {smk.output.png}",
        file=sys.stderr,
    )


if "snakemake" in globals():
    with open(snakemake.log[0], "w", encoding="utf-8") as log:  # noqa: F821
        sys.stderr = log
        run(snakemake)  # noqa: F821
