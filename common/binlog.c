/*
 * binlog.c - the binary log's replication client (binlog.h).
 *
 * Connector/C 3.3 pitfalls this code works around (issue 18):
 *   - without @mariadb_slave_capability=4 no GTID event comes; without
 *     @master_binlog_checksum the server refuses the stream (1236);
 *   - server errors show only in mysql_errno, and only at the first fetch;
 *   - a NULL fetch has freed nothing of ours because events are never
 *     reused here (each fetch gets a new one);
 *   - a rows event is decoded with its TABLE_MAP, kept aside;
 *   - CHAR columns cannot be decoded (the ids are VARCHAR: migration 009);
 *   - the socket says nothing of the events the library already read
 *     ahead (up to 16 KiB): binlog_pending looks at its buffer too.
 */
#include "binlog.h"

#include <mysql.h>
#include <mariadb_rpl.h>
#include <ma_pvio.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DOMAINS 16

struct gtid {
	unsigned long domain, server;
	unsigned long long seq;
};

/* The outbox columns read, by name (binlog_row_metadata=FULL). */
enum { C_SEQ, C_ID, C_EVENT, C_PAYLOAD, C_TRACE, C_ATTEMPTS, C_PARKED,
    C_PUBLISHED, NCOLS };
static const char *const col_names[NCOLS] = { "seq", "message_id",
    "event_name", "payload", "traceparent", "attempts", "parked_at",
    "published_at" };

struct binlog {
	struct db_params p;
	char table[64];
	unsigned server_id, hb_ms;
	MYSQL *my;
	MARIADB_RPL *rpl;
	MARIADB_RPL_EVENT *tmap; /* the table's last TABLE_MAP */
	MARIADB_RPL_EVENT *ev;   /* the rows event being returned */
	MARIADB_RPL_ROW *next;   /* its next row */
	int update;              /* ev is an update: rows before, after */
	int col[NCOLS];          /* column index of each, from tmap */
	struct gtid done[MAX_DOMAINS], cur;
	size_t ndone;
	unsigned long when;      /* the current transaction's timestamp */
	char gtid[1024];
	char err[256];
};

binlog *
binlog_new(const struct db_params *p, const char *table, unsigned server_id,
    unsigned heartbeat_ms)
{
	binlog *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	b->p = *p;
	snprintf(b->table, sizeof(b->table), "%s", table);
	b->server_id = server_id;
	b->hb_ms = heartbeat_ms > 0 ? heartbeat_ms : 1000;
	return b;
}

static void
binlog_close(binlog *b)
{
	if (b->ev != NULL)
		mariadb_free_rpl_event(b->ev);
	if (b->tmap != NULL)
		mariadb_free_rpl_event(b->tmap);
	if (b->rpl != NULL)
		mariadb_rpl_close(b->rpl);
	if (b->my != NULL)
		mysql_close(b->my);
	b->ev = b->tmap = NULL;
	b->next = NULL;
	b->rpl = NULL;
	b->my = NULL;
}

void
binlog_free(binlog *b)
{
	if (b == NULL)
		return;
	binlog_close(b);
	free(b);
}

const char *
binlog_gtid(const binlog *b)
{
	return b->gtid;
}

unsigned long
binlog_commit_time(const binlog *b)
{
	return b->when;
}

/* 1 when Connector/C holds bytes it read ahead from the socket and has
 * not returned yet (its connection's read-ahead cache, ma_pvio.h: every
 * read of a packet goes through it), or cannot tell (a TLS connection
 * keeps its own buffer). */
static int
read_ahead(const binlog *b)
{
	const MARIADB_PVIO *v = b->my->net.pvio;

	if (v == NULL)
		return 0;
	if (v->ctls != NULL)
		return 1;
	return v->cache != NULL && v->cache + v->cache_size > v->cache_pos;
}

int
binlog_pending(const binlog *b)
{
	return b->my != NULL && binlog_wait(b, 0) == 1;
}

int
binlog_wait(const binlog *b, int timeout_ms)
{
	struct pollfd p;
	int rc;

	if (b->my == NULL || read_ahead(b))
		return 1;
	p.fd = (int)mysql_get_socket(b->my);
	p.events = POLLIN;
	p.revents = 0;
	if (p.fd < 0)
		return 1;
	rc = poll(&p, 1, timeout_ms);
	return rc > 0 || (rc < 0 && errno != EINTR);
}

int
binlog_fd(const binlog *b)
{
	return b->my != NULL ? (int)mysql_get_socket(b->my) : -1;
}

const char *
binlog_error(const binlog *b)
{
	return b->err;
}

