"""A worker killed mid-round: the server survives, the agency reconnects and
resumes, and no bet is lost or stored twice."""
import collections
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import harness  # noqa: E402


class RecoveryTest(harness.LotteryTest):

    def kill_worker_mid_stream(self, kill_after_batches):
        self.start_server(agencies=2)
        sent = {1: harness.make_bets(1, 20000, winners=3), 2: harness.make_bets(2, 500, winners=1)}
        first = self.start_agency(1, self.agency_file(1, sent[1]), batch=10)
        self.wait_log(self.server,
                      lambda es: self.count(es, "apuesta_recibida") >= kill_after_batches,
                      what="some batches stored")
        workers = harness.children_of(self.server.pid)
        self.assertEqual(len(workers), 1)
        os.kill(workers[0], signal.SIGKILL)
        self.wait_log(self.server,
                      lambda es: any(e.action == "worker_exit" and e.result == "fail" for e in es),
                      what="the worker's death")
        self.assertTrue(self.server.alive())
        self.wait_log(self.server, lambda es: self.count(es, "agency_finished") == 1, timeout=60,
                      what="agency 1 finished after reconnecting")
        second = self.start_agency(2, self.agency_file(2, sent[2]), batch=10)
        for p in (first, second):
            self.assertEqual(p.wait(60), 0, p.log()[-3000:])
        self.assertIn("connection_lost", first.log())
        self.assertEqual(self.count(first.entries(), "hello"), 2)
        for a, p in ((1, first), (2, second)):
            self.assertEqual(p.stdout().split(), [b[2] for b in sent[a] if b[4] == 7574])
        self.assertEqual(collections.Counter(self.bets_file()), self.expected_rows(sent))
        self.assertEqual(self.count(self.server.entries(), "sorteo"), 1)

    def test_killed_worker_early(self):
        self.kill_worker_mid_stream(5)

    def test_killed_worker_later(self):
        self.kill_worker_mid_stream(500)

    def test_worker_killed_while_waiting_for_the_draw(self):
        self.start_server(agencies=2)
        sent = {a: harness.make_bets(a, 50, winners=1) for a in (1, 2)}
        first = self.start_agency(1, self.agency_file(1, sent[1]))
        self.wait_log(self.server, lambda es: self.count(es, "agency_finished") == 1)
        time.sleep(0.1)
        workers = harness.children_of(self.server.pid)
        self.assertEqual(len(workers), 1)
        os.kill(workers[0], signal.SIGKILL)
        second = self.start_agency(2, self.agency_file(2, sent[2]))
        for a, p in ((1, first), (2, second)):
            self.assertEqual(p.wait(60), 0, p.log()[-3000:])
            self.assertEqual(p.stdout().split(), [sent[a][0][2]])
        self.assertEqual(collections.Counter(self.bets_file()), self.expected_rows(sent))


if __name__ == "__main__":
    unittest.main(verbosity=2)
