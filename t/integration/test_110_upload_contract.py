"""1xx: POST /upload -- the 201 answer, and every way an upload is refused (400, 413, 415)."""
import calendar
import email.utils
import os
import re
import socket
import struct
import time
import zlib

import pytest
import requests

from harness import HASH_RE, Httpd, assert_json_error, image, multipart, raw_http, read

UPLOAD_KEYS = {"hash", "url", "expires_at", "expires_in", "size", "type", "max_views",
               "metadata_stripped", "delete_token"}


def post_raw(h, body, content_type, path="/upload", **kw):
    headers = dict(kw.pop("headers", {}))
    if content_type is not None:
        headers["Content-Type"] = content_type
    return requests.post(h.url(path), data=body, headers=headers, timeout=30, **kw)


@pytest.fixture(scope="module")
def limited(pg):
    """A server whose mount takes at most 8 KiB images of types png and jpeg."""
    h = Httpd(pg, extra="ImgStoreMaxSize 8K\nImgStoreAllowTypes png jpeg\n").start()
    yield h
    bad = h.finish()
    assert not bad, "unexpected error-log lines:\n" + "\n".join(bad)


# -- the 201 answer --------------------------------------------------------------------

def test_110_upload_answers_201_with_the_documented_json_and_location(httpd):
    data = read("sample.png")
    r = httpd.upload(image("sample.png"))
    assert r.status_code == 201, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert set(body) == UPLOAD_KEYS, body
    assert HASH_RE.match(body["hash"]), body["hash"]
    assert body["url"] == httpd.url("/image/" + body["hash"])
    assert r.headers["Location"] == body["url"]
    assert body["expires_in"] == 300  # the documented default TTL
    assert body["size"] == len(data)
    assert body["type"] == "image/png"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["expires_at"]), body
    # expires_at is the answer's own time plus expires_in (the Date header has 1 s resolution).
    expires = calendar.timegm(time.strptime(body["expires_at"], "%Y-%m-%dT%H:%M:%SZ"))
    date = email.utils.parsedate_to_datetime(r.headers["Date"]).timestamp()
    assert abs(expires - date - body["expires_in"]) <= 2, (body, r.headers["Date"])


def test_111_upload_answer_is_not_cacheable_and_not_sniffable(httpd):
    r = httpd.upload(image("sample.gif"))
    assert r.status_code == 201, r.text
    assert r.headers.get("Cache-Control") == "no-store"
    assert r.headers.get("X-Content-Type-Options") == "nosniff"


def test_112_the_same_bytes_uploaded_twice_get_two_different_hashes(httpd):
    a = httpd.upload(image("sample.jpg")).json()["hash"]
    b = httpd.upload(image("sample.jpg")).json()["hash"]
    assert a != b
    for h in (a, b):
        g = httpd.get("/image/" + h)
        assert g.status_code == 200 and g.content == read("sample.jpg")


def test_113_type_is_decided_by_the_bytes_not_by_filename_or_client_content_type(httpd):
    r = httpd.upload(data=read("sample.png"), filename="photo.jpg", content_type="image/jpeg")
    assert r.status_code == 201, r.text
    assert r.json()["type"] == "image/png"
    assert httpd.get("/image/" + r.json()["hash"]).headers["Content-Type"] == "image/png"
    r = httpd.upload(data=read("page.html"), filename="photo.png", content_type="image/png")
    assert_json_error(r, 415)


