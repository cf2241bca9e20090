#!/usr/bin/env python3
"""Every C++ file of src/ is formatted as .clang-format says, by clang-format-14.

The files are those git tracks under src/ (`git ls-files 'src/*.cc' 'src/*.h'`;
every *.cc and *.h under src/ outside a git checkout), tests included. The
formatter is clang-format-14 by name, Debian bookworm's: other versions format
the same file differently, so no other one is tried. Without it the test fails
and says how to install it (`make deps`).

  format_test.py          the check (`clang-format-14 --dry-run -Werror`)
  format_test.py --fix    rewrites the files in place (`make format`)

The check first runs on a temporary misformatted file and a formatted one, so
that a check that stopped seeing violations fails too.
"""
import difflib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CLANG_FORMAT = "clang-format-14"
INSTALL_HINT = (f"{CLANG_FORMAT} is not installed: `make deps` installs it "
                f"(or: sudo apt-get install {CLANG_FORMAT})")
# Shown per misformatted file in the report, then cut.
DIFF_LINES = 12
DIFF_FILES = 5


def source_files(root):
    """src/'s *.cc and *.h, relative to root, sorted."""
    try:
        out = subprocess.run(["git", "-C", str(root), "ls-files", "src/*.cc", "src/*.h"],
                             capture_output=True, text=True, timeout=60, check=True)
        files = out.stdout.split()
        if files:
            return sorted(files)
    except (OSError, subprocess.SubprocessError):
        pass
    return sorted(str(p.relative_to(root)) for p in (root / "src").rglob("*")
                  if p.suffix in (".cc", ".h") and p.is_file())


def formatter(path):
    """(path, None) when `path` (shutil.which's answer) is clang-format 14, or
    (None, why it cannot be used)."""
    if path is None:
        return None, INSTALL_HINT
    try:
        version = subprocess.run([path, "--version"], capture_output=True, text=True,
                                 timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as e:
        return None, f"{path} --version failed: {e}"
    if "version 14." not in version:
        return None, f"{path} is not clang-format 14: {version.strip()!r}"
    return path, None


def misformatted(binary, style, root, files):
    """The files of `files` (relative to root) that clang-format would change."""
    out = subprocess.run([binary, "--dry-run", "-Werror", f"--style=file:{style}",
                          "--fallback-style=none"] + list(files),
                         cwd=root, capture_output=True, text=True, timeout=600)
    bad = []
    for line in out.stderr.splitlines():
        # FILE:LINE:COL: error: code should be clang-formatted [-Wclang-format-violations]
        if "[-Wclang-format-violations]" in line:
            name = line.split(":", 1)[0]
            if name not in bad:
                bad.append(name)
    if out.returncode != 0 and not bad:
        raise RuntimeError(f"{binary} failed (exit {out.returncode}): {out.stderr.strip()}")
    return bad


def diff_of(binary, style, root, name):
    """The first lines of the change clang-format would make to one file."""
    before = (Path(root) / name).read_text(encoding="utf-8", errors="replace")
    after = subprocess.run([binary, f"--style=file:{style}", "--fallback-style=none", name],
                           cwd=root, capture_output=True, text=True, timeout=60).stdout
    lines = list(difflib.unified_diff(before.splitlines(), after.splitlines(),
                                      f"{name} (as it is)", f"{name} (formatted)", n=0,
                                      lineterm=""))
    if len(lines) > DIFF_LINES:
        lines = lines[:DIFF_LINES] + [f"... ({len(lines) - DIFF_LINES} more diff lines)"]
    return lines


def self_test(binary, style):
    """A misformatted file is reported, a formatted one is not."""
    with tempfile.TemporaryDirectory() as tmp:
        bad = Path(tmp) / "bad.cc"
        good = Path(tmp) / "good.cc"
        bad.write_text("namespace lottery {\nint  Twice( int x ){ return 2*x; }\n"
                       "}  // namespace lottery\n", encoding="utf-8")
        good.write_text("namespace lottery {\n\nint Twice(int x) { return 2 * x; }\n\n"
                        "}  // namespace lottery\n", encoding="utf-8")
        found = misformatted(binary, style, tmp, ["bad.cc", "good.cc"])
        if found != ["bad.cc"]:
            print(f"self-test: {binary} should report bad.cc alone, reported {found}")
            return False
        if not any(line.startswith("-int  Twice") for line in diff_of(binary, style, tmp, "bad.cc")):
            print("self-test: the report's diff does not show bad.cc's misformatted line")
            return False
    if formatter(shutil.which("clang-format-14-not-installed"))[1] != INSTALL_HINT:
        print("self-test: a missing formatter is not reported with the install hint")
        return False
    return True


def main(argv):
    fix = "--fix" in argv[1:]
    root = Path(os.environ.get("LOTTERY_SOURCE_ROOT", Path(__file__).resolve().parents[2]))
    style = root / ".clang-format"
    binary, why = formatter(shutil.which("clang-format-14"))
    if binary is None:
        print(f"format: {why}")
        return 1
    files = source_files(root)
    if fix:
        for start in range(0, len(files), 100):
            subprocess.run([binary, "-i", f"--style=file:{style}", "--fallback-style=none"]
                           + files[start:start + 100], cwd=root, check=True, timeout=600)
        print(f"format: {len(files)} files of src/ formatted with {CLANG_FORMAT}")
        return 0
    if not self_test(binary, style):
        print("0 passed, 1 failed")
        return 1
    bad = misformatted(binary, style, root, files)
    if not bad:
        print(f"format: the {len(files)} C++ files of src/ are as {CLANG_FORMAT} formats them "
              f"(.clang-format)")
        return 0
    print(f"format: {len(bad)} of the {len(files)} C++ files of src/ are not as {CLANG_FORMAT} "
          f"formats them (.clang-format):")
    for name in bad:
        print(f"  {name}")
    for name in bad[:DIFF_FILES]:
        print()
        print("\n".join(diff_of(binary, style, root, name)))
    if len(bad) > DIFF_FILES:
        print(f"\n(diffs of {len(bad) - DIFF_FILES} more files left out)")
    print(f"\nFix: `make format` (runs {CLANG_FORMAT} -i over them), then commit the result.")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
