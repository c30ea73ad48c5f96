"""60x: the upload page at GET <mount>/ (issue 13). First over plain HTTP (its headers, its
CSP hashes checked against the bytes served, nothing external), then in a real browser:
Debian's chromium, headless, driven by chromium-driver through python3-selenium, against
the real httpd + PostgreSQL. After every browser test: no JavaScript error, no CSP
violation, and no failed request but those the test provokes.

IMGSTORE_SCREENSHOTS=<dir> makes test_690 write the README's screenshots there
(upload-page-desktop.png, upload-page-phone.png)."""
import base64
import hashlib
import html.parser
import json
import os
import re
import shutil
import subprocess
import time

import pytest
import requests

import harness as H
from harness import assert_json_error, image, read
from harness.load import DB_DOWN_TAGS

MOUNTS = ("<Location /img>\n    SetHandler imgstore\n    ImgStoreMaxSize 2M\n"
          "    ImgStoreTTL 10m\n    ImgStoreMaxTTL 2h\n</Location>\n"
          "<Location /small>\n    SetHandler imgstore\n    ImgStoreMaxSize 50K\n"
          "    ImgStoreAllowTypes png jpeg\n    ImgStoreStripMetadata always\n</Location>\n"
          "<Location /short>\n    SetHandler imgstore\n    ImgStoreTTL 2\n</Location>\n"
          "<Location /nopage>\n    SetHandler imgstore\n    ImgStoreUploadPage off\n"
          "</Location>\n")


@pytest.fixture(scope="module")
def srv(pg):
    h = H.Httpd(pg, extra=MOUNTS).start()
    yield h
    bad = h.finish()
    assert not bad, "unexpected error-log lines:\n" + "\n".join(bad)


# --- over HTTP -----------------------------------------------------------------------------

class PageParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.inline = [], {}
        self._in = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in ("script", "style"):
            self._in = tag
            self.inline.setdefault(tag, [])

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in:
            self.inline[self._in].append(data)


def csp_of(r):
    out = {}
    for d in r.headers["Content-Security-Policy"].split(";"):
        words = d.split()
        if words:
            out[words[0]] = words[1:]
    return out


def inline_text(body, tag):
    """The exact bytes between <tag> and </tag>: what a browser hashes for the CSP."""
    m = re.findall(rb"<%s>(.*?)</%s>" % (tag.encode(), tag.encode()), body, re.S)
    assert len(m) == 1, "%d inline <%s> elements" % (len(m), tag)
    return m[0]


def sha256_source(data):
    return "'sha256-%s'" % base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_600_the_page_is_html_with_a_strict_csp_whose_hashes_match_the_served_bytes(srv):
    r = srv.get("/")
    assert r.status_code == 200, r.text[:300]
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert int(r.headers["Content-Length"]) == len(r.content)
    for name, value in (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"),
                        ("X-Frame-Options", "DENY"), ("Cache-Control", "no-store")):
        assert r.headers.get(name) == value, (name, r.headers.get(name))
    csp = csp_of(r)
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == [sha256_source(inline_text(r.content, "script"))]
    assert csp["style-src"] == [sha256_source(inline_text(r.content, "style"))]
    assert csp["connect-src"] == ["'self'"]
    assert set(csp["img-src"]) <= {"blob:", "data:", "'self'"}
    for d in ("form-action", "base-uri", "frame-ancestors"):
        assert csp[d] == ["'none'"], (d, csp.get(d))
    assert not any("unsafe" in w for ws in csp.values() for w in ws), csp


def test_601_the_page_references_nothing_outside_itself(srv):
    body = srv.get("/").content
    p = PageParser()
    p.feed(body.decode("utf-8"))
    assert [t for t, _ in p.tags].count("script") == 1
    assert [t for t, _ in p.tags].count("style") == 1
    for tag, attrs in p.tags:
        for name, value in attrs.items():
            value = value or ""
            assert not name.startswith("on"), "inline handler %s on <%s>" % (name, tag)
            assert name != "style", "style attribute on <%s> (the CSP forbids it)" % tag
            if name in ("src", "href", "action", "srcset", "poster", "data", "formaction"):
                assert value.startswith("data:"), "<%s %s=%r>" % (tag, name, value)
        if tag == "script":
            assert "src" not in attrs
        if tag == "link":
            assert attrs.get("rel") == "icon" and attrs.get("href", "").startswith("data:")
    css = inline_text(body, "style")
    js = inline_text(body, "script")
    assert b"@import" not in css and b"url(" not in css
    assert not re.search(rb"https?:|//[a-z0-9]", css + js.replace(b"//", b"") + body.split(
        b"<script>")[0].replace(b"data:,", b"")), "an absolute URL in the page"
    assert b"innerHTML" not in js and b"eval(" not in js


