/*
 * Directives and configuration: the per-server and per-mount structs (UNSET
 * sentinel, one merge line per field), and the server-wide settings, which
 * are settled in post_config and read-only afterwards.
 */
#ifndef MOD_IMGSTORE_CONFIG_H
#define MOD_IMGSTORE_CONFIG_H

#include "mod_imgstore_private.h"

#include "imgstore_crypt.h"
#include "imgstore_expkey.h"

#define IMGSTORE_UNSET -1

#define IMGSTORE_DEFAULT_TTL 300
#define IMGSTORE_DEFAULT_MAX_SIZE (10 * 1024 * 1024)
#define IMGSTORE_DEFAULT_CLEANUP_INTERVAL 60
/* User controls (issue 10). */
#define IMGSTORE_DEFAULT_MAX_TTL (24 * 3600)
#define IMGSTORE_DEFAULT_MAX_PIXELS 100000000
typedef enum {
    IMGSTORE_STRIP_OFF = 0,
    IMGSTORE_STRIP_ON,
    IMGSTORE_STRIP_ALWAYS
} imgstore_strip_mode_e;

typedef struct {
    const char *path;
    int key_id;
} imgstore_key_file_t;

typedef struct imgstore_settings_t imgstore_settings_t;

/* Per server: a <VirtualHost> without its own value inherits the main server's. */
typedef struct {
    apr_array_header_t *key_files; /* imgstore_key_file_t */
    int active_key;                /* key id, IMGSTORE_UNSET */
    apr_int64_t cleanup_interval;  /* seconds, IMGSTORE_UNSET */
    apr_int64_t max_total;         /* bytes, 0 = off, IMGSTORE_UNSET */
    /* Expiry keys (mod_imgstore_expiry.c): per server (virtual host), merged. */
    const char *expiry_key_file;   /* NULL: the default path */
    apr_int64_t expiry_key_period; /* seconds, IMGSTORE_UNSET */
    imgstore_settings_t *settings; /* set in post_config (check_config under -t) */
} imgstore_srv_conf_t;

/* Per mount (<Location>), defaulted from the server level. */
typedef struct {
    /* Paths of the sections holding ImgStore directives, outermost first. */
    apr_array_header_t *mounts;
    apr_int64_t ttl;      /* seconds */
    apr_int64_t max_size; /* bytes */
    int allow_types;      /* IMGSTORE_TYPE_BIT mask */
    const char *base_url; /* NULL: build from the request */
    /* User controls: IMGSTORE_UNSET or the value. */
    apr_int64_t max_ttl;    /* seconds: the most an upload's ttl field may ask */
    apr_int64_t max_pixels; /* declared width x height, any frame */
    int strip;              /* imgstore_strip_mode_e */
    int upload_page;        /* ImgStoreUploadPage: serve the page at the mount, IMGSTORE_UNSET */
} imgstore_dir_conf_t;

/*
 * One server's settings with defaults applied: written in post_config, read-only
 * after. Servers with the same key files share one keyring.
 */
struct imgstore_settings_t {
    imgstore_keyring_t *keyring;     /* NULL until post_config */
    imgstore_expkey_keys_t *expkeys; /* the same master keys for format v2 */
    int active_key;                  /* 0: no key file configured */
    apr_int64_t cleanup_interval;
    apr_int64_t max_total;    /* 0 = off */
    struct imgstore_db_t *db; /* the database it uses (mod_imgstore_db.h); NULL: no DBDriver */
};

extern const command_rec imgstore_cmds[];
void *imgstore_conf_create_srv(apr_pool_t *p, server_rec *s);
void *imgstore_conf_merge_srv(apr_pool_t *p, void *basev, void *addv);
void *imgstore_conf_create_dir(apr_pool_t *p, char *dir);
void *imgstore_conf_merge_dir(apr_pool_t *p, void *basev, void *addv);

/* Effective per-mount values with defaults applied. */
apr_int64_t imgstore_conf_ttl(const imgstore_dir_conf_t *dc);
apr_int64_t imgstore_conf_max_size(const imgstore_dir_conf_t *dc);
int imgstore_conf_allow_types(const imgstore_dir_conf_t *dc);
apr_int64_t imgstore_conf_max_ttl(const imgstore_dir_conf_t *dc);
apr_int64_t imgstore_conf_max_pixels(const imgstore_dir_conf_t *dc);
imgstore_strip_mode_e imgstore_conf_strip(const imgstore_dir_conf_t *dc);
int imgstore_conf_upload_page(const imgstore_dir_conf_t *dc);

/* The longest ImgStoreTTL or ImgStoreMaxTTL (at least the 24h default of ImgStoreMaxTTL): the
 * expiry keys' horizon, since an upload's ttl field may ask for up to ImgStoreMaxTTL. */
apr_int64_t imgstore_conf_longest_ttl(void);

/*
 * Load the key files of every server (main and virtual hosts) and settle their
 * settings; 0 after logging why startup must fail. Also run by check_config
 * under `httpd -t`, so configtest fails with the same message as a start.
 */
int imgstore_conf_post_config(apr_pool_t *pconf, server_rec *s);
/* The settings of server s (a virtual host or the main server). */
const imgstore_settings_t *imgstore_conf_settings(const server_rec *s);

#endif
