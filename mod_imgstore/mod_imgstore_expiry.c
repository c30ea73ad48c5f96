/*
 * Expiry keys in the server: see mod_imgstore_expiry.h.
 *
 * What each process holds. The parent: per state file, the current secret
 * only (the one the file holds, S of the period of now - grace), which it
 * needs to fork children and to advance the file; the previous one is
 * wiped each time the timer advances it. A child: a window (now - grace ..
 * now + the longest TTL + grace), built at fork from the parent's copy,
 * which the child then wipes; a per-child timer wipes each secret once its
 * period plus the grace is over, so idle children forget too.
 */
#include "mod_imgstore_expiry.h"

#include <http_core.h>
#include <mod_watchdog.h>

#include <apr_hash.h>
#include <apr_strings.h>

#include <openssl/crypto.h>

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "imgstore_store.h"
#include "mod_imgstore_config.h"
#include "mod_imgstore_db.h"
#include "mod_imgstore_response.h"

typedef struct {
    const char *path;
    apr_uint32_t period;
    imgstore_expkey_state_t st;   /* parent: the current secret; wiped in children */
    imgstore_image_chain_t image; /* child: the master keys and this child's window */
    unsigned char lineage[IMGSTORE_EXPKEY_LINEAGE_BYTES]; /* one way: not a secret */
    volatile int lineage_ok; /* child: the database records this chain */
    server_rec *server;      /* its first site: whose master keys it uses */
} chain_t;

static apr_array_header_t *chains; /* chain_t *, one per distinct file */
static apr_hash_t *chain_of;       /* server_rec * -> chain_t * */

/*
 * Per site, in a child: its chain's window with the site's own master keys (sites
 * sharing a file keep their tenants' keys apart), and whether the site's database
 * records the chain (sites sharing a file may use different databases).
 */
typedef struct {
    imgstore_image_chain_t image;
    volatile int lineage_ok;
} site_view_t;
static apr_hash_t *view_of; /* server_rec * -> site_view_t *, built in child_init */
static apr_int64_t grace, horizon;

static const char *hex(apr_pool_t *p, const unsigned char *b, apr_size_t n)
{
    char *out = apr_palloc(p, 2 * n + 1);
    apr_size_t i;

    for (i = 0; i < n; i++) {
        apr_snprintf(out + 2 * i, 3, "%02x", b[i]);
    }
    return out;
}

/* The state file is unusable: stop the start (or configtest), naming the file and the problem. */
static int bad_file(server_rec *s, const char *why)
{
    ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, IMGLOGNO(00250) "ImgStoreExpiryKeyFile %s", why);
    return 0;
}

/* Check a file for configtest without creating or advancing it (a missing one is fine). */
static int check_only(apr_pool_t *p, server_rec *s, chain_t *c)
{
    struct stat sb;
    const char *why = NULL;

    if (lstat(c->path, &sb) != 0 && errno == ENOENT) {
        return 1;
    }
    if (imgstore_expkey_file_load(p, c->path, geteuid(), c->period, &c->st, &why) != IMGSTORE_OK) {
        return bad_file(s, why);
    }
    imgstore_expkey_state_wipe(&c->st);
    return 1;
}

static int sync_file(apr_pool_t *p, server_rec *s, chain_t *c)
{
    const char *why = NULL;

    if (imgstore_expkey_file_sync(p, c->path, geteuid(), c->period, grace, imgstore_now(), &c->st,
                                  &why) != IMGSTORE_OK) {
        return bad_file(s, why);
    }
    if (why != NULL) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                     IMGLOGNO(00251) "ImgStoreExpiryKeyFile %s (lineage %s): do not back it up",
                     why, hex(p, c->st.lineage, 8));
    }
    return 1;
}

static apr_status_t wipe_chains(void *data)
{
    int i;

    for (i = 0; chains != NULL && i < chains->nelts; i++) {
        imgstore_expkey_state_wipe(&APR_ARRAY_IDX(chains, i, chain_t *)->st);
    }
    return APR_SUCCESS;
}

/* The file and period of server s (its own, or the main server's, or the defaults). */
static void file_of(apr_pool_t *p, server_rec *s, const char **path, apr_uint32_t *period)
{
    const imgstore_srv_conf_t *sc = ap_get_module_config(s->module_config, &imgstore_module);

    *path = sc->expiry_key_file ? sc->expiry_key_file
                                : ap_runtime_dir_relative(p, IMGSTORE_EXPIRY_DEFAULT_FILE);
    *period =
        (apr_uint32_t)(sc->expiry_key_period != IMGSTORE_UNSET ? sc->expiry_key_period
                                                               : IMGSTORE_EXPIRY_DEFAULT_PERIOD);
}

