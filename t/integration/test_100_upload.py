"""1xx: uploads round-trip, byte for byte, for every allowed type."""
import pytest

from harness import read, image

TYPES = [("sample.jpg", "image/jpeg"), ("sample.png", "image/png"), ("sample.gif", "image/gif"),
         ("sample.webp", "image/webp"), ("sample.avif", "image/avif"), ("sample.bmp", "image/bmp"),
         ("sample-100k.jpg", "image/jpeg"), ("sample-100k.png", "image/png")]


@pytest.mark.parametrize("name,mime", TYPES)
def test_101_upload_round_trip_is_byte_identical(httpd, name, mime):
    r = httpd.upload(image(name))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["type"] == mime
    assert body["size"] == len(read(name))
    assert r.headers["Location"] == body["url"]
    g = httpd.get("/image/" + body["hash"])
    assert g.status_code == 200
    assert g.headers["Content-Type"] == mime
    assert g.content == read(name)
