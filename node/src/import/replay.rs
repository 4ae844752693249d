//! Sending a parsed till export to a node as sales.
//!
//! Each transaction becomes one `POST /v1/sales` with the Idempotency-Key
//! `import-<first 12 hex of the file's SHA-256>-<transaction>`, so running the same import
//! twice records nothing twice (the second run is answered with replays). Items are matched
//! to the node's catalog by trimmed name; the amount due is priced locally with the node's
//! own catalog (as a POS app shows the total before payment), and the tender is chosen
//! deterministically from the transaction number: every third is paid by card for the exact
//! amount, the others in cash rounded up to the next £5 note (change given).
//!
//! Idempotency-Keys are per device (each device's journal writer keeps the keys it
//! answered; replicated entries do not enter another device's table, and a store-wide
//! table would need a store-wide decision per sale, which offline selling excludes): a
//! re-run through the SAME device records nothing twice, but the same export imported
//! through ANOTHER device of the store would record every sale again. The import
//! therefore refuses to start when another device's sales replicated to the node carry
//! this file's keys (`--allow-second-device` overrides), warns when the node already holds
//! sales on the export's dates, and a reconciliation that finds more items on the node than
//! in the file names a second import as the likely cause (what replication had not yet
//! brought when the import started cannot be seen).

use super::till_export::{parse_till_export_first, TillExport, TillTransaction};
use crate::api::dto::{CreateSaleBody, LineBody, TenderBody};
use crate::cli::status::base_url;
use crate::report::day_totals::DayTotals;
use anyhow::{bail, Context};
use chrono::{LocalResult, TimeZone};
use chrono_tz::Tz;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use posmesh_domain::{price_sale, Catalog, CatalogFile, Consumption, TenderKind};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Attempts per sale on connection errors and 5xx answers (≈ 1.5 s of backoff in all).
pub const SALE_ATTEMPTS_MAX: u32 = 4;
/// First retry delay; doubles per attempt.
pub const RETRY_DELAY_INITIAL_MS: u64 = 100;
/// Cash is tendered rounded up to a multiple of this (a £5 note), minor units.
pub const CASH_NOTE_MINOR: i64 = 500;

/// What to import and where.
#[derive(clap::Args, Clone, Debug)]
pub struct ImportArgs {
    /// The till export (CSV with header Date,Time,Transaction,Item).
    pub csv: PathBuf,
    /// Sales API of the node (`host:port` or URL).
    #[arg(long, env = "POSMESH_API", default_value = "127.0.0.1:7070")]
    pub api: String,
    /// Sales in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// IANA time zone of the export's local times.
    #[arg(long, default_value = "Europe/London")]
    pub time_zone: String,
    /// Import only the first N transactions (N ≥ 1).
    #[arg(long, value_parser = parse_limit)]
    pub limit: Option<usize>,
    /// Print the summary as one JSON line instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Skip the per-day reconciliation (and its table): only whether every sale was
    /// delivered is checked.
    #[arg(long)]
    pub no_days: bool,
    /// Import although another device of the store already holds sales of this file
    /// (they would be recorded twice: Idempotency-Keys are per device).
    #[arg(long)]
    pub allow_second_device: bool,
}

/// The outcome of an import.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ImportSummary {
    /// The file.
    pub file: String,
    /// Data lines read (with `--limit`: up to the end of the slice).
    pub lines: usize,
    /// Distinct transactions in the lines read.
    pub transactions_in_file: usize,
    /// Transactions with at least one real item in the lines read (the sales to record,
    /// at most `--limit`).
    pub transactions_with_items: usize,
    /// Sales planned and handed to the node, each acknowledged or listed in
    /// `not_acknowledged` (the count of attempts, not of acknowledgements).
    pub sales_sent: usize,
    /// Sales newly recorded by the node.
    pub sales_recorded: usize,
    /// Sales the node already had (same Idempotency-Key): a re-run.
    pub sales_replayed: usize,
    /// Sales refused or not delivered, by error code.
    pub failed: BTreeMap<String, usize>,
    /// Lines or transactions skipped, by reason (of the lines read).
    pub skipped: BTreeMap<String, usize>,
    /// Per business date: the node's totals beside the item count computed from the file.
    pub days: Vec<DayReconciliation>,
    /// True when every sale was delivered and every day's item count matches the file
    /// (with `--no-days`: every sale was delivered).
    pub reconciled: bool,
    /// Whether the per-day reconciliation ran (false with `--no-days`, or when the node
    /// stopped answering).
    pub days_checked: bool,
    /// Sales not acknowledged by the node (refused, or not delivered), in file order.
    pub not_acknowledged: Vec<NotAcknowledged>,
    /// The node stopped answering during the import: the run was cut short.
    pub node_unreachable: bool,
    /// Why the per-day reconciliation could not run (e.g. the day report failed).
    pub days_error: Option<String>,
    /// With `--limit`: the business date the slice ends inside (the file continues that
    /// day), shown but not compared.
    pub partial_day: Option<String>,
    /// Sales the node already held on the export's dates before this run.
    pub sales_before_on_file_dates: u64,
    /// With `--limit`: the file line where reading stopped (the next transaction's first
    /// line); `None` when the whole file was read.
    pub stopped_at_line: Option<usize>,
}

