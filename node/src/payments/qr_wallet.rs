//! QR wallet tenders: the till shows an EMV merchant-presented QR payload for the amount
//! (`posmesh_payments::emv_qr`), the customer's wallet pays it and the wallet scheme
//! confirms (simulated here by `POST /v1/payments/qr/{id}/confirm`), then the sale's
//! `qr_wallet` tender names the QR id and is accepted only if that QR was confirmed for
//! exactly its amount, once.
//!
//! Sessions live in memory (at most [`QR_SESSIONS_MAX`]): a QR not yet used in a sale is
//! lost with a restart and the customer scans a new one (a real scheme would be asked for
//! the payment's status instead).

use posmesh_domain::Money;
use std::collections::BTreeMap;

/// Most open QR sessions; the oldest is dropped beyond it.
pub const QR_SESSIONS_MAX: usize = 1024;

/// One QR payment request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QrSession {
    /// What the QR asks for.
    pub amount: Money,
    /// The payload shown.
    pub payload: String,
    /// The wallet scheme confirmed the payment.
    pub confirmed: bool,
    /// A sale used it (it pays one tender only).
    pub used: bool,
    /// Creation order (for dropping the oldest).
    pub created: u64,
}

/// Why a QR step was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QrRefusal {
    /// No such QR (never created here, or dropped).
    #[error("QR payment {0:?} is unknown on this till; show a new QR code")]
    Unknown(String),
    /// The confirmation names another amount.
    #[error("the wallet confirmed {confirmed}, the QR asks for {asked}")]
    AmountMismatch {
        /// Confirmed amount.
        confirmed: Money,
        /// The QR's amount.
        asked: Money,
    },
    /// Not confirmed by the wallet yet.
    #[error("QR payment {0:?} is not confirmed by the wallet yet; wait for the customer's wallet, or take another way to pay")]
    NotConfirmed(String),
    /// The tender's amount differs from the QR's.
    #[error("QR payment {id:?} is for {asked}, the tender is {tender}")]
    TenderMismatch {
        /// The QR id.
        id: String,
        /// The QR's amount.
        asked: Money,
        /// The tender's amount.
        tender: Money,
    },
    /// Already used by a sale.
    #[error("QR payment {0:?} already paid a sale")]
    Used(String),
}

/// The open QR sessions of a device.
#[derive(Debug, Default)]
pub struct QrSessions {
    sessions: BTreeMap<String, QrSession>,
    next: u64,
}

impl QrSessions {
    /// Opens (or returns, for a retried request) session `id`.
    pub fn open(&mut self, id: &str, amount: Money, payload: String) -> QrSession {
        if let Some(existing) = self.sessions.get(id) {
            return existing.clone();
        }
        if self.sessions.len() >= QR_SESSIONS_MAX {
            let oldest = self
                .sessions
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.sessions.remove(&oldest);
            }
        }
        self.next += 1;
        let session = QrSession {
            amount,
            payload,
            confirmed: false,
            used: false,
            created: self.next,
        };
        self.sessions.insert(id.to_owned(), session.clone());
        session
    }

    /// The wallet's confirmation of `amount` for `id` (idempotent).
    ///
    /// # Errors
    /// [`QrRefusal::Unknown`], [`QrRefusal::AmountMismatch`]; nothing changes.
    pub fn confirm(&mut self, id: &str, amount: Money) -> Result<(), QrRefusal> {
        let session = self
            .sessions
            .get_mut(id)
            .ok_or_else(|| QrRefusal::Unknown(id.to_owned()))?;
        if session.amount != amount {
            return Err(QrRefusal::AmountMismatch {
                confirmed: amount,
                asked: session.amount,
            });
        }
        session.confirmed = true;
        Ok(())
    }

    /// Checks that `id` pays a tender of `tender` (confirmed, same amount, unused).
    ///
    /// # Errors
    /// The [`QrRefusal`]; nothing changes.
    pub fn check(&self, id: &str, tender: Money) -> Result<(), QrRefusal> {
        let session = self
            .sessions
            .get(id)
            .ok_or_else(|| QrRefusal::Unknown(id.to_owned()))?;
        if session.used {
            return Err(QrRefusal::Used(id.to_owned()));
        }
        if !session.confirmed {
            return Err(QrRefusal::NotConfirmed(id.to_owned()));
        }
        if session.amount != tender {
            return Err(QrRefusal::TenderMismatch {
                id: id.to_owned(),
                asked: session.amount,
                tender,
            });
        }
        Ok(())
    }

    /// Marks `id` used (after its sale was journaled).
    pub fn mark_used(&mut self, id: &str) {
        if let Some(session) = self.sessions.get_mut(id) {
            session.used = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use posmesh_domain::Currency;

    fn gbp(minor: i64) -> Money {
        Money::new(minor, Currency::from_code("GBP").expect("GBP"))
    }

    #[test]
    fn a_qr_pays_one_tender_of_its_amount_once_confirmed() {
        let mut qr = QrSessions::default();
        qr.open("q1", gbp(850), "payload".into());
        assert_eq!(
            qr.check("q1", gbp(850)),
            Err(QrRefusal::NotConfirmed("q1".into()))
        );
        assert!(matches!(
            qr.confirm("q1", gbp(800)),
            Err(QrRefusal::AmountMismatch { .. })
        ));
        assert_eq!(
            qr.check("q1", gbp(850)),
            Err(QrRefusal::NotConfirmed("q1".into()))
        );
        qr.confirm("q1", gbp(850)).expect("confirms");
        assert!(matches!(
            qr.check("q1", gbp(900)),
            Err(QrRefusal::TenderMismatch { .. })
        ));
        assert_eq!(qr.check("q1", gbp(850)), Ok(()));
        qr.mark_used("q1");
        assert_eq!(qr.check("q1", gbp(850)), Err(QrRefusal::Used("q1".into())));
        assert_eq!(
            qr.check("nope", gbp(1)),
            Err(QrRefusal::Unknown("nope".into()))
        );
    }

    #[test]
    fn sessions_are_bounded() {
        let mut qr = QrSessions::default();
        for i in 0..=QR_SESSIONS_MAX {
            qr.open(&format!("q{i}"), gbp(1), String::new());
        }
        assert_eq!(qr.sessions.len(), QR_SESSIONS_MAX);
        assert!(qr
            .check("q0", gbp(1))
            .is_err_and(|e| matches!(e, QrRefusal::Unknown(_))));
    }
}
