#!/usr/bin/env python3
"""Certificates for a lottery round (docs/SECURITY.md), made with the openssl CLI.

    gen_certs.py OUT_DIR --agencies N [--server-name NAME]... [--days D]
        Makes what is missing in OUT_DIR: a CA (ca.pem, ca.key), the server's
        certificate (server.pem, server.key), one per agency (agency-K.pem,
        agency-K.key, carrying its id as SAN URI urn:lottery:agency:K and CN
        agency-K), a probe certificate for health checks (probe.pem,
        probe.key: it speaks for no agency, so it can only ECHO) and an
        empty revocation list (crl.pem). Existing files are kept, so it also
        adds agencies to an existing set.
    gen_certs.py OUT_DIR --reissue NAME [--days D] [--expired] [--keep-old]
        Issues NAME (server, probe or agency-K) again from the same CA: a
        rotation. It revokes every earlier certificate of NAME and rewrites
        crl.pem, so a stolen copy of the old one stops working at the
        server's next SIGHUP; --keep-old leaves the earlier ones valid (a
        rollover window; end it with --retire NAME). The server's
        certificate keeps the names the old one carried, plus any
        --server-name. --expired makes one that expired yesterday (tests).
    gen_certs.py OUT_DIR --retire NAME
        Revokes every certificate of NAME but the current NAME.pem and
        rewrites crl.pem (the end of a --keep-old rollover).
    gen_certs.py OUT_DIR --revoke NAME
        Revokes every certificate ever issued as NAME (ca-db/index.txt lists
        them) and rewrites crl.pem; give crl.pem to the server (tls.crl) and
        send it SIGHUP.

The server's certificate names server, localhost and 127.0.0.1 and every
--server-name given.

Keys are EC P-256, written mode 0600. ca.key can issue certificates for any
agency: keep it offline in a real deployment (only ca.pem and crl.pem go to
the server; each agency gets ca.pem, agency-K.pem and agency-K.key).
Exit codes: 0 done, 2 bad arguments, 1 openssl failed.
"""
import argparse
import datetime
import ipaddress
import os
import re
import shutil
import subprocess
import sys
import tempfile

DEFAULT_SERVER_NAMES = ["server", "localhost", "127.0.0.1"]
MAX_AGENCIES = 100000
NAME = re.compile(r"^(server|probe|agency-([1-9][0-9]*))$")

CA_CONFIG = """\
[ ca ]
default_ca = lottery_ca

[ lottery_ca ]
dir = {db}
database = $dir/index.txt
new_certs_dir = $dir/issued
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sha256
default_days = 825
default_crl_days = 3650
policy = policy_any
unique_subject = no
copy_extensions = none

[ policy_any ]
commonName = supplied
"""


def run(args, **kw):
    done = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if done.returncode != 0:
        sys.stderr.write(f"gen_certs: {' '.join(args[:3])} failed:\n{done.stderr}")
        sys.exit(1)
    return done.stdout


