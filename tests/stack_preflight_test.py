"""tools/stack-preflight.sh (make stack-deploy's check) against a stand-in
`docker` on PATH that plays each state of an engine: not a swarm, a worker,
a manager with no labelled node (one node, several), two labelled nodes."""
import os
import stat
import subprocess
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "tools", "stack-preflight.sh")

# Answers from FAKE_* variables; `node update` is recorded in FAKE_LOG.
FAKE_DOCKER = """#!/bin/sh
case "$1 $2" in
  "info --format") echo "$FAKE_STATE" ;;
  "node ls")
    case "$*" in
      *node.label=lottery.server=true*) [ -n "$FAKE_LABELLED" ] && printf '%s\\n' $FAKE_LABELLED ;;
      *) printf '%s\\n' $FAKE_NODES ;;
    esac ;;
  "node update") echo "$*" >> "$FAKE_LOG" ;;
  *) echo "unexpected: $*" >&2; exit 9 ;;
esac
"""


class StackPreflightTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        docker = os.path.join(self.tmp.name, "docker")
        with open(docker, "w") as f:
            f.write(FAKE_DOCKER)
        os.chmod(docker, stat.S_IRWXU)
        self.log = os.path.join(self.tmp.name, "log")

    def preflight(self, state, nodes="n1", labelled=""):
        env = dict(os.environ, PATH=f"{self.tmp.name}:/usr/bin:/bin", FAKE_STATE=state,
                   FAKE_NODES=nodes, FAKE_LABELLED=labelled, FAKE_LOG=self.log)
        return subprocess.run(["sh", SCRIPT], env=env, capture_output=True, text=True, timeout=30)

    def updates(self):
        return open(self.log).read().splitlines() if os.path.exists(self.log) else []

    def test_not_a_swarm_is_refused_with_the_command_and_nothing_is_changed(self):
        r = self.preflight("inactive false")
        self.assertEqual(r.returncode, 1)
        self.assertIn("docker swarm init", r.stderr)
        self.assertEqual(self.updates(), [])

    def test_a_worker_is_refused(self):
        r = self.preflight("active false")
        self.assertEqual(r.returncode, 1)
        self.assertIn("worker", r.stderr)

    def test_the_only_node_is_labelled(self):
        r = self.preflight("active true", nodes="n1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.updates(), ["node update --label-add lottery.server=true n1"])
        self.assertIn("labelled the only node", r.stdout)

    def test_with_several_nodes_the_operator_chooses(self):
        r = self.preflight("active true", nodes="n1 n2 n3")
        self.assertEqual(r.returncode, 1)
        self.assertIn("docker node update --label-add lottery.server=true <node>", r.stderr)
        self.assertEqual(self.updates(), [])

    def test_a_labelled_node_is_used_as_it_is(self):
        r = self.preflight("active true", nodes="n1 n2", labelled="n2")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.updates(), [])

    def test_two_labelled_nodes_are_refused(self):
        r = self.preflight("active true", nodes="n1 n2", labelled="n1 n2")
        self.assertEqual(r.returncode, 1)
        self.assertIn("label exactly one", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
