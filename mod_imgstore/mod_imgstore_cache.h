/*
 * The hot image cache (ImgStoreCache provider:args): sealed rows in
 * mod_socache, keyed by id (imgstore_cacherow.h holds the value's format).
 * The cache only saves reading the ciphertext: every hit is still confirmed
 * by the database (imgstore_store_confirm), so deletes, view limits and
 * expiry hold across hosts sharing the database.
 */
#ifndef MOD_IMGSTORE_CACHE_H
#define MOD_IMGSTORE_CACHE_H

#include "mod_imgstore_private.h"

#include "imgstore_store.h"

/* ImgStoreCache provider:args (server config and <VirtualHost>). */
const char *imgstore_cache_cmd(cmd_parms *cmd, void *dummy, const char *arg);

/* The hooks: the mutex type, the instances (post_config) and the mutex in each child. */
void imgstore_cache_register_hooks(void);

/* Whether requests to this server use a cache. */
int imgstore_cache_enabled(const server_rec *s);

/*
 * Keep a sealed row (ciphertext and tag, still sealed) until it expires;
 * rows larger than the provider's share for one object are not cached.
 */
void imgstore_cache_put(server_rec *s, apr_pool_t *p, const imgstore_row_t *row);

/*
 * Look up the row with this id. OK: *row points into f->buf (from
 * imgstore_bigbuf_get() and writable; give back with
 * imgstore_store_fetched_free()). NOTFOUND: a miss (also for a value that
 * does not decode, which is then dropped).
 */
imgstore_status_e imgstore_cache_get(server_rec *s, apr_pool_t *p, const unsigned char *id,
                                     apr_int64_t max_ciphertext, imgstore_fetched_t *f,
                                     imgstore_row_t *row);

/* Drop this host's copy of the row with this id (deleted, last view, not live). */
void imgstore_cache_remove(server_rec *s, apr_pool_t *p, const unsigned char *id);

/*
 * Whether this host has a local cache (shmcb) that cleanup must tell of the
 * rows it deletes. Network caches (memcache, redis) are left out: their
 * entries expire by the image's own expiry, so the provider drops them at
 * the second the row expires, and a round trip per deleted row would only
 * stretch the pass.
 */
int imgstore_cache_local_any(void);

/*
 * Drop these ids (IMGSTORE_ID_BYTES each) from every local cache of the
 * configuration, whichever server uses it: cleanup serves a database, not a
 * server, and an id a cache does not hold is simply not there.
 * An imgstore_store_gone_fn; ctx is a pool. Called only when
 * imgstore_cache_local_any().
 */
void imgstore_cache_purge_local(void *ctx, const unsigned char *const *ids, int n);

#endif
