"""15x: the user controls of issue 10 against the real httpd + PostgreSQL: the ttl,
max_views and strip_metadata fields (form fields and query parameters), the delete token
and DELETE /image/<hash>, raw (POST image/*) and PUT uploads, the pixel guard, and a body
that ends before its Content-Length."""
import base64
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest
import requests
from PIL import Image, ImageSequence

import harness as H
from harness import DATA, assert_json_error, read, sql_id

PNG = read("sample.png")
DELETE_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")


@pytest.fixture(scope="module")
def srv(pg):
    yield from H.own_server(pg, "t150")


def up(h, data=PNG, fields=(), path="/upload", name="x.png", **kw):
    """A multipart upload with extra form fields (name, value) before the file part."""
    parts = [(k, None, None, v.encode() if isinstance(v, str) else v) for k, v in fields]
    body, ctype = H.multipart(parts + [("file", name, "application/octet-stream", data)])
    return requests.post(h.url(path), data=body, headers={"Content-Type": ctype}, timeout=30,
                         **kw)


def created(r):
    assert r.status_code == 201, r.text
    return r.json()


def row(h, hash_, cols="views_left, expires_at - created_at, delete_hash"):
    return h.pgq("SELECT %s FROM imgstore_images WHERE id = %s" % (cols, sql_id(hash_)))


@pytest.fixture(autouse=True)
def _pgq(request):
    """srv.pgq(sql): rows of a query on the module's own database."""
    if "srv" in request.fixturenames:
        h = request.getfixturevalue("srv")
        pg = request.getfixturevalue("pg")
        h.pgq = lambda sql: pg.query(sql, db=h.db)
    yield


# -- the 201 answer --------------------------------------------------------------------

def test_150_the_201_carries_max_views_metadata_stripped_and_a_delete_token(srv):
    body = created(up(srv))
    assert body["max_views"] is None and body["metadata_stripped"] is False, body
    assert DELETE_RE.match(body["delete_token"]), body
    assert body["delete_token"] != body["hash"]
    assert base64.urlsafe_b64decode(body["delete_token"] + "=") and body["size"] == len(PNG)
    # Only the delete token's SHA-256 is stored, never the token.
    (views, _, stored), = row(srv, body["hash"])
    token = base64.urlsafe_b64decode(body["delete_token"] + "=")
    assert len(token) == 32
    assert stored == "\\x" + hashlib.sha256(b"imgstore v1 delete" + token).hexdigest()
    assert views is None
    dump = srv.pgq("SELECT encode(delete_hash, 'hex') || encode(ciphertext, 'hex')"
                   " FROM imgstore_images")
    assert not any(token.hex() in d[0] for d in dump)
    # Two uploads, two different delete tokens.
    assert created(up(srv))["delete_token"] != body["delete_token"]


# -- ttl -------------------------------------------------------------------------------

@pytest.mark.parametrize("value,seconds", [("90s", 90), ("300", 300), ("10m", 600),
                                           ("2h", 7200), ("1d", 86400), ("24h", 86400),
                                           ("1", 1)])
def test_151_ttl_field_sets_the_expiry(srv, value, seconds):
    body = created(up(srv, fields=[("ttl", value)]))
    assert body["expires_in"] == seconds, body
    (_, lifetime, _), = row(srv, body["hash"])
    assert seconds <= int(lifetime) <= seconds + 1


@pytest.mark.parametrize("value", ["0", "0s", "86401", "25h", "2d", "-1", "1.5h", "abc", "",
                                   " 1h", "1h ", "1w", "99999999999999999999", "1 h", "h"])
def test_152_a_bad_or_out_of_range_ttl_is_400_naming_the_range(srv, value):
    r = up(srv, fields=[("ttl", value)])
    assert_json_error(r, 400)
    assert "1s" in r.json()["error"] and "86400s" in r.json()["error"], r.json()


def test_153_ttl_above_a_mounts_max_ttl_is_400_and_the_default_still_applies(make_httpd):
    h = make_httpd(extra="ImgStoreMaxTTL 2h\nImgStoreTTL 3h\n")
    r = up(h, fields=[("ttl", "3h")])
    assert_json_error(r, 400)
    assert "7200s" in r.json()["error"]
    assert created(up(h, fields=[("ttl", "2h")]))["expires_in"] == 7200
    # ImgStoreMaxTTL bounds what an upload asks for, not the mount's own ImgStoreTTL.
    assert created(up(h))["expires_in"] == 3 * 3600


