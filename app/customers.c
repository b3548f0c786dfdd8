/*
 * customers.c - the app's statements: customers and their outbox rows
 * created in one transaction per group, Idempotency-Key lookups and
 * replays, reads, pruning of expired keys (see customers.h).
 */
#include "customers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "msg.h"
#include "rows.h"
#include "timefmt.h"

static const char SQL_INSERT_CUSTOMER[] =
    "INSERT INTO customers (id, email, name, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?)";
static const char SQL_INSERT_OUTBOX[] =
    "INSERT INTO outbox (message_id, event_name, payload, traceparent, "
    "created_at) VALUES (?, ?, ?, ?, ?)";
static const char SQL_INSERT_IDEM[] =
    "INSERT INTO idempotency_keys (idem_key, request_email, request_name, "
    "status, customer_id, response_body, created_at) "
    "VALUES (?, ?, ?, 201, ?, ?, ?)";
static const char SQL_SELECT_IDEM[] =
    "SELECT request_email, request_name, status, customer_id, "
    "response_body FROM idempotency_keys WHERE idem_key = ?";
static const char SQL_SELECT_CUSTOMER[] =
    "SELECT id, email, name, created_at, updated_at FROM customers "
    "WHERE id = ?";
/* A small chunk per statement, oldest first along the created_at index:
 * pruning never holds many locks at once. */
static const char SQL_PRUNE_IDEM[] =
    "DELETE FROM idempotency_keys WHERE created_at < ? "
    "ORDER BY created_at LIMIT ?";
static const char SQL_PROBE_CUSTOMER[] =
    "SELECT COUNT(*) FROM customers WHERE id = ?";

struct idem_row {
	int found;
	int same;
	int status;
	char customer_id[UID_LEN + 1];
	struct buf *body;
	const struct new_customer *req;
};

static int
idem_row_cb(void *ud, const struct db_col *cols, size_t ncols)
{
	struct idem_row *r = ud;

	if (ncols != 5)
		return -1;
	r->found = 1;
	r->same = strcmp(cols[0].s, r->req->email) == 0 &&
	    strcmp(cols[1].s, r->req->name) == 0;
	r->status = (int)strtol(cols[2].s, NULL, 10);
	snprintf(r->customer_id, sizeof(r->customer_id), "%s", cols[3].s);
	buf_reset(r->body);
	return buf_append(r->body, cols[4].s, cols[4].len);
}

/* Looks the job's key up; when found, sets the job's answer (the replay,
 * or 422 for another request under the same key) and returns 1. */
static int
idem_lookup(db_conn *c, struct job *j, int *rc)
{
	struct idem_row r = { 0 };
	struct db_val k = DB_STR(j->idem_key);

	r.body = &j->body;
	r.req = &j->req;
	*rc = db_query(c, SQL_SELECT_IDEM, &k, 1, idem_row_cb, &r, NULL);
	if (*rc != DB_OK || !r.found)
		return 0;
	j->derived = 1;
	if (!r.same) {
		job_error(j, 422, "Idempotency-Key was already used with a "
		    "different request");
		return 1;
	}
	j->status = r.status;
	snprintf(j->location, sizeof(j->location), "/customers/%s",
	    r.customer_id);
	return 1;
}

/* What a job writes, made before its statements: the ids, the time (as
 * SQL writes it) and, in the job's body, the customer's JSON (the 201's
 * body and the message's payload). */
struct made {
	char cust_id[UID_LEN + 1];
	char msg_id[UID_LEN + 1];
	char sqlts[TIMEFMT_LEN];
};

