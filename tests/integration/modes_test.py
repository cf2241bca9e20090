"""The agency's echo and bet modes, its exit codes, and both programs' CLI."""
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import harness  # noqa: E402

BET_ENV = {"NOMBRE": "Santiago Lionel", "APELLIDO": "Lorca", "DOCUMENTO": "30904465",
           "NACIMIENTO": "1999-03-17", "NUMERO": "7574"}


class ModesTest(harness.LotteryTest):

    def test_echo_mode(self):
        self.start_server(agencies=1)
        p = self.start_agency(1, mode="echo", env={"CLI_LOOP_AMOUNT": "3", "CLI_LOOP_PERIOD": "100ms"})
        self.assertEqual(p.wait(30), 0, p.log())
        got = [e.fields["msg"] for e in p.entries()
               if e.action == "receive_message" and e.result == "success"]
        self.assertEqual(got, [f"[CLIENT 1] Message N°{k}" for k in (1, 2, 3)])
        self.assertIn("action: loop_finished | result: success | client_id: 1", p.log())
        server_got = [e.fields for e in self.server.entries() if e.action == "receive_message"]
        self.assertEqual([f["msg"] for f in server_got], got)
        self.assertTrue(all(f["ip"] == "127.0.0.1" for f in server_got))
        self.assertTrue(self.server.alive())

    def test_bet_mode(self):
        self.start_server(agencies=2)
        p = self.start_agency(2, mode="bet", env=BET_ENV)
        self.assertEqual(p.wait(30), 0, p.log())
        self.assertIn("action: apuesta_enviada | result: success | dni: 30904465 | numero: 7574",
                      p.log())
        stored = [e for e in self.server.entries() if e.action == "apuesta_almacenada"]
        self.assertEqual(len(stored), 1)
        self.assertEqual(stored[0].level, "INFO")
        self.assertEqual((stored[0].fields["dni"], stored[0].fields["numero"]), ("30904465", "7574"))
        self.assertEqual(self.bets_file(),
                         [("2", "Santiago Lionel", "Lorca", "30904465", "1999-03-17", "7574")])
        # A second bet from the same agency is stored too, not taken for a repeat.
        env = dict(BET_ENV, DOCUMENTO="123", NUMERO="1")
        q = self.start_agency(2, mode="bet", env=env, name="second")
        self.assertEqual(q.wait(30), 0, q.log())
        self.assertEqual(len(self.bets_file()), 2)

    def test_invalid_bet_in_bet_mode_is_not_sent(self):
        self.start_server(agencies=1)
        p = self.start_agency(1, mode="bet", env=dict(BET_ENV, NACIMIENTO="2999-01-01"))
        self.assertEqual(p.wait(30), 65, p.log())
        self.assertIn("birthdate", p.log())
        self.assertEqual(self.bets_file(), [])

    def test_unreachable_server_exits_69(self):
        self.port = harness.free_port()  # nobody listens there
        start = time.monotonic()
        p = self.start_agency(1, self.agency_file(1, harness.make_bets(1, 3)),
                              extra=("--connect-timeout", "1s"))
        self.assertEqual(p.wait(30), 69, p.log())
        self.assertLess(time.monotonic() - start, 15)
        self.assertIn("unreachable", p.log())

    def test_missing_dataset_exits_66(self):
        self.start_server(agencies=1)
        p = self.start_agency(1, self.path("nope.csv"))
        self.assertEqual(p.wait(30), 66, p.log())

    def test_bad_dataset_lines_are_skipped_with_their_line_number(self):
        self.start_server(agencies=1)
        good = harness.make_bets(1, 4, winners=1)
        path = self.agency_file(1, good)
        with open(path, "ab") as f:
            f.write(b"only,three,columns\r\n")
            f.write(b"Ana,Paz,12345678,1990-13-01,5\r\n")
            f.write(b"Luis,Sosa,87654321,1990-01-01,77\r\n")
        p = self.start_agency(1, path)
        self.assertEqual(p.wait(30), 0, p.log())
        bad = [e for e in p.entries() if e.action == "dataset_line"]
        self.assertEqual([e.fields["line"] for e in bad], ["5", "6"])
        summary = [e for e in p.entries() if e.action == "dataset" and e.result == "success"]
        self.assertEqual(summary[0].fields["lineas_omitidas"], "2")
        self.assertEqual(len(self.bets_file()), 5)
        self.assertEqual(p.stdout().split(), [good[0][2]])

    def test_bets_rejected_by_the_server_exit_65_after_the_round(self):
        # A stand-in server that refuses every batch, as a server with stricter
        # rules than the agency's would.
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        self.addCleanup(listener.close)
        self.port = listener.getsockname()[1]
        seen = []

        def serve():
            conn, _ = listener.accept()
            conn.settimeout(20)
            client = harness.RawClient.__new__(harness.RawClient)
            client.sock, client.buf = conn, b""
            try:
                while True:
                    kind, payload = client.read()
                    seen.append(kind)
                    if kind == harness.HELLO:
                        conn.sendall(harness.welcome())
                    elif kind == harness.BETS:
                        conn.sendall(harness.frame(harness.ERROR, struct.pack(">HI", 7, 0) +
                                                   harness.s16("first_name: not on our list")))
                    elif kind == harness.FINISHED:
                        conn.sendall(harness.frame(harness.FINISHED_ACK, struct.pack(">Q", 0)))
                    elif kind == harness.WINNERS_QUERY:
                        conn.sendall(harness.frame(harness.WINNERS, struct.pack(">BH", 1, 0)))
            except (EOFError, OSError):
                conn.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        p = self.start_agency(1, self.agency_file(1, harness.make_bets(1, 5)), batch=2)
        self.assertEqual(p.wait(30), 65, p.log())
        thread.join(10)
        self.assertEqual(seen.count(harness.BETS), 3)
        self.assertIn(harness.FINISHED, seen)
        self.assertIn("INVALID_BET", p.log())
        self.assertIn("the server rejected 5 bets", p.log())

    def run_cli(self, binary, *args, env=None):
        full = dict(os.environ)
        full.update(env or {})
        return subprocess.run([binary, *args], capture_output=True, text=True, timeout=30, env=full)

    def test_help_and_version(self):
        for binary, name in ((harness.SERVER, "lottery-server"), (harness.AGENCY, "lottery-agency")):
            r = self.run_cli(binary, "--help")
            self.assertEqual(r.returncode, 0)
            self.assertIn("--config", r.stdout)
            self.assertIn("--log-level", r.stdout)
            r = self.run_cli(binary, "--version")
            self.assertEqual(r.returncode, 0)
            self.assertTrue(r.stdout.startswith(name + " "))

    def test_bad_flag_exits_64(self):
        for binary in (harness.SERVER, harness.AGENCY):
            r = self.run_cli(binary, "--no-such-flag")
            self.assertEqual(r.returncode, 64, r.stderr)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1)
            self.assertIn("--no-such-flag", r.stderr)

    def test_bad_config_exits_78_naming_key_and_file(self):
        bad = self.path("bad.toml")
        with open(bad, "w") as f:
            f.write("[server]\nprot = 1\n")
        for binary in (harness.SERVER, harness.AGENCY):
            r = self.run_cli(binary, "--config", bad)
            self.assertEqual(r.returncode, 78, r.stderr)
            lines = r.stderr.strip().splitlines()
            self.assertEqual(len(lines), 1)
            self.assertIn("server.prot", lines[0])
            self.assertIn(bad, lines[0])
            self.assertIn("action: config | result: fail", lines[0])
        r = self.run_cli(harness.SERVER, env={"SERVER_PORT": "99999"})
        self.assertEqual(r.returncode, 78)
        self.assertIn("SERVER_PORT", r.stderr)

    def test_a_listen_backlog_below_the_agencies_is_warned_about(self):
        self.start_server(agencies=5, extra=("--listen-backlog", "3"))
        warned = [e for e in self.server.entries() if e.action == "config" and e.level == "WARNING"]
        self.assertEqual(len(warned), 1, self.server.log())
        self.assertEqual((warned[0].fields["listen_backlog"], warned[0].fields["agencies"]), ("3", "5"))
        self.server.signal(signal.SIGTERM)
        self.assertEqual(self.server.wait(15), 0)
        self.start_server(agencies=5, extra=("--listen-backlog", "5"))
        self.assertFalse([e for e in self.server.entries()
                          if e.action == "config" and e.level == "WARNING"], self.server.log())

    def test_config_line_shows_the_effective_values(self):
        conf = self.path("server.toml")
        with open(conf, "w") as f:
            f.write("[server]\nlisten_backlog = 17\n[log]\nlevel = \"WARNING\"\n")
        self.start_server(agencies=2, extra=("--config", conf, "--log-level", "INFO"),
                          env={"SERVER_LISTEN_BACKLOG": "21"})
        line = [e for e in self.server.entries() if e.action == "config"][0]
        self.assertEqual(line.fields["port"], str(self.port))
        self.assertEqual(line.fields["listen_backlog"], "21")
        self.assertEqual(line.fields["logging_level"], "INFO")
        self.assertEqual(line.fields["agencies"], "2")
        p = self.start_agency(1, mode="echo", env={"CLI_LOOP_AMOUNT": "1", "CLI_BATCH_MAXAMOUNT": "33"})
        self.assertEqual(p.wait(30), 0, p.log())
        a = [e for e in p.entries() if e.action == "config"][0]
        self.assertEqual(a.fields["client_id"], "1")
        self.assertEqual(a.fields["server_address"], f"127.0.0.1:{self.port}")
        self.assertEqual(a.fields["loop_amount"], "1")
        self.assertEqual(a.fields["batch_max_amount"], "100")  # the --batch flag wins over the variable
        self.assertEqual(a.fields["log_level"], "INFO")
        self.assertIn("loop_period", a.fields)

    def test_port_taken_exits_71(self):
        self.start_server(agencies=1)
        r = self.run_cli(harness.SERVER, "--address", "127.0.0.1", "--port", str(self.port),
                         "--storage", self.path("other.csv"))
        self.assertEqual(r.returncode, 71, r.stderr)
        self.assertIn("action: listen | result: fail", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
