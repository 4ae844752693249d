//! `posmesh report z --day D`: a closed day's Z-report, fetched from a node's sales API.

use super::status::base_url;
use crate::import::replay::pounds;
use crate::report::z_report::ZReport;
use anyhow::{bail, Context};
use std::process::ExitCode;

/// Fetches and prints the Z-report of `day` from the node at `api`. Exit code 1 when the
/// report is incomplete on that node (it lacks entries inside the cut).
///
/// # Errors
/// The node cannot be reached, or answers an error (e.g. the day is not closed).
pub async fn print_z(api: &str, day: &str, json: bool) -> anyhow::Result<ExitCode> {
    let url = format!("{}/v1/reports/z/{day}", base_url(api));
    let response = reqwest::get(&url)
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    if !response.status().is_success() {
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        bail!(
            "{url}: {}",
            body["error"]["message"].as_str().unwrap_or("error")
        );
    }
    let text = response.text().await?;
    let report: ZReport = serde_json::from_str(&text).context("the Z-report does not parse")?;
    if json {
        println!("{text}");
    } else {
        let t = &report.totals;
        println!(
            "Z-report {} (closed at Raft index {})",
            report.business_date, report.closed_at_index
        );
        println!("  cut        {:?}", report.cut);
        println!(
            "  sales      {}  items {}  voided {}",
            t.sales, t.items, t.voided_sales
        );
        println!(
            "  takings    £{}  VAT £{}",
            pounds(t.takings_minor),
            pounds(t.tax_minor)
        );
        println!("  refunds    {}  £{}", t.refunds, pounds(t.refunds_minor));
        for (tender, amount) in &t.tenders_minor {
            println!("  {tender:<10} £{}", pounds(*amount));
        }
        if !report.late_entries.is_empty() {
            println!(
                "  late       {} entries after the close (next report): £{}",
                report.late_entries.len(),
                pounds(report.late_totals.takings_minor)
            );
        }
        for day in &report.carried_late_totals {
            println!(
                "  carried    late entries of {} (after its close): {} sales, £{}",
                day.business_date,
                day.sales,
                pounds(day.takings_minor)
            );
        }
        if !report.complete {
            println!("  INCOMPLETE here: this device lacks entries inside the cut (replication still catching up)");
        }
    }
    Ok(if report.complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
