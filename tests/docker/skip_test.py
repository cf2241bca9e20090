"""The docker suite without an engine: it must report itself skipped (exit
77, meson's skip code) with the reason, never fail for that alone."""
import os
import subprocess
import sys
import tempfile
import unittest

SUITE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "docker_test.py")


class SkipWithoutEngineTest(unittest.TestCase):
    def test_unreachable_engine_is_a_skip_with_a_reason(self):
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, DOCKER_HOST=f"unix://{tmp}/no-engine.sock")
            r = subprocess.run([sys.executable, SUITE], env=env, capture_output=True,
                               text=True, timeout=120)
        self.assertEqual(r.returncode, 77, r.stdout + r.stderr)
        self.assertIn("SKIP: no", r.stdout)
        self.assertIn("docker suite needs an engine", r.stdout)

    def test_no_docker_client_is_a_skip_too(self):
        env = dict(os.environ, PATH="/nonexistent")
        r = subprocess.run([sys.executable, SUITE], env=env, capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(r.returncode, 77, r.stdout + r.stderr)
        self.assertIn("SKIP: no docker client on PATH", r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
