//! Parsing a till export in the shape of the bakery file `BreadBasket_DMS.csv`:
//! header `Date,Time,Transaction,Item`, one line per item sold; a repeated item within a
//! transaction means quantity > 1; `NONE` is a placeholder the till wrote and carries no
//! product. Parsing is pure: text in, transactions and skip reasons out.

use chrono::{NaiveDate, NaiveTime};
use std::collections::BTreeMap;

/// The placeholder item name the till writes for "no product".
pub const PLACEHOLDER_ITEM: &str = "NONE";

/// One transaction of the export, items in order of first appearance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TillTransaction {
    /// The till's transaction (receipt) number.
    pub number: u64,
    /// Local date and time of its first line.
    pub date: NaiveDate,
    /// Local time of its first line.
    pub time: NaiveTime,
    /// (item name as trimmed, quantity).
    pub items: Vec<(String, i64)>,
    /// 1-based line number of its first line in the file.
    pub first_line: usize,
}

/// Why a line or transaction was not imported.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SkipReason {
    /// The item is the till's `NONE` placeholder.
    PlaceholderItem,
    /// Every line of the transaction was a placeholder: no sale to record.
    NoRealItem,
    /// The line does not have the four columns.
    WrongColumnCount,
    /// Date is not YYYY-MM-DD.
    BadDate,
    /// Time is not HH:MM:SS.
    BadTime,
    /// Transaction is not a positive integer.
    BadTransactionNumber,
    /// Item name is empty.
    EmptyItem,
    /// The CSV reader could not read the line (e.g. not UTF-8).
    Unreadable,
}

impl SkipReason {
    /// A short description for reports.
    pub fn describe(&self) -> &'static str {
        match self {
            SkipReason::PlaceholderItem => "item NONE (till placeholder, no product)",
            SkipReason::NoRealItem => "transaction with only NONE lines (no sale)",
            SkipReason::WrongColumnCount => "not 4 columns",
            SkipReason::BadDate => "date not YYYY-MM-DD",
            SkipReason::BadTime => "time not HH:MM:SS",
            SkipReason::BadTransactionNumber => "transaction not a positive integer",
            SkipReason::EmptyItem => "empty item name",
            SkipReason::Unreadable => "unreadable line",
        }
    }
}

/// The parsed export.
#[derive(Clone, Debug, Default)]
pub struct TillExport {
    /// Transactions with at least one real item, in order of first appearance.
    pub transactions: Vec<TillTransaction>,
    /// Data lines read (header excluded).
    pub lines: usize,
    /// Skipped lines / transactions by reason, with the first few line numbers of each.
    pub skipped: BTreeMap<SkipReason, SkipCount>,
    /// Distinct transaction numbers seen (with or without a real item).
    pub transactions_seen: usize,
    /// Reading stopped at a limit ([`parse_till_export_first`]): the 1-based line not
    /// read (the first line of the next transaction) and its date. `None`: read to the end.
    pub stopped_at: Option<(usize, NaiveDate)>,
}

/// How often a reason occurred, and where first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SkipCount {
    /// Occurrences.
    pub count: usize,
    /// First (up to 5) 1-based line numbers.
    pub first_lines: Vec<usize>,
}

impl TillExport {
    /// A line read and skipped.
    fn skip_line(&mut self, reason: SkipReason, line: usize) {
        self.lines += 1;
        self.skip(reason, line);
    }

    fn skip(&mut self, reason: SkipReason, line: usize) {
        let entry = self.skipped.entry(reason).or_default();
        entry.count += 1;
        if entry.first_lines.len() < 5 {
            entry.first_lines.push(line);
        }
    }
}

/// Parses an export. Never fails on bad lines: they are counted under
/// [`TillExport::skipped`]. Fails only if the header is not `Date,Time,Transaction,Item`.
pub fn parse_till_export(bytes: &[u8]) -> Result<TillExport, String> {
    parse_till_export_first(bytes, None)
}

