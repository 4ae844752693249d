//! The cloud's admin commands over its HTTP API: `posmesh cloud publish-catalog` and
//! `posmesh report chain`.

use super::admin_token::AdminToken;
use super::report::ChainReport;
use super::server::PublishCatalogBody;
use crate::cli::status::base_url;
use crate::import::replay::pounds;
use anyhow::Context;
use std::path::Path;

async fn refused(url: &str, response: reqwest::Response) -> anyhow::Error {
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    anyhow::anyhow!(
        "{url}: {status}: {} ({})",
        body["error"]["message"].as_str().unwrap_or("error"),
        body["error"]["code"].as_str().unwrap_or("?")
    )
}

/// Publishes (with the admin `token`) the catalog file `file` for `store_id` at the cloud's admin API `http`
/// (host:port), as the file's own `version`, and returns that version. The cloud
/// validates it; stores apply it through their Raft group once a device is connected.
///
/// # Errors
/// The file cannot be read or is not a valid catalog; the cloud refuses it (stale version)
/// or cannot be reached.
pub async fn publish_catalog(
    http: &str,
    token: &AdminToken,
    store_id: &str,
    file: &Path,
    effective_at_ms: i64,
) -> anyhow::Result<Published> {
    let catalog_toml = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read catalog {}", file.display()))?;
    if catalog_toml.len() > posmesh_consensus::CATALOG_TOML_BYTES_MAX {
        anyhow::bail!(
            "catalog {} is {} bytes; a store takes at most {} bytes of catalog TOML",
            file.display(),
            catalog_toml.len(),
            posmesh_consensus::CATALOG_TOML_BYTES_MAX
        );
    }
    let version = crate::catalog_file::parse_catalog(&catalog_toml)
        .with_context(|| format!("catalog file {} is not valid", file.display()))?
        .version();
    let url = format!("{}/v1/stores/{store_id}/catalog", base_url(http));
    let body = PublishCatalogBody {
        version,
        effective_at_ms,
        catalog_toml,
    };
    let response = reqwest::Client::new()
        .put(&url)
        .bearer_auth(token.secret())
        .json(&body)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    if !response.status().is_success() {
        return Err(refused(&url, response).await);
    }
    let answer: serde_json::Value = response.json().await.unwrap_or_default();
    Ok(Published {
        version,
        warning: answer["warning"].as_str().map(str::to_owned),
    })
}

/// What `publish_catalog` published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// The catalog file's version.
    pub version: u64,
    /// The cloud's warning, e.g. that no device of the store has called yet.
    pub warning: Option<String>,
}

/// Fetches the chain report from the cloud's admin API at `http` (with the admin `token`).
///
/// # Errors
/// The cloud cannot be reached or answers an error.
pub async fn fetch_chain_report(http: &str, token: &AdminToken) -> anyhow::Result<ChainReport> {
    let url = format!("{}/v1/reports/chain", base_url(http));
    let response = reqwest::Client::new()
        .get(&url)
        .bearer_auth(token.secret())
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    if !response.status().is_success() {
        return Err(refused(&url, response).await);
    }
    let text = response.text().await?;
    serde_json::from_str(&text).context("the chain report does not parse")
}

/// Prints the chain report as text: per store its last contact, entries, unforwarded
/// offline card payments, then per day the sales and takings per tender.
pub fn print_chain_report(report: &ChainReport, now_ms: i64) {
    if report.stores.is_empty() {
        println!("the cloud holds no store yet");
    }
    for store in &report.stores {
        let ago_s = (now_ms - store.last_contact_ms).max(0) / 1_000;
        println!(
            "store {}: last contact {ago_s} s ago, {} entries, {} unforwarded offline card payments",
            store.store_id, store.entries, store.unforwarded_offline_card_payments
        );
        println!(
            "  {:<10}  {:>6}  {:>11}  tenders",
            "day", "sales", "takings"
        );
        for day in &store.days {
            let tenders: Vec<String> = day
                .tenders_minor
                .iter()
                .map(|(k, v)| format!("{k} {}", pounds(*v)))
                .collect();
            println!(
                "  {:<10}  {:>6}  {:>11}  {}",
                day.business_date,
                day.sales,
                pounds(day.takings_minor),
                tenders.join(", ")
            );
        }
    }
}
