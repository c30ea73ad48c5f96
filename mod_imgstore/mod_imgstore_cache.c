/*
 * ImgStoreCache: one mod_socache instance per server that names one (a
 * virtual host without the directive uses the main server's), created in
 * post_config, with a global mutex around every call when the provider is
 * not multi-process/thread safe (shmcb, dbm), as mod_cache_socache does.
 */
#include "mod_imgstore_cache.h"

#include <ap_provider.h>
#include <ap_socache.h>
#include <http_core.h>
#include <http_main.h>
#include <util_mutex.h>

#include <apr_global_mutex.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include <stdlib.h>
#include <string.h>

#include "imgstore_bigbuf.h"
#include "imgstore_cacherow.h"
#include "imgstore_token.h"
#include "mod_imgstore_status.h"

#define CACHE_MUTEX_TYPE "imgstore-cache"

/* What one value holds besides the ciphertext (imgstore_cacherow.h), rounded up. */
#define ROW_OVERHEAD 128

/* memcached's default item limit (-I 1m); redis is given the same bound. */
#define NETWORK_MAX_OBJECT (1024 * 1024 - 1024)

/* The first lookup's buffer: below the module's mmap threshold (mod_imgstore.c). */
#define SMALL_VALUE (128 * 1024)

/*
 * The average object the providers are told to expect: shmcb sizes its
 * subcaches (and so its largest object) from it, about sqrt(size / 2 / hint)
 * of them. Images are large: fewer, larger subcaches keep a 1 MB image
 * cached; a small shmcb gets a smaller hint so that it still has index slots.
 */
#define HINT_OBJECT_SIZE (64 * 1024)
#define HINT_MIN_SLOTS 64

typedef struct {
    const char *spec; /* provider:args as configured */
    const ap_socache_provider_t *provider;
    const char *args;
    ap_socache_instance_t *instance;
    apr_global_mutex_t *mutex; /* NULL when the provider is safe without one */
    apr_size_t max_object;     /* the largest value this cache takes */
    struct ap_socache_hints hints;
    server_rec *s; /* the server that configured it */
    int local;     /* in this host's memory (shmcb): cleanup drops the rows it deletes */
} cache_t;

/* Per configuration cycle, rebuilt on every (re)start: server_rec * -> cache_t * */
static apr_hash_t *configured; /* as the directives named them */
static apr_hash_t *effective;  /* after post_config: every server, vhosts inheriting */
static int any_local;          /* after post_config: some cache is local (shmcb) */

static cache_t *cache_of(const server_rec *s)
{
    return effective != NULL ? apr_hash_get(effective, &s, sizeof(s)) : NULL;
}

int imgstore_cache_enabled(const server_rec *s)
{
    return cache_of(s) != NULL;
}

const char *imgstore_cache_cmd(cmd_parms *cmd, void *dummy, const char *arg)
{
    cache_t *c = apr_pcalloc(cmd->pool, sizeof(*c));
    const char *colon = strchr(arg, ':');
    const char *name = colon ? apr_pstrmemdup(cmd->pool, arg, (apr_size_t)(colon - arg)) : arg;
    const char *err;

    (void)dummy;
    err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE);
    if (err != NULL) {
        return err;
    }
    if (configured == NULL) {
        configured = apr_hash_make(cmd->pool);
    }
    c->spec = arg;
    c->args = colon ? colon + 1 : "";
    c->s = cmd->server;
    c->provider = ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, name, AP_SOCACHE_PROVIDER_VERSION);
    if (c->provider == NULL) {
        return apr_psprintf(cmd->pool,
                            "ImgStoreCache: no socache provider \"%s\" (is "
                            "mod_socache_%s loaded before this directive?)",
                            name, name);
    }
    err = c->provider->create(&c->instance, c->args, cmd->temp_pool, cmd->pool);
    if (err != NULL) {
        return apr_psprintf(cmd->pool, "ImgStoreCache %s: %s", arg, err);
    }
    if (strcmp(name, "shmcb") == 0) {
        /*
         * shmcb splits its memory into subcaches and an object must fit one:
         * the count follows from the size and the hints as shmcb computes it
         * (a power of two up to 256 with at least twice as many indexes per
         * subcache as subcaches). Take half a subcache, so one image never
         * evicts a whole subcache.
         */
        const char *open = strrchr(c->args, '(');
        apr_size_t size = open ? (apr_size_t)strtoul(open + 1, NULL, 10) : 512000;
        apr_size_t hint = HINT_OBJECT_SIZE, idx, n = 256;

        while (hint > 1024 && size / (hint + IMGSTORE_ID_BYTES) < HINT_MIN_SLOTS) {
            hint /= 2;
        }
        idx = size / (hint + IMGSTORE_ID_BYTES);
        while (n > 1 && idx / n < 2 * n) {
            n /= 2;
        }
        c->hints.avg_obj_size = hint;
        c->max_object = size / n / 2;
        c->local = 1;
    } else if (strcmp(name, "memcache") == 0 || strcmp(name, "redis") == 0) {
        c->hints.avg_obj_size = HINT_OBJECT_SIZE;
        c->max_object = NETWORK_MAX_OBJECT;
    } else {
        /* dbm and others: no object is large enough to be worth it. */
        return apr_psprintf(cmd->pool,
                            "ImgStoreCache: provider \"%s\" is not supported "
                            "(shmcb, memcache or redis)",
                            name);
    }
    c->hints.avg_id_len = IMGSTORE_ID_BYTES;
    c->hints.expiry_interval = 60;
    apr_hash_set(configured, apr_pmemdup(cmd->pool, &c->s, sizeof(c->s)), sizeof(c->s), c);
    return NULL;
}

