//! What the demo found and how it is printed: the [`DemoReport`] (its last line, JSON),
//! the reconciliation table, the last day's totals and the Z-report line.

use super::acquirer::Arrivals;
use super::till::Paid;
use super::DEVICES;
use crate::import::replay::pounds;
use crate::report::day_totals::DayTotals;
use serde::Serialize;
use std::collections::BTreeMap;

/// What the demo found (printed as its last line, JSON).
#[derive(Clone, Debug, Default, Serialize)]
pub struct DemoReport {
    /// Transactions in the file.
    pub transactions_in_file: usize,
    /// Transactions with a real item: the sales planned.
    pub sales_planned: usize,
    /// Days replayed.
    pub days: usize,
    /// Sales planned per device.
    pub planned_per_device: BTreeMap<String, u64>,
    /// Sales each device's journal holds at the end (its own journal).
    pub recorded_per_device: BTreeMap<String, u64>,
    /// Entries every device holds at the end (all devices' journals).
    pub entries_on_every_device: Vec<u64>,
    /// The device SIGKILLed and the day.
    pub killed: Option<(String, String)>,
    /// Sales re-sent after the restart (not acknowledged before the kill).
    pub resent_after_restart: usize,
    /// The device cut off and its first and last day alone.
    pub partitioned: Option<(String, String, String)>,
    /// Sales the cut-off device took alone.
    pub sold_while_partitioned: u64,
    /// Milliseconds from the last sale until every device held every entry.
    pub converged_ms: u64,
    /// Days whose totals are identical on every device.
    pub days_identical: usize,
    /// Days whose item count equals the file's.
    pub days_matching_file: usize,
    /// Journals whose hash chain and signed heads verify.
    pub journals_verified: usize,
    /// First and last day the store had no internet (the cloud unreachable).
    pub cloud_outage: Option<(String, String)>,
    /// Sales taken during the outage.
    pub sold_during_cloud_outage: u64,
    /// Entries the cloud held when the internet came back (the rest was uploaded after).
    pub cloud_entries_at_heal: u64,
    /// Entries the cloud holds at the end (each sale once: equals the sales planned).
    pub cloud_entries: u64,
    /// Sales in the cloud's chain report at the end.
    pub sales_in_cloud: u64,
    /// Days whose totals in the cloud equal the devices'.
    pub cloud_days_identical: usize,
    /// Milliseconds from device convergence until the cloud held every sale.
    pub cloud_converged_ms: u64,
    /// Card payments approved online by the acquirer.
    pub card_online: u64,
    /// Card payments taken offline (acquirer unreachable) within the limits.
    pub card_offline_taken: u64,
    /// Card payments refused offline (402 `offline_*`) and paid in cash instead.
    pub card_refused_offline_paid_cash: u64,
    /// Offline payments' advices at the acquirer after the outage (unique must equal
    /// `card_offline_taken`; raw counts repeats).
    pub forwarded: Arrivals,
    /// Payments left in the devices' store-and-forward queues at the end (must be 0).
    pub queued_at_end: u64,
    /// The cloud's unforwarded offline card payments of the store at the end (must be 0).
    pub cloud_unforwarded: u64,
    /// Milliseconds from the last sale until every offline payment was seen forwarded (the
    /// forwarder starts when the internet comes back, so most are forwarded before).
    pub forwarded_ms: u64,
    /// The last day, closed through Raft: its Z-report (as till-1 answers it).
    pub z_report: Option<serde_json::Value>,
    /// Devices whose Z-report of the last day is byte-identical to till-1's.
    pub z_report_identical: usize,
    /// Where the store ran: `netns` (`root` or `user` namespaces) or `loopback`.
    pub network: String,
    /// How the devices found each other: `mdns` (netns) or `static` (loopback).
    pub discovery: String,
    /// Each device's connected peers once the store formed, by how it learned of them
    /// (`mdns`, `static` or `incoming`: the peer dialled first).
    pub peers_by_source: BTreeMap<String, BTreeMap<String, String>>,
    /// True when everything above reconciles.
    pub reconciled: bool,
}

/// Every device connected to every other once the store formed; in netns mode none by a
/// static peer address (each pair found by mDNS on at least one side: nothing else
/// tells a device where the other is).
pub(super) fn discovery_complete(report: &DemoReport) -> bool {
    let full = report.peers_by_source.len() == DEVICES
        && report
            .peers_by_source
            .values()
            .all(|peers| peers.len() == DEVICES - 1);
    if report.discovery != "mdns" {
        return full;
    }
    let devices: Vec<&String> = report.peers_by_source.keys().collect();
    let found = |a: &String, b: &String| {
        report.peers_by_source[a].get(b).map(String::as_str) == Some("mdns")
    };
    full && report
        .peers_by_source
        .values()
        .all(|peers| peers.values().all(|source| source != "static"))
        && devices
            .iter()
            .enumerate()
            .all(|(i, a)| devices[i + 1..].iter().all(|b| found(a, b) || found(b, a)))
}

/// Counts how a sale was paid into the report.
pub(super) fn count_paid(report: &mut DemoReport, paid: Paid) {
    match paid {
        Paid::Cash => {}
        Paid::CardOnline => report.card_online += 1,
        Paid::CardOffline => report.card_offline_taken += 1,
        Paid::CardRefusedThenCash => report.card_refused_offline_paid_cash += 1,
    }
}

