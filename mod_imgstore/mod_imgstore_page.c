/*
 * GET <mount>/: the upload page, compiled in (see mod_imgstore_page.h). The
 * HTML is the same bytes for every mount except the data attributes that
 * tell the page the mount's limits; the inline style and script are
 * allowed by hash alone, so nothing per mount goes inside them.
 */
#include "mod_imgstore_page.h"

#include <http_core.h>
#include <http_protocol.h>
#include <util_filter.h>

#include <apr_strings.h>

#include "imgstore_sniff.h"
#include "mod_imgstore_response.h"

/* data-* attributes: numbers and fixed words only, nothing that needs escaping. */
static const char *page_config(request_rec *r, const imgstore_dir_conf_t *dc)
{
    static const char *const strip_words[] = {"off", "on", "always"}; /* imgstore_strip_mode_e */
    int mask = imgstore_conf_allow_types(dc);
    const char *types = "";
    int t;

    for (t = IMGSTORE_TYPE_NONE + 1; t < IMGSTORE_TYPE_COUNT; t++) {
        if (mask & (int)IMGSTORE_TYPE_BIT(t)) {
            types = apr_pstrcat(r->pool, types, *types ? "," : "",
                                imgstore_type_mime((imgstore_type_e)t), NULL);
        }
    }
    return apr_psprintf(r->pool,
                        " data-ttl=\"%" APR_INT64_T_FMT "\" data-max-ttl=\"%" APR_INT64_T_FMT
                        "\" data-max-size=\"%" APR_INT64_T_FMT
                        "\" data-types=\"%s\" data-strip=\"%s\"",
                        imgstore_conf_ttl(dc), imgstore_conf_max_ttl(dc),
                        imgstore_conf_max_size(dc), types, strip_words[imgstore_conf_strip(dc)]);
}

static void page_headers(request_rec *r)
{
    imgstore_response_security_headers(r);
    apr_table_setn(r->headers_out, "Content-Security-Policy",
                   apr_pstrcat(r->pool, "default-src 'none'; script-src '",
                               imgstore_page_script_hash, "'; style-src '",
                               imgstore_page_style_hash,
                               "'; img-src blob: data:; connect-src 'self'; form-action 'none'; "
                               "base-uri 'none'; frame-ancestors 'none'",
                               NULL));
    apr_table_setn(r->headers_out, "Referrer-Policy", "no-referrer");
    apr_table_setn(r->headers_out, "X-Frame-Options", "DENY");
    apr_table_setn(r->headers_out, "Cross-Origin-Opener-Policy", "same-origin");
    apr_table_setn(r->headers_out, "Cross-Origin-Resource-Policy", "same-origin");
}

int imgstore_page_handle(request_rec *r, const imgstore_dir_conf_t *dc)
{
    apr_bucket_alloc_t *ba = r->connection->bucket_alloc;
    apr_bucket_brigade *bb;
    const char *config;
    apr_size_t ulen = strlen(r->uri);

    /* "<mount>" without its slash: the page's relative URLs need the slash. */
    if (ulen == 0 || r->uri[ulen - 1] != '/') {
        const char *to = apr_pstrcat(r->pool, ap_escape_uri(r->pool, r->uri), "/",
                                     r->args ? "?" : "", r->args, NULL);
        apr_table_setn(r->headers_out, "Location", ap_construct_url(r->pool, to, r));
        imgstore_response_security_headers(r);
        return HTTP_MOVED_PERMANENTLY;
    }
    config = page_config(r, dc);
    bb = apr_brigade_create(r->pool, ba);
    ap_set_content_type(r, "text/html; charset=utf-8");
    page_headers(r);
    ap_set_content_length(
        r, (apr_off_t)(imgstore_page_head_len + strlen(config) + imgstore_page_tail_len));
    if (!r->header_only) {
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_immortal_create((const char *)imgstore_page_head,
                                                               imgstore_page_head_len, ba));
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_pool_create(config, strlen(config), r->pool, ba));
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_immortal_create((const char *)imgstore_page_tail,
                                                               imgstore_page_tail_len, ba));
    }
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(ba));
    return ap_pass_brigade(r->output_filters, bb) == APR_SUCCESS ? OK : AP_FILTER_ERROR;
}
