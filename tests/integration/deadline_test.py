"""Closing betting before every agency finished: at draw.deadline, or when
the operator sends the server SIGUSR2. The draw then runs over the agencies
that finished; the others are refused with BETTING_CLOSED (the agency exits
77) and their stored bets win nothing."""
import collections
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import harness  # noqa: E402
from harness import ACK, ERROR, WELCOME, bets_frame, decode_error, hello, make_bets  # noqa: E402
from protocol import E_BETTING_CLOSED  # noqa: E402

EXIT_NOPERM = 77


class DeadlineTest(harness.LotteryTest):

    def winners(self, bets):
        return sorted(b[2] for b in bets if b[4] == 7574)

    def test_at_the_deadline_the_draw_runs_over_the_agencies_that_finished(self):
        self.start_server(agencies=3, extra=["--draw-deadline", "8s"])
        per_agency = {a: make_bets(a, 200, winners=a) for a in (1, 2, 3)}
        files = {a: self.agency_file(a, b) for a, b in per_agency.items()}
        done = [self.start_agency(a, files[a]) for a in (1, 2)]
        for a, p in zip((1, 2), done):
            self.assertEqual(p.wait(60), 0, p.log())
            self.assertEqual(sorted(p.stdout().split()), self.winners(per_agency[a]))
        entries = self.server.entries()
        closed = [e for e in entries if e.action == "betting_closed"]
        self.assertEqual(len(closed), 1, self.server.log())
        self.assertEqual((closed[0].fields["reason"], closed[0].fields["finished"],
                          closed[0].fields["agencies"]), ("draw.deadline", "2", "3"))
        self.assertTrue([e for e in entries if e.action == "sorteo"
                         and e.fields.get("agencias_excluidas") == "1"])
        # The late agency is told, and stores nothing.
        late = self.start_agency(3, files[3])
        self.assertEqual(late.wait(30), EXIT_NOPERM, late.log())
        self.assertIn("betting closed", late.log())
        stored = collections.Counter(r[0] for r in self.bets_file())
        self.assertEqual(stored, collections.Counter({"1": 200, "2": 200}))

    def test_the_operator_closes_betting_with_sigusr2(self):
        self.start_server(agencies=2)
        bets1 = make_bets(1, 50, winners=1)
        bets2 = make_bets(2, 20, winners=2)
        # Agency 2 stores a batch with two winning bets, then stalls.
        c = self.raw()
        c.send(hello(2))
        self.assertEqual(c.read()[0], WELCOME)
        c.send(bets_frame(1, bets2[:10] + [b for b in bets2 if b[4] == 7574]))
        self.assertEqual(c.read()[0], ACK)
        first = self.start_agency(1, self.agency_file(1, bets1))
        self.wait_log(self.server, lambda es: any(
            e.action == "agency_finished" and e.fields.get("agency") == "1" for e in es),
            what="agency 1's FINISHED")
        os.kill(self.server.pid, signal.SIGUSR2)
        self.assertEqual(first.wait(30), 0, first.log())
        self.assertEqual(sorted(first.stdout().split()), self.winners(bets1))
        closed = [e for e in self.server.entries() if e.action == "betting_closed"]
        self.assertEqual(closed[0].fields["reason"], "operator (SIGUSR2)")
        # Agency 2's next batch is refused; its stored winners won nothing.
        c.send(bets_frame(2, bets2[10:12]))
        kind, payload = c.read()
        self.assertEqual((kind, decode_error(payload)[0]), (ERROR, E_BETTING_CLOSED))
        self.assertTrue(c.closed())
        draw = [e for e in self.server.entries() if e.action == "sorteo" and e.result == "success"]
        self.assertEqual(draw[0].fields["ganadores"], str(len(self.winners(bets1))))
        # The draw counts the bets of the agencies that took part, not agency 2's.
        self.assertEqual(draw[0].fields["apuestas"], str(len(bets1)))
        # A second SIGUSR2 changes nothing.
        os.kill(self.server.pid, signal.SIGUSR2)
        self.wait_log(self.server, lambda es: any(
            e.action == "betting_closed" and "already closed" in e.raw for e in es),
            what="the second close")
        self.assertTrue(self.server.alive())

    def test_a_deadline_after_every_agency_finished_changes_nothing(self):
        self.start_server(agencies=2, extra=["--draw-deadline", "8s"])
        per_agency = {a: make_bets(a, 100, winners=a) for a in (1, 2)}
        procs = [self.start_agency(a, self.agency_file(a, b)) for a, b in per_agency.items()]
        for p in procs:
            self.assertEqual(p.wait(60), 0, p.log())
        self.wait_log(self.server, lambda es: any(e.action == "betting_closed" for e in es),
                      what="the deadline")
        closed = [e for e in self.server.entries() if e.action == "betting_closed"][0]
        self.assertEqual((closed.level, closed.fields["finished"]), ("INFO", "2"))
        draws = [e for e in self.server.entries() if e.action == "sorteo" and e.result == "success"]
        self.assertEqual(len(draws), 1)
        self.assertEqual(collections.Counter(self.bets_file()), self.expected_rows(per_agency))


if __name__ == "__main__":
    unittest.main(verbosity=2)
