//! How the demo's till pays a planned sale: a card sale carries a test card (PAN derived
//! from the transaction number) and goes to the node, which authorizes it with the
//! acquirer or, with the acquirer unreachable, takes it offline within its limits; a card
//! refused offline (402 `offline_*`) is paid in cash instead, as at a real till — a new
//! sale request with its own Idempotency-Key (`<key>-cash`), since the refused one
//! recorded nothing.

use crate::api::dto::{CardBody, TenderBody};
use crate::import::replay::{round_up_to_note, send_sale_answer, PlannedSale};
use posmesh_domain::TenderKind;

/// Test cards of the demo expire in December 2030 (`YYMM`).
const CARD_EXPIRY: &str = "3012";

/// How a planned sale was paid in the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paid {
    /// Cash as planned.
    Cash,
    /// Card, approved online by the acquirer.
    CardOnline,
    /// Card, taken offline (store-and-forward).
    CardOffline,
    /// Card refused offline, then paid in cash.
    CardRefusedThenCash,
}

/// `sale` with its card tenders carrying the test card of its transaction number (planned
/// card tenders carry no card: an external terminal's).
pub(crate) fn with_card(mut sale: PlannedSale) -> PlannedSale {
    let pan = crate::bench::offline_saf::test_pan(sale.number);
    for tender in &mut sale.body.tenders {
        if tender.kind == TenderKind::Card {
            tender.card = Some(CardBody {
                pan: pan.clone(),
                expiry: CARD_EXPIRY.to_owned(),
            });
        }
    }
    sale
}

/// Sends `sale` to `url` (`…/v1/sales`); a card refused offline is paid in cash (rounded
/// up to a note). Errors as [`send_sale_answer`], for the cash payment too.
pub(crate) async fn sell(
    client: &reqwest::Client,
    url: &str,
    sale: &PlannedSale,
) -> Result<Paid, String> {
    let is_card = sale
        .body
        .tenders
        .iter()
        .any(|t| t.kind == TenderKind::Card && t.card.is_some());
    match send_sale_answer(client, url, &sale.key, &sale.body).await {
        Ok((_, answer)) if is_card => {
            let offline = answer["sale"]["tenders"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|t| {
                    t["reference"]
                        .as_str()
                        .is_some_and(|r| r.starts_with("offline "))
                });
            Ok(if offline {
                Paid::CardOffline
            } else {
                Paid::CardOnline
            })
        }
        Ok(_) => Ok(Paid::Cash),
        Err(code) if is_card && code.starts_with("offline_") => {
            let mut body = sale.body.clone();
            body.tenders = body
                .tenders
                .iter()
                .map(|t| TenderBody {
                    kind: TenderKind::Cash,
                    amount_minor: if t.kind == TenderKind::Card {
                        round_up_to_note(t.amount_minor)
                    } else {
                        t.amount_minor
                    },
                    reference: None,
                    card: None,
                })
                .collect();
            send_sale_answer(client, url, &format!("{}-cash", sale.key), &body).await?;
            Ok(Paid::CardRefusedThenCash)
        }
        Err(code) => Err(code),
    }
}
