/*
 * migrate.c - outbox-migrate: applies the numbered SQL files of a folder
 * (NNN_name.sql) in order, each once, recording each in schema_migrations.
 *
 * Safe to run concurrently: the whole run holds a named database lock
 * (GET_LOCK), so a second runner waits, then finds nothing left to do.
 * Statements use CREATE ... IF NOT EXISTS, so a file interrupted half-way
 * (DDL commits implicitly) is simply applied again.
 */
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cfg.h"
#include "clock.h"
#include "daemon.h"
#include "db.h"
#include "log.h"
#include "sqlsplit.h"

#define MIGRATE_MAX_FILES 1000
#define MIGRATE_FILE_MAX (1024 * 1024)

struct migrate_config {
	struct db_params db;
	char dir[1024];
	int lock_timeout_s;
};

static const struct cfg_opt migrate_opts[] = {
	DB_CFG_ROWS(struct migrate_config, db),
	CFG_ROW_STR("MIGRATIONS_DIR", struct migrate_config, dir,
	    "migrations", 1, "folder of the NNN_name.sql files"),
	CFG_ROW_INT("MIGRATE_LOCK_TIMEOUT", struct migrate_config,
	    lock_timeout_s, "60", 1, 3600,
	    "seconds to wait for another runner's lock"),
};

struct migration {
	int version;
	char file[256];
};

static int
migration_cmp(const void *a, const void *b)
{
	const struct migration *x = a, *y = b;

	return (x->version > y->version) - (x->version < y->version);
}

/* Lists NNN_*.sql files sorted by version; fails on a duplicate version. */
static int
migrate_list(const char *dir, struct migration *out, size_t *n)
{
	struct dirent *de;
	size_t i, len;
	DIR *d;
	int v;

	*n = 0;
	if ((d = opendir(dir)) == NULL) {
		log_warn("migrate: cannot open %s", dir);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		char num[16];
		const char *us = strchr(de->d_name, '_');

		len = strlen(de->d_name);
		if (us == NULL || len < 5 || len >= sizeof(out->file) ||
		    strcmp(de->d_name + len - 4, ".sql") != 0)
			continue;
		if ((size_t)(us - de->d_name) >= sizeof(num))
			continue;
		memcpy(num, de->d_name, (size_t)(us - de->d_name));
		num[us - de->d_name] = '\0';
		if (cfg_parse_int(num, 1, 999999, &v) == -1)
			continue;
		if (*n == MIGRATE_MAX_FILES) {
			closedir(d);
			log_warnx("migrate: too many files in %s", dir);
			return -1;
		}
		out[*n].version = v;
		memcpy(out[*n].file, de->d_name, len + 1);
		(*n)++;
	}
	closedir(d);
	qsort(out, *n, sizeof(*out), migration_cmp);
	for (i = 1; i < *n; i++) {
		if (out[i].version == out[i - 1].version) {
			log_warnx("migrate: version %d used by %s and %s",
			    out[i].version, out[i - 1].file, out[i].file);
			return -1;
		}
	}
	return 0;
}

