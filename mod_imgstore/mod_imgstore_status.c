/*
 * Counters for mod_status: one block of shared memory, created by the parent
 * and inherited by every child, so server-status shows totals for the whole
 * server (reset by a restart, like the rest of the scoreboard).
 */
#include "mod_imgstore_status.h"

#include <http_protocol.h>
#include <mod_status.h>

#include <apr_optional_hooks.h>

#include <errno.h>
#include <sys/mman.h>

typedef struct {
    apr_uint64_t v[IMGSTORE_COUNTER_COUNT];
    apr_int64_t oldest_expired_age; /* seconds, at the last cleanup pass; -1 unknown */
} counters_t;

static counters_t *counters;

static const char *const counter_names[IMGSTORE_COUNTER_COUNT] = {
    "Uploads",           "UploadBytes",      "Retrievals",          "RetrievalBytes",
    "RejectedMalformed", "RejectedNotFound", "RejectedMethod",      "RejectedTooLarge",
    "RejectedType",      "RejectedQuota",    "DatabaseUnavailable", "DatabaseErrors",
    "TagFailures",       "CleanupPasses",    "RowsDeleted",         "CacheHits",
    "CacheMisses"};

void imgstore_status_count(imgstore_counter_e which, apr_uint64_t n)
{
    if (counters != NULL && which < IMGSTORE_COUNTER_COUNT) {
        __atomic_fetch_add(&counters->v[which], n, __ATOMIC_RELAXED);
    }
}

void imgstore_status_set_oldest_expired(apr_int64_t age)
{
    if (counters != NULL) {
        __atomic_store_n(&counters->oldest_expired_age, age, __ATOMIC_RELAXED);
    }
}

void imgstore_status_count_answer(int status)
{
    switch (status) {
        case HTTP_BAD_REQUEST:
        case HTTP_REQUEST_TIME_OUT:
            imgstore_status_count(IMGSTORE_COUNTER_REJECT_MALFORMED, 1);
            break;
        case HTTP_NOT_FOUND:
            imgstore_status_count(IMGSTORE_COUNTER_REJECT_NOT_FOUND, 1);
            break;
        case HTTP_METHOD_NOT_ALLOWED:
            imgstore_status_count(IMGSTORE_COUNTER_REJECT_METHOD, 1);
            break;
        case HTTP_REQUEST_ENTITY_TOO_LARGE:
            imgstore_status_count(IMGSTORE_COUNTER_REJECT_TOO_LARGE, 1);
            break;
        case HTTP_UNSUPPORTED_MEDIA_TYPE:
            imgstore_status_count(IMGSTORE_COUNTER_REJECT_TYPE, 1);
            break;
        case HTTP_INSUFFICIENT_STORAGE:
            imgstore_status_count(IMGSTORE_COUNTER_REJECT_QUOTA, 1);
            break;
        case HTTP_SERVICE_UNAVAILABLE:
            imgstore_status_count(IMGSTORE_COUNTER_DB_UNAVAILABLE, 1);
            break;
        default:
            break;
    }
}

static int status_hook(request_rec *r, int flags)
{
    counters_t snap;
    int i;

    if (counters == NULL) {
        return OK;
    }
    for (i = 0; i < IMGSTORE_COUNTER_COUNT; i++) {
        snap.v[i] = __atomic_load_n(&counters->v[i], __ATOMIC_RELAXED);
    }
    snap.oldest_expired_age = __atomic_load_n(&counters->oldest_expired_age, __ATOMIC_RELAXED);
    if (flags & AP_STATUS_SHORT) {
        for (i = 0; i < IMGSTORE_COUNTER_COUNT; i++) {
            ap_rprintf(r, "ImgStore%s: %" APR_UINT64_T_FMT "\n", counter_names[i], snap.v[i]);
        }
        ap_rprintf(r, "ImgStoreOldestExpiredAge: %" APR_INT64_T_FMT "\n", snap.oldest_expired_age);
        return OK;
    }
    ap_rputs("<hr />\n<h2>mod_imgstore</h2>\n<table>\n", r);
    for (i = 0; i < IMGSTORE_COUNTER_COUNT; i++) {
        ap_rprintf(r, "<tr><td>%s</td><td>%" APR_UINT64_T_FMT "</td></tr>\n", counter_names[i],
                   snap.v[i]);
    }
    ap_rprintf(r, "<tr><td>OldestExpiredAge (s)</td><td>%" APR_INT64_T_FMT "</td></tr>\n",
               snap.oldest_expired_age);
    ap_rputs("</table>\n", r);
    return OK;
}

void imgstore_status_post_config(apr_pool_t *pconf, server_rec *s)
{
    /*
     * Mapped directly rather than as an APR shm on pconf: a pool cleanup
     * would unmap it while a child's last threads may still count, and the
     * kernel unmaps it anyway when each process exits. The parent drops the
     * previous generation's mapping on a restart; old children keep theirs.
     */
    void *mem;

    if (counters != NULL) {
        munmap(counters, sizeof(counters_t));
        counters = NULL;
    }
    mem = mmap(NULL, sizeof(counters_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, errno, s,
                     IMGLOGNO(00070) "no shared memory for the server-status counters");
        return;
    }
    counters = mem;
    memset(counters, 0, sizeof(*counters));
    counters->oldest_expired_age = -1;
}

void imgstore_status_register_hooks(void)
{
    APR_OPTIONAL_HOOK(ap, status_hook, status_hook, NULL, NULL, APR_HOOK_MIDDLE);
}
