/*
 * Image type detection from the bytes alone (magic numbers plus a structural
 * walk that rejects truncated files). The client's filename and Content-Type
 * are never consulted. Core unit: libc + APR only.
 */
#ifndef IMGSTORE_SNIFF_H
#define IMGSTORE_SNIFF_H

#include <apr.h>

typedef enum {
    IMGSTORE_TYPE_NONE = 0, /* not a recognised image */
    IMGSTORE_TYPE_JPEG,
    IMGSTORE_TYPE_PNG,
    IMGSTORE_TYPE_GIF,
    IMGSTORE_TYPE_WEBP,
    IMGSTORE_TYPE_AVIF,
    IMGSTORE_TYPE_BMP,
    IMGSTORE_TYPE_SVG, /* recognised only to be refused: it is a script-capable document */
    IMGSTORE_TYPE_COUNT
} imgstore_type_e;

/* Bit for a type in an allow mask. */
#define IMGSTORE_TYPE_BIT(t) (1u << (unsigned)(t))
/* JPEG, PNG, GIF, WebP, AVIF, BMP: the default allow mask. */
#define IMGSTORE_TYPES_DEFAULT                                                                     \
    (IMGSTORE_TYPE_BIT(IMGSTORE_TYPE_JPEG) | IMGSTORE_TYPE_BIT(IMGSTORE_TYPE_PNG) |                \
     IMGSTORE_TYPE_BIT(IMGSTORE_TYPE_GIF) | IMGSTORE_TYPE_BIT(IMGSTORE_TYPE_WEBP) |                \
     IMGSTORE_TYPE_BIT(IMGSTORE_TYPE_AVIF) | IMGSTORE_TYPE_BIT(IMGSTORE_TYPE_BMP))

/*
 * Identify the image in buf. A file whose signature matches but whose
 * structure is truncated or inconsistent yields IMGSTORE_TYPE_NONE.
 * Bytes after a format's end marker are tolerated (cameras append them).
 */
imgstore_type_e imgstore_sniff(const unsigned char *buf, apr_size_t len);

/* "image/jpeg", ... ; NULL for NONE or out of range. */
const char *imgstore_type_mime(imgstore_type_e type);

/* "jpeg", "png", ... ; NULL for NONE or out of range. */
const char *imgstore_type_name(imgstore_type_e type);

/*
 * Parse a type named in ImgStoreAllowTypes: "jpeg"/"jpg", "png", "gif",
 * "webp", "avif", "bmp" or their MIME types, case-insensitive.
 * SVG and unknown names give IMGSTORE_TYPE_NONE.
 */
imgstore_type_e imgstore_type_parse(const char *name);

/* Inverse of imgstore_type_mime (exact match); NONE when unknown. */
imgstore_type_e imgstore_type_from_mime(const char *mime);

/*
 * GIF data sub-blocks (size byte 1-255 and data, ended by a zero size) from
 * buf[*pos]: 1 with *pos just past the terminator, or 0 (*pos unchanged) if
 * they run past len. Shared by the sniffer, the pixel reader and the stripper.
 */
int imgstore_gif_skip_sub_blocks(const unsigned char *buf, apr_size_t len, apr_size_t *pos);

#endif
