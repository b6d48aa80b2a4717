//! The physical floor of one login: the work no implementation can skip,
//! each measured alone in this process (thread CPU time, which includes the
//! kernel's time on the thread's behalf, e.g. for fsync).
//!
//! - RS256: verify one ID token signature (RSA-2048, aws-lc, as keystead).
//! - secp256k1: a new wallet key, its public key and EIP-55 address.
//! - AES-256-GCM: seal the wallet key under a fresh data key and wrap that
//!   key (two encryptions, as the local key provider does).
//! - One durable SQLite commit: an INSERT in WAL mode, synchronous=FULL;
//!   and one without fsync (synchronous=NORMAL) for returning logins.

use std::time::Instant;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::{anyhow, Result};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, KeyPair, RsaKeyPair};

/// CPU time of the calling thread, in seconds.
fn thread_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// Runs `f` `n` times; returns (CPU µs, wall µs) per call.
fn measure(n: usize, mut f: impl FnMut() -> Result<()>) -> Result<(f64, f64)> {
    for _ in 0..n / 10 {
        f()?;
    }
    let (c0, t0) = (thread_cpu(), Instant::now());
    for _ in 0..n {
        f()?;
    }
    let per = |x: f64| x * 1e6 / n as f64;
    Ok((per(thread_cpu() - c0), per(t0.elapsed().as_secs_f64())))
}

pub struct Floor {
    pub rs256_verify: f64,
    pub secp256k1_wallet: f64,
    pub aes_gcm_seal: f64,
    pub durable_commit_cpu: f64,
    pub durable_commit_wall: f64,
    pub ephemeral_commit: f64,
}

impl Floor {
    /// CPU of one first login's unavoidable work, µs.
    pub fn first_login_us(&self) -> f64 {
        self.rs256_verify + self.secp256k1_wallet + self.aes_gcm_seal + self.durable_commit_cpu
    }

    /// CPU of one returning login's unavoidable work, µs.
    pub fn returning_login_us(&self) -> f64 {
        self.rs256_verify + self.ephemeral_commit
    }

    pub fn print(&self) {
        println!("physical floor (this machine, one thread, CPU per operation):");
        println!(
            "  RS256 ID token signature verify     {:>8.1} µs",
            self.rs256_verify
        );
        println!(
            "  secp256k1 key + EIP-55 address      {:>8.1} µs",
            self.secp256k1_wallet
        );
        println!(
            "  AES-256-GCM seal + data-key wrap    {:>8.1} µs",
            self.aes_gcm_seal
        );
        println!(
            "  durable SQLite commit (WAL, FULL)   {:>8.1} µs CPU ({:.0} µs wall, the fsync)",
            self.durable_commit_cpu, self.durable_commit_wall
        );
        println!(
            "  SQLite commit without fsync         {:>8.1} µs",
            self.ephemeral_commit
        );
        println!(
            "  first login floor                   {:>8.1} µs (all of the above but the last)",
            self.first_login_us()
        );
        println!(
            "  returning login floor               {:>8.1} µs (RS256 + a commit without fsync)",
            self.returning_login_us()
        );
    }
}

pub fn measure_floor(dir: &std::path::Path) -> Result<Floor> {
    // RS256
    let rng = SystemRandom::new();
    let kp = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .map_err(|_| anyhow!("RSA key generation"))?;
    let msg = b"eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIiwic3ViIjoiMTIzIn0";
    let mut sig = vec![0u8; kp.public_modulus_len()];
    kp.sign(&signature::RSA_PKCS1_SHA256, &rng, msg, &mut sig)
        .map_err(|_| anyhow!("RSA sign"))?;
    let public = signature::UnparsedPublicKey::new(
        &signature::RSA_PKCS1_2048_8192_SHA256,
        kp.public_key().as_ref().to_vec(),
    );
    let (rs256_verify, _) = measure(2000, || {
        public.verify(msg, &sig).map_err(|_| anyhow!("RSA verify"))
    })?;

    // secp256k1 wallet
    let (secp256k1_wallet, _) = measure(2000, || {
        let w = keystead_wallet::generate_evm();
        std::hint::black_box(&w.address);
        Ok(())
    })?;

    // AES-256-GCM: seal 32 bytes under a fresh data key, wrap the data key
    let master = Aes256Gcm::new_from_slice(&[7u8; 32]).map_err(|_| anyhow!("key"))?;
    let (aes_gcm_seal, _) = measure(20000, || {
        let dek = keystead_crypto::random_bytes::<32>();
        let cipher = Aes256Gcm::new_from_slice(&dek).map_err(|_| anyhow!("key"))?;
        let nonce = keystead_crypto::random_bytes::<12>();
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &[1u8; 32],
                    aad: b"wallet",
                },
            )
            .map_err(|_| anyhow!("seal"))?;
        let wrapped = master
            .encrypt(Nonce::from_slice(&nonce), &dek[..])
            .map_err(|_| anyhow!("wrap"))?;
        std::hint::black_box((sealed, wrapped));
        Ok(())
    })?;

    // one durable SQLite commit
    let conn = rusqlite::Connection::open(dir.join("floor.db"))?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; \
         CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL);",
    )?;
    let mut i = 0i64;
    let (durable_commit_cpu, durable_commit_wall) = measure(300, || {
        i += 1;
        conn.execute(
            "INSERT INTO t (id, v) VALUES (?1, 'a wallet row of about a hundred bytes, like the ones a first login writes')",
            [i],
        )?;
        Ok(())
    })?;
    conn.execute_batch("PRAGMA synchronous=NORMAL")?;
    let (ephemeral_commit, _) = measure(2000, || {
        i += 1;
        conn.execute(
            "INSERT INTO t (id, v) VALUES (?1, 'a login code row of about a hundred bytes, no fsync at commit')",
            [i],
        )?;
        Ok(())
    })?;
    Ok(Floor {
        rs256_verify,
        secp256k1_wallet,
        aes_gcm_seal,
        durable_commit_cpu,
        durable_commit_wall,
        ephemeral_commit,
    })
}
