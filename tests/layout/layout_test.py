#!/usr/bin/env python3
"""The layering of src/ (README "Architecture"), checked on every #include.

Rules:
 1. Each folder includes only the folders below it:
      common  -> (nothing of the project's)
      wire    -> common            shm -> common          tls -> common
      storage -> shm, wire, common
      worker  -> storage, shm, tls, wire, common
      server  -> worker, storage, shm, tls, wire, common
      agency  -> tls, wire, common
      ctl     -> storage, shm, wire, common   (lotteryctl)
 2. agency/ and the server-side folders never include each other (follows
    from 1). Only tests (*_test.cc, *test_util.h, doctest_main.cc), src/fuzz
    and src/bench may cross.
 3. The parent (server/) never reaches, even through other headers, the
    bets-file row format, the CSV reader or the winner scan.
 4. lottery-agency links only the agency, tls, wire and common libraries.
 5. Project includes are written with their folder ("storage/bet_store.h").
Also: no non-test source file is longer than MAX_LINES, and every code name
written in backticks in README.md and docs/*.md (a CamelCase name such as
`BetStore::AppendBatches`, a constant such as `kPgSchemaVersion`, a path such
as `src/storage/pg_copy.h`) exists in the tree: a renamed function leaves no
stale name in the docs. Names of other software (systemd directives,
Kubernetes kinds) are found in the files that use them (conf/, tests/) or
listed in FOREIGN_NAMES.

And no function in a non-test .cc file under src/ (src/fuzz and src/bench
aside) is longer than MAX_FUNCTION_LINES, from the line of its opening
brace to the line of its closing one: a function does one job. Declarative
tables written as a function are listed in LONG_FUNCTIONS_ALLOWED, each
with why.

Every violation is reported as FILE:LINE: message; the test fails if any.
The checker is first run on small trees with deliberately broken includes,
so that a checker that stopped seeing them fails too.
"""
import os
import re
import sys
import tempfile
from pathlib import Path

