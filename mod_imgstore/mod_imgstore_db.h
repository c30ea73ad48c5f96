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

/*
 * One database in use (one DBDriver + DBDParams; each virtual host uses its
 * own or the main server's). Outage, back-off, probe and schema check are
 * kept per database, so one tenant's database down or behind changes no
 * other tenant's answers.
 */
typedef struct imgstore_db_t imgstore_db_t;

/* Per database, for the whole host (shared memory): the last forced cleanup pass. */
typedef struct {
    apr_time_t last_forced; /* when GET /cleanup last ran a pass; 0 never */
    apr_int64_t last_deleted;
} imgstore_db_shared_t;

/*
 * post_config: find mod_dbd and settle which database each server uses
 * (after imgstore_conf_post_config); 0 after logging why startup must fail.
 */
int imgstore_db_post_config(apr_pool_t *pconf, server_rec *s);
/* child_init: this child's view of every database starts afresh. */
apr_status_t imgstore_db_child_init(apr_pool_t *pchild, server_rec *s);

/* The database of server s; NULL when it has no DBDriver. */
imgstore_db_t *imgstore_db_of(const server_rec *s);
/* Every database in use: for the cleanup timer. */
int imgstore_db_count(void);
imgstore_db_t *imgstore_db_at(int i);
/* A server using it (the first), and the shortest cleanup interval among its servers. */
server_rec *imgstore_db_server(const imgstore_db_t *d);
apr_int64_t imgstore_db_min_interval(const imgstore_db_t *d);
imgstore_db_shared_t *imgstore_db_shared(imgstore_db_t *d);
/*
 * Whether this child's next cleanup pass of the timer (timer 1) or after a
 * request (timer 0) is due for database d, which must not be known down; if
 * so, the next is set interval seconds from now.
 */
int imgstore_db_due(imgstore_db_t *d, int timer, apr_int64_t interval);
/* Whether the last attempt found database d unreachable. */
int imgstore_db_is_down(const imgstore_db_t *d);

/* GET /health */
int imgstore_db_handle_health(request_rec *r);

#endif