/// A sale of the file that the node did not acknowledge.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct NotAcknowledged {
    /// The till's transaction number.
    pub transaction: u64,
    /// 1-based line of its first item in the file.
    pub line: usize,
    /// The node's error code, or `unreachable` / `timeout` / `not_sent_node_unreachable`.
    pub code: String,
}

/// One business date of the reconciliation.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DayReconciliation {
    /// YYYY-MM-DD.
    pub date: String,
    /// Sales the file holds on this date (sent).
    pub file_sales: u64,
    /// Items the file holds on this date (sent).
    pub file_items: i64,
    /// The node's totals.
    pub node: DayTotals,
    /// The `--limit` slice ends inside this day: the file's counts are of the slice only,
    /// so the day is shown but not compared.
    pub partial: bool,
}

/// Runs an import and returns its summary. Errors if the node is unreachable at the start
/// or the file cannot be read; an import cut short (node gone mid-way) returns a summary
/// with `reconciled = false`, `node_unreachable` and the sales not acknowledged.
pub async fn run_import(args: ImportArgs) -> anyhow::Result<ImportSummary> {
    let bytes =
        std::fs::read(&args.csv).with_context(|| format!("cannot read {}", args.csv.display()))?;
    let export = parse_till_export_first(&bytes, args.limit)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.csv.display()))?;
    let time_zone: Tz = args
        .time_zone
        .parse()
        .map_err(|_| anyhow::anyhow!("unknown time zone {:?}", args.time_zone))?;
    if args.concurrency == 0 || args.concurrency > 256 {
        bail!("--concurrency must be 1..=256");
    }
    let base = base_url(&args.api);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let catalog = fetch_catalog(&client, &base).await?;
    let file_tag = hex::encode(&Sha256::digest(&bytes)[..6]);
    let mut summary = ImportSummary {
        file: args.csv.display().to_string(),
        lines: export.lines,
        transactions_in_file: export.transactions_seen,
        transactions_with_items: export.transactions.len(),
        stopped_at_line: export.stopped_at.map(|(line, _)| line),
        ..Default::default()
    };
    for (reason, count) in &export.skipped {
        summary
            .skipped
            .insert(reason.describe().to_owned(), count.count);
    }
    let planned = plan_sales(
        &export,
        &catalog,
        time_zone,
        &file_tag,
        args.limit,
        &mut summary,
    )?;
    summary.sales_sent = planned.len();
    if !args.allow_second_device {
        if let Some(first) = planned.first() {
            refuse_if_imported_elsewhere(&client, &base, &file_tag, &first.date).await?;
        }
    }
    let file_dates: std::collections::BTreeSet<&str> =
        planned.iter().map(|p| p.date.as_str()).collect();
    summary.sales_before_on_file_dates = fetch_days(&client, &base)
        .await?
        .iter()
        .filter(|d| file_dates.contains(d.business_date.as_str()))
        .map(|d| d.sales)
        .sum();
    if summary.sales_before_on_file_dates > 0 {
        eprintln!(
            "import: note: the node already holds {} sales on this export's dates. A re-run \
             through the same device records nothing twice; if this export was imported \
             through ANOTHER device of the store, every sale is recorded again \
             (Idempotency-Keys are per device) — stop now (Ctrl-C) if so.",
            summary.sales_before_on_file_dates
        );
    }
    send_all(
        &client,
        &base,
        planned.clone(),
        args.concurrency,
        &mut summary,
    )
    .await;
    // With --limit, the day the slice ends in may continue after it: shown, not compared.
    let partial_date = export
        .stopped_at
        .map(|(_, next)| next.to_string())
        .filter(|next| planned.last().is_some_and(|last| last.date == *next));
    summary.partial_day = partial_date.clone();
    if summary.node_unreachable || args.no_days {
        summary.reconciled = false;
        if !summary.node_unreachable {
            summary.reconciled = summary.failed.is_empty();
        }
        return Ok(summary);
    }
    match fetch_days(&client, &base).await {
        Ok(node_days) => reconcile(&planned, node_days, partial_date.as_deref(), &mut summary),
        Err(e) => {
            summary.days_error = Some(format!("{e:#}"));
            summary.reconciled = false;
        }
    }
    Ok(summary)
}

