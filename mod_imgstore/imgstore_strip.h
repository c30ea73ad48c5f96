/*
 * Metadata stripping: lossless, at container level, never a re-encode. The
 * image data (entropy-coded scans, IDAT/fdAT, VP8/VP8L/ALPH, LZW blocks) is
 * copied byte for byte; only the segments, chunks and extensions that carry
 * metadata are left out, so a decoder yields identical pixels.
 *
 *   JPEG  drops APP1 EXIF (replaced by a minimal EXIF holding only the
 *         Orientation tag when the original had a valid one), APP1 XMP and
 *         extended XMP, APP13 IPTC/Photoshop, COM, every other APPn and the
 *         bytes after EOI; keeps APP0 JFIF, APP2 ICC_PROFILE, APP14 Adobe.
 *   PNG   drops eXIf, tEXt, zTXt, iTXt, tIME and the bytes after IEND; keeps
 *         every other chunk (IHDR PLTE tRNS iCCP sRGB gAMA cHRM sBIT IDAT
 *         acTL fcTL fdAT ...).
 *   WebP  drops the EXIF and "XMP " chunks and the bytes after the RIFF,
 *         clears the VP8X EXIF/XMP flags and rewrites the RIFF size.
 *   GIF   drops comment extensions, application extensions other than the
 *         animation loop (NETSCAPE2.0, ANIMEXTS1.0) and the bytes after the
 *         trailer.
 *   AVIF  not stripped: removing items from meta moves the image data, whose
 *         offsets iloc records (IMGSTORE_STRIP_UNSUPPORTED).
 *   BMP   carries no metadata (IMGSTORE_STRIP_UNCHANGED).
 *
 * Core unit: libc + APR only.
 */
#ifndef IMGSTORE_STRIP_H
#define IMGSTORE_STRIP_H

#include <apr.h>

#include "imgstore_sniff.h"

typedef enum {
    IMGSTORE_STRIP_STRIPPED = 0, /* something was removed; out holds the smaller file */
    IMGSTORE_STRIP_UNCHANGED,    /* nothing to remove; out holds a copy of the input */
    IMGSTORE_STRIP_UNSUPPORTED,  /* this type cannot be stripped losslessly (AVIF); out = copy */
    IMGSTORE_STRIP_MALFORMED     /* in is not a well-formed file of that type; out undefined */
} imgstore_strip_e;

/*
 * Strip the metadata of the image in[0..len) of the given type (as
 * imgstore_sniff() identified it) into out, which must hold len bytes: the
 * result is never larger than the input. out may be in (stripping in place);
 * otherwise the two must not overlap. *out_len receives the result's length
 * (for MALFORMED: 0).
 *
 * The input must sniff as type, and the result sniffs as type too; anything
 * else is MALFORMED (a stripped file that would not pass the sniffer is never
 * handed back). Only STRIPPED means out differs from in.
 */
imgstore_strip_e imgstore_strip(imgstore_type_e type, const unsigned char *in, apr_size_t len,
                                unsigned char *out, apr_size_t *out_len);

/* "stripped", "unchanged", "unsupported", "malformed"; NULL when out of range. */
const char *imgstore_strip_name(imgstore_strip_e status);

#endif
