/*
 * Expiry keys in the server (imgstore_expkey.h has the construction): the
 * parent keeps each ImgStoreExpiryKeyFile advanced (at startup and from
 * httpd's monitor hook), children hold a window of secrets that
 * a per-child timer wipes as periods end, and the first request of a child
 * checks the chain against the database's lineage id.
 */
#ifndef MOD_IMGSTORE_EXPIRY_H
#define MOD_IMGSTORE_EXPIRY_H

#include "mod_imgstore_private.h"

#include "imgstore_image.h"

/* Clock skew allowed between hosts; grace = this + ImgStoreCleanupInterval. */
#define IMGSTORE_EXPIRY_SKEW_SECONDS 2
/* ImgStoreExpiryKeyPeriod's default: 10 minutes. */
#define IMGSTORE_EXPIRY_DEFAULT_PERIOD 600
/* Where the state file lives when ImgStoreExpiryKeyFile is not set (DefaultRuntimeDir). */
#define IMGSTORE_EXPIRY_DEFAULT_FILE "imgstore-expiry.key"

/* check_config (runs for httpd -t too): check every existing state file; !OK after logging. */
int imgstore_expiry_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                                 server_rec *s);

/* post_config (both passes): check, create and advance every state file; 0 after logging why. */
int imgstore_expiry_post_config(apr_pool_t *pconf, server_rec *s);

/* The parent's timer (monitor hook): advance the state files at period boundaries. */
int imgstore_expiry_monitor(apr_pool_t *p, server_rec *s);

/* post_config, second pass only: the per-child timer (mod_watchdog). */
void imgstore_expiry_timers(apr_pool_t *pconf, server_rec *s);

/* child_init: build this child's windows, then wipe the copy inherited from the parent. */
void imgstore_expiry_child_init(apr_pool_t *pchild, server_rec *s);

/*
 * The chain of r's host, checked once per child against the database's
 * lineage id. OK with *chain; or an HTTP status already answered (a
 * foreign chain is a 503 naming the problem, logged at error).
 */
int imgstore_expiry_chain(request_rec *r, const imgstore_image_chain_t **chain);

#endif
