"""Whole rounds with the real binaries: winners, ordering of the log, the bets file."""
import collections
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import harness  # noqa: E402


class RoundTest(harness.LotteryTest):

    def run_round(self, n, winners_per_agency, bets_per_agency=40, batch=7):
        self.start_server(agencies=n)
        sent = {}
        agencies = {}
        for a in range(1, n + 1):
            bets = harness.make_bets(a, bets_per_agency, winners=winners_per_agency.get(a, 0))
            sent[a] = bets
            agencies[a] = self.start_agency(a, self.agency_file(a, bets), batch=batch)
        for a, p in agencies.items():
            self.assertEqual(p.wait(60), 0, p.log())
        for a, p in agencies.items():
            expected = [b[2] for b in sent[a] if b[4] == 7574]
            self.assertEqual(len(expected), winners_per_agency.get(a, 0))
            self.assertEqual(p.stdout().split(), expected, f"agency {a} winners")
            done = [e for e in p.entries() if e.action == "consulta_ganadores"]
            self.assertEqual(len(done), 1)
            self.assertEqual(done[0].result, "success")
            self.assertEqual(done[0].fields["cant_ganadores"], str(len(expected)))
        entries = self.server.entries()
        sorteo = [i for i, e in enumerate(entries) if e.action == "sorteo" and e.result == "success"]
        self.assertEqual(len(sorteo), 1, "sorteo logged exactly once")
        received = [i for i, e in enumerate(entries)
                    if e.action == "apuesta_recibida" and e.result == "success"]
        self.assertTrue(received)
        self.assertLess(max(received), sorteo[0], "every apuesta_recibida before sorteo")
        self.assertEqual(sum(int(entries[i].fields["cantidad"]) for i in received),
                         n * bets_per_agency)
        self.assertEqual(collections.Counter(self.bets_file()), self.expected_rows(sent))
        # Every log line of every process has the documented shape.
        for p in [self.server, *agencies.values()]:
            for line in p.log().splitlines():
                self.assertRegex(line, harness.LOG_LINE, p.name)
        return sent

    def test_three_agencies_known_winners(self):
        self.run_round(3, {1: 2, 2: 1, 3: 0})

    def test_five_agencies_known_winners(self):
        self.run_round(5, {1: 2, 2: 1, 3: 0, 4: 3, 5: 1}, bets_per_agency=120, batch=50)

    def test_text_survives_byte_exact(self):
        tricky = [("José María", "Núñez, \"el\" Pibe", "00012345", "1980-02-29", 7574),
                  ("Ana|Paula", "D'Alessandro", "1", "1900-01-01", 0),
                  ("Zoë", "O'Brien, Jr.", "9999999999", "2000-12-31", 9999)]
        self.start_server(agencies=1)
        p = self.start_agency(1, self.agency_file(1, tricky))
        self.assertEqual(p.wait(30), 0, p.log())
        self.assertEqual(p.stdout().split(), ["00012345"])
        self.assertEqual(collections.Counter(self.bets_file()), self.expected_rows({1: tricky}))
        with open(self.path("bets.csv"), "rb") as f:
            raw = f.read()
        self.assertIn('1,José María,"Núñez, ""el"" Pibe",00012345,1980-02-29,7574\r\n'.encode(), raw)
        self.assertIn("1,Ana|Paula,D'Alessandro,1,1900-01-01,0\r\n".encode(), raw)

    def test_any_spelling_of_a_dataset_line_is_stored_in_the_one_spelling(self):
        # Lines that already are bet rows travel as they are; the others are
        # read as CSV records and re-spelled; invalid ones are skipped with
        # their line numbers, wherever they fall between the others.
        lines = [b"\xef\xbb\xbfAna,Paz,1,1990-01-01,7574\n",        # 1: BOM, LF
                 b"\"Ana\",\"Paz\",2,1990-01-01,0042\r\n",           # 2: quoted, leading zeros
                 b"\r\n",                                             # 3: blank
                 b"\"Ana, hija\",\"O\"\"Neil\",3,1990-01-01,0\r\n",   # 4: quoted as the file is
                 b"Ana,Paz,4,1990-01-01,00\n",                          # 5: number 0 spelled 00
                 b"Ana,Paz,5,1990-01-01\r\n",                          # 6: four columns
                 b"\"Ana\nPaz\",Paz,6,1990-01-01,1\r\n",                # 7-8: a quoted line break
                 b"Ana,Paz,7,1990-01-01,10000\r\n",                    # 9: number out of range
                 b"Ana,Paz,8,1990-01-01,7574"]                           # 10: no line end
        path = self.path("agency-1.csv")
        with open(path, "wb") as f:
            f.write(b"".join(lines))
        self.start_server(agencies=1)
        p = self.start_agency(1, path, batch=2)
        self.assertEqual(p.wait(30), 0, p.log())
        bad = [e for e in p.entries() if e.action == "dataset_line"]
        self.assertEqual([e.fields["line"] for e in bad], ["6", "7", "9"])
        self.assertEqual(p.stdout().split(), ["1", "8"])
        with open(self.path("bets.csv"), "rb") as f:
            self.assertEqual(f.read(), b"1,Ana,Paz,1,1990-01-01,7574\r\n"
                                       b"1,Ana,Paz,2,1990-01-01,42\r\n"
                                       b"1,\"Ana, hija\",\"O\"\"Neil\",3,1990-01-01,0\r\n"
                                       b"1,Ana,Paz,4,1990-01-01,0\r\n"
                                       b"1,Ana,Paz,8,1990-01-01,7574\r\n")

    def test_nobody_gets_winners_before_the_last_agency_finishes(self):
        n = 3
        self.start_server(agencies=n)
        sent = {a: harness.make_bets(a, 30, winners=1) for a in range(1, n + 1)}
        early = [self.start_agency(a, self.agency_file(a, sent[a])) for a in range(1, n)]
        self.wait_log(self.server,
                      lambda es: self.count(es, "agency_finished") == n - 1,
                      what="two agencies finished")
        # They are connected and waiting: no draw, no winners yet.
        self.wait_log(early[0], lambda es: self.count(es, "apuestas_enviadas") == 1)
        # Each says that it waits, not nothing.
        for a, p in enumerate(early, start=1):
            self.wait_log(p, lambda es: any(
                e.action == "waiting_for_draw" and e.result == "in_progress"
                and e.fields.get("client_id") == str(a) for e in es), what="waiting_for_draw")
        for p in early:
            self.assertTrue(p.alive())
            self.assertEqual(p.stdout(), "")
        self.assertEqual(self.count(self.server.entries(), "sorteo"), 0)
        last = self.start_agency(n, self.agency_file(n, sent[n]))
        for p in early + [last]:
            self.assertEqual(p.wait(30), 0, p.log())
        for a, p in enumerate(early + [last], start=1):
            self.assertEqual(p.stdout().split(), [sent[a][0][2]])
        self.assertEqual(self.count(self.server.entries(), "sorteo"), 1)
        # The drawing worker's own agency finished before the draw it ran.
        actions = [e.action for e in self.server.entries()
                   if e.action in ("agency_finished", "sorteo")]
        self.assertEqual(actions, ["agency_finished"] * n + ["sorteo"], self.server.log())

    def test_winners_can_be_asked_again_after_the_draw(self):
        self.start_server(agencies=1)
        bets = harness.make_bets(1, 10, winners=2)
        path = self.agency_file(1, bets)
        first = self.start_agency(1, path, name="first")
        self.assertEqual(first.wait(30), 0, first.log())
        again = self.start_agency(1, path, name="again")
        self.assertEqual(again.wait(30), 0, again.log())
        self.assertEqual(again.stdout().split(), [b[2] for b in bets[:2]])
        # The second run resumed past what was stored: nothing twice.
        self.assertEqual(len(self.bets_file()), 10)
        self.assertEqual(self.count(self.server.entries(), "sorteo"), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