/// One sale to send.
#[derive(Clone, Debug)]
pub(crate) struct PlannedSale {
    /// The till's transaction number.
    pub(crate) number: u64,
    /// 1-based line of its first item in the file.
    pub(crate) line: usize,
    /// Idempotency-Key.
    pub(crate) key: String,
    /// Business date, YYYY-MM-DD.
    pub(crate) date: String,
    /// Units sold.
    pub(crate) items: i64,
    /// The request.
    pub(crate) body: CreateSaleBody,
}

pub(crate) fn plan_sales(
    export: &TillExport,
    catalog: &Catalog,
    time_zone: Tz,
    file_tag: &str,
    limit: Option<usize>,
    summary: &mut ImportSummary,
) -> anyhow::Result<Vec<PlannedSale>> {
    let mut planned = Vec::new();
    for transaction in export.transactions.iter().take(limit.unwrap_or(usize::MAX)) {
        match plan_sale(transaction, catalog, time_zone, file_tag) {
            Ok(sale) => planned.push(sale),
            Err(reason) => *summary.skipped.entry(reason).or_default() += 1,
        }
    }
    Ok(planned)
}

fn plan_sale(
    transaction: &TillTransaction,
    catalog: &Catalog,
    time_zone: Tz,
    file_tag: &str,
) -> Result<PlannedSale, String> {
    let mut lines = Vec::new();
    for (name, quantity) in &transaction.items {
        let item = catalog
            .item_by_name(name)
            .ok_or_else(|| format!("item not in the catalog: {name}"))?;
        lines.push(LineBody {
            sku: item.sku.clone(),
            quantity: *quantity,
            unit_price_override_minor: None,
            discount: None,
            consumption: None,
        });
    }
    let local = transaction.date.and_time(transaction.time);
    let occurred_at = match time_zone.from_local_datetime(&local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.to_rfc3339(),
        LocalResult::None => return Err("local time does not exist (DST gap)".to_owned()),
    };
    let tender = tender_for(transaction.number, &lines, catalog)?;
    let items = transaction.items.iter().map(|(_, q)| q).sum();
    Ok(PlannedSale {
        number: transaction.number,
        line: transaction.first_line,
        key: format!("import-{file_tag}-{}", transaction.number),
        date: transaction.date.to_string(),
        items,
        body: CreateSaleBody {
            currency: catalog.currency().code().to_owned(),
            consumption: Some(Consumption::TakeAway),
            lines,
            discount: None,
            tenders: vec![tender],
            occurred_at: Some(occurred_at),
            operator_id: None,
        },
    })
}

/// Prices the lines with the node's catalog and picks the tender (see the module docs).
fn tender_for(number: u64, lines: &[LineBody], catalog: &Catalog) -> Result<TenderBody, String> {
    // Price with a generous cash tender to learn the total (cash may exceed what is due).
    let probe = CreateSaleBody {
        currency: catalog.currency().code().to_owned(),
        consumption: Some(Consumption::TakeAway),
        lines: lines.to_vec(),
        discount: None,
        tenders: vec![TenderBody {
            kind: TenderKind::Cash,
            amount_minor: posmesh_domain::TENDER_AMOUNT_MAX_MINOR,
            reference: None,
            card: None,
        }],
        occurred_at: None,
        operator_id: None,
    };
    let priced = price_sale(catalog, &probe.to_sale_request(catalog.currency()))
        .map_err(|e| format!("cannot price: {e}"))?;
    let (kind, amount_minor) = if number.is_multiple_of(3) {
        // Cash rounding applies to cash only: a card pays the unrounded total.
        (TenderKind::Card, priced.total_minor)
    } else {
        let due = priced.amount_due_minor();
        (TenderKind::Cash, round_up_to_note(due))
    };
    Ok(TenderBody {
        kind,
        amount_minor,
        reference: None,
        card: None,
    })
}

/// The smallest multiple of [`CASH_NOTE_MINOR`] that covers `due` (what a customer hands
/// over when paying with £5 notes).
pub(crate) fn round_up_to_note(due: i64) -> i64 {
    due.div_euclid(CASH_NOTE_MINOR) * CASH_NOTE_MINOR
        + if due.rem_euclid(CASH_NOTE_MINOR) == 0 {
            0
        } else {
            CASH_NOTE_MINOR
        }
}

