#include "catalog-vfs.h"
#include "crypto.h"
#include "mem.h"
#include "tstr.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define WAL_HEADER 32
#define WAL_FRAME_HEADER 24
#define CVFS_PROBE_ATTEMPTS 5

_Static_assert(CATALOG_VFS_RESERVE == CRYPTO_AEAD_OVERHEAD, "reserve holds nonce and tag");
_Static_assert(CATALOG_VFS_KEY_LEN == CRYPTO_KEY_LEN, "key length");

struct catalog_vfs {
	sqlite3_vfs base;
	sqlite3_vfs *parent;
	unsigned char key[CRYPTO_KEY_LEN];
	char name[64];
	char *temp_dir; /* where temporary databases go; NULL: none may open */
	int new_page;   /* a new database's page size */
	int page;       /* the page size of the databases open (open_dbs) */
	int open_dbs;
};

enum cvfs_kind { CVFS_PLAIN, CVFS_DB, CVFS_WAL };

struct cvfs_file {
	sqlite3_file base;
	struct catalog_vfs *vfs;
	enum cvfs_kind kind;
	bool main_db; /* counted in vfs->open_dbs */
	int page;     /* the size of an encrypted unit */
	/* one unit as stored and as plain text: a file is used by one
	 * connection, so by one thread at a time */
	unsigned char *raw, *plain;
	/* WAL: the page number in the last frame header written, and where
	 * that frame's page goes */
	uint32_t last_frame_pgno;
	int64_t last_frame_unit;
	char *temp_name;    /* a temporary database's name, kept until closed */
	sqlite3_file *real; /* points just past this struct */
};

static sqlite3_file *cvfs_real(sqlite3_file *f)
{
	return ((struct cvfs_file *)f)->real;
}

/* Where the encrypted unit containing `offset` starts, or -1 if `offset` is
 * in a plain region; *unit_end_r is where the unit (or plain region) ends. */
static int64_t cvfs_unit(const struct cvfs_file *f, int64_t offset, int64_t *end_r)
{
	if (f->kind == CVFS_DB) {
		int64_t start = offset - offset % f->page;
		*end_r = start + f->page;
		return start;
	}
	int64_t frame_len = WAL_FRAME_HEADER + f->page;
	/* WAL */
	if (offset < WAL_HEADER) {
		*end_r = WAL_HEADER;
		return -1;
	}
	int64_t frame = (offset - WAL_HEADER) / frame_len;
	int64_t frame_start = WAL_HEADER + frame * frame_len;
	if (offset < frame_start + WAL_FRAME_HEADER) {
		*end_r = frame_start + WAL_FRAME_HEADER;
		return -1;
	}
	*end_r = frame_start + frame_len;
	return frame_start + WAL_FRAME_HEADER;
}

static void cvfs_ad(const struct cvfs_file *f, int64_t unit, unsigned char ad[9])
{
	ad[0] = (unsigned char)f->kind;
	for (int i = 0; i < 8; i++)
		ad[1 + i] = (unsigned char)((uint64_t)unit >> (8 * i));
}

static bool cvfs_all_zero(const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i] != 0)
			return false;
	}
	return true;
}

/* Decrypt a unit of `page` bytes read from `unit` into plain (reserved
 * bytes zero). */
static bool cvfs_open_unit(const struct cvfs_file *f, int64_t unit, const unsigned char *raw,
			   int page, unsigned char *plain)
{
	unsigned char ad[9];
	cvfs_ad(f, unit, ad);
	if (crypto_aead_decrypt(f->vfs->key, raw, (size_t)page, ad, sizeof(ad), plain) < 0)
		return false;
	memset(plain + page - CATALOG_VFS_RESERVE, 0, CATALOG_VFS_RESERVE);
	return true;
}

/* Read and decrypt one unit into f->plain. Returns SQLITE_OK,
 * SQLITE_IOERR_SHORT_READ (unit absent: zeros), or an error. */
