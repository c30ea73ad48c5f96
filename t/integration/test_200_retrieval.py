"""2xx: GET/HEAD /image/<hash>, the other routes, OPTIONS, 405 and 404 under the mount."""
import base64
import os

import pytest
import requests

import harness as H
from harness import assert_json_error, image, raw_http, read

IMAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Referrer-Policy": "no-referrer",
}


def random_hash():
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


@pytest.fixture(scope="module")
def stored(httpd):
    """name -> hash of one uploaded image per sample file."""
    out = {}
    for name in ("sample.png", "sample-100k.jpg", "sample.bmp"):
        r = httpd.upload(image(name))
        assert r.status_code == 201, r.text
        out[name] = r.json()["hash"]
    return out


@pytest.mark.parametrize("name,mime", [("sample.png", "image/png"),
                                       ("sample-100k.jpg", "image/jpeg"),
                                       ("sample.bmp", "image/bmp")])
def test_201_get_serves_the_exact_bytes_with_the_image_headers(httpd, stored, name, mime):
    r = httpd.get("/image/" + stored[name])
    assert r.status_code == 200
    assert r.content == read(name)
    assert r.headers["Content-Type"] == mime
    assert r.headers["Content-Length"] == str(len(read(name)))
    for k, v in IMAGE_HEADERS.items():
        assert r.headers.get(k) == v, (k, r.headers)


