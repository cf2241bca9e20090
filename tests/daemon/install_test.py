"""`meson install` into a DESTDIR puts every file where the README says:
binaries in bindir, both configs in sysconfdir/lottery, both units in the
systemd unit directory, with paths in the units that match the install."""
import filecmp
import json
import re
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import daemon_harness as dh  # noqa: E402


def build_options():
    out = subprocess.run(["meson", "introspect", "--buildoptions", dh.BUILD_ROOT],
                         capture_output=True, text=True, check=True).stdout
    return {o["name"]: o["value"] for o in json.loads(out)}


def expected_unit_dir(prefix, option):
    """What conf/meson.build chooses, worked out independently."""
    if option:
        return os.path.join(prefix, option)
    if shutil.which("pkg-config") and subprocess.run(["pkg-config", "--exists", "systemd"]).returncode == 0:
        return subprocess.run(["pkg-config", f"--define-variable=rootprefix={prefix}",
                               "--variable=systemdsystemunitdir", "systemd"],
                              capture_output=True, text=True, check=True).stdout.strip()
    return os.path.join(prefix, "lib", "systemd", "system")


class InstallTest(unittest.TestCase):

    def test_meson_install_into_destdir(self):
        opts = build_options()
        prefix = opts["prefix"]
        bindir = os.path.join(prefix, opts["bindir"])
        confdir = os.path.join(prefix, opts["sysconfdir"], "lottery")
        mandir = os.path.join(prefix, opts["mandir"])
        unitdir = expected_unit_dir(prefix, opts.get("systemdunitdir", ""))
        with tempfile.TemporaryDirectory(prefix="lottery-install-") as dest:
            r = subprocess.run(["meson", "install", "-C", dh.BUILD_ROOT, "--no-rebuild",
                                "--destdir", dest], capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

            def at(path):
                return dest + path

            expected = {
                os.path.join(bindir, "lottery-server"),
                os.path.join(bindir, "lottery-agency"),
                os.path.join(bindir, "lotteryctl"),
                os.path.join(confdir, "server.toml"),
                os.path.join(confdir, "client.toml"),
                os.path.join(unitdir, "lottery-server.service"),
                os.path.join(unitdir, "lottery-server.socket"),
                os.path.join(mandir, "man8", "lottery-server.8"),
                os.path.join(mandir, "man1", "lottery-agency.1"),
                os.path.join(mandir, "man8", "lotteryctl.8"),
            }
            installed = set()
            for root, _, files in os.walk(dest):
                for name in files:
                    installed.add(os.path.join(root, name)[len(dest):])
            self.assertEqual(installed, expected)

            for binary in ("lottery-server", "lottery-agency", "lotteryctl"):
                self.assertTrue(os.access(at(os.path.join(bindir, binary)), os.X_OK))
            for name in ("server.toml", "client.toml"):
                self.assertTrue(filecmp.cmp(at(os.path.join(confdir, name)),
                                            os.path.join(dh.harness.ROOT, "conf", name),
                                            shallow=False))
            with open(at(os.path.join(unitdir, "lottery-server.service"))) as f:
                service = f.read()
            server = os.path.join(bindir, "lottery-server")
            config = os.path.join(confdir, "server.toml")
            self.assertIn(f"\nExecStart={server} --config {config}\n", service)
            self.assertIn(f"\nExecStartPre={server} --check-config --config {config}\n", service)

            # The installed server validates the installed configuration.
            check = subprocess.run([at(server), "--check-config", "--config", at(config)],
                                   capture_output=True, text=True, timeout=20)
            self.assertEqual(check.returncode, 0, check.stderr)
            helptext = subprocess.run([at(server), "--help"], capture_output=True, text=True,
                                      timeout=20).stdout
            for key in ("server.port", "server.max_connections", "storage.path", "log.level",
                        "--check-config"):
                self.assertIn(key, helptext)


    def test_man_pages_cover_every_flag_key_and_variable(self):
        for program, page in (("lottery-server", "lottery-server.8"),
                              ("lottery-agency", "lottery-agency.1")):
            binary = dh.SERVER if program == "lottery-server" else dh.harness.AGENCY
            helptext = subprocess.run([binary, "--help"], capture_output=True, text=True,
                                      timeout=20).stdout
            words = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", helptext))
            words |= set(re.findall(r"\b[a-z]+\.[a-z_]+\b", helptext)) - {"e.g"}
            words |= set(re.findall(r"\b[A-Z][A-Z_]{3,}\b", helptext))
            self.assertGreater(len(words), 25, words)
            with open(os.path.join(dh.harness.ROOT, "docs", "man", page)) as f:
                # troff writes a plain hyphen as \- and may set words in fonts.
                text = re.sub(r"\\f[BIRP]", "", f.read().replace("\\-", "-"))
            missing = sorted(w for w in words if not re.search(rf"(?<![\w.-]){re.escape(w)}(?![\w-])", text))
            self.assertEqual(missing, [], f"{page} does not mention these")
            # Each variable in the ENVIRONMENT section itself, each exit code
            # of --help in EXIT STATUS.
            sections = dict(re.findall(r"^\.SH ([A-Z ]+)\n(.*?)(?=^\.SH |\Z)", text, re.M | re.S))
            variables = {w for w in words if re.fullmatch(r"(SERVER|CLI|LOGGING)_[A-Z_]+", w)}
            self.assertGreater(len(variables), 8, variables)
            missing_env = sorted(v for v in variables
                                 if not re.search(rf"(?<![\w]){v}(?![\w])", sections["ENVIRONMENT"]))
            self.assertEqual(missing_env, [], f"{page}: ENVIRONMENT does not list these")
            codes = re.search(r"exit codes: (.*)", helptext).group(1)
            numbers = re.findall(r"\b(\d+) ", codes)
            self.assertIn("78", numbers)
            status = sections["EXIT STATUS"]
            missing_codes = [n for n in numbers if f".B {n}\n" not in status]
            self.assertEqual(missing_codes, [], f"{page}: EXIT STATUS does not list these")
            with open(os.path.join(dh.harness.ROOT, "README.md")) as f:
                readme = f.read()
            for n in numbers:
                self.assertRegex(readme, rf"\n\| {n} \| ", f"README exit codes lack {n}")


    def test_man_page_defaults_are_the_programs_defaults(self):
        for binary, page in ((dh.SERVER, "lottery-server.8"),
                             (dh.harness.AGENCY, "lottery-agency.1")):
            helptext = subprocess.run([binary, "--help"], capture_output=True, text=True,
                                      timeout=20).stdout
            self.assertNotIn("(default )", helptext)
            shown = dict(re.findall(r"^  ([a-z_]+\.[a-z_]+) +.*\(default (.*?)\)(?:  env|$)",
                                    helptext, re.M))
            self.assertGreater(len(shown), 10, helptext)
            with open(os.path.join(dh.harness.ROOT, "docs", "man", page)) as f:
                text = f.read().replace("\\-", "-")
            documented = dict(re.findall(
                r"^\.B ([a-z_]+\.[a-z_]+)\n(?:(?!^\.TP).)*?^default\n\.BR? (\S+?)(?: \.)?$",
                text, re.M | re.S))
            self.assertGreater(len(documented), 5, page)
            # `""` in troff is an empty default, which --help shows as none.
            documented = {k: "none" if v == r"\(dq\(dq" else v for k, v in documented.items()}
            wrong = {k: (v, shown.get(k)) for k, v in documented.items() if shown.get(k) != v}
            self.assertEqual(wrong, {}, f"{page}: default (man page, --help) differ")
        agency_help = subprocess.run([dh.harness.AGENCY, "--help"], capture_output=True,
                                     text=True, timeout=20).stdout
        # A bare --progress works: its value is optional.
        self.assertIn("--progress [VALUE]", agency_help)

    def test_lotteryctl_man_page_covers_its_commands_options_and_exit_codes(self):
        ctl = os.path.join(os.path.dirname(dh.SERVER), "lotteryctl")
        helptext = subprocess.run([ctl, "--help"], capture_output=True, text=True,
                                  timeout=20).stdout
        with open(os.path.join(dh.harness.ROOT, "docs", "man", "lotteryctl.8")) as f:
            text = re.sub(r"\\f[BIRP]", "", f.read().replace("\\-", "-"))
        sections = dict(re.findall(r"^\.SH ([A-Z ]+)\n(.*?)(?=^\.SH |\Z)", text, re.M | re.S))
        options = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", helptext))
        self.assertGreaterEqual(options, {"--socket", "--json", "--help"})
        for option in options:
            self.assertIn(option, sections["OPTIONS"])
        commands = re.findall(r"^  ([a-z]+) ", helptext, re.M)
        self.assertEqual(set(commands), {"status", "close", "open", "rounds", "show", "verify"})
        for command in commands:
            self.assertRegex(sections["COMMANDS"], rf"\.BI? {command}\b")
        numbers = re.findall(r"\b(\d+) ", re.search(r"exit codes: (.*)", helptext).group(1))
        self.assertEqual(set(numbers), {"0", "1", "64", "65", "69", "76", "77", "78"})
        for n in numbers:
            self.assertIn(f".B {n}\n", sections["EXIT STATUS"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
