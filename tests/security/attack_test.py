"""Issue 28, "No stranger can keep an agency out" (docs/SECURITY.md, threat
model): with default settings over mutual TLS, three agencies with valid
certificates finish their round, with their winners, while strangers from
64 source addresses (127.0.0.2 and up: Linux accepts any 127.x.y.z source on
loopback) hold 128 connections and reopen each as soon as it is dropped,
stall TLS handshakes, run handshake floods from 8 threads, or hold a valid
certificate and send ECHO every second without ever saying HELLO.

Each attack runs at most about 30 s; the attackers are stopped in tearDown.
The round time under each attack is printed to stderr next to the baseline."""
import os
import selectors
import socket
import ssl
import sys
import threading
import struct
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import harness  # noqa: E402
from harness import ECHO, ERROR, decode_error, frame, make_bets, s16  # noqa: E402
from protocol import E_TIMEOUT, E_TOO_MANY  # noqa: E402

SOURCES = 64
CONNECTIONS = 128
ROUND_LIMIT = 30.0   # seconds a round may take under attack (the agencies' connect_timeout)

# A TLS record header and the start of a ClientHello that never ends.
STALLED_CLIENT_HELLO = bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03])


def source(i):
    return f"127.0.0.{2 + i % SOURCES}"


def open_from(src, port, timeout=2.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


class Holders(threading.Thread):
    """CONNECTIONS connections from SOURCES addresses, each sending `opening`
    once (nothing when empty) and reopened as soon as the server drops it."""

    def __init__(self, port, opening=b"", connections=CONNECTIONS):
        super().__init__(daemon=True)
        self.port, self.opening, self.connections = port, opening, connections
        self.stop = threading.Event()
        self.reopened = 0

    def open(self, sel, i):
        try:
            s = open_from(source(i), self.port)
            if self.opening:
                s.sendall(self.opening)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, i)
        except OSError:
            pass   # tried again on the next sweep

    def run(self):
        sel = selectors.DefaultSelector()
        for i in range(self.connections):
            self.open(sel, i)
        while not self.stop.is_set():
            for key, _ in sel.select(timeout=0.05):
                try:
                    data = key.fileobj.recv(4096)
                except OSError:
                    data = b""
                if data:
                    continue   # an error frame or an alert: wait for the close
                sel.unregister(key.fileobj)
                key.fileobj.close()
                self.reopened += 1
                self.open(sel, key.data)
            missing = self.connections - len(sel.get_map())
            for i in range(missing):
                self.open(sel, i)
        for key in list(sel.get_map().values()):
            key.fileobj.close()
        sel.close()


class HandshakeFlood(threading.Thread):
    """Full TLS handshakes without a client certificate, in a loop."""

    def __init__(self, port, ca, index):
        super().__init__(daemon=True)
        self.port, self.index = port, index
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ctx.load_verify_locations(ca)
        self.stop = threading.Event()
        self.handshakes = 0

    def run(self):
        n = 0
        while not self.stop.is_set():
            n += 1
            try:
                raw = open_from(source(self.index * 8 + n), self.port)
                with self.ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                    self.handshakes += 1
                    s.recv(64)   # the server's verdict: an alert
            except (OSError, ssl.SSLError):
                pass


class EchoHolders(threading.Thread):
    """Connections holding the probe's valid certificate: ECHO every second,
    never HELLO. Records when each was dropped, after its start."""

    def __init__(self, port, certs, count):
        super().__init__(daemon=True)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ctx.load_verify_locations(os.path.join(certs, "ca.pem"))
        self.ctx.load_cert_chain(os.path.join(certs, "probe.pem"), os.path.join(certs, "probe.key"))
        self.port, self.count = port, count
        self.stop = threading.Event()
        self.dropped = []   # (seconds after connecting, error code or None)
        self.opened = 0

    def run(self):
        socks = []
        for i in range(self.count):
            try:
                raw = open_from(source(i), self.port, timeout=5)
                socks.append([self.ctx.wrap_socket(raw, server_hostname="127.0.0.1"),
                              time.monotonic(), b""])
                self.opened += 1
            except (OSError, ssl.SSLError):
                pass
        while socks and not self.stop.is_set():
            for entry in list(socks):
                s, started, buf = entry
                try:
                    s.settimeout(0.02)
                    s.sendall(frame(ECHO, s16("still here")))
                    while True:
                        data = s.recv(4096)
                        if not data:
                            raise ConnectionResetError
                        buf += data
                        entry[2] = buf
                except (socket.timeout, ssl.SSLWantReadError):
                    continue
                except (OSError, ssl.SSLError):
                    code = None
                    while len(buf) >= 5:   # find the ERROR frame among the echo replies
                        kind, length = buf[0], int.from_bytes(buf[1:5], "big")
                        if kind == ERROR:
                            code = decode_error(buf[5:5 + length])[0]
                        buf = buf[5 + length:]
                    self.dropped.append((time.monotonic() - started, code))
                    socks.remove(entry)
                    s.close()
            time.sleep(1.0)
        for s, _, _ in socks:
            s.close()


