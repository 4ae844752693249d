//! The journal writer against a real RocksDB in a temporary directory.

use super::writer::{AppendCommand, AppendError, JournalWriter, Operation};
use super::JournalStore;
use crate::catalog_file::load_catalog;
use crate::ledger::sale_ref::SaleRef;
use posmesh_domain::{
    price_sale, Consumption, LineRequest, PricedSale, RefundLineRequest, RefundRequest,
    SaleRequest, TenderKind, TenderRequest,
};
use std::sync::Arc;

fn priced_sale(quantity: i64) -> PricedSale {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../catalog/bakery.toml");
    let catalog = load_catalog(&path).expect("bakery catalog");
    let request = SaleRequest {
        currency: catalog.currency(),
        consumption: Consumption::TakeAway,
        lines: vec![LineRequest {
            sku: "BREAD".into(),
            quantity,
            unit_price_override_minor: None,
            discount: None,
            consumption: None,
        }],
        discount: None,
        tenders: vec![TenderRequest {
            kind: TenderKind::Cash,
            amount_minor: 100_000,
            reference: None,
        }],
    };
    price_sale(&catalog, &request).expect("valid sale")
}

fn command(key: &str, hash: u8, operation: Operation) -> AppendCommand {
    AppendCommand {
        idempotency_key: key.into(),
        request_hash: [hash; 32],
        occurred_at_ms: 1_480_000_000_000,
        business_date: "2016-11-24".into(),
        catalog_version: 1,
        operator_id: String::new(),
        operation,
    }
}

fn sale(key: &str, quantity: i64) -> AppendCommand {
    command(key, 1, Operation::Sale(Box::new(priced_sale(quantity))))
}

fn refund(key: &str, seq: u64, quantity: i64) -> AppendCommand {
    command(
        key,
        2,
        Operation::Refund {
            original: SaleRef {
                device_id: "till-1".into(),
                seq,
            },
            request: RefundRequest {
                lines: vec![RefundLineRequest {
                    line_index: 0,
                    quantity,
                }],
                tender: TenderKind::Cash,
            },
            reason: String::new(),
        },
    )
}

fn void(key: &str, seq: u64) -> AppendCommand {
    command(
        key,
        3,
        Operation::Void {
            original: SaleRef {
                device_id: "till-1".into(),
                seq,
            },
            reason: String::new(),
        },
    )
}

fn open(
    dir: &std::path::Path,
) -> (
    Arc<JournalStore>,
    JournalWriter,
    std::thread::JoinHandle<()>,
) {
    let store = Arc::new(JournalStore::open(dir).expect("open"));
    let identity = store
        .ensure_identity("store-1", "till-1", 42, [7; 32], 0)
        .expect("identity");
    let (writer, thread) = JournalWriter::spawn(store.clone(), identity).expect("writer");
    (store, writer, thread)
}

#[tokio::test]
async fn numbers_are_gap_free_across_refusals_and_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (store, writer, thread) = open(dir.path());
        let first = writer.append(sale("a", 2)).await.expect("sale");
        assert_eq!((first.entry.seq, first.entry.receipt_no), (1, 1));
        // Refused: more than sold. Consumes no number.
        let refused = writer.append(refund("r-too-much", 1, 3)).await;
        assert!(
            matches!(refused, Err(AppendError::Refund(_))),
            "{refused:?}"
        );
        let partial = writer.append(refund("r-1", 1, 1)).await.expect("refund");
        assert_eq!((partial.entry.seq, partial.entry.receipt_no), (2, 2));
        assert_eq!(partial.entry.prev_hash, first.chain_hash.to_vec());
        let status = store
            .sale_status("till-1", 1)
            .expect("read")
            .expect("status");
        assert_eq!(status.refunded_quantity, [1]);
        assert_eq!(status.refunds, ["till-1/2"]);
        drop(writer);
        thread.join().expect("writer thread");
    }
    let (store, writer, _thread) = open(dir.path());
    assert_eq!(
        store
            .identity()
            .expect("read")
            .expect("identity")
            .device_incarnation,
        42
    );
    let after_restart = writer.append(sale("b", 1)).await.expect("sale");
    assert_eq!(
        (after_restart.entry.seq, after_restart.entry.receipt_no),
        (3, 3)
    );
    let head = store.head().expect("head");
    assert_eq!(head.head_hash, after_restart.chain_hash.to_vec());
}

#[tokio::test]
async fn a_used_key_replays_the_original_or_conflicts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, writer, _thread) = open(dir.path());
    let original = writer.append(sale("k", 2)).await.expect("sale");
    let again = writer.append(sale("k", 2)).await.expect("replay");
    assert!(again.replayed);
    assert_eq!(again.entry, original.entry);
    assert_eq!(again.chain_hash, original.chain_hash);
    let mut other = sale("k", 3);
    other.request_hash = [9; 32];
    assert!(matches!(
        writer.append(other).await,
        Err(AppendError::IdempotencyConflict { .. })
    ));
    assert_eq!(store.head().expect("head").last_seq, 1);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_record_one_sale() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, writer, _thread) = open(dir.path());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let writer = writer.clone();
        tasks.spawn(async move { writer.append(sale("same", 1)).await });
    }
    let mut fresh = 0;
    while let Some(done) = tasks.join_next().await {
        let committed = done.expect("task").expect("append");
        assert_eq!(committed.entry.seq, 1);
        fresh += usize::from(!committed.replayed);
    }
    assert_eq!(fresh, 1);
    assert_eq!(store.head().expect("head").last_seq, 1);
}

