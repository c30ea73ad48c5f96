"""5xx: mounting under a prefix, per-mount settings, ImgStoreBaseURL, directive values."""

import os

import pytest

from harness import assert_json_error, image, make_tmp, read, write_key

IMG_MOUNT = "<Location /img>\n    SetHandler imgstore\n</Location>\n"


def is_module_json(r):
    return r.headers.get("Content-Type", "").startswith("application/json")


def test_501_a_prefix_mount_serves_its_routes_under_the_prefix(make_httpd):
    h = make_httpd(defines=["IMGSTORE_NO_ROOT_MOUNT"], extra=IMG_MOUNT)
    r = h.upload(image("sample.png"), prefix="/img")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["url"] == h.url("/img/image/" + body["hash"])
    assert r.headers["Location"] == body["url"]
    g = h.get("/img/image/" + body["hash"])
    assert g.status_code == 200 and g.content == read("sample.png")
    assert h.get("/img/health").status_code == 200
    assert h.get("/img/cleanup").status_code == 200
    assert_json_error(h.get("/img/nope"), 404)
    assert_json_error(h.get("/img/upload"), 405)


def test_502_outside_its_mount_the_module_answers_nothing(make_httpd):
    h = make_httpd(defines=["IMGSTORE_NO_ROOT_MOUNT"], extra=IMG_MOUNT)
    body = h.upload(image("sample.png"), prefix="/img").json()
    for r in (h.upload(image("sample.png")),
              h.get("/image/" + body["hash"]),
              h.get("/health"),
              h.get("/cleanup")):
        assert r.status_code == 404, (r.request.url, r.status_code, r.text[:200])
        assert not is_module_json(r), (r.request.url, r.text[:200])
        assert read("sample.png") not in r.content


@pytest.mark.parametrize("path", ["/imgx/upload", "/imgfoo", "/img2/image/" + "A" * 43])
def test_503_a_path_that_only_starts_like_the_mount_is_not_a_server_error(make_httpd, path):
    # <Location /img> also matches /imgx...: the module must not turn that into a 500.
    h = make_httpd(defines=["IMGSTORE_NO_ROOT_MOUNT"], extra=IMG_MOUNT)
    r = h.get(path)
    assert r.status_code == 404, (r.status_code, r.text[:200])


