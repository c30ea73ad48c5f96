/* GET/HEAD /image/<token> */
#ifndef MOD_IMGSTORE_IMAGE_H
#define MOD_IMGSTORE_IMAGE_H

#include "mod_imgstore_config.h"

/* token_text: the path after /image/, as the client spelled it (not yet decoded). */
int imgstore_image_handle(request_rec *r, const imgstore_dir_conf_t *dc, const char *token_text);

#endif