def test_154_the_expiry_stays_bound_into_the_associated_data(srv):
    body = created(up(srv, fields=[("ttl", "1h")]))
    srv.pgq("UPDATE imgstore_images SET expires_at = expires_at + 86400 WHERE id = %s"
            " RETURNING 1" % sql_id(body["hash"]))
    srv.allow(r"IMG00041")
    assert srv.get("/image/" + body["hash"]).status_code == 500


def test_155_a_1s_ttl_expires(srv):
    body = created(up(srv, fields=[("ttl", "1s")]))
    time.sleep(2.2)
    assert srv.get("/image/" + body["hash"]).status_code == 404


# -- max_views -------------------------------------------------------------------------

def test_156_max_views_1_is_burn_after_reading(srv):
    body = created(up(srv, fields=[("max_views", "1")]))
    assert body["max_views"] == 1
    g = srv.get("/image/" + body["hash"])
    assert g.status_code == 200 and g.content == PNG
    assert row(srv, body["hash"]) == []  # the last view deleted the row
    assert srv.get("/image/" + body["hash"]).status_code == 404


def test_157_head_spends_no_view(srv):
    body = created(up(srv, fields=[("max_views", "2")]))
    for _ in range(3):
        hd = requests.head(srv.url("/image/" + body["hash"]), timeout=10)
        assert hd.status_code == 200 and hd.headers["Content-Length"] == str(len(PNG))
    assert row(srv, body["hash"])[0][0] == "2"
    assert srv.get("/image/" + body["hash"]).status_code == 200
    assert row(srv, body["hash"])[0][0] == "1"
    assert srv.get("/image/" + body["hash"]).status_code == 200
    assert srv.get("/image/" + body["hash"]).status_code == 404
    assert requests.head(srv.url("/image/" + body["hash"]), timeout=10).status_code == 404


