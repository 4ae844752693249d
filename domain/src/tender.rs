//! Tenders (payments) of a sale: [`TenderKind`], [`TenderRequest`], [`SettledTender`], and
//! the settlement rule that decides change.

use crate::error::SaleError;
use crate::limits::{SALE_TENDERS_MAX, TENDER_AMOUNT_MAX_MINOR, TENDER_REFERENCE_BYTES_MAX};

/// How a tender was paid. Only cash gives change; only cash triggers cash rounding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenderKind {
    /// Notes and coins (`"cash"`).
    Cash,
    /// Payment card (`"card"`).
    Card,
    /// QR-code wallet payment (`"qr_wallet"`).
    QrWallet,
    /// Gift card (`"gift_card"`).
    GiftCard,
}

impl TenderKind {
    /// `true` for [`TenderKind::Cash`].
    pub fn is_cash(self) -> bool {
        self == TenderKind::Cash
    }

    /// Human label used on receipts, e.g. `"Card"`.
    pub fn label(self) -> &'static str {
        match self {
            TenderKind::Cash => "Cash",
            TenderKind::Card => "Card",
            TenderKind::QrWallet => "QR wallet",
            TenderKind::GiftCard => "Gift card",
        }
    }
}

/// One payment offered for a sale.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TenderRequest {
    /// How it is paid.
    pub kind: TenderKind,
    /// Amount offered, minor units of the sale currency (`> 0`; cash may exceed what is due).
    pub amount_minor: i64,
    /// Optional reference (acquirer authorisation, gift card id), at most
    /// [`TENDER_REFERENCE_BYTES_MAX`] bytes.
    #[serde(default)]
    pub reference: Option<String>,
}

/// A tender as accepted: the amount offered and the change given back from it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SettledTender {
    /// How it was paid.
    pub kind: TenderKind,
    /// Amount offered, minor units.
    pub amount_minor: i64,
    /// Change handed back from this tender, minor units (non-zero only on the last cash
    /// tender of a sale).
    pub change_minor: i64,
    /// Reference as given.
    pub reference: Option<String>,
}

/// Checks each tender on its own: at most [`SALE_TENDERS_MAX`] tenders, amounts `> 0`,
/// references at most [`TENDER_REFERENCE_BYTES_MAX`] bytes.
///
/// # Errors
/// [`SaleError::TooManyTenders`], [`SaleError::InvalidTenderAmount`],
/// [`SaleError::TenderReferenceTooLong`].
pub fn validate_tenders(tenders: &[TenderRequest]) -> Result<(), SaleError> {
    if tenders.len() > SALE_TENDERS_MAX {
        return Err(SaleError::TooManyTenders {
            count: tenders.len(),
        });
    }
    for (tender, request) in tenders.iter().enumerate() {
        if request.amount_minor <= 0 || request.amount_minor > TENDER_AMOUNT_MAX_MINOR {
            let amount_minor = request.amount_minor;
            return Err(SaleError::InvalidTenderAmount {
                tender,
                amount_minor,
            });
        }
        let len_bytes = request.reference.as_ref().map_or(0, String::len);
        if len_bytes > TENDER_REFERENCE_BYTES_MAX {
            return Err(SaleError::TenderReferenceTooLong { tender, len_bytes });
        }
    }
    Ok(())
}

