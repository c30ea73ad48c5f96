/* GET/HEAD /image/<token> */
#ifndef MOD_IMGSTORE_IMAGE_H
#define MOD_IMGSTORE_IMAGE_H

#include "mod_imgstore_config.h"

/* token: the path segment after /image/, as the client spelled it. */
int imgstore_image_handle(request_rec *r, const imgstore_dir_conf_t *dc, const char *token);

#endif