def test_602_each_mount_gets_the_same_page_with_its_own_limits(srv):
    pages = {m: srv.get(m) for m in ("/", "/img/", "/small/")}
    attrs = {}
    for m, r in pages.items():
        assert r.status_code == 200, (m, r.status_code)
        tag = re.search(rb'<main id="app"([^>]*)>', r.content).group(1).decode()
        attrs[m] = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', tag))
        # Only the attributes differ: the hashed script and style are the same bytes.
        assert csp_of(r) == csp_of(pages["/"]), m
        assert r.content.replace(tag.encode(), b"") == pages["/"].content.replace(
            re.search(rb'<main id="app"([^>]*)>', pages["/"].content).group(1), b"")
    assert attrs["/"]["max-size"] == str(10 * 1024 * 1024) and attrs["/"]["ttl"] == "300"
    assert attrs["/img/"]["max-size"] == str(2 * 1024 * 1024) and attrs["/img/"]["ttl"] == "600"
    assert attrs["/small/"]["max-size"] == str(50 * 1024)
    assert attrs["/"]["max-ttl"] == str(24 * 3600) and attrs["/img/"]["max-ttl"] == "7200"
    assert attrs["/"]["strip"] == "off" and attrs["/small/"]["strip"] == "always"
    assert attrs["/small/"]["types"] == "image/jpeg,image/png"
    assert attrs["/"]["types"].split(",") == ["image/jpeg", "image/png", "image/gif",
                                              "image/webp", "image/avif", "image/bmp"]
    for m in attrs:
        assert int(attrs[m]["max-ttl"]) >= int(attrs[m]["ttl"]), attrs[m]


def test_603_head_options_and_other_methods_on_the_page(srv):
    h = requests.head(srv.url("/img/"), timeout=30)
    assert h.status_code == 200 and h.content == b""
    assert "sha256-" in h.headers["Content-Security-Policy"]
    o = requests.options(srv.url("/img/"), timeout=30)
    assert o.status_code == 204 and o.headers["Allow"] == "GET, HEAD, OPTIONS"
    p = requests.post(srv.url("/img/"), data=b"x", timeout=30)
    assert_json_error(p, 405)
    assert p.headers["Allow"] == "GET, HEAD, OPTIONS"


def test_604_the_mount_without_its_slash_redirects_to_the_page(srv):
    r = srv.get("/img", allow_redirects=False)
    assert r.status_code == 301, r.status_code
    assert r.headers["Location"] == srv.url("/img/")
    r = srv.get("/img?a=b", allow_redirects=False)
    assert r.headers["Location"] == srv.url("/img/?a=b")
    for other in ("/img/index.html", "/img/upload/", "/img/x"):
        assert_json_error(srv.get(other), 404)


def test_605_upload_page_off_leaves_the_mount_a_json_404(srv):
    for path in ("/nopage/", "/nopage"):
        assert_json_error(srv.get(path, allow_redirects=False), 404)
    r = srv.upload(image("sample.png"), prefix="/nopage")
    assert r.status_code == 201, r.text


