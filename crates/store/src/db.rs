//! The two database drivers behind one small query interface: native
//! SQLite through `rusqlite` (statements run on the calling thread, on a
//! pooled connection with its own prepared-statement cache — no hand-off to
//! a worker thread) and PostgreSQL through `sqlx`'s postgres driver.
//!
//! The storage code writes each statement once, with `$n` placeholders
//! (both SQLite and PostgreSQL read them), binds values with [`Q::bind`] and
//! reads columns by name from a [`Row`].

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rusqlite::types::ValueRef;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::{Column, Row as _, TypeInfo};

use crate::{Result, StoreError};

/// A bound value. Nulls carry their type: PostgreSQL wants to know it.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    I64(i64),
    Text(String),
    Blob(Vec<u8>),
    NullI64,
    NullText,
}

pub(crate) trait IntoVal {
    fn into_val(self) -> Val;
}

impl IntoVal for i64 {
    fn into_val(self) -> Val {
        Val::I64(self)
    }
}
impl IntoVal for &str {
    fn into_val(self) -> Val {
        Val::Text(self.to_owned())
    }
}
impl IntoVal for &String {
    fn into_val(self) -> Val {
        Val::Text(self.clone())
    }
}
impl IntoVal for String {
    fn into_val(self) -> Val {
        Val::Text(self)
    }
}
impl IntoVal for &Vec<u8> {
    fn into_val(self) -> Val {
        Val::Blob(self.clone())
    }
}
impl IntoVal for Option<&str> {
    fn into_val(self) -> Val {
        self.map_or(Val::NullText, IntoVal::into_val)
    }
}
impl IntoVal for &Option<String> {
    fn into_val(self) -> Val {
        self.as_deref().into_val()
    }
}
impl IntoVal for Option<i64> {
    fn into_val(self) -> Val {
        self.map_or(Val::NullI64, Val::I64)
    }
}

/// A column value read back.
#[derive(Debug, Clone)]
pub(crate) enum Cell {
    Null,
    I64(i64),
    Text(String),
    Blob(Vec<u8>),
}

pub(crate) trait FromCell: Sized {
    fn from_cell(cell: &Cell) -> Option<Self>;
}

impl FromCell for i64 {
    fn from_cell(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::I64(i) => Some(*i),
            _ => None,
        }
    }
}
impl FromCell for String {
    fn from_cell(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}
impl FromCell for Vec<u8> {
    fn from_cell(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Blob(b) => Some(b.clone()),
            _ => None,
        }
    }
}
impl<T: FromCell> FromCell for Option<T> {
    fn from_cell(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Null => Some(None),
            c => T::from_cell(c).map(Some),
        }
    }
}

/// One result row: column names and values.
#[derive(Debug)]
pub(crate) struct Row {
    names: Arc<[String]>,
    cells: Vec<Cell>,
}

impl Row {
    pub(crate) fn try_get<T: FromCell>(&self, name: &str) -> Result<T> {
        let i = self
            .names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| StoreError::Decode(format!("no column {name}")))?;
        self.get(i)
    }

    pub(crate) fn get<T: FromCell>(&self, i: usize) -> Result<T> {
        let cell = self
            .cells
            .get(i)
            .ok_or_else(|| StoreError::Decode(format!("no column {i}")))?;
        T::from_cell(cell).ok_or_else(|| {
            StoreError::Decode(format!(
                "column {} has an unexpected type",
                self.names.get(i).map_or("?", String::as_str)
            ))
        })
    }
}

/// A statement and its bound values.
#[derive(Debug)]
pub(crate) struct Q {
    sql: Cow<'static, str>,
    params: Vec<Val>,
}

pub(crate) fn query(sql: impl Into<Cow<'static, str>>) -> Q {
    Q {
        sql: sql.into(),
        params: Vec::new(),
    }
}

/// What `execute` reports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Done(u64);

impl Done {
    pub(crate) fn rows_affected(&self) -> u64 {
        self.0
    }
}

enum Mode {
    Execute,
    Optional,
    All,
}

enum Out {
    Done(u64),
    Rows(Vec<Row>),
}

/// Where a statement runs: a pool (one statement, autocommit) or an open
/// transaction.
pub(crate) enum Ex<'a> {
    Pool(&'a Db),
    Tx(&'a mut Tx),
}

impl<'a> From<&'a Db> for Ex<'a> {
    fn from(db: &'a Db) -> Self {
        Ex::Pool(db)
    }
}

