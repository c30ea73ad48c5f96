"""4xx: what is stored is ciphertext bound to its row; tokens stay out of the database and
the logs; master key files are checked before the server runs; keys rotate."""
import base64
import os
import pwd
import re
import shutil
import threading

import pytest
import requests

from harness import (Httpd, assert_json_error, image, make_tmp, png_of_size, read, row_id, sql_id, token_of,
                      wait_until, write_key)


def upload_ok(h, name, **kw):
    r = h.upload(image(name), **kw)
    assert r.status_code == 201, r.text
    return r.json()["hash"]


def stored_row(pg, hash_, db="imgstore"):
    out = pg.psql("SELECT key_id, encode(nonce, 'hex'), encode(ciphertext, 'hex'), content_type,"
                  " size, expires_at FROM imgstore_images WHERE id = %s" % sql_id(hash_), db=db)
    assert out, "no row for the uploaded image"
    key_id, nonce, ct, ctype, size, expires = out.split("|")
    return {"key_id": int(key_id), "nonce": bytes.fromhex(nonce), "ciphertext": bytes.fromhex(ct),
            "content_type": ctype, "size": int(size), "expires_at": int(expires)}


def windows(data, n=32):
    return {data[i:i + n] for i in range(len(data) - n + 1)}


# -- at rest -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["sample-100k.png", "sample.bmp"])
def test_401_stored_ciphertext_reveals_no_32_byte_run_of_the_image(httpd, pg, name):
    plain = read(name)
    row = stored_row(pg, upload_ok(httpd, name))
    ct = row["ciphertext"]
    assert row["size"] == len(plain)
    assert len(ct) == len(plain) + 16  # AES-GCM: same length plus the tag
    assert ct[:len(plain)] != plain
    leaked = windows(plain) & windows(ct)
    assert not leaked, "%d 32-byte runs of the image appear in the stored ciphertext" % len(leaked)
    assert len(row["nonce"]) == 12


def test_402_the_same_image_twice_is_stored_as_unrelated_ciphertexts(httpd, pg):
    a = stored_row(pg, upload_ok(httpd, "sample.png"))
    b = stored_row(pg, upload_ok(httpd, "sample.png"))
    assert a["nonce"] != b["nonce"]
    assert not windows(a["ciphertext"], 16) & windows(b["ciphertext"], 16)


def test_403_tokens_appear_nowhere_in_a_database_dump(httpd, pg):
    hashes = [upload_ok(httpd, n) for n in ("sample.png", "sample.jpg", "sample.gif")]
    dump = pg.dump()
    for h in hashes:
        tok = token_of(h)
        # The rows are in the dump (their ids)...
        assert row_id(h).hex().encode() in dump
        # ...but not the token, in any spelling.
        for form in (tok, h.encode(), tok.hex().encode(), tok.hex().upper().encode(),
                     base64.b64encode(tok).rstrip(b"="), base64.b32encode(tok).rstrip(b"=")):
            assert form not in dump, "token of %s found in the dump as %r" % (h[:6], form[:12])


# -- rows altered in the database ----------------------------------------------------------

TAMPER = {
    "expires_at raised": "expires_at = expires_at + 3600",
    "content_type changed to another image type": "content_type = 'image/gif'",
    "content_type changed to text/html": "content_type = 'text/html'",
    "key_id changed to an unloaded id": "key_id = 2",
    "first ciphertext byte flipped":
        "ciphertext = set_byte(ciphertext, 0, get_byte(ciphertext, 0) # 1)",
    "tag byte flipped": "ciphertext = set_byte(ciphertext, octet_length(ciphertext) - 1,"
                        " get_byte(ciphertext, octet_length(ciphertext) - 1) # 128)",
    "nonce flipped": "nonce = set_byte(nonce, 5, get_byte(nonce, 5) # 1)",
}


