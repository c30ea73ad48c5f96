/*
 * Deleting expired rows. Three triggers share one pass function:
 * - a mod_watchdog singleton timer (one runner per host) every ImgStoreCleanupInterval;
 * - requests: each child tries the claim at most once per interval, after
 *   the answer went out, so cleanup keeps pace even with the timer off;
 * - GET /cleanup forces a pass now.
 * The claim in imgstore_state makes it one pass per interval across every
 * host sharing the database; passes running at once skip each other's rows.
 */
#include "mod_imgstore_cleanup.h"

#include <ap_mpm.h>
#include <http_protocol.h>
#include <mod_watchdog.h>

#include <apr_optional.h>
#include <apr_strings.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>

#include "imgstore_json.h"
#include "imgstore_sweep.h"
#include "mod_imgstore_cache.h"
#include "mod_imgstore_config.h"
#include "mod_imgstore_db.h"
#include "mod_imgstore_response.h"
#include "mod_imgstore_status.h"

#define BATCH_ROWS 1000
/* A delete transaction also stops at this many bytes of images (past its first row). */
#define BATCH_BYTES (32 * 1024 * 1024)
/* A request-triggered pass keeps its worker thread only briefly. */
#define REQUEST_BUDGET_MS 500
#define TIMER_BUDGET_MS 5000
/* At most this many passes back to back on one tick (a minute of deleting). */
#define CATCH_UP_PASSES 12
#define WATCHDOG_NAME "_imgstore_cleanup_"
/* GET /cleanup may take a while: it is asked for. */
#define HANDLER_BUDGET_MS 5000
/* GET /cleanup forces a pass at most this often per database, for the whole host. */
#define FORCED_MIN_MS 2000

/* This child's cleanup progress, under the mutex (when a pass is due: per database, in db.c). */
static struct {
    apr_thread_mutex_t *mutex;
    int running;
    apr_thread_cond_t *cond; /* signalled when a pass ends */
    int stopping;            /* set once pchild starts going away: no pass may start */
    int next_batch;          /* the batch size the last pass ended with (atomic) */
} cl;

typedef struct {
    imgstore_sweep_t sweep;
    imgstore_sweep_result_t res;
} pass_baton_t;

static imgstore_status_e op_pass(PGconn *conn, apr_pool_t *p, void *baton, const char **err)
{
    pass_baton_t *b = baton;
    imgstore_status_e st = imgstore_sweep_run(conn, p, &b->sweep, &b->res, err);

    if (b->res.ran) {
        imgstore_status_count(IMGSTORE_COUNTER_CLEANUP_PASSES, 1);
        imgstore_status_count(IMGSTORE_COUNTER_ROWS_DELETED, (apr_uint64_t)b->res.deleted);
    }
    if (b->res.measured) {
        imgstore_status_set_oldest_expired(b->res.oldest_expired_age);
    }
    return st;
}

/* One pass now (force) or only if this interval's pass is unclaimed. */
static imgstore_status_e run_pass(server_rec *s, apr_pool_t *p, int force, apr_int64_t budget_ms,
                                  apr_int64_t *deleted, int *backlog, const char **err)
{
    const imgstore_settings_t *set = imgstore_conf_settings(s);
    pass_baton_t b;
    imgstore_status_e st;

    memset(&b, 0, sizeof(b));
    *deleted = 0;
    if (set->db == NULL) {
        *err = "no DBDriver configured for this server";
        return IMGSTORE_CONN;
    }
    b.sweep.now = imgstore_now();
    /* Servers sharing a database share its claim: the shortest interval among them. */
    b.sweep.interval = imgstore_db_min_interval(set->db);
    b.sweep.force = force;
    b.sweep.batch = BATCH_ROWS;
    b.sweep.batch_bytes = BATCH_BYTES;
    b.sweep.start_batch = __atomic_load_n(&cl.next_batch, __ATOMIC_RELAXED);
    b.sweep.budget_ms = budget_ms;
    /* A stopping child ends the pass after the batch in hand (see child_stopping). */
    b.sweep.stop = &cl.stopping;
    b.sweep.max_total = set->max_total;
    /* Rows deleted here leave this host's shmcb caches too, as on delete and last view. */
    if (imgstore_cache_local_any()) {
        b.sweep.gone = imgstore_cache_purge_local;
        b.sweep.gone_ctx = p;
    }
    st = imgstore_db_run(s, p, op_pass, &b, err);
    *deleted = b.res.deleted;
    *backlog = b.res.backlog;
    if (b.res.ran) {
        __atomic_store_n(&cl.next_batch, b.res.next_batch, __ATOMIC_RELAXED);
    }
    if (b.res.skipped > 0) {
        ap_log_error(
            APLOG_MARK, APLOG_WARNING, 0, s,
            IMGLOGNO(00150) "cleanup stepped over %d expired images it could not delete "
                            "within its time, even one at a time; a later pass tries again",
            b.res.skipped);
    }
    if (b.res.deleted > 0) {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s,
                     IMGLOGNO(00050) "cleanup deleted %" APR_INT64_T_FMT " expired images "
                                     "(database of %s)",
                     b.res.deleted, s->server_hostname ? s->server_hostname : "the main server");
    }
    if (st == IMGSTORE_NOTFOUND) {
        st = IMGSTORE_OK; /* another host or child had this interval's pass */
    }
    return st;
}

