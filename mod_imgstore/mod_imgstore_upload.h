/* POST /upload */
#ifndef MOD_IMGSTORE_UPLOAD_H
#define MOD_IMGSTORE_UPLOAD_H

#include "mod_imgstore_config.h"

int imgstore_upload_handle(request_rec *r, const imgstore_dir_conf_t *dc);

#endif
