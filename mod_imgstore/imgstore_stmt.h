/*
 * Named server-side statements on pooled libpq connections.
 *
 * An unnamed statement (PQexecParams) is parsed and planned on every call,
 * and PostgreSQL plans it with the bound values as constants: the planner
 * copies every parameter, so a 1 MB bytea is copied twice more per INSERT
 * (perf: GetCachedPlan/copyObject and eval_const_expressions took 31% of a
 * backend's CPU during 100 KB uploads). A named statement is parsed once per
 * connection and runs on a generic plan that only points at the values.
 *
 * Which statements a connection holds is kept on the PGconn itself (libpq
 * instance data of a registered event procedure), so it is forgotten exactly
 * when libpq resets or closes the connection, as mod_dbd does after a
 * database restart. A connection whose statements vanish without a reset
 * (a transaction-pooling proxy, DISCARD ALL) runs unnamed statements from
 * then on: correct everywhere, fast where the server keeps them.
 *
 * Core unit: libc and libpq only. Never inside a transaction block: a failed
 * named execution would abort it.
 */
#ifndef IMGSTORE_STMT_H
#define IMGSTORE_STMT_H

#include <libpq-fe.h>

/* Statements per program: each takes one bit of a connection's state. */
#define IMGSTORE_STMT_MAX 16

typedef struct {
    unsigned int slot; /* 0 .. IMGSTORE_STMT_MAX-1, unique per statement */
    const char *name;  /* server-side name, unique per statement */
    const char *sql;
    int nparams;
    const Oid *types; /* nparams type OIDs */
} imgstore_stmt_t;

/*
 * Execute s with the given parameters, preparing it on this connection
 * first if needed. Returns a PGresult as PQexecParams would (NULL only when
 * libpq is out of memory); the caller PQclear()s it.
 */
PGresult *imgstore_stmt_exec(PGconn *conn, const imgstore_stmt_t *s, const char *const *values,
                             const int *lengths, const int *formats, int result_format);

/* Whether s is prepared on this connection (for tests). */
int imgstore_stmt_is_prepared(PGconn *conn, const imgstore_stmt_t *s);

#endif