static int cvfs_read_unit(struct cvfs_file *f, int64_t unit)
{
	int rc = f->real->pMethods->xRead(f->real, f->raw, f->page, unit);
	if (rc == SQLITE_IOERR_SHORT_READ && cvfs_all_zero(f->raw, (size_t)f->page)) {
		memset(f->plain, 0, (size_t)f->page);
		return SQLITE_IOERR_SHORT_READ;
	}
	if (rc != SQLITE_OK)
		return rc == SQLITE_IOERR_SHORT_READ ? SQLITE_IOERR_READ : rc;
	return cvfs_open_unit(f, unit, f->raw, f->page, f->plain) ? SQLITE_OK : SQLITE_IOERR_READ;
}

/* Encrypt f->plain and write it at `unit`. */
static int cvfs_write_unit(struct cvfs_file *f, int64_t unit)
{
	unsigned char ad[9];
	cvfs_ad(f, unit, ad);
	crypto_aead_encrypt(f->vfs->key, f->plain, (size_t)(f->page - CATALOG_VFS_RESERVE), ad,
			    sizeof(ad), f->raw);
	return f->real->pMethods->xWrite(f->real, f->raw, f->page, unit);
}

static int cvfs_read(sqlite3_file *file, void *buf, int amt, sqlite3_int64 offset)
{
	struct cvfs_file *f = (struct cvfs_file *)file;
	if (f->kind == CVFS_PLAIN)
		return f->real->pMethods->xRead(f->real, buf, amt, offset);
	unsigned char *out = buf;
	int64_t pos = offset, end = offset + amt;
	int result = SQLITE_OK;
	while (pos < end) {
		int64_t unit_end, unit = cvfs_unit(f, pos, &unit_end);
		int64_t chunk_end = unit_end < end ? unit_end : end;
		int n = (int)(chunk_end - pos);
		if (unit < 0) {
			int rc = f->real->pMethods->xRead(f->real, out + (pos - offset), n, pos);
			if (rc == SQLITE_IOERR_SHORT_READ)
				result = rc;
			else if (rc != SQLITE_OK)
				return rc;
		} else {
			int rc = cvfs_read_unit(f, unit);
			if (rc == SQLITE_IOERR_SHORT_READ)
				result = rc;
			else if (rc != SQLITE_OK)
				return rc;
			memcpy(out + (pos - offset), f->plain + (pos - unit), (size_t)n);
		}
		pos = chunk_end;
	}
	return result;
}

/* Page 1 must say: pages of the file's unit size, with
 * CATALOG_VFS_RESERVE reserved bytes. */
static bool cvfs_page1_ok(const struct cvfs_file *f)
{
	return f->plain[16] == (f->page >> 8 & 0xff) && f->plain[17] == (f->page & 0xff) &&
	       f->plain[20] == CATALOG_VFS_RESERVE;
}

static uint32_t cvfs_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The page number of the WAL frame whose page starts at `unit`. SQLite
 * writes a frame's header and then its page, so that is usually the header
 * just written; but a transaction larger than the page cache writes a page
 * it spilled before over its own frame, page alone, and then only the
 * frame's header in the file says which page it is. */
static int cvfs_frame_pgno(struct cvfs_file *f, int64_t unit, uint32_t *pgno_r)
{
	if (unit == f->last_frame_unit) {
		*pgno_r = f->last_frame_pgno;
		return SQLITE_OK;
	}
	unsigned char header[WAL_FRAME_HEADER];
	int rc = f->real->pMethods->xRead(f->real, header, sizeof(header), unit - WAL_FRAME_HEADER);
	if (rc != SQLITE_OK)
		return rc == SQLITE_IOERR_SHORT_READ ? SQLITE_IOERR_WRITE : rc;
	*pgno_r = cvfs_be32(header);
	return SQLITE_OK;
}

