"""The swarm suite: the stack file of tools/gen_compose.py --swarm deployed
with `docker stack deploy` on a single-node Docker Swarm (docs/DEPLOY.md).

- A whole round of 5 agencies over mutual TLS, each agency's winners checked
  against its dataset.
- A round in which the server task's container and one agency's are killed
  (SIGKILL) while the agencies are sending: Swarm starts new tasks (the
  server's on the same node and volume), the server resumes the round from
  its journal, the agencies reconnect and resume, and every bet ends in the
  bets file exactly once.

The suite initialises the swarm when the engine is not in one (and leaves it
again at the end; a swarm it found stays), labels the node
lottery.server=true when no node has that label (and removes the label it
added), and removes its stacks, secrets, configs, volumes and networks.

Without a reachable Docker engine it exits 77 (meson: skipped). The images
are built first, as the docker suite builds them (DOCKER_BUILD_FLAGS).
"""
import collections
import csv
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "docker"))
import harness  # noqa: E402  (parse_log, make_bets, write_agency_file)
from docker_test import build_images, engine_problem, run  # noqa: E402

ROOT = harness.ROOT
STACK = "lotteryswarmtest"
GEN_COMPOSE = os.path.join(ROOT, "tools", "gen_compose.py")
GEN_DATASET = os.path.join(ROOT, "tools", "gen_dataset.py")
WINNING = 7574


def docker(*args, timeout=120, check=True):
    return run(["docker", *args], timeout=timeout, check=check)


class Swarm:
    """Joins the engine to a swarm and labels its node for the server, undoing
    only what it did."""

    def __init__(self):
        self.initialised = False
        self.labelled_node = None

    def enter(self):
        state = docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()
        if state != "active":
            docker("swarm", "init", "--advertise-addr", "127.0.0.1")
            self.initialised = True
        node = docker("info", "--format", "{{.Swarm.NodeID}}").stdout.strip()
        labelled = docker("node", "ls", "-q", "--filter", "node.label=lottery.server=true").stdout.split()
        if node not in labelled:
            if labelled:
                raise RuntimeError(f"another node ({labelled[0]}) carries lottery.server=true; "
                                   "the suite needs the server on this one")
            docker("node", "update", "--label-add", "lottery.server=true", node)
            self.labelled_node = node

    def leave(self):
        if self.labelled_node and not self.initialised:
            docker("node", "update", "--label-rm", "lottery.server", self.labelled_node, check=False)
        if self.initialised:
            docker("swarm", "leave", "--force", check=False, timeout=120)


def remove_stack(stack):
    """The stack's services, then (once their containers are gone) its
    network and volume; secrets and configs go with `stack rm`."""
    docker("stack", "rm", stack, check=False)
    label = f"label=com.docker.stack.namespace={stack}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        left = (docker("ps", "-aq", "--filter", label).stdout.split()
                + docker("network", "ls", "-q", "--filter", label).stdout.split())
        if not left:
            break
        time.sleep(1)
    for volume in docker("volume", "ls", "-q", "--filter", label).stdout.split():
        docker("volume", "rm", "-f", volume, check=False)
    # Secrets and configs are removed by stack rm; anything left is ours too.
    for kind in ("secret", "config"):
        listed = docker(kind, "ls", "-q", "--filter", label, check=False)
        if listed.returncode == 0:  # not a swarm manager: nothing of ours can be there
            for ident in listed.stdout.split():
                docker(kind, "rm", ident, check=False)


