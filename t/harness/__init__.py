"""The test harness of mod_imgstore: used by the integration tests (t/integration), the
soak (t/soak) and the bench (bench/). Importable as `harness` with t/ on the module path
(t/integration/pytest.ini sets it for pytest; t/soak/run and bench/run set PYTHONPATH).

    paths      where the tree, the build and the programs are
    procs      processes, ports, temporary directories, stop-everything-at-exit
    pg         a private PostgreSQL cluster (Postgres), psql queries
    httpd      Apache httpd with the module (Httpd), round trips, children
    logpolicy  which error-log lines fail a test (the one place that says so)
    http       the one raw-socket HTTP client, assert_json_error
    multipart  the one multipart/form-data builder
    images     the real test images and images of a chosen size
    ids        hashes, tokens and row ids

The names below are re-exported so that a test says `from harness import ...`.
"""
from .httpd import (Httpd, assert_healthy, child_holding, children, own_server,  # noqa: F401
                    round_trip, write_key)
from .http import (CRLF, Answer, assert_json_error, chunked, connect, head_bytes,  # noqa: F401
                   parse, post, raw_http, read_answer, send, server_closed, split_at,
                   upload_head, wait_readable)
from .ids import HASH_RE, row_id, sql_id, token_of  # noqa: F401
from .images import bmp, image, png_chunk, png_of_size, read  # noqa: F401
from .multipart import file_part, form, multipart, new_boundary, one_file, part  # noqa: F401
from .paths import APACHE, ASAN, BUILD, CONF, DATA, MODULE, MPM, PGBIN, ROOT  # noqa: F401
from .pg import DB_PASSWORD, Postgres, as_postgres, query, rows  # noqa: F401
from . import procs  # noqa: F401
from .procs import (free_port, make_tmp, pid_alive, proc_status_kb, wait_gone,  # noqa: F401
                    wait_port, wait_until)
