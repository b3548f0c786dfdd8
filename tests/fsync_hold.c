/*
 * fsync_hold.c - an LD_PRELOAD shim for the durability tests: it holds
 * MariaDB's redo log back on demand, so that a committed transaction is
 * visible to other sessions but not yet on disk, for as long as a test
 * needs.
 *
 * While the file named by $OUTBOX_HOLD_FILE exists, every fsync() and
 * fdatasync() of the process, and every write to InnoDB's redo log
 * (a file named ib_logfile*), waits until the file is removed.  A commit
 * made meanwhile is done in memory (its rows visible, its locks released)
 * but its log records never reach the file: a kill -9 of the server
 * loses it for certain, where holding fsync alone leaves it to chance
 * (the records may already be in the page cache).  Without the variable,
 * or while the file is absent, the calls go straight through.
 *
 * With OUTBOX_HOLD_ONLY=binlog, only the fsync() and fdatasync() of the
 * binary log (files named *-bin.NNNNNN) wait, and no write does: a commit
 * is written to the binary log (in the page cache) and stops before its
 * sync, as a power loss would find it (the binlog tests).  Then, at
 * each held sync, the shim writes "<size> <path>" of the binary log as
 * its last completed sync left it to $OUTBOX_HOLD_FILE.synced: after a
 * kill -9, truncating the file to that size drops what the page cache
 * held and a power loss would have taken (tests/it_binlog.c, the binlog
 * chaos run), so that crash recovery rolls the held commits back.
 *
 * Built without sanitizers (it runs inside mariadbd), as
 * $(B)/lib/outbox-fsync-hold.so; scripts/infra.sh loads it through
 * OUTBOX_DB_PRELOAD.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* Exported for the dynamic linker, not for any header. */
int fsync(int fd);
int fdatasync(int fd);
ssize_t write(int fd, const void *buf, size_t n);
ssize_t pwrite(int fd, const void *buf, size_t n, off_t off);
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off);
ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off);
ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off);

static int
hold_on(void)
{
	const char *f = getenv("OUTBOX_HOLD_FILE");

	return f != NULL && *f != '\0' && access(f, F_OK) == 0;
}

static void
hold_wait(void)
{
	struct timespec ts = { 0, 2 * 1000 * 1000 };

	while (hold_on())
		nanosleep(&ts, NULL);
}

static int
binlog_only(void)
{
	const char *v = getenv("OUTBOX_HOLD_ONLY");

	return v != NULL && strcmp(v, "binlog") == 0;
}

/* 1 when fd's path holds needle (asked only while the hold is on). */
static int
fd_path_has(int fd, const char *needle)
{
	char link[64], path[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n <= 0)
		return 0;
	path[n] = '\0';
	return strstr(path, needle) != NULL;
}

static void
hold_write(int fd)
{
	if (hold_on() && !binlog_only() && fd_path_has(fd, "/ib_logfile"))
		hold_wait();
}

#define REAL(name) ((name##_fn)dlsym(RTLD_NEXT, #name))

typedef int (*fsync_fn)(int);
typedef int (*fdatasync_fn)(int);
typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*pwrite64_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*pwritev_fn)(int, const struct iovec *, int, off_t);
typedef ssize_t (*pwritev64_fn)(int, const struct iovec *, int, off_t);

/* The binary log as its last completed sync left it (OUTBOX_HOLD_ONLY=
 * binlog).  The server writes and syncs it under one lock, so the size
 * before a sync is what that sync makes durable. */
static pthread_mutex_t synced_mu = PTHREAD_MUTEX_INITIALIZER;
static char synced_path[PATH_MAX];
static long long synced_size = -1;

/* "<size> <path>" of the last completed sync, to $OUTBOX_HOLD_FILE.synced. */
static void
synced_record(void)
{
	char name[PATH_MAX], line[PATH_MAX + 32];
	const char *f = getenv("OUTBOX_HOLD_FILE");
	long long size;
	int fd, n;

	pthread_mutex_lock(&synced_mu);
	size = synced_size;
	n = snprintf(line, sizeof(line), "%lld %s\n", size, synced_path);
	pthread_mutex_unlock(&synced_mu);
	if (size < 0 || f == NULL || n <= 0 || (size_t)n >= sizeof(line) ||
	    snprintf(name, sizeof(name), "%s.synced", f) >= (int)sizeof(name))
		return;
	fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (REAL(write)(fd, line, (size_t)n) != n)
		(void)unlink(name);
	close(fd);
}

/* Runs the real sync of fd (fsync or fdatasync), held while the hold is
 * on; with OUTBOX_HOLD_ONLY=binlog only the binary log's, whose size at
 * each completed sync is kept. */
static int
hold_sync(int fd, int (*real)(int))
{
	char link[64], path[PATH_MAX];
	struct stat st;
	ssize_t n;
	int rc;

	if (!binlog_only()) {
		if (hold_on())
			hold_wait();
		return real(fd);
	}
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n <= 0 || (path[n] = '\0', strstr(path, "-bin.0") == NULL) ||
	    fstat(fd, &st) != 0)
		return real(fd);
	if (hold_on()) {
		synced_record();
		hold_wait();
	}
	rc = real(fd);
	if (rc == 0) {
		pthread_mutex_lock(&synced_mu);
		snprintf(synced_path, sizeof(synced_path), "%s", path);
		synced_size = (long long)st.st_size;
		pthread_mutex_unlock(&synced_mu);
	}
	return rc;
}

int
fsync(int fd)
{
	return hold_sync(fd, REAL(fsync));
}

int
fdatasync(int fd)
{
	return hold_sync(fd, REAL(fdatasync));
}

ssize_t
write(int fd, const void *buf, size_t n)
{
	/* stdout and stderr (the server's log) are never held. */
	if (fd > 2)
		hold_write(fd);
	return REAL(write)(fd, buf, n);
}

ssize_t
pwrite(int fd, const void *buf, size_t n, off_t off)
{
	hold_write(fd);
	return REAL(pwrite)(fd, buf, n, off);
}

ssize_t
pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	hold_write(fd);
	return REAL(pwrite64)(fd, buf, n, off);
}

ssize_t
pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	hold_write(fd);
	return REAL(pwritev)(fd, iov, cnt, off);
}

ssize_t
pwritev64(int fd, const struct iovec *iov, int cnt, off_t off)
{
	hold_write(fd);
	return REAL(pwritev64)(fd, iov, cnt, off);
}