@pytest.mark.parametrize("base", ["https://img.example.com/pics", "https://img.example.com/pics/"])
def test_504_base_url_replaces_the_request_host_in_url_and_location(make_httpd, base):
    h = make_httpd(extra="ImgStoreBaseURL %s\n" % base)
    r = h.upload(image("sample.png"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["url"] == "https://img.example.com/pics/image/" + body["hash"]
    assert r.headers["Location"] == body["url"]
    # The image is still served where it was uploaded.
    assert h.get("/image/" + body["hash"]).content == read("sample.png")


def test_505_base_url_per_mount(make_httpd):
    h = make_httpd(defines=["IMGSTORE_NO_ROOT_MOUNT"],
                   extra="<Location /img>\n    SetHandler imgstore\n"
                         "    ImgStoreBaseURL https://cdn.example.net/i\n</Location>\n"
                         "<Location /raw>\n    SetHandler imgstore\n</Location>\n")
    a = h.upload(image("sample.png"), prefix="/img").json()
    b = h.upload(image("sample.png"), prefix="/raw").json()
    assert a["url"] == "https://cdn.example.net/i/image/" + a["hash"]
    assert b["url"] == h.url("/raw/image/" + b["hash"])


def test_506_ttl_given_on_the_command_line_applies(make_httpd):
    h = make_httpd(args=["-c", "ImgStoreTTL 3"])
    r = h.upload(image("sample.png"))
    assert r.status_code == 201, r.text
    assert r.json()["expires_in"] == 3


@pytest.mark.parametrize("value,seconds", [("90", 90), ("45s", 45), ("2m", 120), ("1h", 3600)])
def test_507_ttl_units(make_httpd, value, seconds):
    h = make_httpd(extra="ImgStoreTTL %s\n" % value)
    assert h.upload(image("sample.gif")).json()["expires_in"] == seconds


def test_508_each_mount_has_its_own_ttl_size_and_types(make_httpd):
    h = make_httpd(defines=["IMGSTORE_NO_ROOT_MOUNT"],
                   extra="<Location /a>\n    SetHandler imgstore\n    ImgStoreTTL 7\n"
                         "    ImgStoreAllowTypes png\n</Location>\n"
                         "<Location /b>\n    SetHandler imgstore\n    ImgStoreTTL 90s\n"
                         "    ImgStoreMaxSize 2K\n</Location>\n")
    a = h.upload(image("sample.png"), prefix="/a")
    assert a.status_code == 201 and a.json()["expires_in"] == 7
    assert a.json()["url"] == h.url("/a/image/" + a.json()["hash"])
    assert_json_error(h.upload(image("sample.jpg"), prefix="/a"), 415)
    b = h.upload(image("sample.jpg"), prefix="/b")  # 1124 bytes, jpeg allowed here
    assert b.status_code == 201 and b.json()["expires_in"] == 90
    assert_json_error(h.upload(image("sample.png"), prefix="/b"), 413)  # 6432 > 2K


def test_509_server_level_settings_are_the_default_of_every_mount(make_httpd):
    h = make_httpd(extra="ImgStoreTTL 45\nImgStoreAllowTypes gif\n")
    r = h.upload(image("sample.gif"))
    assert r.status_code == 201 and r.json()["expires_in"] == 45
    assert_json_error(h.upload(image("sample.png")), 415)


BAD_VALUES = [
    ("ImgStoreTTL", "0"),
    ("ImgStoreTTL", "5x"),
    ("ImgStoreTTL", "1.5m"),
    ("ImgStoreTTL", "-5"),
    ("ImgStoreTTL", "10000h"),
    ("ImgStoreMaxSize", "0"),
    ("ImgStoreMaxSize", "10Q"),
    ("ImgStoreMaxSize", "2G"),
    ("ImgStoreMaxSize", "lots"),
    ("ImgStoreAllowTypes", "svg"),
    ("ImgStoreAllowTypes", "png tiff"),
    ("ImgStoreBaseURL", "ftp://img.example.com/x"),
    ("ImgStoreBaseURL", "/relative/path"),
    ("ImgStoreBaseURL", "https://img.example.com/x?y=1"),
    ("ImgStoreCleanupInterval", "0"),
    ("ImgStoreCleanupInterval", "soon"),
    ("ImgStoreMaxTotal", "-1"),
    ("ImgStoreMaxTotal", "0"),
    ("ImgStoreMaxTotal", "huge"),
    ("ImgStoreActiveKey", "0"),
    ("ImgStoreActiveKey", "abc"),
]


@pytest.mark.parametrize("directive,value", BAD_VALUES)
def test_510_a_bad_directive_value_refuses_startup_naming_directive_and_value(
        make_httpd, directive, value):
    h = make_httpd(extra="%s %s\n" % (directive, value), start=False)
    rc, text = h.start_refused()
    assert not h.pid
    assert rc != 0, text
    assert directive in text, text
    assert value.split()[-1] in text, text


@pytest.mark.parametrize("section,directive", [
    ("<Location /x>", "ImgStoreCleanupInterval 30"),
    ("<Location /x>", "ImgStoreMaxTotal 1M"),
    ("<Location /x>", "ImgStoreActiveKey 1"),
    ("<LocationMatch ^/x>", "ImgStoreTTL 30"),
    ("<Directory /tmp>", "ImgStoreMaxSize 1M"),
])
def test_511_a_directive_in_a_section_it_does_not_belong_to_refuses_startup(
        make_httpd, section, directive):
    close = "</%s>" % section[1:].split()[0]
    h = make_httpd(extra="%s\n    %s\n%s\n" % (section, directive, close), start=False)
    rc, text = h.start_refused()
    assert not h.pid
    assert rc != 0, text
    assert directive.split()[0] in text, text


def test_512_a_mount_written_with_a_trailing_slash_gives_clean_urls(make_httpd):
    h = make_httpd(defines=["IMGSTORE_NO_ROOT_MOUNT"],
                   extra="<Location /pics/>\n    SetHandler imgstore\n</Location>\n")
    r = h.upload(image("sample.png"), prefix="/pics")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["url"] == h.url("/pics/image/" + body["hash"])
    assert h.get("/pics/image/" + body["hash"]).content == read("sample.png")


# -- misconfiguration answers and the key id range (issue 9 item 14) ----------------------------

@pytest.mark.parametrize("section", ["<LocationMatch \"^/lm\">"])
def test_513_the_handler_outside_a_location_answers_500_with_img00022(make_httpd, section):
    end = "</%s>" % section[1:].split()[0]
    h = make_httpd(defines=["IMGSTORE_NO_ROOT_MOUNT"],
                   extra="%s\n    SetHandler imgstore\n%s\n" % (section, end))
    h.allow(r"IMG00022")
    path = "/lm/health"
    assert_json_error(h.get(path), 500)
    assert h.get(path).json()["error"] == "server misconfigured"
    assert "IMG00022" in h.errors()


def test_514_without_a_key_the_server_starts_and_answers_500(make_httpd):
    """README, ImgStoreKeyFile: "Default: none (the handler answers 500 until a key is
    configured)": IMG00004 at startup, IMG00021 per request, nothing stored."""
    h = make_httpd(defines=["IMGSTORE_NO_KEY"])
    h.allow(r"IMG00004", r"IMG00021")
    r = h.upload(image("sample.png"))
    assert_json_error(r, 500)
    assert r.json()["error"] == "server not configured"
    assert_json_error(h.get("/health"), 500)
    assert "IMG00004" in h.errors() and "IMG00021" in h.errors()


@pytest.mark.parametrize("key_id", ["0", "32768", "-1", "1x"])
def test_515_a_key_id_outside_1_to_32767_refuses_startup(make_httpd, key_id):
    h = make_httpd(defines=["IMGSTORE_NO_KEY"], start=False)
    with open(h.extra_path, "a") as f:
        f.write("ImgStoreKeyFile %s %s\n" % (h.keyfile, key_id))
    rc, text = h.start_refused()
    assert "a key id is an integer from 1 to 32767" in text, text
    assert not h.pid and rc != 0


def test_516_key_id_32767_is_stored_with_each_row(pg, make_httpd):
    db = pg.create_db("keyid")
    key = write_key(os.path.join(make_tmp("imgstore-key-"), "k"))
    h = make_httpd(dbname=db, defines=["IMGSTORE_NO_KEY"], extra="ImgStoreKeyFile %s 32767\n" % key)
    r = h.upload(image("sample.png"))
    assert r.status_code == 201, r.text
    assert pg.psql("SELECT key_id FROM imgstore_images", db=db) == "32767"
    assert h.get("/image/" + r.json()["hash"]).content == read("sample.png")
