"""7xx: hostile multipart/form-data uploads over raw sockets (every byte and every TCP
write chosen by the test). Each refusal is checked three ways: the documented status,
nothing stored (row count of the server's own database unchanged), and the server still
healthy afterwards (health 200 and an upload + fetch round trip)."""
import json
import time

import pytest

import harness as H
from harness import read


@pytest.fixture(scope="module")
def srv(pg):
    """A default server on a database of its own, so row counts are this module's alone."""
    yield from H.own_server(pg, "t700")


def stored(srv):
    return H.rows(srv.pg, srv.db)


def assert_refused(srv, answer, status, before):
    """A JSON error with status, no row added, the server healthy."""
    assert answer.status == status, "expected %d, got %r" % (status, answer)
    assert answer.json_error(), "not a JSON error: %r" % answer
    assert answer.header("cache-control") == "no-store", answer.headers
    assert stored(srv) == before, "a refused upload left a row"
    H.assert_healthy(srv)


def assert_stored_exactly(srv, answer, data, mime=None):
    """A 201 whose hash serves data back byte for byte."""
    assert answer.status == 201, "expected 201, got %r" % answer
    body = json.loads(answer.body)
    g = srv.get("/image/" + body["hash"])
    assert g.status_code == 200 and g.content == data, (g.status_code, len(g.content))
    if mime:
        assert body["type"] == mime and g.headers["Content-Type"] == mime, body
    return body["hash"]


GIF = read("sample.gif")
PNG = read("sample.png")


# -- the boundary parameter ----------------------------------------------------------------------

@pytest.mark.parametrize("ctype", [
    "multipart/form-data",
    "multipart/form-data; boundary=",
    'multipart/form-data; boundary=""',
    "multipart/form-data; boundary=" + "b" * 71,
    'multipart/form-data; boundary="' + "b" * 71 + '"',
    "multipart/form-data; boundary=bbbb; boundary=cccc",
], ids=["missing", "empty", "empty-quoted", "71-chars", "71-chars-quoted", "given-twice"])
def test_700_a_missing_empty_overlong_or_repeated_boundary_is_400(srv, ctype):
    # The body itself is a correct form for whichever boundary the server might pick.
    b = ctype.rpartition("boundary=")[2].strip('"') or "bbbb"
    body, _ = H.one_file(PNG, boundary=b)
    before = stored(srv)
    assert_refused(srv, H.post(srv.port, body, ctype), 400, before)


def test_701_a_boundary_of_exactly_70_chars_the_rfc_2046_maximum_is_accepted(srv):
    b = "b" * 70
    body, ctype = H.one_file(GIF, boundary=b)
    assert_stored_exactly(srv, H.post(srv.port, body, ctype), GIF, "image/gif")


def test_702_a_body_framed_with_another_boundary_than_declared_is_400(srv):
    body, _ = H.one_file(PNG, boundary="actualboundary123")
    before = stored(srv)
    answer = H.post(srv.port, body, "multipart/form-data; boundary=declaredboundary456")
    assert_refused(srv, answer, 400, before)


def test_703_a_declared_boundary_that_is_a_prefix_of_the_real_one_is_400(srv):
    # "--abc" matches the start of every "--abcdef" line, which is then followed by "def":
    # RFC 2046 forbids that, and the parser must refuse it rather than split mid-line.
    body, _ = H.one_file(PNG, boundary="abcdef")
    before = stored(srv)
    assert_refused(srv, H.post(srv.port, body, "multipart/form-data; boundary=abc"), 400, before)


# -- TCP writes split at every offset -------------------------------------------------------------

def test_704_delimiters_split_across_tcp_writes_at_every_offset_all_store_identical_bytes(srv):
    b = "split" + "0123456789" * 2
    body, ctype = H.one_file(GIF, boundary=b, filename=b"a.gif", ctype=b"image/gif")
    open_len = len("--" + b + "\r\n")
    close_delim = ("\r\n--" + b + "--\r\n").encode()
    close_at = len(body) - len(close_delim)
    assert body[close_at:] == close_delim
    header_end = body.index(b"\r\n\r\n")
    before = stored(srv)
    hashes = set()
    for k in range(len(close_delim)):
        # Four writes: inside the opening delimiter, inside the blank line after the part's
        # headers, inside the closing delimiter.
        pieces = H.split_at(body, k % open_len, header_end + k % 4, close_at + k)
        answer = H.post(srv.port, body, ctype, pieces=pieces, pause=0.01)
        hashes.add(assert_stored_exactly(srv, answer, GIF, "image/gif"))
    assert len(hashes) == len(close_delim)
    assert stored(srv) == before + len(close_delim)


