//! A store of device nodes on loopback for the multi-device benchmarks: a chain CA, device
//! identities, and nodes started as a full mesh with static peers.

use crate::node_process::{NodeProcess, NodeSpec};
use anyhow::Context;
use posmesh_mesh::pki::ChainCa;
use posmesh_mesh::PeerIdentity;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Store id of the benchmark store.
pub const STORE_ID: &str = "s1";

/// A benchmark store's CA in `work/ca`, issuing identities into `work/<device>-id`.
pub struct BenchStore {
    ca: ChainCa,
    work: PathBuf,
}

impl BenchStore {
    /// Creates chain `bench`'s CA in `work/ca`.
    pub fn new(work: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            ca: ChainCa::init("bench", &work.join("ca"))?,
            work: work.to_path_buf(),
        })
    }

    /// Issues `device` of the store an identity (valid from an hour ago for a day) and
    /// returns its directory.
    pub fn issue(&self, device: &str) -> anyhow::Result<PathBuf> {
        let now = time::OffsetDateTime::from_unix_timestamp(i64::try_from(
            crate::clock::wall_clock_ms() / 1000,
        )?)?;
        let identity = PeerIdentity::new_device("bench", STORE_ID, device)?;
        let dir = self.identity_dir(device);
        self.ca
            .issue(
                &identity,
                now - time::Duration::hours(1),
                now + time::Duration::days(1),
            )?
            .write_identity(&dir)?;
        Ok(dir)
    }

    /// Where `device`'s identity is.
    pub fn identity_dir(&self, device: &str) -> PathBuf {
        self.work.join(format!("{device}-id"))
    }

    /// Issues identities to `till-1 ..= till-<devices>` and returns their node specs (data in
    /// `work/till-K`).
    pub fn device_specs(
        &self,
        binary: &Path,
        catalog: &Path,
        devices: usize,
    ) -> anyhow::Result<Vec<NodeSpec>> {
        (1..=devices)
            .map(|k| {
                let device = format!("till-{k}");
                self.issue(&device)?;
                Ok(NodeSpec {
                    binary: binary.to_path_buf(),
                    data_dir: self.work.join(&device),
                    catalog: catalog.to_path_buf(),
                    store_id: STORE_ID.into(),
                    device_id: device,
                })
            })
            .collect()
    }

    /// Starts every spec on loopback, each with static peers to those started before it
    /// (a full mesh). Returns the nodes and their mesh addresses.
    pub async fn start_full_mesh(
        &self,
        client: &reqwest::Client,
        specs: &[NodeSpec],
    ) -> anyhow::Result<(Vec<NodeProcess>, Vec<String>)> {
        let mut nodes: Vec<NodeProcess> = Vec::with_capacity(specs.len());
        let mut mesh_addrs: Vec<String> = Vec::with_capacity(specs.len());
        for spec in specs {
            let mut extra = vec![
                "--identity-dir".to_owned(),
                self.identity_dir(&spec.device_id).display().to_string(),
                "--mesh-listen".to_owned(),
                "127.0.0.1:0".to_owned(),
            ];
            for (k, addr) in mesh_addrs.iter().enumerate() {
                extra.push("--peer".into());
                extra.push(format!("{}@{addr}", specs[k].device_id));
            }
            let node = NodeProcess::start_with(spec, &extra)?;
            let status = status(client, &node).await?;
            mesh_addrs.push(
                status["mesh"]["listen"]
                    .as_str()
                    .context("mesh address")?
                    .to_owned(),
            );
            nodes.push(node);
        }
        Ok((nodes, mesh_addrs))
    }
}

/// `GET /v1/status` of a node's management API.
pub async fn status(
    client: &reqwest::Client,
    node: &NodeProcess,
) -> anyhow::Result<serde_json::Value> {
    Ok(client
        .get(format!("http://{}/v1/status", node.mgmt))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// A client for the benchmark's requests (10 s timeout: a hung node fails the run).
pub fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?)
}

/// Waits (polling every 2 ms) until every node has a full peer set (`devices - 1`
/// connected peers), at most `limit`.
pub async fn wait_connected(
    client: &reqwest::Client,
    nodes: &[NodeProcess],
    limit: Duration,
) -> anyhow::Result<()> {
    let started = crate::clock::monotonic_now();
    loop {
        let mut all = true;
        for node in nodes {
            let status = status(client, node).await?;
            let connected = status["mesh"]["peers"].as_array().map_or(0, |p| {
                p.iter().filter(|p| p["state"] == "connected").count()
            });
            all &= connected + 1 == nodes.len();
        }
        if all {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "the store mesh did not form within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
