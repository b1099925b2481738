"""Keep adgan's result object from a JSON-lines run log.

    python result.py EVENTS.jsonl OUT.json

EVENTS.jsonl is the stdout of `adgan score --json` (progress and warning
events, then one {"event": "result", ...} object). OUT.json receives that
object, written atomically (a temporary file in the same folder, renamed),
so a job that fails here leaves no partial file. Exits non-zero when the log
holds no result object.
"""

import json
import os
import sys
import tempfile


def last_result(path):
    result = None
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError as e:
                raise SystemExit(f"{path}:{number}: not JSON ({e})") from None
            if isinstance(event, dict) and event.get("event") == "result":
                result = event
    if result is None:
        raise SystemExit(f"{path}: no result object (did adgan score finish?)")
    return result


def write_atomically(path, text):
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv):
    if len(argv) != 3:
        raise SystemExit(__doc__)
    result = last_result(argv[1])
    write_atomically(argv[2], json.dumps(result, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv)
