/*
 * The cleanup pass over one PostgreSQL connection: claim this interval's
 * pass for every host sharing the database, delete expired rows in
 * batches, recount the live total when a quota is on, and measure how far
 * behind cleanup is. The glue (mod_imgstore_cleanup.c) decides when a pass
 * runs and borrows the connection; this decides what a pass does.
 *
 * Core unit: libc, APR and libpq only.
 */
#ifndef IMGSTORE_SWEEP_H
#define IMGSTORE_SWEEP_H

#include <apr_pools.h>
#include <libpq-fe.h>

#include "imgstore_status.h"
#include "imgstore_store.h"

typedef struct {
    apr_int64_t now;         /* epoch seconds */
    apr_int64_t interval;    /* seconds between passes (ImgStoreCleanupInterval) */
    int force;               /* run even if this interval's pass is taken (GET /cleanup) */
    int batch;               /* most rows per delete transaction */
    apr_int64_t batch_bytes; /* most bytes per delete transaction (past its first row) */
    int start_batch;         /* rows to start with (0: batch): what the last pass learned */
    apr_int64_t budget_ms;
    const int *stop;       /* set by another thread: end after the batch in hand; may be NULL */
    apr_int64_t max_total; /* ImgStoreMaxTotal, 0 = off: recount the live total when on */
    imgstore_store_gone_fn gone; /* optional: told the ids of each committed batch */
    void *gone_ctx;
} imgstore_sweep_t;

typedef struct {
    int ran;                        /* this caller won the claim */
    apr_int64_t deleted;            /* rows removed, even when an error ended the pass */
    int skipped;                    /* rows stepped over: too slow to delete even alone */
    int backlog;                    /* the budget ended the deleting, not the lack of rows */
    int next_batch;                 /* rows the next pass starts with (its start_batch) */
    int measured;                   /* oldest_expired_age was measured */
    apr_int64_t oldest_expired_age; /* seconds; 0 when no expired row is left */
} imgstore_sweep_result_t;

/*
 * One pass. NOTFOUND: another host or child had this interval's pass
 * (nothing ran). Else the first failing step's status, with *err set.
 */
imgstore_status_e imgstore_sweep_run(PGconn *conn, apr_pool_t *p, const imgstore_sweep_t *sw,
                                     imgstore_sweep_result_t *res, const char **err);

#endif
