"""Where things are: the source tree, the build, the programs the harness runs."""
import os

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(ROOT, "t", "data")
PGBIN = "/usr/lib/postgresql/15/bin"
APACHE = os.environ.get("IMGSTORE_HTTPD", "/usr/sbin/apache2")
BUILD = os.environ.get("IMGSTORE_BUILDDIR", ROOT)
MODULE = os.environ.get("IMGSTORE_MODULE_SO", os.path.join(BUILD, ".libs", "mod_imgstore.so"))
# Set by t/integration/run-asan: httpd runs the AddressSanitizer + UBSan build.
ASAN = os.environ.get("IMGSTORE_ASAN") == "1"
# Set by t/integration/run-prefork: httpd runs the prefork MPM (default: event).
MPM = os.environ.get("IMGSTORE_MPM", "event")
CONF = os.path.join(ROOT, "conf", "dev-httpd.conf")
MIGRATE = os.path.join(ROOT, "sql", "imgstore-migrate")
