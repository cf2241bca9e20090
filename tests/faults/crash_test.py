"""Fault injection (meson suite `faults`): the server's parent and workers are
killed with SIGKILL at each named crash point (crash_point.h), then a server
is started again on the same files. Every batch an agency was told is stored
must be there exactly once, nothing is stored twice, the file parses, and the
winners are right. A randomized run kills at random moments and prints its
counts."""
import collections
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import harness  # noqa: E402
from harness import make_bets, read_bets_file  # noqa: E402

FAULTS_SERVER = os.environ.get("LOTTERY_SERVER_FAULTS") or os.path.join(
    os.path.dirname(harness.SERVER), "lottery-server-faults")

# (crash point, which hit in the process that reaches it)
# A worker stores the batches it has buffered with one append and flushes
# their acks together: with 40 batches of an agency and a window of 16 it
# appends and flushes at least 3 times however its reads coalesce, so the
# 2nd time is always reached, mid-stream.
POINTS = [
    ("before_rows", 2),
    ("after_rows", 2),
    ("after_record", 2),
    ("holding_shared_lock", 2),
    ("before_ack", 2),
    ("after_finished_record", 1),
    ("waiting_for_draw", 1),
    ("draw_before_result", 1),
    ("draw_after_result", 1),
    ("after_draw", 1),
]


