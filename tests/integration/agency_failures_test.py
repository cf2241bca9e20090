"""Every agency failure says what it is, with its own documented exit code and
one ERROR line: an id the server does not serve (67), an id another process
keeps connected (75, after retrying for connect_timeout), betting closed for
bet mode (77), a dataset that cannot be read (66, before connecting), and a
server unreachable for connect_timeout (69, honoured and reported truly)."""
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import harness  # noqa: E402
from harness import make_bets  # noqa: E402

BET_ENV = {"NOMBRE": "Ana", "APELLIDO": "Paz", "DOCUMENTO": "30904465",
           "NACIMIENTO": "1999-03-17", "NUMERO": "7574"}


class AgencyFailuresTest(harness.LotteryTest):

    def errors(self, proc):
        return [e for e in proc.entries() if e.level == "ERROR"]

    def test_an_id_outside_the_servers_range_exits_67_naming_the_range(self):
        self.start_server(agencies=2)
        p = self.start_agency(3, self.agency_file(3, make_bets(3, 5)))
        self.assertEqual(p.wait(30), 67, p.log())
        errors = self.errors(p)
        self.assertEqual(len(errors), 1, p.log())
        self.assertIn("1..2", errors[0].raw)
        self.assertIn("agency.id", errors[0].raw)
        self.assertEqual(self.bets_file(), [])

    def test_an_id_kept_by_another_connection_exits_75_after_retrying(self):
        self.start_server(agencies=1)
        holder = self.raw()
        holder.send(harness.hello(1))
        kind, _ = holder.read()
        self.assertEqual(kind, harness.WELCOME)
        start = time.monotonic()
        p = self.start_agency(1, self.agency_file(1, make_bets(1, 5)),
                              extra=("--connect-timeout", "2s"))
        self.assertEqual(p.wait(30), 75, p.log())
        self.assertGreaterEqual(time.monotonic() - start, 2.0)
        errors = self.errors(p)
        self.assertEqual(len(errors), 1, p.log())
        self.assertIn("another agency process with the same id?", errors[0].raw)
        self.assertIn("already connected", errors[0].raw)
        self.assertNotIn("unreachable", p.log())
        # It asked more than once: honest retries, not one refusal taken as final.
        self.assertGreater(p.log().count("action: connect | result: success"), 1, p.log())

    def test_bet_mode_after_the_agency_finished_exits_77(self):
        self.start_server(agencies=1)
        a = self.start_agency(1, self.agency_file(1, make_bets(1, 10, winners=1)))
        self.assertEqual(a.wait(60), 0, a.log())
        stored = len(self.bets_file())
        p = self.start_agency(1, mode="bet", env=BET_ENV, name="late-bet")
        self.assertEqual(p.wait(30), 77, p.log())
        errors = self.errors(p)
        self.assertEqual(len(errors), 1, p.log())
        self.assertIn("betting is closed", errors[0].raw)
        self.assertEqual(len(self.bets_file()), stored)

    def test_an_unreadable_dataset_exits_66_before_connecting(self):
        self.port = harness.free_port()  # no server at all: the dataset is checked first
        os.mkdir(self.path("adir.csv"))
        cases = [("missing", self.path("nope.csv"), "No such file"),
                 ("directory", self.path("adir.csv"), "is a directory")]
        if os.geteuid() != 0:  # root reads whatever the mode says
            path = self.agency_file(1, make_bets(1, 3))
            os.chmod(path, 0)
            cases.append(("no permission", path, "Permission denied"))
        for what, path, reason in cases:
            with self.subTest(what=what):
                start = time.monotonic()
                p = self.start_agency(1, path, extra=("--connect-timeout", "10s"),
                                      name=f"agency-{what.replace(' ', '-')}")
                self.assertEqual(p.wait(30), 66, p.log())
                self.assertLess(time.monotonic() - start, 5)   # not after connect_timeout
                self.assertNotIn("action: connect", p.log())
                errors = self.errors(p)
                self.assertEqual(len(errors), 1, p.log())
                self.assertEqual(errors[0].action, "dataset")
                self.assertIn(reason, errors[0].raw)

    def test_connect_timeout_is_honoured_and_the_time_spent_reported(self):
        self.port = harness.free_port()  # nobody listens there
        for timeout in (1.0, 2.5):
            with self.subTest(timeout=timeout):
                start = time.monotonic()
                p = self.start_agency(1, self.agency_file(1, make_bets(1, 3)),
                                      extra=("--connect-timeout", f"{timeout}s"),
                                      name=f"agency-{timeout}")
                self.assertEqual(p.wait(30), 69, p.log())
                elapsed = time.monotonic() - start
                # Only a lower bound here: the machine may be slow, never early.
                self.assertGreaterEqual(elapsed, timeout)
                errors = self.errors(p)
                self.assertEqual(len(errors), 1, p.log())
                m = re.search(r"server unreachable for ([0-9.]+)(ms|s)\b", errors[0].raw)
                self.assertIsNotNone(m, errors[0].raw)
                said = float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
                self.assertGreaterEqual(said, timeout * 0.9)
                self.assertLessEqual(said, elapsed + 0.1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