impl<'a> From<&'a mut Tx> for Ex<'a> {
    fn from(tx: &'a mut Tx) -> Self {
        Ex::Tx(tx)
    }
}

impl Q {
    pub(crate) fn bind(mut self, v: impl IntoVal) -> Self {
        self.params.push(v.into_val());
        self
    }

    pub(crate) async fn execute<'a>(self, ex: impl Into<Ex<'a>>) -> Result<Done> {
        match self.run(ex.into(), Mode::Execute).await? {
            Out::Done(n) => Ok(Done(n)),
            Out::Rows(_) => Ok(Done(0)),
        }
    }

    pub(crate) async fn fetch_optional<'a>(self, ex: impl Into<Ex<'a>>) -> Result<Option<Row>> {
        match self.run(ex.into(), Mode::Optional).await? {
            Out::Rows(rows) => Ok(rows.into_iter().next()),
            Out::Done(_) => Ok(None),
        }
    }

    pub(crate) async fn fetch_all<'a>(self, ex: impl Into<Ex<'a>>) -> Result<Vec<Row>> {
        match self.run(ex.into(), Mode::All).await? {
            Out::Rows(rows) => Ok(rows),
            Out::Done(_) => Ok(Vec::new()),
        }
    }

    /// The first column of the first row, if there is a row.
    pub(crate) async fn scalar<'a, T: FromCell>(self, ex: impl Into<Ex<'a>>) -> Result<Option<T>> {
        self.fetch_optional(ex).await?.map(|r| r.get(0)).transpose()
    }

    async fn run(&self, ex: Ex<'_>, mode: Mode) -> Result<Out> {
        match ex {
            Ex::Pool(Db::Sqlite(db, _)) if is_read(&self.sql) => {
                // On the writer when it is free: its page cache is the one
                // that is never invalidated by another connection's commit.
                if let Some(w) = db.try_writer() {
                    return sqlite_run(w.conn()?, self, mode);
                }
                let conn = db.reader()?;
                sqlite_run(conn.conn()?, self, mode)
            }
            Ex::Pool(Db::Sqlite(db, durable)) => {
                let mut w = db.writer()?;
                w.set_durable(*durable)?;
                sqlite_run(w.conn()?, self, mode)
            }
            Ex::Pool(Db::Pg(pool)) => pg_run(pool, self, mode).await,
            Ex::Tx(Tx::Sqlite(w)) => sqlite_run(w.conn()?, self, mode),
            Ex::Tx(Tx::Pg(tx)) => pg_run(&mut **tx, self, mode).await,
        }
    }
}

/// A statement that only reads (runs on a read-only connection).
fn is_read(sql: &str) -> bool {
    sql.trim_start()
        .get(..6)
        .is_some_and(|w| w.eq_ignore_ascii_case("SELECT"))
}

// ---- pools and transactions ---------------------------------------------------

/// A database handle of either driver. On SQLite it also says whether
/// writes through it are durable (`synchronous=FULL`: fsync at commit) or
/// ephemeral (`synchronous=NORMAL`: no fsync; the next durable commit
/// syncs the shared WAL, these commits included).
#[derive(Clone)]
pub(crate) enum Db {
    Sqlite(Arc<Sqlite>, bool),
    Pg(PgPool),
}

/// An open transaction; dropped without `commit`, it rolls back.
pub(crate) enum Tx {
    Sqlite(WriterGuard),
    Pg(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl Db {
    /// Begins a transaction. On SQLite it takes the one writer connection
    /// and the write lock at once (`BEGIN IMMEDIATE`), so a transaction
    /// never has to upgrade a read snapshot.
    pub(crate) async fn begin(&self) -> Result<Tx> {
        match self {
            Db::Sqlite(db, durable) => {
                let mut w = db.writer()?;
                w.set_durable(*durable)?;
                w.conn()?
                    .prepare_cached("BEGIN IMMEDIATE")
                    .and_then(|mut st| st.raw_execute())
                    .map_err(StoreError::from)?;
                Ok(Tx::Sqlite(w))
            }
            Db::Pg(pool) => Ok(Tx::Pg(pool.begin().await?)),
        }
    }

    pub(crate) async fn close(&self) {
        match self {
            Db::Sqlite(db, _) => db.close(),
            Db::Pg(pool) => pool.close().await,
        }
    }
}

impl Tx {
    /// Makes this transaction's commit durable whatever it began as (on
    /// SQLite: switches the writer to `synchronous=FULL` before COMMIT).
    pub(crate) fn make_durable(&mut self) -> Result<()> {
        match self {
            Tx::Sqlite(w) => w.set_durable(true),
            Tx::Pg(_) => Ok(()),
        }
    }

    pub(crate) async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(w) => exec_cached(w.conn()?, "COMMIT"),
            Tx::Pg(tx) => Ok(tx.commit().await?),
        }
    }

