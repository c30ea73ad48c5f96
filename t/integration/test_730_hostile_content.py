"""73x: files that are not allowed images, or only pretend to be, whatever the client
says about them: 415 JSON, nothing stored, the server still healthy. The bytes alone
decide the type, in both directions."""
import io
import zipfile

import pytest

import harness as H
from harness import assert_json_error, read


@pytest.fixture(scope="module")
def srv(pg):
    yield from H.own_server(pg, "t730")


def _zip():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("image.png", read("sample.png"))
    return out.getvalue()


def _elf():
    with open("/bin/true", "rb") as f:
        return f.read(16384)


def _half(name):
    data = read(name)
    return data[:len(data) // 2]


PDF = (b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
       b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
SVG = read("sample.svg")

NOT_IMAGES = [
    ("text", read("not-image.txt"), "x.png", "image/png"),
    ("html", read("page.html"), "x.jpg", "image/jpeg"),
    ("pdf", PDF, "x.gif", "image/gif"),
    ("elf", _elf(), "x.png", "image/png"),
    ("zip-holding-a-png", _zip(), "x.png", "image/png"),
    ("svg", SVG, "x.svg", "image/svg+xml"),
    ("svg-named-png", SVG, "x.png", "image/png"),
    ("svg-with-bom-and-xml-declaration",
     b"\xef\xbb\xbf<?xml version=\"1.0\"?>\n" + SVG.split(b"?>", 1)[-1], "x.png", "image/png"),
    ("gif-html-polyglot", read("polyglot.gif.html"), "x.gif", "image/gif"),
    ("png-first-half", _half("sample.png"), "x.png", "image/png"),
    ("jpeg-first-half", _half("sample.jpg"), "x.jpg", "image/jpeg"),
    ("gif-first-half", _half("sample.gif"), "x.gif", "image/gif"),
    ("webp-first-half", _half("sample.webp"), "x.webp", "image/webp"),
    ("avif-first-half", _half("sample.avif"), "x.avif", "image/avif"),
    ("bmp-first-half", _half("sample.bmp"), "x.bmp", "image/bmp"),
    ("zero-bytes", b"", "x.png", "image/png"),
    ("png-signature-then-html", read("sample.png")[:8] + read("page.html"), "x.png", "image/png"),
    ("jpeg-soi-then-html", b"\xff\xd8\xff\xe0" + read("page.html"), "x.jpg", "image/jpeg"),
    ("riff-webp-header-only", b"RIFF\x04\x00\x00\x00WEBP", "x.webp", "image/webp"),
    ("bmp-header-claiming-pixels-it-lacks", read("sample.bmp")[:54], "x.bmp", "image/bmp"),
]


@pytest.mark.parametrize("data,filename,ctype", [c[1:] for c in NOT_IMAGES],
                         ids=[c[0] for c in NOT_IMAGES])
def test_730_a_file_that_is_not_a_complete_allowed_image_is_415_and_nothing_is_stored(
        srv, data, filename, ctype):
    before = H.rows(srv.pg, srv.db)
    r = srv.upload(data=data, filename=filename, content_type=ctype)
    assert_json_error(r, 415)
    assert H.rows(srv.pg, srv.db) == before, "a refused file left a row"
    H.assert_healthy(srv)


def test_731_a_jpeg_named_svg_and_sent_as_image_svg_xml_is_stored_as_image_jpeg(srv):
    jpeg = read("sample.jpg")
    r = srv.upload(data=jpeg, filename="x.svg", content_type="image/svg+xml")
    assert r.status_code == 201, r.text
    assert r.json()["type"] == "image/jpeg"
    g = srv.get("/image/" + r.json()["hash"])
    assert g.status_code == 200 and g.content == jpeg
    assert g.headers["Content-Type"] == "image/jpeg"


@pytest.mark.parametrize("name,mime", [("sample.png", "image/png"), ("sample.gif", "image/gif"),
                                       ("sample.webp", "image/webp"), ("sample.bmp", "image/bmp"),
                                       ("sample.avif", "image/avif")])
def test_732_an_image_sent_as_text_html_with_an_html_name_is_stored_as_what_its_bytes_are(
        srv, name, mime):
    data = read(name)
    r = srv.upload(data=data, filename="index.html", content_type="text/html")
    assert r.status_code == 201, r.text
    assert r.json()["type"] == mime
    g = srv.get("/image/" + r.json()["hash"])
    assert g.content == data and g.headers["Content-Type"] == mime
