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

#include <errno.h>
#include <sys/mman.h>

#include "imgstore_json.h"
#include "imgstore_store.h"
#include "mod_imgstore_config.h"
#include "mod_imgstore_response.h"
#include "mod_imgstore_status.h"

/*
 * What this child knows of each database in use. Databases are told apart as
 * mod_dbd tells its connection pools apart: by DBDriver and DBDParams, a
 * virtual host without its own inheriting the main server's. The list is
 * settled in post_config; the state is per child, under the one mutex.
 */
struct imgstore_db_t {
    const char *driver;
    const char *conninfo; /* DBDParams, for PQping while the database is down */
    server_rec *s;        /* the first server using it: passes of the timer borrow from its pool */
    apr_int64_t min_interval; /* the shortest ImgStoreCleanupInterval among its servers */
    int down;                 /* the last attempt found the database unreachable */
    int probing;              /* a thread is probing it (PQping) now */
    int schema_ok;            /* 1 once the schema version matched */
    apr_time_t schema_retry_at;
    apr_time_t next_request_cleanup; /* see mod_imgstore_cleanup.c */
    apr_time_t next_timer_cleanup;
    imgstore_db_shared_t *shared; /* one block for the whole host (every child) */
};

static struct {
    apr_thread_mutex_t *mutex;
    apr_array_header_t *all; /* imgstore_db_t *, one per database in use */
} db;

static APR_OPTIONAL_FN_TYPE(ap_dbd_open) * dbd_open;
static APR_OPTIONAL_FN_TYPE(ap_dbd_close) * dbd_close;

/* The last DBDriver / DBDParams given in a section, outside nested <VirtualHost>s. */
static void find_dbd(apr_pool_t *p, const ap_directive_t *d, const char **driver,
                     const char **params)
{
    for (; d != NULL; d = d->next) {
        const char *args = d->args;

        if (!strcasecmp(d->directive, "<VirtualHost")) {
            continue;
        }
        if (!strcasecmp(d->directive, "DBDParams") && args != NULL) {
            *params = ap_getword_conf(p, &args);
        } else if (!strcasecmp(d->directive, "DBDriver") && args != NULL) {
            *driver = ap_getword_conf(p, &args);
        } else if (d->first_child != NULL) {
            find_dbd(p, d->first_child, driver, params);
        }
    }
}

/* The <VirtualHost> section that defined virtual host v, found where v says it began. */
static const ap_directive_t *vhost_section(const ap_directive_t *d, const server_rec *v)
{
    const ap_directive_t *found = NULL;

    for (; d != NULL && found == NULL; d = d->next) {
        if (!strcasecmp(d->directive, "<VirtualHost") && d->line_num == (int)v->defn_line_number &&
            d->filename != NULL && v->defn_name != NULL && !strcmp(d->filename, v->defn_name)) {
            return d;
        }
        if (d->first_child != NULL && strcasecmp(d->directive, "<VirtualHost")) {
            found = vhost_section(d->first_child, v);
        }
    }
    return found;
}

static apr_status_t unmap_shared(void *data)
{
    apr_array_header_t *all = data;

    munmap(APR_ARRAY_IDX(all, 0, imgstore_db_t *)->shared,
           sizeof(imgstore_db_shared_t) * (apr_size_t)all->nelts);
    return APR_SUCCESS;
}

