/* Fuzz target: the management database parser and validator. Whatever the
 * bytes, loading either fails cleanly or yields a database whose accessors
 * all work. */
#include <stdint.h>
#include <stddef.h>

#include "mem.h"
#include "mgmtdb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mgmtdb *db;
	const char *error;
	if (mgmtdb_parse((const char *)data, size, "fuzz", &db, &error) < 0)
		return 0;
	for (size_t i = 0; i < mgmtdb_admin_count(db); i++)
		(void)mgmtdb_admin_password_hash(db, mgmtdb_admin_name(db, i));
	for (int k = 0; k < 2; k++) {
		for (size_t i = 0; i < mgmtdb_server_count(db, (enum mgmtdb_server_kind)k); i++) {
			struct mgmtdb_server s;
			mgmtdb_server_get(db, (enum mgmtdb_server_kind)k, i, &s);
			(void)mgmtdb_server_remove(db, (enum mgmtdb_server_kind)k, s.server_name);
			break;
		}
	}
	(void)mgmtdb_product_key(db);
	mgmtdb_destroy(&db);
	return 0;
}
