/*
 * Streaming multipart/form-data parser (RFC 7578 over RFC 2046 framing).
 *
 * Decisions a caller or reviewer must know:
 *
 * - Delimiter search keeps only the number of bytes of "\r\n--" boundary
 *   matched so far: those bytes are by definition a prefix of the delimiter,
 *   so no input is ever copied for lookbehind and a boundary may be split at
 *   any offset. As a boundary holds no CR, a CR occurs in the delimiter only
 *   at its start, so after a mismatch no later start can hide inside the
 *   partial match: the whole of it is data and matching resumes at the byte
 *   that broke it (KMP with an all-zero failure table).
 *
 * - Part headers must use CRLF. A bare LF or a bare CR in a header block is
 *   MALFORMED: curl, browsers and Python requests all send CRLF, and a part
 *   that a front-end filter and this parser would split into different
 *   header lines is a smuggling vector. Obsolete line folding, whitespace
 *   before the colon, control characters and NUL are MALFORMED for the same
 *   reason. The delimiter itself always needs its CRLF.
 *
 * - A part body must be preceded by the CRLF of the delimiter: the empty line
 *   ending the headers does not double as it, so "\r\n\r\n--boundary" right
 *   after the headers is MALFORMED rather than an empty part (parsers
 *   disagree on that one).
 *
 * - A delimiter followed by anything but "--", or transport padding and CRLF,
 *   is MALFORMED: the boundary occurring as a prefix of body data is exactly
 *   what RFC 2046 forbids the sender to do, so we refuse to guess.
 *
 * - The body must open with a boundary, optionally after a preamble that
 *   ends in CRLF. The preamble is bounded by max_header_bytes (no real client
 *   sends one); if input ends while still in a non-empty preamble, finish()
 *   says MALFORMED ("no opening boundary"), if it ends on an empty or
 *   partial first line it says TRUNCATED. A close delimiter as the very first
 *   boundary (a body with no part at all) is MALFORMED: RFC 2046 requires at
 *   least one body part.
 *
 * - Duplicate Content-Disposition headers, duplicate name or filename
 *   parameters and an empty name are MALFORMED. filename* is skipped: the
 *   filename is informative only, so there is nothing to gain from decoding
 *   a second, possibly different, spelling of it.
 *
 * - max_file_bytes is taken literally: 0 accepts only an empty file.
 *
 * - The file buffer is wiped before it is freed or moved, so the plaintext
 *   does not linger in freed heap memory; it is released as soon as an error
 *   is reported, and otherwise by a cleanup on the pool.
 */
#include <stdlib.h>
#include <string.h>

#include <apr_pools.h>
#include <apr_strings.h>

#include "imgstore_bytes.h"
#include "imgstore_multipart.h"
#include "imgstore_wipe.h"

#define MP_DEFAULT_MAX_HEADER 8192
#define MP_DEFAULT_MAX_PARTS 16
/* Avoid a string of tiny reallocations when no size hint is given. */
#define MP_MIN_CAPACITY 256
/*
 * The most a file buffer starts with, whatever the size hint claims: the
 * buffer grows from what arrives, so a short request that claims a large
 * Content-Length costs no more than what it sent.
 */
#define MP_FIRST_CAPACITY (64 * 1024)
#define MP_DELIM_MAX (4 + IMGSTORE_MP_BOUNDARY_MAX)

typedef enum {
    ST_PREAMBLE, /* looking for the first dash-boundary */
    ST_DELIM,    /* a delimiter just matched */
    ST_DASH,     /* "-" after a delimiter, need a second one */
    ST_PAD,      /* transport padding after a delimiter */
    ST_LF,       /* CR after a delimiter, need LF */
    ST_HEADERS,  /* inside a part's header block */
    ST_BODY,     /* inside a part's body */
    ST_CLOSED,   /* close delimiter seen, epilogue ignored */
    ST_FAILED    /* sticky error in mp->error */
} mp_state_e;

struct imgstore_multipart_t {
    apr_pool_t *pool;
    mp_state_e state;
    imgstore_mp_status_e error;
    imgstore_mp_limits_t lim;

    unsigned char delim[MP_DELIM_MAX];
    apr_size_t dlen;
    apr_size_t match;    /* delimiter bytes matched so far */
    apr_size_t phantom;  /* leading matched bytes implied, not part of the data */
    apr_size_t preamble; /* preamble bytes discarded */

