"""A batch re-sent under a number already stored must be the same batch:
the server keeps a digest of each agency's latest stored batches and refuses
one with other content (REPLAY_MISMATCH), storing nothing of it."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import harness  # noqa: E402
from harness import ACK, ERROR, WELCOME, bets_frame, decode_error, hello  # noqa: E402
from protocol import E_REPLAY_MISMATCH  # noqa: E402

A = ("Ana", "Paz", "30904465", "1990-01-01", 7574)
B = ("Bruno", "Diaz", "22222222", "1985-05-05", 1234)


class ReplayTest(harness.LotteryTest):

    def test_a_resent_batch_with_other_bets_is_refused_and_not_stored(self):
        self.start_server(agencies=1)
        c = self.raw()
        c.send(hello(1))
        self.assertEqual(c.read()[0], WELCOME)
        c.send(bets_frame(1, [A]))
        self.assertEqual(c.read()[0], ACK)
        c.send(bets_frame(2, [A, A]))
        self.assertEqual(c.read()[0], ACK)
        c.close()
        d, welcome = self.reintroduce(1)
        self.assertEqual(welcome[:2], (2, False))
        self.assertEqual(welcome.bets_stored, 3)
        # The same number, other content: refused, connection closed.
        d.send(bets_frame(2, [A, B]))
        kind, payload = d.read()
        self.assertEqual((kind, decode_error(payload)[0]), (ERROR, E_REPLAY_MISMATCH))
        self.assertIn("batch 2", decode_error(payload)[2])
        self.assertTrue(d.closed())
        self.wait_log(self.server, lambda es: any(
            e.action == "replay_mismatch" and e.fields.get("seq") == "2" for e in es),
            what="the replay_mismatch line")
        # The same content again is acknowledged as already stored.
        e, _ = self.reintroduce(1)
        e.send(bets_frame(1, [A]))
        self.assertEqual(e.read()[0], ACK)
        e.send(bets_frame(2, [A, A]))
        self.assertEqual(e.read()[0], ACK)
        # Nothing of the refused batch was stored.
        self.assertEqual(len(self.bets_file()), 3)
        self.assertNotIn("22222222", [row[3] for row in self.bets_file()])

    def test_digests_are_kept_per_agency(self):
        self.start_server(agencies=2)
        one = self.raw()
        one.send(hello(1))
        self.assertEqual(one.read()[0], WELCOME)
        one.send(bets_frame(1, [A]))
        self.assertEqual(one.read()[0], ACK)
        two = self.raw()
        two.send(hello(2))
        self.assertEqual(two.read()[0], WELCOME)
        two.send(bets_frame(1, [B]))
        self.assertEqual(two.read()[0], ACK)
        # Each agency's batch 1 is checked against its own.
        one.send(bets_frame(1, [A]))
        self.assertEqual(one.read()[0], ACK)
        two.send(bets_frame(1, [A]))
        self.assertEqual(decode_error(two.read()[1])[0], E_REPLAY_MISMATCH)
        self.assertEqual(sorted(r[3] for r in self.bets_file()), ["22222222", "30904465"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
