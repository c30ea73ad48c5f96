/*
 * GET <mount>/: the upload page. Its HTML, CSS and JS live in
 * mod_imgstore/page/; at build time pagegen inlines them into
 * mod_imgstore_page_data.c (the page cut where the mount's values go, and
 * the hashes of its inline style and script for the CSP).
 */
#ifndef MOD_IMGSTORE_PAGE_H
#define MOD_IMGSTORE_PAGE_H

#include <stddef.h>

#include "mod_imgstore_private.h"

#include "mod_imgstore_config.h"

extern const unsigned char imgstore_page_head[];
extern const size_t imgstore_page_head_len;
extern const unsigned char imgstore_page_tail[];
extern const size_t imgstore_page_tail_len;
extern const char imgstore_page_style_hash[];
extern const char imgstore_page_script_hash[];

/* Serve the page (or its redirect to "<mount>/"): the mount's limits go in as data attributes. */
int imgstore_page_handle(request_rec *r, const imgstore_dir_conf_t *dc);

#endif
