/*
 * args.h - outbox-admin's command line: one command (status, dlq list,
 * dlq show, dlq replay, dlq purge, parked list, parked release), its
 * operands and options, read strictly (an unknown word, a missing or an
 * extra operand is bad input).  No server is asked here.
 */
#ifndef OUTBOX_ADMIN_ARGS_H
#define OUTBOX_ADMIN_ARGS_H

#include <stddef.h>
#include <stdint.h>

/* Most ids or sequence numbers one command takes. */
#define ARGS_MAX_IDS 1000

/* Exit statuses (README, "Admin"), as outbox-audit's. */
enum admin_exit {
	ADMIN_OK = 0,       /* done */
	ADMIN_REFUSED = 1,  /* bad input, refused, or nothing (all) done */
	ADMIN_NO_SERVER = 2, /* the database or the broker cannot be asked */
};

enum admin_cmd {
	CMD_STATUS,
	CMD_DLQ_LIST,
	CMD_DLQ_SHOW,
	CMD_DLQ_REPLAY,
	CMD_DLQ_PURGE,
	CMD_PARKED_LIST,
	CMD_PARKED_RELEASE,
};

struct admin_args {
	enum admin_cmd cmd;
	int json;  /* --json */
	int all;   /* --all (dlq replay, parked release) */
	int yes;   /* --yes (dlq purge) */
	/* dlq show, dlq replay: message ids, borrowed from argv */
	const char *ids[ARGS_MAX_IDS];
	/* parked release: outbox sequence numbers (> 0) */
	int64_t seqs[ARGS_MAX_IDS];
	size_t n; /* ids or seqs given */
};

/* The usage text, for --help and bad input. */
extern const char args_usage[];

/* Reads argv[1..argc-1] into *a.  0, or -1 with why in err[errlen]. */
int args_parse(int argc, char **argv, struct admin_args *a, char *err,
    size_t errlen);

/* 1 when the id an operator typed (want) names the message id have: the
 * same text, or the same UUID in either case; else 0. */
int args_id_match(const char *want, const char *have);

#endif