class Authority:
    def __init__(self, out):
        self.out = out
        self.db = os.path.join(out, "ca-db")
        self.config = os.path.join(self.db, "openssl.cnf")

    def path(self, name):
        return os.path.join(self.out, name)

    def ensure(self):
        os.makedirs(os.path.join(self.db, "issued"), exist_ok=True)
        for name, content in (("index.txt", ""), ("serial", "1000\n"), ("crlnumber", "1000\n")):
            p = os.path.join(self.db, name)
            if not os.path.exists(p):
                with open(p, "w") as f:
                    f.write(content)
        with open(self.config, "w") as f:
            f.write(CA_CONFIG.format(db=os.path.abspath(self.db)))
        if not os.path.exists(self.path("ca.pem")):
            self.new_key("ca.key")
            run(["openssl", "req", "-x509", "-new", "-key", self.path("ca.key"),
                 "-subj", "/CN=lottery CA", "-days", "3650", "-sha256",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                 "-out", self.path("ca.pem")])
            print(f"gen_certs: wrote {self.path('ca.pem')}")
        if not os.path.exists(self.path("crl.pem")):
            self.write_crl()

    def new_key(self, name):
        path = self.path(name)
        old = os.umask(0o077)
        try:
            run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-out", path])
        finally:
            os.umask(old)
        os.chmod(path, 0o600)

    def issue(self, name, server_names, days, expired=False):
        m = NAME.match(name)
        extensions = ["basicConstraints = critical,CA:FALSE",
                      "keyUsage = critical,digitalSignature"]
        if name == "server":
            # clientAuth too: the server's own health check speaks to it
            # with this certificate (it names no agency, so it can only ECHO).
            extensions.append("extendedKeyUsage = serverAuth,clientAuth")
            alt = []
            for n in server_names:
                try:
                    ipaddress.ip_address(n)
                    alt.append(f"IP:{n}")
                except ValueError:
                    alt.append(f"DNS:{n}")
            extensions.append("subjectAltName = " + ",".join(alt))
        else:
            extensions.append("extendedKeyUsage = clientAuth")
            if m.group(2):
                extensions.append(f"subjectAltName = URI:urn:lottery:agency:{m.group(2)}")
        self.new_key(f"{name}.key")
        with tempfile.TemporaryDirectory() as tmp:
            csr = os.path.join(tmp, "req.csr")
            ext = os.path.join(tmp, "ext.cnf")
            with open(ext, "w") as f:
                f.write("[ ext ]\n" + "\n".join(extensions) + "\n")
            run(["openssl", "req", "-new", "-key", self.path(f"{name}.key"), "-subj",
                 f"/CN={name}", "-out", csr])
            validity = ["-days", str(days)]
            if expired:
                now = datetime.datetime.now(datetime.timezone.utc)
                fmt = "%Y%m%d%H%M%SZ"
                validity = ["-startdate", (now - datetime.timedelta(days=3)).strftime(fmt),
                            "-enddate", (now - datetime.timedelta(days=1)).strftime(fmt)]
            run(["openssl", "ca", "-batch", "-notext", "-config", self.config,
                 "-cert", self.path("ca.pem"), "-keyfile", self.path("ca.key"),
                 "-in", csr, "-out", self.path(f"{name}.pem"), "-extfile", ext,
                 "-extensions", "ext"] + validity)
        os.chmod(self.path(f"{name}.pem"), 0o644)
        print(f"gen_certs: wrote {self.path(name + '.pem')}")

    def entries(self, name):
        """(status, serial) of each certificate index.txt lists as issued to
        NAME: V valid, R revoked, E expired (as `openssl ca -updatedb` marks)."""
        found = []
        with open(os.path.join(self.db, "index.txt")) as f:
            for line in f:
                fields = line.rstrip("\n").split("\t")
                if len(fields) >= 6 and fields[5] == f"/CN={name}":
                    found.append((fields[0], fields[3].upper()))
        return found

    def serial(self, name):
        """The serial of the current NAME.pem (hex, as index.txt writes it)."""
        out = run(["openssl", "x509", "-noout", "-serial", "-in", self.path(f"{name}.pem")])
        return out.strip().partition("=")[2].upper()

    def names_of(self, name):
        """The DNS names and IPs NAME.pem carries (its subjectAltName)."""
        out = run(["openssl", "x509", "-noout", "-ext", "subjectAltName",
                   "-in", self.path(f"{name}.pem")])
        names = []
        for item in " ".join(out.splitlines()[1:]).split(","):
            kind, _, value = item.strip().partition(":")
            if kind in ("DNS", "IP Address") and value:
                names.append(value)
        return names

    def revoke(self, name, keep=None):
        """Revokes every unrevoked certificate of NAME but serial `keep`, then
        rewrites crl.pem. Returns how many it revoked."""
        serials = [s for status, s in self.entries(name) if status != "R" and s != keep]
        for serial in serials:
            run(["openssl", "ca", "-config", self.config, "-cert", self.path("ca.pem"),
                 "-keyfile", self.path("ca.key"),
                 "-revoke", os.path.join(self.db, "issued", f"{serial}.pem")])
            print(f"gen_certs: revoked {name} serial {serial}")
        self.write_crl()
        return len(serials)

    def write_crl(self):
        run(["openssl", "ca", "-gencrl", "-config", self.config, "-cert", self.path("ca.pem"),
             "-keyfile", self.path("ca.key"), "-out", self.path("crl.pem")])
        os.chmod(self.path("crl.pem"), 0o644)
        print(f"gen_certs: wrote {self.path('crl.pem')}")


def server_flags(certs, crl=True):
    """lottery-server flags for the set in `certs`: mutual TLS with its files."""
    flags = ["--tls-mode", "required", "--tls-cert", os.path.join(certs, "server.pem"),
             "--tls-key", os.path.join(certs, "server.key"),
             "--tls-client-ca", os.path.join(certs, "ca.pem")]
    return flags + (["--tls-crl", os.path.join(certs, "crl.pem")] if crl else [])


