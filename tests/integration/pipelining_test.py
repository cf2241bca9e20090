"""Pipelined batches (batch.window): the agency keeps several BETS frames in
flight, takes acks in order, sends again after a reconnect only what the
server does not hold, and renumbers the batches sent behind a refused one.

A stand-in server on 127.0.0.1 speaks docs/PROTOCOL.md with the real server's
sequence rules, so each test can hold replies back, refuse a batch or cut the
connection at an exact frame."""
import csv
import os
import re
import select
import socket
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import harness  # noqa: E402
from harness import make_bets  # noqa: E402


def decode_bets(payload):
    seq, count, rows = harness.decode_bets(payload)
    return seq, count, [row[2] for row in rows]


class StandInServer:
    """One agency's server. `hold` BETS frames of the first connection are
    read before any reply goes out; `refuse` is a document whose batch gets
    INVALID_BET; after `cut_after` BETS frames of the first connection it
    stores that frame, does not answer it, and closes. `phantom` bets are
    said to be stored besides the agency's from the second connection on
    (another process sent them meanwhile)."""

    def __init__(self, test, hold=0, refuse=None, cut_after=None, probe=False, phantom=0):
        self.phantom = phantom
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        test.addCleanup(self.listener.close)
        self.port = self.listener.getsockname()[1]
        self.hold, self.refuse, self.cut_after = hold, refuse, cut_after
        self.last_seq = 0
        self.stored = []          # documents in the order stored
        self.connections = []     # per connection: list of (type, seq) received
        self.max_unanswered = 0
        self.finished = False
        # probe: before each reply, wait a little and note whether the next
        # frame is already there (the agency sent ahead of the ack).
        self.probe, self.probed, self.sent_ahead = probe, 0, 0
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            conn.settimeout(20)
            client = harness.RawClient.__new__(harness.RawClient)
            client.sock, client.buf = conn, b""
            try:
                self.converse(conn, client, first=not self.connections)
            except (EOFError, OSError):
                pass
            conn.close()

    def reply_bets(self, payload):
        seq, count, docs = decode_bets(payload)
        if seq <= self.last_seq:
            return harness.frame(harness.ACK, struct.pack(">QH", seq, count))
        if seq != self.last_seq + 1:
            return harness.frame(harness.ERROR, struct.pack(">HI", harness.E_GAP, 0xFFFFFFFF) +
                                 harness.s16(f"batch {seq} after {self.last_seq}"))
        if self.refuse in docs:
            return harness.frame(harness.ERROR, struct.pack(">HI", harness.E_INVALID_BET,
                                                            docs.index(self.refuse)) +
                                 harness.s16("document: refused by the stand-in"))
        self.last_seq = seq
        self.stored += docs
        return harness.frame(harness.ACK, struct.pack(">QH", seq, count))

    def converse(self, conn, client, first):
        seen = []
        self.connections.append(seen)
        held = []
        bets_frames = 0
        while True:
            kind, payload = client.read()
            if kind == harness.BETS:
                bets_frames += 1
                seen.append((kind, struct.unpack_from(">Q", payload, 0)[0]))
                reply = self.reply_bets(payload)
                if self.probe:
                    time.sleep(0.03)
                    self.probed += 1
                    if client.buf or select.select([conn], [], [], 0)[0]:
                        self.sent_ahead += 1
                if first and self.cut_after is not None and bets_frames == self.cut_after:
                    return  # stored (maybe), never answered: the connection breaks
                held.append(reply)
                self.max_unanswered = max(self.max_unanswered, len(held))
                if first and bets_frames < self.hold:
                    continue
                conn.sendall(b"".join(held))
                held = []
                continue
            seen.append((kind, None))
            if held:
                conn.sendall(b"".join(held))
                held = []
            if kind == harness.HELLO:
                extra = 0 if first else self.phantom
                conn.sendall(harness.welcome(self.last_seq, self.finished,
                                             len(self.stored) + extra))
            elif kind == harness.FINISHED:
                self.finished = True
                conn.sendall(harness.frame(harness.FINISHED_ACK, struct.pack(">Q", len(self.stored))))
            elif kind == harness.WINNERS_QUERY:
                conn.sendall(harness.frame(harness.WINNERS, struct.pack(">BH", 1, 0)))


