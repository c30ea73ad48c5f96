"""Helpers for the hostile-input and fault tests (test_7xx, test_8xx): raw-socket HTTP
clients that control every byte and every TCP write, multipart bodies built by hand,
image makers, row counts and httpd process inspection.

Everything here is bounded: each read has a deadline, each socket is closed by the
function that opened it (or by the caller's `with`).
"""
import os
import re
import select
import socket
import struct
import time
import zlib

import requests

from conftest import image, pid_alive, read

CRLF = b"\r\n"


# -- raw HTTP ------------------------------------------------------------------------------------

class Answer:
    """One HTTP answer read off a raw socket. status 0: nothing (complete) came back
    before the deadline or the close. interim: the 1xx status codes seen before it."""

    def __init__(self, status=0, reason="", headers=None, body=b"", interim=(), raw=b"",
                 timed_out=False):
        self.status = status
        self.reason = reason
        self.headers = headers or {}
        self.body = body
        self.interim = list(interim)
        self.raw = raw
        self.timed_out = timed_out

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def json_error(self):
        """The module's JSON error message, or None when the body is not one."""
        import json
        if not self.header("content-type", "").startswith("application/json"):
            return None
        try:
            body = json.loads(self.body)
        except ValueError:
            return None
        return body.get("error") if isinstance(body, dict) and set(body) == {"error"} else None

    def __repr__(self):
        return "<Answer %d %r interim=%r %r>" % (self.status, self.reason, self.interim,
                                                 self.raw[:300])


