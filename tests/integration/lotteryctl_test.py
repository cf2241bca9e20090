"""lotteryctl against a running server: status through a round, --json,
close (as SIGUSR2), open refused while the round is not drawn, the control
socket's mode and credentials check, and that neither a stalled control
client nor garbage on the socket disturbs the lottery."""
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import harness  # noqa: E402
from harness import make_bets  # noqa: E402

CTL = os.environ.get("LOTTERY_CTL", "build/src/lotteryctl")
EXIT_NOPERM = 77
EXIT_UNAVAILABLE = 69
EXIT_USAGE = 64
# The server's default socket depends on RUNTIME_DIRECTORY: keep it out.
os.environ.pop("RUNTIME_DIRECTORY", None)
os.environ.pop("SERVER_CONTROL_SOCKET", None)


def as_nobody():
    """A command prefix that runs as the user nobody, or None."""
    if os.getuid() != 0:
        return None
    setpriv = shutil.which("setpriv")
    if setpriv and subprocess.run([setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                   "true"], capture_output=True).returncode == 0:
        return [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    return None


class LotteryctlTest(harness.LotteryTest):

    def socket_path(self):
        return self.path("bets.csv.control")

    def ctl(self, *args, prefix=(), env=None, timeout=20):
        full_env = dict(os.environ)
        full_env.update(env or {})
        return subprocess.run([*prefix, CTL, "--socket", self.socket_path(), *args],
                              capture_output=True, text=True, timeout=timeout, env=full_env)

    def status(self):
        r = self.ctl("--json", "status")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return json.loads(r.stdout)

    def test_status_through_a_round_in_text_and_json(self):
        self.start_server(agencies=2)
        before = self.status()
        self.assertEqual(before["ok"], True)
        self.assertEqual(before["state"], "open")
        self.assertEqual((before["agencies"], before["finished"], before["bets"]), (2, 0, 0))
        self.assertEqual(before["storage_path"], os.path.realpath(self.path("bets.csv")))
        text = self.ctl("status")
        self.assertEqual(text.returncode, 0, text.stderr)
        self.assertIn("state: open\n", text.stdout)
        self.assertIn("agencies: 2 configured, 0 connected, 0 finished\n", text.stdout)
        sent = {a: make_bets(a, 40, winners=a) for a in (1, 2)}
        procs = [self.start_agency(a, self.agency_file(a, b), batch=7) for a, b in sent.items()]
        for p in procs:
            self.assertEqual(p.wait(60), 0, p.log())
        after = self.status()
        self.assertEqual(after["state"], "drawn")
        self.assertEqual((after["finished"], after["bets"]), (2, 80))
        self.assertEqual(after["round"], before["round"])
        self.assertEqual(after["current_round_winners"], 3)
        rounds = self.ctl("--json", "rounds")
        self.assertEqual(rounds.returncode, 0, rounds.stderr)
        last = json.loads(rounds.stdout)["rounds"][-1]
        self.assertEqual((last["round"], last["state"], last["bets"], last["winners"]),
                         (after["round"], "drawn", 80, 3))

    def test_close_closes_betting_like_sigusr2(self):
        self.start_server(agencies=2)
        first = self.start_agency(1, self.agency_file(1, make_bets(1, 30, winners=1)))
        self.wait_log(self.server, lambda es: any(
            e.action == "agency_finished" and e.fields.get("agency") == "1" for e in es),
            what="agency 1's FINISHED")
        r = self.ctl("close")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(first.wait(30), 0, first.log())
        closed = [e for e in self.server.entries() if e.action == "betting_closed"]
        self.assertEqual(closed[0].fields["reason"], "operator (lotteryctl close)")
        late = self.start_agency(2, self.agency_file(2, make_bets(2, 10)))
        self.assertEqual(late.wait(30), EXIT_NOPERM, late.log())
        self.assertEqual(self.status()["state"], "drawn")

    def test_open_is_refused_by_the_server_while_the_round_is_not_drawn(self):
        self.start_server(agencies=2)
        r = self.ctl("open")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("round", r.stderr)
        self.assertIn("is open, not drawn; the next round can be opened after the draw", r.stderr)
        j = self.ctl("--json", "open")
        self.assertEqual(j.returncode, 1)
        reply = json.loads(j.stdout)
        self.assertEqual(reply["ok"], False)
        self.assertIn("not drawn", reply["error"])
        self.wait_log(self.server, lambda es: any(
            e.action == "control" and e.result == "fail" and e.fields.get("command") == "open"
            for e in es), what="the refused open")

    def test_the_socket_is_0600_and_goes_with_a_clean_stop(self):
        self.start_server(agencies=1)
        mode = os.stat(self.socket_path()).st_mode
        self.assertTrue(stat.S_ISSOCK(mode))
        self.assertEqual(stat.S_IMODE(mode), 0o600)
        self.server.signal(15)
        self.assertEqual(self.server.wait(30), 0, self.server.log())
        self.assertFalse(os.path.exists(self.socket_path()))
        r = self.ctl("status")
        self.assertEqual(r.returncode, EXIT_UNAVAILABLE, r.stderr)

    def test_a_stale_socket_is_replaced_and_a_live_one_refused(self):
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(self.socket_path())
        stale.close()  # a file nobody listens on, like a killed server's
        self.start_server(agencies=1)
        self.assertEqual(self.status()["state"], "open")
        other = harness.Proc([harness.SERVER, "--address", "127.0.0.1", "--port",
                              str(harness.free_port()), "--agencies", "1",
                              "--storage", self.path("other.csv"),
                              "--control-socket", self.socket_path()], self.dir, "other")
        self.procs.append(other)
        self.assertEqual(other.wait(30), 78, other.log())
        self.assertIn("another server listens on", other.log())

    def test_another_uid_is_refused_and_logged(self):
        prefix = as_nobody()
        if prefix is None:
            self.skipTest("cannot run a command as nobody (not root, or no setpriv)")
        self.start_server(agencies=1)
        # The socket file is 0600: nobody cannot even connect.
        r = self.ctl("status", prefix=prefix)
        self.assertEqual(r.returncode, EXIT_NOPERM, r.stdout + r.stderr)
        # With the file opened up, the server's own check refuses and logs.
        os.chmod(self.socket_path(), 0o666)
        os.chmod(self.dir, 0o755)
        r = self.ctl("status", prefix=prefix)
        self.assertEqual(r.returncode, EXIT_NOPERM, r.stdout + r.stderr)
        self.assertIn("permission denied", r.stderr)
        self.wait_log(self.server, lambda es: any(
            e.action == "control" and e.result == "fail" and "permission denied" in e.raw
            for e in es), what="the refusal")

    def test_a_stalled_control_client_does_not_stop_a_round(self):
        self.start_server(agencies=2)
        stalled = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(stalled.close)
        stalled.connect(self.socket_path())  # and says nothing
        sent = {a: make_bets(a, 30, winners=1) for a in (1, 2)}
        procs = [self.start_agency(a, self.agency_file(a, b)) for a, b in sent.items()]
        for p in procs:
            self.assertEqual(p.wait(60), 0, p.log())
        # Meanwhile lotteryctl is answered, and the stalled client was dropped.
        self.assertEqual(self.status()["state"], "drawn")
        stalled.settimeout(5)
        self.assertEqual(stalled.recv(100), b"")

    def test_garbage_gets_ok_0(self):
        self.start_server(agencies=1)
        for garbage in (b"\x16\x03\x01\x00\xa5hello\n", b"GET / HTTP/1.1\r\n\r\n",
                        b"x" * 1000, b"status\x00\n"):
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.settimeout(5)
            c.connect(self.socket_path())
            c.sendall(garbage)
            reply = b""
            while True:
                try:
                    chunk = c.recv(4096)
                except ConnectionResetError:  # it closed with our extra bytes unread
                    break
                if not chunk:
                    break
                reply += chunk
            c.close()
            self.assertTrue(reply.startswith(b"ok=0\nerror="), (garbage, reply))
        self.assertEqual(self.status()["state"], "open")

    def test_default_socket_and_usage(self):
        self.start_server(agencies=1)
        r = subprocess.run([CTL, "status"], capture_output=True, text=True, timeout=20,
                           env={**os.environ, "SERVER_STORAGE_PATH": self.path("bets.csv")})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("state: open", r.stdout)
        self.assertEqual(self.ctl("frobnicate").returncode, EXIT_USAGE)
        self.assertEqual(self.ctl("show").returncode, EXIT_USAGE)
        missing = subprocess.run([CTL, "--socket", self.path("nothing.sock"), "status"],
                                 capture_output=True, text=True, timeout=20)
        self.assertEqual(missing.returncode, EXIT_UNAVAILABLE)


if __name__ == "__main__":
    unittest.main(verbosity=2)
