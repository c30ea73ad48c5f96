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
/* At most this many passes back to back on one tick (a minute of deleting). */
#define CATCH_UP_PASSES 12
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
    /* A stopping child ends the pass after the batch in hand (see child_stopping). */
    st = imgstore_store_delete_expired(conn, p, b->now, BATCH_ROWS, b->budget_ms,
                                       &imgstore_globals.stopping, &b->deleted, err);
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

/*
 * At most one pass per child at a time, whatever triggered it, and none once
 * the child has started to go away (pchild's pre-cleanup below waits for the
 * one in progress).
 */
static int pass_begin(void)
{
    int mine;

    if (__atomic_load_n(&imgstore_globals.stopping, __ATOMIC_ACQUIRE)) {
        return 0;
    }
    apr_thread_mutex_lock(imgstore_globals.mutex);
    mine = !imgstore_globals.cleanup_running && !imgstore_globals.stopping;
    if (mine) {
        imgstore_globals.cleanup_running = 1;
    }
    apr_thread_mutex_unlock(imgstore_globals.mutex);
    return mine;
}

static void pass_end(void)
{
    apr_thread_mutex_lock(imgstore_globals.mutex);
    imgstore_globals.cleanup_running = 0;
    if (imgstore_globals.cond != NULL) {
        apr_thread_cond_broadcast(imgstore_globals.cond);
    }
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
          !imgstore_globals.db_down && !imgstore_globals.stopping;
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

    apr_thread_mutex_lock(imgstore_globals.mutex);
    __atomic_store_n(&imgstore_globals.stopping, 1, __ATOMIC_RELEASE);
    if (imgstore_globals.cond != NULL) {
        apr_thread_cond_broadcast(imgstore_globals.cond);
    }
    while (imgstore_globals.cleanup_running) {
        if (imgstore_globals.cond != NULL) {
            apr_thread_cond_wait(imgstore_globals.cond, imgstore_globals.mutex);
        } else {
            apr_thread_mutex_unlock(imgstore_globals.mutex);
            apr_sleep(apr_time_from_msec(10));
            apr_thread_mutex_lock(imgstore_globals.mutex);
        }
    }
    apr_thread_mutex_unlock(imgstore_globals.mutex);
    return APR_SUCCESS;
}

void imgstore_cleanup_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_status_t rv;

    imgstore_globals.stopping = 0;
    imgstore_globals.cond = NULL;
    rv = apr_thread_cond_create(&imgstore_globals.cond, pchild);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s,
                     IMGLOGNO(00055) "cannot create a condition variable; a stopping child "
                                     "polls for the end of a cleanup pass");
        imgstore_globals.cond = NULL;
    }
    apr_pool_pre_cleanup_register(pchild, NULL, child_stopping);
}

static apr_status_t watchdog_tick(int state, void *data, apr_pool_t *pool)
{
    server_rec *s = data;
    apr_int64_t deleted;
    const char *err = NULL;
    imgstore_store_status_e st = IMGSTORE_STORE_OK;
    int pass;

    if (state != AP_WATCHDOG_STATE_RUNNING || !pass_begin()) {
        return APR_SUCCESS;
    }
    /*
     * A pass that used its whole budget on full batches left a backlog:
     * uploads outpace one pass per interval. Go on at once (forcing the
     * claim, since this interval's is ours) until it is gone, the child
     * stops, or CATCH_UP_PASSES have run and the next tick takes over.
     */
    for (pass = 0; pass < CATCH_UP_PASSES; pass++) {
        st = imgstore_cleanup_pass(s, pool, pass > 0, TIMER_BUDGET_MS, &deleted, &err);
        if (st != IMGSTORE_STORE_OK || deleted == 0 || deleted % BATCH_ROWS != 0 ||
            __atomic_load_n(&imgstore_globals.stopping, __ATOMIC_ACQUIRE)) {
            break;
        }
    }
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
