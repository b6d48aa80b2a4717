//! The admin token file, `{data_dir}/admin-token` (SPEC §10): made on the
//! first start of a deployment, replaced by `keystead admin reset-token`.
//!
//! The rule both follow: the file is written (and synced) *before* the
//! token's hash is stored. A token that works is therefore always in a file;
//! a failure leaves at worst a file whose token is not stored yet, which the
//! next start stores (see [`on_start`]) or which is removed.

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use keystead_crypto::local::write_file_0600;
use keystead_crypto::{ExposeSecret, SecretString};
use keystead_domain::Admin;
use keystead_store::Store;

pub const FILE_NAME: &str = "admin-token";

/// How long to wait for another instance sharing the data directory to
/// finish writing the file it created.
const WAIT_FOR_WRITER: Duration = Duration::from_secs(5);

/// At start: makes the deployment's admin token if it has none.
///
/// - A token is stored: nothing to do (a warning if the file here holds
///   another one, e.g. after a reset from another host).
/// - None stored, no file: a new token is written to a file created
///   exclusively (0600, synced), then its hash is stored. If writing fails
///   the server does not start and nothing is stored, so the next start
///   tries again. If storing fails the file is removed. If another instance
///   with its own data directory stored its token first, ours does not work
///   and the file is removed (that instance has the file).
/// - None stored, but the file exists: another instance sharing this data
///   directory is between writing it and storing its hash, or a start was
///   interrupted there. The file's token is the one to store (whoever
///   stores first stores the same token). A file that does not hold a
///   complete token within a few seconds stops the start with a message.
pub async fn on_start(store: &Store, data_dir: &Path) -> anyhow::Result<()> {
    let path = data_dir.join(FILE_NAME);
    if Admin::has_admin_token(store).await? {
        if let Ok(Some(token)) = read_token(&path) {
            if !Admin::admin_token_matches(store, token.expose_secret()).await? {
                tracing::warn!(file = %path.display(),
                    "this file does not hold the current admin token (was it reset with `keystead admin reset-token` on another host?)");
            }
        }
        println!(
            "Admin token: see {} (created on first start).",
            path.display()
        );
        return Ok(());
    }

    let token = Admin::new_admin_token();
    match create_new_0600(&path, &token) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return adopt(store, &path).await,
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "writing the admin token to {} (nothing was stored; fix this and start again)",
                    path.display()
                )
            })
        }
    }
    match Admin::ensure_admin_token(store, &token).await {
        Ok(true) => {
            println!("Admin token written to {} (mode 0600).", path.display());
            Ok(())
        }
        Ok(false) => {
            // Someone stored a token between our check and our write. If it
            // is ours (an instance sharing this directory adopted the file),
            // keep the file; otherwise the file holds a token that does not
            // work, and goes.
            if Admin::admin_token_matches(store, token.expose_secret()).await? {
                println!("Admin token written to {} (mode 0600).", path.display());
            } else {
                remove_if_holds(&path, &token).with_context(|| {
                    format!(
                        "removing {}, which holds a token that does not work",
                        path.display()
                    )
                })?;
                println!(
                    "Admin token: another instance of this deployment created it first; \
                     its data directory has the admin-token file."
                );
            }
            Ok(())
        }
        Err(e) => {
            // The next start would store the file's token anyway; removing
            // it keeps the rule simple: no stored hash, no file from us.
            if let Err(rm) = remove_if_holds(&path, &token) {
                tracing::warn!(file = %path.display(), error = %rm, "could not remove the admin token file");
            }
            Err(anyhow::Error::new(e)).context("storing the admin token")
        }
    }
}

/// The file exists and no token is stored: store the file's token.
async fn adopt(store: &Store, path: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + WAIT_FOR_WRITER;
    let token = loop {
        match read_token(path) {
            Ok(Some(t)) => break t,
            Ok(None) if Instant::now() < deadline => {
                // Maybe still being written by another instance.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(None) => bail!(
                "{} exists but does not hold an admin token (one line, at least 32 characters, \
                 ending with a newline), and the database has none. Remove the file and start again.",
                path.display()
            ),
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "reading {} (no admin token is stored yet; remove what is there and start again)",
                        path.display()
                    )
                })
            }
        }
    };
    if Admin::ensure_admin_token(store, &token).await?
        || Admin::admin_token_matches(store, token.expose_secret()).await?
    {
        println!(
            "Admin token: see {} (its token is now the admin token).",
            path.display()
        );
    } else {
        remove_if_holds(path, &token)?;
        println!(
            "Admin token: another instance of this deployment created it first; \
             its data directory has the admin-token file."
        );
    }
    Ok(())
}

/// `keystead admin reset-token`: a new token, written to the file first,
/// then stored; the previous token stops working at once on every
/// instance. If storing fails, the previous file is put back (the previous
/// token still works). Returns the file's path.
pub async fn reset(store: &Store, data_dir: &Path) -> anyhow::Result<PathBuf> {
    let path = data_dir.join(FILE_NAME);
    let previous = match std::fs::read(&path) {
        Ok(bytes) => Some(zeroize::Zeroizing::new(bytes)),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => {
            return Err(e)
                .with_context(|| format!("reading {} (nothing was changed)", path.display()))
        }
    };
    let token = Admin::new_admin_token();
    let line = zeroize::Zeroizing::new(format!("{}\n", token.expose_secret()));
    write_file_0600(&path, line.as_bytes())
        .with_context(|| format!("writing {} (nothing was changed)", path.display()))?;
    sync_dir(data_dir);
    if let Err(e) = Admin::replace_admin_token(store, &token).await {
        let restored = match &previous {
            Some(bytes) => write_file_0600(&path, bytes),
            None => std::fs::remove_file(&path),
        };
        let note = match restored {
            Ok(()) => format!("{} is as it was; the previous token still works", path.display()),
            Err(r) => format!(
                "and {} could not be restored ({r}): it holds a token that does not work; the previous token still works",
                path.display()
            ),
        };
        return Err(anyhow::Error::new(e))
            .context(format!("storing the new admin token failed; {note}"));
    }
    Ok(path)
}

/// The token in the file: `Ok(None)` when the file is missing or does not
/// hold one complete token line yet.
fn read_token(path: &Path) -> std::io::Result<Option<SecretString>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => zeroize::Zeroizing::new(t),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == ErrorKind::InvalidData => return Ok(None),
        Err(e) => return Err(e),
    };
    // The newline marks a complete write.
    let Some(line) = text.strip_suffix('\n') else {
        return Ok(None);
    };
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.len() < 32 || !line.bytes().all(|b| b.is_ascii_graphic()) {
        return Ok(None);
    }
    Ok(Some(SecretString::from(line.to_string())))
}

/// Creates `path` (failing if it exists), mode 0600, with the token line,
/// synced with its directory.
fn create_new_0600(path: &Path, token: &SecretString) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    let line = zeroize::Zeroizing::new(format!("{}\n", token.expose_secret()));
    let written = f.write_all(line.as_bytes()).and_then(|()| f.sync_all());
    if let Err(e) = written {
        drop(f);
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    if let Some(dir) = path.parent() {
        sync_dir(dir);
    }
    Ok(())
}

/// Removes the file if it still holds `token` (another instance may have
/// replaced it since).
fn remove_if_holds(path: &Path, token: &SecretString) -> std::io::Result<()> {
    match read_token(path)? {
        Some(t) if t.expose_secret() == token.expose_secret() => match std::fs::remove_file(path) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

/// Makes a created or replaced directory entry durable (best effort; not
/// possible on every platform).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}
