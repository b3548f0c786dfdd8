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
 * mariadbd then turns transparent huge pages off for the whole process
 * once its pool is mapped (prctl PR_SET_THP_DISABLE; seen in Debian 12's
 * 10.11.19: THP_enabled 0 in its /proc status), and that beats any
 * advice: only the pages InnoDB touched as it started (516 MiB of a
 * 2 GiB pool) were huge, every page it filled later a 4 KiB one.  So that
 * call is passed on as "off except where advised"
 * (PR_THP_DISABLE_EXCEPT_ADVISED in its third argument, Linux 6.18 and
 * later), which is what it means for everything but the pool.  An older
 * kernel refuses the flag (EINVAL): the call is then skipped when the
 * kernel's setting is "madvise" or "never", where only advised mappings
 * get huge pages anyway (the pool; malloc advises nothing), and made as
 * asked when it is "always" (mariadbd's own choice wins; its pool fills
 * in 4 KiB pages there).
 *
 * Built by scripts/infra.sh when it starts a MariaDB (unless
 * OUTBOX_DB_THP=0), without sanitizers: it runs inside mariadbd.
 */
#include <dlfcn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/types.h>

#ifndef PR_THP_DISABLE_EXCEPT_ADVISED
#define PR_THP_DISABLE_EXCEPT_ADVISED (1UL << 1)
#endif

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

/* 1 when the kernel's transparent huge pages are "always" (or cannot be
 * read: mariadbd's choice is then kept). */
static int
thp_always(void)
{
	char line[128];
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	int always = 1;

	if (f == NULL)
		return 1;
	if (fgets(line, sizeof(line), f) != NULL)
		always = strstr(line, "[always]") != NULL;
	fclose(f);
	return always;
}

typedef int (*prctl_fn)(int, unsigned long, unsigned long, unsigned long,
    unsigned long);

/* prctl(2) is variadic; every option takes at most four more words, read
 * as glibc's own wrapper reads them. */
int
prctl(int option, ...)
{
	static prctl_fn real;
	unsigned long a2, a3, a4, a5;
	va_list ap;

	va_start(ap, option);
	a2 = va_arg(ap, unsigned long);
	a3 = va_arg(ap, unsigned long);
	a4 = va_arg(ap, unsigned long);
	a5 = va_arg(ap, unsigned long);
	va_end(ap);
	if (real == NULL)
		real = (prctl_fn)dlsym(RTLD_NEXT, "prctl");
	if (option != PR_SET_THP_DISABLE || a2 == 0 || a3 != 0)
		return real(option, a2, a3, a4, a5);
	if (real(option, a2, PR_THP_DISABLE_EXCEPT_ADVISED, 0, 0) == 0)
		return 0;
	/* An older kernel (the flag refused): skipped unless the kernel's
	 * setting is "always". */
	if (thp_always())
		return real(option, a2, a3, a4, a5);
	return 0;
}