pub(super) fn print_z_report(z: &serde_json::Value, identical: usize) {
    let totals = &z["totals"];
    let tender = |kind: &str| pounds(totals["tenders_minor"][kind].as_i64().unwrap_or(0));
    println!(
        "== Z-report {} (closed through Raft at log index {}): {} sales, takings £{}, VAT £{}, cash £{}, card £{}; late entries {}; byte-identical on {identical} of {DEVICES} devices",
        z["business_date"].as_str().unwrap_or("?"),
        z["closed_at_index"],
        totals["sales"],
        pounds(totals["takings_minor"].as_i64().unwrap_or(0)),
        pounds(totals["tax_minor"].as_i64().unwrap_or(0)),
        tender("cash"),
        tender("card"),
        z["late_entries"].as_array().map_or(0, Vec::len)
    );
}

pub(super) fn print_last_day(day: &DayTotals) {
    let tender = |kind: &str| pounds(day.tenders_minor.get(kind).copied().unwrap_or(0));
    println!(
        "== last day {}: {} sales, {} items, takings £{}, VAT £{}, cash £{}, card £{} (identical on every device)",
        day.business_date, day.sales, day.items, pounds(day.takings_minor), pounds(day.tax_minor), tender("cash"), tender("card")
    );
}

pub(super) fn print_report(report: &DemoReport) {
    println!("\n== reconciliation");
    println!(
        "   network                          {}, discovery by {}",
        report.network, report.discovery
    );
    for (device, peers) in &report.peers_by_source {
        let found: Vec<String> = peers
            .iter()
            .map(|(peer, source)| format!("{peer} via {source}"))
            .collect();
        println!(
            "   {device:<8} connected to {}  {}",
            found.join(", "),
            if peers.len() == DEVICES - 1 {
                "ok"
            } else {
                "MISMATCH"
            }
        );
    }
    println!(
        "   transactions in the file        {:>7}",
        report.transactions_in_file
    );
    println!(
        "   sales (transactions with items) {:>7}  over {} days",
        report.sales_planned, report.days
    );
    for (device, planned) in &report.planned_per_device {
        let recorded = report.recorded_per_device.get(device).copied().unwrap_or(0);
        println!(
            "   {device:<8} planned {planned:>6}  recorded {recorded:>6}  {}",
            if *planned == recorded {
                "ok"
            } else {
                "MISMATCH"
            }
        );
    }
    println!(
        "   entries on every device          {:?}",
        report.entries_on_every_device
    );
    if let Some((device, day)) = &report.killed {
        println!(
            "   {device} SIGKILLed on {day}: {} unacknowledged sales re-sent after the restart, none lost, none doubled",
            report.resent_after_restart
        );
    }
    if let Some((device, from, to)) = &report.partitioned {
        println!(
            "   {device} cut off {from} … {to}: sold {} alone; converged {} ms after the last sale",
            report.sold_while_partitioned, report.converged_ms
        );
    }
    println!(
        "   days identical on every device   {:>7} of {}",
        report.days_identical, report.days
    );
    println!(
        "   days whose items equal the file  {:>7} of {}",
        report.days_matching_file, report.days
    );
    println!(
        "   journals verified (chain, heads) {:>7} of {DEVICES}",
        report.journals_verified
    );
    if let Some((from, to)) = &report.cloud_outage {
        println!(
            "   internet down {from} … {to}: {} sales taken offline; the cloud held {} entries when it came back",
            report.sold_during_cloud_outage, report.cloud_entries_at_heal
        );
    }
    println!(
        "   sales in the cloud               {:>7}  ({} entries, each once)  {}",
        report.sales_in_cloud,
        report.cloud_entries,
        if report.sales_in_cloud == report.sales_planned as u64 {
            "ok"
        } else {
            "MISMATCH"
        }
    );
    println!(
        "   days identical in the cloud      {:>7} of {}",
        report.cloud_days_identical, report.days
    );
    println!(
        "   card payments online             {:>7}",
        report.card_online
    );
    println!(
        "   card payments taken offline      {:>7}  (internet down: acquirer unreachable)",
        report.card_offline_taken
    );
    println!(
        "   cards refused offline → cash     {:>7}  (over the floor limit, device cap or allotment)",
        report.card_refused_offline_paid_cash
    );
    println!(
        "   offline payments forwarded       {:>7}  distinct at the acquirer ({} advices sent), {} queued, {} unforwarded in the cloud  {}",
        report.forwarded.unique,
        report.forwarded.raw,
        report.queued_at_end,
        report.cloud_unforwarded,
        if report.forwarded.unique == report.card_offline_taken
            && report.queued_at_end == 0
            && report.cloud_unforwarded == 0
        {
            "ok"
        } else {
            "MISMATCH"
        }
    );
    println!(
        "   Z-report of the last day         {:>7} of {DEVICES} devices byte-identical",
        report.z_report_identical
    );
    println!(
        "   {}",
        if report.reconciled {
            "RECONCILED"
        } else {
            "NOT RECONCILED"
        }
    );
}