static int
create_make(struct job *j, struct made *m)
{
	struct customer cu;
	struct timespec now;

	uid_new(m->cust_id);
	uid_new(m->msg_id);
	timefmt_now(&now);
	memset(&cu, 0, sizeof(cu));
	memcpy(cu.id, m->cust_id, sizeof(cu.id));
	cu.email = j->req.email;
	cu.name = j->req.name;
	if (timefmt_rfc3339(&now, cu.created_at, sizeof(cu.created_at)) ||
	    timefmt_sql(&now, m->sqlts, sizeof(m->sqlts)))
		return DB_EOTHER;
	memcpy(cu.updated_at, cu.created_at, sizeof(cu.updated_at));
	buf_reset(&j->body);
	if (msg_customer_json(&cu, &j->body) == -1)
		return DB_EOTHER;
	return DB_OK;
}

/* The parameters of a job's customers row (5) and outbox row (5). */
static void
bind_customer(const struct job *j, const struct made *m, struct db_val *a)
{
	a[0] = DB_STR(m->cust_id);
	a[1] = DB_STR(j->req.email);
	a[2] = DB_STR(j->req.name);
	a[3] = DB_STR(m->sqlts);
	a[4] = DB_STR(m->sqlts);
}

static void
bind_outbox(const struct job *j, const struct made *m, struct db_val *a)
{
	a[0] = DB_STR(m->msg_id);
	a[1] = DB_STR(MSG_EVENT_CUSTOMER_CREATED);
	a[2] = DB_STRN(j->body.data, j->body.len);
	a[3] = j->traceparent[0] ? DB_STR(j->traceparent) : DB_NULL;
	a[4] = DB_STR(m->sqlts);
}

static void
created(struct job *j, const struct made *m)
{
	j->status = 201;
	snprintf(j->location, sizeof(j->location), "/customers/%s",
	    m->cust_id);
}

/* Writes one job's rows inside the open transaction.  Returns DB_OK with
 * the job's answer set (201, 409, a replay) or an error that must roll
 * back the whole transaction. */
static int
create_one(db_conn *c, struct job *j)
{
	struct made m;
	struct db_val a[6];
	int rc, has_idem = j->idem_key[0] != '\0';

	j->replay = 0;
	j->derived = 0;
	if (has_idem) {
		if (idem_lookup(c, j, &rc))
			return DB_OK;
		if (rc != DB_OK)
			return rc;
		if ((rc = db_exec_sql(c, "SAVEPOINT idem")) != DB_OK)
			return rc;
	}
	if ((rc = create_make(j, &m)) != DB_OK)
		return rc;
	bind_customer(j, &m, a);
	rc = db_exec(c, SQL_INSERT_CUSTOMER, a, 5, NULL);
	if (rc == DB_EDUP) {
		job_error(j, 409, "email already registered");
		j->derived = 1;
		/* The email may be taken by a concurrent request with the
		 * same key: look the key up again after commit, when that
		 * request's rows are visible. */
		j->replay = has_idem;
		return DB_OK;
	}
	if (rc != DB_OK)
		return rc;

	bind_outbox(j, &m, a);
	if ((rc = db_exec(c, SQL_INSERT_OUTBOX, a, 5, NULL)) != DB_OK)
		return rc == DB_EDUP ? DB_EOTHER : rc;

	if (has_idem) {
		a[0] = DB_STR(j->idem_key);
		a[1] = DB_STR(j->req.email);
		a[2] = DB_STR(j->req.name);
		a[3] = DB_STR(m.cust_id);
		a[4] = DB_STRN(j->body.data, j->body.len);
		a[5] = DB_STR(m.sqlts);
		rc = db_exec(c, SQL_INSERT_IDEM, a, 6, NULL);
		if (rc == DB_EDUP) {
			/* Another request with this key committed first:
			 * undo ours, answer as it did (after our commit). */
			rc = db_exec_sql(c, "ROLLBACK TO SAVEPOINT idem");
			if (rc != DB_OK)
				return rc;
			j->replay = 1;
			return DB_OK;
		}
		if (rc != DB_OK)
			return rc;
	}
	created(j, &m);
	return DB_OK;
}