def test_606_the_sharex_uploader_file_and_the_flameshot_line_work_as_shipped(srv, tmp_path):
    """conf/imgstore.sxcu is what ShareX sends: its form fields and file field, its URL
    template on the JSON answer. conf/imgstore-flameshot.sh's pipeline with the screenshot
    tool and the clipboard replaced by cat gives a link to the bytes."""
    sx = json.load(open(os.path.join(H.ROOT, "conf", "imgstore.sxcu")))
    assert sx["DestinationType"] == "ImageUploader" and sx["Body"] == "MultipartFormData"
    assert sx["RequestURL"].endswith("/upload") and sx["RequestMethod"] == "POST"
    url = srv.url("/img/upload")
    r = requests.post(url, data=sx["Arguments"], timeout=30,
                      files={sx["FileFormName"]: ("shot.png", read("sample.png"), "image/png")})
    assert r.status_code == 201, r.text
    link = re.sub(r"\{json:(\w+)\}", lambda m: r.json()[m.group(1)], sx["URL"])
    assert fetch(link).content == read("sample.png")
    assert sx["ErrorMessage"] == "{json:error}"
    line = open(os.path.join(H.ROOT, "conf", "imgstore-flameshot.sh")).read().strip().splitlines()[-1]
    assert line.startswith("flameshot gui --raw | ") and line.endswith(" | xclip -selection clipboard")
    cmd = line.replace("flameshot gui --raw", "cat " + image("sample.png")).replace(
        "xclip -selection clipboard", "cat")
    out = subprocess.run(["sh", "-c", cmd], env=dict(os.environ, IMGSTORE_URL=srv.url("/img")),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(srv.url("/img/image/")), out.stdout
    assert fetch(out.stdout.strip()).content == read("sample.png")


def test_607_pagegen_refuses_sources_that_would_break_the_hashes(tmp_path):
    """What the CSP hashes must cover exactly: a style or script that could end its element
    early, or a page without its markers, stops the build instead."""
    pagegen = os.path.join(H.BUILD, "pagegen")
    src = os.path.join(H.ROOT, "mod_imgstore", "page")
    files = {n: open(os.path.join(src, "upload." + n)).read() for n in ("html", "css", "js")}

    def run(**changed):
        paths = []
        for n in ("html", "css", "js"):
            p = tmp_path / ("upload." + n)
            p.write_text(changed.get(n, files[n]))
            paths.append(str(p))
        return subprocess.run([pagegen] + paths, capture_output=True, text=True, timeout=30)

    ok = run()
    assert ok.returncode == 0 and "imgstore_page_script_hash" in ok.stdout, ok.stderr
    for bad in ({"js": files["js"] + "\n// </script><script>alert(1)"},
                {"js": files["js"] + "\n// <!-- x"},
                {"css": files["css"] + "\n/* </STYLE> */"},
                {"html": files["html"].replace("@CONFIG@", "")},
                {"html": files["html"].replace("@SCRIPT@", "@SCRIPT@@SCRIPT@")},
                {"js": files["js"] + "\n// @CONFIG@"}):
        r = run(**bad)
        assert r.returncode != 0 and "pagegen:" in r.stderr, (bad.keys(), r.stderr)


# --- in the browser ------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

# Recorded from the first script the page runs: CSP violations and uncaught errors.
WATCH = """
window.__problems = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__problems.push('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI);
});
window.addEventListener('error', function (e) {
  window.__problems.push('error: ' + e.message);
});
window.addEventListener('unhandledrejection', function (e) {
  window.__problems.push('unhandled rejection: ' + e.reason);
});
"""


class Browser:
    def __init__(self):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--window-size=1280,900", "--no-first-run", "--disable-extensions",
                  "--force-prefers-reduced-motion"):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        self.d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH})
        # The failed requests the current test provokes: HTTP statuses, or texts of the
        # console line (a refused connection has no status).
        self.expected = []

    def open(self, url):
        from selenium.webdriver.support.ui import WebDriverWait
        self.d.get(url)
        WebDriverWait(self.d, 20).until(
            lambda d: d.execute_script("return document.readyState") == "complete")
        assert self.js("return document.querySelectorAll('#ttl option').length") > 0

    def js(self, script, *args):
        return self.d.execute_script(script, *args)

    def wait(self, cond, timeout=30, what="condition"):
        from selenium.webdriver.support.ui import WebDriverWait
        return WebDriverWait(self.d, timeout).until(lambda d: cond(), what)

    def pick(self, *paths):
        from selenium.webdriver.common.by import By
        self.d.find_element(By.ID, "file").send_keys("\n".join(paths))

    def rows(self):
        return self.js("""return Array.from(document.querySelectorAll('#rows > li')).map(
            function (li) {
              var link = li.querySelector('input.link');
              return {state: li.dataset.state, msg: li.querySelector('.msg').textContent,
                      link: link ? link.value : null,
                      countdown: (li.querySelector('.countdown') || {}).textContent || ''};
            }).reverse();""")

    def settled(self, n):
        """Wait until n rows exist and none is uploading; returns them, oldest first."""
        def ok():
            rs = self.rows()
            return len(rs) >= n and all(r["state"] not in (None, "uploading") for r in rs)
        self.wait(ok, what="%d rows settled: %r" % (n, self.rows()))
        return self.rows()

    def button(self, row_index, text):
        """The button labelled text in row row_index (oldest first)."""
        from selenium.webdriver.common.by import By
        items = self.d.find_elements(By.CSS_SELECTOR, "#rows > li")[::-1]
        for b in items[row_index].find_elements(By.TAG_NAME, "button"):
            if b.text == text:
                return b
        raise AssertionError("no %r button in row %d" % (text, row_index))

    def problems(self):
        """JS errors, CSP violations and console errors other than the expected failed
        requests, since the last call."""
        out = list(self.js("return window.__problems || []") or [])
        for e in self.d.get_log("browser"):
            if e["level"] not in ("SEVERE", "WARNING"):
                continue
            msg = e["message"]
            m = re.search(r"status of (\d+)", msg)
            if e.get("source") == "network" and any(
                    (m and x == int(m.group(1))) if isinstance(x, int) else x in msg
                    for x in self.expected):
                continue
            out.append("%s %s: %s" % (e["level"], e.get("source"), msg))
        self.js("window.__problems = []")
        return out

    def quit(self):
        self.d.quit()


