//! The etcd baseline of P3: a 3-member etcd cluster (Debian's `etcd-server` package, the
//! `etcd` binary on `PATH`) on 127.0.0.1 ports of this machine, each member with its own
//! data directory under the benchmark's work directory, written to through etcd's v3
//! HTTP/JSON gateway (`POST /v3/kv/put`, key and value in base64). The members are
//! SIGKILLed by pid when the [`EtcdCluster`] is dropped, and registered in
//! [`crate::child_processes`] meanwhile, so a benchmark ended by SIGINT (Ctrl-C) or
//! SIGTERM kills them too instead of leaving them running.

use anyhow::{bail, Context};
use base64::Engine as _;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Members of the baseline cluster.
pub const MEMBERS: usize = 3;

/// A running 3-member etcd cluster on loopback.
pub struct EtcdCluster {
    children: Vec<Child>,
    /// Client URL of each member, `http://127.0.0.1:port`.
    pub client_urls: Vec<String>,
    /// `etcd --version`'s first line.
    pub version: String,
}

impl EtcdCluster {
    /// Starts the members with data in `work/etcd-<k>` and waits (at most `limit`) until
    /// every member accepts a put.
    ///
    /// # Errors
    /// No `etcd` binary, a member exiting early, or no quorum within `limit`.
    pub async fn start(
        client: &reqwest::Client,
        work: &Path,
        limit: Duration,
    ) -> anyhow::Result<Self> {
        let version = Command::new("etcd")
            .arg("--version")
            .output()
            .context("no `etcd` on PATH (apt-get install etcd-server)")?;
        let version = String::from_utf8_lossy(&version.stdout)
            .lines()
            .next()
            .unwrap_or("etcd")
            .to_owned();
        let client_ports = free_ports(MEMBERS)?;
        let peer_ports = free_ports(MEMBERS)?;
        let cluster: Vec<String> = peer_ports
            .iter()
            .enumerate()
            .map(|(k, port)| format!("e{}=http://127.0.0.1:{port}", k + 1))
            .collect();
        let mut this = Self {
            children: Vec::with_capacity(MEMBERS),
            client_urls: client_ports
                .iter()
                .map(|p| format!("http://127.0.0.1:{p}"))
                .collect(),
            version,
        };
        for (k, peer_port) in peer_ports.iter().enumerate() {
            let data = work.join(format!("etcd-{}", k + 1));
            std::fs::create_dir_all(&data)?;
            let log = std::fs::File::create(work.join(format!("etcd-{}.log", k + 1)))?;
            let child = Command::new("etcd")
                .arg("--name")
                .arg(format!("e{}", k + 1))
                .arg("--data-dir")
                .arg(&data)
                .arg("--listen-client-urls")
                .arg(&this.client_urls[k])
                .arg("--advertise-client-urls")
                .arg(&this.client_urls[k])
                .arg("--listen-peer-urls")
                .arg(format!("http://127.0.0.1:{peer_port}"))
                .arg("--initial-advertise-peer-urls")
                .arg(format!("http://127.0.0.1:{peer_port}"))
                .arg("--initial-cluster")
                .arg(cluster.join(","))
                .arg("--initial-cluster-state")
                .arg("new")
                .arg("--initial-cluster-token")
                .arg(format!("posmesh-bench-{}", std::process::id()))
                .args(["--logger", "zap", "--log-level", "error"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .context("cannot start etcd")?;
            crate::child_processes::started(child.id());
            this.children.push(child);
        }
        let started = crate::clock::monotonic_now();
        for url in this.client_urls.clone() {
            loop {
                for child in &mut this.children {
                    if let Some(status) = crate::child_processes::try_reap(child)? {
                        bail!(
                            "an etcd member exited with {status} (logs in {})",
                            work.display()
                        );
                    }
                }
                if put(client, &url, "posmesh-bench/ready", b"1").await.is_ok() {
                    break;
                }
                if started.elapsed() > limit {
                    bail!("the etcd cluster took no put within {limit:?}");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(this)
    }

    /// The members' process ids.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            // Our own children, by pid.
            let _ = crate::child_processes::kill_and_reap(child);
        }
    }
}

/// One put of `value` at `key` through member `url`'s JSON gateway; Ok once etcd answered
/// 200 (committed by a quorum: etcd acknowledges a put after Raft commit and apply).
///
/// # Errors
/// Transport errors, a non-200 answer, or a body that is not etcd's put response.
pub async fn put(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    value: &[u8],
) -> anyhow::Result<()> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let answer: serde_json::Value = client
        .post(format!("{url}/v3/kv/put"))
        .json(&serde_json::json!({"key": b64.encode(key), "value": b64.encode(value)}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    answer["header"]["revision"]
        .as_str()
        .context("etcd's answer has no revision")?;
    Ok(())
}

/// `count` distinct free TCP ports on 127.0.0.1 (bound, read, released; a race with another
/// process taking one in between fails the cluster's start, not silently).
fn free_ports(count: usize) -> anyhow::Result<Vec<u16>> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<_>, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `pid` is a process that has not ended (a zombie — ended, not yet reaped —
    /// counts as ended).
    fn running(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            // `pid (comm) S ...`: the state follows the last ')'.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_some_and(|state| state != "Z" && state != "X")
        })
    }

    /// SIGTERM to the benchmark (here: this test process, whose handlers
    /// [`crate::child_processes::on_interrupt`] installed first) kills the etcd members it
    /// started, by the same path as a `posmesh bench` stopped by SIGTERM or Ctrl-C.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sigterm_kills_the_etcd_members_it_started() {
        if Command::new("etcd").arg("--version").output().is_err() {
            eprintln!("SKIPPED: no `etcd` on PATH (apt-get install etcd-server)");
            return;
        }
        let work = tempfile::tempdir().expect("tempdir");
        let client = crate::loopback_store::client().expect("client");
        let cluster = EtcdCluster::start(&client, work.path(), Duration::from_secs(60))
            .await
            .expect("etcd cluster starts");
        let pids = cluster.pids();
        assert_eq!(pids.len(), MEMBERS);
        for pid in &pids {
            assert!(running(*pid), "member {pid} runs");
            assert!(crate::child_processes::is_registered(*pid));
        }
        let interrupted = crate::child_processes::on_interrupt().expect("handlers");
        let status = Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let code = tokio::time::timeout(Duration::from_secs(10), interrupted)
            .await
            .expect("SIGTERM seen within 10 s");
        assert_eq!(code, 143);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while pids.iter().any(|pid| running(*pid)) {
            assert!(
                std::time::Instant::now() < deadline,
                "members still running 10 s after SIGTERM: {pids:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for pid in &pids {
            assert!(!crate::child_processes::is_registered(*pid));
        }
        drop(cluster); // reaps them
    }
}
