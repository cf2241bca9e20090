"""tools/gen_certs.py: what a set holds, that a second run keeps it (and
only adds what is missing), rotation, revocation, and argument checks. The
certificates' contents are checked with the openssl command."""
import os
import stat
import subprocess
import sys
import tempfile
import unittest

ROOT = os.environ.get("LOTTERY_SOURCE_ROOT",
                      os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GEN = os.path.join(ROOT, "tools", "gen_certs.py")


def gen(*args):
    return subprocess.run([sys.executable, GEN, *args], capture_output=True, text=True, timeout=60)


def openssl(*args):
    return subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=30)


class GenCertsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.dir = os.path.join(self.tmp.name, "certs")

    def path(self, name):
        return os.path.join(self.dir, name)

    def verify(self, name, crl=False):
        args = ["verify", "-CAfile", self.path("ca.pem")]
        if crl:
            args += ["-crl_check", "-CRLfile", self.path("crl.pem")]
        return openssl(*args, self.path(name))

    def test_a_set_for_n_agencies(self):
        r = gen(self.dir, "--agencies", "3", "--server-name", "lottery.example.org")
        self.assertEqual(r.returncode, 0, r.stderr)
        names = ["ca", "server", "probe"] + [f"agency-{k}" for k in (1, 2, 3)]
        for name in names:
            self.assertEqual(stat.S_IMODE(os.stat(self.path(f"{name}.key")).st_mode), 0o600, name)
            if name != "ca":
                self.assertEqual(self.verify(f"{name}.pem").returncode, 0, name)
        self.assertTrue(os.path.exists(self.path("crl.pem")))
        self.assertEqual(self.verify("agency-2.pem", crl=True).returncode, 0)
        text = openssl("x509", "-noout", "-text", "-in", self.path("agency-2.pem")).stdout
        self.assertIn("URI:urn:lottery:agency:2", text)
        self.assertIn("CN = agency-2", text)
        self.assertIn("TLS Web Client Authentication", text)
        self.assertNotIn("TLS Web Server Authentication", text)
        server = openssl("x509", "-noout", "-text", "-in", self.path("server.pem")).stdout
        self.assertIn("DNS:lottery.example.org", server)
        self.assertIn("TLS Web Server Authentication", server)
        # The defaults too, as docs/SECURITY.md says.
        for name in ("DNS:server", "DNS:localhost", "IP Address:127.0.0.1"):
            self.assertIn(name, server)
        self.assertNotIn("agency-4.pem", os.listdir(self.dir))

    def test_a_second_run_keeps_what_exists_and_adds_agencies(self):
        self.assertEqual(gen(self.dir, "--agencies", "2").returncode, 0)
        with open(self.path("agency-1.pem")) as f:
            before = f.read()
        r = gen(self.dir, "--agencies", "4")
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(self.path("agency-1.pem")) as f:
            self.assertEqual(f.read(), before)
        self.assertEqual(self.verify("agency-4.pem").returncode, 0)
        server = openssl("x509", "-noout", "-text", "-in", self.path("server.pem")).stdout
        for name in ("DNS:server", "DNS:localhost", "IP Address:127.0.0.1"):
            self.assertIn(name, server)

    def test_rotation_and_revocation(self):
        self.assertEqual(gen(self.dir, "--agencies", "2").returncode, 0)
        with open(self.path("agency-1.pem")) as f:
            old = f.read()
        self.assertEqual(gen(self.dir, "--reissue", "agency-1").returncode, 0)
        with open(self.path("agency-1.pem")) as f:
            self.assertNotEqual(f.read(), old)
        self.assertEqual(self.verify("agency-1.pem").returncode, 0)
        self.assertEqual(gen(self.dir, "--revoke", "agency-2").returncode, 0)
        revoked = self.verify("agency-2.pem", crl=True)
        self.assertNotEqual(revoked.returncode, 0)
        self.assertIn("revoked", revoked.stdout + revoked.stderr)
        self.assertEqual(self.verify("agency-1.pem", crl=True).returncode, 0)
        self.assertEqual(gen(self.dir, "--reissue", "agency-1", "--expired").returncode, 0)
        expired = self.verify("agency-1.pem")
        self.assertIn("expired", expired.stdout + expired.stderr)

    def keep(self, name, as_name):
        """A copy of NAME.pem as it is now (what a thief would hold)."""
        with open(self.path(name)) as f, open(self.path(as_name), "w") as out:
            out.write(f.read())

    def assert_revoked(self, name):
        r = self.verify(name, crl=True)
        self.assertNotEqual(r.returncode, 0, name)
        self.assertIn("revoked", r.stdout + r.stderr, name)

    def test_a_reissue_revokes_the_certificate_it_replaces(self):
        self.assertEqual(gen(self.dir, "--agencies", "2").returncode, 0)
        self.keep("agency-1.pem", "stolen.pem")
        r = gen(self.dir, "--reissue", "agency-1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_revoked("stolen.pem")
        self.assertEqual(self.verify("agency-1.pem", crl=True).returncode, 0)
        self.assertEqual(self.verify("agency-2.pem", crl=True).returncode, 0)

    def test_keep_old_is_a_rollover_that_retire_ends(self):
        self.assertEqual(gen(self.dir, "--agencies", "1").returncode, 0)
        self.keep("agency-1.pem", "old.pem")
        self.assertEqual(gen(self.dir, "--reissue", "agency-1", "--keep-old").returncode, 0)
        self.assertEqual(self.verify("old.pem", crl=True).returncode, 0)
        self.assertEqual(self.verify("agency-1.pem", crl=True).returncode, 0)
        r = gen(self.dir, "--retire", "agency-1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_revoked("old.pem")
        self.assertEqual(self.verify("agency-1.pem", crl=True).returncode, 0)

    def test_revoke_revokes_every_certificate_ever_issued_under_the_name(self):
        self.assertEqual(gen(self.dir, "--agencies", "2").returncode, 0)
        self.keep("agency-1.pem", "first.pem")
        self.assertEqual(gen(self.dir, "--reissue", "agency-1", "--keep-old").returncode, 0)
        self.keep("agency-1.pem", "second.pem")
        self.assertEqual(gen(self.dir, "--reissue", "agency-1", "--keep-old").returncode, 0)
        r = gen(self.dir, "--revoke", "agency-1")
        self.assertEqual(r.returncode, 0, r.stderr)
        for name in ("first.pem", "second.pem", "agency-1.pem"):
            self.assert_revoked(name)
        self.assertEqual(self.verify("agency-2.pem", crl=True).returncode, 0)
        # Again: nothing left to revoke is not an error.
        self.assertEqual(gen(self.dir, "--revoke", "agency-1").returncode, 0)
        r = gen(self.dir, "--revoke", "agency-7")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("no certificate was ever issued as agency-7", r.stderr)

    def test_a_reissued_server_certificate_keeps_the_names_of_the_set(self):
        r = gen(self.dir, "--agencies", "1", "--server-name", "lottery.example.org",
                "--server-name", "10.0.0.5")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(gen(self.dir, "--reissue", "server").returncode, 0)
        server = openssl("x509", "-noout", "-text", "-in", self.path("server.pem")).stdout
        for name in ("DNS:server", "DNS:localhost", "IP Address:127.0.0.1",
                     "DNS:lottery.example.org", "IP Address:10.0.0.5"):
            self.assertIn(name, server)
        # A name given at the reissue is added to them.
        self.assertEqual(gen(self.dir, "--reissue", "server", "--server-name", "lottery.example.net")
                         .returncode, 0)
        server = openssl("x509", "-noout", "-text", "-in", self.path("server.pem")).stdout
        for name in ("DNS:lottery.example.org", "DNS:lottery.example.net", "DNS:localhost"):
            self.assertIn(name, server)

    def test_bad_arguments_exit_2_and_make_nothing(self):
        for args in ([], ["--agencies", "-1"], ["--agencies", "2", "--revoke", "agency-1"],
                     ["--reissue", "agency-x"], ["--revoke", "server2"], ["--expired"],
                     ["--agencies", "1", "--days", "0"], ["--reissue", "agency-1"],
                     ["--agencies", "1", "--keep-old"], ["--retire", "agency-x"],
                     ["--retire", "agency-1"], ["--revoke", "agency-1", "--retire", "agency-1"]):
            with self.subTest(args=args):
                r = gen(self.dir, *args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn("error", r.stderr)
                self.assertFalse(os.path.exists(self.dir))


if __name__ == "__main__":
    unittest.main(verbosity=2)
