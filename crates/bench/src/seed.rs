//! `--seed-users N`: fills keystead's SQLite database with N users of the
//! bench partner (user, identity, EVM wallet row, sealed-key row each),
//! written directly into the file while the server runs, so the login
//! phases run against a database of that size. The rows are shaped like
//! real ones (random ids, the real indexes); their keys are dummies no
//! login ever opens.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;

pub fn seed_users(db: &Path, partner_id: &str, issuer: &str, n: usize) -> Result<()> {
    let t0 = Instant::now();
    let mut conn = rusqlite::Connection::open(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.execute_batch("PRAGMA synchronous=NORMAL")?;
    let now = 1_700_000_000i64;
    let batch = 50_000;
    let mut done = 0;
    while done < n {
        let tx = conn.transaction()?;
        {
            let mut users = tx.prepare_cached(
                "INSERT INTO users (id, partner_id, created_at) VALUES (?1, ?2, ?3)",
            )?;
            let mut idents = tx.prepare_cached(
                "INSERT INTO identities (id, user_id, partner_id, issuer, sub, email, created_at, last_login_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6, ?6)",
            )?;
            let mut wallets = tx.prepare_cached(
                "INSERT INTO wallets (id, partner_id, user_id, type, address, public_key, user_identifier, \
                 user_identifier_type, status, created_at) VALUES (?1, ?2, ?3, 'EVM', ?4, ?5, NULL, NULL, 'READY', ?6)",
            )?;
            let mut secrets = tx.prepare_cached(
                "INSERT INTO secrets (owner_id, purpose, key_id, wrapped_key, nonce, ciphertext, created_at) \
                 VALUES (?1, 'wallet_key', 'local-v1', ?2, ?3, ?4, ?5)",
            )?;
            for _ in done..(done + batch).min(n) {
                let user = keystead_crypto::random_token("usr_");
                let wallet = keystead_crypto::random_token("wal_");
                users.execute(rusqlite::params![user, partner_id, now])?;
                idents.execute(rusqlite::params![
                    keystead_crypto::random_token("idn_"),
                    user,
                    partner_id,
                    issuer,
                    keystead_crypto::random_token("seeded-"),
                    now
                ])?;
                let addr = hex::encode(keystead_crypto::random_bytes::<20>());
                wallets.execute(rusqlite::params![
                    wallet,
                    partner_id,
                    user,
                    format!("0x{addr}"),
                    hex::encode(keystead_crypto::random_bytes::<33>()),
                    now
                ])?;
                secrets.execute(rusqlite::params![
                    wallet,
                    keystead_crypto::random_bytes::<60>().to_vec(),
                    keystead_crypto::random_bytes::<12>().to_vec(),
                    keystead_crypto::random_bytes::<48>().to_vec(),
                    now
                ])?;
            }
        }
        tx.commit()?;
        done = (done + batch).min(n);
        eprintln!(
            "seeded {done}/{n} users ({:.0} s)",
            t0.elapsed().as_secs_f64()
        );
    }
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
    Ok(())
}
