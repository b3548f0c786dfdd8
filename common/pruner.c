/*
 * pruner.c - the chunked-deletion thread (pruner.h).
 */
#include "pruner.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include "backoff.h"
#include "clock.h"
#include "daemon.h"
#include "log.h"

struct pruner {
	struct pruner_spec spec;
	db_conn *c;
	pthread_t th;
	volatile sig_atomic_t stop;
};

/* The log line of a sweep that deleted total rows since t0 (ms). */
static void
pruner_swept(const struct pruner *p, unsigned long long total, long long t0)
{
	long long ms = clock_ms() - t0;

	log_info("pruned %llu %s in %lld ms (%.0f %s/s)", total, p->spec.what,
	    ms, ms > 0 ? (double)total * 1000.0 / (double)ms : (double)total,
	    p->spec.unit);
}

unsigned
pruner_pause_ms(const struct pruner_spec *s, long long chunk_ms,
    long long sweep_ms)
{
	unsigned long long pace = s->pace, pause;
	long long behind;

	if (s->rest_ms > 0 && sweep_ms > 0) {
		behind = sweep_ms / (long long)s->rest_ms;
		pace = behind >= 32 ? 0 : pace >> behind;
	}
	pause = chunk_ms > 0 ? pace * (unsigned long long)chunk_ms : 0;
	if (s->rest_ms > 0 && pause > s->rest_ms)
		pause = s->rest_ms;
	return pause > s->gap_ms ? (unsigned)pause : s->gap_ms;
}

static void *
pruner_main(void *arg)
{
	struct pruner *p = arg;
	const struct pruner_spec *s = &p->spec;
	unsigned long long total = 0;
	long long t0 = 0, tc, now;
	unsigned pause;
	uint64_t n;
	int rc;

	while (!p->stop) {
		n = 0;
		rc = DB_ECONN;
		tc = clock_ms();
		if (s->gate == NULL || s->gate(s->ud))
			rc = s->chunk(s->ud, p->c, &n);
		if (rc == DB_OK && n > 0 && total == 0)
			t0 = tc;
		if (n > 0 && s->pruned != NULL)
			s->pruned(n);
		if (n > 0 && s->wrote != NULL)
			s->wrote(s->ud);
		total += n;
		if (rc == DB_OK && n >= s->chunk_rows) {
			now = clock_ms();
			pause = pruner_pause_ms(s, now - tc, now - t0);
			if (pause > 0)
				backoff_sleep(pause, &p->stop);
			continue;
		}
		if (rc == DB_ECONN && s->down != NULL)
			s->down(s->ud, p->c);
		else if (rc != DB_OK && rc != DB_ECONN)
			log_warnx("%s: %s", s->task, db_error(p->c));
		if (total > 0) {
			pruner_swept(p, total, t0);
			total = 0;
		}
		backoff_sleep(rc == DB_OK ? s->rest_ms : s->fail_ms, &p->stop);
	}
	return NULL;
}

struct pruner *
pruner_start(const struct db_params *db, const struct pruner_spec *spec)
{
	struct pruner *p = calloc(1, sizeof(*p));

	if (p == NULL || (p->c = db_new(db)) == NULL) {
		log_warnx("%s: out of memory; nothing is pruned", spec->task);
		free(p);
		return NULL;
	}
	/* No gap locks: a chunk's delete locks the rows it deletes and no
	 * more.  At REPEATABLE READ, the relay's delete of old published
	 * rows through ix_outbox_due locked the gap before the oldest one,
	 * where every new unpublished row goes (NULL sorts first): each
	 * chunk held the app's inserts (tests/it_published.c). */
	db_set_session(p->c, "SET SESSION tx_isolation = 'READ-COMMITTED'");
	p->spec = *spec;
	if (daemon_thread(&p->th, pruner_main, p) == -1) {
		log_warn("%s: cannot start its thread", spec->task);
		db_free(p->c);
		free(p);
		return NULL;
	}
	return p;
}

void
pruner_free(struct pruner *p)
{
	if (p == NULL)
		return;
	p->stop = 1;
	pthread_join(p->th, NULL);
	db_free(p->c);
	free(p);
}
