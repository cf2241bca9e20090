"""`make help` names every target of the Makefile (its .PHONY list)."""
import os
import re
import subprocess
import unittest

ROOT = os.environ.get("LOTTERY_SOURCE_ROOT",
                      os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class MakeHelpTest(unittest.TestCase):
    def test_help_lists_every_phony_target(self):
        with open(os.path.join(ROOT, "Makefile")) as f:
            text = f.read()
        phony = set()
        for m in re.finditer(r"^\.PHONY:(.*)$", text.replace("\\\n", " "), re.M):
            phony |= set(m.group(1).split())
        self.assertGreater(len(phony), 20, phony)
        out = subprocess.run(["make", "-s", "-C", ROOT, "help"], capture_output=True, text=True,
                             timeout=30, stdin=subprocess.DEVNULL)
        self.assertEqual(out.returncode, 0, out.stderr)
        named = set(re.findall(r"(?<![\w-])([a-z][a-z-]+)(?![\w-])", out.stdout))
        self.assertEqual(sorted(phony - named), [], "make help does not name these targets")

    def test_help_says_which_suites_make_test_skips(self):
        with open(os.path.join(ROOT, "Makefile")) as f:
            text = f.read()
        recipe = re.search(r"^test: .*\n\t(.*)$", text, re.M).group(1)
        skipped = set(re.findall(r"--no-suite (\w+)", recipe))
        self.assertEqual(skipped, {"slow", "docker", "swarm"})
        out = subprocess.run(["make", "-s", "-C", ROOT, "help"], capture_output=True, text=True,
                             timeout=30, stdin=subprocess.DEVNULL).stdout
        for line in out.splitlines():
            if re.search(r"\btest\b +(every|all)", line):
                for suite in skipped:
                    self.assertIn(suite, line, f"make help: {line!r}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
