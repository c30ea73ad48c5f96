/* The cleanup pass over one connection: see imgstore_sweep.h. */
#include "imgstore_sweep.h"

#include <string.h>

#include "imgstore_store.h"

imgstore_status_e imgstore_sweep_run(PGconn *conn, apr_pool_t *p, const imgstore_sweep_t *sw,
                                     imgstore_sweep_result_t *res, const char **err)
{
    imgstore_status_e st;
    imgstore_store_purge_t pu;
    apr_int64_t total;

    memset(res, 0, sizeof(*res));
    st = imgstore_store_claim_cleanup(conn, p, sw->now, sw->interval, sw->force, err);
    if (st != IMGSTORE_OK) {
        return st;
    }
    res->ran = 1;
    memset(&pu, 0, sizeof(pu));
    pu.rows = sw->batch;
    pu.bytes = sw->batch_bytes;
    pu.budget_ms = sw->budget_ms;
    pu.stop = sw->stop;
    pu.next_rows = sw->start_batch;
    pu.gone = sw->gone;
    pu.gone_ctx = sw->gone_ctx;
    st = imgstore_store_delete_expired(conn, p, sw->now, &pu, err);
    res->deleted = pu.deleted;
    res->skipped = pu.skipped;
    res->backlog = pu.backlog;
    res->next_batch = pu.next_rows;
    if (st == IMGSTORE_OK && sw->max_total > 0) {
        st = imgstore_store_recount(conn, p, sw->now, &total, err);
    }
    if (st == IMGSTORE_OK) {
        res->measured = 1;
        st = imgstore_store_oldest_expired_age(conn, p, sw->now, &res->oldest_expired_age, err);
    }
    return st;
}
