"""Rounds on one daemon (docs/STORAGE.md "Rounds"): two rounds back to back,
each drawn over its own bets; `lotteryctl open` archives the drawn round
intact under rounds/<N>/ and is refused until the next one is drawn;
`lotteryctl rounds`, `show` and `verify` read the archive, and verify
catches one changed byte; a server restarted after opening goes on with
the new round."""
import collections
import json
import os
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import harness  # noqa: E402
from harness import make_bets  # noqa: E402

CTL = os.environ.get("LOTTERY_CTL", "build/src/lotteryctl")
os.environ.pop("RUNTIME_DIRECTORY", None)
os.environ.pop("SERVER_CONTROL_SOCKET", None)


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


class RoundsTest(harness.LotteryTest):

    def ctl(self, *args):
        return subprocess.run([CTL, "--socket", self.path("bets.csv.control"), *args],
                              capture_output=True, text=True, timeout=30)

    def ctl_json(self, *args):
        r = self.ctl("--json", *args)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return json.loads(r.stdout)

    def play(self, per_agency, tag, batch=100):
        procs = [self.start_agency(a, self.agency_file(a, b), batch=batch, name=f"agency-{a}-{tag}")
                 for a, b in per_agency.items()]
        winners = {}
        for a, p in zip(per_agency, procs):
            self.assertEqual(p.wait(60), 0, p.log())
            winners[a] = p.stdout().split()
        return winners

    @staticmethod
    def expected_winners(per_agency):
        return {a: [b[2] for b in bets if b[4] == 7574] for a, bets in per_agency.items()}

    def test_two_rounds_on_one_daemon_each_with_its_own_bets(self):
        self.start_server(agencies=2)
        one = {1: make_bets(1, 2000, winners=40), 2: make_bets(2, 2000, winners=40)}
        self.assertEqual(self.play(one, "r1"), self.expected_winners(one))
        round1 = read_bytes(self.path("bets.csv"))

        opened = self.ctl("open")
        self.assertEqual(opened.returncode, 0, opened.stdout + opened.stderr)
        archive = self.path(os.path.join("rounds", "1"))
        self.assertEqual(read_bytes(os.path.join(archive, "bets.csv")), round1)
        self.assertTrue(os.path.exists(os.path.join(archive, "bets.csv.result")))
        self.assertEqual(os.path.getsize(self.path("bets.csv")), 0)
        status = self.ctl_json("status")
        self.assertEqual((status["round"], status["state"], status["bets"]), (2, "open", 0))

        # A second open before round 2 is drawn is refused, and changes nothing.
        again = self.ctl("open")
        self.assertEqual(again.returncode, 1, again.stdout + again.stderr)
        self.assertIn("round 2 is open, not drawn", again.stdout + again.stderr)

        two = {1: make_bets(1, 1500, winners=50, start_doc=60_000_000),
               2: make_bets(2, 1500, winners=51, start_doc=70_000_000)}
        self.assertEqual(self.play(two, "r2", batch=33), self.expected_winners(two))
        self.assertEqual(collections.Counter(self.bets_file()), self.expected_rows(two))

        status = self.ctl_json("status")
        self.assertGreater(status["current_round_drawn_at"], 1_700_000_000)
        rounds = self.ctl_json("rounds")["rounds"]
        self.assertEqual([(r["round"], r["state"], r["bets"], r["winners"]) for r in rounds],
                         [(1, "archived", 4000, 80), (2, "drawn", 3000, 101)])
        show = self.ctl("show", "1", "--winners")
        self.assertEqual(show.returncode, 0, show.stderr)
        for doc in self.expected_winners(one)[2]:
            self.assertIn(doc, show.stdout)

        verified = self.ctl("verify", "1")
        self.assertEqual(verified.returncode, 0, verified.stdout + verified.stderr)
        # One digit of one bet changed in the archive (the last digit of the
        # second row's number): verify says so.
        data = bytearray(round1)
        at = data.index(b"\r\n", data.index(b"\r\n") + 2) - 1
        self.assertTrue(chr(data[at]).isdigit())
        data[at] = ord("1") if data[at] != ord("1") else ord("2")
        with open(os.path.join(archive, "bets.csv"), "wb") as f:
            f.write(bytes(data))
        broken = self.ctl("verify", "1")
        self.assertEqual(broken.returncode, 1, broken.stdout + broken.stderr)
        self.assertIn("SHA-256", broken.stdout + broken.stderr)

    def test_a_restart_after_open_goes_on_with_the_new_round(self):
        self.start_server(agencies=1)
        one = {1: make_bets(1, 300, winners=5)}
        self.play(one, "r1")
        self.assertEqual(self.ctl("open").returncode, 0)
        self.server.signal(signal.SIGTERM)
        self.assertEqual(self.server.wait(15), 0, self.server.log())
        self.start_server(agencies=1, name="server-2")
        recovery = [e for e in self.server.entries() if e.action == "recovery" and "round" in e.fields]
        self.assertEqual((recovery[0].fields["round_number"], recovery[0].fields["round_state"]),
                         ("2", "open"), self.server.log())
        two = {1: make_bets(1, 200, winners=7, start_doc=80_000_000)}
        self.assertEqual(self.play(two, "r2"), self.expected_winners(two))
        self.assertEqual(collections.Counter(self.bets_file()), self.expected_rows(two))


if __name__ == "__main__":
    unittest.main(verbosity=2)
