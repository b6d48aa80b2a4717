//! The two database drivers behind one small query interface: native
//! SQLite through `rusqlite` (statements run on the calling thread, on a
//! pooled connection with its own prepared-statement cache — no hand-off to
//! a worker thread) and PostgreSQL through `sqlx`'s postgres driver.
//!
//! The storage code writes each statement once, with `$n` placeholders
//! (both SQLite and PostgreSQL read them), binds values with [`Q::bind`] and
//! reads columns by name from a [`Row`].

use std::borrow::Cow;
use std::sync::Arc;

use sqlx::postgres::PgPool;

mod pg;
mod sqlite;

pub(crate) use pg::pg_connect;
use pg::pg_run;
pub use pg::PgOptions;
pub(crate) use sqlite::Sqlite;
use sqlite::{exec_cached, sqlite_run, WriterGuard};

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