@pytest.fixture(scope="module")
def browser():
    for prog in (CHROMIUM, CHROMEDRIVER):
        assert os.access(prog, os.X_OK), "%s missing (./dev installs chromium, " \
            "chromium-driver and python3-selenium)" % prog
    b = Browser()
    yield b
    b.quit()


@pytest.fixture
def page(browser):
    """The browser for one test; afterwards no problem may have been logged."""
    browser.expected = []
    browser.problems()
    yield browser
    left = browser.problems()
    assert not left, "browser console / CSP problems:\n" + "\n".join(left)


def fetch(url):
    return requests.get(url, timeout=30)


def test_610_pick_a_file_progress_link_and_identical_bytes(srv, page):
    data = H.png_of_size(1536 * 1024, seed=610)
    path = os.path.join(srv.dir, "big.png")
    with open(path, "wb") as f:
        f.write(data)
    page.open(srv.url("/"))
    # Every progress value the bar shows, recorded as it changes; the upload is throttled
    # (DevTools network emulation) so that the bytes take a while to go up.
    page.js("""window.__progress = [];
      new MutationObserver(function (ms) { ms.forEach(function (m) {
        if (m.target.tagName === 'PROGRESS') window.__progress.push(m.target.value); });
      }).observe(document.getElementById('rows'),
                 {subtree: true, attributes: true, attributeFilter: ['value']});""")
    page.d.execute_cdp_cmd("Network.enable", {})
    page.d.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1,
        "uploadThroughput": 1024 * 1024})
    try:
        page.pick(path)
        (row,) = page.settled(1)
    finally:
        page.d.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    seen = page.js("return window.__progress")
    assert row["state"] == "done", row
    assert any(0 < v < 100 for v in seen), "no progress between 0 and 100 seen: %r" % seen
    assert seen[-1] == 100, seen
    assert row["link"].startswith(srv.url("/image/")), row
    assert re.fullmatch(r"Expires in \d\d:\d\d", row["countdown"]), row
    g = fetch(row["link"])
    assert g.status_code == 200 and g.content == data
    # The link is focused and selected, ready to copy; the copy button says it copied.
    assert page.js("return document.activeElement.classList.contains('link')")
    # The label says "Copied" for two seconds once the clipboard answered: record it when it
    # happens (a loaded machine may answer after the first look, or look after it reverted).
    button = page.button(0, "Copy link")
    page.js("""var b = arguments[0]; window.imgstoreCopied = false;
               new MutationObserver(function () {
                   if (b.textContent === 'Copied') { window.imgstoreCopied = true; }
               }).observe(b, {childList: true, characterData: true, subtree: true});""", button)
    button.click()
    page.wait(lambda: page.js("return window.imgstoreCopied === true"), what="copied")


