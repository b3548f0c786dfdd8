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

/* Writes one job's rows inside the open transaction.  Returns DB_OK with
 * the job's answer set (201, 409, a replay) or an error that must roll
 * back the whole transaction. */
static int
create_one(db_conn *c, struct job *j)
{
	char cust_id[UID_LEN + 1], msg_id[UID_LEN + 1];
	char sqlts[TIMEFMT_LEN];
	struct customer cu;
	struct timespec now;
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
	uid_new(cust_id);
	uid_new(msg_id);
	timefmt_now(&now);
	memset(&cu, 0, sizeof(cu));
	memcpy(cu.id, cust_id, sizeof(cu.id));
	cu.email = j->req.email;
	cu.name = j->req.name;
	if (timefmt_rfc3339(&now, cu.created_at, sizeof(cu.created_at)) ||
	    timefmt_sql(&now, sqlts, sizeof(sqlts)))
		return DB_EOTHER;
	memcpy(cu.updated_at, cu.created_at, sizeof(cu.updated_at));
	buf_reset(&j->body);
	if (msg_customer_json(&cu, &j->body) == -1)
		return DB_EOTHER;

	a[0] = DB_STR(cust_id);
	a[1] = DB_STR(j->req.email);
	a[2] = DB_STR(j->req.name);
	a[3] = DB_STR(sqlts);
	a[4] = DB_STR(sqlts);
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

	a[0] = DB_STR(msg_id);
	a[1] = DB_STR(MSG_EVENT_CUSTOMER_CREATED);
	a[2] = DB_STRN(j->body.data, j->body.len);
	a[3] = j->traceparent[0] ? DB_STR(j->traceparent) : DB_NULL;
	a[4] = DB_STR(sqlts);
	if ((rc = db_exec(c, SQL_INSERT_OUTBOX, a, 5, NULL)) != DB_OK)
		return rc == DB_EDUP ? DB_EOTHER : rc;

	if (has_idem) {
		a[0] = DB_STR(j->idem_key);
		a[1] = DB_STR(j->req.email);
		a[2] = DB_STR(j->req.name);
		a[3] = DB_STR(cust_id);
		a[4] = DB_STRN(j->body.data, j->body.len);
		a[5] = DB_STR(sqlts);
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
	j->status = 201;
	snprintf(j->location, sizeof(j->location), "/customers/%s", cust_id);
	return DB_OK;
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
	for (i = 0; i < n; i++) {
		if ((rc = create_one(c, jobs[i])) != DB_OK) {
			db_rollback(c);
			return rc;
		}
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
