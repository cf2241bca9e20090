#!/usr/bin/env python3
"""Runs one libFuzzer target the way the `fuzz` suite does: a working corpus
under the build directory (so new inputs never touch the committed seeds),
the committed seeds, and the given libFuzzer flags. Exits with the target's
status: non-zero on any crash, leak or sanitizer report; the reproducer is
left in the working directory (artifact_prefix)."""
import os
import shutil
import subprocess
import sys


def main():
    target, seeds, workdir, *flags = sys.argv[1:]
    name = os.path.basename(target)
    corpus = os.path.join(workdir, "corpus", name)
    artifacts = os.path.join(workdir, "artifacts", name) + os.sep
    os.makedirs(corpus, exist_ok=True)
    os.makedirs(artifacts, exist_ok=True)
    # Scratch files of the targets (bets_file writes files) stay in here.
    scratch = os.path.join(workdir, "tmp", name)
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)
    argv = [target, f"-artifact_prefix={artifacts}", "-print_final_stats=1", *flags, corpus, seeds]
    print(" ".join(argv), flush=True)
    try:
        return subprocess.run(argv, env=dict(os.environ, TMPDIR=scratch)).returncode
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
