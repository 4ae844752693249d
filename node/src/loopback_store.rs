//! A store of device nodes on loopback, for the demo and the multi-device benchmarks: a
//! chain CA, device identities, and nodes started as a full mesh with static peers on
//! fixed ports (so a restarted node is found where it was).

use crate::node_process::{NodeProcess, NodeSpec, Placement};
use anyhow::Context;
use posmesh_mesh::pki::ChainCa;
use posmesh_mesh::PeerIdentity;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A store's CA in `work/ca`, issuing identities into `work/<device>-id`.
pub struct LoopbackStore {
    ca: ChainCa,
    chain: String,
    store: String,
    work: PathBuf,
    /// Mesh address of each device started, kept across restarts.
    mesh_addrs: std::collections::BTreeMap<String, String>,
    /// The chain's cloud the devices upload to (`--cloud`), once set.
    cloud: Option<String>,
    /// Flags added to a device's command line on every start and restart.
    device_flags: std::collections::BTreeMap<String, Vec<String>>,
    /// Devices placed on a host of their own (the demo's network namespaces): discovered
    /// by mDNS instead of static peers.
    placements: std::collections::BTreeMap<String, DevicePlacement>,
}

/// Where a device runs when it is not on loopback: its launcher and API host, its mesh
/// address and the interface it runs mDNS discovery on (static peers are then ignored).
#[derive(Clone, Debug)]
pub struct DevicePlacement {
    /// Launcher and the host of its APIs.
    pub placement: Placement,
    /// `--mesh-listen`, `ip:port` on its network interface.
    pub mesh_listen: String,
    /// `--mdns-interface`.
    pub mdns_interface: String,
}

impl LoopbackStore {
    /// Creates chain `chain`'s CA in `work/ca` for store `store`.
    pub fn new(work: &Path, chain: &str, store: &str) -> anyhow::Result<Self> {
        Ok(Self {
            ca: ChainCa::init(chain, &work.join("ca"))?,
            chain: chain.to_owned(),
            store: store.to_owned(),
            work: work.to_path_buf(),
            mesh_addrs: std::collections::BTreeMap::new(),
            cloud: None,
            device_flags: std::collections::BTreeMap::new(),
            placements: std::collections::BTreeMap::new(),
        })
    }

    /// Issues the chain's cloud an identity (`hq`) into `work/cloud-id` and returns it.
    pub fn issue_cloud(&self) -> anyhow::Result<PathBuf> {
        let now = time::OffsetDateTime::from_unix_timestamp(i64::try_from(
            crate::clock::wall_clock_ms() / 1000,
        )?)?;
        let identity = PeerIdentity::new_cloud(&self.chain, "hq")?;
        let dir = self.work.join("cloud-id");
        self.ca
            .issue(
                &identity,
                now - time::Duration::hours(1),
                now + time::Duration::days(1),
            )?
            .write_identity(&dir)?;
        Ok(dir)
    }

    /// Devices started from now on upload to the cloud at `quic` (`--cloud`).
    pub fn set_cloud(&mut self, quic: &str) {
        self.cloud = Some(quic.to_owned());
    }

    /// `device` starts (and restarts) with `flags` added to its command line.
    pub fn set_device_flags(&mut self, device: &str, flags: Vec<String>) {
        self.device_flags.insert(device.to_owned(), flags);
    }

    /// `device` starts (and restarts) at `placement`, finding its peers by mDNS.
    pub fn set_device_placement(&mut self, device: &str, placement: DevicePlacement) {
        self.placements.insert(device.to_owned(), placement);
    }

    /// Issues `device` of the store an identity (valid from an hour ago for a day) and
    /// returns its directory.
    pub fn issue(&self, device: &str) -> anyhow::Result<PathBuf> {
        let now = time::OffsetDateTime::from_unix_timestamp(i64::try_from(
            crate::clock::wall_clock_ms() / 1000,
        )?)?;
        let identity = PeerIdentity::new_device(&self.chain, &self.store, device)?;
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
                    store_id: self.store.clone(),
                    device_id: device,
                })
            })
            .collect()
    }

    /// Starts every spec on loopback, each with static peers to those started before it
    /// (a full mesh). Returns the nodes and their mesh addresses.
    pub async fn start_full_mesh(
        &mut self,
        client: &reqwest::Client,
        specs: &[NodeSpec],
    ) -> anyhow::Result<(Vec<NodeProcess>, Vec<String>)> {
        let mut nodes: Vec<NodeProcess> = Vec::with_capacity(specs.len());
        let mut addrs: Vec<String> = Vec::with_capacity(specs.len());
        for spec in specs {
            let peers: Vec<String> = specs
                .iter()
                .take(nodes.len())
                .map(|s| s.device_id.clone())
                .collect();
            let node = self.start(client, spec, &peers).await?;
            addrs.push(self.mesh_addrs[&spec.device_id].clone());
            nodes.push(node);
        }
        Ok((nodes, addrs))
    }

    /// Starts (or restarts) `spec`'s node with static peers `peers` (devices started before,
    /// at their known addresses). A restarted device listens where it did before. A placed
    /// device ([`LoopbackStore::set_device_placement`]) ignores `peers`: mDNS finds them.
    pub async fn start(
        &mut self,
        client: &reqwest::Client,
        spec: &NodeSpec,
        peers: &[String],
    ) -> anyhow::Result<NodeProcess> {
        self.start_with_flags(client, spec, peers, &[]).await
    }

    /// [`LoopbackStore::start`] with `flags` added to the node's command line.
    pub async fn start_with_flags(
        &mut self,
        client: &reqwest::Client,
        spec: &NodeSpec,
        peers: &[String],
        flags: &[String],
    ) -> anyhow::Result<NodeProcess> {
        let placed = self.placements.get(&spec.device_id).cloned();
        let listen = match &placed {
            Some(placed) => placed.mesh_listen.clone(),
            None => self
                .mesh_addrs
                .get(&spec.device_id)
                .cloned()
                .unwrap_or_else(|| "127.0.0.1:0".to_owned()),
        };
        let mut extra = vec![
            "--identity-dir".to_owned(),
            self.identity_dir(&spec.device_id).display().to_string(),
            "--mesh-listen".to_owned(),
            listen,
        ];
        if let Some(cloud) = &self.cloud {
            extra.push("--cloud".into());
            extra.push(cloud.clone());
        }
        if let Some(placed) = &placed {
            extra.push("--mdns-interface".into());
            extra.push(placed.mdns_interface.clone());
        }
        for peer in peers.iter().filter(|_| placed.is_none()) {
            let addr = self
                .mesh_addrs
                .get(peer)
                .with_context(|| format!("peer {peer} was never started"))?;
            extra.push("--peer".into());
            extra.push(format!("{peer}@{addr}"));
        }
        if let Some(always) = self.device_flags.get(&spec.device_id) {
            extra.extend(always.iter().cloned());
        }
        extra.extend(flags.iter().cloned());
        let node = match &placed {
            Some(placed) => NodeProcess::start_placed(spec, &placed.placement, &extra)?,
            None => NodeProcess::start_with(spec, &extra)?,
        };
        let status = status(client, &node).await?;
        let addr = status["mesh"]["listen"]
            .as_str()
            .context("mesh address")?
            .to_owned();
        self.mesh_addrs.insert(spec.device_id.clone(), addr);
        Ok(node)
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
    nodes: &[&NodeProcess],
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
