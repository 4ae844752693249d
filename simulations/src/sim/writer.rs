//! [`JournalWriter`]: a model of the node's journal writer thread (`node/src/storage/writer.rs`,
//! which needs RocksDB and tokio and so cannot run here). It keeps the node's ordering — take
//! a group of queued sales, assign gap-free `seq` and receipt numbers, stamp them with the
//! hybrid logical clock, link the hash chain, sign the head of the group, write the group as
//! one batch, and answer only after the fsync — and it uses the production chain
//! ([`posmesh_sync::chain::link_entry`]), heads ([`posmesh_sync::chain_head`]) and clock
//! ([`posmesh_sync::hlc`]). The in-memory head moves only when the write is accepted, so a
//! refused write leaves numbering gap-free (DESIGN guarantee 5).

use super::disk::DiskWrite;
use super::keys::{sign_head, INCARNATION, STORE_ID};
use super::ledger::Ledger;
use ed25519_dalek::SigningKey;
use posmesh_proto::journal::v1::{
    journal_entry::Payload, Hlc, JournalEntry, Sale, SaleLine, Tender,
};
use posmesh_sync::chain::{link_entry, ChainHash, GENESIS_PREV_HASH};
use posmesh_sync::hlc::{HlcTimestamp, HybridLogicalClock};
use prost::Message as _;

/// A sale the POS app asks the device to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaleInput {
    /// Run-unique id of the request (the simulator's bookkeeping).
    pub sale_id: u64,
    /// Units sold of the one line.
    pub quantity: i64,
    /// Unit price, minor units.
    pub unit_price_minor: i64,
}

/// What one entry of a prepared group got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Assigned {
    /// The request.
    pub sale_id: u64,
    /// Its journal seq.
    pub seq: u64,
    /// Its receipt number.
    pub receipt_no: u64,
    /// Its chain hash.
    pub hash: ChainHash,
}

/// A group of sales ready to write: the disk write and the writer state after it.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The batch to write.
    pub write: DiskWrite,
    /// Per sale, what it was assigned.
    pub assigned: Vec<Assigned>,
    last_receipt: u64,
    hlc_last: HlcTimestamp,
}

/// The journal writer of one device.
#[derive(Clone, Debug)]
pub struct JournalWriter {
    device_id: String,
    key: SigningKey,
    last_seq: u64,
    last_hash: ChainHash,
    last_receipt: u64,
    hlc: HybridLogicalClock,
}

impl JournalWriter {
    /// The writer of `device_id` resuming from what its disk durably holds (a restart reads
    /// the head, the receipt counter and the last HLC stamp back, as the node does).
    pub fn resume(device_id: &str, key: SigningKey, durable: &Ledger) -> Self {
        let entries = durable.entries(device_id);
        let last_hash = durable
            .hashes(device_id)
            .last()
            .copied()
            .unwrap_or(GENESIS_PREV_HASH);
        let mut hlc = HybridLogicalClock::new();
        let mut last_receipt = 0;
        if let Some(last) = entries
            .last()
            .and_then(|b| JournalEntry::decode(b.as_slice()).ok())
        {
            let stamp = last.hlc.unwrap_or_default();
            hlc.observe(HlcTimestamp {
                physical_ms: stamp.physical_ms,
                logical: stamp.logical,
            });
        }
        for bytes in entries.iter().rev() {
            if let Ok(entry) = JournalEntry::decode(bytes.as_slice()) {
                if entry.receipt_no > 0 {
                    last_receipt = entry.receipt_no;
                    break;
                }
            }
        }
        Self {
            device_id: device_id.to_owned(),
            key,
            last_seq: entries.len() as u64,
            last_hash,
            last_receipt,
            hlc,
        }
    }

    /// Last seq written (accepted by the disk).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Builds the batch for `sales` at local wall time `local_ms` without changing the
    /// writer: [`commit`](Self::commit) it once the disk accepted the write.
    pub fn prepare(&self, sales: &[SaleInput], local_ms: u64) -> Prepared {
        let mut hlc = self.hlc.clone();
        let mut prev = self.last_hash;
        let mut receipt = self.last_receipt;
        let mut entries = Vec::with_capacity(sales.len());
        let mut assigned = Vec::with_capacity(sales.len());
        for (offset, sale) in (1u64..).zip(sales) {
            let seq = self.last_seq + offset;
            receipt += 1;
            let stamp = hlc.tick(local_ms);
            let mut entry = sale_entry(&self.device_id, seq, receipt, stamp, sale);
            let (bytes, hash) = link_entry(&mut entry, &prev);
            prev = hash;
            entries.push((seq, bytes));
            assigned.push(Assigned {
                sale_id: sale.sale_id,
                seq,
                receipt_no: receipt,
                hash,
            });
        }
        let last_seq = self.last_seq + sales.len() as u64;
        let head = sign_head(&self.device_id, last_seq, prev, &self.key);
        Prepared {
            write: DiskWrite {
                device_id: self.device_id.clone(),
                entries,
                head,
            },
            assigned,
            last_receipt: receipt,
            hlc_last: hlc.last(),
        }
    }

    /// The disk accepted `prepared`: the in-memory head moves past it.
    pub fn commit(&mut self, prepared: &Prepared) {
        if let Some(last) = prepared.assigned.last() {
            self.last_seq = last.seq;
            self.last_hash = last.hash;
        }
        self.last_receipt = prepared.last_receipt;
        self.hlc.observe(prepared.hlc_last);
    }

    /// Canary `receipt-leak` only: the receipt numbers of a refused write are consumed anyway.
    pub fn leak_receipts(&mut self, prepared: &Prepared) {
        self.last_receipt = prepared.last_receipt;
    }
}

/// Days since 1970-01-01 to a civil date (Hinnant's `civil_from_days`).
fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn sale_entry(
    device_id: &str,
    seq: u64,
    receipt_no: u64,
    stamp: HlcTimestamp,
    sale: &SaleInput,
) -> JournalEntry {
    let gross = sale.quantity.saturating_mul(sale.unit_price_minor);
    let occurred_at_ms = i64::try_from(stamp.physical_ms).unwrap_or(i64::MAX);
    JournalEntry {
        store_id: STORE_ID.into(),
        device_id: device_id.into(),
        device_incarnation: INCARNATION,
        seq,
        receipt_no,
        prev_hash: Vec::new(),
        hlc: Some(Hlc {
            physical_ms: stamp.physical_ms,
            logical: stamp.logical,
        }),
        business_date: civil_date(occurred_at_ms.div_euclid(86_400_000)),
        operator_id: String::new(),
        shift_id: String::new(),
        catalog_version: 1,
        occurred_at_ms,
        idempotency_key: format!("sim-{}", sale.sale_id),
        payload: Some(Payload::Sale(Sale {
            currency: "GBP".into(),
            lines: vec![SaleLine {
                sku: "COFFEE".into(),
                name: "Coffee".into(),
                quantity: sale.quantity,
                unit_price_minor: sale.unit_price_minor,
                gross_minor: gross,
                net_minor: gross,
                tax_rate_bp: 2_000,
                tax_minor: gross / 6,
                ..Default::default()
            }],
            gross_minor: gross,
            total_minor: gross,
            tax_minor: gross / 6,
            tenders: vec![Tender {
                amount_minor: gross,
                ..Default::default()
            }],
            ..Default::default()
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(20_422), "2025-11-30");
        assert_eq!(civil_date(11_016), "2000-02-29");
    }
}
