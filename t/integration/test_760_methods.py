"""76x: every route with every method, over raw sockets so the exact Allow header is seen.
A method a route does not take is 405 JSON with the route's Allow; OPTIONS is 204 with
Allow. TRACE is httpd's own business: with the default TraceEnable on, httpd's core echoes
the request (200 message/http) before any handler runs, so the module never sees it; only
"not a 5xx, never an image" is asserted for it. Set "TraceEnable off" to refuse it (405)."""
import json

import pytest

import harness as H
from harness import read

PNG = read("sample.png")
UPLOAD_ALLOW = "POST, PUT, OPTIONS"
IMAGE_ALLOW = "GET, HEAD, DELETE, OPTIONS"
GET_ALLOW = "GET, HEAD, OPTIONS"
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND", "MKCOL",
           "FOO", "get"]


@pytest.fixture(scope="module")
def srv(pg):
    yield from H.own_server(pg, "t760", with_hash=True)


def routes(srv):
    return {"upload": ("/upload", UPLOAD_ALLOW, {"POST", "PUT"}),
            "stored-image": ("/image/" + srv.hash, IMAGE_ALLOW, {"GET", "HEAD", "DELETE"}),
            "unknown-image": ("/image/" + "A" * 43, IMAGE_ALLOW, {"GET", "HEAD", "DELETE"}),
            "cleanup": ("/cleanup", GET_ALLOW, {"GET", "HEAD"}),
            "health": ("/health", GET_ALLOW, {"GET", "HEAD"})}


def ask(srv, method, path, body=b"", extra=()):
    headers = [("Host", "127.0.0.1"), ("Connection", "close")] + list(extra)
    if body or method in ("POST", "PUT", "PATCH"):
        headers.append(("Content-Length", str(len(body))))
    return H.send(srv.port, H.head_bytes("%s %s HTTP/1.1" % (method, path), headers), [body],
                  head_only=(method == "HEAD"))


ALLOWED = {"upload": {"POST", "PUT"}, "stored-image": {"GET", "HEAD", "DELETE"},
           "unknown-image": {"GET", "HEAD", "DELETE"},
           "cleanup": {"GET", "HEAD"}, "health": {"GET", "HEAD"}}
WRONG = [(r, m) for r in ALLOWED for m in METHODS if m != "OPTIONS" and m not in ALLOWED[r]]


@pytest.mark.parametrize("route,method", WRONG, ids=["%s-%s" % rm for rm in WRONG])
def test_760_a_method_the_route_does_not_take_is_405_json_with_the_routes_allow(
        srv, route, method):
    path, allow, allowed = routes(srv)[route]
    assert method not in allowed
    a = ask(srv, method, path)
    assert a.status == 405, a
    assert a.header("allow") == allow, a.headers
    assert a.header("content-type", "").startswith("application/json"), a.headers
    assert a.header("cache-control") == "no-store", a.headers
    if method == "HEAD":
        assert a.body == b""
    else:
        assert a.json_error(), a
    assert PNG not in a.raw


@pytest.mark.parametrize("route", ["upload", "stored-image", "unknown-image", "cleanup", "health"])
def test_761_options_is_204_with_the_routes_allow_and_no_body(srv, route):
    path, allow, _ = routes(srv)[route]
    with H.connect(srv.port) as s:
        s.sendall(H.head_bytes("OPTIONS %s HTTP/1.1" % path, [("Host", "x")]))
        a = H.read_answer(s)
        assert a.status == 204, a
        assert a.header("allow") == allow, a.headers
        assert a.header("content-length") in (None, "0"), a.headers
        # Nothing after the empty answer: the next request on the connection is answered.
        s.sendall(H.head_bytes("GET /health HTTP/1.1", [("Host", "x"), ("Connection", "close")]))
        nxt = H.read_answer(s)
        assert nxt.status == 200 and json.loads(nxt.body)["status"] == "ok", nxt


@pytest.mark.parametrize("route", ["upload", "stored-image", "cleanup", "health"])
def test_762_trace_is_answered_by_httpd_not_a_5xx_and_never_serves_the_image(srv, route):
    path, _, _ = routes(srv)[route]
    a = ask(srv, "TRACE", path)
    assert 200 <= a.status < 500, a
    assert PNG not in a.raw
    if a.status == 200:
        # TraceEnable on (httpd's default): the echo of the request, not a module answer.
        assert a.header("content-type", "").startswith("message/http"), a.headers


def test_763_with_trace_enable_off_trace_is_refused_by_httpd(make_httpd):
    h = make_httpd(extra="TraceEnable off\n")
    a = H.send(h.port, H.head_bytes("TRACE /health HTTP/1.1", [("Host", "x"),
                                                                ("Connection", "close")]))
    assert a.status == 405, a


@pytest.mark.parametrize("method", ["PATCH", "DELETE", "PROPFIND"])
def test_764_a_real_upload_body_sent_with_another_method_than_post_stores_nothing(srv, method):
    body, ctype = H.one_file(PNG)
    before = H.rows(srv.pg, srv.db)
    a = ask(srv, method, "/upload", body, extra=[("Content-Type", ctype)])
    assert a.status == 405 and a.header("allow") == UPLOAD_ALLOW, a
    assert H.rows(srv.pg, srv.db) == before
    H.assert_healthy(srv)


def test_765_options_asterisk_is_not_a_server_error(srv):
    a = H.send(srv.port, H.head_bytes("OPTIONS * HTTP/1.1", [("Host", "x"),
                                                              ("Connection", "close")]))
    assert 200 <= a.status < 500, a
    H.assert_healthy(srv)


def test_766_after_every_method_on_every_route_the_stored_image_is_intact(srv):
    # DELETE, PUT, PATCH... on the image itself must neither remove nor alter it.
    for method in ("PUT", "PATCH", "POST"):
        assert ask(srv, method, "/image/" + srv.hash, b"x" * 10).status == 405
    # DELETE without the delete token: 403, nothing removed.
    assert ask(srv, "DELETE", "/image/" + srv.hash, b"x" * 10).status == 403
    g = srv.get("/image/" + srv.hash)
    assert g.status_code == 200 and g.content == PNG