#[tokio::test]
async fn void_rules_hold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_store, writer, _thread) = open(dir.path());
    writer.append(sale("s1", 2)).await.expect("sale 1");
    writer.append(sale("s2", 2)).await.expect("sale 2");
    writer
        .append(refund("r1", 1, 1))
        .await
        .expect("refund of 1");
    assert!(matches!(
        writer.append(void("v1", 1)).await,
        Err(AppendError::SaleHasRefunds(_))
    ));
    writer.append(void("v2", 2)).await.expect("void of 2");
    assert!(matches!(
        writer.append(void("v2b", 2)).await,
        Err(AppendError::SaleVoided(_))
    ));
    assert!(matches!(
        writer.append(refund("r2", 2, 1)).await,
        Err(AppendError::SaleVoided(_))
    ));
    assert!(matches!(
        writer.append(void("v3", 3)).await,
        Err(AppendError::NotASale(_))
    ));
    assert!(matches!(
        writer.append(void("v9", 9)).await,
        Err(AppendError::UnknownSale(_))
    ));
    let next = writer.append(sale("s3", 1)).await.expect("sale 3");
    assert_eq!((next.entry.seq, next.entry.receipt_no), (5, 5));
}

#[tokio::test]
async fn every_batch_signs_its_head_and_verify_names_a_tampered_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (store, writer, thread) = open(dir.path());
        for i in 0..5 {
            writer
                .append(sale(&format!("s{i}"), 1))
                .await
                .expect("sale");
        }
        let signatures = store.chain_head_signatures("till-1").expect("read");
        assert_eq!(signatures.len(), 5, "one signed head per batch");
        assert_eq!(signatures.last().map(|s| s.seq), Some(5));
        drop(writer);
        thread.join().expect("writer thread");
    }
    let reports = crate::cli::journal::verify_data_dir(dir.path()).expect("verify runs");
    assert_eq!(reports[0].problem, None);
    assert_eq!((reports[0].entries, reports[0].signatures), (5, 5));

    // Tamper with entry 3 (as someone editing the database would): entry 4's link breaks.
    {
        let store = JournalStore::open(dir.path()).expect("open");
        let mut entry = store.entry("till-1", 3).expect("read").expect("entry 3");
        entry.operator_id = "mallory".into();
        let mut batch = rocksdb::WriteBatch::default();
        batch.put_cf(
            store.cf(super::keys::CF_JOURNAL),
            super::keys::entry_key("till-1", 3),
            prost::Message::encode_to_vec(&entry),
        );
        store.write_synced(batch).expect("write");
    }
    let reports = crate::cli::journal::verify_data_dir(dir.path()).expect("verify runs");
    let problem = reports[0].problem.clone().expect("tampering found");
    assert!(
        problem.contains("seq 3") || problem.contains("seq 4"),
        "{problem}"
    );
}

#[tokio::test]
async fn a_forged_signature_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (store, writer, thread) = open(dir.path());
        writer.append(sale("s1", 1)).await.expect("sale");
        let mut forged = store.chain_head_signatures("till-1").expect("read")[0].clone();
        forged.signature[0] ^= 1;
        let mut batch = rocksdb::WriteBatch::default();
        batch.put_cf(
            store.cf(super::keys::CF_CHAIN_HEADS),
            super::keys::entry_key("till-1", 1),
            prost::Message::encode_to_vec(&forged),
        );
        store.write_synced(batch).expect("write");
        drop(writer);
        thread.join().expect("writer thread");
    }
    let reports = crate::cli::journal::verify_data_dir(dir.path()).expect("verify runs");
    let problem = reports[0].problem.clone().expect("forgery found");
    assert!(problem.contains("signature does not match"), "{problem}");
}

#[tokio::test]
async fn a_damaged_write_ahead_log_refuses_to_open_instead_of_losing_sales() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (_store, writer, thread) = open(dir.path());
        for i in 0..50 {
            writer
                .append(sale(&format!("w{i}"), 1))
                .await
                .expect("sale");
        }
        drop(writer);
        thread.join().expect("writer thread");
    }
    let wal = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .expect("a write-ahead log");
    let mut bytes = std::fs::read(&wal).expect("read WAL");
    assert!(
        bytes.len() > 4_096,
        "WAL holds the 50 sales ({} bytes)",
        bytes.len()
    );
    let middle = bytes.len() / 3;
    bytes[middle] ^= 0xff;
    std::fs::write(&wal, bytes).expect("write WAL");
    let opened = JournalStore::open(dir.path());
    assert!(
        opened.is_err(),
        "a node must not start on a journal whose log lost acknowledged sales"
    );
    assert!(crate::cli::journal::verify_data_dir(dir.path()).is_err());
}
