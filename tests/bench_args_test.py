"""tools/bench.py: bad --datasets/--syncs/--runs are usage errors (exit 2, one
argparse line, no traceback), and a round that fails keeps its server log
and prints where it is. Runs in seconds: the failing round uses stand-in
binaries, no real benchmark."""
import os
import re
import stat
import subprocess
import sys
import tempfile
import unittest

ROOT = os.environ.get("LOTTERY_SOURCE_ROOT",
                      os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, "tools", "bench.py")


def bench(*args, timeout=120):
    return subprocess.run([sys.executable, BENCH, *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def script(path, text):
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)


class BenchArgsTest(unittest.TestCase):
    def test_bad_values_are_usage_errors(self):
        for args, what in ((["--datasets", "5x7"], "--datasets"),
                           (["--datasets", "shipped,5x1000,huge"], "--datasets"),
                           (["--syncs", "sometimes"], "--syncs"),
                           (["--syncs", ""], "--syncs"),
                           (["--runs", "0"], "--runs"),
                           (["--runs", "many"], "--runs")):
            with self.subTest(args=args):
                r = bench(*args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertNotIn("Traceback", r.stderr)
                self.assertRegex(r.stderr, rf"error: argument {what}: ")

    def test_a_failed_round_keeps_the_server_log_and_says_where(self):
        with tempfile.TemporaryDirectory() as build:
            os.makedirs(os.path.join(build, "src"))
            script(os.path.join(build, "src", "lottery-loopback-copy"),
                   'for a; do case "$a" in --sync) ;; *) : > "$a"; break ;; esac; done\n'
                   'echo \'{"seconds": 0.01, "bytes": 1000}\'\n')
            script(os.path.join(build, "src", "lottery-server"),
                   'echo "stand-in server: refusing to start" >&2\nexit 3\n')
            script(os.path.join(build, "src", "lottery-agency"), "exit 0\n")
            r = bench("--build-dir", build, "--datasets", "shipped", "--syncs", "never",
                      "--runs", "1", "--postgres", "no", "--json", os.path.join(build, "b.json"))
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertNotIn("Traceback", r.stderr)
            m = re.search(r"kept in (\S+)", r.stderr)
            self.assertIsNotNone(m, r.stderr)
            kept = m.group(1)
            self.assertTrue(kept.startswith(os.path.join(build, "bench-failed")), kept)
            with open(os.path.join(kept, "server.log")) as f:
                self.assertIn("stand-in server: refusing to start", f.read())
            self.assertIn("the server did not start", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
