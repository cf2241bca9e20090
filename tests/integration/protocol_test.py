"""Hostile and broken peers against a real server, speaking raw frames."""
import os
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import harness  # noqa: E402
from harness import (ACK, ECHO, ECHO_REPLY, ERROR, FINISHED, FINISHED_ACK, WELCOME, WINNERS,  # noqa: E402
                     WINNERS_QUERY, bets_frame, frame, hello)

GOOD = ("Ana", "Paz", "12345678", "1990-01-01", 7574)


class ProtocolTest(harness.LotteryTest):

    def expect_error(self, client, code, closes=None):
        kind, payload = client.read()
        self.assertEqual(kind, ERROR, payload)
        got, index, message = harness.decode_error(payload)
        self.assertEqual(got, code, message)
        if closes is not None:
            self.assertEqual(client.closed(5), closes)
        return index, message

    def introduce(self, client, agency=1):
        client.send(hello(agency))
        kind, payload = client.read()
        self.assertEqual(kind, WELCOME)
        return harness.decode_welcome(payload)

    def test_garbage_bytes_then_a_normal_round(self):
        self.start_server(agencies=1)
        c = self.raw()
        c.send(b"\xde\xad\xbe\xef" * 10)
        self.expect_error(c, harness.E_UNKNOWN, closes=True)
        self.assertTrue(self.server.alive())
        bets = harness.make_bets(1, 20, winners=1)
        p = self.start_agency(1, self.agency_file(1, bets))
        self.assertEqual(p.wait(30), 0, p.log())
        self.assertEqual(p.stdout().split(), [bets[0][2]])

    def test_oversized_frame_is_refused_without_reading_it(self):
        self.start_server(agencies=1)
        c = self.raw()
        c.send(struct.pack(">BI", harness.BETS, 100000))  # header only
        start = time.monotonic()
        self.expect_error(c, harness.E_TOO_LARGE, closes=True)
        self.assertLess(time.monotonic() - start, 5)
        self.assertTrue(self.server.alive())

    def test_dribbling_peer_is_served(self):
        self.start_server(agencies=1)
        c = self.raw()
        data = hello(1) + bets_frame(1, [GOOD, ("Luis", "Sosa", "2", "1991-02-03", 5)])
        for i in range(len(data)):
            c.send(data[i:i + 1])
            time.sleep(0.003)
        self.assertEqual(c.read()[0], WELCOME)
        kind, payload = c.read()
        self.assertEqual(kind, ACK)
        self.assertEqual(harness.decode_ack(payload), (1, 2))
        self.assertEqual(len(self.bets_file()), 2)

    def test_many_frames_in_one_segment(self):
        self.start_server(agencies=1)
        c = self.raw()
        data = hello(1)
        for seq in range(1, 6):
            data += bets_frame(seq, [(f"N{seq}", "X", str(seq), "1990-01-01", seq)])
        data += frame(FINISHED) + frame(ECHO, b"ping")
        c.send(data)
        self.assertEqual(c.read()[0], WELCOME)
        for seq in range(1, 6):
            kind, payload = c.read()
            self.assertEqual(kind, ACK)
            self.assertEqual(harness.decode_ack(payload), (seq, 1))
        kind, payload = c.read()
        self.assertEqual((kind, struct.unpack(">Q", payload)[0]), (FINISHED_ACK, 5))
        self.assertEqual(c.read(), (ECHO_REPLY, b"ping"))
        self.assertEqual([r[3] for r in self.bets_file()], ["1", "2", "3", "4", "5"])

    def test_invalid_bet_stores_nothing(self):
        self.start_server(agencies=1)
        c = self.raw()
        self.introduce(c)
        c.send(bets_frame(1, [GOOD]))
        self.assertEqual(c.read()[0], ACK)
        with open(self.path("bets.csv"), "rb") as f:
            before = f.read()
        cases = [("1999-01-01", 10000, "Ana", "number"),
                 ("2999-01-01", 1, "Ana", "birthdate"),
                 ("1990-01-01", 1, "", "first_name")]
        for birth, number, name, field in cases:
            batch = [GOOD, GOOD, (name, "Paz", "7", birth, number), GOOD]
            c.send(bets_frame(2, batch))
            index, message = self.expect_error(c, harness.E_INVALID_BET)
            self.assertEqual(index, 2)
            self.assertIn(field, message)
        with open(self.path("bets.csv"), "rb") as f:
            self.assertEqual(f.read(), before)
        fails = [e for e in self.server.entries()
                 if e.action == "apuesta_recibida" and e.result == "fail"]
        self.assertEqual([e.fields["cantidad"] for e in fails], ["4", "4", "4"])
        # The connection stays usable and the sequence did not advance.
        c.send(bets_frame(2, [GOOD]))
        self.assertEqual(harness.decode_ack(c.read()[1]), (2, 1))

    def test_formula_and_invisible_names_are_refused(self):
        self.start_server(agencies=1)
        c = self.raw()
        self.introduce(c)
        for name, reason in (("=HYPERLINK(\"http://x\",\"y\")", "formula"), ("+1+1", "formula"),
                             ("@SUM(1+1)", "formula"), ("-2+3", "formula"),
                             ("evil\u202egnp", "U+202E"), ("zero\u200bwidth", "U+200B"),
                             ("line\u2028break", "U+2028")):
            with self.subTest(name=name):
                c.send(bets_frame(1, [GOOD, (name, "Paz", "7", "1990-01-01", 1)]))
                index, message = self.expect_error(c, harness.E_INVALID_BET)
                self.assertEqual(index, 1)
                self.assertIn(reason, message)
                self.assertIn("first_name", message)
        self.assertEqual(self.bets_file(), [])
        c.send(bets_frame(1, [("Ana-María", "O'Neil", "7", "1990-01-01", 1)]))
        self.assertEqual(harness.decode_ack(c.read()[1]), (1, 1))

    def test_rows_are_stored_as_sent_and_only_in_their_one_spelling(self):
        self.start_server(agencies=1)
        c = self.raw()
        self.introduce(c)
        good = b'"Ana ""la"" Mar\xc3\xada, hija",N\xc3\xba\xc3\xb1ez,00012345,1980-05-17,7574'
        for row, reason in ((b'"Ana",Paz,7,1990-01-01,5', "first_name: quoted"),
                            (b'Ana,"Paz",7,1990-01-01,5', "last_name: quoted"),
                            (b"Ana,Paz,7,1990-01-01,05", "number: a leading zero"),
                            (b"Ana,Paz,7,1990-01-01,5,6", "row: not 5 fields"),
                            (b"Ana,Paz,7,1990-01-01", "row: not 5 fields"),
                            (b'A"na,Paz,7,1990-01-01,5', "first_name: a double quote"),
                            (b"Ana,Paz,7,1990-01-01,5\r\n", "number: not an integer")):
            with self.subTest(row=row):
                c.send(bets_frame(1, [good, row]))
                index, message = self.expect_error(c, harness.E_INVALID_BET)
                self.assertEqual(index, 1)
                self.assertIn(reason, message)
        self.assertEqual(self.bets_file(), [])
        c.send(bets_frame(1, [good, b"Ana,Paz,7,1990-01-01,0"]))
        self.assertEqual(harness.decode_ack(c.read()[1]), (1, 2))
        with open(self.path("bets.csv"), "rb") as f:
            self.assertEqual(f.read(), b"1," + good + b"\r\n1,Ana,Paz,7,1990-01-01,0\r\n")

    def test_a_batch_numbered_0_or_without_bets_is_refused(self):
        self.start_server(agencies=2)
        for agency, (seq, bets, what) in enumerate(((0, [GOOD], "seq 0"), (1, [], "count 0")), 1):
            with self.subTest(what=what):
                c = self.raw()
                self.introduce(c, agency)
                c.send(bets_frame(seq, bets))
                _, message = self.expect_error(c, harness.E_MALFORMED)
                self.assertIn(what, message)
                self.assertTrue(c.closed())
        self.assertEqual(self.bets_file(), [])

    def test_repeated_batch_is_acked_once_stored(self):
        self.start_server(agencies=1)
        c = self.raw()
        self.introduce(c)
        c.send(bets_frame(1, [GOOD, GOOD]))
        self.assertEqual(harness.decode_ack(c.read()[1]), (1, 2))
        c.send(bets_frame(1, [GOOD, GOOD]))
        kind, payload = c.read()
        self.assertEqual((kind, harness.decode_ack(payload)), (ACK, (1, 2)))
        self.assertEqual(len(self.bets_file()), 2)
        c.send(bets_frame(3, [GOOD]))
        self.expect_error(c, harness.E_GAP)
        self.assertEqual(len(self.bets_file()), 2)

    def test_reconnecting_agency_is_told_where_to_resume(self):
        self.start_server(agencies=1)
        c = self.raw()
        self.introduce(c)
        for seq in (1, 2, 3):
            c.send(bets_frame(seq, [GOOD]))
            c.read()
        c.close()
        _, welcome = self.reintroduce(1)  # the old worker may still be going away
        self.assertEqual(welcome[:2], (3, False))
        # What it holds, by bets: three rows, and their digest.
        self.assertEqual(welcome.bets_stored, 3)
        self.assertEqual(welcome.stored_digest, harness.stored_digest([harness.bet_row(*GOOD)] * 3))
        self.assertEqual((welcome.round, welcome.round_state), (1, harness.ROUND_OPEN))

    def test_out_of_order_messages(self):
        self.start_server(agencies=2)
        c = self.raw()
        c.send(bets_frame(1, [GOOD]))
        self.expect_error(c, harness.E_ORDER)
        c.send(frame(FINISHED))
        self.expect_error(c, harness.E_ORDER)
        self.introduce(c)
        c.send(frame(WINNERS_QUERY))
        self.expect_error(c, harness.E_ORDER)
        c.send(hello(1))
        self.expect_error(c, harness.E_ORDER)
        c.send(harness.welcome())
        self.expect_error(c, harness.E_ORDER)
        c.send(frame(FINISHED))
        self.assertEqual(c.read()[0], FINISHED_ACK)
        c.send(bets_frame(1, [GOOD]))
        self.expect_error(c, harness.E_ORDER)
        self.assertEqual(self.bets_file(), [])

    def test_agency_outside_range(self):
        self.start_server(agencies=2)
        for agency in (0, 3, 0xFFFFFFFF):
            c = self.raw()
            c.send(hello(agency))
            self.expect_error(c, harness.E_BAD_AGENCY, closes=True)

    def test_two_connections_for_one_agency(self):
        self.start_server(agencies=2)
        first = self.raw()
        self.introduce(first, 2)
        second = self.raw()
        second.send(hello(2))
        self.expect_error(second, harness.E_BUSY, closes=True)
        # The first one is unaffected.
        first.send(bets_frame(1, [GOOD]))
        self.assertEqual(first.read()[0], ACK)

    def test_stalled_frame_is_dropped_after_read_timeout(self):
        self.start_server(agencies=1, extra=("--read-timeout", "1s"))
        c = self.raw()
        c.send(hello(1)[:3])
        start = time.monotonic()
        self.expect_error(c, harness.E_TIMEOUT, closes=True)
        self.assertGreater(time.monotonic() - start, 0.8)
        self.assertLess(time.monotonic() - start, 10)

    def test_malformed_payload(self):
        self.start_server(agencies=1)
        c = self.raw()
        self.introduce(c)
        truncated = bets_frame(1, [GOOD])
        body = truncated[5:-3]  # cut the last bet short
        c.send(frame(harness.BETS, body))
        self.expect_error(c, harness.E_MALFORMED, closes=True)
        self.assertEqual(self.bets_file(), [])

    def test_echo_before_hello(self):
        self.start_server(agencies=1)
        c = self.raw()
        c.send(frame(ECHO, "¿hola, mundo?".encode()))
        self.assertEqual(c.read(), (ECHO_REPLY, "¿hola, mundo?".encode()))

    def test_winners_in_order_only_to_their_agency(self):
        self.start_server(agencies=2)
        one, two = self.raw(), self.raw()
        self.introduce(one, 1)
        self.introduce(two, 2)
        one.send(bets_frame(1, [GOOD, ("B", "C", "555", "1990-01-01", 7574)]))
        two.send(bets_frame(1, [("D", "E", "777", "1990-01-01", 7574)]))
        one.read(), two.read()
        for c in (one, two):
            c.send(frame(FINISHED) + frame(WINNERS_QUERY))
            self.assertEqual(c.read()[0], FINISHED_ACK)
        kind, payload = one.read()
        self.assertEqual((kind, harness.decode_winners(payload)), (WINNERS, (True, ["12345678", "555"])))
        kind, payload = two.read()
        self.assertEqual((kind, harness.decode_winners(payload)), (WINNERS, (True, ["777"])))


if __name__ == "__main__":
    unittest.main(verbosity=2)