def test_705_near_miss_delimiters_inside_the_file_split_at_every_offset_are_kept_as_data(srv):
    # A JPEG may carry trailing bytes after its end marker (the sniffer allows it): append
    # strings that start like the delimiter and break off at every depth, then cut the
    # writes at every offset of that region. Every byte must come back unchanged.
    b = "nearmiss0123456789"
    jpeg = read("sample.jpg")
    decoys = (b"\r\n--" + b[:-1].encode() + b"X" + b"\r\r\n--" + b[:5].encode()
              + b"\r\n-\r\n--" + b"\r\n--" + b.encode()[:1] + b"\r")
    data = jpeg + decoys
    body, ctype = H.one_file(data, boundary=b)
    start = body.index(decoys)
    for k in range(len(decoys) + 1):
        answer = H.post(srv.port, body, ctype, pieces=H.split_at(body, start + k), pause=0.01)
        assert_stored_exactly(srv, answer, data, "image/jpeg")


# -- which parts are there ------------------------------------------------------------------------

def test_706_a_form_without_a_file_part_is_400(srv):
    b = H.new_boundary()
    body = H.form(b, [H.file_part(b, PNG, name=b"image"), H.file_part(b, b"hello", name=b"note",
                                                                      filename=None)])
    before = stored(srv)
    assert_refused(srv, H.post(srv.port, body, "multipart/form-data; boundary=" + b), 400,
                   before)


@pytest.mark.parametrize("second", [PNG, b"not an image"], ids=["two-images", "image-then-text"])
def test_707_two_file_parts_are_400_and_neither_is_stored(srv, second):
    b = H.new_boundary()
    body = H.form(b, [H.file_part(b, GIF), H.file_part(b, second)])
    before = stored(srv)
    assert_refused(srv, H.post(srv.port, body, "multipart/form-data; boundary=" + b), 400,
                   before)


@pytest.mark.parametrize("lines", [
    b'Content-Disposition: form-data; name="file"\nContent-Type: image/png\r\n\r\n',
    b'Content-Disposition: form-data; name="file"\r\nContent-Type: image/png\n\r\n',
    b'Content-Disposition: form-data; name="file"\r\nContent-Type: image/png\r\n\n',
    b'Content-Disposition: form-data; name="file"\n\n',
    b'Content-Disposition: form-data; name="file"\rContent-Type: image/png\r\n\r\n',
], ids=["lf-after-disposition", "lf-after-type", "lf-blank-line", "lf-only", "bare-cr"])
def test_708_part_headers_with_a_bare_lf_or_cr_are_400(srv, lines):
    b = H.new_boundary()
    body = b"--" + b.encode() + b"\r\n" + lines + PNG + b"\r\n--" + b.encode() + b"--\r\n"
    before = stored(srv)
    assert_refused(srv, H.post(srv.port, body, "multipart/form-data; boundary=" + b), 400,
                   before)


def test_709_a_part_header_block_of_9_kib_is_400_and_one_of_7_kib_is_accepted(srv):
    b = H.new_boundary()

    def with_header(n):
        return H.form(b, [H.part(b, [b'Content-Disposition: form-data; name="file"',
                                     b"X-Pad: " + b"p" * n], GIF)])
    before = stored(srv)
    assert_refused(srv, H.post(srv.port, with_header(9 * 1024), "multipart/form-data; boundary="
                               + b), 400, before)
    answer = H.post(srv.port, with_header(7 * 1024), "multipart/form-data; boundary=" + b)
    assert_stored_exactly(srv, answer, GIF)


def test_710_seventeen_parts_are_400_and_sixteen_are_accepted(srv):
    b = H.new_boundary()

    def with_parts(n):
        extra = [H.part(b, [b'Content-Disposition: form-data; name="f%d"' % i], b"x")
                 for i in range(n - 1)]
        return H.form(b, extra + [H.file_part(b, GIF)])
    before = stored(srv)
    assert_refused(srv, H.post(srv.port, with_parts(17), "multipart/form-data; boundary=" + b),
                   400, before)
    answer = H.post(srv.port, with_parts(16), "multipart/form-data; boundary=" + b)
    assert_stored_exactly(srv, answer, GIF)


# -- names, filenames, quoting ----------------------------------------------------------------

@pytest.mark.parametrize("disposition", [
    b'form-data; name="fi\x00le"; filename="a.png"',
    b'form-data; name="file\x00"; filename="a.png"',
    b'form-data; name="file"; filename="a\x00.png"',
    b'form-data; name="file"; name="file"',
    b'form-data; name="file"; filename="a.png"; filename="b.png"',
    b'form-data; name="file',
    b'form-data; name="file"; filename="a.png',
    b'form-data; name=""',
    b'form-data; name=',
    b'form-data; name="fi\\"le"',
    b'form-data; name="FILE"',
    b'form-data; name="file "',
    b'attachment; name="file"',
    b'form-data name="file"',
], ids=["nul-in-name", "nul-after-name", "nul-in-filename", "name-twice", "filename-twice",
        "unterminated-name", "unterminated-filename", "empty-name", "name-without-value",
        "escaped-quote-in-name", "uppercase-name", "name-with-space", "not-form-data",
        "no-semicolon"])