/* Many jobs' rows in one statement per table (common/rows.h). */
static const struct rows_sql many_customers = {
	"INSERT INTO customers (id, email, name, created_at, updated_at) "
	    "VALUES ", "(?, ?, ?, ?, ?)", "", 5,
};
static const struct rows_sql many_outbox = {
	"INSERT INTO outbox (message_id, event_name, payload, traceparent, "
	    "created_at) VALUES ", "(?, ?, ?, ?, ?)", "", 5,
};

/* Writes the rows of n jobs without an Idempotency-Key (at most one
 * statement's worth, rows_chunk) with one INSERT into customers and one
 * into outbox.  An email already taken (by a row or by another job of
 * the n) makes the first INSERT fail as a whole and write nothing (the
 * server rolls back the statement, not the transaction): each job then
 * goes alone (create_one), which tells which ones are taken.  Returns as
 * create_one does. */
static int
create_many(db_conn *c, struct job **jobs, size_t n)
{
	struct made *m = calloc(n, sizeof(*m));
	struct db_val *a = calloc(n * 5, sizeof(*a));
	size_t i;
	int rc = DB_EOTHER;

	if (m == NULL || a == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		jobs[i]->replay = 0;
		jobs[i]->derived = 0;
		if ((rc = create_make(jobs[i], &m[i])) != DB_OK)
			goto out;
		bind_customer(jobs[i], &m[i], &a[i * 5]);
	}
	rc = rows_exec(c, &many_customers, a, n, NULL);
	if (rc == DB_EDUP) {
		for (i = 0, rc = DB_OK; i < n && rc == DB_OK; i++)
			rc = create_one(c, jobs[i]);
		goto out;
	}
	if (rc != DB_OK)
		goto out;
	for (i = 0; i < n; i++)
		bind_outbox(jobs[i], &m[i], &a[i * 5]);
	if ((rc = rows_exec(c, &many_outbox, a, n, NULL)) != DB_OK) {
		rc = rc == DB_EDUP ? DB_EOTHER : rc;
		goto out;
	}
	for (i = 0; i < n; i++)
		created(jobs[i], &m[i]);
out:
	free(a);
	free(m);
	return rc;
}

/* The jobs' rows inside the open transaction: those with an
 * Idempotency-Key one at a time (each has its savepoint), the others
 * together, a statement's worth at a time. */
static int
create_all(db_conn *c, struct job **jobs, size_t n)
{
	struct job *many[ROWS_CHUNK_MAX];
	size_t i, k = 0, max = rows_chunk(&many_customers, n);
	int rc = DB_OK;

	for (i = 0; i < n && rc == DB_OK; i++) {
		if (jobs[i]->idem_key[0] != '\0') {
			rc = create_one(c, jobs[i]);
			continue;
		}
		many[k++] = jobs[i];
		if (k == max) {
			rc = k > 1 ? create_many(c, many, k) :
			    create_one(c, many[0]);
			k = 0;
		}
	}
	if (rc == DB_OK && k > 0)
		rc = k > 1 ? create_many(c, many, k) : create_one(c, many[0]);
	return rc;
}

int
customers_create(db_conn *c, struct job **jobs, size_t n, int *unsure,
    enum create_phase *phase)
{
	size_t i;
	int rc, wrote = 0;

	*phase = CREATE_NOT_BEGUN;
	if ((rc = db_begin(c)) != DB_OK)
		return rc;
	*phase = CREATE_IN_TXN;
	if ((rc = create_all(c, jobs, n)) != DB_OK) {
		db_rollback(c);
		return rc;
	}
	for (i = 0; i < n; i++) {
		if (jobs[i]->derived)
			*unsure = 1;
		if (jobs[i]->status == 201 && !jobs[i]->derived)
			wrote = 1;
	}
	*phase = CREATE_COMMIT_SENT;
	if ((rc = db_commit(c)) != DB_OK) {
		/* Refused by the server (a deadlock at commit): rolled
		 * back.  Lost on the way: unknown, the caller finds out. */
		if (rc != DB_ECONN)
			*phase = CREATE_IN_TXN;
		return rc;
	}
	/* Our commit wrote rows: it is on disk, and so is everything read
	 * before it. */
	if (wrote)
		*unsure = 0;
	customers_after_commit(c, jobs, n, unsure);
	return DB_OK;
}

