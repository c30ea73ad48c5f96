/* Directives, config create/merge, and loading the master keys at startup. */
#include "mod_imgstore_config.h"

#include <http_core.h>
#include <http_main.h>
#include <mpm_common.h>
#include <unistd.h>
#include <unixd.h>

#include <apr_strings.h>
#include <apr_uri.h>

#include <openssl/crypto.h>

#include "imgstore_keyfile.h"
#include "imgstore_sniff.h"
#include "imgstore_value.h"
#include "mod_imgstore_cache.h"

#define TTL_MAX (30 * 24 * 3600)
#define MAX_SIZE_MAX ((apr_int64_t)1 << 30)
#define CLEANUP_INTERVAL_MAX (24 * 3600)

/* The longest ImgStoreTTL read: reset when the main server's config is created (each read). */
static apr_int64_t longest_ttl;

void *imgstore_conf_create_srv(apr_pool_t *p, server_rec *s)
{
    imgstore_srv_conf_t *sc = apr_pcalloc(p, sizeof(*sc));

    sc->key_files = apr_array_make(p, 2, sizeof(imgstore_key_file_t));
    sc->active_key = IMGSTORE_UNSET;
    sc->cleanup_interval = IMGSTORE_UNSET;
    sc->max_total = IMGSTORE_UNSET;
    sc->expiry_key_period = IMGSTORE_UNSET;
    if (!s->is_virtual) {
        longest_ttl = IMGSTORE_DEFAULT_TTL;
    }
    return sc;
}

void *imgstore_conf_merge_srv(apr_pool_t *p, void *basev, void *addv)
{
    imgstore_srv_conf_t *base = basev, *add = addv, *sc = apr_pcalloc(p, sizeof(*sc));

    /* A virtual host with key files of its own uses only those: its tenant's keys. */
    sc->key_files = add->key_files->nelts ? add->key_files : base->key_files;
    sc->active_key = add->active_key != IMGSTORE_UNSET ? add->active_key : base->active_key;
    sc->cleanup_interval =
        add->cleanup_interval != IMGSTORE_UNSET ? add->cleanup_interval : base->cleanup_interval;
    sc->max_total = add->max_total != IMGSTORE_UNSET ? add->max_total : base->max_total;
    sc->expiry_key_file = add->expiry_key_file ? add->expiry_key_file : base->expiry_key_file;
    sc->expiry_key_period =
        add->expiry_key_period != IMGSTORE_UNSET ? add->expiry_key_period : base->expiry_key_period;
    sc->settings = NULL; /* settled for each server in post_config */
    return sc;
}

void *imgstore_conf_create_dir(apr_pool_t *p, char *dir)
{
    imgstore_dir_conf_t *dc = apr_pcalloc(p, sizeof(*dc));

    dc->mounts = apr_array_make(p, 1, sizeof(const char *));
    /* A section's path is a candidate mount; the server level (dir NULL) is none. */
    if (dir != NULL) {
        APR_ARRAY_PUSH(dc->mounts, const char *) = apr_pstrdup(p, dir);
    }
    dc->ttl = IMGSTORE_UNSET;
    dc->max_size = IMGSTORE_UNSET;
    dc->allow_types = IMGSTORE_UNSET;
    dc->max_ttl = IMGSTORE_UNSET;
    dc->max_pixels = IMGSTORE_UNSET;
    dc->strip = IMGSTORE_UNSET;
    dc->upload_page = IMGSTORE_UNSET;
    return dc;
}

void *imgstore_conf_merge_dir(apr_pool_t *p, void *basev, void *addv)
{
    imgstore_dir_conf_t *base = basev, *add = addv, *dc = apr_pcalloc(p, sizeof(*dc));

    dc->mounts = apr_array_append(p, base->mounts, add->mounts);
    dc->ttl = add->ttl != IMGSTORE_UNSET ? add->ttl : base->ttl;
    dc->max_size = add->max_size != IMGSTORE_UNSET ? add->max_size : base->max_size;
    dc->allow_types = add->allow_types != IMGSTORE_UNSET ? add->allow_types : base->allow_types;
    dc->base_url = add->base_url ? add->base_url : base->base_url;
    dc->max_ttl = add->max_ttl != IMGSTORE_UNSET ? add->max_ttl : base->max_ttl;
    dc->max_pixels = add->max_pixels != IMGSTORE_UNSET ? add->max_pixels : base->max_pixels;
    dc->strip = add->strip != IMGSTORE_UNSET ? add->strip : base->strip;
    dc->upload_page = add->upload_page != IMGSTORE_UNSET ? add->upload_page : base->upload_page;
    return dc;
}

