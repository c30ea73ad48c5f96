"""98x: the soak's verdict (t/soak/soak.py). It must fail against a server that is down
(no progress), against one that takes connections and never answers (hangs), and pass
against a healthy one, where its non-2xx answers are exactly the ones it provoked."""
import os
import socket
import subprocess
import sys

from harness import free_port
from harness.paths import ROOT

SOAK = os.path.join(ROOT, "t", "soak", "soak.py")


def soak(url, *args, timeout=120):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "t"))
    p = subprocess.run([sys.executable, SOAK, "--url", url] + list(args), env=env,
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def test_980_the_soak_fails_against_a_server_that_is_down():
    rc, out = soak("http://127.0.0.1:%d" % free_port(), "--clients", "2", "--minutes", "0.05")
    assert rc == 1, out
    assert "FAILED: no progress: not one 2xx answer" in out, out
    assert out.rstrip().endswith("soak: FAILED"), out


def test_981_the_soak_fails_against_a_server_that_never_answers():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)  # connections complete in the backlog; nothing is ever read
        port = listener.getsockname()[1]
        rc, out = soak("http://127.0.0.1:%d" % port, "--clients", "2", "--minutes", "0.03",
                       "--request-timeout", "1")
    assert rc == 1, out
    assert "FAILED: hangs:" in out, out
    assert "FAILED: no progress" in out, out


def test_982_the_soak_passes_against_a_healthy_server(httpd):
    rc, out = soak(httpd.url(""), "--clients", "4", "--minutes", "0.1", "--stall", "5")
    assert rc == 0, out
    assert out.rstrip().endswith("soak: ok"), out
