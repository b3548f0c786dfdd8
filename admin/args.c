/*
 * args.c - outbox-admin's command line (args.h).
 */
#include "args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uid.h"

const char args_usage[] =
    "usage: outbox-admin [--json] COMMAND\n"
    "  status                        backlog, retries, parked rows, queues, "
    "last times\n"
    "  dlq list                      the dead-lettered messages (all given "
    "back)\n"
    "  dlq show ID                   one of them, headers and body\n"
    "  dlq replay ID... | --all      back to queue outbox, confirmed, then "
    "removed\n"
    "  dlq purge [--yes]             empties outbox.dlq (asks unless "
    "--yes)\n"
    "  parked list                   outbox rows the relay gave up on\n"
    "  parked release SEQ... | --all such rows tried again by the relay\n"
    "exit status: 0 done, 1 bad input, refused or not all done, 2 a server "
    "cannot be asked";

static const struct {
	const char *group, *verb;
	enum admin_cmd cmd;
} args_cmds[] = {
	{ "status", NULL, CMD_STATUS },
	{ "dlq", "list", CMD_DLQ_LIST },
	{ "dlq", "show", CMD_DLQ_SHOW },
	{ "dlq", "replay", CMD_DLQ_REPLAY },
	{ "dlq", "purge", CMD_DLQ_PURGE },
	{ "parked", "list", CMD_PARKED_LIST },
	{ "parked", "release", CMD_PARKED_RELEASE },
};
#define NCMDS (sizeof(args_cmds) / sizeof(args_cmds[0]))

/* A sequence number: decimal digits only, 1..INT64_MAX. */
static int
args_seq(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v <= 0)
		return -1;
	*out = v;
	return 0;
}

/* Checks what the command takes: operands and options. */
static int
args_check(const struct admin_args *a, char *err, size_t errlen)
{
	int takes_all = a->cmd == CMD_DLQ_REPLAY ||
	    a->cmd == CMD_PARKED_RELEASE;

	if (a->all && !takes_all) {
		snprintf(err, errlen, "--all: only for dlq replay and parked "
		    "release");
		return -1;
	}
	if (a->yes && a->cmd != CMD_DLQ_PURGE) {
		snprintf(err, errlen, "--yes: only for dlq purge");
		return -1;
	}
	if (takes_all && a->all && a->n > 0) {
		snprintf(err, errlen, "either --all or %s, not both",
		    a->cmd == CMD_DLQ_REPLAY ? "ids" : "sequence numbers");
		return -1;
	}
	if (takes_all && !a->all && a->n == 0) {
		snprintf(err, errlen, "which? %s, or --all",
		    a->cmd == CMD_DLQ_REPLAY ? "message ids" :
		    "sequence numbers");
		return -1;
	}
	if (a->cmd == CMD_DLQ_SHOW && a->n != 1) {
		snprintf(err, errlen, "dlq show takes one message id");
		return -1;
	}
	return 0;
}

int
args_parse(int argc, char **argv, struct admin_args *a, char *err,
    size_t errlen)
{
	const char *words[2] = { NULL, NULL };
	size_t nwords = 0, k;
	int i, found = 0;

	memset(a, 0, sizeof(*a));
	/* Options anywhere; the first one or two words name the command,
	 * the rest are its operands. */
	for (i = 1; i < argc; i++) {
		const char *s = argv[i];

		if (strcmp(s, "--json") == 0) {
			a->json = 1;
		} else if (strcmp(s, "--all") == 0) {
			a->all = 1;
		} else if (strcmp(s, "--yes") == 0 || strcmp(s, "-y") == 0) {
			a->yes = 1;
		} else if (s[0] == '-' && s[1] != '\0') {
			snprintf(err, errlen, "unknown option %s", s);
			return -1;
		} else if (!found && nwords < 2) {
			words[nwords++] = s;
			for (k = 0; k < NCMDS; k++) {
				if (strcmp(words[0], args_cmds[k].group) != 0)
					continue;
				if (args_cmds[k].verb == NULL ||
				    (nwords == 2 && strcmp(words[1],
				    args_cmds[k].verb) == 0)) {
					a->cmd = args_cmds[k].cmd;
					found = 1;
				}
			}
			if (!found && nwords == 2) {
				snprintf(err, errlen, "unknown command %s %s",
				    words[0], words[1]);
				return -1;
			}
		} else if (!found) {
			break;
		} else if (a->cmd != CMD_DLQ_SHOW && a->cmd != CMD_DLQ_REPLAY &&
		    a->cmd != CMD_PARKED_RELEASE) {
			snprintf(err, errlen, "unexpected %s", s);
			return -1;
		} else if (a->n == ARGS_MAX_IDS) {
			snprintf(err, errlen, "at most %d at once",
			    ARGS_MAX_IDS);
			return -1;
		} else if (a->cmd == CMD_PARKED_RELEASE) {
			if (args_seq(s, &a->seqs[a->n]) == -1) {
				snprintf(err, errlen, "not a sequence number: "
				    "%s", s);
				return -1;
			}
			a->n++;
		} else if (s[0] == '\0' || strlen(s) > 127) {
			snprintf(err, errlen, "not a message id: \"%s\"", s);
			return -1;
		} else {
			a->ids[a->n++] = s;
		}
	}
	if (!found) {
		if (nwords == 0)
			snprintf(err, errlen, "no command");
		else if (strcmp(words[0], "dlq") == 0)
			snprintf(err, errlen, "dlq: list, show, replay or "
			    "purge?");
		else if (strcmp(words[0], "parked") == 0)
			snprintf(err, errlen, "parked: list or release?");
		else
			snprintf(err, errlen, "unknown command %s", words[0]);
		return -1;
	}
	return args_check(a, err, errlen);
}

int
args_id_match(const char *want, const char *have)
{
	char w[UID_LEN + 1], h[UID_LEN + 1];

	if (strcmp(want, have) == 0)
		return 1;
	return uid_canonical(want, strlen(want), w) &&
	    uid_canonical(have, strlen(have), h) && strcmp(w, h) == 0;
}