@pytest.mark.parametrize("what", list(TAMPER))
def test_410_an_altered_row_is_never_served(httpd, pg, what):
    httpd.allow(r"IMG0004[01]")
    h = upload_ok(httpd, "sample.png")
    assert httpd.get("/image/" + h).status_code == 200
    pg.psql("UPDATE imgstore_images SET %s WHERE id = %s" % (TAMPER[what], sql_id(h)))
    r = httpd.get("/image/" + h)
    assert r.status_code == 500, r.status_code
    assert_json_error(r, 500)
    assert read("sample.png") not in r.content


def test_411_another_rows_ciphertext_moved_under_an_id_is_not_served(httpd, pg):
    httpd.allow(r"IMG00041")
    victim = upload_ok(httpd, "sample.png")
    donor = upload_ok(httpd, "sample.jpg")
    pg.psql("UPDATE imgstore_images AS v SET key_id = d.key_id, nonce = d.nonce,"
            " ciphertext = d.ciphertext, content_type = d.content_type, size = d.size,"
            " created_at = d.created_at, expires_at = d.expires_at"
            " FROM imgstore_images AS d WHERE v.id = %s AND d.id = %s"
            % (sql_id(victim), sql_id(donor)))
    r = httpd.get("/image/" + victim)
    assert r.status_code == 500
    assert read("sample.jpg") not in r.content
    assert httpd.get("/image/" + donor).content == read("sample.jpg")


def test_412_a_row_whose_expiry_was_moved_into_the_past_is_404(httpd, pg):
    h = upload_ok(httpd, "sample.gif")
    pg.psql("UPDATE imgstore_images SET created_at = extract(epoch FROM now())::bigint - 1000,"
            " expires_at = extract(epoch FROM now())::bigint - 10 WHERE id = %s" % sql_id(h))
    assert_json_error(httpd.get("/image/" + h), 404)


def test_413_an_altered_row_is_logged_at_error_without_the_token(httpd, pg):
    httpd.allow(r"IMG00041")
    h = upload_ok(httpd, "sample.png")
    pg.psql("UPDATE imgstore_images SET expires_at = expires_at + 60 WHERE id = %s" % sql_id(h))
    assert httpd.get("/image/" + h).status_code == 500
    assert wait_until(lambda: re.search(r"\[[a-z_]*:error\].*IMG00041", httpd.errors()), 5)
    assert h not in httpd.errors()


# -- master key files ------------------------------------------------------------------------

def _nobody():
    return pwd.getpwnam("nobody").pw_uid


def _keyfile_problem(kind, path):
    """Create the key file problem `kind` at path; returns the path to configure."""
    if kind == "missing":
        return path
    if kind == "empty":
        return write_key(path, b"")
    if kind == "31 raw bytes":
        return write_key(path, os.urandom(31))
    if kind == "33 raw bytes":
        return write_key(path, os.urandom(33))
    if kind == "64 non-hex characters":
        return write_key(path, "zz" * 32 + "\n")
    if kind == "63 hex digits and a newline":
        return write_key(path, os.urandom(32).hex()[:63] + "\n")
    if kind == "mode 0644":
        return write_key(path, mode=0o644)
    if kind == "mode 0440":
        return write_key(path, mode=0o440)
    if kind == "mode 0404":
        return write_key(path, mode=0o404)
    if kind == "a directory":
        os.mkdir(path, 0o700)
        return path
    if kind == "owned by nobody":
        write_key(path)
        os.chown(path, _nobody(), -1)
        return path
    if kind == "owned by www-data, the server's User":
        # Scripts running as the server's User could read or replace it: only the user
        # starting httpd (root) may own it.
        write_key(path)
        os.chown(path, pwd.getpwnam("www-data").pw_uid, -1)
        return path
    raise AssertionError(kind)


KEY_PROBLEMS = ["missing", "empty", "31 raw bytes", "33 raw bytes", "64 non-hex characters",
                "63 hex digits and a newline", "mode 0644", "mode 0440", "mode 0404",
                "a directory", "owned by nobody", "owned by www-data, the server's User"]


