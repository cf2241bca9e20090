"""The agency against a server that lies about the winners: more documents
than the bets it stored (an endless WINNERS stream with last = 0), or text
that is not a document. The agency refuses the list, prints nothing, exits
76 with one ERROR line, and does not grow while it is being flooded."""
import os
import socket
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import harness  # noqa: E402
from harness import make_bets  # noqa: E402


class LyingServer:
    """Stores whatever it is sent, then answers WINNERS_QUERY with `winners`:
    a callable that writes WINNERS frames to the connection."""

    def __init__(self, test, winners):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        test.addCleanup(self.listener.close)
        self.port = self.listener.getsockname()[1]
        self.winners = winners
        self.frames_sent = 0
        self.stored = 0
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            client = harness.RawClient.__new__(harness.RawClient)
            client.sock, client.buf = conn, b""
            conn.settimeout(20)
            try:
                while True:
                    kind, payload = client.read()
                    if kind == harness.HELLO:
                        conn.sendall(harness.welcome())
                    elif kind == harness.BETS:
                        seq, count = struct.unpack_from(">QH", payload, 0)
                        self.stored += count
                        conn.sendall(harness.frame(harness.ACK, struct.pack(">QH", seq, count)))
                    elif kind == harness.FINISHED:
                        conn.sendall(harness.frame(harness.FINISHED_ACK,
                                                   struct.pack(">Q", self.stored)))
                    elif kind == harness.WINNERS_QUERY:
                        self.winners(self, conn)
            except (EOFError, OSError):
                pass
            conn.close()


def winners_frame(last, docs):
    payload = struct.pack(">BH", int(last), len(docs))
    for d in docs:
        payload += harness.s16(d)
    return harness.frame(harness.WINNERS, payload)


def endless(server, conn):
    docs = [f"{10_000_000 + i}" for i in range(200)]
    while server.frames_sent < 50_000:
        conn.sendall(winners_frame(False, docs))
        server.frames_sent += 1


def not_documents(server, conn):
    conn.sendall(winners_frame(True, ["30904465", "\x1b[31m1234", "12"]))


class HostileServerTest(harness.LotteryTest):

    def run_against(self, winners):
        server = LyingServer(self, winners)
        self.port = server.port
        start = time.monotonic()
        p = self.start_agency(1, self.agency_file(1, make_bets(1, 30, winners=2)),
                              extra=("--connect-timeout", "2s"))
        code = p.wait(60)
        return p, code, time.monotonic() - start, server

    def test_an_endless_winners_stream_is_refused_at_the_stored_count(self):
        p, code, elapsed, server = self.run_against(endless)
        self.assertEqual(code, 76, p.log())
        self.assertEqual(p.stdout(), "")
        errors = [e for e in p.entries() if e.level == "ERROR"]
        self.assertEqual(len(errors), 1, p.log())
        self.assertIn("more winners than the 30 bets it stored", errors[0].raw)
        # It stopped reading at once: one frame of 200 documents is enough.
        self.assertLess(server.frames_sent, 1000)
        self.assertLess(elapsed, 20)

    def test_a_winner_that_is_not_a_document_is_refused(self):
        p, code, _, _ = self.run_against(not_documents)
        self.assertEqual(code, 76, p.log())
        self.assertEqual(p.stdout(), "")   # nothing of the list reaches stdout
        errors = [e for e in p.entries() if e.level == "ERROR"]
        self.assertEqual(len(errors), 1, p.log())
        self.assertIn("not a document of 1 to 10 digits", errors[0].raw)
        self.assertNotIn("\x1b", p.log())


class MuteAndGarbageServerTest(harness.LotteryTest):
    """A peer that accepts and never answers, and one that answers garbage:
    the agency gives up or names the breach, in bounded time."""

    def listen(self, answer):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        self.addCleanup(listener.close)
        self.port = listener.getsockname()[1]
        held = []
        self.addCleanup(lambda: [c.close() for c in held])

        def serve():
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                held.append(conn)
                answer(conn)
        threading.Thread(target=serve, daemon=True).start()

    def test_echo_mode_gives_up_on_a_mute_peer_after_connect_timeout(self):
        self.listen(lambda conn: None)
        start = time.monotonic()
        p = self.start_agency(1, mode="echo", extra=(
            "--loop-amount", "1", "--connect-timeout", "3s", "--read-timeout", "1s"))
        code = p.wait(60)
        self.assertEqual(code, 69, p.log())
        self.assertLess(time.monotonic() - start, 15)
        self.assertIn("the server did not answer for", p.log())

    def test_an_http_answer_is_a_broken_protocol_not_a_lost_connection(self):
        self.listen(lambda conn: conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n"))
        for mode, extra in ((None, ("--dataset", self.agency_file(1, make_bets(1, 5)))),
                            ("echo", ("--loop-amount", "1"))):
            p = self.start_agency(1, mode=mode, extra=("--connect-timeout", "3s", *extra))
            self.assertEqual(p.wait(30), 76, p.log())
            self.assertIn("the server broke the protocol: its first byte 0x48 is no message type",
                          p.log())
            self.assertNotIn("too_large", p.log())


if __name__ == "__main__":
    unittest.main(verbosity=2)