static apr_status_t cache_destroy(void *data)
{
    cache_t *c = data;

    if (c->instance != NULL) {
        c->provider->destroy(c->instance, c->s);
        c->instance = NULL;
    }
    return APR_SUCCESS;
}

static int cache_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    configured = NULL;
    effective = NULL;
    any_local = 0;
    /*
     * fcntl by default, not APR's default (a robust, priority-inheriting
     * pthread mutex): a PI mutex is handed to the next waiter, which must
     * first be scheduled, so under contention the lock sits idle while its new
     * owner waits for a core. fcntl (APR puts a thread mutex in front of it in
     * each child) measured +33% hot retrievals at 100 KB, 16 connections (README,
     * "64 connections"); it is released when its process dies and leaves no
     * IPC object behind. Mutex imgstore-cache ... overrides it.
     */
    return ap_mutex_register(pconf, CACHE_MUTEX_TYPE, NULL, APR_LOCK_FCNTL, 0) == APR_SUCCESS
               ? OK
               : HTTP_INTERNAL_SERVER_ERROR;
}

static int cache_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    cache_t *main_cache;
    server_rec *vs;
    int n = 0;

    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG || configured == NULL) {
        return OK;
    }
    effective = apr_hash_make(pconf);
    main_cache = apr_hash_get(configured, &s, sizeof(s));
    for (vs = s; vs != NULL; vs = vs->next) {
        cache_t *c = apr_hash_get(configured, &vs, sizeof(vs));
        apr_status_t rv;

        if (c == NULL) {
            c = main_cache;
        } else {
            rv = c->provider->init(c->instance, "mod_imgstore", &c->hints, vs, pconf);
            if (rv != APR_SUCCESS) {
                ap_log_error(APLOG_MARK, APLOG_CRIT, rv, vs,
                             IMGLOGNO(00350) "ImgStoreCache %s: the cache cannot be set up",
                             c->spec);
                return HTTP_INTERNAL_SERVER_ERROR;
            }
            apr_pool_cleanup_register(pconf, c, cache_destroy, apr_pool_cleanup_null);
            any_local |= c->local;
            if (c->provider->flags & AP_SOCACHE_FLAG_NOTMPSAFE) {
                rv = ap_global_mutex_create(&c->mutex, NULL, CACHE_MUTEX_TYPE, apr_itoa(ptemp, n++),
                                            vs, pconf, 0);
                if (rv != APR_SUCCESS) {
                    ap_log_error(APLOG_MARK, APLOG_CRIT, rv, vs,
                                 IMGLOGNO(00351) "ImgStoreCache %s: cannot create its mutex",
                                 c->spec);
                    return HTTP_INTERNAL_SERVER_ERROR;
                }
            }
        }
        if (c != NULL) {
            apr_hash_set(effective, apr_pmemdup(pconf, &vs, sizeof(vs)), sizeof(vs), c);
        }
    }
    return OK;
}

static void cache_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_hash_index_t *hi;

    if (configured == NULL) {
        return;
    }
    for (hi = apr_hash_first(pchild, configured); hi != NULL; hi = apr_hash_next(hi)) {
        cache_t *c = apr_hash_this_val(hi);

        if (c->mutex != NULL) {
            apr_status_t rv =
                apr_global_mutex_child_init(&c->mutex, apr_global_mutex_lockfile(c->mutex), pchild);

            if (rv != APR_SUCCESS) {
                ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                             IMGLOGNO(00352) "ImgStoreCache %s: cannot attach to its mutex",
                             c->spec);
            }
        }
    }
}

void imgstore_cache_register_hooks(void)
{
    ap_hook_pre_config(cache_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(cache_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(cache_child_init, NULL, NULL, APR_HOOK_MIDDLE);
}

/* Lock when the provider needs it; a failed lock skips the cache (it is only a cache). */
static int cache_lock(const cache_t *c, server_rec *s)
{
    apr_status_t rv;

    if (c->mutex == NULL) {
        return 1;
    }
    rv = apr_global_mutex_lock(c->mutex);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s,
                     IMGLOGNO(00353) "ImgStoreCache: cannot lock its mutex");
        return 0;
    }
    return 1;
}

static void cache_unlock(const cache_t *c)
{
    if (c->mutex != NULL) {
        apr_global_mutex_unlock(c->mutex);
    }
}