ALLOWED = {
    "tls": {"tls", "common"},
    "common": {"common"},
    "wire": {"wire", "common"},
    "shm": {"shm", "common"},
    "storage": {"storage", "shm", "wire", "common"},
    "worker": {"worker", "storage", "shm", "tls", "wire", "common"},
    "server": {"server", "worker", "storage", "shm", "tls", "wire", "common"},
    "agency": {"agency", "tls", "wire", "common"},
    "ctl": {"ctl", "storage", "shm", "wire", "common"},
}
FREE_FOLDERS = {"fuzz", "bench"}
PARENT_NEVER_REACHES = {"storage/bets_file_row.h", "common/csv.h", "storage/winner_scan.h"}
MAX_LINES = 420
MAX_FUNCTION_LINES = 80
# Functions allowed to be longer: tables, one entry after another, that
# read best whole. "file:name" (the name as written before its parameters)
# -> why.
LONG_FUNCTIONS_ALLOWED = {
    "server/server_config.cc:ServerSpec":
        "the server's settings table: one entry per setting (key, variable, flag, help)",
    "agency/agency_config.cc:LoadAgencyConfig":
        "the agency's option table: one entry per setting, then one call that loads them",
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
# A backticked code name: CamelCase with two humps or more, or kConstant,
# optionally qualified (A::B) and called (A()).
CODE_NAME = re.compile(r"^(?:[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+|k[A-Z][A-Za-z0-9]+)"
                       r"(?:::[A-Za-z_][A-Za-z0-9_]*)*(?:\(\))?$")
CODE_PATH = re.compile(r"^[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+\.(?:h|cc|py|sh|toml|service)$")
# Paths that start with ../ (the CI's ../shared tools) lie outside the clone.
# Where names may be defined or used: the code, configs and units, tests, tools.
NAME_SOURCES = ("src", "conf", "tests", "tools", "docker")
# Names of other software that the docs mention but no file here spells.
FOREIGN_NAMES = {"StatefulSet", "PersistentVolumeClaim", "ConfigMap", "ServiceMonitor"}
# Paths of the operator's own files in the docs' examples.
FOREIGN_PATHS = {"pg/init-replication.sh"}


def is_test_file(rel):
    name = rel.name
    return (name.endswith("_test.cc") or name.endswith("test_util.h")
            or name == "doctest_main.cc")


def includes_of(path):
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        m = INCLUDE.match(line)
        if m:
            out.append((number, m.group(1)))
    return out


def check_tree(src, max_lines=MAX_LINES):
    """Returns the list of violations under `src` (a src/ folder)."""
    problems = []
    files = sorted(p for p in src.rglob("*") if p.suffix in (".cc", ".h"))
    graph = {}
    for path in files:
        rel = path.relative_to(src)
        folder = rel.parts[0] if len(rel.parts) > 1 else ""
        graph[str(rel)] = [inc for _, inc in includes_of(path)]
        free = folder in FREE_FOLDERS or is_test_file(rel)
        if not free and folder not in ALLOWED:
            problems.append(f"{rel}:1: source file outside the role folders {sorted(ALLOWED)}")
            continue
        if not free:
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > max_lines:
                problems.append(f"{rel}:{lines}: {lines} lines; split it along a seam "
                                f"(limit {max_lines})")
        for number, inc in includes_of(path):
            parts = inc.split("/")
            if len(parts) != 2 or parts[0] not in set(ALLOWED) | FREE_FOLDERS:
                problems.append(f'{rel}:{number}: #include "{inc}" must name its folder '
                                f'(for example "common/log.h")')
                continue
            if not (src / inc).exists():
                problems.append(f'{rel}:{number}: #include "{inc}": no such file in src/')
                continue
            if free:
                continue
            target = parts[0]
            if target not in ALLOWED[folder]:
                problems.append(f'{rel}:{number}: {folder}/ must not include {target}/ '
                                f'("{inc}"); {folder}/ may include only '
                                f'{", ".join(sorted(ALLOWED[folder]))}')
    # Rule 3, through every header a server/ file reaches.
    for rel_text, direct in graph.items():
        rel = Path(rel_text)
        if rel.parts[0] != "server" or is_test_file(rel):
            continue
        seen, stack, via = set(), list(direct), {d: d for d in direct}
        while stack:
            inc = stack.pop()
            if inc in seen:
                continue
            seen.add(inc)
            if inc in PARENT_NEVER_REACHES:
                number = next((n for n, i in includes_of(src / rel) if i == via[inc]), 1)
                problems.append(f"{rel}:{number}: the parent must not reach {inc} "
                                f"(through \"{via[inc]}\"); it reaches storage through "
                                f"storage/recovery.h")
            for nxt in graph.get(inc, []):
                via.setdefault(nxt, via[inc])
                stack.append(nxt)
    return problems


def blank_non_code(text):
    """`text` with comments, string and character literals and preprocessor
    lines blanked (newlines kept), so that braces in them are not counted."""
    out = []
    i, n = 0, len(text)
    at_line_start = True
    while i < n:
        c = text[i]
        if c == "\n":
            out.append(c)
            i += 1
            at_line_start = True
            continue
        if at_line_start and c == "#":
            # A preprocessor line, with its backslash continuations.
            while i < n and not (text[i] == "\n" and text[i - 1] != "\\"):
                out.append("\n" if text[i] == "\n" else " ")
                i += 1
            continue
        if not c.isspace():
            at_line_start = False
        if text.startswith("//", i):
            while i < n and text[i] != "\n":
                out.append(" ")
                i += 1
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
            continue
        raw = re.match(r'R"([^()\\ \n]{0,16})\(', text[i:i + 20])
        if raw and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            end = text.find(")" + raw.group(1) + '"', i)
            end = n if end < 0 else end + len(raw.group(1)) + 2
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
            continue
        # A quote after a digit and before one is a digit separator (100'000).
        separator = c == "'" and i > 0 and text[i - 1].isalnum() and i + 1 < n and text[i + 1].isalnum()
        if c in "\"'" and not separator:
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(c + " " * (min(j, n) - i - 1) + (c if j < n else ""))
            i = j + 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


def function_name(head):
    """The name written before a function head's parameters, or None when
    the head is not a function's (a class, a namespace, an initializer)."""
    head = re.sub(r"\btemplate\s*<[^{};]*?>\s*(?=[A-Za-z_\[])", "", head.strip(), count=1)
    if re.match(r"(class|struct|union|enum|namespace|extern)\b", head):
        return None
    m = re.match(r"([^(]*?)(operator\s*\S+?|[A-Za-z_~][\w:~]*)\s*\(", head, re.S)
    if not m or re.search(r"=", m.group(1)):
        return None  # no parameters, or an initializer (x = {...}, a lambda)
    name = m.group(2)
    if name in ("if", "for", "while", "switch", "catch", "return", "sizeof", "decltype"):
        return None
    return name


def long_functions(text, limit):
    """(line, name, lines) of each function in C++ `text` longer than `limit`
    lines, counted from its opening brace's line to its closing brace's."""
    code = blank_non_code(text)
    found = []
    stack = []  # per open brace: (kind, line, name); kind is "fn", "body" or "scope"
    head_start = 0
    line = 1
    for i, c in enumerate(code):
        if c == "\n":
            line += 1
        elif c == "{":
            inside = any(kind in ("fn", "body", "opaque") for kind, _, _ in stack)
            head = code[head_start:i]
            if not inside and head.count("(") > head.count(")"):
                # Braces inside a parameter list (a default argument `= {}`):
                # part of the head.
                stack.append(("param", line, None))
                continue
            name = None if inside else function_name(head)
            if inside:
                kind = "body"
            elif name:
                kind = "fn"
            else:
                kind = "opaque" if "=" in head and "operator" not in head else "scope"
            stack.append((kind, line, name))
            head_start = i + 1
        elif c == "}":
            if stack:
                kind, start, name = stack.pop()
                if kind == "param":
                    continue
                if kind == "fn" and line - start + 1 > limit:
                    found.append((start, name, line - start + 1))
            head_start = i + 1
        elif c == ";":
            head_start = i + 1
    return found


def check_function_lengths(src, limit=MAX_FUNCTION_LINES, allowed=None):
    """Functions longer than `limit` lines in the non-test .cc files."""
    allowed = LONG_FUNCTIONS_ALLOWED if allowed is None else allowed
    problems = []
    for path in sorted(src.rglob("*.cc")):
        rel = path.relative_to(src)
        if rel.parts[0] in FREE_FOLDERS or is_test_file(rel):
            continue
        for line, name, lines in long_functions(path.read_text(encoding="utf-8"), limit):
            if f"{rel}:{name}" in allowed:
                continue
            problems.append(f"{rel}:{line}: {name} is {lines} lines; split it into functions "
                            f"that do one job (limit {limit}; a declarative table goes in "
                            f"LONG_FUNCTIONS_ALLOWED with why)")
    return problems


def check_agency_link(build_root):
    """Rule 4: the link line of lottery-agency in build.ninja."""
    ninja = Path(build_root) / "build.ninja"
    if not ninja.exists():
        return [f"{ninja}: not found; cannot check what lottery-agency links"]
    text = ninja.read_text(encoding="utf-8", errors="replace")
    m = re.search(r"^build src/lottery-agency: \S+ (.*)$", text, re.M)
    if not m:
        return ["build.ninja: no link step for src/lottery-agency"]
    libs = set(re.findall(r"liblottery_(\w+)\.a", m.group(1)))
    extra = libs - {"agency", "tls", "wire", "common"}
    if extra:
        return [f"build.ninja: lottery-agency links {sorted(extra)}; it may link only "
                f"agency, tls, wire and common"]
    if "agency" not in libs:
        return ["build.ninja: lottery-agency does not link liblottery_agency"]
    return []


def words_in(root):
    """Every identifier-like word of the files under NAME_SOURCES."""
    words = set()
    for folder in NAME_SOURCES:
        base = root / folder
        if not base.is_dir():
            continue
        for path in base.rglob("*"):
            if path.is_file() and path.suffix in (".h", ".cc", ".py", ".service", ".toml", ".sh"):
                words.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*",
                                        path.read_text(encoding="utf-8", errors="replace")))
    return words


