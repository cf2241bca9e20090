"""Mutual TLS, attack by attack (docs/SECURITY.md): only agency K's
certificate can bet as K and learn K's winners; strangers, forgeries, expired
and revoked certificates, plaintext peers and fake servers are refused with a
clear log line, and the round of the legitimate agencies completes with every
bet stored once."""
import collections
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import harness  # noqa: E402
from harness import (ECHO, ECHO_REPLY, ERROR, WELCOME, decode_error, decode_welcome,  # noqa: E402
                     frame, hello, make_bets, s16)
from protocol import (E_BUSY, E_NOT_AUTHORIZED, E_REPLACED, E_TIMEOUT,  # noqa: E402
                      E_TLS_REQUIRED, RawClient)  # noqa: E402

EXIT_NOPERM, EXIT_PROTOCOL, EXIT_CONFIG = 77, 76, 78


class TlsClient(RawClient):
    """A raw-protocol peer over TLS, presenting `name`.pem from `certs`."""

    def __init__(self, port, certs, name=None, ca=None, timeout=10.0):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_verify_locations(ca or os.path.join(certs, "ca.pem"))
        if name:
            ctx.load_cert_chain(os.path.join(certs, f"{name}.pem"), os.path.join(certs, f"{name}.key"))
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        self.buf = b""


