"""An agency process killed, replaced or restarted within a round, run again
with another batch size or window, resumes after the bets the server holds
(WELCOME's bets_stored, checked by stored_digest), never after a batch
number: every valid line of its dataset ends up stored exactly once, or the
agency exits 65 saying that its dataset does not match what the server
holds, and sends nothing (issue 27, point 3; docs/PROTOCOL.md)."""
import collections
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import harness  # noqa: E402
from harness import make_bets  # noqa: E402

BETS = 6000
BET_ENV = {"NOMBRE": "Ana", "APELLIDO": "Paz", "DOCUMENTO": "30904465",
           "NACIMIENTO": "1999-03-17", "NUMERO": "7574"}


class ResumeTest(harness.LotteryTest):

    def stored_rows(self):
        return len(self.bets_file())

    def stop_mid_stream(self, proc, at_least=300, kill=True):
        """Waits until the server holds `at_least` rows, then SIGKILLs `proc`
        (unless told not to); returns how many rows the file holds then,
        checked to be fewer than the dataset's."""
        deadline = time.monotonic() + 30
        while self.stored_rows() < at_least:
            self.assertTrue(proc.alive(), proc.log()[-3000:])
            self.assertLess(time.monotonic(), deadline, "the agency stored too little")
            time.sleep(0.02)
        if kill:
            proc.kill()
            proc.popen.wait()
            # Batches already in the worker's socket are still stored: read
            # what the server holds once the file stops growing.
            settle = time.monotonic() + 10
            while time.monotonic() < settle:
                before = self.stored_rows()
                time.sleep(0.3)
                if self.stored_rows() == before:
                    break
        held = self.stored_rows()
        self.assertLess(held, BETS, "the agency finished before it was stopped")
        return held

    def assert_each_bet_once(self, bets):
        self.assertEqual(collections.Counter(self.bets_file()), self.expected_rows({1: bets}))

    def assert_round_complete(self, proc, bets, held):
        """`proc`, the last run of agency 1, resumed after `held` bets,
        stored the rest once each and printed the agency's winners."""
        self.assertEqual(proc.wait(90), 0, proc.log()[-3000:])
        self.assert_each_bet_once(bets)
        self.assertEqual(proc.stdout().split(), [b[2] for b in bets if b[4] == 7574])
        resumed = [e for e in proc.entries() if e.action == "resume" and e.result == "success"]
        self.assertEqual(len(resumed), 1, proc.log()[-3000:])
        self.assertEqual(resumed[0].fields["client_id"], "1")
        self.assertEqual(int(resumed[0].fields["bets_stored"]), held)
        self.assertIn("last_seq", resumed[0].fields)

    def test_killed_after_batches_of_one_then_run_with_the_default_batch(self):
        self.start_server(agencies=1)
        bets = make_bets(1, BETS, winners=3)
        data = self.agency_file(1, bets)
        first = self.start_agency(1, data, batch=1, extra=["--window", "2"], name="first")
        held = self.stop_mid_stream(first)
        again = self.start_agency(1, data, name="again")  # batch.max_amount 100
        self.assert_round_complete(again, bets, held)

    def test_killed_then_run_with_another_window_and_batch(self):
        self.start_server(agencies=1)
        bets = make_bets(1, BETS, winners=2)
        data = self.agency_file(1, bets)
        first = self.start_agency(1, data, batch=7, extra=["--window", "1"], name="first")
        held = self.stop_mid_stream(first)
        again = self.start_agency(1, data, batch=31, extra=["--window", "5"], name="again")
        self.assert_round_complete(again, bets, held)

    def test_killed_twice_with_three_batch_sizes(self):
        self.start_server(agencies=1)
        bets = make_bets(1, BETS, winners=4)
        data = self.agency_file(1, bets)
        first = self.start_agency(1, data, batch=1, extra=["--window", "1"], name="first")
        self.stop_mid_stream(first, at_least=100)
        second = self.start_agency(1, data, batch=3, extra=["--window", "1"], name="second")
        held = self.stop_mid_stream(second, at_least=self.stored_rows() + 200)
        third = self.start_agency(1, data, batch=250, name="third")
        self.assert_round_complete(third, bets, held)

    def test_a_server_killed_mid_round_then_a_fresh_agency_with_another_batch(self):
        self.start_server(agencies=1)
        bets = make_bets(1, BETS, winners=3)
        data = self.agency_file(1, bets)
        first = self.start_agency(1, data, batch=7, extra=["--window", "1"], name="first")
        self.stop_mid_stream(first, kill=False)
        # The whole server, parent and workers, and the agency with it.
        os.killpg(self.server.pid, signal.SIGKILL)
        self.server.popen.wait()
        first.kill()
        second = self.start_server(agencies=1, port=self.port, name="server-2")
        # Counted after recovery: rows of an append the kill cut short, never
        # acknowledged, are gone.
        held = self.stored_rows()
        self.assertLess(held, BETS)
        recovery = [e for e in second.entries() if e.action == "recovery" and "round" in e.fields]
        self.assertEqual(recovery[0].fields["round"], "resumed", second.log())
        # The restarted server's WELCOME: the count and digest of the rows it
        # recovered, from the bets file.
        c, welcome = self.reintroduce(1)
        rows = [harness.bet_row(*b) for b in bets[:held]]
        self.assertEqual(welcome.bets_stored, held)
        self.assertEqual(welcome.stored_digest, harness.stored_digest(rows))
        c.close()
        again = self.start_agency(1, data, batch=100, extra=["--window", "3"], name="again")
        self.assert_round_complete(again, bets, held)

    def test_a_changed_dataset_is_refused_with_65_and_nothing_is_sent(self):
        self.start_server(agencies=1)
        bets = make_bets(1, BETS, winners=3)
        data = self.agency_file(1, bets)
        first = self.start_agency(1, data, batch=1, extra=["--window", "1"], name="first")
        held = self.stop_mid_stream(first, at_least=50)
        before = self.bets_file()
        # One of the stored bets changes its number (still a valid line).
        changed = list(bets)
        b = changed[10]
        changed[10] = (b[0], b[1], b[2], b[3], (b[4] + 1) % 10000)
        again = self.start_agency(1, self.agency_file(1, changed), name="changed")
        self.assertEqual(again.wait(30), 65, again.log())
        failed = [e for e in again.entries() if e.action == "resume" and e.result == "fail"]
        self.assertEqual(len(failed), 1, again.log())
        self.assertEqual(int(failed[0].fields["bets_stored"]), held)
        self.assertIn("do not match", failed[0].fields["error"])
        self.assertIn(f"holds {held} bets of agency 1", failed[0].fields["error"])
        self.assertNotIn("apuesta_enviada", again.log())
        self.assertEqual(self.bets_file(), before)
        # A dataset shorter than what the server holds does not match either.
        short = self.start_agency(1, self.agency_file(1, bets[:held - 1]), name="short")
        self.assertEqual(short.wait(30), 65, short.log())
        self.assertIn(f"only {held - 1} valid lines", short.log())
        self.assertEqual(self.bets_file(), before)
        # The dataset as it was still resumes.
        last = self.start_agency(1, self.agency_file(1, bets), name="last")
        self.assert_round_complete(last, bets, held)

    def test_a_bet_mode_bet_then_a_dataset_is_refused_with_65(self):
        self.start_server(agencies=1)
        bet = self.start_agency(1, mode="bet", env=BET_ENV, name="bet")
        self.assertEqual(bet.wait(30), 0, bet.log())
        bets = make_bets(1, 100, winners=1)
        p = self.start_agency(1, self.agency_file(1, bets), name="lottery")
        self.assertEqual(p.wait(30), 65, p.log())
        self.assertIn("holds 1 bets of agency 1", p.log())
        self.assertEqual(len(self.bets_file()), 1)


