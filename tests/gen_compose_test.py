"""tools/gen_compose.py: the committed compose file, the file's shape for any
N, the agency count it gives the server, the dataset check, argument
validation and atomic writes. No Docker engine needed."""
import os
import re
import stat
import subprocess
import sys
import tempfile
import unittest

ROOT = os.environ.get("LOTTERY_SOURCE_ROOT",
                      os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GEN = os.path.join(ROOT, "tools", "gen_compose.py")


def gen(*args):
    return subprocess.run([sys.executable, GEN, *args], capture_output=True, text=True, timeout=30)


def services(text):
    """{service: its block of lines} for the top-level services: mapping."""
    block = text.split("\nservices:\n", 1)[1].split("\nnetworks:\n", 1)[0]
    out, name = {}, None
    for line in block.split("\n"):
        m = re.match(r"^  (\S+):$", line)
        if m:
            name = m.group(1)
            out[name] = []
        elif name and line.strip():
            out[name].append(line.strip())
    return out


class GenComposeTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.out = os.path.join(self.tmp.name, "compose.yaml")
        self.datasets(12)

    def datasets(self, n):
        """dataset/agency-1..n.csv beside the output, and no other."""
        folder = os.path.join(self.tmp.name, "dataset")
        if os.path.isdir(folder):
            for name in os.listdir(folder):
                path = os.path.join(folder, name)
                os.rmdir(path) if os.path.isdir(path) else os.unlink(path)
        os.makedirs(folder, exist_ok=True)
        for i in range(1, n + 1):
            with open(os.path.join(folder, f"agency-{i}.csv"), "w") as f:
                f.write("Ana,Paz,1,1990-01-01,7574\n")

    def generate(self, *args):
        r = gen(self.out, *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(self.out, encoding="utf-8") as f:
            return f.read()

    def test_committed_dev_file_is_the_generators_output_for_five(self):
        with open(os.path.join(ROOT, "docker-compose-dev.yaml"), encoding="utf-8") as f:
            committed = f.read()
        self.assertEqual(self.generate("5"), committed,
                         "docker-compose-dev.yaml is stale: run `make compose`")

    def test_services_network_volumes_for_n_agencies(self):
        for n in (1, 3, 12):
            with self.subTest(n=n):
                text = self.generate(str(n))
                svc = services(text)
                self.assertEqual(list(svc), ["server"] + [f"client{i}" for i in range(1, n + 1)])
                self.assertIn("container_name: server", svc["server"])
                self.assertIn("- ./conf/server.toml:/etc/lottery/server.toml:ro", svc["server"])
                self.assertIn("- bets:/var/lib/lottery", svc["server"])
                self.assertTrue(any(l.startswith("test:") and "lottery-echo-check" in l
                                    for l in svc["server"]), svc["server"])
                for i in range(1, n + 1):
                    c = svc[f"client{i}"]
                    self.assertIn(f"container_name: client{i}", c)
                    self.assertIn(f"- CLI_ID={i}", c)
                    self.assertIn("- ./conf/client.toml:/etc/lottery/client.toml:ro", c)
                    self.assertIn(f"- ./dataset/agency-{i}.csv:/srv/lottery/dataset/agency-{i}.csv:ro", c)
                    # Only its own dataset.
                    self.assertEqual(len([l for l in c if "dataset/agency-" in l]), 1)
                for name, block in svc.items():
                    self.assertIn("- testing_net", block, name)
                    self.assertTrue(any(l.startswith("stop_grace_period:") for l in block), name)
                    self.assertFalse(any(l.startswith("build:") for l in block), name)
                self.assertIn("\nnetworks:\n  testing_net:\n", text)
                self.assertIn("- subnet: 172.25.125.0/24", text)
                self.assertTrue(text.endswith("volumes:\n  bets:\n"))
                # Compose v1 compatible: no top-level name:.
                self.assertIsNone(re.search(r"^name:", text, re.M))

    def test_zero_gives_the_server_alone(self):
        text = self.generate("0")
        svc = services(text)
        self.assertEqual(list(svc), ["server"])
        # No agency count: the server's config file says it.
        self.assertNotIn("SERVER_AGENCIES", text)
        self.datasets(0)
        self.assertEqual(list(services(self.generate("0"))), ["server"])

    def test_the_server_is_told_the_agency_count_it_was_made_for(self):
        for n in (1, 3, 7):
            with self.subTest(n=n):
                text = self.generate(str(n))
                svc = services(text)
                self.assertIn("environment:", svc["server"])
                self.assertEqual([l for l in svc["server"] if "SERVER_AGENCIES" in l],
                                 [f"- SERVER_AGENCIES={n}"])
                # Nothing else sets a server key the config file might disagree
                # with, but where the certificates are: the mounts fix that.
                self.assertEqual([l for l in svc["server"] if l.startswith("- SERVER_")
                                  and not l.startswith("- SERVER_TLS_")],
                                 [f"- SERVER_AGENCIES={n}"])
                header = "\n".join(l for l in text.split("\n") if l.startswith("#"))
                self.assertIn(f"SERVER_AGENCIES={n}", header)
                self.assertIn("whatever conf/server.toml says", header)
                for i in range(1, n + 1):
                    self.assertNotIn("SERVER_AGENCIES", "\n".join(svc[f"client{i}"]))

    def test_missing_datasets_refused_with_their_names_and_the_command(self):
        self.datasets(5)
        r = gen(self.out, "7")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertEqual(len(r.stderr.strip().split("\n")), 1, r.stderr)
        self.assertIn("dataset/agency-6.csv, dataset/agency-7.csv", r.stderr)
        self.assertNotIn("agency-5.csv", r.stderr)
        self.assertIn("python3 tools/gen_dataset.py --agencies 7 --output "
                      + os.path.join(self.tmp.name, "dataset"), r.stderr)
        self.assertIn("--allow-missing-datasets", r.stderr)
        self.assertFalse(os.path.exists(self.out))
        # Nothing was created in their place.
        self.assertEqual(sorted(os.listdir(os.path.join(self.tmp.name, "dataset"))),
                         [f"agency-{i}.csv" for i in range(1, 6)])
        self.assertEqual(os.listdir(self.tmp.name), ["dataset"])

    def test_a_directory_is_not_a_dataset(self):
        self.datasets(3)
        os.unlink(os.path.join(self.tmp.name, "dataset", "agency-2.csv"))
        os.mkdir(os.path.join(self.tmp.name, "dataset", "agency-2.csv"))
        r = gen(self.out, "3")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("dataset/agency-2.csv", r.stderr)
        self.assertFalse(os.path.exists(self.out))

    def test_missing_datasets_allowed_by_the_flag_are_warned_about(self):
        self.datasets(1)
        r = gen(self.out, "3", "--allow-missing-datasets")
        self.assertEqual(r.returncode, 0, r.stderr)
        warnings = [l for l in r.stderr.split("\n") if "warning" in l]
        self.assertEqual(len(warnings), 2, r.stderr)
        self.assertIn("dataset/agency-2.csv", warnings[0])
        self.assertIn("dataset/agency-3.csv", warnings[1])
        with open(self.out, encoding="utf-8") as f:
            svc = services(f.read())
        self.assertEqual(list(svc), ["server", "client1", "client2", "client3"])
        self.assertIn("- SERVER_AGENCIES=3", svc["server"])
        # With every file present, the flag changes nothing and warns of nothing.
        self.datasets(3)
        r = gen(self.out, "3", "--allow-missing-datasets")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("warning", r.stderr)

    def test_grace_period_outlasts_the_servers_shutdown_timeout(self):
        text = self.generate("1")
        grace = int(re.search(r"stop_grace_period: (\d+)s", text).group(1))
        with open(os.path.join(ROOT, "conf", "server.toml"), encoding="utf-8") as f:
            shutdown = int(re.search(r'^shutdown_timeout = "(\d+)s"', f.read(), re.M).group(1))
        self.assertGreater(grace, shutdown)
        with open(os.path.join(ROOT, "Makefile"), encoding="utf-8") as f:
            self.assertRegex(f.read(), rf"STOP_GRACE\s*\?= {grace}\b")

    def test_client_env_is_quoted_and_not_interpolated(self):
        text = self.generate("2", "--client-env", 'NOMBRE=Ana "la" $HOME', "--client-env", "NUMERO=7574")
        svc = services(text)
        for i in (1, 2):
            self.assertIn('- "NOMBRE=Ana \\"la\\" $$HOME"', svc[f"client{i}"])
            self.assertIn('- "NUMERO=7574"', svc[f"client{i}"])

    def test_bad_arguments_exit_2_and_write_nothing(self):
        for args in (["-1"], ["abc"], ["2.5"], [""], [], ["1", "--client-env", "NOVALUE"],
                     ["1", "--client-env", "1BAD=x"], ["1001"]):
            with self.subTest(args=args):
                r = gen(self.out, *args) if args != [] else gen(self.out)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn("error", r.stderr)
                self.assertFalse(os.path.exists(self.out))

    def test_write_is_atomic_and_replaces(self):
        with open(self.out, "w") as f:
            f.write("old")
        os.chmod(self.out, 0o600)
        self.generate("1")
        with open(self.out) as f:
            self.assertTrue(f.read().startswith("# Generated by tools/gen_compose.py"))
        # No temp file left (certs/ is the certificate set).
        self.assertEqual(sorted(os.listdir(self.tmp.name)), ["certs", "compose.yaml", "dataset"])
        self.assertEqual(stat.S_IMODE(os.stat(self.out).st_mode), 0o644)

    def test_each_container_mounts_only_its_own_key(self):
        text = self.generate("3")
        svc = services(text)
        certs = os.path.join(self.tmp.name, "certs")
        self.assertEqual(stat.S_IMODE(os.stat(certs).st_mode), 0o700)
        keys = {name: [l for l in block if l.startswith("- ./certs/") and ".key:" in l]
                for name, block in svc.items()}
        self.assertEqual(keys["server"], ["- ./certs/server.key:/etc/lottery/tls/server.key:ro"])
        for i in (1, 2, 3):
            self.assertEqual(keys[f"client{i}"],
                             [f"- ./certs/agency-{i}.key:/etc/lottery/tls/agency-{i}.key:ro"])
            self.assertIn(f"- ./certs/agency-{i}.pem:/etc/lottery/tls/agency-{i}.pem:ro",
                          svc[f"client{i}"])
        self.assertNotIn("ca.key", text)
        for name, block in svc.items():
            self.assertIn("- ./certs/ca.pem:/etc/lottery/tls/ca.pem:ro", block, name)
            # Every mounted file exists: Docker would make a directory otherwise.
            for line in block:
                m = re.match(r"^- \./(certs/[^:]+):", line)
                if m:
                    self.assertTrue(os.path.isfile(os.path.join(self.tmp.name, m.group(1))), line)
        # Each key is readable by its container's user, and by nobody else.
        uids = {"server.key": 10001, "agency-1.key": 10002, "probe.key": 10002}
        for key, uid in uids.items():
            st = os.stat(os.path.join(certs, key))
            if os.geteuid() == 0:
                self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (uid, 0o600), key)
            else:
                self.assertEqual(stat.S_IMODE(st.st_mode), 0o644, key)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(certs, "ca.key")).st_mode), 0o600)
        # The uids are the images' users.
        for image, uid in (("server", 10001), ("agency", 10002)):
            with open(os.path.join(ROOT, "docker", f"{image}.Dockerfile"), encoding="utf-8") as f:
                self.assertIn(f"--uid {uid}", f.read())
        # The server's health check speaks TLS with its own certificate.
        self.assertTrue(any(l.startswith("test:") and '"server"]' in l for l in svc["server"]))

    def test_the_environment_names_the_mounted_certificates(self):
        # A config file that names no TLS key must still give mutual TLS: the
        # built-in defaults of those keys are empty, the environment beats
        # the file.
        svc = services(self.generate("3"))
        wanted = {"server": {"SERVER_TLS_CERTIFICATE": "server.pem",
                             "SERVER_TLS_PRIVATE_KEY": "server.key",
                             "SERVER_TLS_CLIENT_CA": "ca.pem", "SERVER_TLS_CRL": "crl.pem"}}
        for i in (1, 2, 3):
            wanted[f"client{i}"] = {"CLI_TLS_CERTIFICATE": f"agency-{i}.pem",
                                    "CLI_TLS_PRIVATE_KEY": f"agency-{i}.key",
                                    "CLI_TLS_SERVER_CA": "ca.pem"}
        for name, env in wanted.items():
            block = svc[name]
            mounted = {l.split(":")[1] for l in block if l.startswith("- ./certs/")}
            for key, file in env.items():
                self.assertIn(f"- {key}=/etc/lottery/tls/{file}", block, name)
                self.assertIn(f"/etc/lottery/tls/{file}", mounted, name)
        # --plaintext names no certificate.
        plain = services(self.generate("1", "--plaintext"))
        self.assertFalse([l for b in plain.values() for l in b if "_TLS_" in l and "MODE" not in l])

    def test_every_container_is_hardened(self):
        svc = services(self.generate("2"))
        for name, block in svc.items():
            for line in ("read_only: true", "cap_drop:", "- ALL", "security_opt:",
                         "- no-new-privileges:true", "tmpfs:", "- /tmp"):
                self.assertIn(line, block, name)
            self.assertTrue(any(re.match(r"^pids_limit: \d+$", l) for l in block), name)
            self.assertTrue(any(re.match(r"^mem_limit: \d+[mg]$", l) for l in block), name)
        pids = int(next(l for l in svc["server"] if l.startswith("pids_limit")).split()[1])
        # Room for a worker per connection the server may serve (2 x 5 + 16).
        self.assertGreater(pids, 2 * 5 + 16)

    def test_plaintext_makes_no_certificates_and_says_so(self):
        text = self.generate("2", "--plaintext")
        svc = services(text)
        self.assertFalse(os.path.exists(os.path.join(self.tmp.name, "certs")))
        self.assertNotIn("certs/", text)
        self.assertIn("- SERVER_TLS_MODE=off", svc["server"])
        self.assertIn("- CLI_TLS_MODE=off", svc["client1"])
        self.assertTrue(any(l.startswith("test:") and '"off"]' in l for l in svc["server"]))
        self.assertIn("any peer on the network can claim any agency", text)

    def test_swarm_stack_grants_each_agency_only_its_own_secrets(self):
        text = self.generate("--swarm", "3")
        svc = services(text)
        self.assertEqual(sorted(svc), ["client1", "client2", "client3", "server"])
        certs = os.path.join(self.tmp.name, "certs")

        def granted(block):
            return [l.split(": ", 1)[1] for l in block if l.startswith("target: ") and
                    not l.startswith("target: /")]

        self.assertEqual(granted(svc["server"]), ["ca.pem", "crl.pem", "server.pem", "server.key"])
        for i in (1, 2, 3):
            self.assertEqual(granted(svc[f"client{i}"]), ["ca.pem", f"agency-{i}.pem",
                                                          f"agency-{i}.key"])
            self.assertIn(f"- CLI_ID={i}", svc[f"client{i}"])
            self.assertIn(f"- CLI_TLS_PRIVATE_KEY=/run/secrets/agency-{i}.key", svc[f"client{i}"])
            # Its dataset, by absolute path, read-only.
            self.assertIn(f'source: "{self.tmp.name}/dataset/agency-{i}.csv"', svc[f"client{i}"])
        # Each secret is declared with the file it comes from, named after its content.
        declared = dict(re.findall(r"^  (\S+):\n    file: \"([^\"]+)\"$", text, re.M))
        for name in ("server.key", "agency-2.key", "ca.pem"):
            ids = [k for k, v in declared.items() if v == os.path.join(certs, name)]
            self.assertEqual(len(ids), 1, name)
            self.assertRegex(ids[0], r"^" + re.escape(name.replace(".", "_")) + r"_[0-9a-f]{12}$")
        self.assertNotIn("ca.key", text)
        self.assertNotIn("probe.key", text)
        # A re-issued key is a new secret name (a swarm secret cannot change).
        with open(os.path.join(certs, "agency-2.key"), "a") as f:
            f.write("\n")
        again = self.generate("--swarm", "3")
        self.assertNotEqual(re.findall(r"agency-2_key_\w+|agency_2_key_\w+", text),
                            re.findall(r"agency-2_key_\w+|agency_2_key_\w+", again))

    def test_swarm_server_placement_restart_dnsrr_and_grace(self):
        text = self.generate("--swarm", "2")
        server = services(text)["server"]
        for line in ("replicas: 1", "endpoint_mode: dnsrr",
                     "- node.labels.lottery.server == true", "condition: on-failure",
                     "source: bets", "target: /var/lib/lottery", "- SERVER_AGENCIES=2",
                     "read_only: true", "- ALL"):
            self.assertIn(line, server)
        grace = [l for l in server if l.startswith("stop_grace_period:")]
        self.assertEqual(len(grace), 1)
        seconds = int(grace[0].split(": ")[1].rstrip("s"))
        with open(os.path.join(ROOT, "conf", "server.toml")) as f:
            timeout = re.search(r'^shutdown_timeout = "(\d+)s"', f.read(), re.M)
        self.assertGreater(seconds, int(timeout.group(1)))
        for i in (1, 2):
            client = services(text)[f"client{i}"]
            self.assertIn("condition: on-failure", client)
            self.assertIn("endpoint_mode: dnsrr", client)
            self.assertNotIn("- node.labels.lottery.agency.1 == true", client)
        # Compose-only keys have no place in a stack file.
        for key in ("container_name:", "depends_on:", "pids_limit:", "build:"):
            self.assertNotIn(key, text)
        self.assertIn("driver: overlay", text)
        pinned = services(self.generate("--swarm", "--pin-agencies", "2"))
        self.assertIn("- node.labels.lottery.agency.2 == true", pinned["client2"])

    def test_swarm_dataset_dir_must_be_absolute_and_hold_the_files(self):
        r = gen(self.out, "--swarm", "--dataset-dir", "relative/dir", "2")
        self.assertEqual(r.returncode, 2)
        self.assertIn("absolute", r.stderr)
        r = gen(self.out, "--dataset-dir", self.tmp.name, "2")
        self.assertEqual(r.returncode, 2)
        self.assertIn("go with --swarm", r.stderr)
        elsewhere = os.path.join(self.tmp.name, "elsewhere")
        os.mkdir(elsewhere)
        r = gen(self.out, "--swarm", "--dataset-dir", elsewhere, "2")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn(os.path.join(elsewhere, "agency-1.csv"), r.stderr)
        self.assertFalse(os.path.exists(self.out))

    def test_unwritable_destination_exits_1(self):
        r = gen(os.path.join(self.tmp.name, "missing-dir", "compose.yaml"), "1",
                "--allow-missing-datasets")
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot write", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