/// [`parse_till_export`] of the first `limit` transactions with a real item (`None`: all):
/// reading stops at the first line of the transaction after them, so the counts (lines,
/// transactions seen, skipped lines) are of the lines read, not of the whole file. Lines
/// of an earlier transaction that appear after that point are not read (till exports
/// keep a transaction's lines together).
///
/// # Errors
/// As [`parse_till_export`].
pub fn parse_till_export_first(bytes: &[u8], limit: Option<usize>) -> Result<TillExport, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(bytes);
    let header = reader
        .headers()
        .map_err(|e| format!("cannot read header: {e}"))?;
    let expected = ["Date", "Time", "Transaction", "Item"];
    if header.iter().map(str::trim).ne(expected.iter().copied()) {
        return Err(format!(
            "header is {:?}, expected Date,Time,Transaction,Item",
            header.iter().collect::<Vec<_>>()
        ));
    }
    let mut export = TillExport::default();
    let mut index: BTreeMap<u64, usize> = BTreeMap::new();
    let mut seen: BTreeMap<u64, ()> = BTreeMap::new();
    // Bad lines met once the slice is full: read only if a line of the slice follows
    // (they were inside its last transaction), else they are past the slice.
    let mut pending: Vec<(SkipReason, usize)> = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let parsed = match record {
            Ok(record) => parse_line(&record),
            Err(_) => Err(SkipReason::Unreadable),
        };
        let full = limit.is_some_and(|n| export.transactions.len() >= n);
        match parsed {
            Err(reason) if full => pending.push((reason, line)),
            Err(reason) => export.skip_line(reason, line),
            Ok(parsed) => {
                if full && !seen.contains_key(&parsed.number) {
                    export.stopped_at = Some((line, parsed.date));
                    break;
                }
                for (reason, line) in pending.drain(..) {
                    export.skip_line(reason, line);
                }
                export.lines += 1;
                seen.insert(parsed.number, ());
                if parsed.item == PLACEHOLDER_ITEM {
                    export.skip(SkipReason::PlaceholderItem, line);
                    continue;
                }
                add_item(&mut export, &mut index, parsed, line);
            }
        }
    }
    if export.stopped_at.is_none() {
        for (reason, line) in pending {
            export.skip_line(reason, line);
        }
    }
    export.transactions_seen = seen.len();
    for _ in 0..export
        .transactions_seen
        .saturating_sub(export.transactions.len())
    {
        export.skip(SkipReason::NoRealItem, 0);
    }
    if let Some(count) = export.skipped.get_mut(&SkipReason::NoRealItem) {
        count.first_lines.clear();
    }
    Ok(export)
}

struct ParsedLine {
    date: NaiveDate,
    time: NaiveTime,
    number: u64,
    item: String,
}

fn parse_line(record: &csv::StringRecord) -> Result<ParsedLine, SkipReason> {
    if record.len() != 4 {
        return Err(SkipReason::WrongColumnCount);
    }
    let date =
        NaiveDate::parse_from_str(record[0].trim(), "%Y-%m-%d").map_err(|_| SkipReason::BadDate)?;
    let time =
        NaiveTime::parse_from_str(record[1].trim(), "%H:%M:%S").map_err(|_| SkipReason::BadTime)?;
    let number = record[2]
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or(SkipReason::BadTransactionNumber)?;
    // Tills write trailing spaces into some names: match on the trimmed name.
    let item = record[3].trim().to_owned();
    if item.is_empty() {
        return Err(SkipReason::EmptyItem);
    }
    Ok(ParsedLine {
        date,
        time,
        number,
        item,
    })
}