def test_711_tricks_in_the_disposition_of_the_only_part_are_400(srv, disposition):
    b = H.new_boundary()
    body = H.form(b, [H.part(b, [b"Content-Disposition: " + disposition], PNG)])
    before = stored(srv)
    assert_refused(srv, H.post(srv.port, body, "multipart/form-data; boundary=" + b), 400,
                   before)


@pytest.mark.parametrize("disposition", [
    b'form-data; name=file',
    b'form-data; name="file"; filename="a\\"; name=\\"x.png"',
    b'form-data; filename="x; name=other"; name="file"',
    b'form-data; name="file"; filename="../../../../etc/passwd"',
    b'form-data; name="file"; filename="C:\\\\Windows\\\\win.ini"',
    b'form-data; name="file"; filename*=UTF-8\'\'%E2%9C%93.png',
    b'form-data; name="file"; filename="\xd1\x84\xd0\xbe\xd1\x82\xd0\xbe-\xf0\x9f\x98\x80.png"',
    b'form-data; name="file"; filename="<script>alert(1)</script>.png"',
    b'FORM-DATA ;  NAME="file" ;filename="a.png";',
    b'form-data; name="file"; filename=""',
], ids=["unquoted-name", "escaped-quotes-in-filename", "semicolon-inside-quotes",
        "path-traversal-filename", "windows-path-filename", "rfc5987-filename",
        "utf8-filename", "html-filename", "odd-case-and-spacing", "empty-filename"])
def test_712_legal_but_odd_dispositions_store_the_file_part_byte_for_byte(srv, disposition):
    b = H.new_boundary()
    body = H.form(b, [H.part(b, [b"Content-Disposition: " + disposition,
                                 b"Content-Type: text/html"], GIF)])
    assert_stored_exactly(srv, H.post(srv.port, body, "multipart/form-data; boundary=" + b),
                          GIF, "image/gif")


def test_713_a_nested_multipart_inside_the_file_part_is_415_not_the_inner_image(srv):
    inner_b = H.new_boundary()
    inner = H.form(inner_b, [H.file_part(inner_b, PNG, filename=b"inner.png",
                                         ctype=b"image/png")])
    b = H.new_boundary()
    body = H.form(b, [H.file_part(b, inner, ctype=b"multipart/mixed; boundary=" +
                                  inner_b.encode())])
    before = stored(srv)
    assert_refused(srv, H.post(srv.port, body, "multipart/form-data; boundary=" + b), 415, before)


# -- where the body ends ----------------------------------------------------------------------

@pytest.mark.parametrize("cut", ["in-headers", "mid-file", "before-close", "mid-close",
                                 "close-without-dashes"])
