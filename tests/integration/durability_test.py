"""Durable acks: with storage.sync = "always" a batch is on disk (fdatasync)
before its ack leaves the worker, syncs are shared between workers, and
"never" makes no sync at all and says so at start."""
import collections
import os
import re
import signal
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import harness  # noqa: E402
from harness import make_bets  # noqa: E402


class DurabilityTest(harness.LotteryTest):

    def sync_stats(self):
        line = [e for e in self.server.entries() if e.action == "storage_sync"]
        self.assertEqual(len(line), 1, self.server.log())
        return line[0].fields

    def stop_server(self):
        self.server.signal(signal.SIGTERM)
        self.assertEqual(self.server.wait(15), 0, self.server.log())

    def test_group_commit_makes_every_batch_durable_with_fewer_syncs(self):
        self.start_server(agencies=4)
        per_agency = {a: make_bets(a, 1500, winners=1) for a in range(1, 5)}
        agencies = [self.start_agency(a, self.agency_file(a, bets), batch=25)
                    for a, bets in per_agency.items()]
        for a in agencies:
            self.assertEqual(a.wait(60), 0, a.log())
        self.assertEqual(collections.Counter(self.bets_file()), self.expected_rows(per_agency))
        self.stop_server()
        stats = self.sync_stats()
        batches = sum(1 for e in self.server.entries()
                      if e.action == "apuesta_recibida" and e.result == "success")
        self.assertEqual(batches, 4 * 1500 // 25)
        self.assertEqual(stats["sync"], "always")
        syncs, covered = int(stats["fdatasync_calls"]), int(stats["covered_by_group_commit"])
        self.assertGreaterEqual(syncs, 1)
        # Pipelined batches are acked after one sync per group: fewer syncs
        # than batches. Every ack waited for one (the crash suite checks the
        # order); at the end every byte is durable.
        self.assertLess(syncs, batches)
        self.assertGreaterEqual(syncs + covered, 1)
        self.assertEqual(int(stats["durable_bytes"]), os.path.getsize(self.path("bets.csv")))

    def test_never_syncs_nothing_and_warns(self):
        self.start_server(agencies=1, extra=["--storage-sync", "never"])
        warning = [e for e in self.server.entries() if e.action == "storage" and e.level == "WARNING"]
        self.assertEqual(len(warning), 1, self.server.log())
        self.assertIn("can be lost in a crash", warning[0].raw)
        agency = self.start_agency(1, self.agency_file(1, make_bets(1, 300, winners=1)), batch=50)
        self.assertEqual(agency.wait(60), 0, agency.log())
        self.stop_server()
        stats = self.sync_stats()
        self.assertEqual((stats["sync"], stats["fdatasync_calls"]), ("never", "0"))

    def test_a_torn_last_line_is_cut_at_start(self):
        # What a crash in the middle of an append leaves: whole rows from
        # before, then part of a row.
        old = [("1", "Ana", "Paz", "30000001", "1990-01-01", "12"),
               ("2", "Eva", "Sol", "30000002", "1991-02-02", "13")]
        whole = "".join(",".join(r) + "\r\n" for r in old).encode()
        torn = b"1,Luz,Mar,3000000"
        with open(self.path("bets.csv"), "wb") as f:
            f.write(whole + torn)
        self.start_server(agencies=2)
        cut = [e for e in self.server.entries() if e.action == "recovery" and "path" in e.fields]
        self.assertEqual(len(cut), 1, self.server.log())
        self.assertEqual(cut[0].fields["bytes_cut"], str(len(torn)))
        self.assertEqual(cut[0].level, "WARNING")
        self.assertEqual(os.path.getsize(self.path("bets.csv")), len(whole))
        sent = {a: make_bets(a, 100, winners=1) for a in (1, 2)}
        agencies = [self.start_agency(a, self.agency_file(a, b)) for a, b in sent.items()]
        for a in agencies:
            self.assertEqual(a.wait(60), 0, a.log())
        expected = self.expected_rows(sent)
        for r in old:
            expected[r] += 1
        self.assertEqual(collections.Counter(self.bets_file()), expected)

    def test_a_clean_file_is_left_alone(self):
        with open(self.path("bets.csv"), "wb") as f:
            f.write(b"1,Ana,Paz,30000001,1990-01-01,12\r\n")
        self.start_server(agencies=1)
        self.assertFalse([e for e in self.server.entries()
                          if e.action == "recovery" and "path" in e.fields])
        self.assertEqual(os.path.getsize(self.path("bets.csv")), 34)

    def trace_one_agency(self, extra):
        reason = harness.strace_works()
        if reason:
            self.skipTest(reason)
        trace = self.path("trace")
        self.port = harness.free_port()
        argv = ["strace", "-f", "-qq", "-o", trace, "-e", "trace=pwrite64,fdatasync,send,sendto",
                harness.SERVER, "--address", "127.0.0.1", "--port", str(self.port), "--agencies",
                "1", "--storage", self.path("bets.csv"), *extra]
        proc = harness.Proc(argv, self.dir, "server")
        self.procs.append(proc)
        self.server = proc
        self.wait_log(proc, lambda es: any(e.action == "listen" for e in es), what="listen")
        agency = self.start_agency(1, self.agency_file(1, make_bets(1, 200, winners=1)), batch=40)
        self.assertEqual(agency.wait(60), 0, agency.log())
        server_pid = harness.children_of(proc.pid)[0]
        os.kill(server_pid, signal.SIGTERM)
        self.assertEqual(proc.wait(30), 0, proc.log())
        by_pid = collections.defaultdict(list)
        with open(trace) as f:
            for line in f:
                m = re.match(r"^(\d+)\s+(pwrite64|fdatasync|sendto|send)\((\d+)", line)
                if m and " = -1 " not in line:
                    by_pid[m.group(1)].append((m.group(2), m.group(3)))
        # The worker: the process that wrote the batches (the parent writes
        # only the journal's round-start record).
        worker = max(by_pid.values(), key=lambda calls: sum(c == "pwrite64" for c, _ in calls))
        writes = [fd for c, fd in worker if c == "pwrite64"]
        data_fd, journal_fd = writes[0], writes[1]
        # Keep the bets file's and the journal's writes; a later pwrite on a
        # third descriptor is the draw publishing winners in a memfd.
        calls = []
        for c, fd in worker:
            if c == "pwrite64" and fd not in (data_fd, journal_fd):
                continue
            calls.append("pwrite64" if c == "pwrite64" and fd == data_fd else
                         "journal" if c == "pwrite64" else c)
        return calls

    def test_the_ack_leaves_only_after_fdatasync(self):
        calls = self.trace_one_agency([])
        # 5 batches, stored by one to five appends (a worker stores the
        # batches it has buffered with one write).
        self.assertIn(calls.count("pwrite64"), range(1, 6), calls)
        # One record per append, one for FINISHED and one when the draw
        # completes the round.
        self.assertEqual(calls.count("journal"), calls.count("pwrite64") + 2, calls)
        # After each write of a batch: a sync, and only then the next send
        # (the ack).
        for i, call in enumerate(calls):
            if call == "pwrite64":
                rest = calls[i + 1:]
                self.assertIn("fdatasync", rest, calls)
                sends = [j for j, c in enumerate(rest) if c.startswith("send")]
                self.assertTrue(sends, calls)
                self.assertLess(rest.index("fdatasync"), sends[0], calls)

    def test_never_sends_acks_without_syncing(self):
        calls = self.trace_one_agency(["--storage-sync", "never"])
        self.assertIn(calls.count("pwrite64"), range(1, 6), calls)
        # One record per append, one for FINISHED and one when the draw
        # completes the round.
        self.assertEqual(calls.count("journal"), calls.count("pwrite64") + 2, calls)
        self.assertNotIn("fdatasync", calls)


if __name__ == "__main__":
    unittest.main(verbosity=2)