def agency_flags(certs, name="agency-{id}", server_name=None):
    """lottery-agency flags presenting `name`.pem of `certs` ({id}: the agency's own)."""
    flags = ["--tls-mode", "required", "--tls-cert", os.path.join(certs, f"{name}.pem"),
             "--tls-key", os.path.join(certs, f"{name}.key"),
             "--tls-server-ca", os.path.join(certs, "ca.pem")]
    return flags + (["--tls-server-name", server_name] if server_name else [])


def merge_names(*lists):
    """The names of every list, each once, in order."""
    merged = []
    for names in lists:
        merged += [n for n in names if n not in merged]
    return merged


def reissue(ca, name, given_names, days, expired, keep_old):
    """A rotation: NAME again, and (unless keep_old) its earlier certificates
    revoked, so a copy of the one it replaces is refused after a reload."""
    names = merge_names(DEFAULT_SERVER_NAMES, given_names)
    if name == "server" and os.path.exists(ca.path("server.pem")):
        # Keep the names the set was made with (its --server-name).
        names = merge_names(ca.names_of("server"), given_names)
    ca.issue(name, names, days, expired=expired)
    if not keep_old:
        ca.revoke(name, keep=ca.serial(name))
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[2:]))
    p.add_argument("out_dir")
    p.add_argument("--agencies", type=int, help="agencies 1..N get a certificate")
    p.add_argument("--server-name", action="append", default=[],
                   help="a DNS name or IP the server is reached by, besides "
                        + ", ".join(DEFAULT_SERVER_NAMES) + " (repeatable)")
    p.add_argument("--days", type=int, default=825, help="validity of new certificates")
    p.add_argument("--reissue", metavar="NAME", help="issue NAME again (rotation)")
    p.add_argument("--expired", action="store_true", help="with --reissue: already expired")
    p.add_argument("--keep-old", action="store_true",
                   help="with --reissue: leave the earlier certificates valid (a rollover)")
    p.add_argument("--retire", metavar="NAME",
                   help="revoke every certificate of NAME but the current one")
    p.add_argument("--revoke", metavar="NAME",
                   help="revoke every certificate ever issued as NAME and rewrite crl.pem")
    a = p.parse_args(argv)
    actions = sum(x is not None for x in (a.agencies, a.reissue, a.retire, a.revoke))
    if actions != 1:
        p.error("give exactly one of --agencies, --reissue, --retire, --revoke")
    if a.agencies is not None and not 0 <= a.agencies <= MAX_AGENCIES:
        p.error(f"--agencies must be 0..{MAX_AGENCIES}")
    if a.days < 1:
        p.error("--days must be at least 1")
    if (a.expired or a.keep_old) and not a.reissue:
        p.error("--expired and --keep-old go with --reissue")
    for name in (a.reissue, a.retire, a.revoke):
        if name is not None and not NAME.match(name):
            p.error(f"{name}: a name is server, probe or agency-K")
    if shutil.which("openssl") is None:
        sys.stderr.write("gen_certs: the openssl command is missing (Debian: apt-get install openssl)\n")
        return 1
    names = merge_names(DEFAULT_SERVER_NAMES, a.server_name)
    ca = Authority(a.out_dir)
    if (a.reissue or a.retire or a.revoke) and not os.path.exists(ca.path("ca.key")):
        p.error(f"{a.out_dir} has no ca.key: make a set with --agencies first")
    os.makedirs(a.out_dir, exist_ok=True)
    ca.ensure()
    if a.revoke:
        if not ca.entries(a.revoke):
            p.error(f"no certificate was ever issued as {a.revoke} in {a.out_dir}")
        ca.revoke(a.revoke)
        return 0
    if a.retire:
        if not os.path.exists(ca.path(f"{a.retire}.pem")):
            p.error(f"{a.retire}.pem does not exist in {a.out_dir}")
        ca.revoke(a.retire, keep=ca.serial(a.retire))
        return 0
    if a.reissue:
        return reissue(ca, a.reissue, a.server_name, a.days, a.expired, a.keep_old)
    wanted = ["server", "probe"] + [f"agency-{k}" for k in range(1, a.agencies + 1)]
    for name in wanted:
        if not (os.path.exists(ca.path(f"{name}.pem")) and os.path.exists(ca.path(f"{name}.key"))):
            ca.issue(name, names, a.days)
    return 0


if __name__ == "__main__":
    sys.exit(main())