def test_611_paste_a_png_uploads_it(srv, page):
    data = read("sample.png")
    page.open(srv.url("/"))
    page.js("""var bytes = Uint8Array.from(atob(arguments[0]), function (c) {
                 return c.charCodeAt(0); });
               var dt = new DataTransfer();
               dt.items.add(new File([bytes], 'image.png', {type: 'image/png'}));
               document.body.dispatchEvent(new ClipboardEvent('paste',
                   {clipboardData: dt, bubbles: true, cancelable: true}));""",
            base64.b64encode(data).decode())
    (row,) = page.settled(1)
    assert row["state"] == "done", row
    assert fetch(row["link"]).content == data


def test_612_drop_two_files_each_gets_its_row(srv, page):
    files = {"sample.gif": read("sample.gif"), "sample.webp": read("sample.webp")}
    page.open(srv.url("/"))
    page.js("""var dt = new DataTransfer();
               arguments[0].forEach(function (f) {
                 var bytes = Uint8Array.from(atob(f[1]), function (c) { return c.charCodeAt(0); });
                 dt.items.add(new File([bytes], f[0], {type: f[2]}));
               });
               var zone = document.getElementById('drop');
               zone.dispatchEvent(new DragEvent('dragenter', {dataTransfer: dt, bubbles: true}));
               zone.dispatchEvent(new DragEvent('dragover',
                   {dataTransfer: dt, bubbles: true, cancelable: true}));
               zone.dispatchEvent(new DragEvent('drop',
                   {dataTransfer: dt, bubbles: true, cancelable: true}));""",
            [[n, base64.b64encode(d).decode(), "image/" + n.split(".")[1]]
             for n, d in files.items()])
    rows = page.settled(2)
    assert len(rows) == 2 and all(r["state"] == "done" for r in rows), rows
    assert sorted(fetch(r["link"]).content for r in rows) == sorted(files.values())


def test_613_too_large_and_not_an_image_are_said_in_words(srv, page):
    page.expected = [415]
    page.open(srv.url("/small/"))
    assert "50 KB" in page.js("return document.getElementById('drop').textContent")
    # ImgStoreStripMetadata always: the box is checked and cannot be unchecked.
    assert page.js("var b = document.getElementById('strip'); return [b.checked, b.disabled]") \
        == [True, True]
    page.pick(image("sample-100k.png"), image("not-image.txt"))
    rows = page.settled(2)
    by_state = sorted(r["msg"] for r in rows)
    assert all(r["state"] == "error" for r in rows), rows
    assert any(m.startswith("Too large: this server takes images up to 50 KB") for m in by_state)
    assert any(m.startswith("Not an image this server accepts (it takes JPEG, PNG)")
               for m in by_state), by_state


def test_614_the_page_under_a_prefix_mount(srv, page):
    page.open(srv.url("/img"))  # redirected to /img/
    assert page.d.current_url == srv.url("/img/")
    assert "2 MB" in page.js("return document.getElementById('drop').textContent")
    # The mount's ImgStoreTTL (10m) is the preselected expiry; its ImgStoreMaxTTL (2h) the
    # longest choice.
    assert page.js("return document.getElementById('ttl').value") == "600"
    assert page.js("""return Array.from(document.querySelectorAll('#ttl option'))
                      .map(function (o) { return o.value; });""") == [
        "60", "300", "600", "900", "3600", "7200"]
    assert page.js("return document.querySelector('#ttl option:last-child').textContent") \
        == "2 hours (longest)"
    page.pick(image("sample.jpg"))
    (row,) = page.settled(1)
    assert row["state"] == "done", row
    assert row["link"].startswith(srv.url("/img/image/")), row
    assert fetch(row["link"]).content == read("sample.jpg")