async fn send_all(
    client: &reqwest::Client,
    base: &str,
    planned: Vec<PlannedSale>,
    concurrency: usize,
    summary: &mut ImportSummary,
) {
    let progress = progress_bar(planned.len() as u64, "import");
    let semaphore = Arc::new(tokio::sync::Semaphore::new(concurrency));
    // Once a sale could not be delivered at all (node gone), stop sending: a re-run of the
    // same import continues where this one stopped (Idempotency-Keys).
    let node_gone = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = tokio::task::JoinSet::new();
    for sale in planned {
        let Ok(permit) = semaphore.clone().acquire_owned().await else {
            break;
        };
        let client = client.clone();
        let url = format!("{base}/v1/sales");
        let node_gone = node_gone.clone();
        tasks.spawn(async move {
            let outcome = if node_gone.load(std::sync::atomic::Ordering::Relaxed) {
                Err("not_sent_node_unreachable".to_owned())
            } else {
                send_sale(&client, &url, &sale).await
            };
            if matches!(&outcome, Err(code) if code == "unreachable" || code == "timeout") {
                node_gone.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            drop(permit);
            (sale.number, sale.line, outcome)
        });
        while let Some(done) = tasks.try_join_next() {
            record(done, summary, &progress);
        }
    }
    while let Some(done) = tasks.join_next().await {
        record(done, summary, &progress);
    }
    progress.finish_and_clear();
    summary
        .not_acknowledged
        .sort_by_key(|n| (n.line, n.transaction));
    if node_gone.load(std::sync::atomic::Ordering::Relaxed) {
        summary.node_unreachable = true;
        eprintln!(
            "import: the node at {base} stopped answering; the sales not acknowledged are \
             listed below. Start the node again and re-run the same import: it continues \
             without recording anything twice."
        );
    }
}

/// What a send task answers: the transaction, its first line, and the outcome.
type Sent = (u64, usize, Result<bool, String>);

fn record(
    done: Result<Sent, tokio::task::JoinError>,
    summary: &mut ImportSummary,
    progress: &Progress,
) {
    match done {
        Ok((_, _, Ok(true))) => {
            summary.sales_recorded += 1;
            progress.inc();
        }
        Ok((_, _, Ok(false))) => {
            summary.sales_replayed += 1;
            progress.inc();
        }
        Ok((transaction, line, Err(code))) => {
            summary.not_acknowledged.push(NotAcknowledged {
                transaction,
                line,
                code: code.clone(),
            });
            *summary.failed.entry(code).or_default() += 1;
            progress.inc_not_acknowledged();
        }
        Err(e) => {
            *summary
                .failed
                .entry(format!("task failed: {e}"))
                .or_default() += 1;
            progress.inc_not_acknowledged();
        }
    }
}

/// Sends one sale; Ok(true) = recorded, Ok(false) = replayed, Err(code) = refused/undelivered.
pub(crate) async fn send_sale(
    client: &reqwest::Client,
    url: &str,
    sale: &PlannedSale,
) -> Result<bool, String> {
    send_sale_answer(client, url, &sale.key, &sale.body)
        .await
        .map(|(created, _)| created)
}

/// [`send_sale`] of `body` under Idempotency-Key `key`, answering whether it was created
/// (201; false: a replay, 200) and the node's answer (the recorded sale). Errors: the
/// `error.code` of a 4xx answer, else `timeout`, `unreachable` or `http_<status>` after
/// [`SALE_ATTEMPTS_MAX`] attempts.
pub(crate) async fn send_sale_answer(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    body: &CreateSaleBody,
) -> Result<(bool, serde_json::Value), String> {
    let mut delay = Duration::from_millis(RETRY_DELAY_INITIAL_MS);
    let mut last_error = String::new();
    for _ in 0..SALE_ATTEMPTS_MAX {
        let sent = client
            .post(url)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await;
        match sent {
            Ok(response)
                if matches!(
                    response.status(),
                    reqwest::StatusCode::CREATED | reqwest::StatusCode::OK
                ) =>
            {
                let created = response.status() == reqwest::StatusCode::CREATED;
                let answer: serde_json::Value = response.json().await.unwrap_or_default();
                return Ok((created, answer));
            }
            Ok(response) if response.status().is_client_error() => {
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                let code = body["error"]["code"].as_str().unwrap_or("client_error");
                return Err(code.to_owned());
            }
            Ok(response) => last_error = format!("http_{}", response.status().as_u16()),
            Err(e) => {
                last_error = if e.is_timeout() {
                    "timeout".into()
                } else {
                    "unreachable".into()
                }
            }
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
    Err(last_error)
}

async fn fetch_catalog(client: &reqwest::Client, base: &str) -> anyhow::Result<Catalog> {
    let url = format!("{base}/v1/catalog");
    let response =
        client.get(&url).send().await.with_context(|| {
            format!("cannot reach the node at {url}; is `posmesh device` running?")
        })?;
    if !response.status().is_success() {
        bail!("{url} answered {}", response.status());
    }
    let file: CatalogFile = response
        .json()
        .await
        .context("the node's catalog does not parse")?;
    Catalog::from_file(file).map_err(|e| anyhow::anyhow!("the node's catalog is invalid: {e}"))
}

/// Refuses the import when a device of the store other than the node's holds a sale of
/// this file (its Idempotency-Key `import-<file_tag>-…`) on `date`, the slice's first
/// business date: importing it here would record every sale again. Sees what replication
/// has brought to the node (the devices' sales of that date, first page).
///
/// # Errors
/// The refusal, naming the device to re-run the import through; the node's answers.
async fn refuse_if_imported_elsewhere(
    client: &reqwest::Client,
    base: &str,
    file_tag: &str,
    date: &str,
) -> anyhow::Result<()> {
    let here: serde_json::Value = get_ok(client, &format!("{base}/health")).await?;
    let here = here["device_id"].as_str().unwrap_or_default().to_owned();
    let devices: serde_json::Value = get_ok(client, &format!("{base}/v1/devices")).await?;
    let others: Vec<String> = devices["devices"]
        .as_object()
        .map(|held| held.keys().filter(|d| **d != here).cloned().collect())
        .unwrap_or_default();
    let prefix = format!("import-{file_tag}-");
    for device in others {
        let page: serde_json::Value = get_ok(
            client,
            &format!("{base}/v1/sales?device={device}&business_date={date}&limit=1000"),
        )
        .await?;
        let imported = page["entries"].as_array().is_some_and(|entries| {
            entries.iter().any(|e| {
                e["idempotency_key"]
                    .as_str()
                    .is_some_and(|k| k.starts_with(&prefix))
            })
        });
        if imported {
            bail!(
                "this export was already imported through device {device} (its sales of {date} carry this file's keys); \
                 importing it through {here} would record every sale again, because Idempotency-Keys are per device. \
                 Re-run the import through {device}'s API to resume it there (nothing is recorded twice), \
                 or pass --allow-second-device to record the sales again on purpose"
            );
        }
    }
    Ok(())
}

/// GETs `url` and parses its JSON, naming the URL on any failure.
async fn get_ok<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
) -> anyhow::Result<T> {
    let response = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    if !response.status().is_success() {
        bail!("{url} answered {}", response.status());
    }
    response
        .json()
        .await
        .with_context(|| format!("{url}: unexpected answer"))
}

pub(crate) async fn fetch_days(
    client: &reqwest::Client,
    base: &str,
) -> anyhow::Result<Vec<DayTotals>> {
    let url = format!("{base}/v1/reports/days");
    let response = client.get(&url).send().await?;
    if !response.status().is_success() {
        bail!("{url} answered {}", response.status());
    }
    Ok(response.json().await?)
}

fn reconcile(
    planned: &[PlannedSale],
    node_days: Vec<DayTotals>,
    partial_date: Option<&str>,
    summary: &mut ImportSummary,
) {
    let mut file_days: BTreeMap<String, (u64, i64)> = BTreeMap::new();
    for sale in planned {
        let day = file_days.entry(sale.date.clone()).or_default();
        day.0 += 1;
        day.1 += sale.items;
    }
    let node_by_date: BTreeMap<String, DayTotals> = node_days
        .into_iter()
        .map(|d| (d.business_date.clone(), d))
        .collect();
    let mut all_match = summary.failed.is_empty();
    for (date, (sales, items)) in file_days {
        let node = node_by_date
            .get(&date)
            .cloned()
            .unwrap_or_else(|| DayTotals {
                business_date: date.clone(),
                ..Default::default()
            });
        let partial = Some(date.as_str()) == partial_date;
        all_match &= partial || node.items == items;
        summary.days.push(DayReconciliation {
            date,
            file_sales: sales,
            file_items: items,
            node,
            partial,
        });
    }
    summary.days_checked = true;
    summary.reconciled = all_match;
}

/// Prints a summary for a person.
pub fn print_summary(summary: &ImportSummary, per_day: bool) {
    print!("{}", summary_text(summary, per_day));
}

/// How many sales not acknowledged are listed in the text summary (all are in `--json`).
const NOT_ACKNOWLEDGED_LISTED_MAX: usize = 50;

/// The summary for a person, as printed by [`print_summary`].
pub fn summary_text(summary: &ImportSummary, per_day: bool) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(format!("import of {}", summary.file));
    line(format!(
        "  {} lines read, {} transactions, {} with a real item{}",
        summary.lines,
        summary.transactions_in_file,
        summary.transactions_with_items,
        summary
            .stopped_at_line
            .map_or_else(String::new, |at| format!(
                " (--limit: reading stopped at line {at})"
            ))
    ));
    line(format!(
        "  sent {}: {} recorded, {} already present (re-run), {} not acknowledged",
        summary.sales_sent,
        summary.sales_recorded,
        summary.sales_replayed,
        summary.failed.values().sum::<usize>()
    ));
    for (code, count) in &summary.failed {
        line(format!("    failed {count:>6}  {code}"));
    }
    if !summary.not_acknowledged.is_empty() {
        line(format!(
            "  not acknowledged by the node ({}; transaction @ file line: code){}:",
            summary.not_acknowledged.len(),
            if summary.not_acknowledged.len() > NOT_ACKNOWLEDGED_LISTED_MAX {
                format!(", the first {NOT_ACKNOWLEDGED_LISTED_MAX} (all with --json)")
            } else {
                String::new()
            }
        ));
        for n in summary
            .not_acknowledged
            .iter()
            .take(NOT_ACKNOWLEDGED_LISTED_MAX)
        {
            line(format!(
                "    {} @ line {}: {}",
                n.transaction, n.line, n.code
            ));
        }
    }
    line("  skipped:".to_owned());
    for (reason, count) in &summary.skipped {
        line(format!("    {count:>6}  {reason}"));
    }
    if per_day && summary.days_checked {
        line(String::new());
        line(format!(
            "  {:<10} {:>6} {:>7} {:>10} {:>11} {:>9} {:>11} {:>11}",
            "date", "sales", "items", "file items", "takings", "VAT", "cash", "card"
        ));
        for day in &summary.days {
            let node = &day.node;
            line(format!(
                "  {:<10} {:>6} {:>7} {:>10} {:>11} {:>9} {:>11} {:>11}{}",
                day.date,
                node.sales,
                node.items,
                day.file_items,
                pounds(node.takings_minor),
                pounds(node.tax_minor),
                pounds(node.tenders_minor.get("cash").copied().unwrap_or(0)),
                pounds(node.tenders_minor.get("card").copied().unwrap_or(0)),
                if day.partial {
                    "  PARTIAL (--limit ends inside this day: not compared)"
                } else if node.items == day.file_items {
                    ""
                } else {
                    "  MISMATCH"
                }
            ));
        }
    }
    if summary.days_checked {
        let takings: i64 = summary.days.iter().map(|d| d.node.takings_minor).sum();
        let items: i64 = summary.days.iter().map(|d| d.node.items).sum();
        line(String::new());
        line(format!(
            "  {} business days, {} items, takings {} (GBP, tax-inclusive)",
            summary.days.len(),
            items,
            pounds(takings)
        ));
    }
    if let Some(date) = summary
        .partial_day
        .as_ref()
        .filter(|_| summary.days_checked)
    {
        line(format!(
            "  note: --limit ends inside {date}: the file continues that day, so its counts are not compared"
        ));
    }
    let not_acked = summary.not_acknowledged.len();
    if summary.node_unreachable {
        line(format!(
            "  NOT reconciled: the node stopped answering; {not_acked} sales not acknowledged (listed above). \
             Start the node and re-run the same import: it resumes without recording anything twice."
        ));
    } else if let Some(error) = &summary.days_error {
        line(format!(
            "  NOT reconciled: the day report could not be read ({error}); {not_acked} sales not acknowledged"
        ));
    } else if !summary.days_checked {
        if summary.reconciled {
            line("  every sale delivered; per-day reconciliation skipped (--no-days)".to_owned());
        } else {
            line(format!(
                "  {not_acked} sales not acknowledged (listed above); per-day reconciliation skipped (--no-days)"
            ));
        }
    } else if summary.reconciled {
        let complete = if summary.partial_day.is_some() {
            " on every complete day"
        } else {
            ""
        };
        line(format!(
            "  reconciled: every sale delivered; per-day item counts equal the file's{complete}"
        ));
    } else {
        let more = summary
            .days
            .iter()
            .filter(|d| !d.partial && d.node.items > d.file_items)
            .count();
        let mut text = if not_acked > 0 {
            format!("  NOT reconciled: {not_acked} sales not acknowledged (listed above)")
        } else {
            "  NOT reconciled: every sale delivered, but per-day item counts differ".to_owned()
        };
        if per_day {
            text.push_str(" (MISMATCH days above)");
        }
        line(text);
        if more > 0 && summary.sales_before_on_file_dates > 0 {
            line(format!(
                "  the node has MORE items than the file on {more} days and held sales on these dates before: \
                 was this export already imported through another device? (Idempotency-Keys are per device)"
            ));
        }
    }
    out
}

/// `minor` as pounds and pence, e.g. `-12.05`.
pub fn pounds(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:02}",
        minor.unsigned_abs() / 100,
        minor.unsigned_abs() % 100
    )
}

