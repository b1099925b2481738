#!/usr/bin/env bash
# The cohort workflow's test (run by `make test`): Snakemake's local executor
# on three small volumes cut from the demo cases, a tiny training budget, in
# a temporary folder, an output folder and a volume id with spaces. Checks
# the outputs (test/check.py), that a rerun has nothing to do, that a volume
# added to the cohort is scored alone, that a given model needs no train
# section and a missing one is named, and that a volume that fails to score
# leaves no output behind. Uses target/release/adgan (built by
# `cargo build --release`) unless ADGAN names another binary; KEEP=1 keeps
# the test's folder (its path is printed) to look at.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
here="$repo/workflows/cohort"
adgan="${ADGAN:-$repo/target/release/adgan}"
python="${PYTHON:-python3}"
[[ -x "$adgan" ]] || { echo "cohort test: no adgan binary at $adgan (cargo build --release)" >&2; exit 1; }

tmp="$(mktemp -d)"
if [[ -n "${KEEP:-}" ]]; then echo "the test's folder: $tmp"; else trap 'rm -rf "$tmp"' EXIT; fi
"$python" "$here/test/make_data.py" "$tmp"
# The output folder's name and a volume's id (below) hold spaces: every path
# in the jobs' commands is quoted.
out="out dir"
cat >"$tmp/config.yaml" <<YAML
adgan: "$adgan"
out: "$out"
train:
  cases:
    - channels: [train/flair.nii.gz, train/t1.nii.gz]
      exclude: train/seg.nii.gz
  channel_names: [flair, t1]
  preset: quick
  device: cpu
  # a tiny budget: this checks the workflow, not the detector
  options: "--phase1-iterations 0 --phase2-iterations 10 --batch-size 8 --seed 1"
  threads: 2
score:
  folder: cohort
  channels: ["{id}/flair.nii.gz", "{id}/t1.nii.gz"]
  mask: "{id}/brainmask.nii.gz"
  stride: 8
  device: cpu
  threads: 1
YAML

run() { # snakemake in the test folder with the local profile; output in $tmp/run.log
  (cd "$tmp" && snakemake -s "$here/Snakefile" --configfile config.yaml \
    --profile "$here/profiles/local" --cores 2 "$@") >"$tmp/run.log" 2>&1
}
jobs_of() { grep -cE "^(local)?rule $1:" "$tmp/run.log" || true; }

SECONDS=0
run || { cat "$tmp/run.log"; exit 1; }
echo "workflow ran in ${SECONDS}s: train $(jobs_of train), score $(jobs_of score), report $(jobs_of report)"
[[ "$(jobs_of train)" == 1 && "$(jobs_of score)" == 3 && "$(jobs_of report)" == 1 ]] ||
  { cat "$tmp/run.log"; echo "cohort test: expected 1 train, 3 score and 1 report job" >&2; exit 1; }
"$python" "$here/test/check.py" "$tmp" "$out"

# Resume: a complete run has nothing to do.
run || { cat "$tmp/run.log"; exit 1; }
grep -q "Nothing to be done" "$tmp/run.log" ||
  { cat "$tmp/run.log"; echo "cohort test: a rerun of a complete run did something" >&2; exit 1; }
echo "a rerun has nothing to do"

# A volume joins the cohort: it alone is scored, then the report is redone.
cp -r "$tmp/cohort/du_lower" "$tmp/cohort/du again"
run || { cat "$tmp/run.log"; exit 1; }
[[ "$(jobs_of train)" == 0 && "$(jobs_of score)" == 1 && "$(jobs_of report)" == 1 ]] &&
  grep -q "wildcards: id=du again" "$tmp/run.log" ||
  { cat "$tmp/run.log"; echo "cohort test: a new volume should run its score and the report only" >&2; exit 1; }
"$python" "$here/test/check.py" "$tmp" "$out" | tail -n1
echo "a volume that joins is scored alone"

# A given model: no train section needed, nothing to train; a model file
# that is not there is named before anything runs.
sed -e '/^train:/,/^score:/{/^score:/!d}' -e "s|^out: .*|out: \"$out\"\nmodel: \"$out/model.adgan\"|" \
  "$tmp/config.yaml" >"$tmp/given.yaml"
(cd "$tmp" && snakemake -s "$here/Snakefile" --configfile given.yaml --cores 2 -n) >"$tmp/run.log" 2>&1 ||
  { cat "$tmp/run.log"; echo "cohort test: a given model without a train section failed" >&2; exit 1; }
grep -q "Nothing to be done" "$tmp/run.log" || { cat "$tmp/run.log"; exit 1; }
sed -i "s|^model: .*|model: \"no such.adgan\"|" "$tmp/given.yaml"
if (cd "$tmp" && snakemake -s "$here/Snakefile" --configfile given.yaml --cores 2 -n) >"$tmp/run.log" 2>&1 ||
  ! grep -q "model: no such.adgan is not a file" "$tmp/run.log"; then
  cat "$tmp/run.log"; echo "cohort test: a missing model file was not named" >&2; exit 1
fi
echo "a given model is used as it is; a missing one is named"

# A volume that fails to score (a truncated file) leaves neither map nor
# result, and the workflow fails naming it.
mkdir "$tmp/cohort/broken"
cp "$tmp/cohort/du_lower/"{t1,brainmask}.nii.gz "$tmp/cohort/broken/"
head -c 3000 "$tmp/cohort/du_lower/flair.nii.gz" >"$tmp/cohort/broken/flair.nii.gz"
if run; then cat "$tmp/run.log"; echo "cohort test: a broken volume was scored" >&2; exit 1; fi
[[ ! -e "$tmp/$out/maps/broken.nii.gz" && ! -e "$tmp/$out/scores/broken.json" ]] ||
  { ls -la "$tmp/$out/maps" "$tmp/$out/scores"; echo "cohort test: a failed score left output" >&2; exit 1; }
[[ -z "$(find "$tmp/$out" -name '*.tmp')" ]] || { echo "cohort test: temporary files left" >&2; exit 1; }
grep -q "broken/flair.nii.gz" "$tmp/$out/logs/score/broken.log" ||
  { cat "$tmp/$out/logs/score/broken.log"; echo "cohort test: the score log does not name the file" >&2; exit 1; }
echo "a volume that fails to score leaves no output: $(head -n1 "$tmp/$out/logs/score/broken.log")"
echo "cohort workflow test passed in ${SECONDS}s"