def connect(port, timeout=15.0, rcvbuf=None, sndbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Each sendall() leaves as its own segment(s): no Nagle coalescing of split writes.
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if sndbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s


def _recv_some(sock, deadline):
    """Up to 64 KiB, b"" on a close or reset, None when the deadline passes first."""
    left = deadline - time.time()
    if left <= 0:
        return None
    sock.settimeout(left)
    try:
        return sock.recv(65536)
    except socket.timeout:
        return None
    except (ConnectionResetError, BrokenPipeError):
        return b""


def read_answer(sock, timeout=15.0, head_only=False, buf=None):
    """Read one final answer (1xx answers are recorded and skipped). The body is read by
    Content-Length, by chunked framing, or to the close. head_only: a HEAD answer.
    buf: bytes already received (a list holding one bytes object, updated in place with
    whatever follows the answer, for pipelined reads)."""
    deadline = time.time() + timeout
    data = buf[0] if buf else b""
    raw_all = b""
    interim = []
    while True:
        while b"\r\n\r\n" not in data:
            c = _recv_some(sock, deadline)
            if not c:
                if buf is not None:
                    buf[0] = b""
                return Answer(raw=raw_all + data, interim=interim, timed_out=c is None)
            data += c
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        try:
            status = int(parts[1])
        except (IndexError, ValueError):
            return Answer(raw=raw_all + data, interim=interim)
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            k = k.strip().lower()
            headers[k] = headers[k] + ", " + v.strip() if k in headers else v.strip()
        raw_all += head + b"\r\n\r\n"
        if 100 <= status < 200:
            interim.append(status)
            data = rest
            continue
        break
    body, timed_out = rest, False
    if head_only or status in (204, 304):
        pass
    elif "content-length" in headers:
        n = int(headers["content-length"])
        while len(body) < n:
            c = _recv_some(sock, deadline)
            if not c:
                timed_out = c is None
                break
            body += c
        rest, body = body[n:], body[:n]
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        decoded = b""
        while True:
            while b"\r\n" not in body:
                c = _recv_some(sock, deadline)
                if not c:
                    timed_out = c is None
                    break
                body += c
            if b"\r\n" not in body:
                break
            size_line, _, body = body.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(body) < size + 2:
                c = _recv_some(sock, deadline)
                if not c:
                    break
                body += c
            decoded += body[:size]
            body = body[size + 2:]
            if size == 0:
                break
        rest, body = body, decoded
    else:
        while True:
            c = _recv_some(sock, deadline)
            if not c:
                timed_out = c is None
                break
            body += c
        rest = b""
    if buf is not None:
        buf[0] = rest
    return Answer(status, parts[2] if len(parts) > 2 else "", headers, body, interim,
                  raw_all + body, timed_out)


def server_closed(sock, timeout=5.0):
    """True when the server closes (or resets) the connection within timeout, reading
    and dropping anything it still sends."""
    deadline = time.time() + timeout
    while True:
        c = _recv_some(sock, deadline)
        if c is None:
            return False
        if c == b"":
            return True


def head_bytes(request_line, headers):
    """Request head bytes: the request line, (name, value) header pairs, the blank line."""
    out = request_line.encode("latin-1") + CRLF
    for k, v in headers:
        out += k.encode("latin-1") + b": " + (v if isinstance(v, bytes) else
                                              str(v).encode("latin-1")) + CRLF
    return out + CRLF


def upload_head(content_type, length=None, chunked=False, expect=False, close=True,
                path="/upload", extra=()):
    headers = [("Host", "127.0.0.1")]
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    if length is not None:
        headers.append(("Content-Length", str(length)))
    if chunked:
        headers.append(("Transfer-Encoding", "chunked"))
    if expect:
        headers.append(("Expect", "100-continue"))
    if close:
        headers.append(("Connection", "close"))
    headers.extend(extra)
    return head_bytes("POST %s HTTP/1.1" % path, headers)


def send(port, head, pieces=(), pause=0.0, timeout=20.0, head_only=False):
    """Open a connection, write head then each piece as its own write (pause seconds
    between writes), and read one answer. A server that answers and closes before
    taking every piece is fine: the writes stop there."""
    with connect(port, timeout=timeout) as s:
        try:
            s.sendall(head)
            for piece in pieces:
                if pause:
                    time.sleep(pause)
                s.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return read_answer(s, timeout=timeout, head_only=head_only)


def post(port, body, content_type, pieces=None, **kw):
    """POST /upload with an honest Content-Length; pieces (when given) split body."""
    head = upload_head(content_type, length=len(body))
    return send(port, head, pieces if pieces is not None else [body], **kw)


def chunked(body, size):
    """body in HTTP/1.1 chunked framing, size bytes per chunk, with the last chunk."""
    out = []
    for i in range(0, len(body), size):
        c = body[i:i + size]
        out.append(b"%x\r\n%s\r\n" % (len(c), c))
    out.append(b"0\r\n\r\n")
    return b"".join(out)


def split_at(data, *offsets):
    """data cut at the given offsets (sorted, deduplicated, empty pieces dropped)."""
    cuts = sorted(set(o for o in offsets if 0 < o < len(data)))
    pieces, last = [], 0
    for c in cuts:
        pieces.append(data[last:c])
        last = c
    pieces.append(data[last:])
    return pieces


# -- multipart bodies built by hand -------------------------------------------------------------

def new_boundary():
    return "hostile" + os.urandom(10).hex()


def part(boundary, header_lines, data):
    """One part: the delimiter line, the given raw header lines (bytes, each without its
    line ending, joined with CRLF), the blank line and the data, without the CRLF that
    belongs to the next delimiter."""
    b = boundary.encode() if isinstance(boundary, str) else boundary
    return b"--" + b + CRLF + b"".join(h + CRLF for h in header_lines) + CRLF + data


def form(boundary, parts, close=True):
    """Parts (from part()) joined by CRLF delimiters, with the close delimiter."""
    b = boundary.encode() if isinstance(boundary, str) else boundary
    body = CRLF.join(parts)
    if close:
        body += CRLF + b"--" + b + b"--" + CRLF
    return body


def file_part(boundary, data, name=b"file", filename=b"x.bin",
              ctype=b"application/octet-stream"):
    disp = b'Content-Disposition: form-data; name="' + name + b'"'
    if filename is not None:
        disp += b'; filename="' + filename + b'"'
    lines = [disp]
    if ctype is not None:
        lines.append(b"Content-Type: " + ctype)
    return part(boundary, lines, data)


def one_file(data, boundary=None, **kw):
    """(body, content type) of a form holding one file part."""
    boundary = boundary or new_boundary()
    return (form(boundary, [file_part(boundary, data, **kw)]),
            "multipart/form-data; boundary=" + boundary)


# -- images of a chosen size --------------------------------------------------------------------

def png_chunk(ctype, data):
    return (struct.pack(">I", len(data)) + ctype + data
            + struct.pack(">I", zlib.crc32(ctype + data) & 0xFFFFFFFF))


def png_of_size(total, base="sample.png"):
    """A valid PNG of exactly total bytes: a real PNG with a private ancillary chunk
    (correct CRC) inserted before IEND to fill the difference."""
    png = read(base)
    iend = png.rindex(b"IEND") - 4
    fill = total - len(png) - 12
    assert fill >= 0, "%d bytes is under the base image's size" % total
    out = png[:iend] + png_chunk(b"prVt", b"\0" * fill) + png[iend:]
    assert len(out) == total
    return out


def bmp(width, height, pixels=None):
    """A valid uncompressed 24-bit BMP (random pixels unless given)."""
    row = (width * 3 + 3) & ~3
    pixels = pixels if pixels is not None else os.urandom(row * height)
    return (b"BM" + struct.pack("<IHHI", 54 + len(pixels), 0, 0, 54)
            + struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixels), 2835, 2835,
                          0, 0)
            + pixels)


# -- the database and the server ----------------------------------------------------------------

