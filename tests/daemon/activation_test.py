"""Socket activation: with LISTEN_PID/LISTEN_FDS the server serves the socket
it inherits as descriptor 3 (as systemd passes lottery-server.socket's)."""
import collections
import os
import signal
import socket
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import daemon_harness as dh  # noqa: E402
from harness import make_bets  # noqa: E402

# Moves the descriptor named by $ACTIVATION_FD to 3, sets LISTEN_PID to the
# process that then becomes the server (exec keeps the pid), and execs it.
WRAPPER = ('fd=$ACTIVATION_FD; unset ACTIVATION_FD; '
           'if [ "$fd" != 3 ]; then eval "exec 3<&$fd $fd<&-"; fi; '
           'LISTEN_PID=$$ LISTEN_FDS=${LISTEN_FDS_COUNT:-1}; export LISTEN_PID LISTEN_FDS; '
           'exec "$@"')


class ActivationTest(dh.DaemonTest):

    def activate(self, sock, argv, env=None, wait_listen=True):
        full_env = {"ACTIVATION_FD": str(sock.fileno())}
        full_env.update(env or {})
        return self.launch(["/bin/sh", "-c", WRAPPER, "sh", *argv], env=full_env,
                           pass_fds=(sock.fileno(),), wait_listen=wait_listen)

    def test_a_pre_bound_socket_serves_a_whole_round(self):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        self.addCleanup(listener.close)
        self.port = listener.getsockname()[1]
        unused_port = dh.free_port()
        # The configured port is another one: the server must not bind it.
        proc = self.activate(listener, [dh.SERVER, "--address", "127.0.0.1", "--port",
                                        str(unused_port), "--agencies", "2", "--storage",
                                        self.path("bets.csv")])
        listen = [e for e in proc.entries() if e.action == "listen" and e.result == "success"][0]
        self.assertEqual(listen.fields.get("activation"), "socket", proc.log())
        self.assertEqual(listen.fields.get("port"), str(self.port))
        self.assertIn(f"server.port says {unused_port}", proc.log())
        self.assertFalse(self.port_accepts(unused_port))
        # Our copy of the socket goes away: only the server's remains.
        listener.close()
        per_agency = {1: make_bets(1, 500, winners=2), 2: make_bets(2, 400, winners=1)}
        agencies = [self.start_agency(a, self.agency_file(a, bets)) for a, bets in per_agency.items()]
        for a in agencies:
            self.assertEqual(a.wait(60), 0, a.log())
        self.assertIn("cant_ganadores: 2", agencies[0].log())
        self.assertIn("cant_ganadores: 1", agencies[1].log())
        self.assertEqual(collections.Counter(self.bets_file()), self.expected_rows(per_agency))
        proc.signal(signal.SIGTERM)
        self.assertEqual(proc.wait(15), 0, proc.log())

    def test_activation_with_readiness(self):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        self.addCleanup(listener.close)
        notify = self.notify_socket()
        proc = self.activate(listener, [dh.SERVER, "--storage", self.path("bets.csv")],
                             env={"NOTIFY_SOCKET": notify.path})
        _, ready, raw = notify.wait_for(lambda f: f.get("READY") == "1")
        self.assertIn(f"port {listener.getsockname()[1]} (socket activation)", ready["STATUS"])
        proc.signal(signal.SIGTERM)
        self.assertEqual(proc.wait(15), 0)

    def test_a_descriptor_that_is_not_a_listening_socket_is_refused(self):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(udp.close)
        proc = self.activate(udp, [dh.SERVER, "--port", str(dh.free_port()), "--storage",
                                   self.path("bets.csv")], wait_listen=False)
        self.assertEqual(proc.wait(15), 71, proc.log())
        errors = [e for e in proc.entries() if e.level == "ERROR"]
        self.assertEqual(len(errors), 1, proc.log())
        self.assertEqual(errors[0].action, "listen")
        self.assertIn("not a listening TCP socket", errors[0].raw)

    def test_variables_for_another_process_are_ignored(self):
        self.port = dh.free_port()
        proc = self.launch([dh.SERVER, "--address", "127.0.0.1", "--port", str(self.port),
                            "--storage", self.path("bets.csv")],
                           env={"LISTEN_PID": "1", "LISTEN_FDS": "1"})
        listen = [e for e in proc.entries() if e.action == "listen" and e.result == "success"][0]
        self.assertNotIn("activation", listen.fields)
        self.assertTrue(self.port_accepts())


if __name__ == "__main__":
    unittest.main(verbosity=2)
