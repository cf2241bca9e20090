#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (tests/fuzz/corpus/<target>/) from
the project's own documents and files: the byte vectors of docs/PROTOCOL.md
and docs/STORAGE.md, dataset lines, and the shipped configuration files.
Run it again after a format changes; the seeds are committed."""
import os
import re
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus")


def hex_blocks(path, heading):
    """The fenced hex blocks after `heading` in a markdown file, as bytes."""
    text = open(path, encoding="utf-8").read()
    text = text[text.index(heading):]
    blocks = []
    for block in re.findall(r"```\n(.*?)```", text, re.S):
        data = bytearray()
        for line in block.splitlines():
            for token in line.split():
                if not re.fullmatch(r"[0-9a-fA-F]{2}", token):
                    break
                data.append(int(token, 16))
        if data:
            blocks.append(bytes(data))
    return blocks


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    frames = hex_blocks(os.path.join(ROOT, "docs", "PROTOCOL.md"), "## Byte-level examples")
    for i, frame in enumerate(frames):
        write("frame", f"doc-{i}", frame)
        write("messages", f"doc-{i}", frame[5:])
    write("frame", "all", b"".join(frames))
    results = hex_blocks(os.path.join(ROOT, "docs", "STORAGE.md"), "## The round result")
    write("round_result", "doc", results[0])
    records = hex_blocks(os.path.join(ROOT, "docs", "STORAGE.md"), "## The batch journal")[0]
    dataset = open(os.path.join(ROOT, "dataset", "agency-1.csv"), "rb").read().splitlines(True)[:20]
    write("csv", "dataset", b"".join(dataset))
    write("csv", "quoted", b'2,"Ana ""la"" Mar\xc3\xada, hija",N\xc3\xba\xc3\xb1ez,00012345,1980-05-17,7574\r\n')
    # A BETS payload of bet rows: the dataset's lines and the quoted example.
    rows = [line.rstrip(b"\r\n") for line in dataset]
    rows.append(b'"Ana ""la"" Mar\xc3\xada, hija",N\xc3\xba\xc3\xb1ez,00012345,1980-05-17,7574')
    write("messages", "bets-rows", struct.pack(">QH", 1, len(rows)) +
          b"".join(struct.pack(">H", len(r)) + r for r in rows))
    stored = b"".join(b"1," + line for line in dataset)
    write("bets_file", "rows-only", struct.pack("<H", len(stored) + 1) + stored)
    write("bets_file", "rows-and-journal", struct.pack("<H", len(stored)) + stored + records)
    for name in ("server.toml", "client.toml"):
        write("config", name, open(os.path.join(ROOT, "conf", name), "rb").read())
    write("config", "small", b'[server]\nport = 1\nread_timeout = "1m30s"\n[log]\nlevel = "debug"\n')
    return 0


if __name__ == "__main__":
    sys.exit(main())