def test_114_url_is_built_from_the_request_host(httpd):
    r = httpd.upload(image("sample.png"), headers={"Host": "images.example.test:8443"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["url"] == "http://images.example.test:8443/image/" + body["hash"]
    assert r.headers["Location"] == body["url"]


def test_115_other_form_fields_beside_the_file_part_are_ignored(httpd):
    body, ctype = multipart([("note", None, None, b"hello"),
                             ("file", "a.gif", "image/gif", read("sample.gif")),
                             ("other", "b.txt", "text/plain", b"not the image")])
    r = post_raw(httpd, body, ctype)
    assert r.status_code == 201, r.text
    g = httpd.get("/image/" + r.json()["hash"])
    assert g.content == read("sample.gif")


def test_116_chunked_upload_is_accepted(httpd):
    body, ctype = multipart([("file", "x.jpg", "image/jpeg", read("sample-100k.jpg"))])

    def chunks():
        for i in range(0, len(body), 7000):
            yield body[i:i + 7000]

    r = requests.post(httpd.url("/upload"), data=chunks(), headers={"Content-Type": ctype},
                      timeout=30)
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert r.status_code == 201, r.text
    assert httpd.get("/image/" + r.json()["hash"]).content == read("sample-100k.jpg")


def test_117_an_image_close_to_the_default_10m_limit_round_trips(httpd):
    # A valid 24-bit BMP of about 9.4 MiB: under ImgStoreMaxSize's default of 10M.
    w, h = 1800, 1830
    row = (w * 3 + 3) & ~3
    pixels = os.urandom(row * h)
    bmp = (b"BM" + struct.pack("<IHHI", 54 + len(pixels), 0, 0, 54)
           + struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
           + pixels)
    assert 9 * 1024 * 1024 < len(bmp) < 10 * 1024 * 1024
    r = httpd.upload(data=bmp, filename="big.bmp")
    assert r.status_code == 201, r.text
    assert r.json()["size"] == len(bmp) and r.json()["type"] == "image/bmp"
    g = httpd.get("/image/" + r.json()["hash"])
    assert g.status_code == 200 and g.content == bmp


def test_118_an_upload_with_expect_100_continue_is_accepted(httpd):
    # curl sends "Expect: 100-continue" for bodies over 1 KiB and waits for the interim answer.
    body, ctype = multipart([("file", "a.png", "image/png", read("sample.png"))])
    s = socket.create_connection(("127.0.0.1", httpd.port), timeout=15)
    try:
        s.sendall(("POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n"
                   "Content-Length: %d\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
                   % (ctype, len(body))).encode())
        interim = s.recv(1000)
        assert interim.startswith(b"HTTP/1.1 100 "), interim
        s.sendall(body)
        answer = b""
        while True:
            c = s.recv(65536)
            if not c:
                break
            answer += c
    finally:
        s.close()
    assert answer.startswith(b"HTTP/1.1 201 "), answer[:200]


@pytest.mark.parametrize("variant", ["quoted boundary with a space", "case and extra parameters",
                                     "preamble", "epilogue", "file part without filename"])
def test_119_legal_multipart_variants_are_accepted(httpd, variant):
    png = read("sample.png")
    if variant == "file part without filename":
        body, ctype = multipart([("file", None, None, png)])
    else:
        body, ctype = multipart([("file", "a.png", "image/png", png)], boundary="abc def'()+_,-./:=?")
        ctype = 'multipart/form-data; boundary="abc def\'()+_,-./:=?"'
    if variant == "case and extra parameters":
        ctype = 'Multipart/Form-Data; charset=utf-8; BOUNDARY="abc def\'()+_,-./:=?"'
    elif variant == "preamble":
        body = b"This is the preamble; it is to be ignored.\r\n" + body
    elif variant == "epilogue":
        body = body + b"This is the epilogue; it is to be ignored too.\r\n"
    r = post_raw(httpd, body, ctype)
    assert r.status_code == 201, r.text
    assert httpd.get("/image/" + r.json()["hash"]).content == png


def test_120_without_a_host_header_the_url_still_names_this_server(httpd):
    # An HTTP/1.0 client may send no Host: the url must still reach the image.
    body, ctype = multipart([("file", "a.png", "image/png", read("sample.png"))])
    resp = raw_http(httpd.port, "POST /upload HTTP/1.0\r\nContent-Type: %s\r\n"
                    "Content-Length: %d" % (ctype, len(body)), body)
    assert resp.status == 201, resp.raw[:300]
    url = resp.headers["location"]
    hash_ = url.rsplit("/", 1)[1]
    assert url == "http://127.0.0.1:%d/image/%s" % (httpd.port, hash_), url


# -- 400 -----------------------------------------------------------------------------------

@pytest.mark.parametrize("content_type,body", [
    (None, read("sample.png")),
    ("text/plain", read("sample.png")),  # image/png is a raw upload (test_150)
    ("application/json", b'{"file": "x"}'),
    ("application/x-www-form-urlencoded", b"file=abc"),
    ("multipart/mixed; boundary=abc", b"--abc\r\n\r\nx\r\n--abc--\r\n"),
    ("multipart/form-data", b"--abc\r\n\r\nx\r\n--abc--\r\n"),  # no boundary parameter
])
def test_122_a_body_that_is_neither_multipart_form_data_nor_an_image_is_400(httpd, content_type,
                                                                           body):
    assert_json_error(post_raw(httpd, body, content_type), 400)


def test_123_malformed_multipart_is_400(httpd):
    good, ctype = multipart([("file", "a.png", "image/png", read("sample.png"))])
    # The declared boundary never appears.
    assert_json_error(post_raw(httpd, b"just some bytes\r\n" * 20, ctype), 400)
    # Cut before the closing boundary.
    assert_json_error(post_raw(httpd, good[:len(good) // 2], ctype), 400)
    # A part without its blank line after the headers.
    b = ctype.split("boundary=")[1]
    broken = ("--%s\r\nContent-Disposition: form-data; name=\"file\"\r\n" % b).encode()
    assert_json_error(post_raw(httpd, broken, ctype), 400)
    # Empty body.
    assert_json_error(post_raw(httpd, b"", ctype), 400)


def test_124_no_file_part_is_400(httpd):
    body, ctype = multipart([("image", "a.png", "image/png", read("sample.png"))])
    assert_json_error(post_raw(httpd, body, ctype), 400)


def test_125_two_file_parts_is_400(httpd):
    body, ctype = multipart([("file", "a.png", "image/png", read("sample.png")),
                             ("file", "b.png", "image/png", read("sample.png"))])
    assert_json_error(post_raw(httpd, body, ctype), 400)


def test_126_an_unbounded_number_of_parts_is_400(httpd):
    parts = [("f%d" % i, None, None, b"x") for i in range(200)]
    body, ctype = multipart(parts + [("file", "a.png", "image/png", read("sample.png"))])
    assert_json_error(post_raw(httpd, body, ctype), 400)


def test_127_an_oversized_part_header_block_is_400(httpd):
    body, ctype = multipart([("file", "a" * 100000 + ".png", "image/png", read("sample.png"))])
    assert_json_error(post_raw(httpd, body, ctype), 400)


# -- 413 -----------------------------------------------------------------------------------

def test_130_content_length_over_the_limit_is_413_before_the_body_is_sent(httpd):
    # Default ImgStoreMaxSize is 10M; the module refuses anything over it + 64 KiB from the
    # header alone: no "100 Continue", the answer comes while the body is still unsent.
    limit = 10 * 1024 * 1024 + 64 * 1024
    resp = raw_http(httpd.port, "POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    "Content-Type: multipart/form-data; boundary=xyz\r\n"
                    "Expect: 100-continue\r\nContent-Length: %d" % (limit + 1),
                    read_first=True)
    assert resp.status == 413, resp.raw[:300]
    assert b"100 Continue" not in resp.raw
    assert resp.headers.get("content-type", "").startswith("application/json")
    assert b'"error"' in resp.body


def test_131_the_content_length_threshold_is_max_size_plus_64k_exactly(limited):
    # A valid body padded (epilogue after the closing boundary) to exactly 8K + 64K is
    # read and accepted; one byte more is refused from the header.
    body, ctype = multipart([("file", "x.png", "image/png", read("sample.png"))])
    limit = 8 * 1024 + 64 * 1024
    at_limit = body + b"e" * (limit - len(body))
    r = post_raw(limited, at_limit, ctype)
    assert r.status_code == 201, r.text
    assert_json_error(post_raw(limited, at_limit + b"e", ctype), 413)


def test_132_file_part_over_max_size_is_413_while_streaming(limited):
    data = read("sample.bmp")  # 9270 bytes: over 8K, well under 8K + 64K of Content-Length
    assert 8 * 1024 < len(data) < 64 * 1024
    r = limited.upload(data=data, filename="x.bmp")
    assert_json_error(r, 413)
    # The same server still takes an image under its limit.
    ok = limited.upload(image("sample.png"))
    assert ok.status_code == 201, ok.text


def test_133_chunked_upload_over_max_size_is_413(limited):
    body, ctype = multipart([("file", "x.jpg", "image/jpeg", read("sample-100k.jpg"))])
    head = ("POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n"
            "Transfer-Encoding: chunked" % ctype)
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 4096]), body[i:i + 4096])
                       for i in range(0, len(body), 4096)) + b"0\r\n\r\n"
    resp = raw_http(limited.port, head, chunked)
    assert resp.status == 413, resp.raw[:300]
    assert resp.headers.get("content-type", "").startswith("application/json")


def test_134_chunked_upload_under_max_size_is_accepted(limited):
    body, ctype = multipart([("file", "x.png", "image/png", read("sample.png"))])
    head = ("POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close" % ctype)
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 1000]), body[i:i + 1000])
                       for i in range(0, len(body), 1000)) + b"0\r\n\r\n"
    resp = raw_http(limited.port, head, chunked)
    assert resp.status == 201, resp.raw[:300]