apr_int64_t imgstore_conf_ttl(const imgstore_dir_conf_t *dc)
{
    return dc->ttl != IMGSTORE_UNSET ? dc->ttl : IMGSTORE_DEFAULT_TTL;
}

apr_int64_t imgstore_conf_max_size(const imgstore_dir_conf_t *dc)
{
    return dc->max_size != IMGSTORE_UNSET ? dc->max_size : IMGSTORE_DEFAULT_MAX_SIZE;
}

int imgstore_conf_allow_types(const imgstore_dir_conf_t *dc)
{
    return dc->allow_types != IMGSTORE_UNSET ? dc->allow_types : (int)IMGSTORE_TYPES_DEFAULT;
}

int imgstore_conf_upload_page(const imgstore_dir_conf_t *dc)
{
    return dc->upload_page != IMGSTORE_UNSET ? dc->upload_page : 1;
}

apr_int64_t imgstore_conf_max_ttl(const imgstore_dir_conf_t *dc)
{
    return dc->max_ttl != IMGSTORE_UNSET ? dc->max_ttl : IMGSTORE_DEFAULT_MAX_TTL;
}

apr_int64_t imgstore_conf_max_pixels(const imgstore_dir_conf_t *dc)
{
    return dc->max_pixels != IMGSTORE_UNSET ? dc->max_pixels : IMGSTORE_DEFAULT_MAX_PIXELS;
}

imgstore_strip_mode_e imgstore_conf_strip(const imgstore_dir_conf_t *dc)
{
    return dc->strip != IMGSTORE_UNSET ? (imgstore_strip_mode_e)dc->strip : IMGSTORE_STRIP_OFF;
}

/*
 * Per-mount directives belong in <Location> or at server level: routes are
 * relative to a URL prefix, which <Directory>, <Files>, regex sections and
 * .htaccess do not give.
 */
static const char *check_mount_context(cmd_parms *cmd)
{
    const ap_directive_t *d;

    for (d = cmd->directive ? cmd->directive->parent : NULL; d != NULL; d = d->parent) {
        const char *name = d->directive;
        if (!strcasecmp(name, "<LocationMatch") || !strcasecmp(name, "<Directory") ||
            !strcasecmp(name, "<DirectoryMatch") || !strcasecmp(name, "<Files") ||
            !strcasecmp(name, "<FilesMatch") ||
            (!strcasecmp(name, "<Location") && d->args && d->args[0] == '~')) {
            return apr_psprintf(cmd->pool,
                                "%s is not allowed in %s>: use <Location> or the "
                                "server level",
                                cmd->cmd->name, name);
        }
    }
    return NULL;
}

static const char *bad_value(cmd_parms *cmd, const char *value, const char *why)
{
    return apr_psprintf(cmd->pool, "%s: invalid value '%s': %s", cmd->cmd->name, value, why);
}

static const char *parse_key_id(cmd_parms *cmd, const char *arg, int *key_id)
{
    char *end;
    long v = strtol(arg, &end, 10);

    if (*arg == '\0' || *end != '\0' || v < 1 || v > IMGSTORE_KEY_ID_MAX) {
        return bad_value(
            cmd, arg,
            apr_psprintf(cmd->pool, "a key id is an integer from 1 to %d", IMGSTORE_KEY_ID_MAX));
    }
    *key_id = (int)v;
    return NULL;
}

static const char *set_key_file(cmd_parms *cmd, void *dummy, const char *path, const char *id)
{
    imgstore_srv_conf_t *sc = ap_get_module_config(cmd->server->module_config, &imgstore_module);
    const char *err = ap_check_cmd_context(cmd, NOT_IN_DIR_CONTEXT);
    imgstore_key_file_t *kf;

    if (err != NULL) {
        return err;
    }
    kf = apr_array_push(sc->key_files);
    kf->path = ap_server_root_relative(cmd->pool, path);
    kf->key_id = 0;
    if (kf->path == NULL) {
        return bad_value(cmd, path, "not a valid path");
    }
    return id ? parse_key_id(cmd, id, &kf->key_id) : NULL;
}