class PipeliningTest(harness.LotteryTest):

    def run_agency(self, server, bets, window, batch=10):
        self.port = server.port
        return self.start_agency(1, self.agency_file(1, bets), batch=batch,
                                 extra=["--window", str(window)])

    def test_the_window_fills_before_the_first_ack_and_acks_retire_in_order(self):
        bets = make_bets(1, 200)
        server = StandInServer(self, hold=6)
        p = self.run_agency(server, bets, window=6)
        self.assertEqual(p.wait(30), 0, p.log())
        # Six batches were on the wire before any reply.
        self.assertEqual(server.max_unanswered, 6)
        self.assertEqual(server.stored, [b[2] for b in bets])
        seqs = [seq for kind, seq in server.connections[0] if kind == harness.BETS]
        self.assertEqual(seqs, list(range(1, 21)))
        summary = [e for e in p.entries() if e.action == "batches_summary"][0]
        self.assertEqual(summary.fields["batches"], "20")
        self.assertEqual(summary.fields["window"], "6")

    def test_window_1_waits_for_every_ack(self):
        bets = make_bets(1, 50)
        server = StandInServer(self, probe=True)
        p = self.run_agency(server, bets, window=1)
        self.assertEqual(p.wait(30), 0, p.log())
        self.assertEqual(server.stored, [b[2] for b in bets])
        self.assertEqual(server.probed, 5)
        self.assertEqual(server.sent_ahead, 0)

    def test_a_window_sends_ahead_without_waiting(self):
        bets = make_bets(1, 50)
        server = StandInServer(self, probe=True)
        p = self.run_agency(server, bets, window=3)
        self.assertEqual(p.wait(30), 0, p.log())
        self.assertEqual(server.stored, [b[2] for b in bets])
        self.assertGreater(server.sent_ahead, 0)

    def test_a_refused_batch_is_skipped_and_the_ones_behind_it_are_renumbered(self):
        bets = make_bets(1, 100)
        refused = bets[35][2]  # in batch 4 of 10
        server = StandInServer(self, hold=8, refuse=refused)
        p = self.run_agency(server, bets, window=8)
        self.assertEqual(p.wait(30), 65, p.log())
        self.assertEqual(server.stored, [b[2] for b in bets[:30] + bets[40:]])
        # The batches sent behind the refused one (5 and up) got SEQUENCE_GAP
        # and came again one number lower: the server's sequence has no hole.
        self.assertEqual(server.last_seq, 9)
        seqs = [seq for kind, seq in server.connections[0] if kind == harness.BETS]
        self.assertEqual(seqs[:8], list(range(1, 9)))
        # Batches go out in groups (BetSender::kSendBytes): 1..8 filled the
        # window; 9 and 10 were built after the refusal and went out with
        # the renumbered ones, as 8 and 9.
        self.assertEqual(seqs[8:], list(range(4, 10)))
        self.assertEqual(len(server.connections), 1)
        self.assertIn("the server rejected 10 bets", p.log())

    def test_frames_go_out_in_groups_with_one_write_each(self):
        why = harness.strace_works()
        if why:
            self.skipTest(why)
        bets = make_bets(1, 2000)
        server = StandInServer(self)
        self.port = server.port
        trace = self.path("agency.strace")
        argv = ["strace", "-f", "-e", "trace=sendmsg,sendto,write", "-o", trace, harness.AGENCY,
                "--id", "1", "--server", f"127.0.0.1:{self.port}", "--batch", "10",
                "--window", "64", "--dataset", self.agency_file(1, bets)]
        p = harness.Proc(argv, self.dir, "agency-1")
        self.procs.append(p)
        self.assertEqual(p.wait(60), 0, p.log())
        self.assertEqual(server.stored, [b[2] for b in bets])
        frames = [seq for kind, seq in server.connections[0] if kind == harness.BETS]
        self.assertEqual(len(frames), 200)
        # Every BETS frame left in a gathered sendmsg() with others: the
        # window filled (64), then groups of half the window as acks freed
        # room (frames of ~450 bytes: a 64 KiB group is more than the window).
        calls = [line for line in open(trace) if "sendmsg(" in line]
        self.assertLessEqual(len(calls), 200 // 16, "".join(calls[:5]))
        iov_counts = [int(m) for line in calls for m in re.findall(r"msg_iovlen=(\d+)", line)]
        self.assertEqual(sum(iov_counts), 200)

    def test_a_dataset_on_a_pipe_sends_its_batches_while_the_pipe_stays_open(self):
        # Frames are grouped for the kernel's sake, never held for the input's:
        # of 55 bets (batches of 10, far below a 64 KiB group), the five whole
        # batches reach the server while the pipe they came through is still
        # open; the last five bets go when it ends.
        fifo = self.path("bets.fifo")
        os.mkfifo(fifo)
        bets = make_bets(1, 55)
        server = StandInServer(self)
        self.port = server.port
        p = self.start_agency(1, fifo, batch=10, extra=["--window", "64"])
        with open(fifo, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\r\n")  # names with commas and quotes
            for b in bets:
                w.writerow([b[0], b[1], b[2], b[3], str(b[4])])
            f.flush()
            deadline = time.monotonic() + 20
            while len(server.stored) < 50 and time.monotonic() < deadline and p.alive():
                time.sleep(0.02)
            self.assertEqual(server.stored, [b[2] for b in bets[:50]], p.log())
        self.assertEqual(p.wait(30), 0, p.log())
        self.assertEqual(server.stored, [b[2] for b in bets])

    def test_after_a_broken_connection_only_what_the_server_lacks_is_sent_again(self):
        bets = make_bets(1, 120)
        # The 7th frame is stored but its ack never goes out; 1..6 were acked
        # after the 4th (hold) and then one by one.
        server = StandInServer(self, hold=4, cut_after=7)
        p = self.run_agency(server, bets, window=4)
        self.assertEqual(p.wait(30), 0, p.log())
        self.assertEqual(server.stored, [b[2] for b in bets])  # each once, in order
        self.assertGreaterEqual(len(server.connections), 2)
        again = [seq for kind, seq in server.connections[1] if kind == harness.BETS]
        # The new connection starts after what the server said it holds (7).
        self.assertEqual(again[0], 8)
        self.assertEqual(again, list(range(8, 13)))

    def test_a_server_holding_bets_this_process_did_not_send_stops_it_with_75(self):
        bets = make_bets(1, 120)
        server = StandInServer(self, hold=4, cut_after=7, phantom=5)
        p = self.run_agency(server, bets, window=4)
        self.assertEqual(p.wait(30), 75, p.log())
        self.assertIn("another process sends for this agency?", p.log())
        fail = [e for e in p.entries() if e.action == "resume" and e.result == "fail"]
        self.assertEqual((fail[0].fields["bets_stored"], fail[0].fields["expected"]), ("75", "70"))
        # Nothing was sent on the second connection.
        self.assertEqual([k for k, _ in server.connections[1]], [harness.HELLO])


if __name__ == "__main__":
    unittest.main(verbosity=2)
