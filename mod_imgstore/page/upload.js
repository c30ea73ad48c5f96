/*
 * The upload page of mod_imgstore. Everything the page shows comes from the
 * user's files or the server's JSON answers and is written with textContent:
 * no HTML is ever built from strings. The mount's limits come from data
 * attributes on #app that the server fills in (this script is the same
 * bytes on every mount: the Content-Security-Policy allows it by its hash).
 * URLs are relative to where the page is served, so a prefix mount works.
 */
(function () {
  "use strict";

  var app = document.getElementById("app");
  var ttlSelect = document.getElementById("ttl");
  var viewsSelect = document.getElementById("views");
  var stripBox = document.getElementById("strip");
  var drop = document.getElementById("drop");
  var fileInput = document.getElementById("file");
  var rows = document.getElementById("rows");
  var announcer = document.getElementById("announce");

  function num(value, fallback) {
    var n = parseInt(value, 10);
    return isFinite(n) && n > 0 ? n : fallback;
  }

  var config = {
    ttl: num(app.dataset.ttl, 300),
    maxTtl: num(app.dataset.maxTtl, 86400),
    maxSize: num(app.dataset.maxSize, 10485760),
    types: (app.dataset.types || "").split(",").filter(Boolean),
    strip: app.dataset.strip || "off"
  };
  var TYPE_NAMES = {
    "image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF",
    "image/webp": "WebP", "image/avif": "AVIF", "image/bmp": "BMP"
  };

  function endpoint(path) {
    return new URL(path, document.baseURI).href;
  }

  /* ---- words for numbers ---- */

  function plural(n, word) {
    return n + " " + word + (n === 1 ? "" : "s");
  }

  function formatSize(bytes) {
    if (bytes < 1024) {
      return plural(bytes, "byte");
    }
    var units = ["KB", "MB", "GB"];
    var v = bytes / 1024;
    var i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return (v >= 10 || v === Math.floor(v) ? Math.round(v) : v.toFixed(1)) + " " + units[i];
  }

  function formatDuration(seconds) {
    var parts = [
      [86400, "day"], [3600, "hour"], [60, "minute"], [1, "second"]
    ];
    var out = [];
    for (var i = 0; i < parts.length && out.length < 2; i++) {
      var n = Math.floor(seconds / parts[i][0]);
      if (n > 0) {
        out.push(plural(n, parts[i][1]));
        seconds -= n * parts[i][0];
      } else if (out.length) {
        break;
      }
    }
    return out.length ? out.join(" ") : "0 seconds";
  }

  function formatCountdown(seconds) {
    var d = Math.floor(seconds / 86400);
    var h = Math.floor(seconds % 86400 / 3600);
    var m = Math.floor(seconds % 3600 / 60);
    var s = seconds % 60;
    function two(n) { return (n < 10 ? "0" : "") + n; }
    var clock = (h || d ? two(h) + ":" : "") + two(m) + ":" + two(s);
    return (d ? plural(d, "day") + " " : "") + clock;
  }

  function say(text) {
    announcer.textContent = "";
    window.setTimeout(function () { announcer.textContent = text; }, 50);
  }

  /* ---- the options, from the mount's limits ---- */

  function fillTtlChoices() {
    var candidates = [60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400];
    var choices = candidates.filter(function (s) { return s <= config.maxTtl; });
    var start = Math.min(config.ttl, config.maxTtl);
    [start, config.maxTtl].forEach(function (s) {
      if (choices.indexOf(s) < 0) {
        choices.push(s);
      }
    });
    choices.sort(function (a, b) { return a - b; });
    choices.forEach(function (s) {
      var option = document.createElement("option");
      option.value = String(s);
      option.textContent = formatDuration(s) + (s === config.maxTtl ? " (longest)" : "");
      option.selected = s === start;
      ttlSelect.appendChild(option);
    });
  }

  function typeNames() {
    return config.types.map(function (t) { return TYPE_NAMES[t] || t; }).join(", ");
  }

  fillTtlChoices();
  if (config.strip === "always") {
    /* ImgStoreStripMetadata always: the server removes it whatever the page says. */
    stripBox.checked = true;
    stripBox.disabled = true;
    stripBox.labels[0].textContent += " (always, on this server)";
  }
  document.getElementById("limit").textContent = formatSize(config.maxSize);
  if (config.types.length) {
    document.getElementById("types").textContent = typeNames() + ".";
    fileInput.accept = config.types.join(",");
  }

  /* ---- one row per file ---- */

  var rowCount = 0;
  var live = []; /* rows with a countdown running */

  function el(tag, className, text) {
    var e = document.createElement(tag);
    if (className) {
      e.className = className;
    }
    if (text !== undefined) {
      e.textContent = text;
    }
    return e;
  }

  function makeRow(file) {
    var id = ++rowCount;
    var row = {
      id: id, file: file, token: null, hash: null, deadline: 0, maxViews: null,
      li: el("li", "row"), thumb: el("img", "thumb"), body: el("div", "body"),
      progress: el("progress"), msg: el("p", "msg"), result: null
    };
    var name = file.name || "pasted image";
    var title = el("p", "name", name + " ");
    title.appendChild(el("span", "size", formatSize(file.size)));
    row.li.setAttribute("aria-label", "Upload " + id + ": " + name);
    row.thumb.alt = "";
    if (/^image\//.test(file.type)) {
      row.preview = URL.createObjectURL(file);
      row.thumb.src = row.preview;
    }
    row.progress.max = 100;
    row.progress.value = 0;
    row.progress.setAttribute("aria-label", "Upload progress of " + name);
    row.msg.setAttribute("role", "status");
    row.body.appendChild(title);
    row.body.appendChild(row.progress);
    row.body.appendChild(row.msg);
    row.li.appendChild(row.thumb);
    row.li.appendChild(row.body);
    rows.insertBefore(row.li, rows.firstChild);
    return row;
  }

  function setState(row, state, text) {
    row.li.dataset.state = state;
    row.msg.textContent = text;
  }

  function addButton(parent, text, label, onClick) {
    var b = el("button", "", text);
    b.type = "button";
    if (label) {
      b.setAttribute("aria-label", label);
    }
    b.addEventListener("click", onClick);
    parent.appendChild(b);
    return b;
  }

  /* ---- errors in words ---- */

  function serverWords(xhr) {
    try {
      var body = JSON.parse(xhr.responseText);
      return body && typeof body.error === "string" ? body.error : "";
    } catch (e) {
      return "";
    }
  }

  function explain(xhr, file) {
    var said = serverWords(xhr);
    switch (xhr.status) {
      case 0:
        return "Could not reach the server: the network failed or the connection was cut. " +
          "Check your connection and try again.";
      case 413:
        return "Too large: this server takes images up to " + formatSize(config.maxSize) +
          " and this file is " + formatSize(file.size) + ".";
      case 415:
        return "Not an image this server accepts" +
          (config.types.length ? " (it takes " + typeNames() + ")" : "") +
          ". The file's contents decide, not its name.";
      case 507:
        return "The server's storage is full right now. Try again later, when older images " +
          "have expired.";
      case 503:
        var wait = num(xhr.getResponseHeader("Retry-After"), 0);
        return "The server is busy" + (wait ? " — try again in " + formatDuration(wait) : "") +
          ". Nothing was stored.";
      case 400:
        return "The server refused the upload: " + (said || "the request was not understood") +
          ".";
      default:
        return "The upload failed (the server answered " + xhr.status +
          (said ? ": " + said : "") + "). Try again later.";
    }
  }

  function failed(row, text, retry) {
    row.progress.hidden = true;
    setState(row, "error", text);
    say("Upload failed: " + text);
    if (retry) {
      var actions = el("div", "actions");
      addButton(actions, "Try again", "Try uploading " + (row.file.name || "the image") +
        " again", function () {
        row.li.remove();
        upload(row.file);
      });
      row.body.appendChild(actions);
    }
  }

  /* ---- the upload ---- */

  function upload(file) {
    var row = makeRow(file);
    if (file.size > config.maxSize) {
      failed(row, "Too large: this server takes images up to " + formatSize(config.maxSize) +
        " and this file is " + formatSize(file.size) + ".", false);
      return;
    }
    var form = new FormData();
    form.append("ttl", ttlSelect.value);
    if (viewsSelect.value) {
      form.append("max_views", viewsSelect.value);
    }
    form.append("strip_metadata", stripBox.checked ? "1" : "0");
    form.append("file", file, file.name || "pasted-image");
    var xhr = new XMLHttpRequest();
    xhr.open("POST", endpoint("upload"));
    xhr.responseType = "text";
    setState(row, "uploading", "Uploading…");
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable && e.total > 0) {
        row.progress.value = Math.floor(e.loaded / e.total * 100);
        row.msg.textContent = "Uploading… " + row.progress.value + " %";
      }
    });
    xhr.upload.addEventListener("load", function () {
      row.progress.value = 100;
      row.msg.textContent = "Sent, waiting for the server…";
    });
    xhr.addEventListener("load", function () {
      if (xhr.status !== 201) {
        failed(row, explain(xhr, file), xhr.status === 503 || xhr.status === 507 ||
          xhr.status >= 500);
        return;
      }
      var answer;
      try {
        answer = JSON.parse(xhr.responseText);
      } catch (e) {
        answer = null;
      }
      if (!answer || typeof answer.url !== "string" || typeof answer.hash !== "string") {
        failed(row, "The server's answer was not understood. Try again later.", true);
        return;
      }
      done(row, answer);
    });
    xhr.addEventListener("error", function () {
      failed(row, explain({ status: 0, responseText: "" }, file), true);
    });
    xhr.addEventListener("timeout", function () {
      failed(row, "The upload took too long and was given up. Try again.", true);
    });
    xhr.send(form);
  }

  /* ---- the result: link, copy, countdown, check, delete ---- */

  function done(row, answer) {
    row.hash = answer.hash;
    row.token = typeof answer.delete_token === "string" ? answer.delete_token : null;
    row.maxViews = typeof answer.max_views === "number" ? answer.max_views : null;
    row.deadline = Date.now() + num(answer.expires_in, 0) * 1000;
    row.progress.hidden = true;
    setState(row, "done", "Uploaded. Copy the link and share it.");

    var result = el("div", "result");
    var linkId = "link-" + row.id;
    var label = el("label", "visually-hidden", "Link to " + (row.file.name || "the image"));
    label.htmlFor = linkId;
    var line = el("div", "linkline");
    var input = el("input", "link");
    input.type = "text";
    input.readOnly = true;
    input.id = linkId;
    input.value = answer.url;
    line.appendChild(input);
    row.copyButton = addButton(line, "Copy link", null, function () { copy(row, input); });
    row.copyButton.className = "primary";
    result.appendChild(label);
    result.appendChild(line);

    var facts = [];
    if (row.maxViews === 1) {
      facts.push("Burns after one view");
    } else if (row.maxViews) {
      facts.push("Works for " + plural(row.maxViews, "view"));
    }
    if (answer.metadata_stripped === true) {
      facts.push("location and camera data removed");
    } else if (answer.metadata_stripped === false && stripBox.checked) {
      facts.push("no metadata removed");
    }
    facts.push(formatSize(num(answer.size, row.file.size)) + " " +
      (TYPE_NAMES[answer.type] || answer.type || ""));
    row.countdown = el("p", "facts countdown");
    row.countdown.setAttribute("aria-live", "off");
    result.appendChild(row.countdown);
    var factText = facts.join(" · ");
    result.appendChild(el("p", "facts", factText.charAt(0).toUpperCase() + factText.slice(1)));

    var actions = el("div", "actions");
    row.checkButton = addButton(actions, "Check link", "Check whether the link still works",
      function () { check(row, true); });
    if (row.token) {
      row.deleteButton = addButton(actions, "Delete now", "Delete " + (row.file.name ||
        "the image") + " from the server", function () { remove(row); });
    }
    result.appendChild(actions);
    row.result = result;
    row.body.appendChild(result);
    live.push(row);
    tick();
    say("Uploaded " + (row.file.name || "the image") + ". The link is ready to copy.");
    /* Focus the link unless the user is busy with another control. */
    var active = document.activeElement;
    if (!active || active === document.body || active === drop || active === fileInput) {
      input.focus();
      input.select();
    }
  }

  function copy(row, input) {
    function copied() {
      row.copyButton.textContent = "Copied";
      say("Link copied");
      window.setTimeout(function () { row.copyButton.textContent = "Copy link"; }, 2000);
    }
    function fallback() {
      input.focus();
      input.select();
      var ok = false;
      try {
        ok = document.execCommand("copy");
      } catch (e) {
        ok = false;
      }
      if (ok) {
        copied();
      } else {
        row.msg.textContent = "Press Ctrl+C (or ⌘+C) to copy the selected link.";
      }
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(copied, fallback);
    } else {
      fallback();
    }
  }

  /* The row's link no longer works: say why, and take its buttons away. */
  function ended(row, state, text) {
    row.token = null;
    live = live.filter(function (r) { return r !== row; });
    setState(row, state, text);
    if (row.countdown) {
      row.countdown.textContent = "";
    }
    [row.deleteButton, row.copyButton, row.checkButton].forEach(function (b) {
      if (b) {
        b.disabled = true;
      }
    });
    say(text);
  }

  function imageUrl(row) {
    return endpoint("image/" + row.hash);
  }

  /* HEAD spends no view: the page can look without burning the image. */
  function check(row, byUser) {
    fetch(imageUrl(row), { method: "HEAD", cache: "no-store", referrerPolicy: "no-referrer" })
      .then(function (resp) {
        if (resp.status === 404) {
          ended(row, "gone", row.maxViews ?
            "Gone: the link was opened its last allowed time, deleted, or expired." :
            "Gone: the image was deleted or has expired.");
        } else if (resp.ok) {
          if (byUser) {
            setState(row, "done", "The link still works.");
          }
        } else if (byUser) {
          setState(row, "done", "Could not check the link now (the server answered " +
            resp.status + ").");
        }
      }, function () {
        if (byUser) {
          setState(row, "done", "Could not reach the server to check the link.");
        }
      });
  }

  function remove(row) {
    if (!row.token) {
      return;
    }
    row.deleteButton.disabled = true;
    fetch(imageUrl(row), {
      method: "DELETE", cache: "no-store", referrerPolicy: "no-referrer",
      headers: { "X-Delete-Token": row.token }
    }).then(function (resp) {
      if (resp.status === 204) {
        ended(row, "deleted", "Deleted. The link no longer works.");
      } else if (resp.status === 404) {
        ended(row, "gone", "Already gone: it expired, was deleted, or was opened its last " +
          "allowed time.");
      } else {
        row.deleteButton.disabled = false;
        setState(row, "done", resp.status === 403 ?
          "The server refused to delete it (the delete key was not accepted)." :
          "Could not delete it now (the server answered " + resp.status + "). Try again.");
      }
    }, function () {
      row.deleteButton.disabled = false;
      setState(row, "done", "Could not reach the server to delete it. Try again.");
    });
  }

  function tick() {
    var now = Date.now();
    live.slice().forEach(function (row) {
      var left = Math.ceil((row.deadline - now) / 1000);
      if (left <= 0) {
        ended(row, "expired", "Expired. The link no longer works.");
      } else {
        row.countdown.textContent = "Expires in " + formatCountdown(left);
      }
    });
  }
  window.setInterval(tick, 1000);

  /* Back on the page: a link with a view limit may have been used up meanwhile. */
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") {
      live.forEach(function (row) {
        if (row.maxViews) {
          check(row, false);
        }
      });
    }
  });

  /* ---- the three ways in: picker, drop, paste ---- */

  function uploadAll(files) {
    var list = Array.prototype.slice.call(files || []);
    list.forEach(upload);
    return list.length;
  }

  function openPicker() {
    fileInput.click();
  }

  drop.addEventListener("click", openPicker);
  drop.addEventListener("keydown", function (e) {
    if (e.key === "Enter" || e.key === " " || e.key === "Spacebar") {
      e.preventDefault();
      openPicker();
    }
  });
  fileInput.addEventListener("change", function () {
    uploadAll(fileInput.files);
    fileInput.value = "";
  });

  function hasFiles(e) {
    var types = e.dataTransfer && e.dataTransfer.types;
    return !!types && Array.prototype.indexOf.call(types, "Files") >= 0;
  }

  var dragDepth = 0;
  document.addEventListener("dragenter", function (e) {
    if (hasFiles(e)) {
      dragDepth++;
      drop.classList.add("over");
    }
  });
  document.addEventListener("dragleave", function () {
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) {
      drop.classList.remove("over");
    }
  });
  document.addEventListener("dragover", function (e) {
    if (hasFiles(e)) {
      e.preventDefault();
      e.dataTransfer.dropEffect = "copy";
    }
  });
  document.addEventListener("drop", function (e) {
    dragDepth = 0;
    drop.classList.remove("over");
    if (e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files.length) {
      e.preventDefault();
      uploadAll(e.dataTransfer.files);
    }
  });

  document.addEventListener("paste", function (e) {
    var data = e.clipboardData;
    if (!data) {
      return;
    }
    var files = Array.prototype.slice.call(data.files || []);
    if (!files.length && data.items) {
      Array.prototype.forEach.call(data.items, function (item) {
        var f = item.kind === "file" ? item.getAsFile() : null;
        if (f) {
          files.push(f);
        }
      });
    }
    if (files.length) {
      e.preventDefault();
      uploadAll(files);
    }
  });
}());
