//! SQLite through `rusqlite`: the connection pool and the statement runner.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rusqlite::types::ValueRef;

use super::{Cell, Mode, Out, Row, Val, Q};
use crate::{Result, StoreError};

/// One SQLite file in WAL mode: a single writer connection that every write
/// takes in turn (SQLite has one writer anyway; in one process a mutex is
/// cheaper than the busy handler, and the writer's page cache stays warm),
/// and a few read-only connections for reads, which run beside the writer.
/// A connection is used on the calling thread — statements are
/// microseconds; only a durable COMMIT waits for its fsync.
pub(crate) struct Sqlite {
    path: PathBuf,
    writer: Mutex<Slot>,
    writer_free: Condvar,
    readers: Mutex<Vec<rusqlite::Connection>>,
    max_readers: usize,
}

struct Writer {
    conn: rusqlite::Connection,
    durable: bool,
}

enum Slot {
    Free(Writer),
    Busy,
    /// Closed after an error left it in an unknown state; reopened by the
    /// next user.
    Missing,
}

/// The writer connection, taken out of its slot until drop.
pub(crate) struct WriterGuard {
    w: Option<Writer>,
    db: Arc<Sqlite>,
}

impl WriterGuard {
    pub(super) fn conn(&self) -> Result<&rusqlite::Connection> {
        self.w
            .as_ref()
            .map(|w| &w.conn)
            .ok_or_else(|| StoreError::Decode("writer already returned".into()))
    }

    pub(super) fn set_durable(&mut self, durable: bool) -> Result<()> {
        let w = self
            .w
            .as_mut()
            .ok_or_else(|| StoreError::Decode("writer already returned".into()))?;
        if w.durable != durable {
            // Not a cached statement: a pragma acts when it is compiled.
            w.conn.execute_batch(if durable {
                "PRAGMA synchronous=FULL"
            } else {
                "PRAGMA synchronous=NORMAL"
            })?;
            w.durable = durable;
        }
        Ok(())
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        let Some(w) = self.w.take() else { return };
        // A connection in an unknown state is closed and reopened later.
        let keep = w.conn.is_autocommit() || w.conn.execute_batch("ROLLBACK").is_ok();
        let mut slot = self.db.writer.lock().unwrap_or_else(|e| e.into_inner());
        *slot = if keep { Slot::Free(w) } else { Slot::Missing };
        self.db.writer_free.notify_one();
    }
}

/// A read-only connection, back to the pool on drop.
pub(crate) struct ReaderGuard {
    conn: Option<rusqlite::Connection>,
    db: Arc<Sqlite>,
}

impl ReaderGuard {
    pub(super) fn conn(&self) -> Result<&rusqlite::Connection> {
        self.conn
            .as_ref()
            .ok_or_else(|| StoreError::Decode("reader already returned".into()))
    }
}

impl Drop for ReaderGuard {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        let mut idle = self.db.readers.lock().unwrap_or_else(|e| e.into_inner());
        if conn.is_autocommit() && idle.len() < self.db.max_readers {
            idle.push(conn);
        }
    }
}

impl Sqlite {
    /// `url` is `sqlite://PATH` or `sqlite:PATH`, optionally with a query
    /// (ignored: the file is always created if missing).
    pub(crate) fn open(url: &str, max_readers: usize) -> Result<Arc<Sqlite>> {
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or(StoreError::UnsupportedUrl)?;
        let path = rest.split('?').next().unwrap_or_default();
        if path.is_empty() || path.starts_with(':') {
            return Err(StoreError::UnsupportedUrl);
        }
        let db = Arc::new(Sqlite {
            path: PathBuf::from(path),
            writer: Mutex::new(Slot::Missing),
            writer_free: Condvar::new(),
            readers: Mutex::new(Vec::new()),
            max_readers,
        });
        drop(db.writer()?); // opens the file now, so a bad path fails at start
        Ok(db)
    }