def query(pg, sql, db="imgstore"):
    """Run one simple-protocol query as the superuser over the cluster's Unix socket
    (the test cluster trusts local connections) and return its rows as lists of str
    (None for NULL). Same answers as pg.psql, without a psql process per call."""
    def msg(kind, payload):
        return kind + struct.pack("!I", len(payload) + 4) + payload

    startup = b"".join(x.encode() + b"\0" for x in ("user", "postgres", "database", db)) + b"\0"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    try:
        s.connect(os.path.join(pg.sock, ".s.PGSQL.%d" % pg.port))
        s.sendall(struct.pack("!II", len(startup) + 8, 196608) + startup)
        buf, out, sent, error = b"", [], False, None
        while True:
            while len(buf) < 5 or len(buf) < 1 + struct.unpack("!I", buf[1:5])[0]:
                c = s.recv(65536)
                if not c:
                    raise ConnectionError("PostgreSQL closed the connection")
                buf += c
            n = struct.unpack("!I", buf[1:5])[0]
            kind, payload, buf = buf[:1], buf[5:1 + n], buf[1 + n:]
            if kind == b"R" and struct.unpack("!I", payload[:4])[0] != 0:
                raise ConnectionError("PostgreSQL asks for a password: not a trusting cluster")
            if kind == b"E":
                error = payload.replace(b"\0", b" ").decode(errors="replace")
            elif kind == b"D":
                cols, pos, row = struct.unpack("!H", payload[:2])[0], 2, []
                for _ in range(cols):
                    ln = struct.unpack("!i", payload[pos:pos + 4])[0]
                    pos += 4
                    row.append(None if ln < 0 else payload[pos:pos + ln].decode())
                    pos += max(ln, 0)
                out.append(row)
            elif kind == b"Z":
                if error:
                    raise RuntimeError("SQL error: %s" % error)
                if sent:
                    s.sendall(msg(b"X", b""))
                    return out
                s.sendall(msg(b"Q", sql.encode() + b"\0"))
                sent = True
    finally:
        s.close()


def rows(pg, db):
    """How many rows imgstore_images of database db holds."""
    return int(query(pg, "SELECT count(*) FROM imgstore_images", db)[0][0])


def round_trip(h, name="sample.png"):
    """Upload one real image with requests and fetch it back; asserts byte identity."""
    data = read(name)
    r = h.upload(image(name))
    assert r.status_code == 201, "round trip upload: %d %s" % (r.status_code, r.text[:200])
    g = h.get("/image/" + r.json()["hash"])
    assert g.status_code == 200 and g.content == data, \
        "round trip fetch: %d, %d bytes" % (g.status_code, len(g.content))
    return r.json()["hash"]


def assert_healthy(h, name="sample.png"):
    """The server answers /health with 200 and takes and serves an image."""
    r = requests.get(h.url("/health"), timeout=15)
    assert r.status_code == 200, "health: %d %s" % (r.status_code, r.text[:200])
    return round_trip(h, name)


def children(h):
    """Pids of the live processes whose parent is httpd's parent process."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/status" % d) as f:
                status = f.read()
        except OSError:
            continue
        m = re.search(r"^PPid:\s+(\d+)", status, re.M)
        state = re.search(r"^State:\s+(\S)", status, re.M)
        if m and int(m.group(1)) == h.pid and not (state and state.group(1) == "Z"):
            out.append(int(d))
    return sorted(out)


def proc_status_kb(pid, field):
    """A /proc/<pid>/status field in kB (VmRSS, VmHWM...), None once the process is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            m = re.search(r"^%s:\s+(\d+) kB" % field, f.read(), re.M)
    except OSError:
        return None
    return int(m.group(1)) if m else None


def _socket_inodes_for_peer(server_port, client_port):
    """Inodes of the server-side sockets of one loopback connection (/proc/net/tcp)."""
    inodes = []
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if (int(local.split(":")[1], 16) == server_port
                    and int(remote.split(":")[1], 16) == client_port):
                inodes.append(inode)
    return inodes


def child_holding(h, sock, timeout=10.0):
    """The httpd child whose descriptors hold the server side of the client socket sock."""
    client_port = sock.getsockname()[1]
    deadline = time.time() + timeout
    while time.time() < deadline:
        inodes = set("socket:[%s]" % i for i in _socket_inodes_for_peer(h.port, client_port)
                     if i != "0")
        for pid in children(h):
            try:
                fds = os.listdir("/proc/%d/fd" % pid)
            except OSError:
                continue
            for fd in fds:
                try:
                    if os.readlink("/proc/%d/fd/%s" % (pid, fd)) in inodes:
                        return pid
                except OSError:
                    continue
        time.sleep(0.05)
    return None


def wait_gone(pids, timeout=30.0):
    """The pids among pids still running after up to timeout seconds."""
    deadline = time.time() + timeout
    alive = [p for p in pids if pid_alive(p)]
    while alive and time.time() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if pid_alive(p)]
    return alive


def wait_readable(sock, timeout):
    r, _, _ = select.select([sock], [], [], timeout)
    return bool(r)


def own_server(pg, name, with_hash=False):
    """Generator for a module-scoped fixture: a default server on a database of
    its own (so row counts are that module's alone), log-checked when done."""
    from conftest import Httpd
    db = pg.create_db(name)
    h = Httpd(pg, dbname=db).start()
    h.db = db
    if with_hash:
        h.hash = round_trip(h)
    yield h
    h.stop()
    bad = h.unexpected_log_lines()
    assert not bad, "unexpected error-log lines:\n" + "\n".join(bad)
