"""Readiness, status, stopping and watchdog notifications (NOTIFY_SOCKET), with
the server built on libsystemd's sd_notify and on the built-in writer."""
import os
import signal
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import daemon_harness as dh  # noqa: E402
from harness import make_bets  # noqa: E402


class NotifyTest(dh.DaemonTest):

    def start_notified(self, server, agencies=2, env=None):
        notify = self.notify_socket()
        config = self.write_config(agencies=agencies)
        full_env = {"NOTIFY_SOCKET": notify.path}
        full_env.update(env or {})
        proc = self.start_with_config(config, server=server, env=full_env, wait_listen=False)
        return notify, proc

    def test_ready_only_once_the_port_accepts(self):
        for backend, server in dh.notify_servers():
            with self.subTest(backend=backend):
                notify, proc = self.start_notified(server)
                _, first, raw = notify.wait_for(lambda f: True, what="first message")
                # The port is bound before READY=1: a connection right now works.
                self.assertTrue(self.port_accepts(), "READY=1 before the port accepts")
                self.assertEqual(first.get("READY"), "1", raw)
                self.assertIn(f"listening on 127.0.0.1:{self.port}", first.get("STATUS", ""))
                self.assertIn("0/2 agencies connected", first["STATUS"])
                self.assertIn(f"backend: {backend}", proc.log())
                proc.signal(signal.SIGTERM)
                self.assertEqual(proc.wait(15), 0, proc.log())
                self.notify.close()
                self.notify = None

    def test_no_ready_when_the_port_cannot_be_bound(self):
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        self.addCleanup(blocker.close)
        notify = self.notify_socket()
        config = self.write_config(port=blocker.getsockname()[1])
        proc = self.start_with_config(config, env={"NOTIFY_SOCKET": notify.path},
                                      wait_listen=False)
        self.assertEqual(proc.wait(15), 71, proc.log())
        notify.poll(0.5)
        self.assertFalse([m for m in notify.messages if m[1].get("READY") == "1"], notify.messages)

    def test_status_follows_a_round(self):
        for backend, server in dh.notify_servers():
            with self.subTest(backend=backend):
                notify, proc = self.start_notified(server, agencies=2)
                notify.wait_for(lambda f: f.get("READY") == "1")
                one = make_bets(1, 300, winners=2)
                two = make_bets(2, 200, winners=1)
                agencies = [self.start_agency(1, self.agency_file(1, one), name=f"a1-{backend}"),
                            self.start_agency(2, self.agency_file(2, two), name=f"a2-{backend}")]
                for a in agencies:
                    self.assertEqual(a.wait(60), 0, a.log())
                _, done, raw = notify.wait_for(lambda f: f.get("STATUS", "").startswith("draw done"),
                                               what="STATUS=draw done")
                self.assertEqual(done["STATUS"], "draw done: 500 bets, 3 winners, "
                                                  "2/2 agencies finished", raw)
                proc.signal(signal.SIGTERM)
                self.assertEqual(proc.wait(15), 0, proc.log())
                # The next backend's round on fresh files (a drawn round stays drawn).
                for suffix in ("", ".journal", ".result"):
                    os.unlink(self.path("bets.csv" + suffix))
                self.notify.close()
                self.notify = None

    def test_status_shows_agencies_as_they_connect_and_finish(self):
        notify, proc = self.start_notified(dh.SERVER, agencies=3)
        notify.wait_for(lambda f: f.get("READY") == "1")
        c = self.raw()
        c.send(dh.harness.hello(2))
        self.assertEqual(c.read()[0], dh.harness.WELCOME)
        notify.wait_for(lambda f: "1/3 agencies connected, 0/3 finished, 0 bets stored"
                        in f.get("STATUS", ""), what="one agency connected")
        c.send(dh.harness.bets_frame(1, [("Ana", "Paz", "5", "1990-01-01", 1)]))
        c.read()
        c.send(dh.harness.frame(dh.harness.FINISHED))
        c.read()
        notify.wait_for(lambda f: "1/3 finished, 1 bets stored" in f.get("STATUS", ""),
                        what="one agency finished")

    def test_stopping_on_sigterm(self):
        for backend, server in dh.notify_servers():
            with self.subTest(backend=backend):
                notify, proc = self.start_notified(server)
                notify.wait_for(lambda f: f.get("READY") == "1")
                proc.signal(signal.SIGTERM)
                _, stopping, raw = notify.wait_for(lambda f: f.get("STOPPING") == "1",
                                                   what="STOPPING=1")
                self.assertIn("SIGTERM", stopping.get("STATUS", ""), raw)
                self.assertEqual(proc.wait(15), 0, proc.log())
                self.notify.close()
                self.notify = None

    def test_watchdog_pings_at_half_the_interval(self):
        for backend, server in dh.notify_servers():
            with self.subTest(backend=backend):
                notify, proc = self.start_notified(server, env={"WATCHDOG_USEC": "400000"})
                notify.wait_for(lambda f: f.get("READY") == "1")
                window = 3.0
                notify.poll(window)
                pings = [m for m in notify.messages if m[1].get("WATCHDOG") == "1"]
                # One every 200 ms: about 15 in 3 s. A loaded machine may
                # delay some, but the daemon never skips one for long.
                self.assertGreaterEqual(len(pings), 8, pings)
                self.assertLessEqual(len(pings), 20, pings)
                gaps = [b[0] - a[0] for a, b in zip(pings, pings[1:])]
                self.assertLess(max(gaps), 0.4 * 2, gaps)  # never near the 400 ms deadline twice
                self.assertIn("action: watchdog | result: success | interval: 400ms", proc.log())
                proc.signal(signal.SIGTERM)
                self.assertEqual(proc.wait(15), 0)
                self.notify.close()
                self.notify = None

    def test_watchdog_for_another_process_is_ignored(self):
        notify, proc = self.start_notified(dh.SERVER,
                                           env={"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"})
        notify.wait_for(lambda f: f.get("READY") == "1")
        notify.poll(1.0)
        self.assertFalse([m for m in notify.messages if "WATCHDOG" in m[1]])

    def test_without_notify_socket_the_server_runs_as_before(self):
        config = self.write_config()
        proc = self.start_with_config(config)
        self.assertTrue(self.port_accepts())
        self.assertNotIn("action: notify", proc.log())
        proc.signal(signal.SIGTERM)
        self.assertEqual(proc.wait(15), 0)

    def test_a_vanished_manager_is_logged_once_and_ignored(self):
        notify, proc = self.start_notified(dh.SERVER, env={"WATCHDOG_USEC": "200000"})
        notify.wait_for(lambda f: f.get("READY") == "1")
        notify.close()
        os.unlink(notify.path)
        self.notify = None
        time.sleep(1.0)
        self.assertEqual(proc.log().count("action: notify | result: fail"), 1, proc.log())
        self.assertTrue(self.port_accepts())
        proc.signal(signal.SIGTERM)
        self.assertEqual(proc.wait(15), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
