/*
 * The database through mod_dbd's pool, and what this child knows of it:
 * whether it is reachable and whether its schema is recent enough. GET
 * /health answers from here.
 */
#ifndef MOD_IMGSTORE_DB_H
#define MOD_IMGSTORE_DB_H

#include "mod_imgstore_private.h"

#include <libpq-fe.h>

#include "imgstore_status.h"

/* How long a child waits before checking a schema that was behind again. */
#define IMGSTORE_DB_RETRY_SECONDS 2

typedef imgstore_status_e imgstore_db_op_fn(PGconn *conn, apr_pool_t *p, void *baton,
                                            const char **err);

/*
 * Borrow a pooled connection for one operation and give it back at once;
 * retry once on a fresh connection when the first turned out broken.
 * CONN means "answer 503": the database is unreachable (the child logs it
 * once; the next requests probe it, one at a time, and go on once it answers).
 * ERROR is counted as a database error (server-status DatabaseErrors).
 */
imgstore_status_e imgstore_db_run(server_rec *s, apr_pool_t *p, imgstore_db_op_fn *op, void *baton,
                                  const char **err);

/* post_config: find mod_dbd; 0 after logging that it is missing. */
int imgstore_db_post_config(apr_pool_t *pconf, server_rec *s);
/* child_init: this child's view of the database starts afresh. */
apr_status_t imgstore_db_child_init(apr_pool_t *pchild, server_rec *s);
/* Whether the last attempt found the database unreachable. */
int imgstore_db_is_down(void);

/* GET /health */
int imgstore_db_handle_health(request_rec *r);

#endif
