//! PostgreSQL through `sqlx`'s postgres driver: the pool and the statement
//! runner.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::{Column, Row as _, TypeInfo};

use super::{Cell, Mode, Out, Row, Val, Q};
use crate::Result;

/// The PostgreSQL pool's limits (`[database]` in the server config).
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connections per instance.
    pub pool_size: u32,
    /// How long a request waits for a free connection (then 503).
    pub acquire_timeout: Duration,
    /// The server-side `statement_timeout` of every connection.
    pub statement_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            pool_size: 16,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
        }
    }
}

pub(crate) async fn pg_connect(url: &str, o: &PgOptions) -> Result<PgPool> {
    let connect: sqlx::postgres::PgConnectOptions = url.parse()?;
    let connect = connect.options([(
        "statement_timeout",
        o.statement_timeout.as_millis().to_string(),
    )]);
    // Connections are checked before use, so a restarted server costs
    // only the requests that were in flight.
    Ok(PgPoolOptions::new()
        .max_connections(o.pool_size.max(1))
        .acquire_timeout(o.acquire_timeout)
        .test_before_acquire(true)
        .connect_with(connect)
        .await?)
}

pub(super) async fn pg_run<'e, E: sqlx::PgExecutor<'e>>(ex: E, q: &Q, mode: Mode) -> Result<Out> {
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
