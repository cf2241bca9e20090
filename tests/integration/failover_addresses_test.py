"""An agency given several server addresses (server.address = a comma-
separated list, issue 30): it skips an address where nothing listens, and
when its server is killed mid-round it reconnects to a second server on
another port that took over the same bets file, resumes after what that
server holds (WELCOME), and finishes with its winners, every bet stored
exactly once."""
import collections
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import harness  # noqa: E402
from harness import make_bets  # noqa: E402


def connects(proc):
    """The ports of the agency's successful connects, in order."""
    return [e.fields["server"].rsplit(":", 1)[1] for e in proc.entries()
            if e.action == "connect" and e.result == "success"]


class FailoverAddressesTest(harness.LotteryTest):

    def start_listed_agency(self, agency, bets, ports, timeout="60s", **kwargs):
        """An agency told every address of `ports`, in order."""
        servers = ",".join(f"127.0.0.1:{p}" for p in ports)
        extra = ["--server", servers, "--connect-timeout", timeout, *kwargs.pop("extra", [])]
        return self.start_agency(agency, self.agency_file(agency, bets), extra=extra, **kwargs)

    def assert_winners(self, proc, bets):
        self.assertEqual(proc.wait(90), 0, proc.log()[-3000:])
        self.assertEqual(proc.stdout().split(), [b[2] for b in bets if b[4] == 7574])

    def test_an_address_where_nothing_listens_is_skipped(self):
        self.start_server(agencies=2)
        dead = harness.free_port()
        sent = {1: make_bets(1, 500, winners=3), 2: make_bets(2, 300, winners=2)}
        # Agency 1 lists the dead address first, agency 2 after the server,
        # with spaces around the comma.
        one = self.start_listed_agency(1, sent[1], [dead, self.port], timeout="10s")
        two = self.start_agency(2, self.agency_file(2, sent[2]),
                                extra=["--server", f"127.0.0.1:{self.port} , 127.0.0.1:{dead}"])
        for a, p in ((1, one), (2, two)):
            self.assert_winners(p, sent[a])
        self.assertEqual(collections.Counter(self.bets_file()), self.expected_rows(sent))
        # Refused at the first address, agency 1 tried the second at once:
        # its first connection is its second attempt, with no backoff.
        first = [e for e in one.entries() if e.action == "connect" and e.result == "success"][0]
        self.assertEqual((first.fields["server"], first.fields["attempt"]),
                         (f"127.0.0.1:{self.port}", "2"), one.log())
        # The whole list in the config line.
        config = [e for e in one.entries() if e.action == "config"][0]
        self.assertEqual(config.fields["server_address"], f"127.0.0.1:{dead},127.0.0.1:{self.port}")
        # Agency 2 stayed on the address that worked.
        self.assertEqual(set(connects(two)), {str(self.port)}, two.log())

    def test_the_backoff_is_waited_once_per_pass_not_per_address(self):
        self.start_server(agencies=1)
        dead = [harness.free_port() for _ in range(6)]
        bets = make_bets(1, 50, winners=1)
        started = time.monotonic()
        p = self.start_listed_agency(1, bets, [*dead, self.port], timeout="10s")
        entries = self.wait_log(p, lambda es: self.count(es, "connect") == 1, timeout=10,
                                what="a connection")
        elapsed = time.monotonic() - started
        first = [e for e in entries if e.action == "connect" and e.result == "success"][0]
        self.assertEqual((first.fields["server"], first.fields["attempt"]),
                         (f"127.0.0.1:{self.port}", "7"), p.log())
        # A backoff per refused address would be 0.1 + 0.2 + ... + 2 = 5.1 s.
        self.assertLess(elapsed, 2.5, p.log())
        self.assert_winners(p, bets)

    def test_a_killed_server_is_replaced_by_a_second_one_on_another_port(self):
        first = self.start_server(agencies=1, name="server-1")
        active = self.port
        standby = harness.free_port()
        bets = make_bets(1, 6000, winners=3)
        # The second address refuses until the second server starts.
        agency = self.start_listed_agency(1, bets, [self.port, standby], batch=10,
                                          extra=["--window", "2"])
        self.wait_log(first, lambda es: self.count(es, "apuesta_recibida") >= 300,
                      what="some batches stored")
        os.killpg(first.pid, signal.SIGKILL)
        first.popen.wait()
        self.assertTrue(agency.alive(), agency.log()[-3000:])
        started = time.monotonic()
        # The same bets file: it waits for the first server's lock, recovers
        # the round and serves it on the other port.
        second = self.start_server(agencies=1, port=standby, name="server-2")
        recovery = [e for e in second.entries() if e.action == "recovery" and "round" in e.fields]
        self.assertEqual(recovery[0].fields["round"], "resumed", second.log())
        self.assert_winners(agency, bets)
        self.assertLess(time.monotonic() - started, 60)
        self.assertEqual(collections.Counter(self.bets_file()), self.expected_rows({1: bets}))
        self.assertIn("connection_lost", agency.log())
        # On the first server until it died, then on the second to the end.
        ports = connects(agency)
        self.assertEqual(ports[0], str(active), agency.log()[-3000:])
        self.assertEqual(ports[-1], str(standby), agency.log()[-3000:])
        self.assertEqual(ports.index(str(standby)), ports.count(str(active)), ports)
        # The second server's WELCOME said it held what the first stored: the
        # agency re-sent only the rest, and both servers stored some.
        hellos = [e for e in agency.entries() if e.action == "hello" and e.result == "success"]
        self.assertGreater(int(hellos[-1].fields["last_seq"]), 0, agency.log()[-3000:])
        self.assertEqual(self.count(second.entries(), "sorteo"), 1)
        self.assertGreater(self.count(second.entries(), "apuesta_recibida"), 0)

    def test_an_empty_or_bad_address_is_a_configuration_error(self):
        for i, servers in enumerate(("127.0.0.1:1,,127.0.0.1:2", "127.0.0.1:1,",
                                     "127.0.0.1:1,127.0.0.1")):
            argv = [harness.AGENCY, "--id", "1", "--tls-mode", "off"]
            bad = harness.Proc(argv, self.dir, f"bad-{i}", {"CLI_SERVER_ADDRESS": servers})
            self.procs.append(bad)
            self.assertEqual(bad.wait(10), 78, bad.log())
            self.assertIn(f"CLI_SERVER_ADDRESS='{servers}'", bad.log())


class TlsFailoverAddressesTest(FailoverAddressesTest):
    """The same over mutual TLS: the name checked is each address's host."""
    TLS = True

    test_an_empty_or_bad_address_is_a_configuration_error = None
    test_a_killed_server_is_replaced_by_a_second_one_on_another_port = None


if __name__ == "__main__":
    unittest.main(verbosity=2)
