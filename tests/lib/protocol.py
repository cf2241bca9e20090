"""The wire protocol of docs/PROTOCOL.md for the Python tests: message types,
error codes, frame encoders and decoders, and a raw client. The one place
the tests take these from (harness.py re-exports them)."""
import collections
import csv
import socket
import struct

# Message types.
HELLO, BETS, FINISHED, WINNERS_QUERY, ECHO = 0x01, 0x02, 0x03, 0x04, 0x05
WELCOME, ACK, FINISHED_ACK, WINNERS, ECHO_REPLY, ERROR = 0x81, 0x82, 0x83, 0x84, 0x85, 0x7F

# Error codes (ERROR frames).
E_MALFORMED, E_TOO_LARGE, E_UNKNOWN, E_ORDER, E_BAD_AGENCY, E_BUSY = 1, 2, 3, 4, 5, 6
E_INVALID_BET, E_GAP, E_CANCELLED, E_STORAGE, E_TIMEOUT, E_SHUTDOWN = 7, 8, 9, 10, 11, 12
E_TOO_MANY = 13
E_TLS_REQUIRED = 14
E_NOT_AUTHORIZED = 15
E_REPLACED = 16
E_REPLAY_MISMATCH = 17
E_BETTING_CLOSED = 18

# The frame limit: header and payload.
FRAME_HEADER_SIZE = 5
MAX_FRAME_SIZE = 8192


def frame(kind, payload=b""):
    return struct.pack(">BI", kind, len(payload)) + payload


def s16(text):
    b = text.encode("utf-8") if isinstance(text, str) else text
    return struct.pack(">H", len(b)) + b


def hello(agency):
    return frame(HELLO, struct.pack(">I", agency))


def csv_field(value):
    """A field of the project's CSV dialect: quoted only when it holds a
    comma, a double quote, CR or LF, quotes inside doubled."""
    text = value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def bet_row(first, last, doc, birth, number):
    """A bet's row inside BETS (docs/PROTOCOL.md): its bets-file row without
    the agency column and line end, in the one canonical spelling."""
    text = ",".join(csv_field(f) for f in (first, last, doc, birth)) + "," + str(number)
    return text.encode("utf-8", "surrogateescape")


def decode_bets(payload):
    """A BETS payload as (seq, count, rows), each row the list of its five
    fields (CSV-unquoted)."""
    seq, count = struct.unpack_from(">QH", payload, 0)
    pos, rows = 10, []
    for _ in range(count):
        (n,) = struct.unpack_from(">H", payload, pos)
        text = payload[pos + 2:pos + 2 + n].decode("utf-8")
        rows.append(next(csv.reader([text])))
        pos += 2 + n
    return seq, count, rows


def bets_frame(seq, bets):
    """A BETS frame; each bet is a 5-tuple of fields or, to send any bytes
    as a row, bytes."""
    payload = struct.pack(">QH", seq, len(bets))
    for bet in bets:
        payload += s16(bet if isinstance(bet, bytes) else bet_row(*bet))
    return frame(BETS, payload)


class RawClient:
    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _read_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read(self):
        kind, length = struct.unpack(">BI", self._read_exact(5))
        return kind, self._read_exact(length)

    def closed(self, timeout=5.0):
        """True when the server closes the connection within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
        except (socket.timeout, TimeoutError):
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


def decode_error(payload):
    code, index, length = struct.unpack(">HIH", payload[:8])
    return code, index, payload[8:8 + length].decode("utf-8", "replace")


# WELCOME (docs/PROTOCOL.md): what the server holds of the agency.
Welcome = collections.namedtuple(
    "Welcome", "last_seq finished bets_stored stored_digest round round_state")
ROUND_OPEN, ROUND_CLOSED, ROUND_DRAWN = 1, 2, 3
WELCOME_SIZE = 34


def decode_welcome(payload):
    """A WELCOME payload as a Welcome; fails unless it is 34 bytes."""
    if len(payload) != WELCOME_SIZE:
        raise ValueError(f"WELCOME of {len(payload)} bytes, not {WELCOME_SIZE}")
    seq, finished, stored, digest, number, state = struct.unpack(">QBQQQB", payload)
    return Welcome(seq, bool(finished), stored, digest, number, state)


def welcome(last_seq=0, finished=False, bets_stored=0, stored_digest=0, round_number=1,
            round_state=ROUND_OPEN):
    """A whole WELCOME frame (for stand-in servers)."""
    return frame(WELCOME, struct.pack(">QBQQQB", last_seq, int(finished), bets_stored,
                                      stored_digest, round_number, round_state))


_M64 = (1 << 64) - 1
_P1, _P2, _P3 = 0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & _M64


def _round(acc, word):
    return (_rotl((acc + word * _P2) & _M64, 31) * _P1) & _M64


def row_digest(row, position):
    """RowDigest(row, position) of docs/PROTOCOL.md ("The stored digest"),
    written from that text: `row` is a bet row's bytes."""
    a, b = position ^ _P1, len(row) ^ _P2
    padded = row.ljust(16, b"\0")
    blocks = [padded[i:i + 16] for i in range(0, len(padded) - 16, 16)] + [padded[-16:]]
    for block in blocks:
        a = _round(a, int.from_bytes(block[:8], "little"))
        b = _round(b, int.from_bytes(block[8:], "little"))
    h = a ^ _rotl(b, 27)
    h ^= h >> 33
    h = (h * _P2) & _M64
    h ^= h >> 29
    h = (h * _P3) & _M64
    h ^= h >> 32
    return h


def stored_digest(rows):
    """WELCOME's stored_digest of an agency whose stored bet rows are `rows`
    (bytes, in stored order)."""
    return sum(row_digest(r, i) for i, r in enumerate(rows)) & _M64


def decode_ack(payload):
    return struct.unpack(">QH", payload)


def decode_winners(payload):
    last, count = struct.unpack(">BH", payload[:3])
    pos, docs = 3, []
    for _ in range(count):
        (n,) = struct.unpack(">H", payload[pos:pos + 2])
        docs.append(payload[pos + 2:pos + 2 + n].decode())
        pos += 2 + n
    return bool(last), docs
