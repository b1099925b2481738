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

from report import write_atomically  # report.py, beside this file


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


def write_text(text):
    """A writer for write_atomically: `text`, flushed to disk."""

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    return write


def main(argv):
    if len(argv) != 3:
        raise SystemExit(__doc__)
    result = last_result(argv[1])
    write_atomically(argv[2], write_text(json.dumps(result, indent=2, sort_keys=True) + "\n"))


if __name__ == "__main__":
    main(sys.argv)
