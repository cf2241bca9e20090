"""The whole server (parent and workers) killed with SIGKILL in the middle of
a round and started again on the same bets file: the batch journal tells it
where each agency stands, the agencies reconnect, resume where the server
says, and every bet is stored exactly once with the right winners. After the
draw, a restarted server serves the round's durable result."""
import collections
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import harness  # noqa: E402
from harness import make_bets  # noqa: E402


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


class RestartTest(harness.LotteryTest):

    def launch(self, name):
        argv = [harness.SERVER, "--address", "127.0.0.1", "--port", str(self.port),
                "--agencies", "2", "--storage", self.path("bets.csv")]
        proc = harness.Proc(argv, self.dir, name)
        self.procs.append(proc)
        self.server = proc
        self.wait_log(proc, lambda es: any(e.action == "ready" for e in es) or not proc.alive(),
                      what="ready")
        self.assertTrue(proc.alive(), proc.log())
        return proc

    def crash(self):
        """SIGKILL to the parent and every worker at once."""
        os.killpg(self.server.pid, signal.SIGKILL)
        self.server.popen.wait()

    def restart_mid_round(self, stored_before_kill=None, after_finished=False):
        self.port = harness.free_port()
        first = self.launch("server-1")
        sent = {1: make_bets(1, 6000, winners=3), 2: make_bets(2, 400, winners=2)}
        one = self.start_agency(1, self.agency_file(1, sent[1]), batch=10,
                                extra=["--connect-timeout", "60s"])
        if after_finished:
            self.wait_log(first, lambda es: self.count(es, "agency_finished") == 1,
                          what="agency 1 waiting for the draw")
        else:
            self.wait_log(first, lambda es: self.count(es, "apuesta_recibida") >= stored_before_kill,
                          what="some batches stored")
        self.crash()
        second = self.launch("server-2")
        recovery = [e for e in second.entries() if e.action == "recovery" and "round" in e.fields]
        self.assertEqual(recovery[0].fields["round"], "resumed", second.log())
        self.assertGreater(int(recovery[0].fields["batches"]), 0)
        two = self.start_agency(2, self.agency_file(2, sent[2]), batch=10,
                                extra=["--connect-timeout", "60s"])
        for a, p in ((1, one), (2, two)):
            self.assertEqual(p.wait(90), 0, p.log()[-3000:])
            self.assertEqual(p.stdout().split(), [b[2] for b in sent[a] if b[4] == 7574])
        self.assertIn("connection_lost", one.log())
        self.assertEqual(collections.Counter(self.bets_file()), self.expected_rows(sent))
        self.assertEqual(self.count(second.entries(), "sorteo"), 1)
        return one, second

    def test_crash_early_in_the_round(self):
        self.restart_mid_round(stored_before_kill=3)

    def test_crash_in_the_middle_of_a_stream(self):
        self.restart_mid_round(stored_before_kill=300)

    def test_crash_while_an_agency_waits_for_the_draw(self):
        one, second = self.restart_mid_round(after_finished=True)
        # FINISHED is journaled: the restarted server knows agency 1 finished,
        # so only agency 2 says it to the second server.
        self.assertGreaterEqual(self.count(one.entries(), "hello"), 2)
        self.assertEqual(self.count(second.entries(), "agency_finished"), 1)

    def test_after_the_draw_a_killed_server_serves_the_same_winners(self):
        self.port = harness.free_port()
        first = self.launch("server-1")
        sent = {a: make_bets(a, 500, winners=3 + a) for a in (1, 2)}
        round_one = [self.start_agency(a, self.agency_file(a, sent[a])) for a in (1, 2)]
        for p in round_one:
            self.assertEqual(p.wait(60), 0, p.log())
        stored = read_bytes(self.path("bets.csv"))
        self.crash()
        second = self.launch("server-2")
        recovery = [e for e in second.entries() if e.action == "recovery" and "round" in e.fields]
        self.assertEqual((recovery[0].fields["round"], recovery[0].fields["round_state"]),
                         ("resumed", "drawn"), second.log())
        # Fresh agency processes, another batch size: they send nothing and
        # hear the same winners, in the same order.
        again = [self.start_agency(a, self.agency_file(a, sent[a]), batch=7, name=f"again-{a}")
                 for a in (1, 2)]
        for first_run, p in zip(round_one, again):
            self.assertEqual(p.wait(60), 0, p.log())
            self.assertEqual(p.stdout(), first_run.stdout())
            self.assertEqual(len(p.stdout().split()), len(first_run.stdout().split()))
        for a, p in zip((1, 2), again):
            self.assertEqual(p.stdout().split(), [b[2] for b in sent[a] if b[4] == 7574])
        self.assertEqual(read_bytes(self.path("bets.csv")), stored)
        self.assertEqual(self.count(second.entries(), "sorteo"), 0)
        self.assertEqual(self.count(second.entries(), "apuesta_recibida"), 0)

if __name__ == "__main__":
    unittest.main(verbosity=2)