int imgstore_expiry_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                                 server_rec *main_s)
{
    server_rec *s;

    for (s = main_s; s != NULL; s = s->next) {
        chain_t c;

        memset(&c, 0, sizeof(c));
        file_of(ptemp, s, &c.path, &c.period);
        if (!check_only(ptemp, s, &c)) {
            return !OK;
        }
    }
    return OK;
}

int imgstore_expiry_post_config(apr_pool_t *pconf, server_rec *main_s)
{
    server_rec *s;
    int i;

    /* The longest cleanup interval of any site: rows linger that long after expiry. */
    grace = 0;
    for (s = main_s; s != NULL; s = s->next) {
        if (imgstore_conf_settings(s)->cleanup_interval > grace) {
            grace = imgstore_conf_settings(s)->cleanup_interval;
        }
    }
    grace += IMGSTORE_EXPIRY_SKEW_SECONDS;
    horizon = imgstore_conf_longest_ttl();
    chains = apr_array_make(pconf, 2, sizeof(chain_t *));
    chain_of = apr_hash_make(pconf);
    apr_pool_cleanup_register(pconf, NULL, wipe_chains, apr_pool_cleanup_null);
    for (s = main_s; s != NULL; s = s->next) {
        server_rec **key = apr_palloc(pconf, sizeof(*key));
        const char *path;
        apr_uint32_t period;
        chain_t *c = NULL;

        file_of(pconf, s, &path, &period);
        for (i = 0; i < chains->nelts && c == NULL; i++) {
            if (!strcmp(APR_ARRAY_IDX(chains, i, chain_t *)->path, path)) {
                c = APR_ARRAY_IDX(chains, i, chain_t *);
            }
        }
        if (c != NULL && c->period != period) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                         IMGLOGNO(00252) "ImgStoreExpiryKeyFile %s is used with two periods "
                                         "(%lus and %lus): hosts sharing a file share its "
                                         "ImgStoreExpiryKeyPeriod",
                         path, (unsigned long)c->period, (unsigned long)period);
            return 0;
        }
        if (c == NULL) {
            c = apr_pcalloc(pconf, sizeof(*c));
            c->path = path;
            c->period = period;
            if (!sync_file(pconf, s, c)) {
                return 0;
            }
            memcpy(c->lineage, c->st.lineage, sizeof(c->lineage));
            c->server = s; /* whose master keys seal this chain (its first site's) */
            APR_ARRAY_PUSH(chains, chain_t *) = c;
        }
        *key = s;
        apr_hash_set(chain_of, key, sizeof(*key), c);
    }
    return 1;
}

/*
 * Parent timer (httpd's monitor hook, which the MPM's parent runs every ten
 * seconds or so): advance each file once a period boundary has passed and
 * keep only the new secret. Not a mod_watchdog parent instance: mod_watchdog
 * refuses those under forked MPMs (event, prefork) with APR_ENOTIMPL.
 */
int imgstore_expiry_monitor(apr_pool_t *p, server_rec *s)
{
    apr_pool_t *pool;
    int i;

    if (chains == NULL || apr_pool_create(&pool, p) != APR_SUCCESS) {
        return DECLINED;
    }
    for (i = 0; i < chains->nelts; i++) {
        chain_t *c = APR_ARRAY_IDX(chains, i, chain_t *);
        imgstore_expkey_state_t next;
        const char *why = NULL;

        if (imgstore_expkey_period_of(imgstore_now() - grace, c->period) <= c->st.e) {
            continue;
        }
        if (imgstore_expkey_file_sync(pool, c->path, geteuid(), c->period, grace, imgstore_now(),
                                      &next, &why) != IMGSTORE_OK) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                         IMGLOGNO(00253) "ImgStoreExpiryKeyFile %s: not advanced", why);
            continue;
        }
        if (why != NULL) {
            /* Removed while running: a new chain now, which the next restart uses. */
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                         IMGLOGNO(00254) "ImgStoreExpiryKeyFile %s while the server ran: images "
                                         "uploaded before the next restart stay readable",
                         why);
            imgstore_expkey_state_wipe(&next);
            continue;
        }
        c->st = next;
        imgstore_expkey_state_wipe(&next);
    }
    apr_pool_destroy(pool);
    return DECLINED;
}

/* Child timer: wipe what is over, even in a child that serves nothing. */
static apr_status_t child_tick(int state, void *data, apr_pool_t *pool)
{
    int i;

    if (state != AP_WATCHDOG_STATE_RUNNING) {
        return APR_SUCCESS;
    }
    for (i = 0; i < chains->nelts; i++) {
        chain_t *c = APR_ARRAY_IDX(chains, i, chain_t *);
        if (c->image.window != NULL) {
            imgstore_expkey_window_advance(c->image.window, imgstore_now());
        }
    }
    return APR_SUCCESS;
}

