/* The cleanup pass over one connection: see imgstore_sweep.h. */
#include "imgstore_sweep.h"

#include <string.h>

#include "imgstore_store.h"

imgstore_status_e imgstore_sweep_run(PGconn *conn, apr_pool_t *p, const imgstore_sweep_t *sw,
                                     imgstore_sweep_result_t *res, const char **err)
{
    imgstore_status_e st;
    apr_int64_t total;

    memset(res, 0, sizeof(*res));
    st = imgstore_store_claim_cleanup(conn, p, sw->now, sw->interval, sw->force, err);
    if (st != IMGSTORE_OK) {
        return st;
    }
    res->ran = 1;
    st = imgstore_store_delete_expired(conn, p, sw->now, sw->batch, sw->budget_ms, sw->stop,
                                       &res->deleted, err);
    if (st == IMGSTORE_OK && sw->max_total > 0) {
        st = imgstore_store_recount(conn, p, sw->now, &total, err);
    }
    if (st == IMGSTORE_OK) {
        res->measured = 1;
        st = imgstore_store_oldest_expired_age(conn, p, sw->now, &res->oldest_expired_age, err);
    }
    return st;
}
