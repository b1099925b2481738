"""Shared helpers of the benchmarks: running `adgan`, PNG writing, the
docs/BENCHMARKS.md table writer, the machine's description."""
import datetime
import json
import os
import platform
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADGAN = Path(os.environ.get("ADGAN_BIN", ROOT / "target" / "release" / "adgan"))
DOC = ROOT / "docs" / "BENCHMARKS.md"

# N, M, batch of the presets (src/config.rs: TrainConfig::preset).
PRESETS = {"paper-quick": (200, 300, 32), "paper": (200_000, 150_000, 64)}
# The detector's own presets (trained with `adgan train --preset NAME`).
OURS_PRESETS = {"quick": (0, 600, 32)}


def add_run_options(ap, work_name):
    """The options every benchmark takes: budget, seed, device, work folder,
    writing the docs. ``budget(a)`` turns them into N, M, batch."""
    ap.add_argument("--preset", choices=PRESETS, default="paper-quick",
                    help="budget of the paper's method (the adGAN (paper) rows)")
    ap.add_argument("--ours", choices=OURS_PRESETS, default="quick",
                    help="preset of the detector's own row (adgan train --preset)")
    ap.add_argument("--n", type=int, help="phase-1 iterations (overrides the preset)")
    ap.add_argument("--m", type=int, help="phase-2 iterations (overrides the preset)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--work", type=Path, default=ROOT / "target" / "bench" / work_name)
    ap.add_argument("--no-write", action="store_true", help="print the tables, leave docs/BENCHMARKS.md alone")
    ap.add_argument("--fresh", action="store_true", help="retrain and re-evaluate what exists in the work folder")


def budget(a):
    """N, M, batch of a run: the preset's, with --n and --m applied."""
    n, m, batch = PRESETS[a.preset]
    return (a.n if a.n is not None else n), (a.m if a.m is not None else m), batch


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run_adgan(args, threads=0, device="cpu"):
    """Run `adgan ARGS --json --device D --threads T`; return the result object."""
    cmd = [str(ADGAN), *map(str, args), "--json", "--device", device, "--threads", str(threads)]
    log(" ".join(cmd[:12]) + (" ..." if len(cmd) > 12 else ""))
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    result, last = None, time.time()
    for line in p.stdout:
        try:
            ev = json.loads(line)
        except json.JSONDecodeError:
            continue
        kind = ev.get("event")
        if kind == "result":
            result = ev
        elif kind == "error":
            raise RuntimeError(f"adgan failed: {ev.get('message')}")
        elif kind == "info":
            log("  " + ev.get("message", ""))
        elif kind == "progress" and time.time() - last > 60:
            last = time.time()
            log(f"  {ev.get('stage')} {ev.get('iteration')}/{ev.get('total')}")
    err = p.stderr.read()
    if p.wait() != 0:
        raise RuntimeError(f"adgan exited {p.returncode}: {err.strip()[-2000:]}")
    if result is None:
        raise RuntimeError("adgan printed no result")
    result["_seconds"] = time.time() - t0
    return result


def write_png_grey(path, img):
    """An 8-bit grey PNG of a 2-D uint8 numpy array."""
    h, w = img.shape
    raw = b"".join(b"\x00" + img[r].tobytes() for r in range(h))

    def chunk(tag, data):
        c = tag + data
        return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
    Path(path).write_bytes(png)


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    text = f"{os.cpu_count()} CPU cores ({cpu}), load average {load:.1f} at the start"
    try:
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout.strip()
        if gpu:
            text += f", GPU {gpu}"
    except (OSError, subprocess.SubprocessError):
        pass
    return text


def today():
    return datetime.date.today().isoformat()


def fmt(v, digits=3):
    if v is None:
        return "n/a"
    try:
        if v != v:
            return "n/a"
    except TypeError:
        return str(v)
    return f"{v:.{digits}f}"


def markdown_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(x) for x in r) + " |")
    return "\n".join(out)


def write_section(name, text):
    """Replace (or append) the section between <!-- name:start --> and
    <!-- name:end --> of docs/BENCHMARKS.md."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    doc = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    block = f"{start}\n{text.rstrip()}\n{end}"
    if start in doc and end in doc:
        a, b = doc.index(start), doc.index(end) + len(end)
        doc = doc[:a] + block + doc[b:]
    else:
        doc = doc.rstrip() + "\n\n" + block + "\n"
    DOC.write_text(doc)
    log(f"wrote the '{name}' section of {DOC}")


def auroc(scores, labels):
    from sklearn.metrics import roc_auc_score
    return float(roc_auc_score(labels, scores))


def auprc(scores, labels):
    from sklearn.metrics import average_precision_score
    return float(average_precision_score(labels, scores))


def ocsvm_scores(train, test, nu=0.1, seed=0):
    """OC-SVM (scikit-learn, RBF, gamma='scale') fitted on `train` rows;
    anomaly scores (minus the decision function) of `test` rows."""
    from sklearn.svm import OneClassSVM
    t0 = time.time()
    m = OneClassSVM(kernel="rbf", gamma="scale", nu=nu).fit(train)
    s = -m.decision_function(test)
    log(f"  OC-SVM: fit {len(train)} + score {len(test)} in {time.time() - t0:.0f}s ({len(m.support_)} support vectors)")
    return s


def model_budget(path, threads=0):
    """The training budget stored in a model file (`adgan info --json`)."""
    out = subprocess.run([str(ADGAN), "info", "--json", str(path)], capture_output=True, text=True, check=True).stdout
    return json.loads(out)["budget"]


def train_missing(args, variants, models, threads, device, fresh=False):
    """Run `adgan train-variants ARGS` for the variants whose model file is
    missing (all with `fresh`); return {name: budget} of every variant.
    An interrupted run's phase 1 is reused by train-variants itself."""
    names = [v.split(":", 1)[0] for v in variants]
    todo = [v for v, n in zip(variants, names) if fresh or not (models / f"{n}.adgan").exists()]
    seconds = 0.0
    if todo:
        cmd = list(args)
        for v in todo:
            cmd += ["--variant", v]
        seconds = run_adgan(cmd, threads, device)["_seconds"]
    else:
        log("every model exists: no training (--fresh retrains)")
    return {n: model_budget(models / f"{n}.adgan") for n in names}, seconds
