/*
 * When expired images are deleted (the timer, after requests, GET /cleanup)
 * and this child's cleanup progress; what a pass does is imgstore_sweep.h.
 */
#ifndef MOD_IMGSTORE_CLEANUP_H
#define MOD_IMGSTORE_CLEANUP_H

#include "mod_imgstore_private.h"

/* Registers the cleanup timer with mod_watchdog (real post_config pass only). */
void imgstore_cleanup_post_config(apr_pool_t *pconf, server_rec *s);
/* child_init: registers on pchild the wait for a pass in progress. */
apr_status_t imgstore_cleanup_child_init(apr_pool_t *pchild, server_rec *s);
/* Called once per request that reached the handler, after the answer went out. */
void imgstore_cleanup_after_request(request_rec *r);

/* GET /cleanup: one pass now. */
int imgstore_cleanup_handle(request_rec *r);

#endif
