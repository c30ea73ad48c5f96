"""92x: named statements on libpq connections (mod_imgstore/imgstore_stmt.c), against this
suite's PostgreSQL: the Check program t/unit/test_stmt runs its cases on a real server."""
import os
import subprocess

from conftest import ROOT


def test_920_named_statements_prepare_once_and_survive_resets_and_drops(pg):
    build = os.environ.get("IMGSTORE_BUILDDIR", ROOT)
    prog = os.path.join(build, "t", "unit", "test_stmt")
    assert os.path.exists(prog), "%s is missing (make check builds it)" % prog
    env = dict(os.environ, IMGSTORE_TEST_CONNINFO=pg.dbparams, CK_FORK="yes")
    p = subprocess.run([prog], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "100%: Checks: 6, Failures: 0, Errors: 0" in p.stdout, p.stdout