/*
 * At most one pass per child at a time, whatever triggered it, and none once
 * the child has started to go away (pchild's pre-cleanup below waits for the
 * one in progress).
 */
static int pass_begin(void)
{
    int mine;

    if (__atomic_load_n(&cl.stopping, __ATOMIC_ACQUIRE)) {
        return 0;
    }
    apr_thread_mutex_lock(cl.mutex);
    mine = !cl.running && !cl.stopping;
    if (mine) {
        cl.running = 1;
    }
    apr_thread_mutex_unlock(cl.mutex);
    return mine;
}

static void pass_end(void)
{
    apr_thread_mutex_lock(cl.mutex);
    cl.running = 0;
    if (cl.cond != NULL) {
        apr_thread_cond_broadcast(cl.cond);
    }
    apr_thread_mutex_unlock(cl.mutex);
}

void imgstore_cleanup_after_request(request_rec *r)
{
    imgstore_db_t *d = imgstore_db_of(r->server);
    apr_int64_t deleted;
    const char *err = NULL;
    int due, backlog = 0, mpm_state = AP_MPMQ_RUNNING;
    imgstore_status_e st;

    /* A stopping child tears down mod_dbd's pool: start no database work then. */
    if (ap_mpm_query(AP_MPMQ_MPM_STATE, &mpm_state) == APR_SUCCESS &&
        mpm_state == AP_MPMQ_STOPPING) {
        return;
    }

    if (d == NULL || imgstore_db_is_down(d) || !pass_begin()) {
        return;
    }
    due = imgstore_db_due(d, 0, imgstore_conf_settings(r->server)->cleanup_interval);
    if (!due) {
        pass_end();
        return;
    }
    st = run_pass(r->server, r->pool, 0, REQUEST_BUDGET_MS, &deleted, &backlog, &err);
    pass_end();
    if (st != IMGSTORE_OK && st != IMGSTORE_CONN && st != IMGSTORE_SCHEMA) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, IMGLOGNO(00051) "cleanup pass failed: %s",
                      err ? err : "unknown");
    }
}

/*
 * A pre-cleanup of pchild: it runs before pchild's subpools (mod_dbd's
 * connection pool among them) and our mutex go. mod_watchdog's timer thread
 * lives on pconf and is never joined in a child: a tick still running when
 * pchild is destroyed had its borrowed connection PQfinish()ed under it and
 * made apr_reslist's cleanup abort (assertion rl->ntotal == 0). No pass starts
 * after this point, and the one in progress finishes on its connection first.
 */
static apr_status_t child_stopping(void *data)
{
    (void)data;

    apr_thread_mutex_lock(cl.mutex);
    __atomic_store_n(&cl.stopping, 1, __ATOMIC_RELEASE);
    if (cl.cond != NULL) {
        apr_thread_cond_broadcast(cl.cond);
    }
    while (cl.running) {
        if (cl.cond != NULL) {
            apr_thread_cond_wait(cl.cond, cl.mutex);
        } else {
            apr_thread_mutex_unlock(cl.mutex);
            apr_sleep(apr_time_from_msec(10));
            apr_thread_mutex_lock(cl.mutex);
        }
    }
    apr_thread_mutex_unlock(cl.mutex);
    return APR_SUCCESS;
}

apr_status_t imgstore_cleanup_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_status_t rv;

    cl.running = 0;
    rv = apr_thread_mutex_create(&cl.mutex, APR_THREAD_MUTEX_DEFAULT, pchild);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    cl.stopping = 0;
    cl.cond = NULL;
    rv = apr_thread_cond_create(&cl.cond, pchild);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s,
                     IMGLOGNO(00055) "cannot create a condition variable; a stopping child "
                                     "polls for the end of a cleanup pass");
        cl.cond = NULL;
    }
    apr_pool_pre_cleanup_register(pchild, NULL, child_stopping);
    return APR_SUCCESS;
}

/* The timer's passes over one database. */
static void tick_database(imgstore_db_t *d, apr_pool_t *pool)
{
    server_rec *s = imgstore_db_server(d);
    apr_int64_t deleted;
    const char *err = NULL;
    imgstore_status_e st = IMGSTORE_OK;
    int pass, backlog = 0;

    if (!imgstore_db_due(d, 1, imgstore_db_min_interval(d))) {
        return;
    }
    /*
     * A pass that used its whole budget left a backlog:
     * uploads outpace one pass per interval. Go on at once (forcing the
     * claim, since this interval's is ours) until it is gone, the child
     * stops, or CATCH_UP_PASSES have run and the next tick takes over.
     */
    for (pass = 0; pass < CATCH_UP_PASSES; pass++) {
        st = run_pass(s, pool, pass > 0, TIMER_BUDGET_MS, &deleted, &backlog, &err);
        if (st != IMGSTORE_OK || deleted == 0 || !backlog ||
            __atomic_load_n(&cl.stopping, __ATOMIC_ACQUIRE)) {
            break;
        }
    }
    if (st != IMGSTORE_OK && st != IMGSTORE_CONN && st != IMGSTORE_SCHEMA) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, IMGLOGNO(00052) "cleanup pass failed: %s",
                     err ? err : "unknown");
    }
}

