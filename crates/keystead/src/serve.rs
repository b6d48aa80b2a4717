//! `keystead serve`: wire the parts together and run until a signal.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use keystead_crypto::KeyProvider;
use keystead_domain::{DomainConfig, Services};
use keystead_net::{Outbound, OutboundConfig};
use keystead_store::SecretStore;

use crate::config::ServerConfig;

pub async fn run(cfg: ServerConfig, stop_on_stdin_eof: bool) -> anyhow::Result<()> {
    private_files();
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating data directory {}", cfg.data_dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&cfg.data_dir, std::fs::Permissions::from_mode(0o700));
    }
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let public_url = match &cfg.public_url {
        Some(u) if !u.is_empty() => u.clone(),
        _ => format!("http://{addr}"),
    };
    let public_url = url::Url::parse(&public_url).context("public_url is not a URL")?;

    let allow = cfg.allow_networks()?;
    if !allow.is_empty() {
        tracing::warn!(networks = ?cfg.outbound.allow_networks,
            "OUTBOUND SSRF EXEMPTION ACTIVE: outbound.allow_networks lets keystead connect to these special-purpose ranges. For development and tests only.");
    }
    let extra_ca_pem = if cfg.outbound.extra_ca_file.is_empty() {
        None
    } else {
        tracing::warn!(file = %cfg.outbound.extra_ca_file,
            "EXTRA TRUSTED ROOT ACTIVE: outbound.extra_ca_file adds a certificate authority. For development and tests only.");
        Some(std::fs::read(&cfg.outbound.extra_ca_file).with_context(|| {
            format!(
                "reading outbound.extra_ca_file {}",
                cfg.outbound.extra_ca_file
            )
        })?)
    };
    let outbound = Outbound::new(&OutboundConfig {
        allow_networks: allow,
        extra_ca_pem,
        connect_timeout: Duration::from_millis(cfg.outbound.connect_timeout_ms),
        timeout: Duration::from_millis(cfg.outbound.timeout_ms),
        max_in_flight: cfg.outbound.max_in_flight,
        lookup: None,
    })
    .map_err(anyhow::Error::msg)?;

    let store = cfg.open_store().await?;
    let existing = store.any_secret().await?;
    let keys: Arc<dyn KeyProvider> = crate::keys::provider(&cfg, &store).await?;

    if let Some((owner, purpose, sealed)) = &existing {
        keystead_crypto::open(keys.as_ref(), owner, purpose, sealed)
            .await
            .context("the key provider cannot open the secrets in this database (wrong master.key or KMS key?)")?;
    }
    let mut domain_config = DomainConfig::new(public_url);
    domain_config.wallet_rate = (
        cfg.wallets.rate_limit_per_second,
        cfg.wallets.rate_limit_burst,
    );
    let services = Services::new(store, keys, outbound, domain_config);

    // The admin token file is written before its hash is stored (see
    // admin_token.rs): a failure here stops the start with nothing stored.
    crate::admin_token::on_start(services.ops.store(), &cfg.data_dir).await?;

    println!(
        "keystead listening on http://{addr} (public URL {})",
        services.ops.config().issuer_url()
    );
    println!(
        "Custom OIDC redirect URI: {}",
        services.ops.config().redirect_uri()
    );
    tracing::info!(%addr, "listening");

    // Single-use records that can no longer be used, sessions long
    // expired, idempotency keys past their window.
    let purge = services.ops.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(300));
        loop {
            tick.tick().await;
            match purge.purge_expired().await {
                Ok(n) if n > 0 => tracing::debug!(rows = n, "purged expired records"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "purging expired records failed"),
            }
        }
    });

    let limits = keystead_web::HttpLimits {
        header_timeout: Duration::from_millis(cfg.http.header_timeout_ms),
        request_timeout: Duration::from_millis(cfg.http.request_timeout_ms),
        max_connections: cfg.http.max_connections,
    };
    let app = keystead_web::router(services.clone(), &limits);
    keystead_web::serve(listener, app, &limits, shutdown_signal(stop_on_stdin_eof)).await;
    services.ops.store().close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Every file the server creates (the SQLite database and its `-wal` and
/// `-shm`, the key file, the admin token) is readable by its owner only.
fn private_files() {
    #[cfg(unix)]
    // SAFETY: umask only sets the process's file mode mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

async fn shutdown_signal(stop_on_stdin_eof: bool) {
    let stdin_eof = async {
        if stop_on_stdin_eof {
            use tokio::io::AsyncReadExt;
            let mut buf = [0u8; 64];
            let mut stdin = tokio::io::stdin();
            while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
        } else {
            std::future::pending::<()>().await;
        }
    };
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {}, _ = stdin_eof => {} }
}
