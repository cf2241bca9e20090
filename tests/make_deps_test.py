"""`make deps` installs every program the native suites run, and the README
lists exactly the packages it installs (a fresh Debian has none of them)."""
import os
import re
import unittest

ROOT = os.environ.get("LOTTERY_SOURCE_ROOT",
                      os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Programs the tests and tools run as subprocesses, with the Debian package that
# ships each. A test that starts running one more belongs here too.
PROGRAM_PACKAGES = {
    "ss": "iproute2",
    "strace": "strace",
    "socat": "socat",
    "openssl": "openssl",
    "promtool": "prometheus",
    "clang-format-14": "clang-format-14",
}


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def deb_packages():
    text = read("Makefile").replace("\\\n", " ")
    m = re.search(r"^DEB_PACKAGES\s*:=(.*)$", text, re.M)
    return set(m.group(1).split())


def programs_run_by(folder):
    """Programs named as the first word of an argv list or in shutil.which()."""
    found = set()
    for dirpath, _, files in os.walk(os.path.join(ROOT, folder)):
        for name in files:
            if not name.endswith(".py"):
                continue
            with open(os.path.join(dirpath, name), encoding="utf-8") as f:
                text = f.read()
            found |= set(re.findall(r'\[\s*"([a-z][\w-]*)"\s*,', text))
            found |= set(re.findall(r'which\(\s*"([a-z][\w-]*)"\s*\)', text))
    return found


class MakeDepsTest(unittest.TestCase):
    def test_every_program_the_tests_run_is_installed(self):
        packages = deb_packages()
        used = programs_run_by("tests") | programs_run_by("tools")
        for program, package in sorted(PROGRAM_PACKAGES.items()):
            with self.subTest(program=program):
                self.assertIn(program, used, "no test runs it any more: drop it from the table")
                self.assertIn(package, packages, f"{program} comes from {package}, which make deps lacks")

    def test_readme_lists_what_make_deps_installs(self):
        readme = read("README.md")
        m = re.search(r"\(`make deps`: `([^`]*)`", readme)
        self.assertIsNotNone(m, "README no longer quotes make deps' package list")
        self.assertEqual(set(m.group(1).split()), deb_packages())


if __name__ == "__main__":
    unittest.main(verbosity=2)
