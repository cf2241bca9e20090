"""How the agency groups bets into batches, and how the server logs them."""
import collections
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import harness  # noqa: E402


class BatchingTest(harness.LotteryTest):

    def batches_for(self, count, batch, bets=None, server_extra=()):
        self.start_server(agencies=1, extra=server_extra)
        bets = bets or harness.make_bets(1, count)
        p = self.start_agency(1, self.agency_file(1, bets), batch=batch)
        self.assertEqual(p.wait(30), 0, p.log())
        self.assertEqual(collections.Counter(self.bets_file()), self.expected_rows({1: bets}))
        entries = self.server.entries()
        return [int(e.fields["cantidad"]) for e in entries
                if e.action == "apuesta_recibida" and e.result == "success"], entries

    def test_16_bets_with_batch_64_is_one_batch(self):
        sizes, _ = self.batches_for(16, 64)
        self.assertEqual(sizes, [16])

    def test_21_bets_with_batch_99_is_one_batch(self):
        sizes, _ = self.batches_for(21, 99)
        self.assertEqual(sizes, [21])

    def test_99_bets_with_batch_10_is_ten_batches(self):
        sizes, _ = self.batches_for(99, 10)
        self.assertEqual(sizes, [10] * 9 + [9])

    def test_a_batch_is_cut_before_it_would_cross_8_kib(self):
        long_name = "Ñ" * 100  # 100 characters, 200 bytes
        bets = [(long_name, long_name, str(20000000 + i), "1990-01-01", i) for i in range(100)]
        sizes, _ = self.batches_for(100, 100, bets=bets)
        self.assertGreater(len(sizes), 1)
        self.assertEqual(sum(sizes), 100)
        per_bet = 2 * (2 + 200) + (2 + 8) + (2 + 10) + 2
        for size in sizes:
            self.assertLessEqual(5 + 10 + size * per_bet, 8192)
        # Each batch but the last is as full as 8 KiB allows.
        self.assertEqual(sizes[0], (8192 - 15) // per_bet)

    def test_apuesta_almacenada_per_bet_at_debug(self):
        bets = harness.make_bets(1, 12)
        sizes, entries = self.batches_for(12, 5, bets=bets, server_extra=("--log-level", "DEBUG"))
        self.assertEqual(sizes, [5, 5, 2])
        stored = [(e.level, e.fields["dni"], e.fields["numero"]) for e in entries
                  if e.action == "apuesta_almacenada"]
        self.assertEqual(stored, [("DEBUG", b[2], str(b[4])) for b in bets])

    def test_a_lottery_batch_of_one_bet_logs_no_document_at_info(self):
        # The exercise asks for `apuesta_almacenada | dni` in bet mode only:
        # a lottery run's last batch of one bet, or a dataset of one bet, is
        # not bet mode (it says FINISHED).
        for count, batch in ((11, 5), (1, 100)):
            with self.subTest(count=count):
                sizes, entries = self.batches_for(count, batch)
                self.assertEqual(sizes[-1], 1)
                self.assertEqual([e.raw for e in entries if e.action == "apuesta_almacenada"], [])
                self.server.signal(15)
                self.server.wait(30)
                for suffix in ("", ".journal", ".result"):
                    os.remove(self.path("bets.csv" + suffix))

    def test_bets_of_bigger_batches_are_not_logged_one_by_one_at_info(self):
        sizes, entries = self.batches_for(12, 5)
        self.assertEqual(sizes, [5, 5, 2])
        self.assertEqual([e for e in entries if e.action == "apuesta_almacenada"], [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