fn add_item(
    export: &mut TillExport,
    index: &mut BTreeMap<u64, usize>,
    parsed: ParsedLine,
    line: usize,
) {
    let position = *index.entry(parsed.number).or_insert_with(|| {
        export.transactions.push(TillTransaction {
            number: parsed.number,
            date: parsed.date,
            time: parsed.time,
            items: Vec::new(),
            first_line: line,
        });
        export.transactions.len() - 1
    });
    let items = &mut export.transactions[position].items;
    match items.iter_mut().find(|(name, _)| *name == parsed.item) {
        Some((_, quantity)) => *quantity += 1,
        None => items.push((parsed.item, 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Date,Time,Transaction,Item\n\
        2016-10-30,09:58:11,1,Bread\n\
        2016-10-30,10:05:34,2,Scandinavian\n\
        2016-10-30,10:05:34,2,Scandinavian\n\
        2016-10-30,10:07:57,3,NONE\n\
        2016-10-30,10:08:00,4,Coffee granules \n\
        2016-10-30,10:08:00,4,NONE\n\
        2016-13-30,10:08:00,5,Bread\n\
        2016-10-30,10:08:00,6\n";

    #[test]
    fn repeated_items_are_quantities_and_placeholders_are_skipped() {
        let export = parse_till_export(SAMPLE.as_bytes()).expect("valid header");
        assert_eq!(export.lines, 8);
        let numbers: Vec<u64> = export.transactions.iter().map(|t| t.number).collect();
        assert_eq!(numbers, [1, 2, 4]);
        assert_eq!(
            export.transactions[1].items,
            [("Scandinavian".to_owned(), 2)]
        );
        assert_eq!(
            export.transactions[2].items,
            [("Coffee granules".to_owned(), 1)]
        );
        assert_eq!(export.skipped[&SkipReason::PlaceholderItem].count, 2);
        assert_eq!(
            export.skipped[&SkipReason::PlaceholderItem].first_lines,
            [5, 7]
        );
        assert_eq!(export.skipped[&SkipReason::NoRealItem].count, 1);
        assert_eq!(export.skipped[&SkipReason::BadDate].first_lines, [8]);
        assert_eq!(
            export.skipped[&SkipReason::WrongColumnCount].first_lines,
            [9]
        );
    }

    const SLICED: &str = "Date,Time,Transaction,Item\n\
        2016-10-30,09:58:11,1,Bread\n\
        2016-10-30,09:58:11,1,NONE\n\
        2016-10-30,09:58:11,1\n\
        2016-10-30,09:58:11,1,Tea\n\
        2016-10-30,10:00:00,2\n\
        2016-10-30,10:00:00,2,NONE\n\
        2016-10-31,08:00:00,3,Bread\n";

    #[test]
    fn a_limit_counts_only_the_lines_read() {
        let first = parse_till_export_first(SLICED.as_bytes(), Some(1)).expect("valid");
        assert_eq!(first.transactions.len(), 1);
        assert_eq!(
            first.transactions[0].items,
            [("Bread".to_owned(), 1), ("Tea".to_owned(), 1)],
            "the bad line inside transaction 1 does not end it"
        );
        // Lines 2-5 read; reading stops at line 7, transaction 2's first good line; the
        // bad line 6 before it is past the slice.
        assert_eq!(first.lines, 4);
        assert_eq!(first.transactions_seen, 1);
        assert_eq!(
            first.stopped_at,
            Some((7, NaiveDate::from_ymd_opt(2016, 10, 30).expect("date")))
        );
        assert_eq!(first.skipped[&SkipReason::PlaceholderItem].count, 1);
        assert_eq!(
            first.skipped[&SkipReason::WrongColumnCount].first_lines,
            [4]
        );
        assert!(!first.skipped.contains_key(&SkipReason::NoRealItem));

        let all = parse_till_export(SLICED.as_bytes()).expect("valid");
        assert_eq!(
            (all.lines, all.stopped_at, all.transactions_seen),
            (7, None, 3)
        );
        assert_eq!(all.skipped[&SkipReason::PlaceholderItem].count, 2);
        assert_eq!(all.skipped[&SkipReason::WrongColumnCount].count, 2);
        assert_eq!(all.skipped[&SkipReason::NoRealItem].count, 1);
        // A limit reaching the last transaction reads everything, like no limit.
        let two = parse_till_export_first(SLICED.as_bytes(), Some(2)).expect("valid");
        assert_eq!((two.lines, two.stopped_at), (7, None));
        assert_eq!(two.skipped, all.skipped);
    }

    #[test]
    fn a_wrong_header_is_refused() {
        assert!(parse_till_export(b"Day,Time,Transaction,Item\n").is_err());
    }
}