class SwarmTest(unittest.TestCase):

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="lottery-swarm-")
        self.dir = self._tmp.name
        shutil.copytree(os.path.join(ROOT, "conf"), os.path.join(self.dir, "conf"))
        os.mkdir(os.path.join(self.dir, "dataset"))
        self.addCleanup(self._tmp.cleanup)

    def deploy(self, clients):
        stack_file = os.path.join(self.dir, "stack.yml")
        r = run([sys.executable, GEN_COMPOSE, "--swarm", stack_file, str(clients)], check=False)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.addCleanup(remove_stack, STACK)
        r = docker("stack", "deploy", "-c", stack_file, STACK, check=False, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout)

    def datasets(self, per_agency):
        """Writes dataset/agency-K.csv for K in per_agency (K -> bets); returns
        them."""
        for a, bets in per_agency.items():
            harness.write_agency_file(os.path.join(self.dir, "dataset", f"agency-{a}.csv"), bets)
        return per_agency

    def containers(self, service):
        """[(id, state, exit code)] of every container a service's tasks ran."""
        ids = docker("ps", "-aq", "--filter",
                     f"label=com.docker.swarm.service.name={STACK}_{service}").stdout.split()
        out = []
        for ident in ids:
            state, code = docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}",
                                 ident).stdout.split()
            out.append((ident, state, int(code)))
        return out

    def logs(self, service):
        """The log of the service's current container: the running one, else the
        one that exited 0. `docker logs` of one container, not `docker service
        logs`, which can hang on a service whose earlier task was killed."""
        found = self.containers(service)
        for wanted in (lambda st, code: st == "running", lambda st, code: code == 0):
            for ident, state, code in found:
                if wanted(state, code):
                    return docker("logs", ident, timeout=60).stdout
        return f"(no current container of {service}: {found})"

    def tasks(self, service):
        """[(desired state, current state, error)] of a service's tasks."""
        out = docker("service", "ps", "--no-trunc", "--format",
                     "{{.DesiredState}}|{{.CurrentState}}|{{.Error}}", f"{STACK}_{service}").stdout
        return [tuple(line.split("|", 2)) for line in out.splitlines() if line]

    def wait_agencies_complete(self, clients, timeout):
        deadline = time.monotonic() + timeout
        pending = set(range(1, clients + 1))
        while pending and time.monotonic() < deadline:
            for a in sorted(pending):
                if any(cur.startswith("Complete") for _, cur, _ in self.tasks(f"client{a}")):
                    pending.discard(a)
            time.sleep(1)
        if pending:
            self.fail("agencies that never completed: "
                      + "; ".join(f"client{a}: {self.tasks(f'client{a}')}" for a in sorted(pending))
                      + "\nserver:\n" + self.logs("server")[-4000:])

    def running_container(self, service, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ids = docker("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={STACK}_{service}",
                         "--filter", "status=running").stdout.split()
            if ids:
                return ids[0]
            time.sleep(0.5)
        self.fail(f"no running {service} task")

    def server_container(self, timeout=60):
        return self.running_container("server", timeout)

    def bets_file_rows(self):
        """The bets file's rows (CSV, docs/STORAGE.md), read inside the server task."""
        r = subprocess.run(["docker", "exec", self.server_container(), "cat",
                            "/var/lib/lottery/bets.csv"], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=120, check=True)
        text = r.stdout.decode("utf-8")
        return collections.Counter(tuple(row) for row in csv.reader(io.StringIO(text, newline="")))

    def assertRowsEqual(self, rows, expected):
        missing, extra = expected - rows, rows - expected
        self.assertFalse(missing or extra,
                         f"{sum(missing.values())} rows missing (e.g. {list(missing)[:3]}), "
                         f"{sum(extra.values())} unexpected (e.g. {list(extra)[:3]})")

    def check_winners(self, sent):
        for a, bets in sent.items():
            logs = self.logs(f"client{a}")
            expected = sorted(b[2] for b in bets if b[4] == WINNING)
            got = sorted(line for line in logs.splitlines() if line.isdigit())
            self.assertEqual(got, expected, f"agency {a}'s winners:\n{logs[-3000:]}")

    def expected_rows(self, sent):
        rows = collections.Counter()
        for a, bets in sent.items():
            for first, last, doc, birth, number in bets:
                rows[(str(a), first, last, doc, birth, str(number))] += 1
        return rows

    def test_a_round_of_five_agencies_on_a_swarm(self):
        sent = self.datasets({a: harness.make_bets(a, 300 + 50 * a, winners=a % 3)
                              for a in range(1, 6)})
        self.deploy(5)
        self.wait_agencies_complete(5, timeout=240)
        self.check_winners(sent)
        server = harness.parse_log(self.logs("server"))
        self.assertEqual(sum(1 for e in server if e.action == "sorteo" and e.result == "success"), 1)
        self.assertEqual(sum(1 for e in server if e.action == "tls_handshake"
                             and e.result == "success" and e.fields.get("agency") != "0"), 5)
        self.assertRowsEqual(self.bets_file_rows(), self.expected_rows(sent))

    def test_the_server_task_killed_mid_round_is_restarted_and_resumes(self):
        # Enough batches (of the shipped 100) that the round is still going
        # when the kill comes.
        per_agency = 100000
        sent = self.datasets({a: harness.make_bets(a, per_agency, winners=2) for a in range(1, 6)})
        self.deploy(5)
        first = self.server_container()
        deadline = time.monotonic() + 120
        while True:
            size = docker("exec", first, "sh", "-c", "wc -l < /var/lib/lottery/bets.csv",
                          check=False).stdout.strip()
            if size.isdigit() and int(size) >= 5000:
                break
            self.assertLess(time.monotonic(), deadline, "the agencies never started storing")
            time.sleep(0.2)
        self.assertLess(int(size), 5 * per_agency, "the round ended before the kill")
        # Agency 3's task goes down too: Swarm restarts it and it resumes.
        agency = self.running_container("client3")
        docker("kill", first, agency)
        self.wait_agencies_complete(5, timeout=300)
        self.assertTrue([t for t in self.tasks("client3") if t[1].startswith("Failed")],
                        f"agency 3's killed task is not reported failed: {self.tasks('client3')}")
        self.assertNotEqual(self.server_container(), first, "Swarm did not start a new server task")
        failed = [t for t in self.tasks("server") if t[1].startswith("Failed")]
        self.assertTrue(failed, f"the killed task is not reported failed: {self.tasks('server')}")
        server = harness.parse_log(self.logs("server"))
        resumed = [e for e in server if e.action == "recovery" and e.fields.get("round") == "resumed"]
        self.assertTrue(resumed, "the new server task did not resume the round")
        self.check_winners(sent)
        rows = self.bets_file_rows()
        self.assertEqual(sum(rows.values()), 5 * per_agency)
        self.assertRowsEqual(rows, self.expected_rows(sent))  # every bet exactly once


def main():
    problem = engine_problem()
    if problem:
        print(f"SKIP: {problem}; the swarm suite needs an engine "
              "(on the CI machines: ../shared/tools/docker-engine.sh start)")
        return 77
    remove_stack(STACK)
    build_images()
    swarm = Swarm()
    swarm.enter()
    try:
        prog = unittest.main(module=__name__, argv=[sys.argv[0], "-v", *sys.argv[1:]], exit=False)
    finally:
        remove_stack(STACK)
        swarm.leave()
    return 0 if prog.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
