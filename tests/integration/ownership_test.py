"""One server owns its bets file, and a failed start touches nothing.

A second server on a live bets file is refused before it opens anything; a
start that fails before recovery leaves the data directory as it was; a
server restarted after its parent was SIGKILLed while workers ran waits for
them, so processes of two instances never write the file."""
import os
import signal
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import harness  # noqa: E402
from harness import make_bets  # noqa: E402


def snapshot(paths):
    out = {}
    for p in paths:
        with open(p, "rb") as f:
            out[p] = f.read()
    return out


def gone(pid):
    """Dead or a zombie (a reparented worker not reaped yet writes nothing)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


class OwnershipTest(harness.LotteryTest):

    def run_server(self, *args, timeout=20):
        return self.run_cli(harness.SERVER, "--address", "127.0.0.1", *args, timeout=timeout)

    def run_cli(self, *argv, timeout=20):
        import subprocess
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, cwd=self.dir)

    def test_a_second_server_on_the_same_bets_file_is_refused_untouched(self):
        server = self.start_server(agencies=2)
        first = make_bets(1, 150, winners=2)
        second = make_bets(2, 90, winners=1)
        a1 = self.start_agency(1, self.agency_file(1, first))
        self.wait_log(server, lambda es: self.count(es, "agency_finished") == 1)
        files = [self.path("bets.csv"), self.path("bets.csv.journal"),
                 self.path("bets.csv.lock")]
        before = snapshot(files)
        r = self.run_server("--port", str(harness.free_port()), "--agencies", "2",
                            "--storage", self.path("bets.csv"))
        self.assertEqual(r.returncode, 75, r.stderr)
        errors = [e for e in harness.parse_log(r.stderr) if e.level == "ERROR"]
        self.assertEqual(len(errors), 1, r.stderr)
        self.assertEqual(errors[0].action, "storage_lock")
        self.assertIn(self.path("bets.csv"), errors[0].raw)
        self.assertIn(f"pid {server.pid}", errors[0].raw)
        self.assertEqual(snapshot(files), before)
        # The first server's round goes on undisturbed.
        a2 = self.start_agency(2, self.agency_file(2, second))
        self.assertEqual(a1.wait(60), 0, a1.log())
        self.assertEqual(a2.wait(60), 0, a2.log())
        self.assertEqual(len(a1.stdout().split()), 2)
        self.assertEqual(len(a2.stdout().split()), 1)
        self.assertEqual(sorted(self.bets_file()), sorted(
            self.expected_rows({1: first, 2: second}).elements()))

    def existing_files(self, mode, uid=None):
        for name in ("bets.csv", "bets.csv.journal"):
            path = self.path(name)
            with open(path, "wb"):
                pass
            os.chmod(path, mode)
            if uid is not None:
                os.chown(path, uid, -1)

    def test_files_another_user_owns_or_others_may_write_are_refused(self):
        cases = [("writable by every user", 0o666, None), ("writable by its group", 0o660, None)]
        if os.geteuid() == 0:
            cases.append(("owned by uid 65534", 0o640, 65534))
        for why, mode, uid in cases:
            with self.subTest(why=why):
                self.existing_files(mode, uid)
                r = self.run_server("--port", str(harness.free_port()), "--agencies", "1",
                                    "--storage", self.path("bets.csv"))
                self.assertEqual(r.returncode, 73, r.stderr)
                self.assertIn(why, r.stderr)
                self.assertEqual(os.stat(self.path("bets.csv")).st_mode & 0o777, mode)
                self.assertFalse(os.path.exists(self.path("bets.csv.lock")))

    def test_files_others_may_read_are_narrowed_to_0640_with_a_warning(self):
        self.existing_files(0o644)
        self.start_server(agencies=1)
        for name in ("bets.csv", "bets.csv.journal"):
            self.assertEqual(os.stat(self.path(name)).st_mode & 0o777, 0o640, name)
        narrowed = [e for e in self.server.entries() if e.action == "storage" and "old_mode" in e.fields]
        self.assertEqual([e.fields["old_mode"] for e in narrowed], ["0644", "0644"], self.server.log())

    def test_a_failed_bind_creates_no_file(self):
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        self.addCleanup(blocker.close)
        port = blocker.getsockname()[1]
        r = self.run_server("--port", str(port), "--storage", self.path("fresh.csv"))
        self.assertEqual(r.returncode, 71, r.stderr)
        self.assertEqual(os.listdir(self.dir), [])
        # And a real start afterwards begins a new round, not a resumed one.
        self.start_server(agencies=1, extra=("--storage", self.path("fresh.csv")))
        rec = [e for e in self.server.entries() if e.action == "recovery"]
        self.assertEqual(rec[0].fields["round"], "new", self.server.log())

    def test_a_failed_start_after_a_draw_leaves_the_files_as_they_were(self):
        self.start_server(agencies=1)
        a = self.start_agency(1, self.agency_file(1, make_bets(1, 40, winners=1)))
        self.assertEqual(a.wait(60), 0, a.log())
        self.server.signal(signal.SIGTERM)
        self.assertEqual(self.server.wait(30), 0)
        files = [self.path("bets.csv"), self.path("bets.csv.journal")]
        before = snapshot(files)
        self.assertFalse(os.path.exists(self.path("bets.csv.lock")))
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        self.addCleanup(blocker.close)
        r = self.run_server("--port", str(blocker.getsockname()[1]), "--agencies", "1",
                            "--storage", self.path("bets.csv"))
        self.assertEqual(r.returncode, 71, r.stderr)
        self.assertNotIn("action: recovery", r.stderr)
        self.assertEqual(snapshot(files), before)
        self.assertFalse(os.path.exists(self.path("bets.csv.lock")))

    def test_a_restart_after_the_parent_was_killed_waits_for_its_workers(self):
        server = self.start_server(agencies=2)
        port = self.port
        first = make_bets(1, 120, winners=1)
        second = make_bets(2, 60, winners=2)
        a1 = self.start_agency(1, self.agency_file(1, first))
        self.wait_log(server, lambda es: self.count(es, "agency_finished") == 1)
        workers = harness.children_of(server.pid)
        self.assertTrue(workers)
        os.kill(server.pid, signal.SIGKILL)   # the parent only
        server.popen.wait()
        self.server = None
        restarted = self.start_server(agencies=2, port=port, name="restarted")
        self.wait_log(restarted, lambda es: self.count(es, "storage_lock") == 1)
        # By the time it owns the data, every worker of the first instance is gone.
        self.assertTrue(all(gone(pid) for pid in workers), workers)
        a2 = self.start_agency(2, self.agency_file(2, second))
        self.assertEqual(a1.wait(90), 0, a1.log())
        self.assertEqual(a2.wait(90), 0, a2.log())
        self.assertEqual(len(a1.stdout().split()), 1, a1.log())
        self.assertEqual(len(a2.stdout().split()), 2, a2.log())
        self.assertEqual(sorted(self.bets_file()), sorted(
            self.expected_rows({1: first, 2: second}).elements()))


if __name__ == "__main__":
    unittest.main(verbosity=2)
