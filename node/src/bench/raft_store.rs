//! A three-device store on loopback with its Raft group formed, for P3 and P7: till-1 is
//! founded with `posmesh init`, the others join by themselves and are promoted (3 voters).
//! Raft writes are gift-card redemptions through the sales API — the client path a till
//! uses: forwarded to the leader by a follower, committed by a quorum, applied, answered.

use crate::loopback_store::{client, status, wait_connected, LoopbackStore};
use crate::node_process::{NodeProcess, NodeSpec};
use anyhow::{bail, Context};
use posmesh_consensus::StoreCommand;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

/// Devices of the benchmark store.
pub const DEVICES: usize = 3;
/// The card every benchmark redemption takes from: 64 characters (the longest card id).
pub const CARD_ID: &str = "bench-card-00000000000000000000000000000000000000000000000000000";
/// Its opening balance, minor units (the largest amount a card may hold: every redemption
/// takes 1).
const CARD_BALANCE_MINOR: i64 = posmesh_domain::TENDER_AMOUNT_MAX_MINOR;

/// The running store.
pub struct RaftStore {
    /// The store's CA and addresses (to restart a device where it was).
    pub store: LoopbackStore,
    /// The devices' specs, `till-1 ..= till-3`.
    pub specs: Vec<NodeSpec>,
    /// The running nodes, by position in `specs` (`None` while killed).
    pub nodes: Vec<Option<NodeProcess>>,
    /// The client every request goes through.
    pub client: reqwest::Client,
}

impl RaftStore {
    /// Founds and starts the store in `work`, waits until it has one agreed leader and 3
    /// voters, and issues [`CARD_ID`] (currency GBP: the bakery catalog's).
    ///
    /// # Errors
    /// A node that does not start, or no formed group within `limit`.
    pub async fn start(
        binary: &Path,
        catalog: &Path,
        work: &Path,
        limit: Duration,
    ) -> anyhow::Result<Self> {
        let mut store = LoopbackStore::new(work, "bench", "s1")?;
        let specs = store.device_specs(binary, catalog, DEVICES)?;
        let init = std::process::Command::new(binary)
            .arg("init")
            .arg("--data-dir")
            .arg(&specs[0].data_dir)
            .args(["--store-id", &specs[0].store_id])
            .args(["--device-id", &specs[0].device_id])
            .stdout(std::process::Stdio::null())
            .output()?;
        if !init.status.success() {
            bail!(
                "posmesh init failed: {}",
                String::from_utf8_lossy(&init.stderr)
            );
        }
        let client = client()?;
        let (nodes, _) = store.start_full_mesh(&client, &specs).await?;
        wait_connected(&client, &nodes.iter().collect::<Vec<_>>(), limit).await?;
        let this = Self {
            store,
            specs,
            nodes: nodes.into_iter().map(Some).collect(),
            client,
        };
        this.wait_leader(None, limit).await?;
        let answer = this
            .client
            .post(format!("http://{}/v1/gift-cards", this.node(0)?.api))
            .header("Idempotency-Key", "bench-card-issue")
            .json(
                &json!({"card_id": CARD_ID, "amount_minor": CARD_BALANCE_MINOR, "currency": "GBP"}),
            )
            .send()
            .await?;
        if !answer.status().is_success() {
            bail!("issuing the benchmark card: {}", answer.text().await?);
        }
        Ok(this)
    }

    /// The running node at `position`.
    ///
    /// # Errors
    /// If it is not running.
    pub fn node(&self, position: usize) -> anyhow::Result<&NodeProcess> {
        self.nodes
            .get(position)
            .and_then(Option::as_ref)
            .with_context(|| format!("device {} is not running", position + 1))
    }

    /// Waits until every running node names the same leader (not `not`) with 3 voters;
    /// returns the leader's position.
    ///
    /// # Errors
    /// No such agreement within `limit`.
    pub async fn wait_leader(&self, not: Option<usize>, limit: Duration) -> anyhow::Result<usize> {
        let started = crate::clock::monotonic_now();
        loop {
            let mut views = Vec::new();
            for node in self.nodes.iter().flatten() {
                views.push(status(&self.client, node).await?["raft"].clone());
            }
            let leader = views[0]["leader"].as_str().map(str::to_owned);
            let agreed = views.iter().all(|v| {
                v["leader"].as_str() == leader.as_deref()
                    && v["voters"].as_array().map(Vec::len) == Some(DEVICES)
            });
            let position = leader
                .as_deref()
                .and_then(|l| self.specs.iter().position(|s| s.device_id == l));
            if let (true, Some(position)) = (agreed, position) {
                if Some(position) != not {
                    return Ok(position);
                }
            }
            if started.elapsed() > limit {
                bail!("no agreed leader with {DEVICES} voters within {limit:?}: {views:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Restarts the device at `position` on its data directory, with the other devices as
    /// static peers.
    ///
    /// # Errors
    /// The node does not start.
    pub async fn restart(&mut self, position: usize) -> anyhow::Result<()> {
        let peers: Vec<String> = self
            .specs
            .iter()
            .enumerate()
            .filter(|(k, _)| *k != position)
            .map(|(_, s)| s.device_id.clone())
            .collect();
        let spec = self.specs[position].clone();
        let node = self.store.start(&self.client, &spec, &peers).await?;
        self.nodes[position] = Some(node);
        Ok(())
    }

    /// Stops every running node.
    ///
    /// # Errors
    /// A node that does not exit cleanly.
    pub fn stop(self) -> anyhow::Result<()> {
        for node in self.nodes.into_iter().flatten() {
            node.stop()?;
        }
        Ok(())
    }
}

/// The Idempotency-Key (the redemption id) of redemption `i` of client `client` in run
/// `run`: padded to 128 characters, the longest key, so the command in the log is
/// [`redemption_command_bytes`] long.
pub fn redemption_key(run: &str, client: usize, i: usize) -> String {
    format!("{:->128}", format!("{run}-{client}-{i}"))
}

/// Bytes of one benchmark redemption as the Raft log stores its command (JSON, as
/// `consensus::storage` encodes entries; the entry's log id and framing come on top).
pub fn redemption_command_bytes() -> usize {
    let command = StoreCommand::RedeemGiftCard {
        card_id: CARD_ID.to_owned(),
        amount_minor: 1,
        redemption_id: redemption_key("p3", 0, 0),
    };
    serde_json::to_vec(&command).map_or(0, |b| b.len())
}

/// One redemption of 1 minor unit of [`CARD_ID`] through `api`; Ok once committed and
/// applied (201).
///
/// # Errors
/// Transport errors or any other answer (e.g. 503 `no_quorum` during an election).
pub async fn redeem(client: &reqwest::Client, api: &str, key: &str) -> anyhow::Result<()> {
    let answer = client
        .post(format!("http://{api}/v1/gift-cards/{CARD_ID}/redemptions"))
        .header("Idempotency-Key", key)
        .json(&json!({"amount_minor": 1}))
        .send()
        .await?;
    if answer.status().as_u16() != 201 {
        bail!(
            "redemption answered {}: {}",
            answer.status(),
            answer.text().await.unwrap_or_default()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn benchmark_redemptions_fill_the_longest_ids() {
        assert_eq!(CARD_ID.len(), 64);
        assert_eq!(redemption_key("p3", 255, 9999).len(), 128);
        assert_ne!(redemption_key("p3", 1, 2), redemption_key("p3", 12, 0));
        let bytes = redemption_command_bytes();
        assert!((256..320).contains(&bytes), "{bytes}");
    }
}