static int cvfs_write(sqlite3_file *file, const void *buf, int amt, sqlite3_int64 offset)
{
	struct cvfs_file *f = (struct cvfs_file *)file;
	if (f->kind == CVFS_PLAIN)
		return f->real->pMethods->xWrite(f->real, buf, amt, offset);
	const unsigned char *in = buf;
	int64_t pos = offset, end = offset + amt;
	while (pos < end) {
		int64_t unit_end, unit = cvfs_unit(f, pos, &unit_end);
		int64_t chunk_end = unit_end < end ? unit_end : end;
		int n = (int)(chunk_end - pos);
		int rc;
		if (unit < 0) {
			if (f->kind == CVFS_WAL && n == WAL_FRAME_HEADER && unit_end == pos + n) {
				const unsigned char *h = in + (pos - offset);
				f->last_frame_pgno = cvfs_be32(h);
				f->last_frame_unit = unit_end;
			}
			rc = f->real->pMethods->xWrite(f->real, in + (pos - offset), n, pos);
		} else {
			if (n == f->page) {
				memcpy(f->plain, in + (pos - offset), (size_t)n);
			} else {
				/* a partial page: read, patch, re-encrypt */
				rc = cvfs_read_unit(f, unit);
				if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ)
					return rc;
				memcpy(f->plain + (pos - unit), in + (pos - offset), (size_t)n);
			}
			uint32_t pgno = 0;
			if (f->kind == CVFS_WAL) {
				rc = cvfs_frame_pgno(f, unit, &pgno);
				if (rc != SQLITE_OK)
					return rc;
			}
			bool is_page1 = f->kind == CVFS_DB ? unit == 0 : pgno == 1;
			if (is_page1 && !cvfs_page1_ok(f))
				return SQLITE_IOERR_WRITE;
			rc = cvfs_write_unit(f, unit);
		}
		if (rc != SQLITE_OK)
			return rc;
		pos = chunk_end;
	}
	return SQLITE_OK;
}

static int cvfs_close(sqlite3_file *file)
{
	struct cvfs_file *f = (struct cvfs_file *)file;
	sqlite3_file *real = cvfs_real(file);
	int rc = real->pMethods != NULL ? real->pMethods->xClose(real) : SQLITE_OK;
	if (f->main_db)
		f->vfs->open_dbs--;
	mem_free(f->raw);
	mem_free(f->plain);
	mem_free(f->temp_name);
	return rc;
}

static int cvfs_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return cvfs_real(f)->pMethods->xTruncate(cvfs_real(f), size);
}

static int cvfs_sync(sqlite3_file *f, int flags)
{
	return cvfs_real(f)->pMethods->xSync(cvfs_real(f), flags);
}

static int cvfs_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return cvfs_real(f)->pMethods->xFileSize(cvfs_real(f), size);
}

static int cvfs_lock(sqlite3_file *f, int lock)
{
	return cvfs_real(f)->pMethods->xLock(cvfs_real(f), lock);
}

static int cvfs_unlock(sqlite3_file *f, int lock)
{
	return cvfs_real(f)->pMethods->xUnlock(cvfs_real(f), lock);
}

static int cvfs_check_reserved(sqlite3_file *f, int *out)
{
	return cvfs_real(f)->pMethods->xCheckReservedLock(cvfs_real(f), out);
}

static int cvfs_file_control(sqlite3_file *f, int op, void *arg)
{
	/* no memory-mapped I/O: it would bypass decryption */
	if (op == SQLITE_FCNTL_MMAP_SIZE) {
		*(sqlite3_int64 *)arg = 0;
		return SQLITE_OK;
	}
	return cvfs_real(f)->pMethods->xFileControl(cvfs_real(f), op, arg);
}

static int cvfs_sector_size(sqlite3_file *f)
{
	return cvfs_real(f)->pMethods->xSectorSize(cvfs_real(f));
}

static int cvfs_device_characteristics(sqlite3_file *f)
{
	return cvfs_real(f)->pMethods->xDeviceCharacteristics(cvfs_real(f));
}

static int cvfs_shm_map(sqlite3_file *f, int region, int size, int extend, void volatile **p)
{
	return cvfs_real(f)->pMethods->xShmMap(cvfs_real(f), region, size, extend, p);
}

static int cvfs_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
	return cvfs_real(f)->pMethods->xShmLock(cvfs_real(f), offset, n, flags);
}

