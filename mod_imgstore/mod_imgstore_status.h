/* Counters for mod_status (server-status), shared by every child. */
#ifndef MOD_IMGSTORE_STATUS_H
#define MOD_IMGSTORE_STATUS_H

#include "mod_imgstore_private.h"

typedef enum {
    IMGSTORE_COUNTER_UPLOADS = 0,
    IMGSTORE_COUNTER_UPLOAD_BYTES,
    IMGSTORE_COUNTER_RETRIEVALS,
    IMGSTORE_COUNTER_RETRIEVAL_BYTES,
    IMGSTORE_COUNTER_REJECT_MALFORMED,
    IMGSTORE_COUNTER_REJECT_NOT_FOUND,
    IMGSTORE_COUNTER_REJECT_METHOD,
    IMGSTORE_COUNTER_REJECT_TOO_LARGE,
    IMGSTORE_COUNTER_REJECT_TYPE,
    IMGSTORE_COUNTER_REJECT_QUOTA,
    IMGSTORE_COUNTER_DB_UNAVAILABLE,
    IMGSTORE_COUNTER_DB_ERRORS,
    IMGSTORE_COUNTER_TAG_FAILURES,
    IMGSTORE_COUNTER_CLEANUP_PASSES,
    IMGSTORE_COUNTER_ROWS_DELETED,
    IMGSTORE_COUNTER_CACHE_HITS,
    IMGSTORE_COUNTER_CACHE_MISSES,
    IMGSTORE_COUNTER_COUNT
} imgstore_counter_e;

void imgstore_status_count(imgstore_counter_e which, apr_uint64_t n);
/* Count an answer by its HTTP status (the reject reasons and 503s). */
void imgstore_status_count_answer(int status);
void imgstore_status_set_oldest_expired(apr_int64_t age);
void imgstore_status_post_config(apr_pool_t *pconf, server_rec *s);
void imgstore_status_register_hooks(void);

#endif
