"""75x: path tricks on /image/<hash>, sent byte for byte over raw sockets. Anything that
is not the canonical hash (after httpd's own normalisation of the path) is a 4xx and never
the image; the server stays healthy. The module's own refusals are 404 JSON; what httpd
refuses before the module runs (%00, %2F, paths above the root, request lines over
LimitRequestLine) is httpd's HTML page, where only the 4xx status is asserted."""
import re

import pytest

import harness as H
from harness import read, wait_until

PNG = read("sample.png")


@pytest.fixture(scope="module")
def srv(pg):
    yield from H.own_server(pg, "t750", with_hash=True)


def get_raw(port, target, method="GET"):
    return H.send(port, H.head_bytes("%s %s HTTP/1.1" % (method, target),
                                     [("Host", "127.0.0.1"), ("Connection", "close")]))


def swap_first_letter_case(x):
    i = next(i for i, c in enumerate(x) if c.isalpha())
    return x[:i] + x[i].swapcase() + x[i + 1:]


# (id, function of the stored hash -> request target, who answers)
#   "module": the module's 404 JSON; "httpd": any 4xx page from httpd.
MODULE_404 = [
    ("42-chars", lambda x: "/image/" + x[:42]),
    ("44-chars", lambda x: "/image/" + x + "A"),
    ("plus-sign", lambda x: "/image/" + x[:-1] + "+"),
    ("encoded-plus", lambda x: "/image/" + x[:-1] + "%2B"),
    ("equals-padding", lambda x: "/image/" + x + "="),
    ("equals-inside", lambda x: "/image/" + x[:-2] + "=="),
    ("first-letter-case-swapped", lambda x: "/image/" + swap_first_letter_case(x)),
    ("whole-hash-case-swapped", lambda x: "/image/" + x.swapcase()),
    ("trailing-slash", lambda x: "/image/" + x + "/"),
    ("trailing-encoded-space", lambda x: "/image/" + x + "%20"),
    ("trailing-encoded-newline", lambda x: "/image/" + x + "%0A"),
    ("trailing-semicolon-param", lambda x: "/image/" + x + ";type=png"),
    ("sub-path", lambda x: "/image/" + x + "/x.png"),
    ("dot-dot-to-mount-root", lambda x: "/image/../" + x),
    ("encoded-dot-dot-to-mount-root", lambda x: "/image/%2e%2e/" + x),
    ("high-bytes", lambda x: "/image/" + x[:40] + "%C3%A9%FF"),
    ("empty-hash", lambda x: "/image/"),
    ("no-slash", lambda x: "/image"),
]

# (id, function of the stored hash -> request target, the error-log line httpd's core
# writes for it: its own, not the module's)
HTTPD_4XX = [
    ("encoded-nul", lambda x: "/image/" + x + "%00", None),
    ("encoded-nul-alone", lambda x: "/image/%00", None),
    ("encoded-slash", lambda x: "/image/" + x[:-1] + "%2F", None),
    ("dot-dot-encoded-slash", lambda x: "/image/..%2F" + x, None),
    ("dot-dot-encoded-slash-upload", lambda x: "/image/..%2Fupload", None),
    ("above-the-root", lambda x: "/image/../../" + x, r"AH10244"),  # a path above the root
    ("fragment", lambda x: "/image/" + x + "#frag", None),
    ("raw-space", lambda x: "/image/" + x + " x", None),
]


@pytest.mark.parametrize("target", [c[1] for c in MODULE_404], ids=[c[0] for c in MODULE_404])
def test_750_a_non_canonical_hash_is_404_json_from_the_module_and_never_the_image(srv, target):
    answer = get_raw(srv.port, target(srv.hash))
    assert answer.status == 404, answer
    assert answer.json_error(), answer
    assert PNG not in answer.raw
    H.assert_healthy(srv)


@pytest.mark.parametrize("target,logged", [c[1:] for c in HTTPD_4XX],
                         ids=[c[0] for c in HTTPD_4XX])
