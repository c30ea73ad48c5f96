"""The one raw HTTP client: every byte and every TCP write under the test's control, each
read bounded by a deadline, each socket closed by the function that opened it (or by the
caller's `with`). Ordinary requests go through requests (see Httpd.upload / Httpd.get)."""
import json
import select
import socket
import time

CRLF = b"\r\n"


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
        if not self.header("content-type", "").startswith("application/json"):
            return None
        try:
            body = json.loads(self.body)
        except ValueError:
            return None
        return body.get("error") if isinstance(body, dict) and set(body) == {"error"} else None

    @property
    def status_line(self):
        return self.raw.split(b"\r\n", 1)[0].decode("latin-1")

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
    if sock is None:
        return b""  # parse(): the bytes are all there
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


def wait_readable(sock, timeout):
    r, _, _ = select.select([sock], [], [], timeout)
    return bool(r)


def parse(raw):
    """The first final answer in raw (bytes read up to a close); .raw keeps them all."""
    a = read_answer(None, timeout=1.0, buf=[raw])
    a.raw = raw
    return a


def raw_http(port, head, body=b"", timeout=15.0, read_first=False):
    """Send one request (head: the request line and header lines as one str, without
    the blank line), then read until the server closes and parse the first answer
    (.raw: every byte read, so a second answer would show there).
    read_first: send the head alone and read the answer before sending any body."""
    with connect(port, timeout=timeout) as s:
        s.sendall(head.encode("latin-1") + b"\r\n\r\n")
        if body and not read_first:
            try:
                s.sendall(body)
            except OSError:
                pass  # the server may answer and close before taking the whole body
        chunks = []
        while True:
            try:
                c = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break  # a server still waiting for a body after timeout: status 0
            if not c:
                break
            chunks.append(c)
    return parse(b"".join(chunks))


def assert_json_error(r, status):
    """A module error answer (a requests response): the status, a JSON {"error": "..."}
    body, the JSON headers."""
    assert r.status_code == status, "expected %d, got %d: %r" % (status, r.status_code, r.text)
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"], body
    assert r.headers.get("Cache-Control") == "no-store", r.headers
    assert r.headers.get("X-Content-Type-Options") == "nosniff", r.headers
