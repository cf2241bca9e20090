"""Tests of tools/gen_dataset.py: determinism, format, uniqueness, and that the
committed dataset is its default output."""
import csv
import datetime
import filecmp
import glob
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.environ.get("LOTTERY_SOURCE_ROOT",
                      os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GEN = os.path.join(ROOT, "tools", "gen_dataset.py")


def generate(out, *args):
    return subprocess.run([sys.executable, GEN, "--output", out, *args],
                          capture_output=True, text=True, timeout=120)


class GenDatasetTest(unittest.TestCase):

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def files(self, d):
        return sorted(glob.glob(os.path.join(d, "agency-*.csv")))

    def test_same_seed_same_bytes_other_seed_other_bytes(self):
        a, b, c = (os.path.join(self.tmp, x) for x in "abc")
        for d, seed in ((a, "7"), (b, "7"), (c, "8")):
            self.assertEqual(generate(d, "--agencies", "3", "--bets", "500", "--seed", seed).returncode, 0)
        for fa, fb, fc in zip(self.files(a), self.files(b), self.files(c)):
            self.assertTrue(filecmp.cmp(fa, fb, shallow=False))
            self.assertFalse(filecmp.cmp(fa, fc, shallow=False))

    def test_format_and_rules(self):
        r = generate(self.tmp, "--agencies", "4", "--bets", "3000", "--seed", "3")
        self.assertEqual(r.returncode, 0, r.stderr)
        files = self.files(self.tmp)
        self.assertEqual(len(files), 4)
        documents = set()
        total = 0
        for path in files:
            with open(path, "rb") as f:
                raw = f.read()
            self.assertTrue(raw.endswith(b"\r\n"))
            self.assertEqual(raw.count(b"\n"), raw.count(b"\r\n"))
            winners = 0
            with open(path, encoding="utf-8", newline="") as f:
                for row in csv.reader(f):
                    total += 1
                    self.assertEqual(len(row), 5, row)
                    first, last, doc, birth, number = row
                    self.assertTrue(first and last)
                    self.assertRegex(doc, r"^[1-9]\d{7}$")
                    documents.add(doc)
                    date = datetime.date.fromisoformat(birth)
                    self.assertTrue(datetime.date(1940, 1, 1) <= date <= datetime.date(2007, 12, 31))
                    self.assertTrue(0 <= int(number) <= 9999)
                    self.assertEqual(str(int(number)), number)
                    winners += number == "7574"
            self.assertGreaterEqual(winners, 1, path)
        self.assertEqual(total, 4 * 3000)
        self.assertEqual(len(documents), total, "documents unique across agencies")

    def test_bad_arguments_exit_2(self):
        for args in (["--agencies", "0"], ["--bets", "-1"], ["--agencies", "x"],
                     ["--winning-number", "10000"]):
            r = generate(self.tmp, *args)
            self.assertEqual(r.returncode, 2, args)
            self.assertTrue(r.stderr.strip())

    def test_committed_dataset_is_the_default_output(self):
        r = generate(self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr)
        shipped = self.files(os.path.join(ROOT, "dataset"))
        self.assertEqual([os.path.basename(p) for p in shipped],
                         [os.path.basename(p) for p in self.files(self.tmp)])
        for made, committed in zip(self.files(self.tmp), shipped):
            self.assertTrue(filecmp.cmp(made, committed, shallow=False), committed)


if __name__ == "__main__":
    unittest.main(verbosity=2)
