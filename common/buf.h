/*
 * buf.h - growable byte buffer with a hard size cap.
 *
 * A buffer never grows past its max: an append that would is refused whole
 * (returns -1, errno EMSGSIZE) and leaves the content unchanged.  The data is
 * always NUL-terminated (the terminator is not counted in len).
 */
#ifndef OUTBOX_BUF_H
#define OUTBOX_BUF_H

#include <stddef.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
};

/* Empty buffer that will hold at most max bytes.  Allocates nothing. */
void buf_init(struct buf *b, size_t max);
/* 0, or -1 (errno EMSGSIZE over max, ENOMEM). */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_appendf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Makes room for extra more bytes (and the terminator) past len, for a
 * caller that writes into data + len itself and then adds to len.  0, or
 * -1 (errno EMSGSIZE over max, ENOMEM). */
int buf_reserve(struct buf *b, size_t extra);
/* Empties the buffer, keeping its memory. */
void buf_reset(struct buf *b);
/* Frees the memory; the buffer is empty and reusable afterwards. */
void buf_free(struct buf *b);

#endif
