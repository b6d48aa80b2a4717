//! A PostgreSQL restart under load: requests in flight fail with a clean
//! 503 `unavailable` and `Retry-After` (never a 500), and keystead recovers
//! by itself. The test runs its own cluster (initdb as the `postgres` user,
//! on a loopback port), so the shared server of the other tests is never
//! touched.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::browser::{basic_partner, login_to_me, Browser};
use crate::kit::{free_port, http, unique, Server, ServerOpts};

fn pg_bin(name: &str) -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let version = std::fs::read_dir(root)
        .expect("PostgreSQL server binaries under /usr/lib/postgresql")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .max()
        .unwrap();
    version.join("bin").join(name)
}

/// A throwaway cluster owned by `postgres`, on 127.0.0.1:`port`.
struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
}

impl Cluster {
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn as_postgres(&self, args: &[&str]) {
        let out = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .args(args)
            .output()
            .expect("runuser");
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start() -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("ks-pg-")
            .tempdir_in("/tmp")
            .unwrap();
        let status = Command::new("chown")
            .args(["postgres:postgres", dir.path().to_str().unwrap()])
            .status()
            .unwrap();
        assert!(status.success());
        let c = Cluster {
            dir,
            port: free_port(),
        };
        let data = c.data();
        c.as_postgres(&[
            pg_bin("initdb").to_str().unwrap(),
            "-D",
            data.to_str().unwrap(),
            "-A",
            "trust",
            "-U",
            "postgres",
        ]);
        c.ctl("start");
        c
    }

    fn ctl(&self, action: &str) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log");
        self.as_postgres(&[
            pg_bin("pg_ctl").to_str().unwrap(),
            "-D",
            self.data().to_str().unwrap(),
            "-o",
            &opts,
            "-l",
            log.to_str().unwrap(),
            "-m",
            "fast",
            "-w",
            action,
        ]);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(pg_bin("pg_ctl"))
            .args([
                "-D",
                self.data().to_str().unwrap_or(""),
                "-m",
                "immediate",
                "stop",
            ])
            .output();
    }
}

#[test]
fn a_postgres_restart_costs_only_the_requests_in_flight() {
    let cluster = Cluster::start();
    let server = Server::start(ServerOpts {
        database_url: Some(cluster.url()),
        env: vec![
            ("KEYSTEAD_WALLETS__RATE_LIMIT_PER_SECOND", "100000"),
            ("KEYSTEAD_WALLETS__RATE_LIMIT_BURST", "100000"),
            ("KEYSTEAD_DATABASE__ACQUIRE_TIMEOUT_MS", "1000"),
        ],
        ..Default::default()
    });
    let p = basic_partner(&server);
    let create = |i: usize| {
        p.call(
            "POST",
            "/v1/wallets",
            Some(json!({"type": "EVM", "userIdentifier": format!("load{i}@example.test"), "userIdentifierType": "EMAIL"})),
        )
    };
    // load, with a restart in the middle of it
    let restarter = std::thread::scope(|s| {
        let restart = s.spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(300));
            cluster.ctl("restart");
        });
        let mut statuses = Vec::new();
        let t0 = std::time::Instant::now();
        let mut i = 0;
        while t0.elapsed() < std::time::Duration::from_secs(4) {
            let r = create(i);
            if r.status != 201 {
                assert_eq!(r.status, 503, "only clean 503s: {}", r.text);
                assert_eq!(r.json["error"]["code"], "unavailable", "{}", r.text);
            }
            statuses.push(r.status);
            i += 1;
        }
        restart.join().unwrap();
        statuses
    });
    let failed = restarter.iter().filter(|s| **s == 503).count();
    assert!(restarter.len() > 10, "{restarter:?}");
    // down for longer than a request waits for a connection: a clean 503
    // with Retry-After, and readiness fails; nothing half-written
    cluster.ctl("stop");
    let down = create(200_000);
    assert_eq!(down.status, 503, "{}", down.text);
    assert_eq!(down.json["error"]["code"], "unavailable");
    assert_eq!(down.header("retry-after"), Some("5"));
    assert_eq!(
        http("GET", &format!("{}/readyz", server.url), None, None).status,
        503
    );
    cluster.ctl("start");
    // back by itself: writes, reads and a whole sign-in work
    for i in 0..20 {
        let r = create(100_000 + i);
        assert_eq!(r.status, 201, "after the restart: {}", r.text);
    }
    assert_eq!(
        http("GET", &format!("{}/readyz", server.url), None, None).status,
        200
    );
    let metrics = http("GET", &format!("{}/metrics", server.url), None, None).text;
    assert!(
        metrics.contains("keystead_db_pool_connections{state=\"idle\"}"),
        "{metrics}"
    );
    let hint = unique("pgr-");
    login_to_me(&Browser::new(&server), &p, &hint);
    // the 503s (if the restart caught any request in flight) named no internals
    assert!(!server.log_text().contains("panicked"));
    eprintln!(
        "{failed} request(s) of {} answered 503 during the restart",
        restarter.len()
    );
}