static void cvfs_shm_barrier(sqlite3_file *f)
{
	cvfs_real(f)->pMethods->xShmBarrier(cvfs_real(f));
}

static int cvfs_shm_unmap(sqlite3_file *f, int delete_flag)
{
	return cvfs_real(f)->pMethods->xShmUnmap(cvfs_real(f), delete_flag);
}

static const sqlite3_io_methods cvfs_io_methods = {
	.iVersion = 2,
	.xClose = cvfs_close,
	.xRead = cvfs_read,
	.xWrite = cvfs_write,
	.xTruncate = cvfs_truncate,
	.xSync = cvfs_sync,
	.xFileSize = cvfs_file_size,
	.xLock = cvfs_lock,
	.xUnlock = cvfs_unlock,
	.xCheckReservedLock = cvfs_check_reserved,
	.xFileControl = cvfs_file_control,
	.xSectorSize = cvfs_sector_size,
	.xDeviceCharacteristics = cvfs_device_characteristics,
	.xShmMap = cvfs_shm_map,
	.xShmLock = cvfs_shm_lock,
	.xShmBarrier = cvfs_shm_barrier,
	.xShmUnmap = cvfs_shm_unmap,
};

static bool cvfs_page_size_known(int page)
{
	return page == CATALOG_VFS_PAGE_SIZE || page == CATALOG_VFS_PAGE_SIZE_OLD;
}

/* The page size of the database file just opened: the size its first
 * page authenticates as; for an empty file (a new database: switching to
 * WAL writes page 1 into the file first) that of the databases open, else
 * a new one's. A file that authenticates as neither (another key, damage)
 * gets the latter too, and reading it fails as before. */
static int cvfs_db_page_size(struct cvfs_file *f)
{
	static const int sizes[] = {CATALOG_VFS_PAGE_SIZE_OLD, CATALOG_VFS_PAGE_SIZE};
	int fallback = catalog_vfs_page_size(f->vfs);
	sqlite3_int64 size;
	if (f->real->pMethods->xFileSize(f->real, &size) != SQLITE_OK || size == 0)
		return fallback;
	/* the largest unit there is holds the first unit of every size */
	int len = size < CATALOG_VFS_PAGE_SIZE ? (int)size : CATALOG_VFS_PAGE_SIZE;
	int found = 0;
	unsigned char *raw = mem_alloc(CATALOG_VFS_PAGE_SIZE);
	unsigned char *plain = mem_alloc(CATALOG_VFS_PAGE_SIZE);
	/* page 1 is read without a lock: another connection's checkpoint may
	 * be writing it, and a read it cut in two fails to authenticate; a
	 * few tries more tell that from another key */
	for (int attempt = 0; found == 0 && attempt < CVFS_PROBE_ATTEMPTS; attempt++) {
		if (attempt > 0)
			usleep(1000);
		if (f->real->pMethods->xRead(f->real, raw, len, 0) != SQLITE_OK)
			continue;
		for (size_t i = 0; found == 0 && i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			if (len >= sizes[i] && cvfs_open_unit(f, 0, raw, sizes[i], plain))
				found = sizes[i];
		}
	}
	if (found == 0)
		found = fallback;
	mem_free(raw);
	mem_free(plain);
	return found;
}

/* Give an encrypted file its unit size and buffers; a database whose
 * page size differs from that of the databases already open through this
 * VFS (whose WAL and transient copies use theirs) is refused. */
static int cvfs_open_units(struct cvfs_file *f, bool main_db)
{
	struct catalog_vfs *vfs = f->vfs;
	if (main_db) {
		int page = cvfs_db_page_size(f);
		if (vfs->open_dbs > 0 && page != vfs->page)
			return SQLITE_CANTOPEN;
		vfs->page = page;
		vfs->open_dbs++;
		f->main_db = true;
	}
	f->page = catalog_vfs_page_size(vfs);
	f->raw = mem_alloc((size_t)f->page);
	f->plain = mem_alloc((size_t)f->page);
	return SQLITE_OK;
}