/* Settle which database each server uses; 0 after logging why startup must fail. */
static int map_databases(apr_pool_t *pconf, server_rec *s)
{
    const char *main_driver = NULL, *main_params = "";
    server_rec *v;
    imgstore_db_shared_t *shared;
    int i;

    db.all = apr_array_make(pconf, 2, sizeof(imgstore_db_t *));
    find_dbd(pconf, ap_conftree, &main_driver, &main_params);
    for (v = s; v != NULL; v = v->next) {
        const char *driver = main_driver, *params = main_params;
        imgstore_settings_t *set = (imgstore_settings_t *)imgstore_conf_settings(v);
        imgstore_db_t *d = NULL;

        if (v != s) {
            const ap_directive_t *sec = vhost_section(ap_conftree, v);
            const char *own_driver = NULL, *own_params = NULL;

            if (sec != NULL) {
                find_dbd(pconf, sec->first_child, &own_driver, &own_params);
            }
            driver = own_driver ? own_driver : driver;
            params = own_params ? own_params : params;
        }
        if (driver == NULL) {
            continue; /* no DBDriver: a mount here answers 503, and no timer pass runs for it */
        }
        for (i = 0; i < db.all->nelts && d == NULL; i++) {
            imgstore_db_t *e = APR_ARRAY_IDX(db.all, i, imgstore_db_t *);
            if (!strcmp(e->driver, driver) && !strcmp(e->conninfo, params)) {
                d = e;
            }
        }
        if (d == NULL) {
            d = apr_pcalloc(pconf, sizeof(*d));
            d->driver = driver;
            d->conninfo = params;
            d->s = v;
            d->min_interval = set->cleanup_interval;
            APR_ARRAY_PUSH(db.all, imgstore_db_t *) = d;
        }
        if (set->cleanup_interval < d->min_interval) {
            d->min_interval = set->cleanup_interval;
        }
        set->db = d;
    }
    if (db.all->nelts == 0) {
        return 1;
    }
    /* What GET /cleanup remembers of the last forced pass, shared by every child. */
    shared = mmap(NULL, sizeof(*shared) * (apr_size_t)db.all->nelts, PROT_READ | PROT_WRITE,
                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, errno, s,
                     IMGLOGNO(00200) "cannot map shared memory for the databases' state");
        return 0;
    }
    memset(shared, 0, sizeof(*shared) * (apr_size_t)db.all->nelts);
    for (i = 0; i < db.all->nelts; i++) {
        APR_ARRAY_IDX(db.all, i, imgstore_db_t *)->shared = &shared[i];
    }
    apr_pool_cleanup_register(pconf, db.all, unmap_shared, apr_pool_cleanup_null);
    return 1;
}

int imgstore_db_post_config(apr_pool_t *pconf, server_rec *s)
{
    /*
     * While a database is down, a child probes it with PQping (no login,
     * nothing logged) and only then asks mod_dbd again, which logs two lines
     * per failed attempt: an outage costs one line per child, not a stream.
     */
    dbd_open = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_open);
    dbd_close = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_close);
    if (dbd_open == NULL || dbd_close == NULL) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     IMGLOGNO(00010) "mod_dbd is not loaded: LoadModule dbd_module and configure "
                                     "DBDriver pgsql / DBDParams");
        return 0;
    }
    return map_databases(pconf, s);
}

apr_status_t imgstore_db_child_init(apr_pool_t *pchild, server_rec *s)
{
    int i;

    for (i = 0; db.all != NULL && i < db.all->nelts; i++) {
        imgstore_db_t *d = APR_ARRAY_IDX(db.all, i, imgstore_db_t *);
        d->down = 0;
        d->probing = 0;
        d->schema_ok = 0;
        d->schema_retry_at = 0;
        d->next_request_cleanup = 0;
        d->next_timer_cleanup = 0;
    }
    return apr_thread_mutex_create(&db.mutex, APR_THREAD_MUTEX_DEFAULT, pchild);
}

imgstore_db_t *imgstore_db_of(const server_rec *s)
{
    return imgstore_conf_settings(s)->db;
}

int imgstore_db_count(void)
{
    return db.all ? db.all->nelts : 0;
}

imgstore_db_t *imgstore_db_at(int i)
{
    return APR_ARRAY_IDX(db.all, i, imgstore_db_t *);
}

server_rec *imgstore_db_server(const imgstore_db_t *d)
{
    return d->s;
}

apr_int64_t imgstore_db_min_interval(const imgstore_db_t *d)
{
    return d->min_interval;
}

imgstore_db_shared_t *imgstore_db_shared(imgstore_db_t *d)
{
    return d->shared;
}