def test_615_keyboard_labels_and_the_drop_zone_as_a_button(srv, page):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
    page.open(srv.url("/"))
    # Every control has a name a screen reader can say.
    unnamed = page.js("""return Array.from(document.querySelectorAll('select, input, button'))
        .filter(function (e) { return !(e.labels && e.labels.length) &&
                                      !e.getAttribute('aria-label'); })
        .map(function (e) { return e.outerHTML; });""")
    assert unnamed == [], unnamed
    # Tab order: expiry, views, the checkbox, then the drop zone.
    page.js("""window.__picked = 0;
               document.getElementById('file').click = function () { window.__picked++; };
               document.activeElement && document.activeElement.blur();""")
    order = []
    for _ in range(4):
        ActionChains(page.d).send_keys(Keys.TAB).perform()
        order.append(page.js("return document.activeElement.id"))
    assert order == ["ttl", "views", "strip", "drop"], order
    assert page.js("return document.getElementById('drop').getAttribute('role')") == "button"
    ActionChains(page.d).send_keys(Keys.ENTER).perform()
    ActionChains(page.d).send_keys(Keys.SPACE).perform()
    assert page.js("return window.__picked") == 2


def test_616_storage_full_server_busy_and_network_failure_in_words(pg, make_httpd, page):
    page.expected = [507, 503, "net::ERR_CONNECTION_REFUSED"]
    full = make_httpd(extra="ImgStoreMaxTotal 150K\n")
    page.open(full.url("/"))
    page.pick(image("sample-100k.png"))
    page.settled(1)
    page.pick(image("sample-100k.png"))
    rows = page.settled(2)
    assert rows[1]["state"] == "error" and "storage is full" in rows[1]["msg"], rows
    busy = make_httpd(dbname="no_such_database")
    busy.tolerate(*DB_DOWN_TAGS)
    page.open(busy.url("/"))
    page.pick(image("sample.png"))
    (row,) = page.settled(1)
    assert row["state"] == "error", row
    assert re.match(r"The server is busy — try again in \d+ seconds?\.", row["msg"]), row
    # The server goes away while the page is open.
    busy.stop()
    page.pick(image("sample.png"))
    rows = page.settled(2)
    assert rows[1]["msg"].startswith("Could not reach the server"), rows


def test_617_light_and_dark(srv, page):
    page.open(srv.url("/"))
    colors = {}
    for scheme in ("light", "dark"):
        page.d.execute_cdp_cmd("Emulation.setEmulatedMedia", {
            "features": [{"name": "prefers-color-scheme", "value": scheme}]})
        colors[scheme] = page.js("""var s = getComputedStyle(document.body);
            return [s.backgroundColor, s.color];""")
    page.d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    lum = {k: sum(int(x) for x in re.findall(r"\d+", v[0])[:3]) for k, v in colors.items()}
    assert lum["light"] > 600 and lum["dark"] < 150, colors


def test_618_the_csp_is_enforced_and_a_violation_would_be_seen(srv, page):
    """The watch every browser test relies on is not blind: an inline script and an inline
    style added to the page are blocked by the CSP, and both show up as problems."""
    page.open(srv.url("/"))
    page.js("""var s = document.createElement('script');
               s.textContent = 'window.__ran = 1;'; document.body.appendChild(s);
               var d = document.createElement('div'); d.setAttribute('style', 'color: red');
               document.body.appendChild(d);""")
    page.wait(lambda: len(page.js("return window.__problems")) >= 2, what="two violations")
    assert page.js("return window.__ran") is None
    found = page.problems()
    assert any("CSP violation: script-src" in p for p in found), found
    assert any("CSP violation: style-src" in p for p in found), found


def test_620_burn_after_reading_the_second_fetch_is_404_and_the_page_says_so(srv, page):
    page.expected = [404]
    page.open(srv.url("/"))
    from selenium.webdriver.support.ui import Select
    Select(page.d.find_element("id", "views")).select_by_value("1")
    page.pick(image("sample.png"))
    (row,) = page.settled(1)
    assert row["state"] == "done", row
    assert "Burns after one view" in page.js("return document.querySelector('#rows li').textContent")
    # The page's own check (HEAD) spends no view.
    page.button(0, "Check link").click()
    page.wait(lambda: page.rows()[0]["msg"] == "The link still works.", what="still works")
    first, second = fetch(row["link"]), fetch(row["link"])
    assert first.status_code == 200 and first.content == read("sample.png")
    assert second.status_code == 404
    page.button(0, "Check link").click()
    page.wait(lambda: page.rows()[0]["state"] == "gone", what="row says gone")
    assert page.rows()[0]["msg"].startswith("Gone: the link was opened its last allowed time")