def test_135_max_size_is_inclusive_to_the_byte(make_httpd):
    n = len(read("sample.png"))
    h = make_httpd(defines=["IMGSTORE_NO_ROOT_MOUNT"],
                   extra="<Location /exact>\n    SetHandler imgstore\n    ImgStoreMaxSize %d\n"
                         "</Location>\n<Location /under>\n    SetHandler imgstore\n"
                         "    ImgStoreMaxSize %d\n</Location>\n" % (n, n - 1))
    r = h.upload(image("sample.png"), prefix="/exact")
    assert r.status_code == 201, r.text
    assert_json_error(h.upload(image("sample.png"), prefix="/under"), 413)


def test_136_a_body_sent_in_tiny_chunks_is_parsed_the_same(httpd):
    # The parser sees the body in pieces of 1 to 7 bytes: every boundary is split
    # at every possible offset somewhere.
    data = read("sample.gif")
    body, ctype = multipart([("note", None, None, b"x" * 50), ("file", "a.gif", "image/gif", data)])
    pieces, i, n = [], 0, 1
    while i < len(body):
        pieces.append(body[i:i + n])
        i += n
        n = n % 7 + 1
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    resp = raw_http(httpd.port, "POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    "Content-Type: %s\r\nTransfer-Encoding: chunked\r\nConnection: close"
                    % ctype, chunked)
    assert resp.status == 201, resp.raw[:300]
    hash_ = resp.headers["location"].rsplit("/", 1)[1]
    assert httpd.get("/image/" + hash_).content == data