def check_doc_names(root):
    """Backticked code names in README.md and docs/*.md that the tree lacks."""
    words = words_in(root)
    problems = []
    docs = [root / "README.md"] + sorted((root / "docs").glob("*.md"))
    for doc in (d for d in docs if d.is_file()):
        text = doc.read_text(encoding="utf-8")
        # Fenced blocks are examples (configs, output, SQL), not names: blanked,
        # keeping their lines so that line numbers stay right.
        text = re.sub(r"```.*?```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
        for number, line in enumerate(text.splitlines(), 1):
            for token in re.findall(r"`([^`\n]+)`", line):
                token = token.strip()
                where = f"{doc.relative_to(root)}:{number}"
                if CODE_NAME.match(token):
                    missing = [part for part in re.split(r"::|\(\)", token)
                               if part and part not in words and part not in FOREIGN_NAMES]
                    if missing:
                        problems.append(f"{where}: `{token}` names {', '.join(missing)}, "
                                        "which no file under " + ", ".join(NAME_SOURCES) + " has")
                elif (CODE_PATH.match(token) and token not in FOREIGN_PATHS
                      and not token.startswith("../")):  # beside the clone, not in it
                    if not ((root / token).exists() or (root / "src" / token).exists()):
                        problems.append(f"{where}: `{token}` does not exist")
    return problems


def write(root, rel, text):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def self_test():
    """Deliberately broken trees: each must be reported at the right line."""
    cases = [
        ("agency/a.cc", '#include "agency/a.h"\n#include "server/startup.h"\n',
         "agency/a.cc:2: agency/ must not include server/"),
        ("common/c.cc", '#include "wire/bet.h"\n', "common/c.cc:1: common/ must not include wire/"),
        ("shm/s.cc", '\n#include "storage/bet_store.h"\n', "shm/s.cc:2: shm/ must not include storage/"),
        ("worker/w.cc", '#include "bet_store.h"\n', 'worker/w.cc:1: #include "bet_store.h" must name its folder'),
        ("server/p.cc", '#include "server/x.h"\n', "server/p.cc:1: the parent must not reach common/csv.h"),
        ("ctl/c.cc", '#include "storage/bet_store.h"\n#include "server/startup.h"\n',
         "ctl/c.cc:2: ctl/ must not include server/"),
        ("storage/big.cc", "// x\n" * 30, "storage/big.cc:30: 30 lines"),
    ]
    for rel, text, expected in cases:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            write(root, "agency/a.h", "")
            write(root, "server/startup.h", "")
            write(root, "wire/bet.h", "")
            write(root, "storage/bet_store.h", "")
            write(root, "common/csv.h", "")
            write(root, "server/x.h", '#include "storage/recovery.h"\n')
            write(root, "storage/recovery.h", '#include "common/csv.h"\n')
            write(root, rel, text)
            found = check_tree(root, max_lines=20)
            if not any(p.startswith(expected) for p in found):
                print(f"self-test: a tree with {rel} should report '{expected}', got {found}")
                return False
    # A tree that keeps every rule reports nothing.
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write(root, "common/log.h", "")
        write(root, "wire/bet.h", '#include "common/log.h"\n')
        write(root, "agency/a.cc", '#include "wire/bet.h"\n')
        write(root, "agency/a_test.cc", '#include "server/startup.h"\n')
        write(root, "server/startup.h", '#include "wire/bet.h"\n')
        found = check_tree(root)
        if found:
            print(f"self-test: a clean tree reported {found}")
            return False
    # Function lengths: a long function is reported at its opening brace,
    # whatever braces its comments and literals hold; an allowed one, a short
    # one, a class and a table are not.
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        body = "  x += 1;\n" * 12
        write(root, "worker/w.cc",
              '#include "common/log.h"\n'                       # 1
              "#if defined(X)\n#endif\n"                        # 2-3
              "namespace lottery {\n"                           # 4
              "constexpr int kTable[] = {1, 2, 3};\n"           # 5
              "int Short(int x) {\n  return x;\n}\n"         # 6-8
              "class Session {\n public:\n"                    # 9-10
              "  int Serve() const {\n"                         # 11
              '    const char* s = "}}";  // }\n'               # 12
              "    char c = '}'; int n = 100'000;  /* { */\n"   # 13
              + body +                                          # 14-25
              "    return 0;\n  }\n"                            # 26-27
              "};\n"                                            # 28
              "template <typename T>\n"                         # 29
              "std::optional<bool> Worker::Handle(\n"           # 30
              "    T payload, const std::string& n = {}) {\n"   # 31
              "  auto f = [&] { return 1; };\n"                 # 32
              + body +                                          # 33-44
              '  const char* q = R"sql(}})sql";\n'               # 45
              "}\n"                                             # 46
              "ProgramSpec TableSpec(int c) {\n" + body + "}\n"
              "}  // namespace lottery\n")
        found = check_function_lengths(root, limit=14,
                                       allowed={"worker/w.cc:TableSpec": "a table"})
        expected = ["worker/w.cc:11: Serve is 17 lines",
                    "worker/w.cc:31: Worker::Handle is 16 lines"]
        if len(found) != len(expected) or \
                not all(any(f.startswith(e) for f in found) for e in expected):
            print(f"self-test: long functions should report {expected}, got {found}")
            return False
    # Docs naming code: a stale name and a stale path are reported, names in
    # fenced blocks and names that exist are not.
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write(root, "src/storage/bet_store.h", "class BetStore { void AppendBatches(); };\n")
        write(root, "README.md", "`BetStore::AppendBatches` and `src/storage/bet_store.h`\n"
                                 "```\n`GoneToo`\n```\n")
        write(root, "docs/A.md", "x\n`BetStore::AppendBatch()` and `storage/gone.h`\n")
        found = check_doc_names(root)
        expected = ["docs/A.md:2: `BetStore::AppendBatch()` names AppendBatch",
                    "docs/A.md:2: `storage/gone.h` does not exist"]
        if [f for f in found if not any(f.startswith(e) for e in expected)] or \
                not all(any(f.startswith(e) for f in found) for e in expected):
            print(f"self-test: docs naming code should report {expected}, got {found}")
            return False
    return True


def main():
    root = Path(os.environ.get("LOTTERY_SOURCE_ROOT", Path(__file__).resolve().parents[2]))
    if not self_test():
        print("0 passed, 1 failed")
        return 1
    problems = (check_tree(root / "src") + check_function_lengths(root / "src")
                + check_doc_names(root))
    build_root = os.environ.get("LOTTERY_BUILD_ROOT")
    if build_root:
        problems += check_agency_link(build_root)
    for p in problems:
        print(p)
    if problems:
        print(f"layout: {len(problems)} violations of the rules in tests/layout/layout_test.py")
        return 1
    print("layout: every include keeps the layering; lottery-agency links agency, tls, wire, "
          f"common; no function is longer than {MAX_FUNCTION_LINES} lines but the tables "
          "allowed; every code name in the docs exists")
    return 0


if __name__ == "__main__":
    sys.exit(main())