/// A progress bar on a terminal; on a log (CI), a line every 10 %. It counts sales the
/// node acknowledged; those not acknowledged (refused, or not delivered) are counted
/// apart, so a run cut short never shows as complete.
pub(crate) struct Progress {
    bar: ProgressBar,
    total: u64,
    label: &'static str,
    logged_decile: std::sync::atomic::AtomicU64,
    not_acknowledged: std::sync::atomic::AtomicU64,
}

impl Progress {
    /// One more sale acknowledged by the node.
    pub(crate) fn inc(&self) {
        self.bar.inc(1);
        if self.bar.is_hidden() && self.total > 0 {
            let decile = self.bar.position() * 10 / self.total;
            let before = self
                .logged_decile
                .fetch_max(decile, std::sync::atomic::Ordering::Relaxed);
            if decile > before {
                eprintln!("{}", self.line());
            }
        }
    }

    /// One more sale the node did not acknowledge.
    pub(crate) fn inc_not_acknowledged(&self) {
        let n = self
            .not_acknowledged
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        self.bar.set_message(format!("({n} not acknowledged)"));
    }

    /// Sales acknowledged so far.
    pub(crate) fn acknowledged(&self) -> u64 {
        self.bar.position()
    }

    /// The progress as logged, see [`progress_line`].
    fn line(&self) -> String {
        progress_line(
            self.label,
            self.acknowledged(),
            self.not_acknowledged
                .load(std::sync::atomic::Ordering::Relaxed),
            self.total,
        )
    }