int imgstore_db_due(imgstore_db_t *d, int timer, apr_int64_t interval)
{
    apr_time_t now = apr_time_now(), *next;
    int due;

    apr_thread_mutex_lock(db.mutex);
    next = timer ? &d->next_timer_cleanup : &d->next_request_cleanup;
    due = now >= *next && !d->down;
    if (due) {
        *next = now + apr_time_from_sec(interval);
    }
    apr_thread_mutex_unlock(db.mutex);
    return due;
}

int imgstore_db_is_down(const imgstore_db_t *d)
{
    int down;

    apr_thread_mutex_lock(db.mutex);
    down = d->down;
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
static int db_may_try(imgstore_db_t *d)
{
    int down, probe, ok;

    apr_thread_mutex_lock(db.mutex);
    down = d->down;
    probe = down && !d->probing;
    if (probe) {
        d->probing = 1;
    }
    apr_thread_mutex_unlock(db.mutex);
    if (!down) {
        return 1;
    }
    if (!probe) {
        return 0;
    }
    ok = *d->conninfo == '\0' || PQping(d->conninfo) == PQPING_OK;
    apr_thread_mutex_lock(db.mutex);
    d->probing = 0;
    apr_thread_mutex_unlock(db.mutex);
    return ok;
}

/* Log the transition to "down" once; later failed attempts stay quiet. */
static void db_mark_down(imgstore_db_t *d, server_rec *s, const char *why)
{
    int was_down;

    apr_thread_mutex_lock(db.mutex);
    was_down = d->down;
    d->down = 1;
    apr_thread_mutex_unlock(db.mutex);
    if (!was_down) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     IMGLOGNO(00011) "database unavailable (%s); answering 503, and probing it "
                                     "on the next requests",
                     why);
    }
}

static void db_mark_up(imgstore_db_t *d, server_rec *s)
{
    int was_down;

    apr_thread_mutex_lock(db.mutex);
    was_down = d->down;
    d->down = 0;
    apr_thread_mutex_unlock(db.mutex);
    if (was_down) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, IMGLOGNO(00015) "database reachable again");
    }
}

/* The schema check runs once per child when it succeeds, and at most every retry period if not. */
static imgstore_status_e check_schema(imgstore_db_t *d, server_rec *s, PGconn *conn, apr_pool_t *p,
                                      const char **err)
{
    apr_time_t now = apr_time_now();
    imgstore_status_e st;
    int ok, version = 0, log = 0;

    apr_thread_mutex_lock(db.mutex);
    ok = d->schema_ok;
    if (!ok && now < d->schema_retry_at) {
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
        d->schema_ok = 1;
    } else if (now >= d->schema_retry_at) {
        d->schema_retry_at = now + apr_time_from_sec(IMGSTORE_DB_RETRY_SECONDS);
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

    imgstore_db_t *d = imgstore_db_of(s);

    *err = "database unavailable";
    if (d == NULL) {
        *err = "no DBDriver configured for this server";
        return IMGSTORE_CONN;
    }
    if (!db_may_try(d)) {
        return IMGSTORE_CONN;
    }
    for (attempt = 0; attempt < 2; attempt++) {
        ap_dbd_t *dbd = dbd_open(p, s);
        PGconn *conn;

        if (dbd == NULL) {
            db_mark_down(d, s, "no connection from mod_dbd's pool; see its error above");
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
            db_mark_down(d, s, "cannot reconnect");
            *err = "database unavailable";
            return IMGSTORE_CONN;
        }
        st = check_schema(d, s, conn, p, err);
        if (st == IMGSTORE_OK) {
            st = op(conn, p, baton, err);
        }
        dbd_close(s, dbd);
        if (st != IMGSTORE_CONN) {
            db_mark_up(d, s);
            if (st == IMGSTORE_ERROR) {
                imgstore_status_count(IMGSTORE_COUNTER_DB_ERRORS, 1);
            }
            return st;
        }
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                     IMGLOGNO(00014) "database connection broken (%s); %s", *err,
                     attempt == 0 ? "retrying on a fresh one" : "giving up");
    }
    db_mark_down(d, s, *err);
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
