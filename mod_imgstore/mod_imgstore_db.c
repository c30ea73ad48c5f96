/*
 * Database access through mod_dbd's pool: one connection per statement,
 * given back at once (ap_dbd_open/ap_dbd_close, never ap_dbd_acquire, which
 * would hold it until the whole answer has reached a possibly slow client).
 */
#include "mod_imgstore_db.h"

#include <apr_dbd.h>
#include <apr_optional.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <mod_dbd.h>

#include "imgstore_json.h"
#include "imgstore_store.h"
#include "mod_imgstore_response.h"
#include "mod_imgstore_status.h"

/*
 * What this child knows of the database. The conninfo is settled in
 * post_config; the rest is per child, under the mutex.
 */
static struct {
    const char *probe_conninfo; /* DBDParams, for PQping while the database is down */
    apr_thread_mutex_t *mutex;
    int down;      /* the last attempt found the database unreachable */
    int probing;   /* a thread is probing it (PQping) now */
    int schema_ok; /* 1 once the schema version matched */
    apr_time_t schema_retry_at;
} db;

static APR_OPTIONAL_FN_TYPE(ap_dbd_open) * dbd_open;
static APR_OPTIONAL_FN_TYPE(ap_dbd_close) * dbd_close;

/* The first DBDParams of the configuration: the top level's, else a virtual host's. */
static const char *find_dbd_params(apr_pool_t *p, const ap_directive_t *d, int depth)
{
    const char *found = NULL;

    for (; d != NULL && found == NULL; d = d->next) {
        if (!strcasecmp(d->directive, "DBDParams") && d->args != NULL) {
            const char *args = d->args;
            found = ap_getword_conf(p, &args);
        }
    }
    (void)depth;
    return found;
}

static const char *dbd_params_anywhere(apr_pool_t *p)
{
    const ap_directive_t *d;
    const char *found = find_dbd_params(p, ap_conftree, 0);

    for (d = ap_conftree; d != NULL && found == NULL; d = d->next) {
        if (d->first_child != NULL) {
            found = find_dbd_params(p, d->first_child, 1);
        }
    }
    return found;
}

int imgstore_db_post_config(apr_pool_t *pconf, server_rec *s)
{
    /*
     * While the database is down, a child probes it with PQping (no login,
     * nothing logged) and only then asks mod_dbd again, which logs two lines
     * per failed attempt: an outage costs one line per child, not a stream.
     */
    db.probe_conninfo = dbd_params_anywhere(pconf);
    dbd_open = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_open);
    dbd_close = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_close);
    if (dbd_open == NULL || dbd_close == NULL) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     IMGLOGNO(00010) "mod_dbd is not loaded: LoadModule dbd_module and configure "
                                     "DBDriver pgsql / DBDParams");
        return 0;
    }
    return 1;
}

apr_status_t imgstore_db_child_init(apr_pool_t *pchild, server_rec *s)
{
    db.down = 0;
    db.probing = 0;
    db.schema_ok = 0;
    db.schema_retry_at = 0;
    return apr_thread_mutex_create(&db.mutex, APR_THREAD_MUTEX_DEFAULT, pchild);
}

int imgstore_db_is_down(void)
{
    int down;

    apr_thread_mutex_lock(db.mutex);
    down = db.down;
    apr_thread_mutex_unlock(db.mutex);
    return down;
}

/*
 * Whether this thread may try the database now. While it is known down, the
 * first request probes it (PQping: no login, nothing logged) and goes on if
 * it answers, so no request fails once the database is back; requests that
 * arrive while a probe is in flight (a database that never answers holds it
 * for connect_timeout) answer 503 at once.
 */
static int db_may_try(void)
{
    const char *conninfo;
    int down, probe, ok;

    apr_thread_mutex_lock(db.mutex);
    down = db.down;
    probe = down && !db.probing;
    if (probe) {
        db.probing = 1;
    }
    conninfo = db.probe_conninfo;
    apr_thread_mutex_unlock(db.mutex);
    if (!down) {
        return 1;
    }
    if (!probe) {
        return 0;
    }
    ok = conninfo == NULL || PQping(conninfo) == PQPING_OK;
    apr_thread_mutex_lock(db.mutex);
    db.probing = 0;
    apr_thread_mutex_unlock(db.mutex);
    return ok;
}

/* Log the transition to "down" once; later failed attempts stay quiet. */
static void db_mark_down(server_rec *s, const char *why)
{
    int was_down;

    apr_thread_mutex_lock(db.mutex);
    was_down = db.down;
    db.down = 1;
    apr_thread_mutex_unlock(db.mutex);
    if (!was_down) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     IMGLOGNO(00011) "database unavailable (%s); answering 503, and probing it "
                                     "on the next requests",
                     why);
    }
}

static void db_mark_up(server_rec *s)
{
    int was_down;

    apr_thread_mutex_lock(db.mutex);
    was_down = db.down;
    db.down = 0;
    apr_thread_mutex_unlock(db.mutex);
    if (was_down) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, IMGLOGNO(00015) "database reachable again");
    }
}

