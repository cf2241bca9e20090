"""Issue 30's "done when" failover (meson suite `slow`): a PostgreSQL
primary with a synchronous streaming standby, an active and a `--standby`
lottery-server on a multi-host DSN (target_session_attrs=read-write),
5 agencies x 100,000 bets given both servers' addresses. Once 150,000 rows
are committed, the active server's process group is SIGKILLed, the primary
stopped at once (immediate) and the standby promoted: the standby server
takes over on the promoted database, every agency exits 0 with its winners
right, and the promoted database holds every bet of the round exactly once.
Prints its timings. The scenario is tests/lib/pg_failover.py; the
integration suite runs it small (tests/integration/pg_failover_test.py)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import pg_failover  # noqa: E402


class PgFailoverLoadTest(pg_failover.PgFailoverTest):

    def test_5_agencies_of_100000_bets_fail_over_after_150000(self):
        self.run_failover(agencies=5, bets=100_000, takeover_at=150_000, batch=100,
                          round_timeout=600, label="pg failover")


if __name__ == "__main__":
    unittest.main(verbosity=2)