void
customers_after_commit(db_conn *c, struct job **jobs, size_t n, int *unsure)
{
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		if (!jobs[i]->replay)
			continue;
		*unsure = 1;
		if (!idem_lookup(c, jobs[i], &rc) && jobs[i]->status != 409)
			job_error(jobs[i], 503, "try again");
	}
}

int
customers_probe(db_conn *c, void *ud)
{
	const struct customers_group *g = ud;
	static const char pfx[] = "/customers/";
	long long n = -1;
	struct db_val a;
	size_t i;
	int rc;

	/* One transaction: one written row tells for all of them. */
	for (i = 0; i < g->n; i++) {
		if (g->jobs[i]->status == 201 && !g->jobs[i]->derived)
			break;
	}
	if (i == g->n)
		return 1;
	a = DB_STR(g->jobs[i]->location + sizeof(pfx) - 1);
	rc = db_query(c, SQL_PROBE_CUSTOMER, &a, 1, db_count_row, &n, NULL);
	if (rc != DB_OK)
		return rc;
	return n > 0;
}

struct cust_row {
	int found;
	struct buf *out;
};

static int
cust_row_cb(void *ud, const struct db_col *cols, size_t ncols)
{
	struct cust_row *r = ud;
	struct timespec ts;
	struct customer cu;

	if (ncols != 5)
		return -1;
	memset(&cu, 0, sizeof(cu));
	snprintf(cu.id, sizeof(cu.id), "%s", cols[0].s);
	cu.email = cols[1].s;
	cu.name = cols[2].s;
	if (timefmt_parse_sql(cols[3].s, &ts) == -1 ||
	    timefmt_rfc3339(&ts, cu.created_at, sizeof(cu.created_at)) == -1 ||
	    timefmt_parse_sql(cols[4].s, &ts) == -1 ||
	    timefmt_rfc3339(&ts, cu.updated_at, sizeof(cu.updated_at)) == -1)
		return -1;
	r->found = 1;
	buf_reset(r->out);
	return msg_customer_json(&cu, r->out);
}

int
customers_get(db_conn *c, struct job *j, int *unsure)
{
	struct cust_row r = { 0, &j->body };
	struct db_val a = DB_STR(j->id);
	int rc;

	rc = db_query(c, SQL_SELECT_CUSTOMER, &a, 1, cust_row_cb, &r, NULL);
	/* A connection found dead before the statement (the server
	 * restarted while we idled) is replaced once. */
	if (rc == DB_ECONN)
		rc = db_query(c, SQL_SELECT_CUSTOMER, &a, 1, cust_row_cb, &r,
		    NULL);
	if (rc != DB_OK)
		return rc;
	if (!r.found) {
		job_error(j, 404, "customer not found");
	} else {
		j->status = 200;
		j->derived = 1;
		*unsure = 1;
	}
	return DB_OK;
}

int
customers_prune_keys(db_conn *c, int ttl_hours, int chunk,
    unsigned long long *deleted)
{
	struct timespec cutoff;
	char ts[TIMEFMT_LEN];
	struct db_val a[2];
	uint64_t n = 0;
	int rc;

	*deleted = 0;
	timefmt_now(&cutoff);
	cutoff.tv_sec -= (time_t)ttl_hours * 3600;
	if (timefmt_sql(&cutoff, ts, sizeof(ts)) == -1)
		return DB_EOTHER;
	a[0] = DB_STR(ts);
	a[1] = DB_INT(chunk);
	if ((rc = db_exec(c, SQL_PRUNE_IDEM, a, 2, &n)) == DB_OK)
		*deleted = (unsigned long long)n;
	return rc;
}