class AttackTest(harness.LotteryTest):
    TLS = True

    def setUp(self):
        super().setUp()
        self.attackers = []

    def tearDown(self):
        for a in self.attackers:
            a.stop.set()
        for a in self.attackers:
            a.join(10)
        super().tearDown()

    def attack(self, *threads):
        for t in threads:
            self.attackers.append(t)
            t.start()

    def run_round(self, label, settle=2.0):
        """Starts three agencies (after `settle` s of attack) and returns the
        round's time; each must finish with its winners."""
        per_agency = {a: make_bets(a, 300, winners=a) for a in (1, 2, 3)}
        files = {a: self.agency_file(a, b) for a, b in per_agency.items()}
        time.sleep(settle)
        start = time.monotonic()
        procs = {a: self.start_agency(a, files[a], batch=50) for a in per_agency}
        for a, p in procs.items():
            self.assertEqual(p.wait(ROUND_LIMIT + 10), 0, p.log()[-3000:])
            self.assertEqual(sorted(p.stdout().split()),
                             sorted(b[2] for b in per_agency[a] if b[4] == 7574), p.log()[-2000:])
        took = time.monotonic() - start
        print(f"\nattack_test: round under {label}: {took:.2f} s", file=sys.stderr)
        self.assertLess(took, ROUND_LIMIT)
        self.assertTrue(self.server.alive())
        return took

    def test_baseline_round_without_attack(self):
        self.start_server(agencies=3)
        self.run_round("no attack", settle=0)

    def test_a_silent_connections_reopened_as_dropped(self):
        self.start_server(agencies=3)
        self.attack(Holders(self.port))
        self.run_round("128 silent connections from 64 addresses, reopened")

    def test_b_stalled_client_hellos(self):
        self.start_server(agencies=3)
        self.attack(Holders(self.port, STALLED_CLIENT_HELLO))
        self.run_round("128 stalled ClientHellos from 64 addresses, reopened")

    def test_c_handshake_flood_from_eight_threads(self):
        self.start_server(agencies=3)
        floods = [HandshakeFlood(self.port, os.path.join(self.certs, "ca.pem"), i) for i in range(8)]
        self.attack(*floods)
        self.run_round("8 threads of TLS handshakes without a certificate")
        self.assertGreater(sum(f.handshakes for f in floods), 0)

    def test_c_handshake_flood_from_thirty_two_threads(self):
        # The flood that kept every agency out before the pending room (the
        # issue's finding): 32 threads of full handshakes, no certificate.
        self.start_server(agencies=3)
        floods = [HandshakeFlood(self.port, os.path.join(self.certs, "ca.pem"), i)
                  for i in range(32)]
        self.attack(*floods)
        self.run_round("32 threads of TLS handshakes without a certificate")
        self.assertGreater(sum(f.handshakes for f in floods), 0)

    def test_d_echo_without_hello_is_dropped_at_hello_timeout(self):
        self.start_server(agencies=3)
        holders = EchoHolders(self.port, self.certs, 16)
        self.attack(holders)
        self.run_round("16 certificate holders sending ECHO every second, never HELLO")
        deadline = time.monotonic() + 20
        while len(holders.dropped) < holders.opened and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertGreater(holders.opened, 0)
        self.assertEqual(len(holders.dropped), holders.opened, holders.dropped)
        for after, code in holders.dropped:
            # server.hello_timeout (10 s) from accept, whatever they sent.
            self.assertLess(after, 13, holders.dropped)
            self.assertIn(code, (E_TIMEOUT, None), holders.dropped)
        self.assertIn(E_TIMEOUT, [c for _, c in holders.dropped])

    def test_e_an_agency_refused_for_lack_of_room_says_the_server_is_full(self):
        # max_connections = 1, held by a silent stranger: the agency's first
        # connection is refused in plaintext (and evicts the stranger); the
        # agency says so, backs off and gets in.
        self.start_server(agencies=1, extra=["--max-connections", "1"])
        holder = open_from(source(0), self.port)
        self.addCleanup(holder.close)
        deadline = time.monotonic() + 5
        while len(harness.children_of(self.server.pid)) < 1:
            self.assertLess(time.monotonic(), deadline, "the holder's worker")
            time.sleep(0.02)
        bets = make_bets(1, 50, winners=1)
        p = self.start_agency(1, self.agency_file(1, bets))
        self.assertEqual(p.wait(30), 0, p.log())
        self.assertIn("server full (TOO_MANY_CONNECTIONS): retrying in", p.log())
        self.assertNotIn("wrong version number", p.log())

    def test_f_more_strangers_than_the_default_room(self):
        # 300 silent connections against the default room of 256: the parent
        # evicts the oldest for each new one, and the agencies still finish.
        self.start_server(agencies=3)
        holders = Holders(self.port, connections=300)
        self.attack(holders)
        self.run_round("300 silent connections from 64 addresses, beyond the default room",
                       settle=4.0)
        self.assertGreater(holders.reopened, 0)
        self.assertTrue(any(e.action == "evict" and e.fields.get("reason") == "max_pending"
                            for e in self.server.entries()), self.server.log()[-3000:])

    def test_g_agencies_sharing_one_address_do_not_evict_each_other(self):
        # Ten agencies from 127.0.0.1 started at once, a per-source cap of 2:
        # the room (16) has space for all of them, so the cap does not apply.
        agencies = list(range(1, 11))
        self.start_server(agencies=len(agencies),
                          extra=["--max-pending", "16", "--max-pending-per-source", "2"])
        per_agency = {a: make_bets(a, 100, winners=1) for a in agencies}
        procs = {a: self.start_agency(a, self.agency_file(a, b), batch=50)
                 for a, b in per_agency.items()}
        for a, p in procs.items():
            self.assertEqual(p.wait(60), 0, p.log()[-3000:])
            self.assertEqual(sorted(p.stdout().split()),
                             sorted(b[2] for b in per_agency[a] if b[4] == 7574))
        self.assertEqual(self.count(self.server.entries(), "evict"), 0,
                         self.server.log()[-3000:])

    def test_h_a_refused_agency_backs_off(self):
        # A server that is always full (it answers every connection with the
        # plaintext TOO_MANY_CONNECTIONS the parent sends, then closes): the
        # agency says so each time, waits longer after each refusal (100 ms
        # doubling to 2 s, jittered) and gives up at its connect_timeout.
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        self.addCleanup(listener.close)
        why = b"the server is serving its limit of 1 connections"
        refusal = frame(ERROR, struct.pack(">HIH", E_TOO_MANY, 0xFFFFFFFF, len(why)) + why)
        arrivals = []

        def refuse_all():
            listener.settimeout(0.2)
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except (socket.timeout, OSError):
                    continue
                arrivals.append(time.monotonic())
                with conn:
                    conn.sendall(refusal)
        stop = threading.Event()
        t = threading.Thread(target=refuse_all, daemon=True)
        t.start()
        self.addCleanup(t.join, 5)
        self.addCleanup(stop.set)
        self.port = listener.getsockname()[1]
        for tls in (False, True):
            self.certs = self.ensure_certs(1) if tls else None
            agency = self.start_agency(1, self.agency_file(1, make_bets(1, 20)),
                                       extra=["--connect-timeout", "6s"], name=f"agency-tls-{tls}")
            self.check_backoff(agency, arrivals)
            arrivals.clear()

    def check_backoff(self, agency, arrivals):
        """`agency` met the always-full server: it said so, and backed off."""
        self.assertEqual(agency.wait(30), 69, agency.log())
        full = [e for e in agency.entries() if e.action == "connect" and "server full" in e.raw]
        self.assertGreaterEqual(len(full), 3, agency.log() + f"\narrivals: {arrivals}")
        self.assertNotIn("wrong version number", agency.log())
        gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
        # Without backoff there would be hundreds of tries in 6 s.
        self.assertLessEqual(len(arrivals), 16, gaps)
        self.assertGreater(max(gaps), 0.8, gaps)
        self.assertGreater(max(gaps[len(gaps) // 2:]), 2 * min(gaps[:2]), gaps)


if __name__ == "__main__":
    unittest.main(verbosity=2)
