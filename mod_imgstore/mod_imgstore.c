/*
 * mod_imgstore: a temporary, encrypted image store as an httpd content handler.
 * This file holds the module record and the process-level hooks; see
 * mod_imgstore_private.h for how the glue is divided.
 */
#include "mod_imgstore_private.h"

#include <http_core.h>
#include <http_main.h>
#include <ap_mpm.h>
#include <mpm_common.h>

#include <malloc.h>

#include "imgstore_bigbuf.h"
#include "mod_imgstore_cache.h"
#include "mod_imgstore_cleanup.h"
#include "mod_imgstore_config.h"
#include "mod_imgstore_db.h"
#include "mod_imgstore_expiry.h"
#include "mod_imgstore_handler.h"
#include "mod_imgstore_status.h"

/*
 * What a child keeps of the image buffers it maps (imgstore_bigbuf.h): about
 * as many 1 MB images as a busy child has in flight at once (at 64
 * connections, 8 against 4 kept: 3932 against 3681 hot GETs/s), within what
 * httpd's own allocators keep (MaxMemFree, 2 MB per thread). An image over
 * 2 MB is rare: its buffer goes back to the kernel, so a child's memory
 * still returns to its idle size after large images (test_748).
 */
#define KEEP_BUFFERS 8
#define KEEP_EACH (2 * 1024 * 1024)
#define KEEP_TOTAL (8 * 1024 * 1024)

apr_int64_t imgstore_now(void)
{
    return (apr_int64_t)apr_time_sec(apr_time_now());
}

static int imgstore_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                                server_rec *s)
{
    /*
     * Keys and settings are checked on both passes: the first runs in the
     * launcher before httpd detaches, so a bad key file makes the start
     * command itself fail, as a bad SSL key does.
     */
    if (!imgstore_conf_post_config(pconf, s) || !imgstore_db_post_config(pconf, s) ||
        !imgstore_expiry_post_config(pconf, s)) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    imgstore_cleanup_post_config(pconf, s);
    imgstore_status_post_config(pconf, s);
    imgstore_expiry_timers(pconf, s);
    return OK;
}

/*
 * `httpd -t` (apache2ctl configtest) stops after check_config: load every
 * server's keys there too, with the messages of a start, so a key problem in
 * any virtual host fails the test instead of the next reload. A start loads
 * them in post_config (as root, in the parent), where the error log is open.
 */
static int imgstore_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                                 server_rec *s)
{
    (void)pconf;
    (void)plog;
    if (ap_state_query(AP_SQ_RUN_MODE) == AP_SQ_RM_CONFIG_TEST &&
        !imgstore_conf_post_config(ptemp, s)) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

static void imgstore_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_status_t rv;
    int threaded = 0;

    /*
     * Images pass through buffers up to ImgStoreMaxSize (the upload, libpq's
     * result). glibc raises its mmap threshold after each large free, after
     * which such buffers stay in per-thread arenas: with 25 threads a child
     * kept hundreds of MB. A fixed threshold hands them back to the kernel
     * on free, so a child's memory follows the requests in flight, but for
     * the few image buffers it keeps. Only under a threaded MPM: a prefork
     * child (where mod_php lives) has one arena and keeps glibc's defaults,
     * so co-hosted modules there see no change (see README, "Hosting many
     * sites"), and with one request at a time it has nothing to keep.
     */
    if (ap_mpm_query(AP_MPMQ_IS_THREADED, &threaded) == APR_SUCCESS &&
        threaded != AP_MPMQ_NOT_SUPPORTED) {
#ifdef M_MMAP_THRESHOLD
        mallopt(M_MMAP_THRESHOLD, IMGSTORE_BIGBUF_FROM);
#endif
        imgstore_bigbuf_keep(pchild, KEEP_BUFFERS, KEEP_EACH, KEEP_TOTAL);
    }
    imgstore_expiry_child_init(pchild, s);
    rv = imgstore_db_child_init(pchild, s);

    if (rv == APR_SUCCESS) {
        rv = imgstore_cleanup_child_init(pchild, s);
    }
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, IMGLOGNO(00060) "cannot create a mutex");
    }
}

static void imgstore_register_hooks(apr_pool_t *p)
{
    static const char *const after_dbd[] = {"mod_dbd.c", NULL};
    static const char *const before_watchdog[] = {"mod_watchdog.c", NULL};

    ap_hook_check_config(imgstore_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    /* The timer is registered before mod_watchdog sets up its instances. */
    ap_hook_post_config(imgstore_post_config, after_dbd, before_watchdog, APR_HOOK_MIDDLE);
    /*
     * mod_dbd builds its connection pools in its own child_init: run after it,
     * and before mod_watchdog starts the timer thread that uses our mutex.
     */
    ap_hook_child_init(imgstore_child_init, after_dbd, before_watchdog, APR_HOOK_MIDDLE);
    ap_hook_check_config(imgstore_expiry_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_monitor(imgstore_expiry_monitor, NULL, NULL, APR_HOOK_MIDDLE);
    imgstore_handler_register_hooks();
    imgstore_status_register_hooks();
    imgstore_cache_register_hooks();
}

/* Not AP_DECLARE_MODULE: mod_imgstore_private.h has declared APLOG_USE_MODULE already. */
module AP_MODULE_DECLARE_DATA imgstore_module = {STANDARD20_MODULE_STUFF, imgstore_conf_create_dir,
                                                 imgstore_conf_merge_dir, imgstore_conf_create_srv,
                                                 imgstore_conf_merge_srv, imgstore_cmds,
                                                 imgstore_register_hooks, AP_MODULE_FLAG_NONE};
