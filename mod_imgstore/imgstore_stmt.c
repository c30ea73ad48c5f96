#include "imgstore_stmt.h"

#include <stdlib.h>
#include <string.h>

#include <libpq-events.h>

typedef struct {
    unsigned int prepared; /* bit per statement slot */
    int unnamed_only;      /* the server forgets our statements: never name one again */
} conn_state_t;

static int stmt_event(PGEventId id, void *info, void *pass_through)
{
    (void)pass_through;
    if (id == PGEVT_CONNRESET) {
        /* A reset is a new backend session: nothing is prepared there. */
        conn_state_t *st = PQinstanceData(((PGEventConnReset *)info)->conn, stmt_event);
        if (st != NULL) {
            st->prepared = 0;
            st->unnamed_only = 0;
        }
    } else if (id == PGEVT_CONNDESTROY) {
        PGconn *conn = ((PGEventConnDestroy *)info)->conn;
        free(PQinstanceData(conn, stmt_event));
        PQsetInstanceData(conn, stmt_event, NULL);
    }
    return 1;
}

/* This connection's state, registered on first use; NULL if that fails. */
static conn_state_t *conn_state(PGconn *conn)
{
    conn_state_t *st = PQinstanceData(conn, stmt_event);

    if (st != NULL) {
        return st;
    }
    if (!PQregisterEventProc(conn, stmt_event, "imgstore_stmt", NULL)) {
        /* Already registered with no data (an earlier calloc failed), or libpq refused. */
        return NULL;
    }
    st = calloc(1, sizeof(*st));
    if (st == NULL || !PQsetInstanceData(conn, stmt_event, st)) {
        free(st);
        return NULL;
    }
    return st;
}

static int sqlstate_is(const PGresult *res, const char *code)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return state != NULL && strcmp(state, code) == 0;
}

static PGresult *exec_unnamed(PGconn *conn, const imgstore_stmt_t *s, const char *const *values,
                              const int *lengths, const int *formats, int result_format)
{
    return PQexecParams(conn, s->sql, s->nparams, s->types, values, lengths, formats,
                        result_format);
}

PGresult *imgstore_stmt_exec(PGconn *conn, const imgstore_stmt_t *s, const char *const *values,
                             const int *lengths, const int *formats, int result_format)
{
    conn_state_t *st = s->slot < IMGSTORE_STMT_MAX ? conn_state(conn) : NULL;
    unsigned int bit = 1u << (s->slot % IMGSTORE_STMT_MAX);
    PGresult *res;

    if (st == NULL || st->unnamed_only) {
        return exec_unnamed(conn, s, values, lengths, formats, result_format);
    }
    if (!(st->prepared & bit)) {
        res = PQprepare(conn, s->name, s->sql, s->nparams, s->types);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            /*
             * 42P05: the server has it though this session never made it (a
             * pooling proxy). Anything else (a broken connection, missing
             * tables) fails the same way unnamed and is classified there.
             */
            if (sqlstate_is(res, "42P05")) {
                st->unnamed_only = 1;
            }
            PQclear(res);
            return exec_unnamed(conn, s, values, lengths, formats, result_format);
        }
        PQclear(res);
        st->prepared |= bit;
    }
    res = PQexecPrepared(conn, s->name, s->nparams, values, lengths, formats, result_format);
    /*
     * 26000: the statement is gone though the connection was not reset (a
     * pooling proxy). 0A000: a migration changed what it returns. Either way
     * the unnamed form is right; it runs in the same (autocommit) state.
     */
    if (sqlstate_is(res, "26000") || sqlstate_is(res, "0A000")) {
        PQclear(res);
        st->prepared = 0;
        st->unnamed_only = 1;
        return exec_unnamed(conn, s, values, lengths, formats, result_format);
    }
    return res;
}

int imgstore_stmt_is_prepared(PGconn *conn, const imgstore_stmt_t *s)
{
    const conn_state_t *st = PQinstanceData(conn, stmt_event);

    return st != NULL && !st->unnamed_only && s->slot < IMGSTORE_STMT_MAX &&
           (st->prepared & (1u << s->slot)) != 0;
}
