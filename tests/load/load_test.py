"""Load (meson suite `slow`): 200 agencies at once, 20,000 bets each, with
durable acks (storage.sync = "always"). Every bet is stored exactly once,
every agency gets exactly its winners, and the memory of a worker stays
bounded. Prints its figures."""
import collections
import csv
import os
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import harness  # noqa: E402

AGENCIES = int(os.environ.get("LOAD_AGENCIES", "200"))
BETS = int(os.environ.get("LOAD_BETS", "20000"))
WORKER_RSS_LIMIT_KIB = 16 * 1024


def rss_kib(pid, field="VmHWM"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class LoadTest(harness.LotteryTest):

    def test_200_agencies_of_20000_bets_with_durable_acks(self):
        data = self.path("data")
        subprocess.run([sys.executable, os.path.join(harness.ROOT, "tools", "gen_dataset.py"),
                        "--agencies", str(AGENCIES), "--bets", str(BETS), "--seed", "7",
                        "--output", data], check=True, timeout=600)
        expected_winners = {}
        expected_rows = collections.Counter()
        for a in range(1, AGENCIES + 1):
            with open(os.path.join(data, f"agency-{a}.csv"), newline="", encoding="utf-8") as f:
                rows = list(csv.reader(f))
            expected_winners[a] = sorted(r[2] for r in rows if r[4] == "7574")
            for r in rows:
                expected_rows[(str(a), *r)] += 1

        self.start_server(agencies=AGENCIES, extra=["--storage-sync", "always"])
        peaks = {}
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                for pid in harness.children_of(self.server.pid):
                    value = rss_kib(pid)
                    if value:
                        peaks[pid] = max(peaks.get(pid, 0), value)
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        start = time.monotonic()
        try:
            agencies = [self.start_agency(a, os.path.join(data, f"agency-{a}.csv"), batch=100,
                                          extra=["--connect-timeout", "120s"])
                        for a in range(1, AGENCIES + 1)]
            for a in agencies:
                self.assertEqual(a.wait(900), 0, a.log()[-2000:])
        finally:
            stop.set()
            sampler.join()
        elapsed = time.monotonic() - start
        parent_peak = rss_kib(self.server.pid)
        self.server.signal(15)
        self.assertEqual(self.server.wait(30), 0)

        for a, p in enumerate(agencies, start=1):
            self.assertEqual(sorted(p.stdout().split()), expected_winners[a], f"agency {a}")
        stored = collections.Counter(self.bets_file())
        self.assertEqual(sum(stored.values()), AGENCIES * BETS)
        self.assertEqual(stored, expected_rows)
        sync = [e for e in self.server.entries() if e.action == "storage_sync"][0].fields
        batches = sum(1 for e in self.server.entries()
                      if e.action == "apuesta_recibida" and e.result == "success")
        worker_peak = max(peaks.values()) if peaks else 0
        print(f"load: {AGENCIES} agencies x {BETS} bets = {AGENCIES * BETS} bets in "
              f"{elapsed:.1f} s ({AGENCIES * BETS / elapsed:,.0f} bets/s), {batches} batches, "
              f"fdatasync calls {sync['fdatasync_calls']}, covered by group commit "
              f"{sync['covered_by_group_commit']}; peak RSS: parent {parent_peak} KiB, "
              f"largest worker {worker_peak} KiB over {len(peaks)} workers sampled")
        self.assertTrue(peaks)
        self.assertLess(worker_peak, WORKER_RSS_LIMIT_KIB)
        self.assertLess(int(sync["fdatasync_calls"]), batches)


if __name__ == "__main__":
    unittest.main(verbosity=2)