    /// Prints a line above the bar (or in the log).
    pub(crate) fn suspend(&self, print: impl FnOnce()) {
        self.bar.suspend(print);
    }

    /// Removes the bar; on a log, a last line if the run did not end at 100 %.
    pub(crate) fn finish_and_clear(&self) {
        // Before finishing: a finished bar's position is its length.
        let last = (self.bar.is_hidden() && self.acknowledged() < self.total).then(|| self.line());
        self.bar.finish_and_clear();
        if let Some(line) = last {
            eprintln!("{line}");
        }
    }
}

/// `import: 2700/3000 sales acknowledged` — with `, 300 not acknowledged` when some were
/// refused or not delivered.
pub(crate) fn progress_line(
    label: &str,
    acknowledged: u64,
    not_acknowledged: u64,
    total: u64,
) -> String {
    let mut line = format!("{label}: {acknowledged}/{total} sales acknowledged");
    if not_acknowledged > 0 {
        line.push_str(&format!(", {not_acknowledged} not acknowledged"));
    }
    line
}

/// A bar for `total` sales, labelled `label` ("import", "demo").
pub(crate) fn progress_bar(total: u64, label: &'static str) -> Progress {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) = ProgressStyle::with_template(&format!(
        "{{spinner}} {label} [{{bar:40}}] {{pos}}/{{len}} sales acknowledged {{msg}}  {{per_sec}}  eta {{eta}}"
    )) {
        bar.set_style(style.progress_chars("=> "));
    }
    Progress {
        bar,
        total,
        label,
        logged_decile: std::sync::atomic::AtomicU64::new(0),
        not_acknowledged: std::sync::atomic::AtomicU64::new(0),
    }
}

