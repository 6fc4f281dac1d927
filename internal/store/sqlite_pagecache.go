package store

import (
	"sync"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// Page buffers for SQLite (SQLITE_CONFIG_PAGECACHE).
//
// Without them SQLite takes every page buffer from malloc: the page caches'
// pages, and a page-sized scratch buffer that each b-tree page split
// borrows and frees at once. modernc's allocator serves a page-sized block
// from a 64 KiB mapping of its size class and unmaps a mapping as soon as
// its last block is freed; when the page caches have filled their class's
// mappings, every split maps a fresh one and unmaps it again, and a page
// cache dropped because another connection wrote (the audit index and the
// recordings share the file) unmaps pages by the hundred. Under pgbench at
// 8 clients those mmap and munmap calls were 8% of the gateway's CPU, a
// quarter of indexing the audit log. From a fixed set of slots the same
// buffers cost a free-list operation; SQLite falls back to malloc when the
// slots run out.
const (
	// pageCacheSlots is enough for the page caches of the connections a
	// store keeps busy (the audit index's, the recordings', a few of the
	// pool's) at SQLite's default cache size, 500 pages of 4 KiB each.
	pageCacheSlots = 2048
	// pageCachePageSize is the page size of the store's databases:
	// SQLite's default, which the store does not change.
	pageCachePageSize = 4096
)

// configurePageCache gives SQLite its page buffers, once per process and
// before any database is opened: SQLite's configuration is the library's,
// not a connection's, and is refused once a connection has initialised
// the library. It reports whether SQLite took them (false when something
// in the process opened a database first: SQLite then uses malloc, as it
// did before). The slots, about 9 MiB of address space, are resident only
// once used, and live as long as the process: SQLite holds on to them.
func configurePageCache() bool {
	pageCacheOnce.Do(func() {
		tls := libc.NewTLS()
		defer tls.Close()
		hdr := tls.Alloc(4)
		defer tls.Free(4)
		va := libc.NewVaList(hdr)
		rc := sqlite3.Xsqlite3_config(tls, sqlite3.SQLITE_CONFIG_PCACHE_HDRSZ, va)
		libc.Xfree(tls, va)
		if rc != sqlite3.SQLITE_OK {
			return
		}
		slot := (pageCachePageSize + int(*(*int32)(cptr(hdr))) + 7) &^ 7
		arena := libc.Xmalloc(tls, libc.Tsize_t(slot*pageCacheSlots))
		if arena == 0 {
			return
		}
		va = libc.NewVaList(arena, int32(slot), int32(pageCacheSlots))
		rc = sqlite3.Xsqlite3_config(tls, sqlite3.SQLITE_CONFIG_PAGECACHE, va)
		libc.Xfree(tls, va)
		if rc != sqlite3.SQLITE_OK {
			libc.Xfree(tls, arena)
			return
		}
		pageCacheConfigured = true
	})
	return pageCacheConfigured
}

// SQLite's configuration is process-wide, and so is the record of it.
var (
	pageCacheOnce       sync.Once
	pageCacheConfigured bool
)