@pytest.mark.parametrize("kind", KEY_PROBLEMS)
def test_420_a_bad_key_file_refuses_startup_naming_the_file(pg, make_httpd, kind):
    d = make_tmp("imgstore-key-")
    path = _keyfile_problem(kind, os.path.join(d, "master.key"))
    h = make_httpd(keyfile=path, start=False)
    h.allow(r"IMG00003")
    rc, text = h.start_refused()
    assert re.search(r"IMG00003.*" + re.escape(path), text), text
    assert not h.pid, "httpd came up with a key file that is %s" % kind
    assert rc != 0, ("httpd's launcher exited 0 although the server refused the key file "
                     "(%s):\n%s" % (kind, text))
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("kind", ["32 raw bytes, mode 0400", "64 hex digits without newline, "
                                  "mode 0600", "64 hex digits CRLF, mode 0400"])
def test_421_good_key_files_are_accepted(pg, make_httpd, kind):
    d = make_tmp("imgstore-key-")
    path = os.path.join(d, "master.key")
    if kind.startswith("32 raw"):
        write_key(path, os.urandom(32), mode=0o400)
    elif "without newline" in kind:
        write_key(path, os.urandom(32).hex(), mode=0o600)
    else:
        write_key(path, os.urandom(32).hex() + "\r\n", mode=0o400)
    h = make_httpd(keyfile=path)
    hash_ = upload_ok(h, "sample.png")
    assert h.get("/image/" + hash_).content == read("sample.png")


def test_422_two_key_files_without_ids_refuse_startup(pg, make_httpd):
    d = make_tmp("imgstore-key-")
    k1 = write_key(os.path.join(d, "k1"))
    k2 = write_key(os.path.join(d, "k2"))
    h = make_httpd(keyfile=k1, extra="ImgStoreKeyFile %s\n" % k2, start=False)
    h.allow(r"IMG0000[23]")
    rc, text = h.start_refused()
    assert "ImgStoreKeyFile" in text and re.search(r"IMG0000[23]", text), text
    assert not h.pid
    assert rc != 0, "launcher exited 0 although the server refused:\n" + text


def test_423_active_key_naming_an_unloaded_id_refuses_startup(pg, make_httpd):
    h = make_httpd(extra="ImgStoreActiveKey 7\n", start=False)
    h.allow(r"IMG00006")
    rc, text = h.start_refused()
    assert re.search(r"ImgStoreActiveKey.*7", text), text
    assert not h.pid
    assert rc != 0, "launcher exited 0 although the server refused:\n" + text


def test_424_several_keys_without_an_active_key_refuse_startup(pg, make_httpd):
    d = make_tmp("imgstore-key-")
    k1 = write_key(os.path.join(d, "k1"))
    k2 = write_key(os.path.join(d, "k2"))
    h = make_httpd(keyfile=k1 + " 1", extra="ImgStoreKeyFile %s 2\n" % k2, start=False)
    h.allow(r"IMG00005")
    rc, text = h.start_refused()
    assert "ImgStoreActiveKey" in text, text
    assert not h.pid
    assert rc != 0, "launcher exited 0 although the server refused:\n" + text


def test_426_two_key_files_with_the_same_id_refuse_startup(pg, make_httpd):
    d = make_tmp("imgstore-key-")
    k1 = write_key(os.path.join(d, "k1"))
    k2 = write_key(os.path.join(d, "k2"))
    # The base line without an id is key 1: a second key 1 is ambiguous.
    h = make_httpd(keyfile=k1, extra="ImgStoreKeyFile %s 1\n" % k2, start=False)
    h.allow(r"IMG0000[0-9]")
    rc, text = h.start_refused()
    assert "ImgStoreKeyFile" in text, text
    assert not h.pid, "httpd came up with two different keys under id 1"
    assert rc != 0, text


def test_425_the_wrong_master_key_cannot_open_stored_images(pg, make_httpd):
    h1 = make_httpd()
    hash_ = upload_ok(h1, "sample.png")
    h1.stop()
    h2 = make_httpd()  # a fresh random key under the same id 1
    h2.allow(r"IMG00041")
    r = h2.get("/image/" + hash_)
    assert_json_error(r, 500)
    assert read("sample.png") not in r.content


