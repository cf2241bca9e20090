"""Issue 30's failover, small: a PostgreSQL primary with a synchronous
standby, an active and a `--standby` lottery-server on a multi-host DSN,
5 agencies x 20,000 bets given both servers (batches of 20, a window of 2:
slow enough that the round is still running at the kill). After 10,000 committed rows the
active server's process group is SIGKILLed, the primary stopped at once and
the standby promoted: the standby server takes over on the promoted
database, every agency finishes with its winners, and every bet is there
exactly once. The same scenario at full size (5 x 100,000, after 150,000)
is tests/load/pg_failover_test.py; both are tests/lib/pg_failover.py."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import pg_failover  # noqa: E402


class PgFailoverSmallTest(pg_failover.PgFailoverTest):

    def test_the_standby_server_follows_the_promoted_database(self):
        self.run_failover(agencies=5, bets=20_000, takeover_at=10_000, batch=20, window=2,
                          round_timeout=90, label="pg failover (small)")


if __name__ == "__main__":
    unittest.main(verbosity=2)