static const char *set_expiry_key_file(cmd_parms *cmd, void *dummy, const char *path)
{
    imgstore_srv_conf_t *sc = ap_get_module_config(cmd->server->module_config, &imgstore_module);
    const char *err = ap_check_cmd_context(cmd, NOT_IN_DIR_CONTEXT);

    if (err != NULL) {
        return err;
    }
    sc->expiry_key_file = ap_server_root_relative(cmd->pool, path);
    return sc->expiry_key_file ? NULL : bad_value(cmd, path, "not a valid path");
}

static const char *set_active_key(cmd_parms *cmd, void *dummy, const char *arg)
{
    imgstore_srv_conf_t *sc = ap_get_module_config(cmd->server->module_config, &imgstore_module);
    const char *err = ap_check_cmd_context(cmd, NOT_IN_DIR_CONTEXT);

    return err ? err : parse_key_id(cmd, arg, &sc->active_key);
}

/*
 * The numeric directives share one setter: cmd->info says which field of
 * which struct the value goes to, how it is spelled and what range it takes.
 */
typedef enum { NUM_DURATION, NUM_SIZE, NUM_COUNT } num_kind_e;

typedef struct {
    int server; /* 1: server-wide (GLOBAL_ONLY), 2: per server/vhost (srv_conf); 0: per mount */
    apr_size_t offset; /* of the apr_int64_t field */
    num_kind_e kind;
    int off_is_zero; /* "off" sets 0 */
    apr_int64_t min, max;
    const char *range; /* the error text for a value out of range */
} num_slot_t;

static const char *set_number(cmd_parms *cmd, void *dcv, const char *arg)
{
    const num_slot_t *slot = cmd->info;
    const char *err;
    char *base;
    apr_int64_t v;

    if (slot->server) {
        err = slot->server > 1 ? ap_check_cmd_context(cmd, NOT_IN_DIR_CONTEXT)
                               : ap_check_cmd_context(cmd, GLOBAL_ONLY);
        base = ap_get_module_config(cmd->server->module_config, &imgstore_module);
    } else {
        err = check_mount_context(cmd);
        base = dcv;
    }
    if (err != NULL) {
        return err;
    }
    if (slot->off_is_zero && !strcasecmp(arg, "off")) {
        *(apr_int64_t *)(base + slot->offset) = 0;
        return NULL;
    }
    err = slot->kind == NUM_DURATION ? imgstore_value_parse_duration(arg, &v)
          : slot->kind == NUM_COUNT  ? imgstore_value_parse_count(arg, &v)
                                     : imgstore_value_parse_size(arg, &v);
    if (err != NULL) {
        return bad_value(cmd, arg, err);
    }
    if (v < slot->min || v > slot->max) {
        return bad_value(cmd, arg, slot->range);
    }
    *(apr_int64_t *)(base + slot->offset) = v;
    /* An upload's ttl field may ask for up to ImgStoreMaxTTL: expiry keys must reach it. */
    if ((slot->offset == APR_OFFSETOF(imgstore_dir_conf_t, ttl) ||
         slot->offset == APR_OFFSETOF(imgstore_dir_conf_t, max_ttl)) &&
        !slot->server && v > longest_ttl) {
        longest_ttl = v;
    }
    return NULL;
}

static const num_slot_t slot_cleanup_interval = {
    .server = 2,
    .offset = APR_OFFSETOF(imgstore_srv_conf_t, cleanup_interval),
    .kind = NUM_DURATION,
    .min = 1,
    .max = CLEANUP_INTERVAL_MAX,
    .range = "must be from 1s to 24h"};
static const num_slot_t slot_max_total = {.server = 2,
                                          .offset = APR_OFFSETOF(imgstore_srv_conf_t, max_total),
                                          .kind = NUM_SIZE,
                                          .off_is_zero = 1,
                                          .min = 1,
                                          .max = APR_INT64_MAX,
                                          .range = "must be a size above zero, or off"};
static const num_slot_t slot_expiry_key_period = {
    .server = 2, /* per server: the main server or a <VirtualHost> */
    .offset = APR_OFFSETOF(imgstore_srv_conf_t, expiry_key_period),
    .kind = NUM_DURATION,
    .min = IMGSTORE_EXPKEY_PERIOD_MIN,
    .max = IMGSTORE_EXPKEY_PERIOD_MAX,
    .range = "must be from 1s to 24h"};
