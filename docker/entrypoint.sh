#!/bin/sh
# Container start: make a master key on first start, apply the migrations as
# the database owner (POSTGRES_USER), give the module its own role that can
# only read and write rows, write the site config from the environment, then
# run the command (Apache, logging to stdout/stderr).
#
# Environment (default):
#   POSTGRES_USER, POSTGRES_PASSWORD   the owner: runs the migrations, creates the module's role
#   POSTGRES_HOST (db), POSTGRES_PORT (5432), POSTGRES_DB (imgstore)
#   IMGSTORE_DB_USER (imgstore_web)    the module's role: SELECT, INSERT, UPDATE, DELETE only
#   IMGSTORE_DB_PASSWORD               its password (default: generated once, kept in the key dir)
#   IMGSTORE_TTL (5m), IMGSTORE_MAX_SIZE (10M), IMGSTORE_MAX_TOTAL, IMGSTORE_ALLOW_TYPES,
#   IMGSTORE_BASE_URL, IMGSTORE_CLEANUP_INTERVAL   the ImgStore directives (unset: the module's default)
#   IMGSTORE_DBD_MAX (10)              DBDMax: connections per Apache child
#   IMGSTORE_MOUNT (/)                 where the store is mounted
#   IMGSTORE_PORT (8080), IMGSTORE_KEY_DIR (/var/lib/imgstore), APACHE_CONFDIR (/etc/apache2),
#   IMGSTORE_SQL_DIR (/usr/share/imgstore/sql), IMGSTORE_MIGRATE (imgstore-migrate)
#   IMGSTORE_EXPIRY_KEY_FILE (/run/imgstore/expiry.key)   the expiry-key state file: Apache creates
#       it on first start. Deliberately NOT in the key volume: it must never be backed up, and
#       losing it (a new container) loses only the images still live (README, "Security model").
#   IMGSTORE_EXPIRY_KEY_PERIOD         ImgStoreExpiryKeyPeriod (unset: the module's default, 10m)
set -eu

: "${POSTGRES_USER:?POSTGRES_USER is required}"
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}"
host=${POSTGRES_HOST:-db}
port=${POSTGRES_PORT:-5432}
db=${POSTGRES_DB:-imgstore}
web=${IMGSTORE_DB_USER:-imgstore_web}
keydir=${IMGSTORE_KEY_DIR:-/var/lib/imgstore}
confdir=${APACHE_CONFDIR:-/etc/apache2}
sqldir=${IMGSTORE_SQL_DIR:-/usr/share/imgstore/sql}
migrate=${IMGSTORE_MIGRATE:-imgstore-migrate}
mount=${IMGSTORE_MOUNT:-/}

die() { echo "imgstore: $*" >&2; exit 1; }

# Values end up in the Apache config and in DBDParams: no spaces, quotes,
# backslashes or line breaks there (they could add directives).
for v in POSTGRES_USER POSTGRES_PASSWORD POSTGRES_HOST POSTGRES_PORT POSTGRES_DB IMGSTORE_DB_USER \
    IMGSTORE_DB_PASSWORD IMGSTORE_TTL IMGSTORE_MAX_SIZE IMGSTORE_MAX_TOTAL IMGSTORE_BASE_URL \
    IMGSTORE_CLEANUP_INTERVAL IMGSTORE_DBD_MAX IMGSTORE_MOUNT IMGSTORE_PORT \
    IMGSTORE_EXPIRY_KEY_FILE IMGSTORE_EXPIRY_KEY_PERIOD; do
    eval "val=\${$v:-}"
    case "$val" in
        *[!A-Za-z0-9._:/@+=-]*) die "$v must not contain spaces, quotes, backslashes or line breaks" ;;
    esac
done
case "${IMGSTORE_ALLOW_TYPES:-}" in
    *[!a-z0-9/\ ]*) die "IMGSTORE_ALLOW_TYPES takes type names separated by spaces" ;;
esac
[ "$web" != "$POSTGRES_USER" ] || die "IMGSTORE_DB_USER must not be the owner POSTGRES_USER"

# 64 hex digits from the kernel's random source (no openssl in the image).
random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

mkdir -p "$keydir"
if [ ! -s "$keydir/imgstore.key" ]; then
    (umask 077 && random_hex 32 >"$keydir/imgstore.key")
    echo "imgstore: generated a new master key in $keydir/imgstore.key"
fi
chown root:root "$keydir/imgstore.key"
chmod 0400 "$keydir/imgstore.key"
webpw=${IMGSTORE_DB_PASSWORD:-}
if [ -z "$webpw" ]; then
    [ -s "$keydir/db-password" ] || (umask 077 && random_hex 24 >"$keydir/db-password")
    webpw=$(cat "$keydir/db-password")
fi

# Wait for PostgreSQL, then, as the owner: the module's role, the schema, its rights.
export PGPASSWORD="$POSTGRES_PASSWORD"
tries=0
until pg_isready -q -h "$host" -p "$port" -U "$POSTGRES_USER" -d "$db"; do
    tries=$((tries + 1))
    [ $tries -ge 60 ] && die "PostgreSQL at $host:$port is not answering"
    sleep 1
done
psql -X -q -v ON_ERROR_STOP=1 -h "$host" -p "$port" -U "$POSTGRES_USER" -d "$db" \
    -v role="$web" -v pw="$webpw" <<'SQL'
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') AS missing \gset
\if :missing
CREATE ROLE :"role" LOGIN PASSWORD :'pw' NOSUPERUSER NOCREATEDB NOCREATEROLE;
\else
ALTER ROLE :"role" LOGIN PASSWORD :'pw';
\endif
SQL
"$migrate" --dir "$sqldir" --grant "$web" -h "$host" -p "$port" -U "$POSTGRES_USER" -d "$db"
unset PGPASSWORD

optional() { [ -z "$2" ] || echo "$1 $2"; }
expfile=${IMGSTORE_EXPIRY_KEY_FILE:-/run/imgstore/expiry.key}
(umask 077 && mkdir -p "$(dirname "$expfile")")
site="$confdir/conf-available/imgstore-site.conf"
(
    umask 077
    cat >"$site" <<CONF
# Written by the container entrypoint from the environment. Holds the
# module's database password: root only (Apache reads it as root).
Listen ${IMGSTORE_PORT:-8080}
DBDriver pgsql
DBDParams "host=$host port=$port dbname=$db user=$web password=$webpw connect_timeout=3"
DBDMin 0
DBDKeep 4
DBDMax ${IMGSTORE_DBD_MAX:-10}
ImgStoreKeyFile $keydir/imgstore.key
ImgStoreExpiryKeyFile $expfile
$(optional ImgStoreExpiryKeyPeriod "${IMGSTORE_EXPIRY_KEY_PERIOD:-}")
ImgStoreTTL ${IMGSTORE_TTL:-5m}
ImgStoreMaxSize ${IMGSTORE_MAX_SIZE:-10M}
$(optional ImgStoreMaxTotal "${IMGSTORE_MAX_TOTAL:-}")
$(optional ImgStoreAllowTypes "${IMGSTORE_ALLOW_TYPES:-}")
$(optional ImgStoreBaseURL "${IMGSTORE_BASE_URL:-}")
$(optional ImgStoreCleanupInterval "${IMGSTORE_CLEANUP_INTERVAL:-}")
<Location $mount>
    SetHandler imgstore
    LimitRequestBody 1073741824
</Location>
CONF
)
chown root:root "$site"
chmod 0600 "$site"
ln -sf ../conf-available/imgstore-site.conf "$confdir/conf-enabled/imgstore-site.conf"

exec "$@"