/* The error of the connection, classified. */
static int
fail(binlog *b, const char *what)
{
	unsigned e = b->my != NULL ? mysql_errno(b->my) : 0;

	snprintf(b->err, sizeof(b->err), "%s: %s (%u)", what,
	    b->my != NULL ? mysql_error(b->my) : "out of memory", e);
	binlog_close(b);
	if (e == 1236)
		return BINLOG_EGONE;
	if (e >= 2000 && e < 3000)
		return BINLOG_ELOST;
	return BINLOG_EOTHER;
}

static void
gtid_format(binlog *b)
{
	size_t i, off = 0;

	b->gtid[0] = '\0';
	for (i = 0; i < b->ndone && off < sizeof(b->gtid); i++) {
		int n = snprintf(b->gtid + off, sizeof(b->gtid) - off,
		    "%s%lu-%lu-%llu", i > 0 ? "," : "", b->done[i].domain,
		    b->done[i].server, b->done[i].seq);

		if (n < 0)
			break;
		off += (size_t)n;
	}
}

/* Parses a GTID list into b->done; -1 when it is not one. */
static int
gtid_parse(binlog *b, const char *s)
{
	b->ndone = 0;
	while (s != NULL && *s != '\0') {
		struct gtid g;
		int n = 0;

		if (b->ndone == MAX_DOMAINS || sscanf(s, "%lu-%lu-%llu%n",
		    &g.domain, &g.server, &g.seq, &n) != 3)
			return -1;
		b->done[b->ndone++] = g;
		s += n;
		if (*s == ',')
			s++;
		else if (*s != '\0')
			return -1;
	}
	gtid_format(b);
	return 0;
}

/* The transaction b->cur ended. */
static void
gtid_commit(binlog *b)
{
	size_t i;

	for (i = 0; i < b->ndone; i++)
		if (b->done[i].domain == b->cur.domain)
			break;
	if (i == b->ndone) {
		if (b->ndone == MAX_DOMAINS)
			return;
		b->ndone++;
	}
	b->done[i] = b->cur;
	gtid_format(b);
}

static int
query(binlog *b, const char *sql)
{
	return mysql_query(b->my, sql) == 0 ? 0 : fail(b, sql);
}

/* The durable end of the binary log as a GTID list into b->done. */
static int
current_gtid(binlog *b)
{
	char sql[512];
	MYSQL_RES *r;
	MYSQL_ROW row;
	int rc;

	if ((rc = query(b, "SHOW MASTER STATUS")) != 0)
		return rc;
	if ((r = mysql_store_result(b->my)) == NULL)
		return fail(b, "SHOW MASTER STATUS");
	row = mysql_fetch_row(r);
	if (row == NULL || row[0] == NULL || row[1] == NULL ||
	    strchr(row[0], '\'') != NULL) {
		mysql_free_result(r);
		snprintf(b->err, sizeof(b->err), "SHOW MASTER STATUS: no "
		    "binary log");
		binlog_close(b);
		return BINLOG_EOTHER;
	}
	snprintf(sql, sizeof(sql), "SELECT BINLOG_GTID_POS('%.200s', %.20s)",
	    row[0], row[1]);
	mysql_free_result(r);
	if ((rc = query(b, sql)) != 0)
		return rc;
	if ((r = mysql_store_result(b->my)) == NULL)
		return fail(b, "BINLOG_GTID_POS");
	row = mysql_fetch_row(r);
	if (row == NULL || gtid_parse(b, row[0] != NULL ? row[0] : "") != 0) {
		snprintf(b->err, sizeof(b->err), "BINLOG_GTID_POS: not a "
		    "GTID list");
		rc = BINLOG_EOTHER;
	}
	mysql_free_result(r);
	if (rc != 0)
		binlog_close(b);
	return rc;
}