def test_621_the_delete_button_deletes_and_the_token_stays_in_memory(srv, page):
    page.open(srv.url("/"))
    page.pick(image("sample.gif"))
    (row,) = page.settled(1)
    assert row["state"] == "done", row
    hash_ = row["link"].rsplit("/", 1)[1]
    # The delete token is nowhere in the document or the page's storage.
    found = page.js("""var html = document.documentElement.outerHTML;
        return {tokens: (html.match(/[A-Za-z0-9_-]{43}/g) || []),
                storage: localStorage.length + sessionStorage.length,
                cookie: document.cookie};""")
    assert set(found["tokens"]) <= {hash_}, found
    assert found["storage"] == 0 and found["cookie"] == "", found
    assert fetch(row["link"]).status_code == 200
    page.button(0, "Delete now").click()
    page.wait(lambda: page.rows()[0]["state"] == "deleted", what="row says deleted")
    assert page.rows()[0]["msg"] == "Deleted. The link no longer works."
    assert fetch(row["link"]).status_code == 404
    # The buttons are gone with the image.
    assert page.button(0, "Delete now").get_attribute("disabled") is not None


def test_622_remove_location_data_on_a_jpeg_with_gps(srv, page):
    src = image("meta/camera.jpg")
    assert exif_gps(open(src, "rb").read()), "the sample has no GPS to remove"
    page.open(srv.url("/"))
    assert page.js("return document.getElementById('strip').checked") is True
    page.pick(src)
    (row,) = page.settled(1)
    assert row["state"] == "done", row
    assert "Location and camera data removed" in page.js(
        "return document.querySelector('#rows li').textContent")
    served = fetch(row["link"]).content
    assert served[:2] == b"\xff\xd8" and served != read("meta/camera.jpg")
    assert exif_gps(served) == {}, "GPS left in the served file"


def test_623_the_countdown_runs_out_and_the_row_says_expired(srv, page):
    page.open(srv.url("/short/"))
    assert page.js("return document.getElementById('ttl').value") == "2"
    page.pick(image("sample.bmp"))
    (row,) = page.settled(1)
    assert row["state"] == "done" and row["countdown"].startswith("Expires in 00:0"), row
    page.wait(lambda: page.rows()[0]["state"] == "expired", what="row says expired")
    assert page.rows()[0]["msg"] == "Expired. The link no longer works."
    assert fetch(row["link"]).status_code == 404


def exif_gps(data):
    """exiftool's GPS and serial-number tags of an image (an independent reader)."""
    p = subprocess.run(["exiftool", "-j", "-G", "-n", "-"], input=data, capture_output=True,
                       timeout=60)
    tags = json.loads(p.stdout)[0]
    return {k: v for k, v in tags.items() if "GPS" in k or "SerialNumber" in k}


def test_690_screenshots_for_the_readme(srv, page):
    """The page with a finished upload and a refused one, at desktop and phone width;
    written to $IMGSTORE_SCREENSHOTS when set."""
    page.expected = [415]
    page.open(srv.url("/"))
    page.pick(image("not-image.txt"))
    page.settled(1)
    page.pick(image("sample.jpg"))
    page.settled(2)
    page.js("document.activeElement.blur(); window.getSelection().removeAllRanges()")
    out = os.environ.get("IMGSTORE_SCREENSHOTS")
    for name, width, height in (("desktop", 1280, 1000), ("phone", 360, 1100)):
        page.d.set_window_size(width, height)
        # Nothing wider than the window: no sideways scrolling on a phone.
        assert page.js("return document.documentElement.scrollWidth") <= page.js(
            "return window.innerWidth"), name
        if out:
            os.makedirs(out, exist_ok=True)
            page.d.save_screenshot(os.path.join(out, "upload-page-%s.png" % name))
    page.d.set_window_size(1280, 900)