class TlsTest(harness.LotteryTest):
    TLS = True

    def round(self, agencies, extra_server=(), expect=None):
        """Starts a TLS server and returns the files of a round of `agencies`."""
        self.start_server(agencies=len(agencies), extra=list(extra_server))
        per_agency = {a: make_bets(a, 300, winners=a) for a in agencies}
        files = {a: self.agency_file(a, b) for a, b in per_agency.items()}
        return per_agency, files

    def finish_round(self, per_agency, files, skip=()):
        procs = {a: self.start_agency(a, files[a], batch=50) for a in per_agency if a not in skip}
        for a, p in procs.items():
            self.assertEqual(p.wait(60), 0, p.log())
            self.assertEqual(sorted(p.stdout().split()),
                             sorted(b[2] for b in per_agency[a] if b[4] == 7574), p.log())
        self.assertEqual(collections.Counter(self.bets_file()), self.expected_rows(per_agency))

    def test_a_round_over_mutual_tls_gives_each_agency_its_winners(self):
        per_agency, files = self.round([1, 2, 3])
        self.finish_round(per_agency, files)
        entries = self.server.entries()
        subjects = sorted(e.fields["subject"] for e in entries
                          if e.action == "tls_handshake" and e.result == "success")
        self.assertEqual(subjects, ["/CN=agency-1", "/CN=agency-2", "/CN=agency-3"])
        self.assertFalse([e for e in entries if e.action == "tls" and e.level == "WARNING"])

    def test_a_certificate_cannot_say_hello_as_another_agency(self):
        per_agency, files = self.round([1, 2])
        # A peer holding agency 2's certificate claims agency 1.
        c = TlsClient(self.port, self.certs, "agency-2")
        self.addCleanup(c.close)
        c.send(hello(1))
        kind, payload = c.read()
        self.assertEqual(kind, ERROR)
        code, _, message = decode_error(payload)
        self.assertEqual(code, E_NOT_AUTHORIZED)
        self.assertIn("/CN=agency-2", message)
        self.assertTrue(c.closed())
        self.wait_log(self.server, lambda es: any(
            e.action == "protocol_error" and "NOT_AUTHORIZED" in e.raw and "/CN=agency-2" in e.raw
            for e in es), what="the refusal naming the certificate's subject")
        # The probe certificate speaks for no agency: it can ECHO, not HELLO.
        p = TlsClient(self.port, self.certs, "probe")
        self.addCleanup(p.close)
        p.send(frame(ECHO, s16("ping")))
        self.assertEqual(p.read()[0], ECHO_REPLY)
        p.send(hello(1))
        kind, payload = p.read()
        self.assertEqual(decode_error(payload)[0], E_NOT_AUTHORIZED)
        self.assertIn("speaks for no agency", decode_error(payload)[2])
        # The agency program itself refuses to start with another's certificate.
        wrong = self.start_agency(1, files[1], extra=harness.agency_tls_flags(self.certs, "agency-2"))
        self.assertEqual(wrong.wait(30), EXIT_CONFIG, wrong.log())
        self.assertIn("is agency 2's, not agency 1's", wrong.log())
        self.finish_round(per_agency, files)

    def test_a_newer_authenticated_connection_replaces_a_stale_one(self):
        per_agency, files = self.round([1, 2])
        old = TlsClient(self.port, self.certs, "agency-1")
        self.addCleanup(old.close)
        old.send(hello(1))
        self.assertEqual(old.read()[0], WELCOME)
        # The agency restarted; its old connection is half-open and silent.
        new = TlsClient(self.port, self.certs, "agency-1")
        self.addCleanup(new.close)
        new.send(hello(1))
        self.assertEqual(new.read()[0], WELCOME)
        kind, payload = old.read()
        self.assertEqual((kind, decode_error(payload)[0]), (ERROR, E_REPLACED))
        self.assertTrue(old.closed())
        entries = self.server.entries()
        self.assertTrue([e for e in entries if e.action == "agency_replaced"
                         and e.result == "in_progress" and e.fields.get("subject") == "/CN=agency-1"])
        # The agency program replaces the raw peer in turn, and the round
        # completes; the raw peer learns it was replaced.
        self.finish_round(per_agency, files)
        kind, payload = new.read()
        self.assertEqual((kind, decode_error(payload)[0]), (ERROR, E_REPLACED))

    def test_without_tls_a_claim_does_not_replace_a_connected_agency(self):
        self.start_server(agencies=1, tls=False)
        first = RawClient(self.port)
        self.addCleanup(first.close)
        first.send(hello(1))
        self.assertEqual(first.read()[0], WELCOME)
        second = RawClient(self.port)
        self.addCleanup(second.close)
        second.send(hello(1))
        kind, payload = second.read()
        self.assertEqual((kind, decode_error(payload)[0]), (ERROR, E_BUSY))
        first.send(frame(ECHO, s16("still mine")))
        self.assertEqual(first.read()[0], ECHO_REPLY)

    def test_an_agency_whose_connection_is_taken_over_stops_with_75(self):
        per_agency, files = self.round([1, 2])
        # Agency 1 sends everything and waits for the draw (agency 2 has not
        # started): then another holder of its certificate takes over.
        first = self.start_agency(1, files[1], name="first")
        self.wait_log(self.server, lambda es: any(
            e.action == "agency_finished" and e.fields.get("agency") == "1" for e in es),
            what="agency 1's FINISHED")
        other = TlsClient(self.port, self.certs, "agency-1")
        self.addCleanup(other.close)
        other.send(hello(1))
        kind, payload = other.read()
        self.assertEqual(kind, WELCOME)
        self.assertEqual(decode_welcome(payload)[1], True)
        # Taking turns for ever would help nobody: the older process stops.
        self.assertEqual(first.wait(30), 75, first.log())
        self.assertIn("took over agency 1", first.log())
        other.close()
        # Its bets are stored; run again, it collects its winners.
        self.finish_round(per_agency, files)

    def test_no_certificate_or_an_unknown_ca_is_refused_at_the_handshake(self):
        per_agency, files = self.round([1])
        nocert = TlsClient(self.port, self.certs, None)
        self.addCleanup(nocert.close)
        with self.assertRaises((ssl.SSLError, ConnectionError, EOFError)):
            nocert.send(hello(1))
            nocert.read()
        # A certificate from another CA, even one naming agency 1.
        strangers = harness.make_certs(self.path("strangers"), 1)
        forged_flags = ["--tls-mode", "required",
                        "--tls-cert", os.path.join(strangers, "agency-1.pem"),
                        "--tls-key", os.path.join(strangers, "agency-1.key"),
                        "--tls-server-ca", os.path.join(self.certs, "ca.pem")]
        forged = self.start_agency(1, files[1], extra=forged_flags)
        self.assertEqual(forged.wait(30), EXIT_NOPERM, forged.log())
        self.assertIn("refused this agency's certificate", forged.log())
        entries = self.wait_log(self.server, lambda es: sum(
            1 for e in es if e.action == "tls_handshake" and e.result == "fail") >= 2,
            what="two failed handshakes")
        errors = " ".join(e.raw for e in entries if e.action == "tls_handshake" and e.result == "fail")
        self.assertIn("did not return a certificate", errors)
        self.assertIn("unable to get local issuer certificate", errors)
        self.assertEqual(self.bets_file(), [])
        self.finish_round(per_agency, files)

    def test_expired_and_revoked_certificates_are_refused_and_a_reload_applies_the_crl(self):
        harness.make_certs(self.path("certs"), 3)
        subprocess.run([sys.executable, harness.GEN_CERTS, self.path("certs"), "--reissue",
                        "agency-1", "--expired"], check=True, stdout=subprocess.DEVNULL)
        per_agency, files = self.round([1, 2, 3], extra_server=["--tls-crl",
                                                                self.path("certs/crl.pem")])
        expired = self.start_agency(1, files[1])
        self.assertEqual(expired.wait(30), EXIT_NOPERM, expired.log())
        # The handshake is no success until the server accepted the certificate.
        self.assertNotIn("action: tls_handshake | result: success", expired.log())
        self.wait_log(self.server, lambda es: any(
            e.action == "tls_handshake" and "certificate has expired" in e.raw for e in es),
            what="the expired certificate's refusal")
        # Agency 2 is fine until its certificate is revoked and the server
        # re-reads the revocation list on SIGHUP (no restart).
        echo = self.start_agency(2, mode="echo", extra=["--loop-amount", "1", "--loop-period", "0"])
        self.assertEqual(echo.wait(30), 0, echo.log())
        subprocess.run([sys.executable, harness.GEN_CERTS, self.certs, "--revoke", "agency-2"],
                       check=True, stdout=subprocess.DEVNULL)
        os.kill(self.server.pid, signal.SIGHUP)
        self.wait_log(self.server, lambda es: any(
            e.action == "reload" and "tls: reloaded" in e.raw for e in es), what="the reload")
        revoked = self.start_agency(2, files[2])
        self.assertEqual(revoked.wait(30), EXIT_NOPERM, revoked.log())
        self.wait_log(self.server, lambda es: any(
            e.action == "tls_handshake" and "certificate revoked" in e.raw for e in es),
            what="the revoked certificate's refusal")
        # Rotation: new certificates for 1 and 2, a SIGHUP, and the round completes.
        for name in ("agency-1", "agency-2"):
            subprocess.run([sys.executable, harness.GEN_CERTS, self.certs, "--reissue", name],
                           check=True, stdout=subprocess.DEVNULL)
        os.kill(self.server.pid, signal.SIGHUP)
        self.wait_log(self.server, lambda es: sum(
            1 for e in es if e.action == "reload" and "tls: reloaded" in e.raw) >= 2,
            what="the second reload")
        # Each reload's last line says what it did (docs/SYSTEMD.md): the
        # summary comes after the certificates' line, never before it.
        reloads = [e for e in self.server.entries() if e.action == "reload"]
        summaries = [i for i, e in enumerate(reloads) if "applied" in e.fields]
        tls_lines = [i for i, e in enumerate(reloads) if "tls: reloaded" in e.raw]
        self.assertEqual(len(summaries), 2, self.server.log())
        for tls_line, summary in zip(tls_lines, summaries):
            self.assertLess(tls_line, summary, self.server.log())
        self.finish_round(per_agency, files)

    def test_a_reissue_and_a_reload_refuse_the_certificate_it_replaced(self):
        certs = self.ensure_certs(2)
        stolen = self.path("stolen")  # what a thief copied before the rotation
        os.makedirs(stolen)
        for name in ("ca.pem", "agency-1.pem", "agency-1.key"):
            with open(os.path.join(certs, name), "rb") as f, \
                    open(os.path.join(stolen, name), "wb") as out:
                out.write(f.read())
        per_agency, files = self.round([1, 2], extra_server=["--tls-crl",
                                                             os.path.join(certs, "crl.pem")])
        subprocess.run([sys.executable, harness.GEN_CERTS, certs, "--reissue", "agency-1"],
                       check=True, stdout=subprocess.DEVNULL, timeout=60)
        os.kill(self.server.pid, signal.SIGHUP)
        self.wait_log(self.server, lambda es: any(
            e.action == "reload" and "tls: reloaded" in e.raw for e in es), what="the reload")
        thief = TlsClient(self.port, stolen, "agency-1")
        self.addCleanup(thief.close)
        with self.assertRaises((ssl.SSLError, ConnectionError, EOFError)):
            thief.send(hello(1))
            thief.read()
        self.wait_log(self.server, lambda es: any(
            e.action == "tls_handshake" and "certificate revoked" in e.raw for e in es),
            what="the old certificate's refusal")
        # The agency with its new files bets and gets its winners.
        self.finish_round(per_agency, files)

    def test_a_broken_certificate_file_at_reload_keeps_the_running_ones(self):
        certs = self.ensure_certs(1)
        config = self.path("server.toml")
        with open(config, "w") as f:
            f.write(f'[tls]\ncrl = "{os.path.join(certs, "crl.pem")}"\n')
        per_agency, files = self.round([1], extra_server=["--config", config])
        with open(os.path.join(certs, "crl-broken.pem"), "w") as f:
            f.write("not a CRL\n")
        with open(config, "w") as f:
            f.write(f'[tls]\ncrl = "{os.path.join(certs, "crl-broken.pem")}"\n')
        os.kill(self.server.pid, signal.SIGHUP)
        entries = self.wait_log(self.server, lambda es: any(
            e.action == "reload" and e.result == "fail" and "crl-broken.pem" in e.raw for e in es),
            what="the failed reload naming the file")
        self.assertIn("keeping the running configuration and certificates",
                      [e for e in entries if e.action == "reload" and e.result == "fail"][0].raw)
        self.finish_round(per_agency, files)

    def test_plaintext_peers_on_a_tls_port_are_told_so_in_their_terms(self):
        per_agency, files = self.round([1])
        c = RawClient(self.port)
        self.addCleanup(c.close)
        c.send(hello(1))
        kind, payload = c.read()
        self.assertEqual(kind, ERROR)
        self.assertEqual(decode_error(payload)[0], E_TLS_REQUIRED)
        plain = self.start_agency(1, files[1], extra=["--tls-mode", "off"])
        self.assertEqual(plain.wait(30), EXIT_CONFIG, plain.log())
        self.assertIn("requires TLS", plain.log())
        echo = self.start_agency(1, mode="echo", extra=["--tls-mode", "off", "--loop-amount", "1"])
        self.assertEqual(echo.wait(30), EXIT_CONFIG, echo.log())
        self.assertIn("requires TLS", echo.log())
        self.assertEqual(self.bets_file(), [])
        self.finish_round(per_agency, files)

    def test_a_silent_or_trickling_handshake_is_bounded_by_hello_timeout(self):
        per_agency, files = self.round([1], extra_server=["--hello-timeout", "500ms"])
        silent = socket.create_connection(("127.0.0.1", self.port))
        trickle = socket.create_connection(("127.0.0.1", self.port))
        start = time.monotonic()
        # One byte of a TLS record header every 200 ms: never a whole hello.
        for b in b"\x16\x03\x01\x02\x00":
            try:
                trickle.send(bytes([b]))
            except OSError:
                break
            time.sleep(0.2)
        for s in (silent, trickle):
            s.settimeout(10)
            try:
                while s.recv(4096):
                    pass
            except (ConnectionResetError, socket.timeout):
                pass
            s.close()
        self.assertLess(time.monotonic() - start, 10)
        entries = self.wait_log(self.server, lambda es: sum(
            1 for e in es if e.action == "tls_handshake" and e.fields.get("end") == "timeout") >= 2,
            what="two handshake timeouts")
        self.assertTrue(entries)
        self.finish_round(per_agency, files)

    def test_start_up_logs_in_the_order_the_readme_lists(self):
        with open(os.path.join(harness.ROOT, "README.md")) as f:
            readme = f.read()
        paragraph = readme[readme.index("A server's start-up says, in order:"):]
        paragraph = paragraph[:paragraph.index("then `ready`") + len("then `ready`")]
        listed = re.findall(r"`([a-z_]+)`", paragraph)
        self.assertEqual(listed[0], "config")
        self.start_server(agencies=1)
        seen = []
        for e in self.server.entries():
            if e.action in listed and (not seen or seen[-1] != e.action):
                seen.append(e.action)
        self.assertEqual(seen, listed, self.server.log())

    def test_no_hello_after_a_handshake_gets_timeout_over_tls_and_is_counted(self):
        self.start_server(agencies=1, extra=["--hello-timeout", "1s",
                                             "--metrics-address", "127.0.0.1:0"])
        metrics = [e for e in self.server.entries() if e.action == "metrics"][0]
        metrics_port = int(metrics.fields["listening"].rsplit(":", 1)[1])
        c = TlsClient(self.port, self.certs, "agency-1")
        self.addCleanup(c.close)
        start = time.monotonic()
        kind, payload = c.read()   # says nothing: TIMEOUT comes over TLS
        self.assertEqual((kind, decode_error(payload)[0]), (ERROR, E_TIMEOUT))
        self.assertIn("server.hello_timeout", decode_error(payload)[2])
        self.assertLess(time.monotonic() - start, 5)
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
            page = r.read().decode()
        self.assertIn('lottery_connections_refused_total{reason="hello_timeout"} 1', page)

    def test_the_agency_refuses_a_fake_server_and_sends_it_nothing(self):
        # A server with a certificate from another CA, and one from our CA
        # under a name the agency does not expect.
        certs = self.ensure_certs(1)
        strangers = harness.make_certs(self.path("strangers"), 1)
        bets = make_bets(1, 50, winners=1)
        path = self.agency_file(1, bets)
        for server_certs, name in ((strangers, "127.0.0.1"), (certs, "lottery.example.org")):
            received = []
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(os.path.join(server_certs, "server.pem"),
                                os.path.join(server_certs, "server.key"))
            listener = socket.create_server(("127.0.0.1", 0))
            port = listener.getsockname()[1]

            def serve():
                try:
                    conn, _ = listener.accept()
                    with ctx.wrap_socket(conn, server_side=True) as tls:
                        received.append(tls.recv(4096))
                except (ssl.SSLError, OSError):
                    pass

            t = threading.Thread(target=serve)
            t.start()
            self.port = port
            agency = self.start_agency(1, path, extra=harness.agency_tls_flags(certs, "agency-1") +
                                       ["--tls-server-name", name])
            self.assertEqual(agency.wait(30), EXIT_PROTOCOL, agency.log())
            self.assertIn("tls_handshake | result: fail", agency.log())
            t.join(10)
            listener.close()
            self.assertFalse(any(received), received)

    def test_without_certificate_files_both_programs_exit_78_saying_what_to_set(self):
        env = {k: v for k, v in os.environ.items() if k not in harness.PLAINTEXT_ENV}
        for argv, what in (([harness.SERVER, "--port", str(harness.free_port()), "--storage",
                             self.path("bets.csv")], "tls.client_ca"),
                           ([harness.AGENCY, "--dataset", self.path("none.csv")], "tls.server_ca")):
            r = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, timeout=30)
            self.assertEqual(r.returncode, EXIT_CONFIG, r.stderr)
            lines = [line for line in r.stderr.splitlines() if "ERROR" in line]
            self.assertEqual(len(lines), 1, r.stderr)
            self.assertIn(what, lines[0])
            self.assertIn("gen_certs.py", lines[0])
        # Nothing was created by the failed start.
        self.assertFalse(os.path.exists(self.path("bets.csv")))
        # A file that does not load is a configuration error too.
        r = subprocess.run([harness.SERVER, "--port", str(harness.free_port()), "--storage",
                            self.path("bets.csv"), "--tls-mode", "required", "--tls-cert",
                            self.path("missing.pem"), "--tls-key", self.path("missing.key"),
                            "--tls-client-ca", self.path("missing-ca.pem")],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, EXIT_CONFIG, r.stderr)
        self.assertIn("missing.pem", r.stderr)
        self.assertFalse(os.path.exists(self.path("bets.csv")))

    def test_mode_off_warns_that_any_peer_can_claim_any_agency(self):
        self.start_server(agencies=1, tls=False)
        self.wait_log(self.server, lambda es: any(
            e.action == "tls" and e.level == "WARNING" and "any peer" in e.raw for e in es),
            what="the warning of tls.mode off")
        c = RawClient(self.port)
        self.addCleanup(c.close)
        c.send(hello(1))
        self.assertEqual(c.read()[0], WELCOME)


if __name__ == "__main__":
    unittest.main(verbosity=2)