static int cvfs_open(sqlite3_vfs *base, const char *name, sqlite3_file *file, int flags,
		     int *out_flags)
{
	struct catalog_vfs *vfs = (struct catalog_vfs *)base;
	struct cvfs_file *f = (struct cvfs_file *)file;
	memset(f, 0, sizeof(*f));
	f->vfs = vfs;
	f->real = (sqlite3_file *)(f + 1);
	if (name == NULL) {
		/* A temporary file would hold the catalog's contents in plain
		 * text, outside the base directory. With temp_store = MEMORY
		 * (catalog.c) SQLite asks for none; during a scrub VACUUM asks
		 * for its transient database (SQLITE_OPEN_TEMP_DB), which is
		 * encrypted like the catalog, in the catalog's directory, and
		 * unlinked at once. Anything else is refused. */
		if ((flags & SQLITE_OPEN_TEMP_DB) == 0 || vfs->temp_dir == NULL) {
			f->base.pMethods = NULL;
			return SQLITE_CANTOPEN;
		}
		char *hex = crypto_random_hex(8);
		char *path = mem_printf("%s/.catalog-temp-%s", vfs->temp_dir, hex);
		mem_free(hex);
		/* SQLite reads URI parameters after a name's NUL: end with two */
		size_t len = strlen(path);
		f->temp_name = mem_alloc(len + 2);
		memcpy(f->temp_name, path, len + 1);
		f->temp_name[len + 1] = '\0';
		mem_free(path);
		name = f->temp_name;
		flags |= SQLITE_OPEN_DELETEONCLOSE | SQLITE_OPEN_EXCLUSIVE | SQLITE_OPEN_CREATE |
			 SQLITE_OPEN_READWRITE;
		f->kind = CVFS_DB;
	} else if ((flags & SQLITE_OPEN_MAIN_DB) != 0) {
		f->kind = CVFS_DB;
	} else if ((flags & SQLITE_OPEN_WAL) != 0) {
		f->kind = CVFS_WAL;
	} else {
		f->kind = CVFS_PLAIN;
	}
	int rc = vfs->parent->xOpen(vfs->parent, name, f->real, flags, out_flags);
	if (rc == SQLITE_OK && f->kind != CVFS_PLAIN) {
		rc = cvfs_open_units(f, f->temp_name == NULL && f->kind == CVFS_DB);
		if (rc != SQLITE_OK)
			f->real->pMethods->xClose(f->real);
	}
	if (rc != SQLITE_OK) {
		mem_free(f->raw);
		mem_free(f->plain);
		mem_free(f->temp_name);
		f->base.pMethods = NULL;
		return rc;
	}
	f->base.pMethods = &cvfs_io_methods;
	return SQLITE_OK;
}

static int cvfs_delete(sqlite3_vfs *base, const char *name, int sync_dir)
{
	sqlite3_vfs *parent = ((struct catalog_vfs *)base)->parent;
	return parent->xDelete(parent, name, sync_dir);
}

static int cvfs_access(sqlite3_vfs *base, const char *name, int flags, int *out)
{
	sqlite3_vfs *parent = ((struct catalog_vfs *)base)->parent;
	return parent->xAccess(parent, name, flags, out);
}

static int cvfs_full_pathname(sqlite3_vfs *base, const char *name, int n, char *out)
{
	sqlite3_vfs *parent = ((struct catalog_vfs *)base)->parent;
	return parent->xFullPathname(parent, name, n, out);
}

static void *cvfs_dl_open(sqlite3_vfs *base, const char *name)
{
	return NULL;
}

static void cvfs_dl_error(sqlite3_vfs *base, int n, char *out)
{
	snprintf(out, (size_t)n, "extensions are not loaded");
}

static void (*cvfs_dl_sym(sqlite3_vfs *base, void *handle, const char *sym))(void)
{
	return NULL;
}

static void cvfs_dl_close(sqlite3_vfs *base, void *handle)
{
}

static int cvfs_randomness(sqlite3_vfs *base, int n, char *out)
{
	crypto_random(out, (size_t)n);
	return n;
}

