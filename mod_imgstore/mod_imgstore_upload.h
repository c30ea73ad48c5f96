/* POST /upload */
#ifndef MOD_IMGSTORE_UPLOAD_H
#define MOD_IMGSTORE_UPLOAD_H

#include "mod_imgstore_config.h"

/* args: the query string as the client sent it (r->args is redacted by then), or NULL. */
int imgstore_upload_handle(request_rec *r, const imgstore_dir_conf_t *dc, const char *args);

#endif
