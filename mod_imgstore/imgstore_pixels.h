/*
 * Pixel-bomb guard: how many pixels an image declares, read from its headers
 * without decoding anything. The answer is the largest width x height over
 * the canvas and every frame or image the file declares:
 *
 *   JPEG  every SOFn frame header (a height of 0, "defined later by DNL",
 *         counts as 65535)
 *   PNG   IHDR and every APNG fcTL
 *   GIF   the logical screen and every image descriptor
 *   WebP  the VP8X canvas, every ANMF frame, every VP8 and VP8L header
 *   BMP   the DIB header
 *   AVIF  every ispe property (image spatial extents) in meta/iprp/ipco
 *
 * Core unit: libc + APR only.
 */
#ifndef IMGSTORE_PIXELS_H
#define IMGSTORE_PIXELS_H

#include <apr.h>

#include "imgstore_sniff.h"

/*
 * Set *pixels to the declared pixel count of the image in buf[0..len) of
 * the given type and return 1; return 0 (and *pixels = 0) when no dimension
 * could be read, or for a type without one (NONE, SVG). Dimensions are at
 * most 32 bits wide each, so the product cannot overflow.
 */
int imgstore_pixels(imgstore_type_e type, const unsigned char *buf, apr_size_t len,
                    apr_uint64_t *pixels);

#endif