class TlsResumeTest(harness.LotteryTest):
    TLS = True

    def test_a_second_process_with_the_same_certificate_replaces_a_slow_one(self):
        self.start_server(agencies=1)
        bets = make_bets(1, BETS, winners=3)
        data = self.agency_file(1, bets)
        slow = self.start_agency(1, data, batch=1, extra=["--window", "1"], name="slow")
        deadline = time.monotonic() + 30
        while len(self.bets_file()) < 300:
            self.assertTrue(slow.alive(), slow.log()[-3000:])
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.02)
        fast = self.start_agency(1, data, extra=["--window", "8"], name="fast")
        # The older process is told REPLACED and stops; the newer one resumes
        # after whatever the older had stored by then.
        self.assertEqual(slow.wait(30), 75, slow.log()[-3000:])
        self.assertEqual(fast.wait(90), 0, fast.log()[-3000:])
        self.assertEqual(collections.Counter(self.bets_file()), self.expected_rows({1: bets}))
        self.assertEqual(fast.stdout().split(), [b[2] for b in bets if b[4] == 7574])
        resumed = [e for e in fast.entries() if e.action == "resume" and e.result == "success"]
        self.assertEqual(len(resumed), 1, fast.log()[-3000:])
        self.assertGreaterEqual(int(resumed[0].fields["bets_stored"]), 300)
        self.assertLess(int(resumed[0].fields["bets_stored"]), BETS)


if __name__ == "__main__":
    unittest.main(verbosity=2)
