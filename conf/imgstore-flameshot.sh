#!/bin/sh
# Flameshot: select a region, upload it to mod_imgstore, put the link on the clipboard.
# IMGSTORE_URL is the mount (e.g. https://img.example.com/img); Wayland: wl-copy for xclip.
# Bind it to a key, or paste the last line into a terminal. (Tested by t/integration/test_600.)
flameshot gui --raw | curl -sS --fail-with-body -F 'file=@-;filename=screenshot.png' -F ttl=1h -F strip_metadata=1 "${IMGSTORE_URL:-http://127.0.0.1:8080}/upload" | sed -n 's/.*"url":"\([^"]*\)".*/\1/p' | xclip -selection clipboard
