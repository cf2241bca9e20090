"""The bets file cannot grow (a file size limit standing in for a full disk)
in the middle of a round: each batch that does not fit is answered
STORAGE_FAILED and cut back, the file keeps only whole batches, the server
keeps serving, and once there is room again the agency's retries succeed and
the round ends with every bet stored exactly once."""
import collections
import os
import shutil
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import harness  # noqa: E402
from harness import make_bets  # noqa: E402

LIMIT = 40_000  # bytes: a few hundred bets


class StorageFullTest(harness.LotteryTest):

    def test_a_full_file_fails_batches_cleanly_until_there_is_room(self):
        if shutil.which("prlimit") is None:
            self.skipTest("prlimit (util-linux) is not installed")
        self.port = harness.free_port()
        argv = ["prlimit", f"--fsize={LIMIT}:unlimited", harness.SERVER, "--address", "127.0.0.1",
                "--port", str(self.port), "--agencies", "1", "--storage", self.path("bets.csv")]
        self.server = harness.Proc(argv, self.dir, "server")
        self.procs.append(self.server)
        self.wait_log(self.server, lambda es: any(e.action == "listen" for e in es), what="listen")
        bets = make_bets(1, 2000, winners=4)
        agency = self.start_agency(1, self.agency_file(1, bets), batch=50,
                                   extra=["--connect-timeout", "60s"])
        entries = self.wait_log(
            self.server, lambda es: sum(1 for e in es if e.action == "apuesta_recibida"
                                        and e.result == "fail") >= 3,
            what="batches refused for lack of room")
        failed = [e for e in entries if e.action == "apuesta_recibida" and e.result == "fail"]
        self.assertIn("File too large", failed[0].raw)
        self.assertTrue(self.server.alive())
        # Only whole batches are in the file, and it stayed within the limit.
        size = os.path.getsize(self.path("bets.csv"))
        self.assertLessEqual(size, LIMIT)
        with open(self.path("bets.csv"), "rb") as f:
            data = f.read()
        # A worker stores the batches it has buffered with one append, all or
        # none: when the first group is already too big, nothing is stored yet.
        self.assertTrue(not data or data.endswith(b"\n"), (len(data), data[-300:]))
        stored = harness.read_bets_file(self.path("bets.csv"))
        self.assertEqual(len(stored) % 50, 0)
        # Room again: raise the limit of the server (new workers inherit it).
        subprocess.run(["prlimit", "--pid", str(self.server.pid), "--fsize=unlimited:unlimited"],
                       check=True)
        self.assertEqual(agency.wait(90), 0, agency.log()[-3000:])
        self.assertEqual(agency.stdout().split(), [b[2] for b in bets if b[4] == 7574])
        self.assertEqual(collections.Counter(self.bets_file()), self.expected_rows({1: bets}))
        self.assertIn("STORAGE_FAILED", agency.log())


if __name__ == "__main__":
    unittest.main(verbosity=2)
