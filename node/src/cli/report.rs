//! `posmesh report z --day D`: a closed day's Z-report, fetched from a node's sales API.

use super::status::base_url;
use crate::report::money_text::money_text;
use crate::report::z_report::ZReport;
use anyhow::{bail, Context};
use posmesh_domain::Currency;
use std::process::ExitCode;

/// Fetches and prints the Z-report of `day` from the node at `api`. Exit code 1 when the
/// report is incomplete on that node (it lacks entries inside the cut).
///
/// # Errors
/// `day` is not a date YYYY-MM-DD (nothing is sent then); the node cannot be reached, or
/// answers an error (e.g. the day is not closed).
pub async fn print_z(api: &str, day: &str, json: bool) -> anyhow::Result<ExitCode> {
    if let Err(error) = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d") {
        bail!("--day {day:?} is not a date YYYY-MM-DD (e.g. 2026-11-29): {error}");
    }
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
        let currency = store_currency(api).await?;
        print!("{}", z_text(&report, currency));
    }
    Ok(if report.complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The store's currency, from the node's catalog (`GET /v1/catalog`).
async fn store_currency(api: &str) -> anyhow::Result<Currency> {
    let url = format!("{}/v1/catalog", base_url(api));
    let catalog: serde_json::Value = reqwest::get(&url)
        .await
        .with_context(|| format!("cannot reach {url}"))?
        .json()
        .await
        .with_context(|| format!("{url} answered no JSON"))?;
    let code = catalog["currency"].as_str().unwrap_or_default();
    Currency::from_code(code).with_context(|| format!("{url}: currency {code:?}"))
}

/// The Z-report as text for people, amounts in `currency` ([`money_text`]).
pub fn z_text(report: &ZReport, currency: Currency) -> String {
    let money = |minor: i64| money_text(minor, currency);
    let t = &report.totals;
    let mut lines = vec![
        format!(
            "Z-report {} (closed at Raft index {})",
            report.business_date, report.closed_at_index
        ),
        format!("  cut        {:?}", report.cut),
        format!(
            "  sales      {}  items {}  voided {}",
            t.sales, t.items, t.voided_sales
        ),
        format!(
            "  takings    {}  VAT {}",
            money(t.takings_minor),
            money(t.tax_minor)
        ),
        format!("  refunds    {}  {}", t.refunds, money(t.refunds_minor)),
    ];
    for (tender, amount) in &t.tenders_minor {
        lines.push(format!("  {tender:<10} {}", money(*amount)));
    }
    if !report.late_entries.is_empty() {
        lines.push(format!(
            "  late       {} entries after the close (next report): {}",
            report.late_entries.len(),
            money(report.late_totals.takings_minor)
        ));
    }
    for day in &report.carried_late_totals {
        lines.push(format!(
            "  carried    late entries of {} (after its close): {} sales, {}",
            day.business_date,
            day.sales,
            money(day.takings_minor)
        ));
    }
    if !report.complete {
        lines.push("  INCOMPLETE here: this device lacks entries inside the cut (replication still catching up)".to_owned());
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::day_totals::DayTotals;

    fn report() -> ZReport {
        let mut totals = DayTotals {
            business_date: "2026-11-30".to_owned(),
            sales: 2,
            takings_minor: -250,
            tax_minor: -42,
            refunds: 1,
            refunds_minor: 500,
            ..Default::default()
        };
        totals.tenders_minor.insert("cash".to_owned(), -250);
        ZReport {
            business_date: "2026-11-30".to_owned(),
            closed_at_index: 9,
            cut: BTreeMap::new(),
            complete: true,
            totals,
            late_entries: Vec::new(),
            late_totals: DayTotals::default(),
            carried_late_entries: Vec::new(),
            carried_late_totals: Vec::new(),
        }
    }

    use std::collections::BTreeMap;

    #[test]
    fn amounts_follow_the_store_currency_with_the_sign_first() {
        let gbp = z_text(&report(), Currency::from_code("GBP").expect("GBP"));
        assert!(gbp.contains("takings    -£2.50  VAT -£0.42"), "{gbp}");
        assert!(gbp.contains("cash       -£2.50"), "{gbp}");
        assert!(!gbp.contains("£-"), "{gbp}");
        let jpy = z_text(&report(), Currency::from_code("JPY").expect("JPY"));
        assert!(jpy.contains("takings    -¥250  VAT -¥42"), "{jpy}");
        let chf = z_text(&report(), Currency::from_code("CHF").expect("CHF"));
        assert!(chf.contains("refunds    1  CHF 5.00"), "{chf}");
        assert!(!chf.contains('£'), "{chf}");
    }
}
