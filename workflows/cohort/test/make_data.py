"""Small inputs for the cohort workflow's test, cut from the demo cases.

    python make_data.py DIR

Writes, on 1 mm grids of 128 x 128 voxels by a few axial slices:

  DIR/train/flair.nii.gz, t1.nii.gz, seg.nii.gz  a training case (TCGA-DU-7294,
                                                 slices through its tumour; the
                                                 label keeps the tumour out)
  DIR/cohort/<id>/flair.nii.gz, t1.nii.gz, brainmask.nii.gz
                                                 three volumes to score

The demo cases have FLAIR only; the second channel ("t1") is a stand-in made
from it (the FLAIR's contrast inverted inside the brain) so that the test
runs the workflow's multi-channel path. Files are written with the
project's NIfTI writer (slicer-module/ADGAN/ADGANLib/nifti.py).
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[3]
spec = importlib.util.spec_from_file_location(
    "nifti", REPO / "slicer-module" / "ADGAN" / "ADGANLib" / "nifti.py"
)
nifti = importlib.util.module_from_spec(spec)
spec.loader.exec_module(nifti)

DEMO = REPO / "data" / "demo"
ROWS = slice(48, 176)  # j
COLS = slice(50, 178)  # i

# name, demo case, first slice, slices, with its label
VOLUMES = [
    ("train", "TCGA-DU-7294", 96, 10, True),
    ("fg_tumour", "TCGA-FG-6692", 84, 6, False),
    ("fg_upper", "TCGA-FG-6692", 118, 6, False),
    ("du_lower", "TCGA-DU-7294", 60, 6, False),
]


def cut(case, k0, n):
    image = nifti.read(DEMO / case / "fla_bet.nii.gz")
    a = image.array[k0 : k0 + n, ROWS, COLS]
    affine = image.affine.copy()
    affine[:3, 3] = image.affine[:3, :3] @ np.array([COLS.start, ROWS.start, k0]) + image.affine[:3, 3]
    return a, affine


def main(out):
    out = Path(out)
    for name, case, k0, n, labelled in VOLUMES:
        flair, affine = cut(case, k0, n)
        brain = flair != 0
        stand_in = np.where(brain, flair.max() - flair, 0).astype(np.int16)
        folder = out / "train" if name == "train" else out / "cohort" / name
        nifti.write(folder / "flair.nii.gz", flair, affine)
        nifti.write(folder / "t1.nii.gz", stand_in, affine)
        if labelled:
            label = nifti.read(DEMO / case / "fusion_simple_seg.nii.gz").array[k0 : k0 + n, ROWS, COLS]
            nifti.write(folder / "seg.nii.gz", (label > 0).astype(np.uint8), affine)
        else:
            nifti.write(folder / "brainmask.nii.gz", brain.astype(np.uint8), affine)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