# -- rotation --------------------------------------------------------------------------------

def _keys():
    d = make_tmp("imgstore-key-")
    return write_key(os.path.join(d, "k1")), write_key(os.path.join(d, "k2"))


def _key_id(pg, hash_):
    return int(pg.psql("SELECT key_id FROM imgstore_images WHERE id = %s" % sql_id(hash_)))


def test_430_rotation_old_images_still_open_new_ones_use_the_active_key(pg, make_httpd):
    k1, k2 = _keys()
    # Phase 0: key 1 only. ("path id" in IMGSTORE_KEYFILE gives the base line its id.)
    h = make_httpd(keyfile=k1 + " 1")
    old = upload_ok(h, "sample.png")
    assert _key_id(pg, old) == 1
    h.stop()
    # Phases 1-2: both keys deployed, key 2 active.
    h = make_httpd(keyfile=k1 + " 1", extra="ImgStoreKeyFile %s 2\nImgStoreActiveKey 2\n" % k2)
    assert h.get("/image/" + old).content == read("sample.png")
    new = upload_ok(h, "sample.jpg")
    assert _key_id(pg, new) == 2
    assert h.get("/image/" + new).content == read("sample.jpg")
    h.stop()
    # Key 1 retired: its images answer 500, key 2's still open.
    h = make_httpd(keyfile=k2 + " 2")
    h.allow(r"IMG00040")
    assert h.get("/image/" + new).content == read("sample.jpg")
    r = h.get("/image/" + old)
    assert_json_error(r, 500)
    assert read("sample.png") not in r.content
    assert wait_until(lambda: "IMG00040" in h.errors(), 5)


def test_431_a_key_file_without_id_is_key_1_beside_numbered_key_files(pg, make_httpd):
    # The base config's "ImgStoreKeyFile ${IMGSTORE_KEYFILE}" carries no id: it is key 1.
    k1, k2 = _keys()
    h = make_httpd(keyfile=k1)
    old = upload_ok(h, "sample.png")
    assert _key_id(pg, old) == 1
    h.stop()
    h = make_httpd(keyfile=k1, extra="ImgStoreKeyFile %s 2\nImgStoreActiveKey 2\n" % k2)
    assert h.get("/image/" + old).content == read("sample.png")
    new = upload_ok(h, "sample.gif")
    assert _key_id(pg, new) == 2


# -- tokens in logs ----------------------------------------------------------------------------