    /// Takes the writer, waiting while another thread uses it.
    pub(super) fn writer(self: &Arc<Self>) -> Result<WriterGuard> {
        let mut slot = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match std::mem::replace(&mut *slot, Slot::Busy) {
                Slot::Free(w) => return Ok(self.guard(w)),
                Slot::Missing => {
                    // Reopened outside the lock; the slot stays Busy meanwhile.
                    drop(slot);
                    return match self.connect(false) {
                        // `connect` leaves it at synchronous=FULL.
                        Ok(conn) => Ok(self.guard(Writer {
                            conn,
                            durable: true,
                        })),
                        Err(e) => {
                            *self.writer.lock().unwrap_or_else(|e| e.into_inner()) = Slot::Missing;
                            self.writer_free.notify_one();
                            Err(e)
                        }
                    };
                }
                Slot::Busy => {
                    slot = self
                        .writer_free
                        .wait(slot)
                        .unwrap_or_else(|e| e.into_inner());
                }
            }
        }
    }

    /// The writer if no one is using it.
    pub(super) fn try_writer(self: &Arc<Self>) -> Option<WriterGuard> {
        let mut slot = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        match std::mem::replace(&mut *slot, Slot::Busy) {
            Slot::Free(w) => Some(self.guard(w)),
            other => {
                *slot = other;
                None
            }
        }
    }

    fn guard(self: &Arc<Self>, w: Writer) -> WriterGuard {
        WriterGuard {
            w: Some(w),
            db: self.clone(),
        }
    }

    pub(super) fn reader(self: &Arc<Self>) -> Result<ReaderGuard> {
        let idle = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(c) => c,
            None => self.connect(true)?,
        };
        Ok(ReaderGuard {
            conn: Some(conn),
            db: self.clone(),
        })
    }

    fn connect(&self, read_only: bool) -> Result<rusqlite::Connection> {
        use rusqlite::OpenFlags;
        let conn = rusqlite::Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
        )?;
        if read_only {
            conn.execute_batch("PRAGMA query_only=1;")?;
        }
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
    }

    pub(super) fn close(&self) {
        self.readers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// A statement without parameters or rows, prepared once per connection.
pub(super) fn exec_cached(conn: &rusqlite::Connection, sql: &str) -> Result<()> {
    conn.prepare_cached(sql)?.raw_execute()?;
    Ok(())
}

pub(super) fn sqlite_run(conn: &rusqlite::Connection, q: &Q, mode: Mode) -> Result<Out> {
    let mut stmt = conn.prepare_cached(&q.sql)?;
    // Placeholders are `$n`: bind each by its number, wherever it appears.
    for idx in 1..=stmt.parameter_count() {
        let name = stmt.parameter_name(idx).unwrap_or_default();
        let n: usize = name
            .strip_prefix('$')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| StoreError::Decode(format!("placeholder {name:?}")))?;
        let v = q
            .params
            .get(n - 1)
            .ok_or_else(|| StoreError::Decode(format!("no value for ${n}")))?;
        match v {
            Val::I64(i) => stmt.raw_bind_parameter(idx, i)?,
            Val::Text(s) => stmt.raw_bind_parameter(idx, s)?,
            Val::Blob(b) => stmt.raw_bind_parameter(idx, b)?,
            Val::NullI64 | Val::NullText => stmt.raw_bind_parameter(idx, rusqlite::types::Null)?,
        }
    }
    if let Mode::Execute = mode {
        if stmt.column_count() == 0 {
            return Ok(Out::Done(stmt.raw_execute()? as u64));
        }
        // RETURNING rows nobody reads: counted only
        let mut rows = stmt.raw_query();
        let mut count = 0u64;
        while rows.next()?.is_some() {
            count += 1;
        }
        return Ok(Out::Done(count));
    }
    let names: Arc<[String]> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    let ncols = names.len();
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut cells = Vec::with_capacity(ncols);
        for i in 0..ncols {
            cells.push(match r.get_ref(i)? {
                ValueRef::Null => Cell::Null,
                ValueRef::Integer(v) => Cell::I64(v),
                ValueRef::Real(v) => Cell::I64(v as i64),
                ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Cell::Blob(b.to_vec()),
            });
        }
        out.push(Row {
            names: names.clone(),
            cells,
        });
        if let Mode::Optional = mode {
            break;
        }
    }
    Ok(Out::Rows(out))
}