static int cvfs_sleep(sqlite3_vfs *base, int usec)
{
	sqlite3_vfs *parent = ((struct catalog_vfs *)base)->parent;
	return parent->xSleep(parent, usec);
}

static int cvfs_current_time(sqlite3_vfs *base, double *out)
{
	sqlite3_vfs *parent = ((struct catalog_vfs *)base)->parent;
	return parent->xCurrentTime(parent, out);
}

static int cvfs_get_last_error(sqlite3_vfs *base, int n, char *out)
{
	sqlite3_vfs *parent = ((struct catalog_vfs *)base)->parent;
	return parent->xGetLastError != NULL ? parent->xGetLastError(parent, n, out) : 0;
}

static int cvfs_current_time_int64(sqlite3_vfs *base, sqlite3_int64 *out)
{
	sqlite3_vfs *parent = ((struct catalog_vfs *)base)->parent;
	return parent->xCurrentTimeInt64(parent, out);
}

int catalog_vfs_create(const unsigned char key[CATALOG_VFS_KEY_LEN], int new_page_size,
		       struct catalog_vfs **vfs_r, const char **error_r)
{
	if (!cvfs_page_size_known(new_page_size)) {
		*error_r =
			tstr_printf("catalog pages of %d bytes are not supported", new_page_size);
		return -1;
	}
	sqlite3_vfs *parent = sqlite3_vfs_find(NULL);
	if (parent == NULL || parent->iVersion < 2) {
		*error_r = "SQLite has no usable default VFS";
		return -1;
	}
	struct catalog_vfs *vfs = mem_new(struct catalog_vfs);
	vfs->parent = parent;
	memcpy(vfs->key, key, CRYPTO_KEY_LEN);
	vfs->new_page = new_page_size;
	vfs->page = new_page_size;
	snprintf(vfs->name, sizeof(vfs->name), "coffer-catalog-%p", (void *)vfs);
	vfs->base = (sqlite3_vfs){
		.iVersion = 2,
		.szOsFile = (int)sizeof(struct cvfs_file) + parent->szOsFile,
		.mxPathname = parent->mxPathname,
		.zName = vfs->name,
		.xOpen = cvfs_open,
		.xDelete = cvfs_delete,
		.xAccess = cvfs_access,
		.xFullPathname = cvfs_full_pathname,
		.xDlOpen = cvfs_dl_open,
		.xDlError = cvfs_dl_error,
		.xDlSym = cvfs_dl_sym,
		.xDlClose = cvfs_dl_close,
		.xRandomness = cvfs_randomness,
		.xSleep = cvfs_sleep,
		.xCurrentTime = cvfs_current_time,
		.xGetLastError = cvfs_get_last_error,
		.xCurrentTimeInt64 = cvfs_current_time_int64,
	};
	int rc = sqlite3_vfs_register(&vfs->base, 0);
	if (rc != SQLITE_OK) {
		*error_r =
			tstr_printf("registering the catalog VFS failed: %s", sqlite3_errstr(rc));
		crypto_wipe(vfs->key, sizeof(vfs->key));
		mem_free(vfs);
		return -1;
	}
	*vfs_r = vfs;
	return 0;
}

void catalog_vfs_destroy(struct catalog_vfs **_vfs)
{
	struct catalog_vfs *vfs = *_vfs;
	if (vfs == NULL)
		return;
	*_vfs = NULL;
	sqlite3_vfs_unregister(&vfs->base);
	crypto_wipe(vfs->key, sizeof(vfs->key));
	mem_free(vfs->temp_dir);
	mem_free(vfs);
}

void catalog_vfs_set_temp_dir(struct catalog_vfs *vfs, const char *dir)
{
	mem_free(vfs->temp_dir);
	vfs->temp_dir = dir == NULL ? NULL : mem_strdup(dir);
}

const char *catalog_vfs_name(const struct catalog_vfs *vfs)
{
	return vfs->name;
}

int catalog_vfs_page_size(const struct catalog_vfs *vfs)
{
	return vfs->open_dbs > 0 ? vfs->page : vfs->new_page;
}