int
binlog_start(binlog *b, const char *gtid)
{
	unsigned ct = (unsigned)b->p.connect_timeout_s;
	unsigned rt = (b->hb_ms * 3 + 999) / 1000;
	char sql[1200];
	int rc;

	binlog_close(b);
	b->err[0] = '\0';
	if (gtid != NULL && gtid_parse(b, gtid) != 0) {
		snprintf(b->err, sizeof(b->err), "not a GTID list: %.100s",
		    gtid);
		return BINLOG_EOTHER;
	}
	if ((b->my = mysql_init(NULL)) == NULL)
		return fail(b, "mysql_init");
	mysql_optionsv(b->my, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
	/* Heartbeats come while idle: a longer silence is a dead server. */
	mysql_optionsv(b->my, MYSQL_OPT_READ_TIMEOUT, &rt);
	if (mysql_real_connect(b->my, b->p.host, b->p.user, b->p.pass, NULL,
	    (unsigned)b->p.port, NULL, 0) == NULL)
		return fail(b, "connect");
	if (gtid == NULL && (rc = current_gtid(b)) != 0)
		return rc;
	snprintf(sql, sizeof(sql), "SET @mariadb_slave_capability = 4, "
	    "@master_binlog_checksum = @@global.binlog_checksum, "
	    "@master_heartbeat_period = %llu, @slave_connect_state = '%s'",
	    (unsigned long long)b->hb_ms * 1000000ULL, b->gtid);
	if ((rc = query(b, sql)) != 0)
		return rc;
	if ((b->rpl = mariadb_rpl_init(b->my)) == NULL)
		return fail(b, "mariadb_rpl_init");
	mariadb_rpl_optionsv(b->rpl, MARIADB_RPL_FILENAME, "", (size_t)0);
	mariadb_rpl_optionsv(b->rpl, MARIADB_RPL_START, 4UL);
	mariadb_rpl_optionsv(b->rpl, MARIADB_RPL_SERVER_ID, b->server_id);
	mariadb_rpl_optionsv(b->rpl, MARIADB_RPL_FLAGS, 0u);
	if (mariadb_rpl_open(b->rpl) != 0)
		return fail(b, "mariadb_rpl_open");
	return 0;
}

/* The column index of each outbox column, from the TABLE_MAP's names
 * (length-prefixed).  -1 when one is missing. */
static int
map_columns(binlog *b)
{
	const unsigned char *p = b->tmap->event.table_map.column_names.data;
	size_t left = b->tmap->event.table_map.column_names.length;
	int i, k;

	for (k = 0; k < NCOLS; k++)
		b->col[k] = -1;
	for (i = 0; left > 0 && p != NULL; i++) {
		size_t n = *p++;

		left--;
		if (n >= 251 || n > left)
			return -1;
		for (k = 0; k < NCOLS; k++)
			if (strlen(col_names[k]) == n &&
			    memcmp(col_names[k], p, n) == 0)
				b->col[k] = i;
		p += n;
		left -= n;
	}
	for (k = 0; k < NCOLS; k++)
		if (b->col[k] < 0)
			return -1;
	return 0;
}

static int
is_our_table(const binlog *b, const MARIADB_RPL_EVENT *ev)
{
	const struct st_mariadb_rpl_table_map_event *t = &ev->event.table_map;

	return t->database.length == strlen(b->p.name) &&
	    memcmp(t->database.str, b->p.name, t->database.length) == 0 &&
	    t->table.length == strlen(b->table) &&
	    memcmp(t->table.str, b->table, t->table.length) == 0;
}

/* Row r into *row; -1 for a missing column or a NULL where none can
 * be. */
static int
take_row(const binlog *b, const MARIADB_RPL_ROW *r, struct binlog_row *row)
{
	const MARIADB_RPL_VALUE *c = r->columns;
	const MARIADB_RPL_VALUE *tr;
	int k;

	for (k = 0; k < NCOLS; k++)
		if ((uint32_t)b->col[k] >= r->column_count)
			return -1;
	tr = &c[b->col[C_TRACE]];
	if (c[b->col[C_SEQ]].is_null || c[b->col[C_ID]].is_null ||
	    c[b->col[C_EVENT]].is_null || c[b->col[C_PAYLOAD]].is_null)
		return -1;
	memset(row, 0, sizeof(*row));
	row->seq = (int64_t)c[b->col[C_SEQ]].val.ull;
	row->attempts = (unsigned)c[b->col[C_ATTEMPTS]].val.ull;
	row->id = c[b->col[C_ID]].val.str.str;
	row->idlen = c[b->col[C_ID]].val.str.length;
	row->event = c[b->col[C_EVENT]].val.str.str;
	row->evlen = c[b->col[C_EVENT]].val.str.length;
	row->payload = c[b->col[C_PAYLOAD]].val.str.str;
	row->plen = c[b->col[C_PAYLOAD]].val.str.length;
	if (!tr->is_null) {
		row->trace = tr->val.str.str;
		row->tracelen = tr->val.str.length;
	}
	return 0;
}

/* The next row of the event being returned: 1 with *row filled, 0 when
 * none is left, -1 for a row that cannot be read.  An update's rows come
 * in pairs (before, after): only a release (parked before, neither
 * parked nor published after: outbox-admin parked release) gives its row
 * after the update, with released set. */
static int
next_row(binlog *b, struct binlog_row *row)
{
	const MARIADB_RPL_ROW *before, *after;

	while (b->next != NULL) {
		if (!b->update) {
			before = b->next;
			b->next = before->next;
			return take_row(b, before, row) == 0 ? 1 : -1;
		}
		before = b->next;
		if ((after = before->next) == NULL)
			return -1;
		b->next = after->next;
		if ((uint32_t)b->col[C_PARKED] >= before->column_count ||
		    (uint32_t)b->col[C_PARKED] >= after->column_count ||
		    (uint32_t)b->col[C_PUBLISHED] >= after->column_count)
			return -1;
		if (before->columns[b->col[C_PARKED]].is_null ||
		    !after->columns[b->col[C_PARKED]].is_null ||
		    !after->columns[b->col[C_PUBLISHED]].is_null)
			continue;
		if (take_row(b, after, row) != 0)
			return -1;
		row->released = 1;
		return 1;
	}
	return 0;
}

int
binlog_next(binlog *b, struct binlog_row *row)
{
	MARIADB_RPL_EVENT *ev;

	if (b->rpl == NULL) {
		snprintf(b->err, sizeof(b->err), "not started");
		return BINLOG_EOTHER;
	}
	for (;;) {
		switch (next_row(b, row)) {
		case 1:
			return BINLOG_ROW;
		case -1:
			snprintf(b->err, sizeof(b->err), "an outbox row with "
			    "a NULL or missing column");
			binlog_close(b);
			return BINLOG_EOTHER;
		default:
			break;
		}
		if (b->ev != NULL) {
			mariadb_free_rpl_event(b->ev);
			b->ev = NULL;
		}
		if ((ev = mariadb_rpl_fetch(b->rpl, NULL)) == NULL)
			return fail(b, "binlog read");
		switch (ev->event_type) {
		case GTID_EVENT:
			b->cur.domain = ev->event.gtid.domain_id;
			b->cur.server = ev->server_id;
			b->cur.seq = ev->event.gtid.sequence_nr;
			b->when = ev->timestamp;
			/* No XID ends a standalone event group (DDL). */
			if (ev->event.gtid.flags & FL_STANDALONE) {
				mariadb_free_rpl_event(ev);
				gtid_commit(b);
				return BINLOG_COMMIT;
			}
			break;
		case XID_EVENT:
			mariadb_free_rpl_event(ev);
			gtid_commit(b);
			return BINLOG_COMMIT;
		case HEARTBEAT_LOG_EVENT:
			mariadb_free_rpl_event(ev);
			return BINLOG_HEARTBEAT;
		case TABLE_MAP_EVENT:
			if (!is_our_table(b, ev))
				break;
			if (b->tmap != NULL)
				mariadb_free_rpl_event(b->tmap);
			b->tmap = ev;
			if (map_columns(b) != 0) {
				snprintf(b->err, sizeof(b->err), "table %s: "
				    "columns missing (binlog_row_metadata "
				    "must be FULL)", b->table);
				binlog_close(b);
				return BINLOG_EOTHER;
			}
			continue; /* kept: not freed below */
		case WRITE_ROWS_COMPRESSED_EVENT_V1:
		case WRITE_ROWS_COMPRESSED_EVENT:
		case UPDATE_ROWS_COMPRESSED_EVENT_V1:
		case UPDATE_ROWS_COMPRESSED_EVENT:
			if (b->tmap == NULL || ev->event.rows.table_id !=
			    b->tmap->event.table_map.table_id)
				break;
			/* Never skipped: that would lose the rows. */
			mariadb_free_rpl_event(ev);
			snprintf(b->err, sizeof(b->err), "compressed rows of "
			    "table %s (log_bin_compress must be OFF)",
			    b->table);
			binlog_close(b);
			return BINLOG_EOTHER;
		case WRITE_ROWS_EVENT_V1:
		case WRITE_ROWS_EVENT:
		case UPDATE_ROWS_EVENT_V1:
		case UPDATE_ROWS_EVENT:
			if (b->tmap == NULL || ev->event.rows.table_id !=
			    b->tmap->event.table_map.table_id)
				break;
			b->ev = ev;
			b->update = ev->event_type == UPDATE_ROWS_EVENT_V1 ||
			    ev->event_type == UPDATE_ROWS_EVENT;
			b->next = mariadb_rpl_extract_rows(b->rpl, b->tmap, ev);
			if (b->next == NULL)
				return fail(b, "decoding an outbox row");
			continue;
		default:
			break;
		}
		mariadb_free_rpl_event(ev);
	}
}