def test_714_an_honestly_sized_body_that_ends_mid_form_is_400(srv, cut):
    b = H.new_boundary()
    body, ctype = H.one_file(PNG, boundary=b)
    close_at = body.rindex(b"\r\n--" + b.encode() + b"--")
    ends = {"in-headers": body[:40], "mid-file": body[:len(body) // 2],
            "before-close": body[:close_at], "mid-close": body[:close_at + 6],
            "close-without-dashes": body[:close_at] + b"\r\n--" + b.encode() + b"\r\n"}
    before = stored(srv)
    assert_refused(srv, H.post(srv.port, ends[cut], ctype), 400, before)


def test_715_trailing_garbage_after_the_close_is_ignored_even_a_second_file_part(srv):
    b = H.new_boundary()
    body, ctype = H.one_file(GIF, boundary=b)
    epilogue = (H.file_part(b, PNG) + b"\r\n--" + b.encode() + b"--\r\n"
                + b"\x00\xff garbage \r\n\n\r" * 50)
    # The stored file is the first (and only) part before the close: the GIF.
    assert_stored_exactly(srv, H.post(srv.port, body + epilogue, ctype), GIF, "image/gif")


def test_716_a_content_length_above_the_bytes_sent_is_answered_408_json_not_left_hanging(srv):
    # The client announces more than it sends and waits: RequestReadTimeout body=20
    # (extended by MinRate=500 per byte received) must end the wait with an answer.
    jpeg = read("sample.jpg")
    body, ctype = H.one_file(jpeg)
    before = stored(srv)
    t0 = time.time()
    answer = H.send(srv.port, H.upload_head(ctype, length=len(body) + 5000), [body], timeout=40)
    assert not answer.timed_out, "no answer after %.0f s" % (time.time() - t0)
    assert answer.status == 408, answer
    assert_refused(srv, answer, 408, before)


def test_717_a_content_length_below_the_body_gets_400_and_the_rest_does_no_harm(srv):
    b = H.new_boundary()
    body, ctype = H.one_file(PNG, boundary=b)
    before = stored(srv)
    # Keep-alive: what follows the announced length reaches httpd as a next "request".
    head = H.upload_head(ctype, length=len(body) - 200, close=False)
    with H.connect(srv.port, timeout=20) as s:
        s.sendall(head + body)
        first = H.read_answer(s, timeout=20)
        assert first.status == 400 and first.json_error(), first
        # Whatever httpd makes of the leftover bytes, it is never a success.
        follow = H.read_answer(s, timeout=10)
        assert follow.status == 0 or 400 <= follow.status < 500, follow
    assert_refused(srv, first, 400, before)


# -- chunked and Expect -----------------------------------------------------------------------

@pytest.mark.parametrize("chunk", [4096, 7, 1], ids=["4k-chunks", "7-byte-chunks", "1-byte-chunks"])
def test_718_a_chunked_upload_stores_the_exact_bytes(srv, chunk):
    data = read("sample.jpg") if chunk == 1 else read("sample-100k.jpg")
    body, ctype = H.one_file(data)
    answer = H.send(srv.port, H.upload_head(ctype, chunked=True), [H.chunked(body, chunk)])
    assert_stored_exactly(srv, answer, data, "image/jpeg")


def test_719_chunks_sent_as_separate_writes_with_extensions_and_padding_are_stored(srv):
    # Chunk sizes in upper-case hex with leading zeros and chunk extensions are legal.
    data = read("sample.gif")
    body, ctype = H.one_file(data)
    pieces = []
    for i in range(0, len(body), 300):
        c = body[i:i + 300]
        pieces.append(b"%04X;name=value\r\n%s\r\n" % (len(c), c))
    pieces.append(b"0\r\n\r\n")
    answer = H.send(srv.port, H.upload_head(ctype, chunked=True), pieces, pause=0.002)
    assert_stored_exactly(srv, answer, data, "image/gif")


def test_720_expect_100_continue_gets_100_then_201(srv):
    body, ctype = H.one_file(PNG)
    with H.connect(srv.port) as s:
        s.sendall(H.upload_head(ctype, length=len(body), expect=True))
        buf = [b""]
        # Nothing is sent until the interim answer arrives.
        assert H.wait_readable(s, 10), "no 100 Continue within 10 s"
        interim = s.recv(4096)
        assert interim.startswith(b"HTTP/1.1 100 "), interim
        buf[0] = interim.partition(b"\r\n\r\n")[2]
        s.sendall(body)
        answer = H.read_answer(s, buf=buf)
    assert_stored_exactly(srv, answer, PNG, "image/png")


def test_721_expect_with_an_oversized_content_length_is_413_without_100_and_closed(srv):
    limit = 10 * 1024 * 1024 + 64 * 1024
    before = stored(srv)
    with H.connect(srv.port) as s:
        s.sendall(H.upload_head("multipart/form-data; boundary=abc", length=limit + 1,
                                expect=True, close=False))
        answer = H.read_answer(s, timeout=10)
        assert answer.interim == [], "the server asked for the body it refuses: %r" % answer
        assert answer.status == 413, answer
        assert answer.header("connection", "").lower() == "close", answer.headers
        assert H.server_closed(s, 10), "connection left open for a body that is refused"
    assert_refused(srv, answer, 413, before)


@pytest.mark.parametrize("framing", [
    lambda c: b"zz\r\n" + c + b"\r\n0\r\n\r\n",
    lambda c: b"%x\r\n" % (len(c) - 100) + c + b"\r\n0\r\n\r\n",
    lambda c: b"ffffffffffffffffffff\r\n" + c + b"\r\n0\r\n\r\n",
    lambda c: b"-5\r\n" + c + b"\r\n0\r\n\r\n",
    lambda c: b"%x" % len(c) + b"\n" + c + b"\n0\n\n",
], ids=["not-hex", "size-below-data", "size-overflow", "negative-size",
        "bare-lf-framing"])
def test_722_broken_chunked_framing_is_a_4xx_and_stores_nothing(srv, framing):
    # httpd's chunk filter refuses these; whether the 4xx page is httpd's or the module's
    # JSON, nothing may be stored and the server must stay healthy.
    body, ctype = H.one_file(PNG)
    before = stored(srv)
    answer = H.send(srv.port, H.upload_head(ctype, chunked=True), [framing(body)], timeout=40)
    assert not answer.timed_out, answer
    assert 400 <= answer.status < 500, answer
    assert stored(srv) == before
    H.assert_healthy(srv)
