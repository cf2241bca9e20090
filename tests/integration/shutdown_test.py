"""Graceful stops: SIGTERM/SIGINT to the server while agencies wait for the draw,
and SIGTERM to an agency."""
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import harness  # noqa: E402
from harness import FINISHED, FINISHED_ACK, WELCOME, WINNERS_QUERY, bets_frame, frame, hello  # noqa: E402


class ShutdownTest(harness.LotteryTest):

    def waiting_clients(self, n_waiting):
        clients = []
        for agency in range(1, n_waiting + 1):
            c = self.raw()
            c.send(hello(agency))
            self.assertEqual(c.read()[0], WELCOME)
            c.send(bets_frame(1, [("Ana", "Paz", str(agency), "1990-01-01", 7574)]))
            c.read()
            c.send(frame(FINISHED) + frame(WINNERS_QUERY))
            self.assertEqual(c.read()[0], FINISHED_ACK)
            clients.append(c)
        self.wait_log(self.server, lambda es: self.count(es, "agency_finished") == n_waiting)
        return clients

    def stop_while_waiting(self, sig):
        self.start_server(agencies=3)
        clients = self.waiting_clients(2)
        workers = harness.children_of(self.server.pid)
        self.assertEqual(len(workers), 2)
        start = time.monotonic()
        self.server.signal(sig)
        code = self.server.wait(15)
        elapsed = time.monotonic() - start
        self.assertEqual(code, 0, self.server.log())
        self.assertLess(elapsed, 10)
        for c in clients:
            kind, payload = c.read()
            self.assertEqual(kind, harness.ERROR)
            self.assertEqual(harness.decode_error(payload)[0], harness.E_CANCELLED)
            self.assertTrue(c.closed(5))
        log = self.server.log()
        self.assertIn("action: exit | result: success", log)
        self.assertIn("resource: listening_socket", log)
        self.assertIn("resource: shared_memory", log)
        self.assertEqual(self.count(self.server.entries(), "sorteo"), 0)
        for pid in workers:
            self.assertFalse(os.path.exists(f"/proc/{pid}"), f"worker {pid} still exists")
        # The accepted bets are still there.
        self.assertEqual(len(self.bets_file()), 2)

    def test_sigterm_while_agencies_wait_for_the_draw(self):
        self.stop_while_waiting(signal.SIGTERM)

    def test_sigint_behaves_like_sigterm(self):
        self.stop_while_waiting(signal.SIGINT)

    def test_sigterm_with_real_agencies_waiting(self):
        self.start_server(agencies=3)
        agencies = [self.start_agency(a, self.agency_file(a, harness.make_bets(a, 20, winners=1)),
                                      extra=("--connect-timeout", "1s")) for a in (1, 2)]
        self.wait_log(self.server, lambda es: self.count(es, "agency_finished") == 2)
        self.server.signal(signal.SIGTERM)
        self.assertEqual(self.server.wait(15), 0)
        # The agencies learn the draw was cancelled, retry briefly, and give up.
        for p in agencies:
            self.assertEqual(p.wait(30), 69, p.log())
            self.assertIn("DRAW_CANCELLED", p.log())

    def test_sigterm_to_an_agency(self):
        self.start_server(agencies=2)
        p = self.start_agency(1, self.agency_file(1, harness.make_bets(1, 20)))
        self.wait_log(p, lambda es: self.count(es, "apuestas_enviadas") == 1)
        time.sleep(0.1)  # it is now waiting for the draw
        start = time.monotonic()
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(10), 0, p.log())
        self.assertLess(time.monotonic() - start, 5)
        self.assertIn("action: shutdown | result: success", p.log())
        self.assertIn("resource: socket", p.log())
        # The server noticed and freed the slot for a later connection.
        self.wait_log(self.server, lambda es: self.count(es, "connection_closed") >= 1)
        self.assertTrue(self.server.alive())

    def test_idle_server_stops_promptly(self):
        self.start_server(agencies=1)
        c = self.raw()
        c.send(hello(1))
        self.assertEqual(c.read()[0], WELCOME)
        self.server.signal(signal.SIGTERM)
        self.assertEqual(self.server.wait(10), 0)
        kind, payload = c.read()
        self.assertEqual(harness.decode_error(payload)[0], harness.E_SHUTDOWN)


if __name__ == "__main__":
    unittest.main(verbosity=2)