void imgstore_expiry_timers(apr_pool_t *pconf, server_rec *s)
{
    APR_OPTIONAL_FN_TYPE(ap_watchdog_get_instance) *get_instance =
        APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_get_instance);
    APR_OPTIONAL_FN_TYPE(ap_watchdog_register_callback) *register_callback =
        APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_register_callback);
    ap_watchdog_t *child = NULL;
    apr_status_t rv = APR_ENOTIMPL;

    /* Every child runs this timer (not a singleton). */
    if (get_instance != NULL && register_callback != NULL) {
        rv = get_instance(&child, "imgstore-expiry-child", 0, 0, pconf);
        if (rv == APR_SUCCESS) {
            rv = register_callback(child, apr_time_from_sec(1), s, child_tick);
        }
    }
    if (rv != APR_SUCCESS) {
        /* Without the timer, children wipe on lookups only. */
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s,
                     IMGLOGNO(00255) "cannot register the expiry-key timer with mod_watchdog: "
                                     "idle children then wipe expired secrets only when they "
                                     "serve a request");
    }
}

void imgstore_expiry_child_init(apr_pool_t *pchild, server_rec *s)
{
    server_rec *v;
    int i;

    for (i = 0; i < chains->nelts; i++) {
        chain_t *c = APR_ARRAY_IDX(chains, i, chain_t *);

        c->image.keys = imgstore_conf_settings(c->server)->expkeys;
        c->image.window = imgstore_expkey_window_create(pchild, &c->st, grace, horizon);
        /* The parent's copy is the parent's: this child keeps only its window. */
        imgstore_expkey_state_wipe(&c->st);
        if (c->image.window == NULL) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                         IMGLOGNO(00256) "cannot build the expiry-key window of %s", c->path);
        } else {
            imgstore_expkey_window_advance(c->image.window, imgstore_now());
        }
    }
    view_of = apr_hash_make(pchild);
    for (v = s; v != NULL; v = v->next) {
        chain_t *c = apr_hash_get(chain_of, &v, sizeof(v));
        site_view_t *sv;
        server_rec **key;

        if (c == NULL) {
            continue;
        }
        sv = apr_pcalloc(pchild, sizeof(*sv));
        key = apr_palloc(pchild, sizeof(*key));
        *key = v;
        sv->image.keys = imgstore_conf_settings(v)->expkeys;
        sv->image.window = c->image.window;
        apr_hash_set(view_of, key, sizeof(*key), sv);
    }
}

typedef struct {
    const unsigned char *lineage;
    unsigned char stored[IMGSTORE_STORE_LINEAGE_BYTES];
} lineage_baton_t;

static imgstore_status_e op_lineage(PGconn *conn, apr_pool_t *p, void *baton, const char **err)
{
    lineage_baton_t *b = baton;

    return imgstore_store_lineage(conn, p, b->lineage, imgstore_now(), b->stored, err);
}

int imgstore_expiry_chain(request_rec *r, const imgstore_image_chain_t **chain)
{
    chain_t *c = chain_of ? apr_hash_get(chain_of, &r->server, sizeof(r->server)) : NULL;
    site_view_t *sv = view_of ? apr_hash_get(view_of, &r->server, sizeof(r->server)) : NULL;
    lineage_baton_t b;
    const char *err = NULL;
    imgstore_status_e st;

    if (c == NULL || sv == NULL || c->image.window == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      IMGLOGNO(00257) "no expiry-key window for this host");
        return imgstore_response_fail(r, IMGSTORE_INTERNAL, NULL, NULL);
    }
    if (!sv->lineage_ok) {
        b.lineage = c->lineage;
        st = imgstore_db_run(r->server, r->pool, op_lineage, &b, &err);
        if (st != IMGSTORE_OK) {
            return imgstore_response_fail(r, st, NULL, err);
        }
        if (memcmp(b.stored, b.lineage, IMGSTORE_STORE_LINEAGE_BYTES) != 0) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          IMGLOGNO(00258) "ImgStoreExpiryKeyFile %s belongs to another chain "
                                          "(lineage %s) than the database's (lineage %s): hosts "
                                          "sharing a database share one file; copy the file of "
                                          "a host already using this database over it (mode "
                                          "0600) and restart, or use another database",
                          c->path, hex(r->pool, b.lineage, 8), hex(r->pool, b.stored, 8));
            apr_table_setn(r->err_headers_out, "Retry-After", "60");
            return imgstore_response_error(
                r, HTTP_SERVICE_UNAVAILABLE,
                "this host's expiry-key file belongs to another chain than its database "
                "(see the error log)");
        }
        sv->lineage_ok = 1;
    }
    *chain = &sv->image;
    return OK;
}
