/*
 * mariadb_thp.c - an LD_PRELOAD shim for the project's private MariaDB:
 * its buffer pool in transparent huge pages.
 *
 * mariadbd maps its buffer pool anonymously and never asks for huge
 * pages unless given explicit ones (--large-pages: a hugetlbfs pool that
 * only root can reserve).  On a kernel whose transparent huge pages are
 * "madvise" (this machine's), the pool then stays in 4 KiB pages, and on
 * this virtual machine every page the pool holds makes the server's
 * commits slower at the tail (README, "History and memory": a pool
 * holding 1 GB, p99 of a two-row transaction 4.1-4.4 ms against 2.3-2.7
 * with the pool nearly empty; 2.9-3.2 with this shim).  So every private, anonymous mapping of at least
 * THP_MIN_BYTES (the pool; not malloc's arenas, 64 MiB at most) is
 * advised MADV_HUGEPAGE.  A hint only: with "never", or a kernel without
 * them, nothing changes, and a refused advice is ignored.
 *
 * Built by scripts/infra.sh when it starts a MariaDB (unless
 * OUTBOX_DB_THP=0), without sanitizers: it runs inside mariadbd.
 */
#include <dlfcn.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/types.h>

#define THP_MIN_BYTES ((size_t)256 << 20)

typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);

/* The mapping of the next definition of name (looked up once, into
 * *real), advised when it is the pool's. */
static void *
mapped(const char *name, mmap_fn *real, void *addr, size_t len, int prot,
    int flags, int fd, off_t off)
{
	void *p;

	if (*real == NULL)
		*real = (mmap_fn)dlsym(RTLD_NEXT, name);
	p = (*real)(addr, len, prot, flags, fd, off);
	if (p != MAP_FAILED && len >= THP_MIN_BYTES &&
	    (flags & (MAP_ANONYMOUS | MAP_PRIVATE)) ==
	    (MAP_ANONYMOUS | MAP_PRIVATE) && (flags & MAP_HUGETLB) == 0)
		(void)madvise(p, len, MADV_HUGEPAGE);
	return p;
}

/* mariadbd calls mmap64; mmap too, should a build of it do so. */
void *
mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	static mmap_fn real;

	return mapped("mmap", &real, addr, len, prot, flags, fd, off);
}

void *
mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	static mmap_fn real;

	return mapped("mmap64", &real, addr, len, prot, flags, fd, off);
}