def _exercise(h, pg):
    """Requests of every kind that carry tokens; returns the whole hashes used."""
    hashes = [upload_ok(h, n) for n in ("sample.png", "sample.jpg", "sample.gif")]
    unknown = [base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=") for _ in range(3)]
    for x in hashes:
        assert h.get("/image/" + x).status_code == 200
        assert requests.head(h.url("/image/" + x), timeout=30).status_code == 200
        assert h.get("/image/" + x + "?download=1").status_code in (200, 404)
        assert h.get("/image/" + x + "/").status_code == 404
        assert requests.post(h.url("/image/" + x), data=b"x", timeout=30).status_code == 405
        assert requests.options(h.url("/image/" + x), timeout=30).status_code == 204
    for x in unknown:
        assert h.get("/image/" + x).status_code == 404
        assert requests.head(h.url("/image/" + x), timeout=30).status_code == 404
    # A row that fails authentication logs at error: that line must not carry the token.
    h.allow(r"IMG00041")
    pg.psql("UPDATE imgstore_images SET expires_at = expires_at + 1 WHERE id = %s"
            % sql_id(hashes[0]))
    assert h.get("/image/" + hashes[0]).status_code == 500
    return hashes + unknown


def _assert_no_whole_token(h, hashes, expected_image_lines):
    # Each image request leaves its access-log line once the answer is out.
    assert wait_until(lambda: h.access().count("/image/") >= expected_image_lines, 10), \
        h.access()
    access, errors = h.access(), h.errors()
    for x in hashes:
        assert x not in access, "a whole hash is in the access log"
        assert x not in errors, "a whole hash is in the error log"
        assert x[:7] not in access, "more than 6 characters of a hash are in the access log"
        assert x[:7] not in errors, "more than 6 characters of a hash are in the error log"
    segments = re.findall(r"/image/([^ ?\"]*)", access)
    assert segments, access
    for seg in segments:
        for piece in seg.split("/"):
            assert piece.endswith("...") or len(piece) <= 6, "unredacted path segment %r" % seg
            assert len(piece.rstrip(".")) <= 6, seg


@pytest.mark.parametrize("loglevel", ["warn", "debug"])
def test_440_no_whole_hash_reaches_the_access_or_error_log(pg, make_httpd, loglevel):
    h = make_httpd(extra="LogLevel %s\n" % loglevel)
    hashes = _exercise(h, pg)
    # per image hash: GET, HEAD, GET ?query, GET /, POST, OPTIONS; per unknown: GET, HEAD; +1
    _assert_no_whole_token(h, hashes, 3 * 6 + 3 * 2 + 1)


def test_441_server_status_never_shows_a_whole_hash(pg, make_httpd):
    h = make_httpd(extra="ExtendedStatus On\n<Location /server-status>\n"
                         "    SetHandler server-status\n</Location>\n")
    hashes = [upload_ok(h, "sample-100k.png") for _ in range(8)]
    # Fetched at once from several clients, so that several workers' scoreboard slots
    # keep an image request as their last one.
    barrier = threading.Barrier(len(hashes))

    def fetch(x):
        barrier.wait(timeout=30)
        requests.get(h.url("/image/" + x), timeout=30)

    threads = [threading.Thread(target=fetch, args=(x,)) for x in hashes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    status = h.get("/server-status").text
    assert "GET /image/" in status, "server-status shows no image request at all"
    for x in hashes:
        assert x[:7] not in status, "server-status shows more than 6 characters of a hash"


# -- tokens in logs when something else answers (issue 9, items 5-6) ----------------------------

RESTRICTED = """
LoadModule authz_host_module ${IMGSTORE_MODDIR}/mod_authz_host.so
LoadModule authn_core_module ${IMGSTORE_MODDIR}/mod_authn_core.so
LoadModule authn_file_module ${IMGSTORE_MODDIR}/mod_authn_file.so
LoadModule authz_user_module ${IMGSTORE_MODDIR}/mod_authz_user.so
LoadModule auth_basic_module ${IMGSTORE_MODDIR}/mod_auth_basic.so
LogLevel debug
LogFormat "R=%r U=%U Q=%q F=%f P=\\"%{Referer}i\\" S=%>s" tokens
CustomLog ${IMGSTORE_STATE}/tokens.log tokens
<Location /denied>
    SetHandler imgstore
    Require ip 10.9.9.9
</Location>
<Location /login>
    SetHandler imgstore
    AuthType Basic
    AuthName "login"
    AuthBasicProvider file
    AuthUserFile ${IMGSTORE_STATE}/no-such-htpasswd
    Require valid-user
</Location>
<Location /open>
    SetHandler imgstore
</Location>
"""


def test_442_no_whole_token_when_access_control_or_routing_answers(pg, make_httpd):
    """Whatever answers a request under a mount (Require ip: 403, Basic auth: 401, unknown
    hash: 404, wrong method: 405, no route: 404), the token is cut in the path and in the
    query before anything logs it: access log (%r %U %q %f), a custom format, the error log
    at debug."""
    h = make_httpd(extra=RESTRICTED, defines=["IMGSTORE_NO_ROOT_MOUNT"])
    h.allow(r"AH01630")
    real = upload_ok_at(h, "/open")
    toks = [real] + [base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
                     for _ in range(3)]
    cases = []
    for mount, want in (("/denied", 403), ("/login", 401), ("/open", None)):
        for t in toks:
            for suffix in ("", "?ref=" + t, "?" + t, "?a=1&b=%s&c=2" % t, "?x=/image/" + t):
                cases.append(("GET", mount + "/image/" + t + suffix, want))
            cases.append(("POST", mount + "/image/" + t, want or 405))
            cases.append(("GET", mount + "/other/" + t + "?q=" + t, want or 404))
    for method, path, want in cases:
        r = requests.request(method, h.url(path), data=b"x" if method == "POST" else None,
                             timeout=30)
        if want is not None:
            assert r.status_code == want, (path[:30], r.status_code)
    tokens_log = os.path.join(h.dir, "tokens.log")
    assert wait_until(lambda: open(tokens_log).read().count("\n") >= len(cases) + 1, 10)
    logs = {"access": h.access(), "tokens": open(tokens_log).read(), "error": h.errors()}
    assert "AH01630" in logs["error"] and " S=401" in logs["tokens"]
    for name, text in logs.items():
        for t in toks:
            assert t[:7] not in text, "more than 6 characters of a token in the %s log" % name


def upload_ok_at(h, mount, name="sample.png"):
    r = h.upload(image(name), prefix=mount)
    assert r.status_code == 201, r.text
    return r.json()["hash"]


def _raw(h, data):
    import socket
    s = socket.create_connection(("127.0.0.1", h.port), timeout=30)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
    s.close()
    return out.split(b" ", 2)[1].decode() if out.startswith(b"HTTP/") else out


def test_443_requests_httpd_refuses_before_the_module_runs(pg, make_httpd):
    """What httpd answers before any module hook (README, "Tokens in logs"): a request line
    over LimitRequestLine (414) and a request line httpd cannot parse (400) are logged by httpd
    itself, before any mount is known: the module cuts every long segment of such a line
    before mod_log_config writes it (whatever path it names); a bad Content-Length never
    reaches the module."""
    h = make_httpd(extra="LogLevel info\n")
    h.tolerate(r"AH00565|AH00566|AH00567|AH02418|AH02427|AH10173|AH10244|AH00569")
    tok = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    assert _raw(h, b"GET /image/" + tok.encode() + b"?" + b"a" * 9000 + b" HTTP/1.1\r\n"
                b"Host: x\r\n\r\n") == "414"
    tok2 = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    assert _raw(h, b"GET /image/" + tok2.encode() + b" HTTP/1.1 junk\r\nHost: x\r\n\r\n") == "400"
    assert _raw(h, b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n") == "400"
    assert wait_until(lambda: h.access().count("\n") >= 3, 10), h.access()
    access, errors = h.access(), h.errors()
    for t in (tok, tok2):
        assert t[:7] not in access and t[:7] not in errors
    assert " 414 " in access and " 400 " in access


def _psql_as_runtime_role(pg, sql, db):
    import subprocess
    return subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                           "-p", str(pg.port), "-U", "imgstore", "-d", db, "-c", sql],
                          capture_output=True, text=True, timeout=60)


def test_405_the_runtime_role_has_exactly_the_rights_the_module_uses(pg, make_httpd):
    """imgstore-migrate --grant: SELECT, INSERT, DELETE on the images, SELECT, UPDATE on the
    state row, SELECT, INSERT on the expiry chain, nothing more; the module still does everything with them (upload, read,
    cleanup, quota)."""
    db = pg.create_db("grant")
    want = {"imgstore_images": {"SELECT", "INSERT", "DELETE"},
            "imgstore_state": {"SELECT", "UPDATE"},
            "imgstore_expiry_chain": {"SELECT", "INSERT"}}
    for table, rights in want.items():
        for priv in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"):
            got = pg.psql("SELECT has_table_privilege('imgstore', '%s', '%s')" % (table, priv),
                          db=db)
            assert got == ("t" if priv in rights else "f"), (table, priv)
    for sql in ("DELETE FROM imgstore_state", "INSERT INTO imgstore_state DEFAULT VALUES",
                "UPDATE imgstore_images SET expires_at = expires_at + 1",
                "TRUNCATE imgstore_images", "DELETE FROM imgstore_expiry_chain",
                "UPDATE imgstore_expiry_chain SET created_at = 0"):
        p = _psql_as_runtime_role(pg, sql, db)
        assert p.returncode != 0 and "permission denied" in p.stderr, (sql, p.stderr)
    assert pg.psql("SELECT count(*) FROM imgstore_state", db=db) == "1"
    h = make_httpd(dbname=db, extra="ImgStoreTTL 1\nImgStoreMaxTotal 100M\n")
    x = upload_ok(h, "sample-100k.png")
    assert h.get("/image/" + x).content == read("sample-100k.png")
    assert wait_until(lambda: requests.get(h.url("/cleanup"), timeout=30).json()["deleted"] == 1,
                      10)


# -- tampering answers 500 with its tag, never 404 (issue 9 item 11) ----------------------------

BAD_ROWS = {
    # name: (SQL SET clause, tag)
    **{k: (v, "IMG00040" if "unloaded" in k else "IMG00041") for k, v in TAMPER.items()},
    "ciphertext shorter than a tag": ("ciphertext = '\\x0102030405'::bytea", "IMG00041"),
    "ciphertext empty": ("ciphertext = ''::bytea", "IMG00041"),
    "nonce of 11 bytes": ("nonce = substring(nonce from 1 for 11)", "IMG00041"),
    "nonce of 13 bytes": ("nonce = nonce || '\\x00'::bytea", "IMG00041"),
    "nonce NULL": ("nonce = NULL", "IMG00041"),
    "ciphertext NULL": ("ciphertext = NULL", "IMG00041"),
    "key_id NULL": ("key_id = NULL", "IMG00041"),
    "content_type NULL": ("content_type = NULL", "IMG00041"),
    "size NULL": ("size = NULL", "IMG00041"),
    "created_at NULL": ("created_at = NULL", "IMG00041"),
    "expires_at NULL": ("expires_at = NULL", "IMG00041"),
}


@pytest.fixture(scope="module")
def loose(pg):
    """A server on a database whose table has lost its CHECK and NOT NULL constraints, so
    that rows no upload can make are there to be read."""
    db = pg.create_db("loose")
    cons = pg.psql("SELECT string_agg(format('DROP CONSTRAINT %I', conname), ', ')"
                   " FROM pg_constraint WHERE conrelid = 'imgstore_images'::regclass"
                   " AND contype = 'c'", db=db)
    pg.psql("ALTER TABLE imgstore_images %s" % cons, db=db)
    for col in ("key_id", "nonce", "ciphertext", "content_type", "size", "created_at",
                "expires_at"):
        pg.psql("ALTER TABLE imgstore_images ALTER COLUMN %s DROP NOT NULL" % col, db=db)
    h = Httpd(pg, dbname=db).start()
    h.db = db
    yield h
    bad = h.finish()
    assert not bad, "unexpected error-log lines:\n" + "\n".join(bad)


@pytest.mark.parametrize("size", ["small", "over 255 KiB, read in slices"])
@pytest.mark.parametrize("what", list(BAD_ROWS))
def test_414_a_bad_row_answers_500_with_its_tag_never_404(loose, pg, what, size):
    sql, tag = BAD_ROWS[what]
    data = read("sample.png") if size == "small" else png_of_size(300 * 1024)
    r = loose.upload(data=data, filename="x.png")
    assert r.status_code == 201, r.text
    h = r.json()["hash"]
    assert loose.get("/image/" + h).content == data
    if size != "small" and "flipped" in what and "nonce" not in what:
        # The altered byte sits in a later slice than the first.
        sql = sql.replace("0, get_byte(ciphertext, 0)", "290000, get_byte(ciphertext, 290000)")
        sql = sql.replace("ciphertext, 0,", "ciphertext, 290000,")
    pg.psql("UPDATE imgstore_images SET %s WHERE id = %s" % (sql, sql_id(h)), db=loose.db)
    loose.allow(tag)
    g = loose.get("/image/" + h)
    assert g.status_code == 500, (what, g.status_code)
    assert_json_error(g, 500)
    assert data not in g.content
    assert wait_until(lambda: re.search(r"\[[a-z_]*:error\].*%s" % tag, loose.errors()), 5)