void imgstore_cache_put(server_rec *s, apr_pool_t *p, const imgstore_row_t *row)
{
    cache_t *c = cache_of(s);
    apr_size_t n;
    unsigned char *buf;
    apr_status_t rv;

    if (c == NULL || (n = imgstore_cacherow_size(row)) == 0 || n > c->max_object) {
        return;
    }
    buf = malloc(n);
    if (buf == NULL) {
        return;
    }
    imgstore_cacherow_encode(row, buf, n);
    if (!cache_lock(c, s)) {
        free(buf);
        return;
    }
    rv = c->provider->store(c->instance, s, row->id, IMGSTORE_ID_BYTES,
                            apr_time_from_sec(row->expires_at), buf, (unsigned int)n, p);
    cache_unlock(c);
    free(buf);
    if (rv != APR_SUCCESS) {
        /* A network cache that is down or full is not the client's problem, nor an outage. */
        ap_log_error(APLOG_MARK, APLOG_DEBUG, rv, s,
                     IMGLOGNO(00354) "ImgStoreCache: a row was not stored");
    }
}

/* One lookup into a buffer of cap bytes (f->buf); APR_SUCCESS with *len set. */
static apr_status_t retrieve(cache_t *c, server_rec *s, apr_pool_t *p, const unsigned char *id,
                             apr_size_t cap, imgstore_fetched_t *f, unsigned int *len)
{
    apr_status_t rv;

    f->buf = imgstore_bigbuf_get(cap);
    if (f->buf == NULL || !cache_lock(c, s)) {
        imgstore_store_fetched_free(f);
        return APR_ENOMEM;
    }
    *len = (unsigned int)cap;
    rv = c->provider->retrieve(c->instance, s, id, IMGSTORE_ID_BYTES, f->buf, len, p);
    cache_unlock(c);
    if (rv != APR_SUCCESS || *len > cap) {
        imgstore_store_fetched_free(f);
        return rv != APR_SUCCESS ? rv : APR_ENOSPC;
    }
    f->used = *len;
    return APR_SUCCESS;
}

imgstore_status_e imgstore_cache_get(server_rec *s, apr_pool_t *p, const unsigned char *id,
                                     apr_int64_t max_ciphertext, imgstore_fetched_t *f,
                                     imgstore_row_t *row)
{
    cache_t *c = cache_of(s);
    apr_size_t cap;
    unsigned int len = 0;
    apr_status_t rv;

    f->res = NULL;
    f->buf = NULL;
    f->used = 0;
    if (c == NULL) {
        return IMGSTORE_NOTFOUND;
    }
    cap = (apr_size_t)max_ciphertext + ROW_OVERHEAD;
    if (cap > c->max_object) {
        cap = c->max_object;
    }
    /*
     * The caller supplies the buffer and a value larger than it is not found:
     * most images fit a small one, which malloc() serves from its arenas; only
     * when that finds nothing is the lookup repeated with room for the largest
     * value (from mmap, touched only as far as the value goes).
     */
    rv = retrieve(c, s, p, id, cap < SMALL_VALUE ? cap : SMALL_VALUE, f, &len);
    if (rv != APR_SUCCESS && rv != APR_ENOMEM && cap > SMALL_VALUE) {
        rv = retrieve(c, s, p, id, cap, f, &len);
    }
    if (rv != APR_SUCCESS) {
        return IMGSTORE_NOTFOUND;
    }
    if (imgstore_cacherow_decode(f->buf, len, id, row) == IMGSTORE_OK &&
        (apr_int64_t)row->ciphertext_len <= max_ciphertext) {
        return IMGSTORE_OK;
    }
    /* Not a row this build wrote, or larger than this mount takes: fetch it afresh. */
    imgstore_store_fetched_free(f);
    imgstore_cache_remove(s, p, id);
    return IMGSTORE_NOTFOUND;
}

void imgstore_cache_remove(server_rec *s, apr_pool_t *p, const unsigned char *id)
{
    cache_t *c = cache_of(s);

    if (c != NULL && cache_lock(c, s)) {
        c->provider->remove(c->instance, s, id, IMGSTORE_ID_BYTES, p);
        cache_unlock(c);
    }
}

int imgstore_cache_local_any(void)
{
    return any_local;
}

void imgstore_cache_purge_local(void *ctx, const unsigned char *const *ids, int n)
{
    apr_pool_t *p = ctx;
    apr_hash_index_t *hi;
    int i;

    /* Each cache once, under its mutex once for the whole batch. */
    for (hi = apr_hash_first(p, configured); hi != NULL; hi = apr_hash_next(hi)) {
        cache_t *c = apr_hash_this_val(hi);

        if (!c->local || c->instance == NULL || !cache_lock(c, c->s)) {
            continue;
        }
        for (i = 0; i < n; i++) {
            c->provider->remove(c->instance, c->s, ids[i], IMGSTORE_ID_BYTES, p);
        }
        cache_unlock(c);
    }
}