class CrashTest(harness.LotteryTest):

    def launch(self, binary, name, env=None):
        argv = [binary, "--address", "127.0.0.1", "--port", str(self.port), "--agencies", "2",
                "--storage", self.path("bets.csv")]
        proc = harness.Proc(argv, self.dir, name, env)
        self.procs.append(proc)
        self.server = proc
        self.wait_log(proc, lambda es: any(e.action == "ready" for e in es) or not proc.alive(),
                      what="ready")
        return proc

    def agencies(self, sent, tag, window=16):
        return [self.start_agency(a, self.agency_file(a, bets), batch=10, name=f"agency-{a}-{tag}",
                                  extra=["--connect-timeout", "60s", "--window", str(window)])
                for a, bets in sent.items()]

    def check_round(self, sent, agencies, server, draws=None):
        for a, p in zip(sent, agencies):
            self.assertEqual(p.wait(90), 0, p.log()[-3000:])
            self.assertEqual(p.stdout().split(), [b[2] for b in sent[a] if b[4] == 7574],
                             f"winners of agency {a}")
        lost, duplicated = self.check_stored(sent)
        with open(self.path("bets.csv"), "rb") as f:
            self.assertTrue(f.read().endswith(b"\r\n"))
        # A round drawn before the kill is served from its result, not drawn again.
        if draws is None:
            draws = 0 if self.recovered_state(server) == "drawn" else 1
        self.assertEqual(self.count(server.entries(), "sorteo"), draws)
        return lost, duplicated

    def recovered_state(self, server):
        """The round's state ("open", "closed", "drawn") from the restarted
        server's recovery line."""
        lines = [e for e in server.entries() if e.action == "recovery" and "round" in e.fields]
        self.assertEqual(len(lines), 1, server.log())
        return lines[0].fields["round_state"]

    def check_round_drawn_before_kill(self, sent, agencies):
        """The kill landed after the draw but before the test saw its log
        line: the restarted server serves the drawn round's result. Every
        agency gets its winners, and the round holds every bet once."""
        for a, p in zip(sent, agencies):
            self.assertEqual(p.wait(90), 0, p.log()[-3000:])
            self.assertEqual(p.stdout().split(), [b[2] for b in sent[a] if b[4] == 7574],
                             f"winners of agency {a}")
        return self.check_stored(sent)

    def check_stored(self, sent):
        """Every bet sent is in the bets file exactly once; returns the
        bets lost and duplicated (both 0 once the assertions pass)."""
        stored = collections.Counter(self.bets_file())
        expected = self.expected_rows(sent)
        lost = sum((expected - stored).values())
        duplicated = sum(n - 1 for row, n in stored.items() if n > 1)
        self.assertEqual((lost, duplicated), (0, 0))
        self.assertEqual(stored, expected)
        return lost, duplicated

    def test_each_crash_point(self):
        self.assertTrue(os.path.exists(FAULTS_SERVER), FAULTS_SERVER)
        for point, hit in POINTS:
            with self.subTest(point=point):
                self.setUp_round()
                sent = {1: make_bets(1, 400, winners=2), 2: make_bets(2, 300, winners=3)}
                crashing = self.launch(FAULTS_SERVER, f"server-{point}",
                                       env={"LOTTERY_CRASH_AT": f"{point}:{hit}"})
                if point == "waiting_for_draw":
                    # Only agency 1 runs before the crash, so its worker is
                    # surely waiting (the draw cannot have run yet).
                    first = {1: sent[1]}
                    agencies = self.agencies(first, point)
                else:
                    agencies = self.agencies(sent, point)
                crashing.popen.wait(60)
                self.assertIn("crash point reached", crashing.log())
                self.assertEqual(harness.children_of(crashing.pid), [])
                restarted = self.launch(harness.SERVER, f"server-{point}-again")
                if point == "waiting_for_draw":
                    agencies += self.agencies({2: sent[2]}, point)
                self.check_round(sent, agencies, restarted)
                restarted.signal(signal.SIGTERM)
                self.assertEqual(restarted.wait(15), 0)

    def ctl(self, *args):
        ctl = os.environ.get("LOTTERY_CTL", "build/src/lotteryctl")
        return subprocess.run([ctl, "--socket", self.path("bets.csv.control"), *args],
                              capture_output=True, text=True, timeout=30)

    def test_crash_while_opening_the_next_round(self):
        """A kill at each step of `lotteryctl open` leaves round 1 drawn (its
        archive not whole yet) or round 2 open with round 1 archived whole;
        either way the next round runs on its own bets."""
        for point, opened in (("open_before_archive_journal", False), ("open_archived", True),
                              ("open_new_bets_file", True)):
            with self.subTest(point=point):
                self.setUp_round()
                shutil.rmtree(self.path("rounds"), ignore_errors=True)
                sent = {1: make_bets(1, 200, winners=2), 2: make_bets(2, 100, winners=1)}
                server = self.launch(FAULTS_SERVER, f"server-{point}",
                                     env={"LOTTERY_CRASH_AT": f"{point}:1"})
                self.check_round(sent, self.agencies(sent, point), server, draws=1)
                round1 = collections.Counter(self.bets_file())
                self.ctl("open")
                server.popen.wait(30)
                self.assertIn("crash point reached", server.log())
                restarted = self.launch(harness.SERVER, f"server-{point}-again")
                self.assertEqual(self.recovered_state(restarted), "open" if opened else "drawn",
                                 restarted.log())
                if not opened:
                    done = self.ctl("open")
                    self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
                verified = self.ctl("verify", "1")
                self.assertEqual(verified.returncode, 0, verified.stdout + verified.stderr)
                self.assertEqual(collections.Counter(read_bets_file(
                    self.path(os.path.join("rounds", "1", "bets.csv")))), round1)
                two = {1: make_bets(1, 50, winners=1, start_doc=90_000_000)}
                two[2] = make_bets(2, 40, winners=0, start_doc=91_000_000)
                self.check_round(two, self.agencies(two, f"{point}-r2"), restarted, draws=1)
                restarted.signal(signal.SIGTERM)
                self.assertEqual(restarted.wait(15), 0)

    def setUp_round(self):
        for name in ("bets.csv", "bets.csv.journal", "bets.csv.result"):
            if os.path.exists(self.path(name)):
                os.unlink(self.path(name))
        self.port = harness.free_port()

    def test_random_kills(self):
        rng = random.Random(int(os.environ.get("LOTTERY_FAULT_SEED", "20261123")))
        rounds = int(os.environ.get("LOTTERY_FAULT_ROUNDS", "10"))
        kills = acked = lost = duplicated = draws_before_kill = 0
        for r in range(rounds):
            self.setUp_round()
            sent = {1: make_bets(1, 6000, winners=rng.randint(0, 3)),
                    2: make_bets(2, 4000, winners=rng.randint(0, 3))}
            batches = (6000 + 4000) // 10
            server = self.launch(harness.SERVER, f"server-{r}-0")
            # Pipelined and stop-and-wait agencies both meet the kills.
            agencies = self.agencies(sent, f"r{r}", window=rng.choice([1, 4, 16]))
            raced = False
            for k in range(rng.randint(1, 3)):
                target = rng.randint(1, batches // 2)
                self.wait_log(server, lambda es: self.count(es, "apuesta_recibida") >= target
                              or any(e.action == "sorteo" for e in es), timeout=60,
                              what="batches before the kill")
                time.sleep(rng.random() * 0.01)
                if "action: sorteo" in server.log():
                    break  # the round is over; a kill now would start a new one
                os.killpg(server.pid, signal.SIGKILL)
                server.popen.wait()
                kills += 1
                server = self.launch(harness.SERVER, f"server-{r}-{k + 1}")
                if self.recovered_state(server) == "drawn":
                    raced = True  # the draw ran after the look at the log, before the kill
                    break
            if raced:
                draws_before_kill += 1
                got = self.check_round_drawn_before_kill(sent, agencies)
            else:
                got = self.check_round(sent, agencies, server)
            lost += got[0]
            duplicated += got[1]
            acked += sum(len(b) for b in sent.values())
            server.signal(signal.SIGTERM)
            self.assertEqual(server.wait(15), 0)
        print(f"faults: rounds {rounds}, kills {kills}, bets acked {acked}, bets lost {lost}, "
              f"duplicates {duplicated}, draws that beat the kill {draws_before_kill}")
        self.assertGreater(kills, 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