    int nparts;
    int in_file;
    int have_file;

    /* Current part's header block; pointers below point into it. */
    unsigned char *hdr;
    apr_size_t hdr_len;
    apr_size_t line_start;
    int cd_seen;
    const unsigned char *name;
    apr_size_t name_len;
    const unsigned char *fname;
    apr_size_t fname_len;
    int have_name;
    int have_fname;

    unsigned char *buf;
    apr_size_t len;
    apr_size_t cap;
    apr_size_t cap_max;
    const char *filename;

    /* Small fields (imgstore_multipart_field): the current one and those complete. */
    struct mp_field {
        const char *name;
        char value[IMGSTORE_MP_FIELD_MAX + 1];
        apr_size_t len; /* may pass IMGSTORE_MP_FIELD_MAX: counted, not kept */
    } fields[MP_DEFAULT_MAX_PARTS];
    int nfields;
    struct mp_field *in_field;
};

static apr_size_t sat_add(apr_size_t a, apr_size_t b)
{
    return a > APR_SIZE_MAX - b ? APR_SIZE_MAX : a + b;
}

/* What may hold file bytes: what was written, and the tailroom the caller may fill. */
static apr_size_t file_used(const imgstore_multipart_t *mp)
{
    apr_size_t used = sat_add(mp->len, mp->lim.tailroom);

    return used < mp->cap ? used : mp->cap;
}

static void file_release(imgstore_multipart_t *mp)
{
    if (mp->buf) {
        imgstore_wipe(mp->buf, file_used(mp));
        free(mp->buf);
        mp->buf = NULL;
    }
    mp->cap = 0;
    mp->len = 0;
}

static apr_status_t mp_cleanup(void *data)
{
    file_release(data);
    return APR_SUCCESS;
}

static imgstore_mp_status_e mp_fail(imgstore_multipart_t *mp, imgstore_mp_status_e st)
{
    mp->state = ST_FAILED;
    mp->error = st;
    file_release(mp);
    return st;
}

static int is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