static const num_slot_t slot_ttl = {.offset = APR_OFFSETOF(imgstore_dir_conf_t, ttl),
                                    .kind = NUM_DURATION,
                                    .min = 1,
                                    .max = TTL_MAX,
                                    .range = "must be from 1s to 720h"};
static const num_slot_t slot_max_size = {.offset = APR_OFFSETOF(imgstore_dir_conf_t, max_size),
                                         .kind = NUM_SIZE,
                                         .min = 1,
                                         .max = MAX_SIZE_MAX,
                                         .range = "must be from 1 byte to 1G"};

static const num_slot_t slot_max_ttl = {.offset = APR_OFFSETOF(imgstore_dir_conf_t, max_ttl),
                                        .kind = NUM_DURATION,
                                        .min = 1,
                                        .max = TTL_MAX,
                                        .range = "must be from 1s to 30d (720h)"};
static const num_slot_t slot_max_pixels = {.offset = APR_OFFSETOF(imgstore_dir_conf_t, max_pixels),
                                           .kind = NUM_COUNT,
                                           .min = 1,
                                           .max = APR_INT64_C(1) << 40,
                                           .range = "must be from 1 to 2^40 pixels"};

static const char *set_strip(cmd_parms *cmd, void *dcv, const char *arg)
{
    imgstore_dir_conf_t *dc = dcv;
    const char *err = check_mount_context(cmd);

    if (err != NULL) {
        return err;
    }
    if (!strcasecmp(arg, "off")) {
        dc->strip = IMGSTORE_STRIP_OFF;
    } else if (!strcasecmp(arg, "on")) {
        dc->strip = IMGSTORE_STRIP_ON;
    } else if (!strcasecmp(arg, "always")) {
        dc->strip = IMGSTORE_STRIP_ALWAYS;
    } else {
        return bad_value(cmd, arg, "must be off, on or always");
    }
    return NULL;
}

static const char *set_allow_types(cmd_parms *cmd, void *dcv, const char *args)
{
    imgstore_dir_conf_t *dc = dcv;
    const char *err = check_mount_context(cmd);
    int mask = 0;

    if (err != NULL) {
        return err;
    }
    while (*args) {
        const char *word = ap_getword_conf(cmd->temp_pool, &args);
        imgstore_type_e t;

        if (*word == '\0') {
            break;
        }
        t = imgstore_type_parse(word);
        if (t == IMGSTORE_TYPE_NONE) {
            return bad_value(cmd, word,
                             !strcasecmp(word, "svg") || !strcasecmp(word, "image/svg+xml")
                                 ? "SVG is a script-capable document and is never accepted"
                                 : "known types are jpeg, png, gif, webp, avif, bmp");
        }
        mask |= (int)IMGSTORE_TYPE_BIT(t);
    }
    if (mask == 0) {
        return apr_psprintf(cmd->pool, "%s needs at least one type", cmd->cmd->name);
    }
    dc->allow_types = mask;
    return NULL;
}

static const char *set_base_url(cmd_parms *cmd, void *dcv, const char *arg)
{
    imgstore_dir_conf_t *dc = dcv;
    const char *err = check_mount_context(cmd);
    apr_uri_t uri;
    apr_size_t len = strlen(arg);

    if (err != NULL) {
        return err;
    }
    if (apr_uri_parse(cmd->pool, arg, &uri) != APR_SUCCESS || uri.scheme == NULL ||
        (strcasecmp(uri.scheme, "http") && strcasecmp(uri.scheme, "https")) ||
        uri.hostname == NULL || *uri.hostname == '\0' || uri.query || uri.fragment || uri.user ||
        uri.password) {
        return bad_value(cmd, arg,
                         "must be an absolute http:// or https:// URL without query, "
                         "fragment or credentials");
    }
    while (len > 0 && arg[len - 1] == '/') {
        len--;
    }
    dc->base_url = apr_pstrmemdup(cmd->pool, arg, len);
    return NULL;
}

static const char *set_upload_page(cmd_parms *cmd, void *dcv, int on)
{
    const char *err = check_mount_context(cmd);

    if (err == NULL) {
        ((imgstore_dir_conf_t *)dcv)->upload_page = on;
    }
    return err;
}