def test_137_image_bytes_that_look_like_the_start_of_a_boundary_survive(httpd):
    # A valid PNG with a text chunk holding near-delimiters of the very boundary used.
    boundary = "imgstore-near-delimiter-7f3a"
    png = read("sample.png")
    text = (b"Comment\x00" + b"\r\n--" + boundary[:-1].encode() + b"Z" + b"\r\n-"
            + b"\r\n--" + boundary[:5].encode() + b"\r\r\n\n--" + b"--\r\n")
    chunk = struct.pack(">I", len(text)) + b"tEXt" + text + \
        struct.pack(">I", zlib.crc32(b"tEXt" + text) & 0xFFFFFFFF)
    crafted = png[:-12] + chunk + png[-12:]  # before IEND
    body, ctype = multipart([("file", "a.png", "image/png", crafted)], boundary=boundary)
    r = post_raw(httpd, body, ctype)
    assert r.status_code == 201, r.text
    assert r.json()["size"] == len(crafted)
    assert httpd.get("/image/" + r.json()["hash"]).content == crafted


# -- 415 -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name,data", [
    ("text", read("not-image.txt")),
    ("html", read("page.html")),
    ("svg", read("sample.svg")),
    ("gif-html-polyglot", read("polyglot.gif.html")),
    ("truncated-png", read("sample.png")[:len(read("sample.png")) // 2]),
    ("truncated-jpeg", read("sample.jpg")[:-40]),
    ("truncated-gif", read("sample.gif")[:-1]),
    ("magic-only-png", read("sample.png")[:8]),
])
def test_140_what_is_not_a_complete_allowed_image_is_415(httpd, name, data):
    r = httpd.upload(data=data, filename="x.png", content_type="image/png")
    assert_json_error(r, 415)


def test_141_a_type_left_out_of_allow_types_is_415(limited):
    assert_json_error(limited.upload(image("sample.gif")), 415)
    assert_json_error(limited.upload(image("sample.webp")), 415)
    assert limited.upload(image("sample.jpg")).status_code == 201