def test_751_what_httpd_refuses_before_the_module_is_a_4xx_and_never_the_image(srv, target,
                                                                                  logged):
    if logged:
        srv.allow(logged)
    answer = get_raw(srv.port, target(srv.hash))
    assert 400 <= answer.status < 500, answer
    assert PNG not in answer.raw
    H.assert_healthy(srv)


def test_752_a_request_line_of_10000_chars_is_414(srv):
    answer = get_raw(srv.port, "/image/" + "A" * 10000)
    assert answer.status == 414, answer
    H.assert_healthy(srv)


@pytest.mark.parametrize("target", [
    lambda x: "/image/" + x + "A" * 7000,
    lambda x: "/image/" + x + "/" + "A" * 7000,
    lambda x: "/" + "A" * 300,
    lambda x: "/image/" + "A" * 300 + "/" + "B" * 300,
], ids=["7000-char-hash", "7000-char-sub-path", "300-char-segment-at-the-mount",
        "300-char-segment-after-image"])
def test_753_a_long_path_under_the_mount_is_404_json_with_no_error_log_line(srv, target):
    # Under LimitRequestLine, so the request reaches the mount: the module owns the answer.
    # httpd must not try to map these onto the file system (ENAMETOOLONG gives a 403 page
    # and an [error] line per request, a log flood anyone can trigger).
    start = len(srv.errors().splitlines())
    answer = get_raw(srv.port, target(srv.hash))
    assert 400 <= answer.status < 500, answer
    new = [l for l in srv.errors().splitlines()[start:] if re.search(r":(error|warn)\]", l)]
    assert answer.status == 404 and answer.json_error(), (
        "%d %s, error log: %s" % (answer.status, answer.header("content-type"),
                                  [l[:160] for l in new]))
    assert not new, [l[:200] for l in new]
    H.assert_healthy(srv)


@pytest.mark.parametrize("target", [
    lambda x: "/image/" + x + "?download=1",
    lambda x: "/image/" + x + "?" + x,
    lambda x: "/image/" + x + "?",
    lambda x: "/image/./" + x,
    lambda x: "/image/x/../" + x,
], ids=["query", "query-holding-the-hash", "empty-query", "dot-segment", "dot-dot-segment"])
def test_754_the_canonical_hash_still_serves_with_a_query_or_dot_segments_httpd_removes(
        srv, target):
    answer = get_raw(srv.port, target(srv.hash))
    assert answer.status == 200, answer
    assert answer.body == PNG
    assert answer.header("content-type") == "image/png"


@pytest.mark.parametrize("spelling", ["/imag%65/", "/%69mage/", "/%69%6D%61%67%65/"])
def test_755_an_image_served_through_a_percent_encoded_route_leaves_no_whole_hash_in_the_log(
        srv, spelling):
    # httpd decodes the path before the module routes it, so an encoded spelling of
    # "/image/" serves the image; the token must still be cut from the logged request line.
    x = H.round_trip(srv)
    answer = get_raw(srv.port, spelling + x)
    assert answer.status == 200 and answer.body == PNG, answer
    # The encoded route word is itself longer than 6 characters, so it is cut too.
    mark = x[:6] + "..."
    assert wait_until(lambda: mark in srv.access(), 10), "no access-log line"
    line = [l for l in srv.access().splitlines() if mark in l][-1]
    assert x[:7] not in line, "the whole hash is in the access log: %s" % line
    assert x not in srv.errors()


def test_756_many_hostile_paths_in_a_row_on_one_keep_alive_connection_leave_it_usable(srv):
    targets = [t(srv.hash) for _, t in MODULE_404]
    with H.connect(srv.port, timeout=20) as s:
        buf = [b""]
        for t in targets:
            s.sendall(H.head_bytes("GET %s HTTP/1.1" % t, [("Host", "x")]))
            a = H.read_answer(s, timeout=15, buf=buf)
            assert a.status == 404 and a.json_error(), (t, a)
        s.sendall(H.head_bytes("GET /image/%s HTTP/1.1" % srv.hash, [("Host", "x")]))
        a = H.read_answer(s, timeout=15, buf=buf)
        assert a.status == 200 and a.body == PNG, a