const command_rec imgstore_cmds[] = {
    AP_INIT_TAKE12("ImgStoreKeyFile", set_key_file, NULL, RSRC_CONF,
                   "A master key file (32 raw bytes or 64 hex digits, mode 0400) and its "
                   "numeric key id"),
    AP_INIT_TAKE1("ImgStoreActiveKey", set_active_key, NULL, RSRC_CONF,
                  "The key id that encrypts new images"),
    AP_INIT_TAKE1("ImgStoreExpiryKeyFile", set_expiry_key_file, NULL, RSRC_CONF,
                  "The expiry-key state file (created if missing; default "
                  "<DefaultRuntimeDir>/imgstore-expiry.key; never back it up)"),
    AP_INIT_TAKE1("ImgStoreExpiryKeyPeriod", set_number, (void *)&slot_expiry_key_period, RSRC_CONF,
                  "Length of an expiry-key period (duration, 1s to 24h, default 10m)"),
    AP_INIT_TAKE1("ImgStoreCleanupInterval", set_number, (void *)&slot_cleanup_interval, RSRC_CONF,
                  "How often expired images are deleted (duration, default 60s)"),
    AP_INIT_TAKE1("ImgStoreMaxTotal", set_number, (void *)&slot_max_total, RSRC_CONF,
                  "Upper bound on the bytes of live images stored (size or off, default off)"),
    AP_INIT_TAKE1("ImgStoreTTL", set_number, (void *)&slot_ttl, RSRC_CONF | ACCESS_CONF,
                  "How long an image can be fetched after upload (duration, default 5m)"),
    AP_INIT_TAKE1("ImgStoreMaxSize", set_number, (void *)&slot_max_size, RSRC_CONF | ACCESS_CONF,
                  "Largest accepted image (size, default 10M)"),
    AP_INIT_RAW_ARGS("ImgStoreAllowTypes", set_allow_types, NULL, RSRC_CONF | ACCESS_CONF,
                     "Image types accepted (default jpeg png gif webp avif bmp)"),
    AP_INIT_TAKE1("ImgStoreBaseURL", set_base_url, NULL, RSRC_CONF | ACCESS_CONF,
                  "Public URL of the mount, for image URLs behind a reverse proxy"),
    AP_INIT_TAKE1("ImgStoreMaxTTL", set_number, (void *)&slot_max_ttl, RSRC_CONF | ACCESS_CONF,
                  "Longest expiry an upload's ttl field may ask for (duration, default 24h)"),
    AP_INIT_TAKE1("ImgStoreStripMetadata", set_strip, NULL, RSRC_CONF | ACCESS_CONF,
                  "Remove metadata (GPS, camera serial, XMP, comments) before storing: off, on "
                  "(unless the upload says strip_metadata=0) or always (default off)"),
    AP_INIT_TAKE1("ImgStoreMaxPixels", set_number, (void *)&slot_max_pixels,
                  RSRC_CONF | ACCESS_CONF,
                  "Most pixels (width x height, any frame) an image may declare (default "
                  "100000000)"),
    AP_INIT_FLAG("ImgStoreUploadPage", set_upload_page, NULL, RSRC_CONF | ACCESS_CONF,
                 "Serve the upload page at GET <mount>/ (on or off, default on)"),
    /* The hot image cache (mod_imgstore_cache.c). */
    AP_INIT_TAKE1("ImgStoreCache", imgstore_cache_cmd, NULL, RSRC_CONF,
                  "Keep sealed images in mod_socache: provider:args, e.g. shmcb:cache(67108864) "
                  "(default: no cache)"),
    {NULL}};

static int load_keys(apr_pool_t *pconf, server_rec *s, const imgstore_srv_conf_t *sc,
                     imgstore_settings_t *settings)
{
    /* The user starting httpd (root in production) reads the key: not the server's User. */
    uid_t starter_uid = geteuid();
    int i;

    settings->keyring = imgstore_keyring_create(pconf);
    settings->expkeys = imgstore_expkey_keys_create(pconf);
    if (settings->keyring == NULL || settings->expkeys == NULL) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     IMGLOGNO(00001) "OpenSSL lacks HKDF or AES-256-GCM; cannot start");
        return 0;
    }
    for (i = 0; i < sc->key_files->nelts; i++) {
        const imgstore_key_file_t *kf = &APR_ARRAY_IDX(sc->key_files, i, imgstore_key_file_t);
        unsigned char master[IMGSTORE_MASTER_KEY_BYTES];
        int key_id = kf->key_id ? kf->key_id : 1;
        const char *err = imgstore_keyfile_load(pconf, kf->path, starter_uid, master);

        if (err == NULL) {
            err = imgstore_keyring_add(settings->keyring, key_id, master);
        }
        if (err == NULL) {
            err = imgstore_expkey_keys_add(settings->expkeys, key_id, master);
        }
        OPENSSL_cleanse(master, sizeof(master));
        if (err != NULL) {
            /* A file without an id is key 1: two of them collide as a duplicate id. */
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                         IMGLOGNO(00003) "ImgStoreKeyFile %s (key id %d) %s", kf->path, key_id,
                         err);
            return 0;
        }
    }
    return 1;
}