static int
migrate_read(const char *path, struct buf *b)
{
	char chunk[4096];
	size_t r;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL) {
		log_warn("migrate: %s", path);
		return -1;
	}
	while ((r = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (buf_append(b, chunk, r) == -1) {
			log_warn("migrate: %s", path);
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	return 0;
}

/* Runs each statement of the SQL text in turn (sqlsplit.h: the mysql
 * client's rules, DELIMITER lines included); stops at the first error. */
static int
migrate_exec_file(db_conn *c, const char *file, char *sql)
{
	struct sqlsplit s;
	char *stmt;
	int line, rc;

	sqlsplit_init(&s, sql);
	while ((rc = sqlsplit_next(&s, &stmt, &line)) == 1) {
		if (db_exec_sql(c, stmt) != DB_OK) {
			log_warnx("migrate: %s:%d: %s", file, line,
			    db_error(c));
			return -1;
		}
	}
	if (rc == -1) {
		log_warnx("migrate: %s: %s", file, s.err);
		return -1;
	}
	return 0;
}

static int
migrate_applied(void *ud, const struct db_col *cols, size_t ncols)
{
	int *found = ud;

	(void)cols;
	(void)ncols;
	*found = 1;
	return 0;
}

static int
migrate_lock_result(void *ud, const struct db_col *cols, size_t ncols)
{
	int *got = ud;

	*got = ncols == 1 && !cols[0].is_null && strcmp(cols[0].s, "1") == 0;
	return 0;
}

static int
migrate_run(db_conn *c, const struct migrate_config *cfg)
{
	static struct migration list[MIGRATE_MAX_FILES];
	struct db_val args[2];
	char path[1400];
	size_t n, i, applied = 0;
	struct buf sql;
	int got = 0, found, rc = -1;
	double t0;

	if (migrate_list(cfg->dir, list, &n) == -1)
		return -1;
	args[0] = DB_STR("outbox.migrate");
	args[1] = DB_INT(cfg->lock_timeout_s);
	if (db_query(c, "SELECT GET_LOCK(?, ?)", args, 2, migrate_lock_result,
	    &got, NULL) != DB_OK) {
		log_warnx("migrate: lock: %s", db_error(c));
		return -1;
	}
	if (!got) {
		log_warnx("migrate: another runner held the lock for %d s",
		    cfg->lock_timeout_s);
		return -1;
	}
	if (db_exec_sql(c, "CREATE TABLE IF NOT EXISTS schema_migrations ("
	    "version INT UNSIGNED NOT NULL PRIMARY KEY, "
	    "name VARCHAR(255) NOT NULL, applied_at DATETIME(6) NOT NULL) "
	    "ENGINE = InnoDB DEFAULT CHARSET = utf8mb4") != DB_OK) {
		log_warnx("migrate: schema_migrations: %s", db_error(c));
		goto out;
	}
	buf_init(&sql, MIGRATE_FILE_MAX);
	for (i = 0; i < n; i++) {
		args[0] = DB_INT(list[i].version);
		found = 0;
		if (db_query(c, "SELECT 1 FROM schema_migrations WHERE "
		    "version = ?", args, 1, migrate_applied, &found,
		    NULL) != DB_OK) {
			log_warnx("migrate: %s", db_error(c));
			goto out_buf;
		}
		if (found)
			continue;
		log_info("migrate: applying %s", list[i].file);
		t0 = clock_s();
		snprintf(path, sizeof(path), "%s/%s", cfg->dir, list[i].file);
		buf_reset(&sql);
		if (migrate_read(path, &sql) == -1 || sql.data == NULL ||
		    migrate_exec_file(c, list[i].file, sql.data) == -1)
			goto out_buf;
		args[1] = DB_STR(list[i].file);
		if (db_exec(c, "INSERT INTO schema_migrations (version, name, "
		    "applied_at) VALUES (?, ?, UTC_TIMESTAMP(6))", args, 2,
		    NULL) != DB_OK) {
			log_warnx("migrate: record %s: %s", list[i].file,
			    db_error(c));
			goto out_buf;
		}
		log_info("migrate: applied %s in %.2f s", list[i].file,
		    clock_s() - t0);
		applied++;
	}
	log_info("migrate: %zu applied, %zu files, schema up to date",
	    applied, n);
	rc = 0;
out_buf:
	buf_free(&sql);
out:
	args[0] = DB_STR("outbox.migrate");
	db_query(c, "SELECT RELEASE_LOCK(?)", args, 1, NULL, NULL, NULL);
	return rc;
}

int
main(int argc, char **argv)
{
	struct migrate_config cfg;
	char err[256];
	db_conn *c;
	int rc;

	log_init("migrate", LOG_LVL_INFO);
	if (daemon_help(argc, argv, "usage: outbox-migrate", migrate_opts,
	    sizeof(migrate_opts) / sizeof(migrate_opts[0])))
		return 0;
	memset(&cfg, 0, sizeof(cfg));
	if (cfg_load(migrate_opts, sizeof(migrate_opts) /
	    sizeof(migrate_opts[0]), &cfg, err, sizeof(err)) == -1)
		fatalx("config: %s", err);
	db_global_init();
	if ((c = db_new(&cfg.db)) == NULL) {
		log_warnx("migrate: out of memory");
		return 1;
	}
	if (db_connect(c) != DB_OK) {
		log_warnx("migrate: cannot connect to %s:%d/%s: %s",
		    cfg.db.host, cfg.db.port, cfg.db.name, db_error(c));
		db_free(c);
		db_global_end();
		return 1;
	}
	rc = migrate_run(c, &cfg);
	db_free(c);
	db_global_end();
	return rc == 0 ? 0 : 1;
}