/* The host's one timer serves every database in use, each on its own interval. */
static apr_status_t watchdog_tick(int state, void *data, apr_pool_t *pool)
{
    int i;

    (void)data;
    if (state != AP_WATCHDOG_STATE_RUNNING || !pass_begin()) {
        return APR_SUCCESS;
    }
    for (i = 0; i < imgstore_db_count() && !__atomic_load_n(&cl.stopping, __ATOMIC_ACQUIRE); i++) {
        apr_pool_t *sub;

        if (apr_pool_create(&sub, pool) != APR_SUCCESS) {
            break;
        }
        tick_database(imgstore_db_at(i), sub);
        apr_pool_destroy(sub);
    }
    pass_end();
    return APR_SUCCESS;
}

void imgstore_cleanup_post_config(apr_pool_t *pconf, server_rec *s)
{
    APR_OPTIONAL_FN_TYPE(ap_watchdog_get_instance) * get_instance;
    APR_OPTIONAL_FN_TYPE(ap_watchdog_register_callback) * register_callback;
    ap_watchdog_t *wd = NULL;
    apr_int64_t interval = 0;
    apr_status_t rv;
    int i;

    /* A tick at the shortest interval of any database; none without a database. */
    for (i = 0; i < imgstore_db_count(); i++) {
        apr_int64_t v = imgstore_db_min_interval(imgstore_db_at(i));
        interval = interval == 0 || v < interval ? v : interval;
    }
    if (interval == 0) {
        return;
    }
    get_instance = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_get_instance);
    register_callback = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_register_callback);
    if (get_instance == NULL || register_callback == NULL) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     IMGLOGNO(00053) "mod_watchdog is not available: expired images are "
                                     "deleted only by requests and GET /cleanup");
        return;
    }
    /* A child singleton: one timer per host, in whichever child holds the watchdog mutex. */
    rv = get_instance(&wd, WATCHDOG_NAME, 0, 1, pconf);
    if (rv == APR_SUCCESS) {
        rv = register_callback(wd, apr_time_from_sec(interval), s, watchdog_tick);
    }
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s,
                     IMGLOGNO(00054) "cannot register the cleanup timer with mod_watchdog");
    }
}

/*
 * GET /cleanup: a forced pass at most once per FORCED_MIN_MS per database for
 * the whole host; a call within that answers from shared memory, without the
 * database: {"deleted": 0, "forced": false, "last_forced_deleted": n}.
 */
int imgstore_cleanup_handle(request_rec *r)
{
    imgstore_db_t *d = imgstore_db_of(r->server);
    imgstore_db_shared_t *sh = d ? imgstore_db_shared(d) : NULL;
    imgstore_json_t *j;
    apr_int64_t deleted = 0;
    apr_time_t now = apr_time_now(), last;
    const char *err = NULL, *body;
    apr_size_t len;
    imgstore_status_e st;
    int forced = 0, backlog = 0;

    if (sh != NULL && !imgstore_db_is_down(d)) {
        last = __atomic_load_n(&sh->last_forced, __ATOMIC_ACQUIRE);
        forced = (last == 0 || now - last >= apr_time_from_msec(FORCED_MIN_MS) || now < last) &&
                 __atomic_compare_exchange_n(&sh->last_forced, &last, now, 0, __ATOMIC_ACQ_REL,
                                             __ATOMIC_ACQUIRE);
    }
    if (!forced && sh != NULL && !imgstore_db_is_down(d)) {
        j = imgstore_json_object(r->pool);
        imgstore_json_add_int(j, "deleted", 0);
        imgstore_json_add_bool(j, "forced", 0);
        imgstore_json_add_int(j, "last_forced_deleted",
                              __atomic_load_n(&sh->last_deleted, __ATOMIC_ACQUIRE));
        body = imgstore_json_finish(j, &len);
        return imgstore_response_json(r, HTTP_OK, body, len);
    }
    st = run_pass(r->server, r->pool, 1, HANDLER_BUDGET_MS, &deleted, &backlog, &err);
    if (st != IMGSTORE_OK) {
        if (forced) {
            /* Failed: the next call may force again at once. */
            __atomic_store_n(&sh->last_forced, 0, __ATOMIC_RELEASE);
        }
        return imgstore_response_fail(r, st, NULL, err);
    }
    if (forced) {
        __atomic_store_n(&sh->last_deleted, deleted, __ATOMIC_RELEASE);
    }
    j = imgstore_json_object(r->pool);
    imgstore_json_add_int(j, "deleted", deleted);
    imgstore_json_add_bool(j, "forced", 1);
    body = imgstore_json_finish(j, &len);
    return imgstore_response_json(r, HTTP_OK, body, len);
}