/* The keyring and active key of one set of key files (a server's own or inherited). */
static int settle_keys(apr_pool_t *pconf, server_rec *s, const imgstore_srv_conf_t *sc,
                       imgstore_settings_t *settings, int any_keys)
{
    if (!load_keys(pconf, s, sc, settings)) {
        return 0;
    }
    settings->active_key = sc->active_key;
    if (sc->key_files->nelts == 0) {
        /* Only worth a warning when no site has a key: else it is a site without the store. */
        ap_log_error(APLOG_MARK, any_keys ? APLOG_INFO : APLOG_WARNING, 0, s,
                     IMGLOGNO(00004) "no ImgStoreKeyFile configured%s%s: the imgstore handler "
                                     "will answer 500 there until one is",
                     s->is_virtual ? " for virtual host " : "",
                     s->is_virtual && s->server_hostname ? s->server_hostname : "");
        settings->active_key = 0;
        return 1;
    }
    if (settings->active_key == IMGSTORE_UNSET) {
        if (sc->key_files->nelts > 1) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                         IMGLOGNO(00005) "several ImgStoreKeyFile keys: say which one encrypts "
                                         "new images with ImgStoreActiveKey");
            return 0;
        }
        settings->active_key = APR_ARRAY_IDX(sc->key_files, 0, imgstore_key_file_t).key_id
                                   ? APR_ARRAY_IDX(sc->key_files, 0, imgstore_key_file_t).key_id
                                   : 1;
    }
    if (!imgstore_keyring_has(settings->keyring, settings->active_key)) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     IMGLOGNO(00006) "ImgStoreActiveKey %d names no key loaded by "
                                     "ImgStoreKeyFile",
                     settings->active_key);
        return 0;
    }
    return 1;
}

apr_int64_t imgstore_conf_longest_ttl(void)
{
    /* A mount without ImgStoreMaxTTL takes ttl fields up to its default. */
    return longest_ttl > IMGSTORE_DEFAULT_MAX_TTL ? longest_ttl : IMGSTORE_DEFAULT_MAX_TTL;
}

int imgstore_conf_post_config(apr_pool_t *pconf, server_rec *s)
{
    server_rec *v, *w;
    int any_keys = 0;

    for (v = s; v != NULL; v = v->next) {
        const imgstore_srv_conf_t *sc = ap_get_module_config(v->module_config, &imgstore_module);
        any_keys |= sc->key_files->nelts > 0;
    }

    /*
     * Each virtual host's settings: a host that inherits the key files and
     * active key of one already settled shares its keyring (loaded once).
     */
    for (v = s; v != NULL; v = v->next) {
        imgstore_srv_conf_t *sc = ap_get_module_config(v->module_config, &imgstore_module);
        imgstore_settings_t *set = apr_pcalloc(pconf, sizeof(*set));

        for (w = s; w != v; w = w->next) {
            const imgstore_srv_conf_t *wc =
                ap_get_module_config(w->module_config, &imgstore_module);
            if (wc->key_files == sc->key_files && wc->active_key == sc->active_key) {
                set->keyring = wc->settings->keyring;
                set->expkeys = wc->settings->expkeys;
                set->active_key = wc->settings->active_key;
                break;
            }
        }
        if (w == v && !settle_keys(pconf, v, sc, set, any_keys)) {
            return 0;
        }
        set->cleanup_interval = sc->cleanup_interval != IMGSTORE_UNSET
                                    ? sc->cleanup_interval
                                    : IMGSTORE_DEFAULT_CLEANUP_INTERVAL;
        set->max_total = sc->max_total != IMGSTORE_UNSET ? sc->max_total : 0;
        sc->settings = set;
    }
    return 1;
}

const imgstore_settings_t *imgstore_conf_settings(const server_rec *s)
{
    const imgstore_srv_conf_t *sc = ap_get_module_config(s->module_config, &imgstore_module);

    return sc->settings;
}