/// Settles `tenders` against `due_minor` (the amount due after cash rounding, `>= 0`).
///
/// Rule (house rule, as on every till): non-cash tenders are applied first and may not
/// exceed the amount due, because only cash can be handed back; cash covers the rest; the
/// change is `cash offered − (due − non-cash)` and is recorded on the last cash tender.
/// With nothing due, no tender is needed. Postcondition (asserted):
/// `Σ amount − change == due_minor`.
///
/// # Errors
/// Those of [`validate_tenders`]; [`SaleError::NonCashOverpayment`];
/// [`SaleError::TendersShort`] if all tenders together are below `due_minor`;
/// [`SaleError::AmountOverflow`] (field `"tenders"`) if the tenders' sum overflows.
pub fn settle_tenders(
    due_minor: i64,
    tenders: &[TenderRequest],
) -> Result<Vec<SettledTender>, SaleError> {
    debug_assert!(due_minor >= 0);
    validate_tenders(tenders)?;
    let non_cash_minor = sum_tenders(tenders, |kind| !kind.is_cash())?;
    let cash_minor = sum_tenders(tenders, TenderKind::is_cash)?;
    if non_cash_minor > due_minor {
        return Err(SaleError::NonCashOverpayment {
            due_minor,
            non_cash_minor,
        });
    }
    let tendered_minor = non_cash_minor
        .checked_add(cash_minor)
        .ok_or_else(tenders_overflow)?;
    if tendered_minor < due_minor {
        return Err(SaleError::TendersShort {
            due_minor,
            tendered_minor,
        });
    }
    // Both are >= 0 and tendered >= due, so this cannot overflow.
    let change_minor = tendered_minor - due_minor;
    let mut settled: Vec<SettledTender> = tenders.iter().map(settled_without_change).collect();
    if change_minor > 0 {
        // change > 0 implies cash > 0 (non-cash <= due), so a cash tender exists.
        let last_cash = settled.iter_mut().rev().find(|t| t.kind.is_cash());
        if let Some(tender) = last_cash {
            tender.change_minor = change_minor;
        }
    }
    assert_eq!(
        tendered_minor - change_sum(&settled),
        due_minor,
        "tenders − change == due"
    );
    Ok(settled)
}

fn sum_tenders(tenders: &[TenderRequest], pick: fn(TenderKind) -> bool) -> Result<i64, SaleError> {
    tenders
        .iter()
        .filter(|t| pick(t.kind))
        .try_fold(0_i64, |acc, t| acc.checked_add(t.amount_minor))
        .ok_or_else(tenders_overflow)
}

fn change_sum(settled: &[SettledTender]) -> i64 {
    settled
        .iter()
        .fold(0_i64, |acc, t| acc.saturating_add(t.change_minor))
}

fn settled_without_change(request: &TenderRequest) -> SettledTender {
    SettledTender {
        kind: request.kind,
        amount_minor: request.amount_minor,
        change_minor: 0,
        reference: request.reference.clone(),
    }
}

fn tenders_overflow() -> SaleError {
    SaleError::AmountOverflow {
        field: "tenders".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tender(kind: TenderKind, amount_minor: i64) -> TenderRequest {
        TenderRequest {
            kind,
            amount_minor,
            reference: None,
        }
    }

    #[test]
    fn cash_gives_change_on_the_last_cash_tender() {
        let tenders = [
            tender(TenderKind::Cash, 500),
            tender(TenderKind::Card, 200),
            tender(TenderKind::Cash, 500),
        ];
        let settled = settle_tenders(850, &tenders).expect("settles");
        let changes: Vec<i64> = settled.iter().map(|t| t.change_minor).collect();
        assert_eq!(changes, [0, 0, 350]);
    }

    #[test]
    fn exact_card_payment_and_nothing_due() {
        let settled = settle_tenders(267, &[tender(TenderKind::Card, 267)]).expect("settles");
        assert_eq!(settled[0].change_minor, 0);
        assert_eq!(settle_tenders(0, &[]).expect("nothing due"), []);
    }

    #[test]
    fn refusals() {
        let code = |due, t: &[TenderRequest]| settle_tenders(due, t).map_err(|e| e.code());
        assert_eq!(
            code(100, &[tender(TenderKind::Card, 101)]),
            Err("non_cash_overpayment")
        );
        assert_eq!(
            code(100, &[tender(TenderKind::Cash, 99)]),
            Err("tenders_short")
        );
        assert_eq!(code(100, &[]), Err("tenders_short"));
        assert_eq!(
            code(100, &[tender(TenderKind::Cash, 0)]),
            Err("invalid_tender_amount")
        );
        // An absurd amount is refused before any sum is taken (so sums cannot overflow).
        let huge = [
            tender(TenderKind::Cash, i64::MAX),
            tender(TenderKind::Cash, 1),
        ];
        assert_eq!(code(100, &huge), Err("invalid_tender_amount"));
        assert_eq!(
            code(100, &[tender(TenderKind::Cash, TENDER_AMOUNT_MAX_MINOR)]).map(|_| ()),
            Ok(())
        );
    }
}
