/*
 * Deleting expired rows. Three triggers share one pass function:
 * - a mod_watchdog singleton timer (one runner per host) every ImgStoreCleanupInterval;
 * - requests: each child tries the claim at most once per interval, after
 *   the answer went out, so cleanup keeps pace even with the timer off;
 * - GET /cleanup forces a pass now.
 * The claim in imgstore_state makes it one pass per interval across every
 * host sharing the database; passes running at once skip each other's rows.
 */
#include "mod_imgstore.h"

#include <ap_mpm.h>
#include <http_protocol.h>
#include <mod_watchdog.h>

#include <apr_optional.h>
#include <apr_strings.h>

#define BATCH_ROWS 1000
/* A request-triggered pass keeps its worker thread only briefly. */
#define REQUEST_BUDGET_MS 500
#define TIMER_BUDGET_MS 5000
#define WATCHDOG_NAME "_imgstore_cleanup_"

typedef struct {
    int force;
    apr_int64_t now;
    apr_int64_t budget_ms;
    apr_int64_t deleted;
} pass_baton_t;

static imgstore_store_status_e op_pass(PGconn *conn, apr_pool_t *p, void *baton, const char **err)
{
    pass_baton_t *b = baton;
    imgstore_store_status_e st;
    apr_int64_t total;

    st = imgstore_store_claim_cleanup(conn, p, b->now, imgstore_globals.cleanup_interval, b->force,
                                      err);
    if (st != IMGSTORE_STORE_OK) {
        return st;
    }
    st = imgstore_store_delete_expired(conn, p, b->now, BATCH_ROWS, b->budget_ms, &b->deleted, err);
    imgstore_counter_add(IMGSTORE_COUNTER_CLEANUP_PASSES, 1);
    imgstore_counter_add(IMGSTORE_COUNTER_ROWS_DELETED, (apr_uint64_t)b->deleted);
    if (st == IMGSTORE_STORE_OK && imgstore_globals.max_total > 0) {
        st = imgstore_store_recount(conn, p, b->now, &total, err);
    }
    if (st == IMGSTORE_STORE_OK) {
        apr_int64_t age = 0;
        st = imgstore_store_oldest_expired_age(conn, p, b->now, &age, err);
        imgstore_counter_set_oldest_expired(age);
    }
    return st;
}

imgstore_store_status_e imgstore_cleanup_pass(server_rec *s, apr_pool_t *p, int force,
                                              apr_int64_t budget_ms, apr_int64_t *deleted,
                                              const char **err)
{
    pass_baton_t b;
    imgstore_store_status_e st;

    b.force = force;
    b.now = imgstore_now();
    b.budget_ms = budget_ms;
    b.deleted = 0;
    st = imgstore_db_run(s, p, op_pass, &b, err);
    *deleted = b.deleted;
    if (b.deleted > 0) {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s,
                     IMGLOGNO(00050) "cleanup deleted %" APR_INT64_T_FMT " expired images",
                     b.deleted);
    }
    if (st == IMGSTORE_STORE_NOTFOUND) {
        st = IMGSTORE_STORE_OK; /* another host or child had this interval's pass */
    }
    return st;
}

/* At most one pass per child at a time, whatever triggered it. */
static int pass_begin(void)
{
    int mine;

    apr_thread_mutex_lock(imgstore_globals.mutex);
    mine = !imgstore_globals.cleanup_running;
    imgstore_globals.cleanup_running = 1;
    apr_thread_mutex_unlock(imgstore_globals.mutex);
    return mine;
}

static void pass_end(void)
{
    apr_thread_mutex_lock(imgstore_globals.mutex);
    imgstore_globals.cleanup_running = 0;
    apr_thread_mutex_unlock(imgstore_globals.mutex);
}

void imgstore_cleanup_after_request(request_rec *r)
{
    apr_time_t now = apr_time_now();
    apr_int64_t deleted;
    const char *err = NULL;
    int due, mpm_state = AP_MPMQ_RUNNING;
    imgstore_store_status_e st;

    /* A stopping child tears down mod_dbd's pool: start no database work then. */
    if (ap_mpm_query(AP_MPMQ_MPM_STATE, &mpm_state) == APR_SUCCESS &&
        mpm_state == AP_MPMQ_STOPPING) {
        return;
    }

    apr_thread_mutex_lock(imgstore_globals.mutex);
    due = now >= imgstore_globals.next_request_cleanup && !imgstore_globals.cleanup_running &&
          !imgstore_globals.db_down;
    if (due) {
        imgstore_globals.next_request_cleanup =
            now + apr_time_from_sec(imgstore_globals.cleanup_interval);
        imgstore_globals.cleanup_running = 1;
    }
    apr_thread_mutex_unlock(imgstore_globals.mutex);
    if (!due) {
        return;
    }
    st = imgstore_cleanup_pass(r->server, r->pool, 0, REQUEST_BUDGET_MS, &deleted, &err);
    pass_end();
    if (st != IMGSTORE_STORE_OK && st != IMGSTORE_STORE_CONN && st != IMGSTORE_STORE_SCHEMA) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, IMGLOGNO(00051) "cleanup pass failed: %s",
                      err ? err : "unknown");
    }
}

static apr_status_t watchdog_tick(int state, void *data, apr_pool_t *pool)
{
    server_rec *s = data;
    apr_int64_t deleted;
    const char *err = NULL;
    imgstore_store_status_e st;

    if (state != AP_WATCHDOG_STATE_RUNNING || !pass_begin()) {
        return APR_SUCCESS;
    }
    st = imgstore_cleanup_pass(s, pool, 0, TIMER_BUDGET_MS, &deleted, &err);
    pass_end();
    if (st != IMGSTORE_STORE_OK && st != IMGSTORE_STORE_CONN && st != IMGSTORE_STORE_SCHEMA) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, IMGLOGNO(00052) "cleanup pass failed: %s",
                     err ? err : "unknown");
    }
    return APR_SUCCESS;
}

void imgstore_cleanup_post_config(apr_pool_t *pconf, server_rec *s)
{
    APR_OPTIONAL_FN_TYPE(ap_watchdog_get_instance) * get_instance;
    APR_OPTIONAL_FN_TYPE(ap_watchdog_register_callback) * register_callback;
    ap_watchdog_t *wd = NULL;
    apr_status_t rv;

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
        rv = register_callback(wd, apr_time_from_sec(imgstore_globals.cleanup_interval), s,
                               watchdog_tick);
    }
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s,
                     IMGLOGNO(00054) "cannot register the cleanup timer with mod_watchdog");
    }
}
