//! What the demo asks of the store over the devices' and the cloud's APIs: the Raft leader,
//! committed commands and their application, sales and queued payments per device, peers,
//! the cloud's entries, and the day close with its Z-report on every device.

use super::{CONVERGENCE_WAIT, DEVICES, STORE_ID};
use crate::cloud::process::CloudProcess;
use crate::loopback_store::status;
use crate::node_process::NodeProcess;
use anyhow::Context;
use std::collections::BTreeMap;
use std::time::Duration;

/// `node`'s connected peers and how it learned of each (`mdns`, `static`, `incoming`).
pub(super) async fn peer_sources(
    client: &reqwest::Client,
    node: &NodeProcess,
) -> anyhow::Result<BTreeMap<String, String>> {
    let status = status(client, node).await?;
    Ok(status["mesh"]["peers"]
        .as_array()
        .map(|peers| {
            peers
                .iter()
                .filter(|p| p["state"] == "connected")
                .filter_map(|p| {
                    Some((
                        p["device_id"].as_str()?.to_owned(),
                        p["source"].as_str()?.to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default())
}

/// Entries the cloud holds of the demo store.
pub(super) async fn cloud_entries(cloud: &CloudProcess) -> anyhow::Result<u64> {
    let chain = crate::cloud::client::fetch_chain_report(&cloud.http, &cloud.admin_token).await?;
    Ok(chain.store(STORE_ID).map_or(0, |s| s.entries))
}

/// Entries of its own journal that device `index` holds.
pub(super) async fn own_entries(
    client: &reqwest::Client,
    nodes: &[Option<NodeProcess>],
    index: usize,
) -> anyhow::Result<u64> {
    let node = nodes[index].as_ref().context("device up")?;
    let status = status(client, node).await?;
    Ok(status["journal"]["last_seq"].as_u64().unwrap_or(0))
}

/// Waits until every node names the same Raft leader and [`DEVICES`] voters; answers the
/// leader.
pub(super) async fn wait_leader(
    client: &reqwest::Client,
    nodes: &[&NodeProcess],
) -> anyhow::Result<String> {
    let started = crate::clock::monotonic_now();
    loop {
        let mut views = Vec::new();
        for node in nodes {
            views.push(status(client, node).await?["raft"].clone());
        }
        let leader = views[0]["leader"].as_str().map(str::to_owned);
        let agreed = views.iter().all(|v| {
            v["leader"].as_str() == leader.as_deref()
                && v["voters"].as_array().map(Vec::len) == Some(DEVICES)
        });
        if let (true, Some(leader)) = (agreed, leader) {
            return Ok(leader);
        }
        anyhow::ensure!(
            started.elapsed() < CONVERGENCE_WAIT,
            "the store's Raft group has no leader with {DEVICES} voters: {views:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// PUTs `body` to `path` of the API at `api` (a command committed through Raft); answers
/// its log index.
pub(super) async fn commit(
    client: &reqwest::Client,
    api: &str,
    path: &str,
    body: serde_json::Value,
) -> anyhow::Result<u64> {
    let response = client
        .put(format!("http://{api}{path}"))
        .json(&body)
        .send()
        .await?;
    let code = response.status();
    let answer: serde_json::Value = response.json().await.unwrap_or_default();
    anyhow::ensure!(code.is_success(), "PUT {path}: {code} {answer}");
    answer["log_index"]
        .as_u64()
        .with_context(|| format!("PUT {path} answered no log index: {answer}"))
}

/// Waits until every node applied the Raft log up to `index` (the offline decision reads
/// the locally applied allotment).
pub(super) async fn wait_applied(
    client: &reqwest::Client,
    nodes: &[&NodeProcess],
    index: u64,
) -> anyhow::Result<()> {
    let started = crate::clock::monotonic_now();
    for node in nodes {
        while status(client, node).await?["raft"]["applied_index"]
            .as_u64()
            .unwrap_or(0)
            < index
        {
            anyhow::ensure!(
                started.elapsed() < CONVERGENCE_WAIT,
                "log index {index} not applied on {}",
                node.api
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

/// Payments in `node`'s store-and-forward queue.
pub(super) async fn queued_payments(
    client: &reqwest::Client,
    node: &NodeProcess,
) -> anyhow::Result<u64> {
    let view: serde_json::Value = client
        .get(format!("http://{}/v1/payments/queue", node.api))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    view["queued"]
        .as_u64()
        .with_context(|| format!("queue view without `queued`: {view}"))
}

/// Sales of `device`'s journal that `node` holds (`GET /v1/sales?device=…`, paged; the
/// journal's other entries, payment acknowledgements, are not sales).
pub(super) async fn count_sales(
    client: &reqwest::Client,
    node: &NodeProcess,
    device: &str,
) -> anyhow::Result<u64> {
    let mut count = 0;
    let mut after = 0u64;
    loop {
        let page: serde_json::Value = client
            .get(format!(
                "http://{}/v1/sales?device={device}&after_seq={after}&limit=1000",
                node.api
            ))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        count += page["entries"].as_array().map_or(0, Vec::len) as u64;
        match page["next_after_seq"].as_u64() {
            Some(next) => after = next,
            None => return Ok(count),
        }
    }
}

/// Closes `date` through Raft (on the first node) and fetches its Z-report from every
/// node once each has applied the close and holds the cut; answers the first node's
/// report and how many nodes answered byte-identical bytes.
pub(super) async fn close_day(
    client: &reqwest::Client,
    nodes: &[&NodeProcess],
    date: &str,
) -> anyhow::Result<(serde_json::Value, usize)> {
    let response = client
        .post(format!("http://{}/v1/days/{date}/close", nodes[0].api))
        .header("Idempotency-Key", format!("demo-close-{date}"))
        .send()
        .await?;
    let code = response.status();
    anyhow::ensure!(
        code.is_success(),
        "closing {date}: {code} {}",
        response.text().await.unwrap_or_default()
    );
    let started = crate::clock::monotonic_now();
    let mut bodies = Vec::new();
    for node in nodes {
        loop {
            let response = client
                .get(format!("http://{}/v1/reports/z/{date}", node.api))
                .send()
                .await?;
            if response.status().is_success() {
                let bytes = response.bytes().await?;
                let complete = serde_json::from_slice::<serde_json::Value>(&bytes)?["complete"]
                    == serde_json::Value::Bool(true);
                if complete {
                    bodies.push(bytes);
                    break;
                }
            }
            anyhow::ensure!(
                started.elapsed() < CONVERGENCE_WAIT,
                "no complete Z-report of {date} on {}",
                node.api
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let identical = bodies.iter().filter(|b| **b == bodies[0]).count();
    Ok((serde_json::from_slice(&bodies[0])?, identical))
}
