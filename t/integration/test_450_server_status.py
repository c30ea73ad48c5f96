"""450: server-status shows the module's counters, and never a whole token."""
import re

import requests

from harness import image, read


def counters(h):
    text = requests.get(h.url("/server-status?auto"), timeout=30).text
    return {k: int(v) for k, v in re.findall(r"^ImgStore(\w+): (-?\d+)$", text, re.M)}


def test_450_counters_count_uploads_retrievals_and_rejects(make_httpd):
    h = make_httpd()
    before = counters(h)
    assert before["Uploads"] == 0 and before["Retrievals"] == 0
    up = h.upload(image("sample.png"))
    assert up.status_code == 201
    assert h.get("/image/" + up.json()["hash"]).status_code == 200
    assert h.get("/image/" + "A" * 43).status_code == 404
    assert h.upload(image("not-image.txt")).status_code == 415
    assert requests.delete(h.url("/upload"), timeout=30).status_code == 405
    assert requests.post(h.url("/upload"), data=b"x", timeout=30,
                         headers={"Content-Type": "text/plain"}).status_code == 400
    assert h.get("/cleanup").status_code == 200
    after = counters(h)
    assert after["Uploads"] == 1
    assert after["UploadBytes"] == len(read("sample.png"))
    assert after["Retrievals"] == 1
    assert after["RetrievalBytes"] == len(read("sample.png"))
    assert after["RejectedNotFound"] == 1
    assert after["RejectedType"] == 1
    assert after["RejectedMethod"] == 1
    assert after["RejectedMalformed"] == 1
    assert after["CleanupPasses"] >= 1
    assert after["OldestExpiredAge"] == 0


def test_451_server_status_shows_no_whole_token(make_httpd):
    h = make_httpd()
    hashes = []
    for name in ("sample.png", "sample.jpg", "sample.gif"):
        up = h.upload(image(name))
        assert up.status_code == 201
        hashes.append(up.json()["hash"])
    # Keep-alive off so each request lands on a worker slot that keeps its last request line.
    for x in hashes:
        assert requests.get(h.url("/image/" + x), timeout=30,
                            headers={"Connection": "close"}).status_code == 200
    page = requests.get(h.url("/server-status"), timeout=30).text
    assert "/image/" in page, "ExtendedStatus should list the image requests"
    for x in hashes:
        assert x not in page
        assert x[:20] not in page
    assert any(x[:6] + "..." in page for x in hashes)