def test_202_head_gives_the_same_headers_and_no_body(httpd, stored):
    h = stored["sample-100k.jpg"]
    get = httpd.get("/image/" + h)
    resp = raw_http(httpd.port, "HEAD /image/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    "Connection: close" % h)
    assert resp.status == 200, resp.raw[:300]
    assert resp.body == b"", "HEAD sent %d body bytes" % len(resp.body)
    assert resp.headers["content-length"] == str(len(read("sample-100k.jpg")))
    assert resp.headers["content-type"] == get.headers["Content-Type"] == "image/jpeg"
    for k, v in IMAGE_HEADERS.items():
        assert resp.headers.get(k.lower()) == v, (k, resp.headers)


def test_203_an_image_can_be_fetched_again_and_again_before_it_expires(httpd, stored):
    for _ in range(3):
        r = httpd.get("/image/" + stored["sample.png"])
        assert r.status_code == 200 and r.content == read("sample.png")


# The module reads a ciphertext (image + 16-byte tag) from PostgreSQL in slices of
# 261120 bytes (mod_imgstore/imgstore_store.h): sizes on each side of one and two slices.
SLICE = 256 * 1024 - 1024


@pytest.mark.parametrize("size", [SLICE - 17, SLICE - 16, SLICE - 15, 2 * SLICE - 16,
                                  2 * SLICE - 15, 5 * 1024 * 1024 + 7])
def test_204a_images_of_one_and_several_database_slices_come_back_byte_for_byte(httpd, size):
    png = H.png_of_size(size)
    r = httpd.upload(data=png, filename="x.png")
    assert r.status_code == 201, r.text
    g = httpd.get("/image/" + r.json()["hash"])
    assert g.status_code == 200 and g.headers["Content-Length"] == str(size)
    assert g.content == png
    h = requests.head(httpd.url("/image/" + r.json()["hash"]), timeout=30)
    assert h.status_code == 200 and h.headers["Content-Length"] == str(size) and not h.content


def test_204_an_unknown_well_formed_hash_is_404_json(httpd):
    assert_json_error(httpd.get("/image/" + random_hash()), 404)


def test_205_head_of_an_unknown_hash_is_404_without_a_body(httpd):
    resp = raw_http(httpd.port, "HEAD /image/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    "Connection: close" % random_hash())
    assert resp.status == 404
    assert resp.body == b""


@pytest.mark.parametrize("bad", [
    "",
    "abc",
    "A" * 42,
    "A" * 44,
    "A" * 42 + "+",   # standard base64 alphabet, not base64url
    "A" * 41 + "A=",  # padding
    "A" * 42 + ".",
    "A" * 42 + "%21",
    "%41" * 43,       # percent-encoded letters: not the canonical spelling
    "A" * 200,
])
def test_206_a_malformed_hash_is_404_json(httpd, bad):
    assert_json_error(httpd.get("/image/" + bad), 404)


def test_207_a_non_canonical_spelling_of_a_real_hash_is_404(httpd, stored):
    h = stored["sample.png"]
    # 43 characters carry 258 bits: the last character's low 2 bits are spare. A lenient
    # decoder maps these spellings to the same token; the module must not.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(h[-1])
    assert last & 3 == 0
    for spare in (1, 2, 3):
        variant = h[:-1] + alphabet[last | spare]
        assert_json_error(httpd.get("/image/" + variant), 404)
    assert httpd.get("/image/" + h).status_code == 200


@pytest.mark.parametrize("suffix", ["/", "x", "/extra", "%00"])
def test_208_a_real_hash_with_trailing_junk_is_404(httpd, stored, suffix):
    h = stored["sample.png"]
    r = httpd.get("/image/" + h + suffix)
    assert r.status_code == 404, r.status_code
    assert r.content != read("sample.png")


@pytest.mark.parametrize("path,allow", [
    ("/upload", "POST, PUT, OPTIONS"),
    ("/image/" + "A" * 43, "GET, HEAD, DELETE, OPTIONS"),
    ("/cleanup", "GET, HEAD, OPTIONS"),
    ("/health", "GET, HEAD, OPTIONS"),
])
def test_210_options_answers_204_with_allow(httpd, path, allow):
    r = requests.options(httpd.url(path), timeout=30)
    assert r.status_code == 204, r.text
    assert r.headers.get("Allow") == allow
    assert r.content == b""


@pytest.mark.parametrize("method,path,allow", [
    ("GET", "/upload", "POST, PUT, OPTIONS"),
    ("PATCH", "/upload", "POST, PUT, OPTIONS"),
    ("DELETE", "/upload", "POST, PUT, OPTIONS"),
    ("POST", "/image/" + "A" * 43, "GET, HEAD, DELETE, OPTIONS"),
    ("PUT", "/image/" + "A" * 43, "GET, HEAD, DELETE, OPTIONS"),
    ("POST", "/cleanup", "GET, HEAD, OPTIONS"),
    ("PUT", "/health", "GET, HEAD, OPTIONS"),
])
def test_211_a_wrong_method_on_a_route_is_405_json_with_allow(httpd, method, path, allow):
    r = requests.request(method, httpd.url(path), data=b"x", timeout=30)
    assert_json_error(r, 405)
    assert r.headers.get("Allow") == allow


def test_212_delete_of_a_real_image_without_its_token_neither_deletes_nor_serves_it(httpd,
                                                                                    stored):
    h = stored["sample.bmp"]
    r = requests.delete(httpd.url("/image/" + h), timeout=30)
    assert_json_error(r, 403)
    assert httpd.get("/image/" + h).content == read("sample.bmp")


@pytest.mark.parametrize("path", ["/nope", "/index.html", "/images/abc", "/upload/more", "/health/x",
                                  "/cleanup2", "/IMAGE/" + "A" * 43, "/Upload"])
def test_213_an_unknown_path_under_the_mount_is_404_json(httpd, path):
    assert_json_error(httpd.get(path), 404)


def test_220_health_answers_200_json_when_the_database_answers(httpd):
    r = httpd.get("/health")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers.get("Cache-Control") == "no-store"
    assert r.headers.get("X-Content-Type-Options") == "nosniff"
    body = r.json()
    assert body.get("status") == "ok", body


def test_221_cleanup_answers_200_json_with_the_count_deleted(httpd):
    r = httpd.get("/cleanup")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers.get("Cache-Control") == "no-store"
    assert r.headers.get("X-Content-Type-Options") == "nosniff"
    body = r.json()
    # A forced pass, or (within 2 s of the last one) the answer from shared memory.
    assert set(body) in ({"deleted", "forced"}, {"deleted", "forced", "last_forced_deleted"}), body
    assert isinstance(body["deleted"], int) and not isinstance(body["deleted"], bool)
    assert body["deleted"] >= 0


def test_222_head_of_health_has_no_body(httpd):
    resp = raw_http(httpd.port, "HEAD /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close")
    assert resp.status == 200
    assert resp.body == b""
