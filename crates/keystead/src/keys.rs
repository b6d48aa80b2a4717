//! The deployment's key provider, built from `[kms]` the same way for
//! `keystead serve` and for `keystead kms …`, and the `kms` commands:
//! `status`, `rotate`, `rewrap` and `migrate --to aws-kms`.
//!
//! A rewrap changes only how each data key is wrapped (the ciphertext of the
//! secret stays): every row is re-wrapped in its own durable statement, and
//! only if it is still what was read. Interrupting it (even `kill -9`) leaves
//! every row either on the old key or on the new one, and both open; a
//! second run does the rest.

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use anyhow::bail;
use keystead_crypto::local::LocalKeyProvider;
use keystead_crypto::{KeyContext, KeyProvider, Routing};
use keystead_store::{SecretStore, Store};

use crate::aws_kms::{AwsKmsProvider, KEY_ID_PREFIX};
use crate::config::ServerConfig;

/// The provider `[kms]` names. With `aws-kms`, a `master.key` left from a
/// `local` install still opens the rows not migrated yet.
pub async fn provider(cfg: &ServerConfig, store: &Store) -> anyhow::Result<Arc<dyn KeyProvider>> {
    let key_path = cfg.master_key_path();
    match cfg.kms.provider.as_str() {
        "local" => {
            if store.any_secret().await?.is_some() && !key_path.exists() {
                bail!(
                    "{} is missing, but the database holds secrets sealed with it; restore the key file \
                     (every instance of a deployment needs the same one). A new key would make them unreadable.",
                    key_path.display()
                );
            }
            Ok(Arc::new(LocalKeyProvider::open_or_create(&key_path)?))
        }
        "aws-kms" => {
            if key_path.exists() {
                return Ok(Arc::new(kms_over_local(cfg, &key_path).await?));
            }
            Ok(Arc::new(aws_kms(cfg).await?))
        }
        other => bail!("kms.provider {other:?} is unknown; use \"local\" or \"aws-kms\""),
    }
}

/// KMS for new secrets, with the local key file still opening the rows
/// sealed under it (a `local` install moving to KMS).
async fn kms_over_local(cfg: &ServerConfig, key_path: &std::path::Path) -> anyhow::Result<Routing> {
    Ok(Routing {
        primary: Arc::new(aws_kms(cfg).await?),
        primary_prefix: KEY_ID_PREFIX,
        others: vec![(
            "local:",
            Arc::new(LocalKeyProvider::open_or_create(key_path)?),
        )],
    })
}

async fn aws_kms(cfg: &ServerConfig) -> anyhow::Result<AwsKmsProvider> {
    let Some(key_id) = cfg.kms.key_id.as_deref().filter(|k| !k.trim().is_empty()) else {
        bail!("aws-kms needs kms.key_id (a KMS key id, ARN or alias)");
    };
    Ok(AwsKmsProvider::connect(
        key_id,
        cfg.kms.region.as_deref(),
        cfg.kms.endpoint_url.as_deref(),
    )
    .await)
}

#[derive(clap::Subcommand, Debug)]
pub enum KmsCmd {
    /// How many secrets each key version wraps, and which one is current.
    Status {
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    },
    /// A new key version (local); with aws-kms, says how to change the key.
    Rotate {
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    },
    /// Re-wraps every data key under the current key version. Resumable.
    Rewrap {
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    },
    /// Moves a local install's data keys to KMS ([kms] key_id, region,
    /// endpoint_url must name the KMS key).
    Migrate {
        #[arg(long)]
        config: Option<std::path::PathBuf>,
        /// The provider to move to: aws-kms.
        #[arg(long)]
        to: String,
    },
}

impl KmsCmd {
    fn config(&self) -> Option<&std::path::Path> {
        match self {
            KmsCmd::Status { config }
            | KmsCmd::Rotate { config }
            | KmsCmd::Rewrap { config }
            | KmsCmd::Migrate { config, .. } => config.as_deref(),
        }
    }
}

/// Runs a `kms` command on the deployment's database and key provider.
pub async fn run(cmd: &KmsCmd) -> anyhow::Result<()> {
    let cfg = ServerConfig::load(cmd.config())?;
    if !cfg.data_dir.is_dir() {
        bail!(
            "data directory {} does not exist: run this where `keystead serve` runs, or pass its --config",
            cfg.data_dir.display()
        );
    }
    let store = cfg.open_store().await?;
    let result = match cmd {
        KmsCmd::Status { .. } => status(&cfg, &store).await,
        KmsCmd::Rotate { .. } => rotate(&cfg).await,
        KmsCmd::Rewrap { .. } => {
            let keys = provider(&cfg, &store).await?;
            rewrap(keys.as_ref(), &store).await
        }
        KmsCmd::Migrate { to, .. } => {
            if to != "aws-kms" {
                bail!("keystead kms migrate --to {to:?}: only aws-kms is a target");
            }
            let key_path = cfg.master_key_path();
            if !key_path.exists() {
                bail!(
                    "{} is missing: there is no local install to migrate",
                    key_path.display()
                );
            }
            rewrap(&kms_over_local(&cfg, &key_path).await?, &store).await?;
            println!(
                "Every secret is now wrapped by KMS. Set [kms] provider = \"aws-kms\" (with the same key_id) on every instance; \
                 keep {} until `keystead kms status` shows no local key version.",
                key_path.display()
            );
            Ok(())
        }
    };
    store.close().await;
    result
}