/* The schema check runs once per child when it succeeds, and at most every retry period if not. */
static imgstore_status_e check_schema(server_rec *s, PGconn *conn, apr_pool_t *p, const char **err)
{
    apr_time_t now = apr_time_now();
    imgstore_status_e st;
    int ok, version = 0, log = 0;

    apr_thread_mutex_lock(db.mutex);
    ok = db.schema_ok;
    if (!ok && now < db.schema_retry_at) {
        apr_thread_mutex_unlock(db.mutex);
        *err = "database schema is not up to date";
        return IMGSTORE_SCHEMA;
    }
    apr_thread_mutex_unlock(db.mutex);
    if (ok) {
        return IMGSTORE_OK;
    }

    st = imgstore_store_schema_version(conn, p, &version, err);
    if (st == IMGSTORE_OK && version < IMGSTORE_SCHEMA_VERSION) {
        st = IMGSTORE_SCHEMA;
        *err = apr_psprintf(p, "schema version %d, this module needs %d", version,
                            IMGSTORE_SCHEMA_VERSION);
    }
    if (st == IMGSTORE_CONN) {
        return st;
    }
    apr_thread_mutex_lock(db.mutex);
    if (st == IMGSTORE_OK) {
        db.schema_ok = 1;
    } else if (now >= db.schema_retry_at) {
        db.schema_retry_at = now + apr_time_from_sec(IMGSTORE_DB_RETRY_SECONDS);
        log = 1;
    }
    apr_thread_mutex_unlock(db.mutex);
    if (log) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     IMGLOGNO(00012) "database schema is behind (%s): run sql/imgstore-migrate "
                                     "against the database; answering 503 until then",
                     *err);
    }
    if (st != IMGSTORE_OK) {
        st = IMGSTORE_SCHEMA;
    }
    return st;
}

/*
 * A pooled connection whose server went away still says CONNECTION_OK until
 * it is used; reading what is pending (never blocks) reveals the EOF, and a
 * reset then reconnects before any statement is wasted on it.
 */
static PGconn *live_conn(ap_dbd_t *dbd)
{
    PGconn *conn;

    if (strcmp(apr_dbd_name(dbd->driver), "pgsql") != 0) {
        return NULL;
    }
    conn = apr_dbd_native_handle(dbd->driver, dbd->handle);
    if (conn == NULL) {
        return NULL;
    }
    if (!PQconsumeInput(conn) || PQstatus(conn) != CONNECTION_OK) {
        PQreset(conn);
        if (PQstatus(conn) != CONNECTION_OK) {
            return NULL;
        }
    }
    return conn;
}

imgstore_status_e imgstore_db_run(server_rec *s, apr_pool_t *p, imgstore_db_op_fn *op, void *baton,
                                  const char **err)
{
    imgstore_status_e st = IMGSTORE_CONN;
    int attempt;

    *err = "database unavailable";
    if (!db_may_try()) {
        return IMGSTORE_CONN;
    }
    for (attempt = 0; attempt < 2; attempt++) {
        ap_dbd_t *dbd = dbd_open(p, s);
        PGconn *conn;

        if (dbd == NULL) {
            db_mark_down(s, "no connection from mod_dbd's pool; see its error above");
            *err = "database unavailable";
            return IMGSTORE_CONN;
        }
        conn = live_conn(dbd);
        if (conn == NULL) {
            dbd_close(s, dbd);
            if (strcmp(apr_dbd_name(dbd->driver), "pgsql") != 0) {
                ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                             IMGLOGNO(00013) "DBDriver is %s: mod_imgstore needs pgsql",
                             apr_dbd_name(dbd->driver));
                *err = "database driver is not pgsql";
                imgstore_status_count(IMGSTORE_COUNTER_DB_ERRORS, 1);
                return IMGSTORE_ERROR;
            }
            db_mark_down(s, "cannot reconnect");
            *err = "database unavailable";
            return IMGSTORE_CONN;
        }
        st = check_schema(s, conn, p, err);
        if (st == IMGSTORE_OK) {
            st = op(conn, p, baton, err);
        }
        dbd_close(s, dbd);
        if (st != IMGSTORE_CONN) {
            db_mark_up(s);
            if (st == IMGSTORE_ERROR) {
                imgstore_status_count(IMGSTORE_COUNTER_DB_ERRORS, 1);
            }
            return st;
        }
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                     IMGLOGNO(00014) "database connection broken (%s); %s", *err,
                     attempt == 0 ? "retrying on a fresh one" : "giving up");
    }
    db_mark_down(s, *err);
    return st;
}

static imgstore_status_e op_health(PGconn *conn, apr_pool_t *p, void *baton, const char **err)
{
    int *version = baton;
    return imgstore_store_schema_version(conn, p, version, err);
}

int imgstore_db_handle_health(request_rec *r)
{
    imgstore_json_t *j = imgstore_json_object(r->pool);
    int version = 0;
    const char *err = NULL, *body;
    apr_size_t len;
    imgstore_status_e st = imgstore_db_run(r->server, r->pool, op_health, &version, &err);

    if (st == IMGSTORE_OK) {
        imgstore_json_add_str(j, "status", "ok");
        imgstore_json_add_str(j, "database", "ok");
        imgstore_json_add_int(j, "schema_version", version);
        body = imgstore_json_finish(j, &len);
        return imgstore_response_json(r, HTTP_OK, body, len);
    }
    imgstore_json_add_str(j, "status", "unavailable");
    imgstore_json_add_str(j, "database",
                          st == IMGSTORE_SCHEMA ? "schema out of date" : "unreachable");
    body = imgstore_json_finish(j, &len);
    apr_table_setn(r->headers_out, "Retry-After", apr_itoa(r->pool, IMGSTORE_RETRY_AFTER_SECONDS));
    return imgstore_response_json(r, HTTP_SERVICE_UNAVAILABLE, body, len);
}
