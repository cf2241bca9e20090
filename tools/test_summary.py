#!/usr/bin/env python3
"""Prints the closing line of a meson test run: "N passed, N failed[, N skipped]".

Reads meson's testlog.json (one JSON object per test) so CI and people see one
plain count whatever the suites were.
"""
import json
import sys


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "build/meson-logs/testlog.json"
    passed = failed = skipped = 0
    try:
        with open(path, encoding="utf-8") as log:
            for line in log:
                line = line.strip()
                if not line:
                    continue
                result = json.loads(line).get("result", "")
                if result in ("OK", "EXPECTEDFAIL"):
                    passed += 1
                elif result == "SKIP":
                    skipped += 1
                else:
                    failed += 1
    except OSError as err:
        print(f"test_summary: cannot read {path}: {err}", file=sys.stderr)
        return 1
    tail = f", {skipped} skipped" if skipped else ""
    print(f"{passed} passed, {failed} failed{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