    pub(crate) async fn rollback(self) -> Result<()> {
        match self {
            Tx::Sqlite(w) => w
                .conn()?
                .execute_batch("ROLLBACK")
                .map_err(StoreError::from),
            Tx::Pg(tx) => Ok(tx.rollback().await?),
        }
    }
}

// ---- SQLite -----------------------------------------------------------------

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
    fn conn(&self) -> Result<&rusqlite::Connection> {
        self.w
            .as_ref()
            .map(|w| &w.conn)
            .ok_or_else(|| StoreError::Decode("writer already returned".into()))
    }

    fn set_durable(&mut self, durable: bool) -> Result<()> {
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
    fn conn(&self) -> Result<&rusqlite::Connection> {
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
    fn writer(self: &Arc<Self>) -> Result<WriterGuard> {
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
    fn try_writer(self: &Arc<Self>) -> Option<WriterGuard> {
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

    fn reader(self: &Arc<Self>) -> Result<ReaderGuard> {
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

    fn close(&self) {
        self.readers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// A statement without parameters or rows, prepared once per connection.
fn exec_cached(conn: &rusqlite::Connection, sql: &str) -> Result<()> {
    conn.prepare_cached(sql)?.raw_execute()?;
    Ok(())
}

fn sqlite_run(conn: &rusqlite::Connection, q: &Q, mode: Mode) -> Result<Out> {
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
    }
    let names: Arc<[String]> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    let ncols = names.len();
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    let mut count = 0u64;
    while let Some(r) = rows.next()? {
        count += 1;
        if let Mode::Execute = mode {
            continue;
        }
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
    Ok(match mode {
        Mode::Execute => Out::Done(count),
        _ => Out::Rows(out),
    })
}

// ---- PostgreSQL ---------------------------------------------------------------

pub(crate) async fn pg_connect(url: &str, max: u32) -> Result<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await?)
}

async fn pg_run<'e, E: sqlx::PgExecutor<'e>>(ex: E, q: &Q, mode: Mode) -> Result<Out> {
    let mut query = sqlx::query(&q.sql);
    for v in &q.params {
        query = match v {
            Val::I64(i) => query.bind(*i),
            Val::Text(s) => query.bind(s.as_str()),
            Val::Blob(b) => query.bind(b.as_slice()),
            Val::NullI64 => query.bind(None::<i64>),
            Val::NullText => query.bind(None::<&str>),
        };
    }
    Ok(match mode {
        Mode::Execute => Out::Done(query.execute(ex).await?.rows_affected()),
        Mode::Optional => Out::Rows(
            query
                .fetch_optional(ex)
                .await?
                .map(|r| pg_row(&r))
                .transpose()?
                .into_iter()
                .collect(),
        ),
        Mode::All => Out::Rows(
            query
                .fetch_all(ex)
                .await?
                .iter()
                .map(pg_row)
                .collect::<Result<_>>()?,
        ),
    })
}

fn pg_row(r: &PgRow) -> Result<Row> {
    let cols = r.columns();
    let names: Arc<[String]> = cols.iter().map(|c| c.name().to_string()).collect();
    let mut cells = Vec::with_capacity(cols.len());
    for (i, c) in cols.iter().enumerate() {
        let cell = match c.type_info().name() {
            "INT8" => r.try_get::<Option<i64>, _>(i).map(|v| v.map(Cell::I64)),
            "INT4" => r
                .try_get::<Option<i32>, _>(i)
                .map(|v| v.map(|v| Cell::I64(v.into()))),
            "BYTEA" => r
                .try_get::<Option<Vec<u8>>, _>(i)
                .map(|v| v.map(Cell::Blob)),
            _ => r.try_get::<Option<String>, _>(i).map(|v| v.map(Cell::Text)),
        }?;
        cells.push(cell.unwrap_or(Cell::Null));
    }
    Ok(Row { names, cells })
}
