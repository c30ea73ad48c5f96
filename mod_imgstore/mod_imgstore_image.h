/* GET/HEAD /image/<token> */
#ifndef MOD_IMGSTORE_IMAGE_H
#define MOD_IMGSTORE_IMAGE_H

#include "mod_imgstore_config.h"

/* token_text: the path after /image/, as the client spelled it (not yet decoded). */
int imgstore_image_handle(request_rec *r, const imgstore_dir_conf_t *dc, const char *token_text);

/*
 * DELETE /image/<token> with X-Delete-Token: 204 and the row is gone; 403
 * JSON for a missing or wrong delete token; 404 for an unknown, expired or
 * malformed token.
 */
int imgstore_image_delete(request_rec *r, const char *token_text);

/* The delete token's header; a post_read_request hook moves it to r->pool's userdata. */
#define IMGSTORE_DELETE_HEADER "X-Delete-Token"

#endif
