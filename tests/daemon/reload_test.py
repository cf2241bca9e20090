"""SIGHUP re-reads the configuration file: reloadable keys take effect at once
without dropping a connection or a bet; others are logged as ignored; a broken
file keeps the running configuration."""
import collections
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import daemon_harness as dh  # noqa: E402
from protocol import E_TIMEOUT, E_TOO_MANY  # noqa: E402
from harness import (ACK, ECHO, ECHO_REPLY, ERROR, FINISHED, FINISHED_ACK, WELCOME,  # noqa: E402
                     WINNERS, WINNERS_QUERY, bets_frame, decode_error, decode_winners, frame,
                     hello, make_bets, s16)



class ReloadTest(dh.DaemonTest):

    def reload(self, proc, expect="success"):
        """Sends SIGHUP and waits for the reload to finish; returns the new log lines."""
        before = len(proc.entries())
        proc.signal(signal.SIGHUP)
        entries = self.wait_log(
            proc, lambda es: any(e.action == "reload" and ("applied" in e.fields or
                                                          "error" in e.fields)
                                 for e in es[before:]), what="reload done")
        new = entries[before:]
        done = [e for e in new if e.action == "reload" and ("applied" in e.fields or
                                                             "error" in e.fields)]
        self.assertEqual(done[0].result, expect, proc.log())
        return new

    def test_log_level_applies_to_new_and_existing_connections(self):
        config = self.write_config(level="INFO")
        proc = self.start_with_config(config)
        c = self.raw()
        c.send(hello(1))
        self.assertEqual(c.read()[0], WELCOME)
        two = [("Ana", "Paz", "1", "1990-01-01", 1), ("Eva", "Sol", "2", "1991-02-02", 2)]
        c.send(bets_frame(1, two))
        self.assertEqual(c.read()[0], ACK)
        self.assertEqual(self.count(proc.entries(), "apuesta_almacenada"), 0)
        self.assertNotIn(" DEBUG ", proc.log())

        self.write_config(level="DEBUG")
        new = self.reload(proc)
        changed = [e for e in new if e.fields.get("key") == "log.level"]
        self.assertEqual(len(changed), 1, proc.log())
        self.assertEqual((changed[0].fields["old"], changed[0].fields["new"]), ("INFO", "DEBUG"))

        # The connection opened before the reload is still served, and its
        # worker now logs at DEBUG (one line per stored bet).
        c.send(bets_frame(2, [("Luz", "Mar", "3", "1992-03-03", 3), ("Sol", "Rey", "4",
                                                                      "1993-04-04", 4)]))
        self.assertEqual(c.read()[0], ACK)
        self.wait_log(proc, lambda es: self.count(es, "apuesta_almacenada") == 2,
                      what="DEBUG lines of the existing worker")
        # A new connection: the parent's own DEBUG line for accept.
        n = self.raw()
        n.send(frame(ECHO, s16("hola")))
        self.assertEqual(n.read()[0], ECHO_REPLY)
        self.wait_log(proc, lambda es: any(e.action == "accept" and e.level == "DEBUG" for e in es),
                      what="DEBUG accept line")
        self.assertEqual(len(self.bets_file()), 4)

        # And back: INFO drops the DEBUG lines again.
        self.write_config(level="INFO")
        self.reload(proc)
        lines = len(proc.log().splitlines())
        e = self.raw()
        e.send(frame(ECHO, s16("otra")))
        self.assertEqual(e.read()[0], ECHO_REPLY)
        time.sleep(0.3)
        later = proc.log().splitlines()[lines:]
        self.assertFalse([line for line in later if " DEBUG " in line], later)

    def test_a_broken_file_keeps_the_running_configuration(self):
        config = self.write_config(level="INFO")
        proc = self.start_with_config(config)
        for broken in ('[server\nport = 1\n', '[server]\nport = "many"\n',
                       '[server]\nnonsense = 1\n[log]\nlevel = "DEBUG"\n', None):
            if broken is None:
                os.unlink(config)
            else:
                with open(config, "w") as f:
                    f.write(broken)
            new = self.reload(proc, expect="fail")
            failed = [e for e in new if e.action == "reload" and e.result == "fail"]
            self.assertIn("keeping the running configuration", failed[0].raw)
            self.assertIn(config, failed[0].fields["error"])
        # Still INFO, still on its port, still serving a round.
        c = self.raw()
        c.send(frame(ECHO, s16("hola")))
        self.assertEqual(c.read()[0], ECHO_REPLY)
        time.sleep(0.2)
        self.assertNotIn(" DEBUG ", proc.log())
        self.assertTrue(proc.alive())

    def test_keys_that_need_a_restart_are_logged_as_ignored(self):
        config = self.write_config(agencies=3, level="INFO")
        old_port = self.port
        proc = self.start_with_config(config)
        new_port = dh.free_port()
        self.write_config(agencies=4, port=new_port, level="INFO",
                          extra="[draw]\nwinning_number = 1\n")
        new = self.reload(proc)
        ignored = {e.fields["key"]: e for e in new if e.action == "reload" and e.result == "fail"}
        self.assertEqual(set(ignored), {"server.port", "server.agencies", "draw.winning_number"},
                         proc.log())
        self.assertEqual(ignored["server.port"].fields["new"], str(new_port))
        self.assertIn("needs a restart", ignored["server.port"].raw)
        self.assertEqual(ignored["server.port"].level, "WARNING")
        self.assertTrue(self.port_accepts(old_port))
        self.assertFalse(self.port_accepts(new_port))
        done = [e for e in new if "applied" in e.fields][0]
        self.assertEqual((done.fields["applied"], done.fields["ignored"]), ("0", "3"))

    def test_read_timeout_applies_from_the_next_frame(self):
        config = self.write_config(extra='read_timeout = "60s"')
        proc = self.start_with_config(config)
        self.write_config(extra='read_timeout = "500ms"')
        self.reload(proc)
        c = self.raw()
        start = time.monotonic()
        c.send(frame(ECHO, s16("hola"))[:3])  # a frame that stalls
        kind, payload = c.read()
        self.assertEqual(kind, ERROR)
        self.assertEqual(decode_error(payload)[0], E_TIMEOUT)
        self.assertLess(time.monotonic() - start, 10)

    def test_max_connections_applies_at_once(self):
        config = self.write_config(extra="max_connections = 0")
        proc = self.start_with_config(config)
        held = [self.raw() for _ in range(3)]
        for c in held:
            c.send(frame(ECHO, s16("x")))
            self.assertEqual(c.read()[0], ECHO_REPLY)
        self.write_config(extra="max_connections = 3")
        self.reload(proc)
        # At the new limit, a new connection is refused and evicts the
        # oldest one that has not said HELLO, so the next try finds room.
        extra = self.raw()
        kind, payload = extra.read()
        self.assertEqual(kind, ERROR)
        code, _, message = decode_error(payload)
        self.assertEqual(code, E_TOO_MANY)
        self.assertIn("3 connections", message)
        self.assertTrue(extra.closed())
        self.assertTrue(held[0].closed())
        deadline = time.monotonic() + 5
        # Both logged within a second (rate-limited lines).
        while ("reason: max_connections" not in proc.log()
               or "error: too many connections" not in proc.log()):
            self.assertLess(time.monotonic(), deadline, proc.log())
            time.sleep(0.1)
        # The younger ones are untouched.
        for c in held[1:]:
            c.send(frame(ECHO, s16("y")))
            self.assertEqual(c.read()[0], ECHO_REPLY)

    def test_a_connection_limit_below_the_agencies_is_refused(self):
        config = self.write_config(agencies=3, extra="max_connections = 5")
        proc = self.start_with_config(config)
        self.write_config(agencies=3, level="DEBUG", extra="max_connections = 2")
        new = self.reload(proc, expect="fail")
        failed = [e for e in new if e.action == "reload" and e.result == "fail"]
        self.assertIn("server.max_connections (2)", failed[0].fields["error"])
        # Nothing of that file was applied, not even the level.
        self.assertFalse([e for e in new if e.fields.get("key")], proc.log())
        held = [self.raw() for _ in range(4)]
        for c in held:
            c.send(frame(ECHO, s16("x")))
            self.assertEqual(c.read()[0], ECHO_REPLY)
        self.assertNotIn(" DEBUG ", proc.log())

    def test_reload_notifies_the_manager(self):
        notify = self.notify_socket()
        config = self.write_config()
        proc = self.start_with_config(config, env={"NOTIFY_SOCKET": notify.path})
        notify.wait_for(lambda f: f.get("READY") == "1")
        count = len(notify.messages)
        proc.signal(signal.SIGHUP)
        notify.wait_for(lambda f: f.get("RELOADING") == "1", what="RELOADING=1")
        reloading_at = next(i for i, m in enumerate(notify.messages) if m[1].get("RELOADING"))
        self.assertGreaterEqual(reloading_at, count)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
                m[1].get("READY") == "1" for m in notify.messages[reloading_at:]):
            notify.poll(0.2)
        ready_again = [m for m in notify.messages[reloading_at:] if m[1].get("READY") == "1"]
        self.assertTrue(ready_again, notify.messages)
        self.assertTrue(int(notify.messages[reloading_at][1]["MONOTONIC_USEC"]) > 0)

    def test_reloads_during_a_round_lose_no_bet(self):
        config = self.write_config(agencies=3)
        proc = self.start_with_config(config)
        per_agency = {a: make_bets(a, 3000, winners=a) for a in (1, 2)}
        agencies = [self.start_agency(a, self.agency_file(a, bets), batch=10)
                    for a, bets in per_agency.items()]
        # Agency 3 is driven by hand so that reloads land between its batches.
        per_agency[3] = make_bets(3, 200, winners=3)
        c = self.raw()
        c.send(hello(3))
        self.assertEqual(c.read()[0], WELCOME)
        levels = ["DEBUG", "INFO", "WARNING", "INFO"]
        for seq in range(1, 21):
            c.send(bets_frame(seq, per_agency[3][(seq - 1) * 10:seq * 10]))
            kind, payload = c.read()
            self.assertEqual(kind, ACK, payload)
            self.write_config(agencies=3, level=levels[seq % len(levels)])
            proc.signal(signal.SIGHUP)
            time.sleep(0.02)
        c.send(frame(FINISHED) + frame(WINNERS_QUERY))
        self.assertEqual(c.read()[0], FINISHED_ACK)
        kind, payload = c.read()
        self.assertEqual(kind, WINNERS)
        self.assertEqual(sorted(decode_winners(payload)[1]),
                         sorted(b[2] for b in per_agency[3] if b[4] == 7574))
        for a in agencies:
            self.assertEqual(a.wait(60), 0, a.log())
        self.assertEqual(collections.Counter(self.bets_file()), self.expected_rows(per_agency))
        for a, p in zip((1, 2), agencies):
            self.assertIn(f"cant_ganadores: {a}", p.log())
        self.assertTrue(proc.alive())
        self.assertGreaterEqual(proc.log().count("action: reload | result: in_progress"), 10)

if __name__ == "__main__":
    unittest.main(verbosity=2)
