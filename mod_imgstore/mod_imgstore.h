/*
 * mod_imgstore glue: what the httpd-facing files share.
 * The core (imgstore_*.c) never includes this file or any httpd header.
 */
#ifndef MOD_IMGSTORE_H
#define MOD_IMGSTORE_H

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>

#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>

#include "imgstore_crypt.h"
#include "imgstore_store.h"

/* Every log line of the module carries its own tag; httpd's APLOGNO stays httpd's. */
#define IMGLOGNO(n) "IMG" #n ": "

#define IMGSTORE_HANDLER "imgstore"
#define IMGSTORE_UNSET -1

#define IMGSTORE_DEFAULT_TTL 300
#define IMGSTORE_DEFAULT_MAX_SIZE (10 * 1024 * 1024)
#define IMGSTORE_DEFAULT_CLEANUP_INTERVAL 60
/* How long a child waits before probing an unreachable database again. */
#define IMGSTORE_DB_RETRY_SECONDS 2
/* What a 503 tells clients to wait. */
#define IMGSTORE_RETRY_AFTER_SECONDS 5
/* Buffers at least this large come from mmap and go back to the kernel on free. */
#define IMGSTORE_MMAP_THRESHOLD (256 * 1024)
/* Multipart framing allowed on top of ImgStoreMaxSize before a body is "too large". */
#define IMGSTORE_BODY_OVERHEAD (64 * 1024)

extern module AP_MODULE_DECLARE_DATA imgstore_module;

typedef struct {
    const char *path;
    int key_id;
} imgstore_key_file_t;

/* Server-wide settings: only the main server's values are used (GLOBAL_ONLY directives). */
typedef struct {
    apr_array_header_t *key_files; /* imgstore_key_file_t */
    int active_key;                /* key id, IMGSTORE_UNSET */
    apr_int64_t cleanup_interval;  /* seconds, IMGSTORE_UNSET */
    apr_int64_t max_total;         /* bytes, 0 = off, IMGSTORE_UNSET */
} imgstore_srv_conf_t;

/* Per mount (<Location>), defaulted from the server level. */
typedef struct {
    /* Paths of the sections holding ImgStore directives, outermost first. */
    apr_array_header_t *mounts;
    apr_int64_t ttl;      /* seconds */
    apr_int64_t max_size; /* bytes */
    int allow_types;      /* IMGSTORE_TYPE_BIT mask */
    const char *base_url; /* NULL: build from the request */
} imgstore_dir_conf_t;

/* Process-wide state, created in post_config (settings) and child_init (runtime). */
typedef struct {
    imgstore_keyring_t *keyring;
    int active_key;
    apr_int64_t cleanup_interval;
    apr_int64_t max_total;
    const char *probe_conninfo; /* DBDParams, for PQping while the database is down */
    apr_thread_mutex_t *mutex;  /* guards the fields below, per child */
    int db_down;                /* the last attempt found the database unreachable */
    apr_time_t db_retry_at;     /* when a thread may probe it again */
    int schema_ok;              /* 1 once the schema version matched */
    int schema_warned;          /* IMG00012 logged by this child */
    apr_time_t schema_retry_at;
    apr_time_t next_request_cleanup;
    int cleanup_running;
    apr_thread_cond_t *cond; /* signalled when a pass ends */
    int stopping;            /* set once pchild starts going away: no pass may start */
} imgstore_globals_t;

extern imgstore_globals_t imgstore_globals;

/* mod_imgstore_config.c */
extern const command_rec imgstore_cmds[];
void *imgstore_create_srv_conf(apr_pool_t *p, server_rec *s);
void *imgstore_merge_srv_conf(apr_pool_t *p, void *basev, void *addv);
void *imgstore_create_dir_conf(apr_pool_t *p, char *dir);
void *imgstore_merge_dir_conf(apr_pool_t *p, void *basev, void *addv);
/* Effective values with defaults applied. */
apr_int64_t imgstore_conf_ttl(const imgstore_dir_conf_t *dc);
apr_int64_t imgstore_conf_max_size(const imgstore_dir_conf_t *dc);
int imgstore_conf_allow_types(const imgstore_dir_conf_t *dc);
/* Load the key files and settle the server-wide settings; NULL or an error logged already. */
int imgstore_conf_post_config(apr_pool_t *pconf, server_rec *s);

/* mod_imgstore_db.c */
typedef imgstore_store_status_e imgstore_db_op_fn(PGconn *conn, apr_pool_t *p, void *baton,
                                                  const char **err);
/*
 * Borrow a pooled connection for one operation and give it back at once;
 * retry once on a fresh connection when the first turned out broken.
 * CONN means "answer 503": the database is unreachable (the child then
 * waits IMGSTORE_DB_RETRY_SECONDS before trying again, logging once).
 */
imgstore_store_status_e imgstore_db_run(server_rec *s, apr_pool_t *p, imgstore_db_op_fn *op,
                                        void *baton, const char **err);
int imgstore_db_init(apr_pool_t *pconf, server_rec *s);

/* mod_imgstore_cleanup.c */
/* Registers the cleanup timer with mod_watchdog (real post_config pass only). */
void imgstore_cleanup_post_config(apr_pool_t *pconf, server_rec *s);
/* One pass now (force) or only if this interval's pass is unclaimed. */
imgstore_store_status_e imgstore_cleanup_pass(server_rec *s, apr_pool_t *p, int force,
                                              apr_int64_t budget_ms, apr_int64_t *deleted,
                                              const char **err);
/* Called once per request that reached the handler, after the answer went out. */
void imgstore_cleanup_after_request(request_rec *r);
/* Registers on pchild the wait for a cleanup pass in progress (child_init). */
void imgstore_cleanup_child_init(apr_pool_t *pchild, server_rec *s);

/* mod_imgstore_handler.c: answers shared by the routes. */
int imgstore_send_json(request_rec *r, int status, const char *json, apr_size_t len);
int imgstore_send_error(request_rec *r, int status, const char *message);
/* The status and JSON answer for a failed database operation (503 + Retry-After, or 500). */
int imgstore_send_db_error(request_rec *r, imgstore_store_status_e st, const char *err);
void imgstore_security_headers(request_rec *r);
/* The mount prefix the route was found under ("" for a mount at "/"). */
const char *imgstore_mount_of(request_rec *r);

/* Registers the handler and the after-request hook. */
void imgstore_register_handler_hooks(void);

/* mod_imgstore_upload.c, mod_imgstore_image.c */
int imgstore_handle_upload(request_rec *r, const imgstore_dir_conf_t *dc);
int imgstore_handle_image(request_rec *r, const imgstore_dir_conf_t *dc, const char *hash);

/* mod_imgstore_redact.c: keep a whole token out of every log and server-status. */
/* mount: the prefix the route was found under; its own segments stay readable. */
void imgstore_redact_token(request_rec *r, const char *mount);

/* mod_imgstore_status.c: counters shown by mod_status (server-status). */
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
    IMGSTORE_COUNTER_COUNT
} imgstore_counter_e;
void imgstore_counter_add(imgstore_counter_e which, apr_uint64_t n);
/* Count an answer by its status (the reject reasons and 503s). */
void imgstore_counter_for_status(int status);
void imgstore_counter_set_oldest_expired(apr_int64_t age);
void imgstore_status_post_config(apr_pool_t *pconf, server_rec *s);
void imgstore_status_register_hooks(void);

/* The module's clock for expiry, in epoch seconds. */
apr_int64_t imgstore_now(void);

#endif