/// `--limit N`: a count of transactions, at least 1 (`--limit 0` would import nothing
/// and print a summary of an empty slice without its tables).
fn parse_limit(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err(
            "must be at least 1 (0 would import nothing); omit --limit to import the whole file"
                .into(),
        ),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{e}: a count of transactions, at least 1")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_limit_of_zero_is_refused() {
        assert_eq!(super::parse_limit("3"), Ok(3));
        assert!(super::parse_limit("0")
            .expect_err("refused")
            .contains("at least 1"));
        assert!(super::parse_limit("-1").is_err());
    }

    use super::*;

    fn planned(number: u64, date: &str, items: i64) -> PlannedSale {
        PlannedSale {
            number,
            line: usize::try_from(number).expect("small") + 1,
            key: format!("import-t-{number}"),
            date: date.to_owned(),
            items,
            body: CreateSaleBody {
                currency: "GBP".to_owned(),
                consumption: None,
                lines: Vec::new(),
                discount: None,
                tenders: Vec::new(),
                occurred_at: None,
                operator_id: None,
            },
        }
    }

    fn node_day(date: &str, sales: u64, items: i64) -> DayTotals {
        DayTotals {
            business_date: date.to_owned(),
            sales,
            items,
            ..Default::default()
        }
    }

    #[test]
    fn the_day_a_limit_ends_inside_is_shown_and_said_not_compared() {
        let sales = [planned(1, "2016-10-30", 2), planned(2, "2016-10-31", 1)];
        let mut summary = ImportSummary::default();
        // A previous full run left more of 2016-10-31 on the node than the slice holds.
        reconcile(
            &sales,
            vec![node_day("2016-10-30", 1, 2), node_day("2016-10-31", 9, 20)],
            Some("2016-10-31"),
            &mut summary,
        );
        assert!(summary.reconciled, "{summary:?}");
        assert_eq!(summary.days.len(), 2, "the partial day is not left out");
        assert!(summary.days[1].partial && !summary.days[0].partial);
        summary.partial_day = Some("2016-10-31".to_owned());
        let text = summary_text(&summary, true);
        assert!(text.contains("2016-10-31"), "{text}");
        assert!(text.contains("PARTIAL"), "{text}");
        assert!(text.contains("--limit ends inside 2016-10-31"), "{text}");
        assert!(
            text.contains("equal the file's on every complete day"),
            "{text}"
        );
        // A full day that differs still fails.
        let mut summary = ImportSummary::default();
        reconcile(
            &sales,
            vec![node_day("2016-10-30", 1, 3), node_day("2016-10-31", 1, 1)],
            Some("2016-10-31"),
            &mut summary,
        );
        assert!(!summary.reconciled);
    }

    #[test]
    fn no_days_says_the_reconciliation_was_skipped() {
        let summary = ImportSummary {
            sales_sent: 3,
            sales_recorded: 3,
            reconciled: true,
            partial_day: Some("2016-10-31".to_owned()),
            ..Default::default()
        };
        let text = summary_text(&summary, false);
        assert!(
            text.contains("reconciliation skipped (--no-days)"),
            "{text}"
        );
        assert!(!text.contains("NOT reconciled"), "{text}");
        assert!(!text.contains("business days"), "{text}");
        assert!(
            !text.contains("not compared"),
            "no day is compared at all: {text}"
        );
    }

    #[test]
    fn progress_lines_count_acknowledged_sales() {
        assert_eq!(
            progress_line("import", 9465, 0, 9465),
            "import: 9465/9465 sales acknowledged"
        );
        assert_eq!(
            progress_line("import", 3021, 6444, 9465),
            "import: 3021/9465 sales acknowledged, 6444 not acknowledged"
        );
    }

    #[test]
    fn a_limit_says_where_reading_stopped() {
        let summary = ImportSummary {
            lines: 4,
            transactions_in_file: 1,
            transactions_with_items: 1,
            stopped_at_line: Some(7),
            ..Default::default()
        };
        let text = summary_text(&summary, false);
        assert!(
            text.contains("4 lines read, 1 transactions, 1 with a real item (--limit: reading stopped at line 7)"),
            "{text}"
        );
    }

    #[test]
    fn a_node_gone_mid_import_lists_the_sales_not_acknowledged() {
        let mut summary = ImportSummary {
            sales_sent: 3,
            node_unreachable: true,
            ..Default::default()
        };
        let progress = progress_bar(3, "test");
        record(Ok((5, 10, Ok(true))), &mut summary, &progress);
        record(
            Ok((7, 12, Err("unreachable".to_owned()))),
            &mut summary,
            &progress,
        );
        record(
            Ok((9, 15, Err("not_sent_node_unreachable".to_owned()))),
            &mut summary,
            &progress,
        );
        assert_eq!(
            (progress.acknowledged(), progress.line()),
            (
                1,
                "test: 1/3 sales acknowledged, 2 not acknowledged".to_owned()
            ),
            "only the acknowledged sale counts as progress"
        );
        let text = summary_text(&summary, true);
        assert!(
            text.contains("sent 3: 1 recorded, 0 already present (re-run), 2 not acknowledged"),
            "{text}"
        );
        assert!(text.contains("7 @ line 12: unreachable"), "{text}");
        assert!(
            text.contains("9 @ line 15: not_sent_node_unreachable"),
            "{text}"
        );
        assert!(
            text.trim_end()
                .lines()
                .last()
                .is_some_and(|l| l.contains("NOT reconciled: the node stopped answering")),
            "{text}"
        );
    }

    #[test]
    fn more_items_than_the_file_after_earlier_sales_hints_at_a_second_device() {
        let sales = [planned(1, "2016-10-30", 2)];
        let mut summary = ImportSummary {
            sales_before_on_file_dates: 1,
            ..Default::default()
        };
        reconcile(
            &sales,
            vec![node_day("2016-10-30", 2, 4)],
            None,
            &mut summary,
        );
        assert!(!summary.reconciled);
        let text = summary_text(&summary, true);
        assert!(text.contains("MISMATCH"), "{text}");
        assert!(text.contains("another device"), "{text}");
    }
}