async fn status(cfg: &ServerConfig, store: &Store) -> anyhow::Result<()> {
    let keys = provider(cfg, store).await?;
    let current = keys.current_key_id().await?;
    let counts = store.key_id_counts().await?;
    let total: i64 = counts.iter().map(|(_, n)| n).sum();
    println!("key provider  {}", cfg.kms.provider);
    println!("current key   {current}");
    println!("secrets       {total}");
    for (key_id, n) in &counts {
        let mark = if *key_id == current {
            "  (current)"
        } else {
            ""
        };
        println!("  {n:>8}  {key_id}{mark}");
    }
    let behind: i64 = counts
        .iter()
        .filter(|(k, _)| *k != current)
        .map(|(_, n)| n)
        .sum();
    if behind > 0 {
        println!("{behind} secret(s) are not on the current key: run `keystead kms rewrap`.");
    }
    Ok(())
}

async fn rotate(cfg: &ServerConfig) -> anyhow::Result<()> {
    match cfg.kms.provider.as_str() {
        "local" => {
            let key_path = cfg.master_key_path();
            if !key_path.exists() {
                bail!("{} is missing", key_path.display());
            }
            let local = LocalKeyProvider::open_or_create(&key_path)?;
            let v = local.rotate()?;
            println!(
                "Key version local:{v} added to {} and used for new secrets from now on \
                 (running servers pick it up by themselves). Run `keystead kms rewrap` to move the existing ones.",
                key_path.display()
            );
            Ok(())
        }
        _ => {
            println!(
                "With aws-kms, KMS rotates the key material of a key by itself (enable automatic rotation on the key). \
                 To move to another KMS key: set [kms] key_id to it on every instance, restart them, then run `keystead kms rewrap`."
            );
            Ok(())
        }
    }
}

/// Re-wraps every data key not under the current key version.
async fn rewrap(keys: &dyn KeyProvider, store: &Store) -> anyhow::Result<()> {
    let current = keys.current_key_id().await?;
    let total: i64 = store
        .key_id_counts()
        .await?
        .iter()
        .filter(|(k, _)| *k != current)
        .map(|(_, n)| n)
        .sum();
    let tty = std::io::stdout().is_terminal();
    let mut done = 0i64;
    let mut failed = Vec::new();
    let mut after: Option<(String, String)> = None;
    let progress = |done: i64| {
        if tty {
            let width = 30usize;
            let filled = if total > 0 {
                (done as usize * width) / total as usize
            } else {
                width
            };
            print!(
                "\r[{}{}] {done}/{total}",
                "#".repeat(filled),
                " ".repeat(width - filled)
            );
            let _ = std::io::stdout().flush();
        } else if done % 100 == 0 || done == total {
            println!("rewrapped {done}/{total}");
        }
    };
    loop {
        let batch = store
            .wrapped_keys_not_on(
                &current,
                after.as_ref().map(|(o, p)| (o.as_str(), p.as_str())),
                100,
            )
            .await?;
        let Some(last) = batch.last() else { break };
        after = Some((last.0.clone(), last.1.clone()));
        for (owner, purpose, wrapped) in &batch {
            let ctx = KeyContext {
                owner_id: owner,
                purpose,
            };
            let step = async {
                let dek = keys.unwrap_key(wrapped, ctx).await?;
                let new = keys.wrap_key(&dek, ctx).await?;
                anyhow::Ok(
                    store
                        .replace_wrapped_key(owner, purpose, wrapped, &new)
                        .await?,
                )
            };
            match step.await {
                // changed meanwhile (a new secret): it is on the current key
                Ok(_) => {}
                Err(e) => failed.push(format!("{owner} ({purpose}): {e:#}")),
            }
            done += 1;
            progress(done);
        }
    }
    if tty {
        println!();
    }
    if total == 0 {
        println!("Every secret is already on {current}.");
    }
    if !failed.is_empty() {
        for f in &failed {
            eprintln!("could not rewrap {f}");
        }
        bail!(
            "{} secret(s) could not be rewrapped; the others are on {current}",
            failed.len()
        );
    }
    if total > 0 {
        println!("Done: {done} secret(s) rewrapped to {current}.");
    }
    Ok(())
}
