/*
 * inbox_age.c - the worker's too-old rule (inbox_age.h).
 */
#include "inbox_age.h"

#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "timefmt.h"
#include "uid.h"

void
inbox_age(const char *id, size_t n, uint64_t ts, int64_t now_ms,
    struct msg_age *out)
{
	int64_t ms;

	if (uid_time_ms(id, n, &ms)) {
		out->source = AGE_FROM_ID;
		out->born_ms = ms;
	} else if (ts > 0 && ts < (uint64_t)INT64_MAX / 1000) {
		out->source = AGE_FROM_TIMESTAMP;
		out->born_ms = (int64_t)ts * 1000;
	} else {
		out->source = AGE_NONE;
		out->born_ms = 0;
		out->age_ms = 0;
		return;
	}
	out->age_ms = now_ms - out->born_ms;
}

int
inbox_too_old(const struct msg_age *a, int hours, char *reason,
    size_t reasonlen)
{
	struct timespec born;
	char at[40];

	if (hours <= 0 || a->source == AGE_NONE ||
	    a->age_ms <= (int64_t)hours * 3600 * 1000 - INBOX_MARGIN_MS)
		return 0;
	if (reason == NULL)
		return 1;
	born.tv_sec = (time_t)(a->born_ms / 1000);
	born.tv_nsec = (long)(a->born_ms % 1000) * 1000000L;
	if (timefmt_rfc3339(&born, at, sizeof(at)) == -1)
		snprintf(at, sizeof(at), "%" PRId64 " ms", a->born_ms);
	snprintf(reason, reasonlen, "older than WORKER_PROCESSED_RETENTION_HOURS "
	    "(%d h) minus 1 h: %s %s, %" PRId64 " h ago; its processed id may "
	    "be deleted, so it cannot be told apart from a message already "
	    "handled: not applied, an operator decides", hours,
	    a->source == AGE_FROM_ID ? "its id was made at" :
	    "it was published at", at, a->age_ms / (3600 * 1000));
	return 1;
}

int
inbox_hours_check(int hours, char *err, size_t errlen)
{
	if (hours != 1)
		return 0;
	snprintf(err, errlen, "WORKER_PROCESSED_RETENTION_HOURS: 1 leaves no "
	    "time to handle a message (messages older than the retention "
	    "minus 1 h are dead-lettered): 0 or at least 2");
	return -1;
}
