#!/bin/sh
# Container start: make a master key on first start, apply the migrations,
# write the site config from the environment, then run the command (Apache).
#
# Environment: POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_HOST (db),
# POSTGRES_PORT (5432), POSTGRES_DB (imgstore), IMGSTORE_TTL (5m),
# IMGSTORE_MAX_SIZE (10M), IMGSTORE_PORT (8080), IMGSTORE_KEY_DIR
# (/var/lib/imgstore), APACHE_CONFDIR (/etc/apache2),
# IMGSTORE_SQL_DIR (/usr/local/share/imgstore/sql).
set -eu

: "${POSTGRES_USER:?POSTGRES_USER is required}"
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}"
host=${POSTGRES_HOST:-db}
port=${POSTGRES_PORT:-5432}
db=${POSTGRES_DB:-imgstore}
keydir=${IMGSTORE_KEY_DIR:-/var/lib/imgstore}
confdir=${APACHE_CONFDIR:-/etc/apache2}
sqldir=${IMGSTORE_SQL_DIR:-/usr/local/share/imgstore/sql}
migrate=${IMGSTORE_MIGRATE:-imgstore-migrate}

case "$POSTGRES_PASSWORD$POSTGRES_USER$host$db" in
    *[\ \'\"\\]*) echo "imgstore: POSTGRES_* values must not contain spaces, quotes or backslashes" >&2; exit 1 ;;
esac

mkdir -p "$keydir"
if [ ! -s "$keydir/imgstore.key" ]; then
    (umask 077 && openssl rand -hex 32 >"$keydir/imgstore.key")
    echo "imgstore: generated a new master key in $keydir/imgstore.key"
fi
chown root:root "$keydir/imgstore.key"
chmod 0400 "$keydir/imgstore.key"

# Wait for PostgreSQL, then bring the schema up to date.
export PGPASSWORD="$POSTGRES_PASSWORD"
tries=0
until pg_isready -q -h "$host" -p "$port" -U "$POSTGRES_USER" -d "$db"; do
    tries=$((tries + 1))
    [ $tries -ge 60 ] && { echo "imgstore: PostgreSQL at $host:$port is not answering" >&2; exit 1; }
    sleep 1
done
"$migrate" --dir "$sqldir" -h "$host" -p "$port" -U "$POSTGRES_USER" -d "$db"
unset PGPASSWORD

cat >"$confdir/conf-available/imgstore-site.conf" <<CONF
# Written by the container entrypoint from the environment.
Listen ${IMGSTORE_PORT:-8080}
DBDriver pgsql
DBDParams "host=$host port=$port dbname=$db user=$POSTGRES_USER password=$POSTGRES_PASSWORD connect_timeout=3"
DBDMin 0
DBDKeep 4
DBDMax 10
ImgStoreKeyFile $keydir/imgstore.key
ImgStoreTTL ${IMGSTORE_TTL:-5m}
ImgStoreMaxSize ${IMGSTORE_MAX_SIZE:-10M}
<Location />
    SetHandler imgstore
    LimitRequestBody 1073741824
</Location>
CONF
chmod 0640 "$confdir/conf-available/imgstore-site.conf"
ln -sf ../conf-available/imgstore-site.conf "$confdir/conf-enabled/imgstore-site.conf"

exec "$@"