static int is_tchar(unsigned char c)
{
    return imgstore_ascii_alnum(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int is_bchar(unsigned char c)
{
    return imgstore_ascii_alnum(c) || (c != 0 && strchr("'()+_,-./:=? ", c) != NULL);
}

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static imgstore_mp_status_e file_start(imgstore_multipart_t *mp)
{
    apr_size_t base =
        mp->lim.size_hint < mp->lim.max_file_bytes ? mp->lim.size_hint : mp->lim.max_file_bytes;
    apr_size_t cap;

    if (base > MP_FIRST_CAPACITY) {
        base = MP_FIRST_CAPACITY;
    }
    cap = sat_add(base, mp->lim.tailroom);

    if (cap < MP_MIN_CAPACITY) {
        cap = MP_MIN_CAPACITY;
    }
    if (cap > mp->cap_max) {
        cap = mp->cap_max;
    }
    if (cap == 0) {
        /* malloc(0) may return NULL, which we would mistake for failure. */
        cap = 1;
    }
    mp->buf = malloc(cap);
    if (!mp->buf) {
        return IMGSTORE_MP_ERR_NOMEM;
    }
    mp->cap = cap;
    mp->len = 0;
    return IMGSTORE_MP_OK;
}

static imgstore_mp_status_e file_append(imgstore_multipart_t *mp, const unsigned char *b,
                                        apr_size_t n)
{
    apr_size_t need;

    if (n > mp->lim.max_file_bytes - mp->len) {
        return IMGSTORE_MP_ERR_FILE_TOO_BIG;
    }
    /* len + n <= max_file_bytes here; only the tailroom addition can overflow. */
    need = sat_add(mp->len + n, mp->lim.tailroom);
    if (need == APR_SIZE_MAX) {
        /* Saturated (absurd limits): no allocation could hold it. */
        return IMGSTORE_MP_ERR_NOMEM;
    }
    if (need > mp->cap) {
        apr_size_t ncap = mp->cap;
        unsigned char *nbuf;

        /* need <= cap_max since len + n <= max_file_bytes, so this ends with ncap >= need. */
        while (ncap < need) {
            ncap = ncap > mp->cap_max / 2 ? mp->cap_max : ncap * 2;
        }
        /* Not realloc: a moved block would leave a plaintext copy behind unwiped. */
        nbuf = malloc(ncap);
        if (!nbuf) {
            return IMGSTORE_MP_ERR_NOMEM;
        }
        memcpy(nbuf, mp->buf, mp->len);
        imgstore_wipe(mp->buf, mp->len);
        free(mp->buf);
        mp->buf = nbuf;
        mp->cap = ncap;
    }
    memcpy(mp->buf + mp->len, b, n);
    mp->len += n;
    return IMGSTORE_MP_OK;
}

/* Bytes proven not to belong to a delimiter. */
static imgstore_mp_status_e emit(imgstore_multipart_t *mp, const unsigned char *b, apr_size_t n)
{
    if (mp->state == ST_PREAMBLE) {
        if (n > mp->lim.max_header_bytes - mp->preamble) {
            return IMGSTORE_MP_ERR_MALFORMED;
        }
        mp->preamble += n;
        return IMGSTORE_MP_OK;
    }
    if (mp->in_field != NULL) {
        struct mp_field *f = mp->in_field;
        apr_size_t room = f->len < IMGSTORE_MP_FIELD_MAX ? IMGSTORE_MP_FIELD_MAX - f->len : 0;

        memcpy(f->value + f->len, b, n < room ? n : room);
        f->len = sat_add(f->len, n);
        return IMGSTORE_MP_OK;
    }
    if (!mp->in_file) {
        return IMGSTORE_MP_OK;
    }
    return file_append(mp, b, n);
}

/* A partial match broke: the bytes matched so far, delim[0..match), are data after all. */
static imgstore_mp_status_e emit_partial(imgstore_multipart_t *mp)
{
    apr_size_t skip = mp->phantom, k = mp->match;

    mp->match = 0;
    mp->phantom = 0;
    if (k > skip) {
        return emit(mp, mp->delim + skip, k - skip);
    }
    return IMGSTORE_MP_OK;
}

/*
 * Consume data up to and including a complete delimiter (*found set) or to
 * the end of the piece; a partial match at the end is carried in mp->match.
 */
static imgstore_mp_status_e scan(imgstore_multipart_t *mp, const unsigned char *d, apr_size_t n,
                                 apr_size_t *used, int *found)
{
    imgstore_mp_status_e st;
    apr_size_t i = 0;

    *found = 0;
    while (i < n) {
        unsigned char c;

        if (mp->match == 0) {
            const unsigned char *hit = memchr(d + i, mp->delim[0], n - i);
            apr_size_t run = hit ? (apr_size_t)(hit - (d + i)) : n - i;

            if (run > 0 && (st = emit(mp, d + i, run)) != IMGSTORE_MP_OK) {
                return st;
            }
            i += run;
            if (!hit) {
                break;
            }
            mp->match = 1;
            i++;
            continue;
        }
        c = d[i];
        if (mp->delim[mp->match] != c) {
            /* Not consumed: c may start the next delimiter. */
            if ((st = emit_partial(mp)) != IMGSTORE_MP_OK) {
                return st;
            }
            continue;
        }
        mp->match++;
        i++;
        if (mp->match == mp->dlen) {
            *found = 1;
            break;
        }
    }
    *used = i;
    return IMGSTORE_MP_OK;
}

static unsigned char *skip_ows(unsigned char *p, const unsigned char *end)
{
    while (p < end && is_ws(*p)) {
        p++;
    }
    return p;
}

static unsigned char *skip_token(unsigned char *p, const unsigned char *end)
{
    while (p < end && is_tchar(*p)) {
        p++;
    }
    return p;
}

/*
 * The one walker over header parameters, for Content-Type and
 * Content-Disposition alike:  *( OWS ";" OWS name OWS "=" OWS value ), a
 * trailing ";" allowed. A quoted value is decoded in place (backslash
 * escapes); a bare value is a token or 8-bit bytes, or with wide set (a
 * Content-Type) anything up to ";" or whitespace, possibly empty: unquoted
 * boundaries such as "----=_Part_1" are common.
 */
typedef struct {
    unsigned char *p;
    const unsigned char *end;
    int wide;
} param_walk_t;

typedef enum { PARAM_OK, PARAM_END, PARAM_MALFORMED, PARAM_UNTERMINATED, PARAM_CTL } param_e;

static param_e param_next(param_walk_t *w, const unsigned char **name, apr_size_t *nlen,
                          const unsigned char **val, apr_size_t *vlen)
{
    unsigned char *p = skip_ows(w->p, w->end);
    const unsigned char *end = w->end;

    if (p == end) {
        return PARAM_END;
    }
    if (*p != ';') {
        return PARAM_MALFORMED;
    }
    p = skip_ows(p + 1, end);
    if (p == end) {
        return PARAM_END;
    }
    *name = p;
    p = skip_token(p, end);
    *nlen = (apr_size_t)(p - *name);
    if (*nlen == 0) {
        return PARAM_MALFORMED;
    }
    p = skip_ows(p, end);
    if (p == end || *p != '=') {
        return PARAM_MALFORMED;
    }
    p = skip_ows(p + 1, end);
    if (p < end && *p == '"') {
        unsigned char *out = p;

        *val = out;
        for (p++; p < end && *p != '"'; p++) {
            if (*p == '\\' && ++p == end) {
                break;
            }
            if (is_ctl(*p) && *p != '\t') {
                return PARAM_CTL;
            }
            *out++ = *p;
        }
        if (p == end) {
            return PARAM_UNTERMINATED;
        }
        p++;
        *vlen = (apr_size_t)(out - *val);
    } else if (w->wide) {
        *val = p;
        while (p < end && *p != ';' && !is_ws(*p)) {
            if (is_ctl(*p)) {
                return PARAM_CTL;
            }
            p++;
        }
        *vlen = (apr_size_t)(p - *val);
    } else {
        *val = p;
        while (p < end && (is_tchar(*p) || *p >= 0x80)) {
            p++;
        }
        *vlen = (apr_size_t)(p - *val);
        if (*vlen == 0) {
            return PARAM_MALFORMED;
        }
    }
    w->p = p;
    return PARAM_OK;
}

/* Content-Disposition: form-data *( ";" param ). */
static int parse_disposition(imgstore_multipart_t *mp, unsigned char *p, unsigned char *end)
{
    const unsigned char *tok, *pn, *val;
    apr_size_t pnlen, vlen;
    param_walk_t w;
    param_e pe;

    p = skip_ows(p, end);
    tok = p;
    p = skip_token(p, end);
    if (!imgstore_ascii_caseeq(tok, (apr_size_t)(p - tok), "form-data")) {
        return 0;
    }
    w.p = p;
    w.end = end;
    w.wide = 0;
    while ((pe = param_next(&w, &pn, &pnlen, &val, &vlen)) == PARAM_OK) {
        if (imgstore_ascii_caseeq(pn, pnlen, "name")) {
            if (mp->have_name) {
                return 0;
            }
            mp->have_name = 1;
            mp->name = val;
            mp->name_len = vlen;
        } else if (imgstore_ascii_caseeq(pn, pnlen, "filename")) {
            if (mp->have_fname) {
                return 0;
            }
            mp->have_fname = 1;
            mp->fname = val;
            mp->fname_len = vlen;
        }
    }
    return pe == PARAM_END && mp->have_name && mp->name_len > 0;
}

/* One header line without its CRLF; line ending and control bytes already vetted. */
static int parse_header_line(imgstore_multipart_t *mp, unsigned char *line, apr_size_t n)
{
    unsigned char *colon = memchr(line, ':', n);
    apr_size_t i, k;

    if (!colon || colon == line) {
        return 0;
    }
    k = (apr_size_t)(colon - line);
    /* Also rejects obs-fold continuation lines and space before the colon. */
    for (i = 0; i < k; i++) {
        if (!is_tchar(line[i])) {
            return 0;
        }
    }
    if (imgstore_ascii_caseeq(line, k, "Content-Disposition")) {
        if (mp->cd_seen) {
            return 0;
        }
        mp->cd_seen = 1;
        return parse_disposition(mp, colon + 1, line + n);
    }
    return 1;
}

static imgstore_mp_status_e headers_done(imgstore_multipart_t *mp)
{
    if (!mp->cd_seen) {
        return IMGSTORE_MP_ERR_MALFORMED;
    }
    mp->in_file = 0;
    if (mp->name_len == 4 && memcmp(mp->name, "file", 4) == 0) {
        imgstore_mp_status_e st;

        if (mp->have_file) {
            return IMGSTORE_MP_ERR_DUP_FILE;
        }
        mp->have_file = 1;
        mp->in_file = 1;
        if (mp->have_fname) {
            mp->filename = apr_pstrmemdup(mp->pool, (const char *)mp->fname, mp->fname_len);
        }
        if ((st = file_start(mp)) != IMGSTORE_MP_OK) {
            return st;
        }
    } else if (!mp->have_fname && mp->nfields < MP_DEFAULT_MAX_PARTS) {
        /* A small field's value, kept for imgstore_multipart_field(). */
        mp->in_field = &mp->fields[mp->nfields++];
        mp->in_field->name = apr_pstrmemdup(mp->pool, (const char *)mp->name, mp->name_len);
        mp->in_field->len = 0;
    }
    /* The header block's final CRLF is seen, but belongs to the headers (see top). */
    mp->state = ST_BODY;
    mp->match = 2;
    mp->phantom = 2;
    return IMGSTORE_MP_OK;
}

static imgstore_mp_status_e header_byte(imgstore_multipart_t *mp, unsigned char c)
{
    unsigned char prev = mp->hdr_len > mp->line_start ? mp->hdr[mp->hdr_len - 1] : 0;

    if (mp->hdr_len >= mp->lim.max_header_bytes) {
        return IMGSTORE_MP_ERR_HEADER_TOO_BIG;
    }
    if ((prev == '\r') != (c == '\n')) {
        return IMGSTORE_MP_ERR_MALFORMED;
    }
    if (is_ctl(c) && c != '\t' && c != '\r' && c != '\n') {
        return IMGSTORE_MP_ERR_MALFORMED;
    }
    mp->hdr[mp->hdr_len++] = c;
    if (c != '\n') {
        return IMGSTORE_MP_OK;
    }
    if (mp->hdr_len - mp->line_start == 2) {
        return headers_done(mp);
    }
    if (!parse_header_line(mp, mp->hdr + mp->line_start, mp->hdr_len - mp->line_start - 2)) {
        return IMGSTORE_MP_ERR_MALFORMED;
    }
    mp->line_start = mp->hdr_len;
    return IMGSTORE_MP_OK;
}

static imgstore_mp_status_e part_start(imgstore_multipart_t *mp)
{
    if (mp->nparts >= mp->lim.max_parts) {
        return IMGSTORE_MP_ERR_TOO_MANY_PARTS;
    }
    mp->nparts++;
    mp->state = ST_HEADERS;
    mp->hdr_len = 0;
    mp->line_start = 0;
    mp->cd_seen = 0;
    mp->have_name = 0;
    mp->have_fname = 0;
    mp->name = mp->fname = NULL;
    mp->name_len = mp->fname_len = 0;
    return IMGSTORE_MP_OK;
}

imgstore_multipart_t *imgstore_multipart_create(apr_pool_t *p, const char *boundary,
                                                const imgstore_mp_limits_t *limits)
{
    imgstore_multipart_t *mp = apr_pcalloc(p, sizeof(*mp));
    apr_size_t blen = boundary ? strlen(boundary) : 0;

    mp->pool = p;
    if (limits) {
        mp->lim = *limits;
    }
    if (mp->lim.max_header_bytes == 0) {
        mp->lim.max_header_bytes = MP_DEFAULT_MAX_HEADER;
    }
    if (mp->lim.max_parts <= 0) {
        mp->lim.max_parts = MP_DEFAULT_MAX_PARTS;
    }
    mp->cap_max = sat_add(mp->lim.max_file_bytes, mp->lim.tailroom);
    mp->hdr = apr_palloc(p, mp->lim.max_header_bytes);
    apr_pool_cleanup_register(p, mp, mp_cleanup, apr_pool_cleanup_null);

    /*
     * Only the length and the absence of CR/LF matter to the framing (see
     * top); imgstore_multipart_boundary is stricter.
     */
    if (blen == 0 || blen > IMGSTORE_MP_BOUNDARY_MAX || strpbrk(boundary, "\r\n")) {
        mp->state = ST_FAILED;
        mp->error = IMGSTORE_MP_ERR_MALFORMED;
        return mp;
    }
    memcpy(mp->delim, "\r\n--", 4);
    memcpy(mp->delim + 4, boundary, blen);
    mp->dlen = 4 + blen;
    /* The body may open with "--boundary": act as if a CRLF preceded it. */
    mp->state = ST_PREAMBLE;
    mp->match = 2;
    mp->phantom = 2;
    return mp;
}

imgstore_mp_status_e imgstore_multipart_feed(imgstore_multipart_t *mp, const char *data,
                                             apr_size_t len)
{
    const unsigned char *d = (const unsigned char *)data;
    imgstore_mp_status_e st = IMGSTORE_MP_OK;
    apr_size_t i = 0;

    while (i < len && mp->state != ST_FAILED && mp->state != ST_CLOSED) {
        unsigned char c;

        switch (mp->state) {
            case ST_PREAMBLE:
            case ST_BODY: {
                apr_size_t used = 0;
                int found;

                st = scan(mp, d + i, len - i, &used, &found);
                if (st != IMGSTORE_MP_OK) {
                    return mp_fail(mp, st);
                }
                i += used;
                if (found) {
                    if (mp->phantom > 0 && mp->state == ST_BODY) {
                        return mp_fail(mp, IMGSTORE_MP_ERR_MALFORMED);
                    }
                    mp->state = ST_DELIM;
                    mp->in_file = 0;
                    mp->in_field = NULL;
                    mp->match = 0;
                    mp->phantom = 0;
                }
                break;
            }
            case ST_DELIM:
            case ST_PAD:
                c = d[i++];
                if (c == '-' && mp->state == ST_DELIM) {
                    mp->state = ST_DASH;
                } else if (is_ws(c)) {
                    mp->state = ST_PAD;
                } else if (c == '\r') {
                    mp->state = ST_LF;
                } else {
                    return mp_fail(mp, IMGSTORE_MP_ERR_MALFORMED);
                }
                break;
            case ST_DASH:
                if (d[i++] != '-' || mp->nparts == 0) {
                    return mp_fail(mp, IMGSTORE_MP_ERR_MALFORMED);
                }
                mp->state = ST_CLOSED;
                break;
            case ST_LF:
                if (d[i++] != '\n') {
                    return mp_fail(mp, IMGSTORE_MP_ERR_MALFORMED);
                }
                if ((st = part_start(mp)) != IMGSTORE_MP_OK) {
                    return mp_fail(mp, st);
                }
                break;
            case ST_HEADERS:
                if ((st = header_byte(mp, (unsigned char)d[i++])) != IMGSTORE_MP_OK) {
                    return mp_fail(mp, st);
                }
                break;
            default:
                break;
        }
    }
    if (mp->state == ST_FAILED) {
        return mp->error;
    }
    return mp->state == ST_CLOSED ? IMGSTORE_MP_DONE : IMGSTORE_MP_OK;
}

imgstore_mp_status_e imgstore_multipart_finish(imgstore_multipart_t *mp)
{
    switch (mp->state) {
        case ST_FAILED:
            return mp->error;
        case ST_CLOSED:
            return mp->have_file ? IMGSTORE_MP_DONE : mp_fail(mp, IMGSTORE_MP_ERR_NO_FILE);
        case ST_PREAMBLE:
            if (mp->preamble > 0) {
                return mp_fail(mp, IMGSTORE_MP_ERR_MALFORMED);
            }
            return mp_fail(mp, IMGSTORE_MP_ERR_TRUNCATED);
        default:
            return mp_fail(mp, IMGSTORE_MP_ERR_TRUNCATED);
    }
}

unsigned char *imgstore_multipart_file(imgstore_multipart_t *mp, apr_size_t *len)
{
    if (mp->state != ST_CLOSED || !mp->have_file) {
        if (len) {
            *len = 0;
        }
        return NULL;
    }
    if (len) {
        *len = mp->len;
    }
    return mp->buf;
}

imgstore_mp_field_e imgstore_multipart_field(imgstore_multipart_t *mp, const char *name,
                                             const char **value)
{
    const struct mp_field *found = NULL;
    int i;

    *value = NULL;
    if (mp->state != ST_CLOSED) {
        return IMGSTORE_MP_FIELD_ABSENT;
    }
    for (i = 0; i < mp->nfields; i++) {
        if (strcmp(mp->fields[i].name, name) == 0) {
            if (found != NULL) {
                return IMGSTORE_MP_FIELD_BAD;
            }
            found = &mp->fields[i];
        }
    }
    if (found == NULL) {
        return IMGSTORE_MP_FIELD_ABSENT;
    }
    if (found->len > IMGSTORE_MP_FIELD_MAX || memchr(found->value, '\0', found->len) != NULL) {
        return IMGSTORE_MP_FIELD_BAD;
    }
    *value = apr_pstrmemdup(mp->pool, found->value, found->len);
    return IMGSTORE_MP_FIELD_OK;
}

const char *imgstore_multipart_filename(imgstore_multipart_t *mp)
{
    return mp->filename;
}

const char *imgstore_multipart_boundary(apr_pool_t *p, const char *content_type,
                                        const char **boundary)
{
    const unsigned char *t, *found = NULL, *pn, *val;
    apr_size_t flen = 0, pnlen, vlen, i;
    unsigned char *s;
    param_walk_t w;
    param_e pe;

    *boundary = NULL;
    if (!content_type) {
        return "missing Content-Type";
    }
    /* A copy: quoted values are decoded in place. */
    s = (unsigned char *)apr_pstrdup(p, content_type);
    w.end = s + strlen((const char *)s);
    while (is_ws(*s)) {
        s++;
    }
    t = s;
    while (is_tchar(*s) || *s == '/') {
        s++;
    }
    if (!imgstore_ascii_caseeq(t, (apr_size_t)(s - t), "multipart/form-data")) {
        return "not multipart/form-data";
    }
    w.p = s;
    w.wide = 1;
    while ((pe = param_next(&w, &pn, &pnlen, &val, &vlen)) == PARAM_OK) {
        if (imgstore_ascii_caseeq(pn, pnlen, "boundary")) {
            if (found) {
                return "duplicate boundary parameter";
            }
            found = val;
            flen = vlen;
        }
    }
    switch (pe) {
        case PARAM_MALFORMED:
            return "malformed Content-Type parameters";
        case PARAM_UNTERMINATED:
            return "unterminated quoted string in Content-Type";
        case PARAM_CTL:
            return "control character in Content-Type";
        default:
            break;
    }
    if (!found) {
        return "missing boundary";
    }
    if (flen == 0) {
        return "empty boundary";
    }
    if (flen > IMGSTORE_MP_BOUNDARY_MAX) {
        return "boundary too long";
    }
    for (i = 0; i < flen; i++) {
        if (!is_bchar(found[i])) {
            return "invalid character in boundary";
        }
    }
    if (found[flen - 1] == ' ') {
        return "boundary ends with a space";
    }
    *boundary = apr_pstrmemdup(p, (const char *)found, flen);
    return NULL;
}

const char *imgstore_multipart_strerror(imgstore_mp_status_e status)
{
    switch (status) {
        case IMGSTORE_MP_OK:
            return "more input expected";
        case IMGSTORE_MP_DONE:
            return "complete";
        case IMGSTORE_MP_ERR_MALFORMED:
            return "malformed multipart body";
        case IMGSTORE_MP_ERR_HEADER_TOO_BIG:
            return "part header too large";
        case IMGSTORE_MP_ERR_TOO_MANY_PARTS:
            return "too many parts";
        case IMGSTORE_MP_ERR_NO_FILE:
            return "no 'file' part";
        case IMGSTORE_MP_ERR_DUP_FILE:
            return "more than one 'file' part";
        case IMGSTORE_MP_ERR_FILE_TOO_BIG:
            return "file too large";
        case IMGSTORE_MP_ERR_TRUNCATED:
            return "body ended before the closing boundary";
        case IMGSTORE_MP_ERR_NOMEM:
            return "out of memory";
    }
    return "unknown multipart status";
}

imgstore_status_e imgstore_multipart_status(imgstore_mp_status_e status)
{
    switch (status) {
        case IMGSTORE_MP_OK:
        case IMGSTORE_MP_DONE:
            return IMGSTORE_OK;
        case IMGSTORE_MP_ERR_FILE_TOO_BIG:
            return IMGSTORE_TOO_LARGE;
        case IMGSTORE_MP_ERR_NOMEM:
            return IMGSTORE_INTERNAL;
        default:
            return IMGSTORE_INVALID;
    }
}