def test_158_view_limit_is_exact_under_50_concurrent_gets(srv):
    data = read("sample-100k.jpg")
    body = created(up(srv, data=data, fields=[("max_views", "5")]))
    url = srv.url("/image/" + body["hash"])
    results, barrier = [], threading.Barrier(50)

    def fetch():
        barrier.wait()
        with requests.Session() as s:
            g = s.get(url, timeout=60)
            results.append((g.status_code, g.content))

    threads = [threading.Thread(target=fetch) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(s for s, _ in results)
    assert statuses.count(200) == 5, statuses
    assert statuses.count(404) == 45, statuses
    assert all(c == data for s, c in results if s == 200)
    assert row(srv, body["hash"]) == []


@pytest.mark.parametrize("value", ["0", "1000001", "-1", "x", "", "1.5", " 1", "1e3",
                                   "99999999999999999999"])
def test_159_a_bad_max_views_is_400(srv, value):
    r = up(srv, fields=[("max_views", value)])
    assert_json_error(r, 400)
    assert "1000000" in r.json()["error"]


def test_159b_max_views_at_the_top_of_its_range_and_duplicates(srv):
    assert created(up(srv, fields=[("max_views", "1000000")]))["max_views"] == 1000000
    assert_json_error(up(srv, fields=[("max_views", "1"), ("max_views", "2")]), 400)
    assert_json_error(up(srv, fields=[("ttl", "1h" + " " * 80)]), 400)


# -- delete ----------------------------------------------------------------------------

def delete(h, hash_, token=None):
    headers = {} if token is None else {"X-Delete-Token": token}
    return requests.delete(h.url("/image/" + hash_), headers=headers, timeout=10)


def test_160_delete_with_the_right_token_is_204_and_the_image_is_gone(srv):
    body = created(up(srv))
    r = delete(srv, body["hash"], body["delete_token"])
    assert r.status_code == 204 and r.content == b"", r.text
    assert row(srv, body["hash"]) == []
    assert srv.get("/image/" + body["hash"]).status_code == 404
    assert delete(srv, body["hash"], body["delete_token"]).status_code == 404


@pytest.mark.parametrize("token", [None, "", "A" * 43, "short", "A" * 44, "!" * 43])
def test_161_a_missing_or_wrong_token_is_403_and_the_image_stays(srv, token):
    body = created(up(srv))
    r = delete(srv, body["hash"], token)
    assert_json_error(r, 403)
    assert srv.get("/image/" + body["hash"]).content == PNG


def test_162_another_images_token_does_not_delete(srv):
    a, b = created(up(srv)), created(up(srv))
    assert_json_error(delete(srv, a["hash"], b["delete_token"]), 403)
    assert srv.get("/image/" + a["hash"]).status_code == 200


@pytest.mark.parametrize("hash_", ["A" * 43, "A" * 42, "nope", "A" * 42 + "B"])
def test_163_unknown_or_malformed_hash_is_404(srv, hash_):
    body = created(up(srv))
    assert_json_error(delete(srv, hash_, body["delete_token"]), 404)
    assert_json_error(delete(srv, hash_), 404)


def test_164_delete_of_an_expired_image_is_404(srv):
    body = created(up(srv, fields=[("ttl", "1")]))
    time.sleep(2.2)
    assert_json_error(delete(srv, body["hash"], body["delete_token"]), 404)


def test_165_options_and_allow_on_the_image_route(srv):
    body = created(up(srv))
    r = requests.options(srv.url("/image/" + body["hash"]), timeout=10)
    assert r.status_code == 204 and r.headers["Allow"] == "GET, HEAD, DELETE, OPTIONS"
    r = requests.post(srv.url("/image/" + body["hash"]), timeout=10)
    assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD, DELETE, OPTIONS"
    r = requests.options(srv.url("/upload"), timeout=10)
    assert r.headers["Allow"] == "POST, PUT, OPTIONS"


def test_166_no_delete_token_in_any_log_even_at_trace(make_httpd):
    h = make_httpd(extra="LogLevel trace8\n")
    body = created(up(h, fields=[("max_views", "3")]))
    tok = body["delete_token"]
    assert delete(h, body["hash"], "A" * 43).status_code == 403
    assert delete(h, body["hash"], tok[:-1] + ("A" if tok[-1] != "A" else "Q")).status_code \
        == 403
    assert delete(h, body["hash"], tok).status_code == 204
    logs = h.errors() + h.access()
    assert "DELETE" in h.access()
    assert "X-Delete-Token: " not in logs  # core's trace4 dump of the request headers
    for secret in (tok, tok[:-1], tok[1:]):
        assert secret not in logs
    # (At trace4/trace5 httpd's core itself logs the request line and the Location header,
    # and with them the image's hash, before any module runs: the README says so.)


# -- metadata stripping ----------------------------------------------------------------

STRIPPED = ["meta/camera.jpg", "meta/no-orientation.jpg", "meta/adobe-cmyk.jpg",
            "meta/text.png", "meta/anim.png", "meta/exif.webp", "meta/lossless.webp",
            "meta/anim.webp", "meta/anim.gif", "sample.bmp", "sample.gif"]
PRIVATE_GROUPS = ("GPS", "XMP", "IPTC", "Photoshop", "ExifIFD", "MakerNotes", "InteropIFD")
PRIVATE_TAGS = {"SerialNumber", "Make", "Model", "Comment", "Author", "Description",
                "Description-en", "ModifyDate", "CreateDate", "DateTimeOriginal", "Software",
                "City", "By-line", "Creator", "Label"}


def exiftool(data):
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        out = subprocess.run(["exiftool", "-j", "-a", "-G1", "-n", "-b", f.name], check=True,
                             capture_output=True).stdout
    tags = json.loads(out)[0]
    return {k: v for k, v in tags.items() if not k.startswith(("System:", "SourceFile"))}


def private(tags):
    return [k for k in tags
            if k.partition(":")[0].startswith(PRIVATE_GROUPS)
            or k.partition(":")[2] in PRIVATE_TAGS or "GPS" in k or "Serial" in k]


def orientation(tags):
    return {k: v for k, v in tags.items() if k.endswith(":Orientation")}


def pixels(data):
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        with Image.open(f.name) as im:
            return im.format, [(fr.mode, fr.size, fr.tobytes()) for fr in
                               ImageSequence.Iterator(im)]


@pytest.mark.parametrize("name", STRIPPED)
def test_170_stripping_removes_metadata_keeps_orientation_and_pixels(srv, name):
    data = read(name)
    body = created(up(srv, data=data, fields=[("strip_metadata", "1")]))
    assert body["metadata_stripped"] is True, body
    g = srv.get("/image/" + body["hash"])
    assert g.status_code == 200 and len(g.content) == body["size"] <= len(data)
    before, after = exiftool(data), exiftool(g.content)
    if name.startswith("meta/"):
        assert private(before), "the sample carries no metadata"
        assert g.content != data
    assert private(after) == [], private(after)
    assert orientation(after) == orientation(before)
    assert "ExifTool:Error" not in after
    assert pixels(g.content) == pixels(data)
    # The stripped file passes the sniffer again: upload it once more, unstripped.
    assert created(up(srv, data=g.content))["type"] == body["type"]


def test_171_orientation_survives_in_jpeg_png_and_webp(srv):
    for name, value in (("meta/camera.jpg", 6), ("meta/text.png", 6), ("meta/exif.webp", 6)):
        body = created(up(srv, data=read(name), fields=[("strip_metadata", "true")]))
        served = srv.get("/image/" + body["hash"]).content
        assert list(orientation(exiftool(served)).values()) == [value], name


def test_172_avif_is_stored_unstripped_and_says_so(srv):
    data = read("meta/exif.avif")
    body = created(up(srv, data=data, fields=[("strip_metadata", "on")]))
    assert body["metadata_stripped"] is False
    assert srv.get("/image/" + body["hash"]).content == data


def test_173_default_off_serves_the_exact_bytes(srv):
    data = read("meta/camera.jpg")
    for fields in ([], [("strip_metadata", "0")], [("strip_metadata", "false")]):
        body = created(up(srv, data=data, fields=fields))
        assert body["metadata_stripped"] is False
        assert srv.get("/image/" + body["hash"]).content == data


@pytest.mark.parametrize("value", ["2", "yes", "", "maybe", "01", "-1"])
def test_174_a_bad_strip_metadata_is_400(srv, value):
    assert_json_error(up(srv, fields=[("strip_metadata", value)]), 400)


def test_175_strip_on_and_always(make_httpd):
    data = read("meta/camera.jpg")
    h = make_httpd(extra="ImgStoreStripMetadata on\n<Location /always>\n"
                         "ImgStoreStripMetadata always\n</Location>\n")
    on = created(up(h, data=data))
    assert on["metadata_stripped"] is True and on["size"] < len(data)
    assert private(exiftool(h.get("/image/" + on["hash"]).content)) == []
    kept = created(up(h, data=data, fields=[("strip_metadata", "off")]))
    assert kept["metadata_stripped"] is False and h.get("/image/" + kept["hash"]).content == data
    forced = created(up(h, data=data, path="/always/upload", fields=[("strip_metadata", "0")]))
    assert forced["metadata_stripped"] is True and forced["size"] < len(data)
    served = h.get("/always/image/" + forced["hash"]).content
    assert private(exiftool(served)) == [] and pixels(served) == pixels(data)


# -- raw and PUT uploads ---------------------------------------------------------------

def test_180_raw_post_with_an_image_content_type_stores_the_body(srv):
    r = requests.post(srv.url("/upload"), data=PNG, headers={"Content-Type": "image/png"},
                      timeout=30)
    body = created(r)
    assert body["type"] == "image/png" and body["size"] == len(PNG)
    assert DELETE_RE.match(body["delete_token"]) and r.headers["Location"] == body["url"]
    assert srv.get("/image/" + body["hash"]).content == PNG
    # The type is still decided by the bytes.
    body = created(requests.post(srv.url("/upload"), data=read("sample.gif"),
                                 headers={"Content-Type": "image/jpeg"}, timeout=30))
    assert body["type"] == "image/gif"


def test_181_put_with_curl_T_and_query_controls(srv, tmp_path):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    src = os.path.join(DATA, "meta", "camera.jpg")
    out = subprocess.run(["curl", "-sS", "-T", src,
                          srv.url("/upload?ttl=1h&max_views=1&strip_metadata=1")],
                         check=True, capture_output=True, timeout=60).stdout
    body = json.loads(out)
    assert body["expires_in"] == 3600 and body["max_views"] == 1, body
    assert body["metadata_stripped"] is True and body["type"] == "image/jpeg"
    served = srv.get("/image/" + body["hash"])
    assert served.status_code == 200 and private(exiftool(served.content)) == []
    assert srv.get("/image/" + body["hash"]).status_code == 404
    out = subprocess.run(["curl", "-sS", "--data-binary", "@" + os.path.join(DATA, "sample.png"),
                          "-H", "Content-Type: image/png", srv.url("/upload?max_views=2")],
                         check=True, capture_output=True, timeout=60).stdout
    body = json.loads(out)
    assert body["max_views"] == 2 and srv.get("/image/" + body["hash"]).content == PNG


def test_182_raw_uploads_keep_the_limits_and_the_sniffer(make_httpd):
    h = make_httpd(extra="ImgStoreMaxSize 8K\n")
    r = requests.put(h.url("/upload"), data=read("sample-100k.png"), timeout=30)
    assert_json_error(r, 413)
    r = requests.put(h.url("/upload"), data=read("page.html"), timeout=30)
    assert_json_error(r, 415)
    r = requests.put(h.url("/upload"), data=read("sample.svg"),
                     headers={"Content-Type": "image/svg+xml"}, timeout=30)
    assert_json_error(r, 415)
    r = requests.put(h.url("/upload"), data=b"", timeout=30)
    assert_json_error(r, 415)
    r = requests.post(h.url("/upload"), data=PNG, headers={"Content-Type": "text/plain"},
                      timeout=30)
    assert_json_error(r, 400)
    assert "image" in r.json()["error"]
    r = requests.put(h.url("/upload?ttl=0"), data=PNG, timeout=30)
    assert_json_error(r, 400)
    r = requests.put(h.url("/upload?max_views=1&max_views=2"), data=PNG, timeout=30)
    assert_json_error(r, 400)


def test_183_query_and_form_controls_together(srv):
    # A control given both ways is refused; different controls combine.
    body, ctype = H.multipart([("ttl", None, None, b"1h"),
                               ("file", "x.png", "image/png", PNG)])
    r = requests.post(srv.url("/upload?ttl=2h"), data=body, headers={"Content-Type": ctype},
                      timeout=30)
    assert_json_error(r, 400)
    r = requests.post(srv.url("/upload?max_views=3"), data=body,
                      headers={"Content-Type": ctype}, timeout=30)
    got = created(r)
    assert got["expires_in"] == 3600 and got["max_views"] == 3


# -- the pixel guard -------------------------------------------------------------------

def png_declaring(width, height):
    """sample.png with its IHDR saying width x height (CRC fixed), nothing decoded."""
    import struct
    import zlib
    ihdr = b"IHDR" + struct.pack(">II", width, height) + PNG[24:29]
    return PNG[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + PNG[33:]


def test_190_an_image_declaring_too_many_pixels_is_415(srv):
    r = up(srv, data=png_declaring(20000, 20000))
    assert_json_error(r, 415)
    assert "pixels" in r.json()["error"] and "ImgStoreMaxPixels" in r.json()["error"]
    r = requests.put(srv.url("/upload"), data=png_declaring(10001, 10000), timeout=30)
    assert_json_error(r, 415)
    # Exactly the limit (100 megapixels) passes the guard.
    assert created(up(srv, data=png_declaring(10000, 10000)))["type"] == "image/png"


def test_191_max_pixels_per_mount(make_httpd):
    h = make_httpd(extra="ImgStoreMaxPixels 1000\n")
    with Image.open(os.path.join(DATA, "sample.jpg")) as im:
        w, ht = im.size
    assert w * ht > 1000
    assert_json_error(h.upload(H.image("sample.jpg")), 415)
    assert created(up(h, data=png_declaring(10, 100)))


# -- an incomplete body ----------------------------------------------------------------

@pytest.mark.parametrize("raw", [False, True])
def test_195_a_body_shorter_than_its_content_length_is_400_and_nothing_is_stored(srv, raw):
    if raw:
        body, ctype = PNG, "image/png"
    else:
        body, ctype = H.multipart([("file", "x.png", "image/png", PNG)])
    before = int(srv.pgq("SELECT count(*) FROM imgstore_images")[0][0])
    head = H.head_bytes("POST /upload HTTP/1.1", [("Host", "127.0.0.1"),
                                                  ("Content-Type", ctype),
                                                  ("Content-Length", str(len(body) + 100))])
    with H.connect(srv.port) as s:
        s.sendall(head + body)
        s.shutdown(socket.SHUT_WR)
        a = H.read_answer(s)
    assert a.status == 400, a
    assert "ended before its Content-Length" in a.json_error(), a
    assert int(srv.pgq("SELECT count(*) FROM imgstore_images")[0][0]) == before
