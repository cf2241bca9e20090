"""tools/bench_plot.py: the SVG that make bench writes from build/bench.json."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(ROOT, "tools", "bench_plot.py")


def figure(median, low, high, **extra):
    f = {"bets_per_s": {"median": median, "min": low, "max": high},
         "ack_p50_us": {"median": 800.0, "min": 700.0, "max": 900.0},
         "ack_p99_us": {"median": 25000.0, "min": 20000.0, "max": 30000.0}}
    f.update(extra)
    return f


REPORT = {
    "machine": {"cpus": 2, "kernel": "6.1.0", "python": "3.11"},
    "runs": 3, "batch_max_amount": 8192,
    "datasets": {
        "5x1M": {"agencies": 5, "bets": 5000000, "input_bytes": 222000000,
                 "raw_copy": {"mb_per_s": {"median": 350.0, "min": 340.0, "max": 360.0}},
                 "raw_copy_sync": {"mb_per_s": {"median": 230.0, "min": 210.0, "max": 250.0}},
                 "round_never": figure(3.3e6, 3.1e6, 3.5e6),
                 "round_always": figure(1.9e6, 1.8e6, 2.0e6),
                 "round_never_tls": figure(2.4e6, 2.3e6, 2.5e6)},
        "200x20k": {"agencies": 200, "bets": 4000000, "input_bytes": 177000000,
                    "raw_copy": {"mb_per_s": {"median": 300.0, "min": 290.0, "max": 310.0}},
                    "round_never": figure(1.9e6, 1.7e6, 2.0e6)},
    },
    "postgres": {"clients": 5, "median_rows_per_s": 520000.0},
}


class BenchPlotTest(unittest.TestCase):

    def run_tool(self, *args):
        return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True,
                              timeout=120)

    def test_a_report_becomes_an_svg_with_every_round_and_the_limits(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "bench.json")
            with open(path, "w") as f:
                json.dump(REPORT, f)
            r = self.run_tool(path)
            self.assertEqual(r.returncode, 0, r.stderr)
            svg_path = os.path.join(tmp, "bench.svg")
            with open(svg_path) as f:
                svg = f.read()
        self.assertTrue(svg.lstrip().startswith("<?xml"), svg[:200])
        self.assertIn("<svg", svg)
        for text in ("Ingest rate", "ack latency", "sync never", "sync always", "never + TLS",
                     "5x1M", "200x20k", "copy of the same bytes", "PostgreSQL (5 clients)",
                     "medians of 3 runs"):
            self.assertIn(text, svg)
        # Five rounds: five rate bars and ten latency bars, each a path of its own.
        self.assertGreaterEqual(svg.count("<path"), 15)

    def test_a_missing_or_foreign_file_is_an_error_and_writes_nothing(self):
        with tempfile.TemporaryDirectory() as tmp:
            r = self.run_tool(os.path.join(tmp, "none.json"))
            self.assertEqual(r.returncode, 1)
            self.assertIn("cannot read", r.stderr)
            other = os.path.join(tmp, "other.json")
            with open(other, "w") as f:
                json.dump({"something": "else"}, f)
            r = self.run_tool(other)
            self.assertEqual(r.returncode, 1)
            self.assertIn("not a benchmark report", r.stderr)
            self.assertFalse(os.path.exists(os.path.join(tmp, "bench.svg")))


if __name__ == "__main__":
    unittest.main(verbosity=2)
