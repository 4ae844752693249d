//! The payment connector: the [`PaymentConnector`] trait the node calls, the sans-IO
//! message builders and response interpretation, and [`IsoTcpConnector`], which speaks
//! ISO 8583 over TCP to an acquirer (or the simulator).
//!
//! # Idempotency
//! A card payment is identified by [`PaymentRef`] (sale id, tender index, attempt). Its
//! STAN (field 11) and RRN (field 37) are derived from it by SHA-256 ([`TraceIds::derive`]),
//! so every send of the same payment — a retry after a lost response, after a crash, a
//! repeat advice — carries the same trace numbers and the acquirer recognises it: a
//! duplicate authorization is answered with the original response and charges once. The
//! attempt number changes only when a payment has definitively failed (declined, or timed
//! out and reversed) and the cashier tries the card again: that is a new transaction.
//! The STAN alone (6 digits) collides after ~1,000 payments per terminal (birthday bound),
//! so the acquirer keys on terminal + STAN + RRN (12 hex characters).
//!
//! # Timeouts
//! [`IsoTcpConnector::authorize`] bounds connect + send + receive by one timeout. If the
//! request may have reached the acquirer (anything was written) and no response came, it
//! sends a reversal (0400 with field 90 naming the original) and reports
//! [`AuthorizationOutcome::NotApproved`]; if the reversal is not acknowledged either, the
//! outcome carries it as [`ReversalStatus::Pending`] for the caller to resend (as 0401).
//!
//! # Store-and-forward
//! [`IsoTcpConnector::forward`] sends an offline payment as a 0220 advice, or as a 0221
//! repeat (same STAN and RRN) when `repeat` is set. The caller must record durably that a
//! payment was sent once *before* sending it, and send every later attempt as a repeat.

use crate::card_data::ForwardingCardData;
use crate::currency_numeric;
use crate::iso8583::{self, FieldError, Message, Mti};
use posmesh_domain::Money;
use sha2::{Digest, Sha256};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

/// The card acceptor: terminal id (field 41, 8 printable ASCII) and merchant id (field 42,
/// 15 printable ASCII), padded with spaces on the right when shorter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terminal {
    /// Field 41 value, exactly 8 characters.
    pub terminal_id: String,
    /// Field 42 value, exactly 15 characters.
    pub merchant_id: String,
}

impl Terminal {
    /// Pads `terminal_id` to 8 and `merchant_id` to 15 characters.
    ///
    /// # Errors
    /// [`FieldError`] if either is too long or not printable ASCII.
    pub fn new(terminal_id: &str, merchant_id: &str) -> Result<Terminal, FieldError> {
        let terminal = Terminal {
            terminal_id: format!("{terminal_id:<8}"),
            merchant_id: format!("{merchant_id:<15}"),
        };
        let mut probe = Message::new(Mti::AuthorizationRequest);
        probe.set(41, &terminal.terminal_id)?;
        probe.set(42, &terminal.merchant_id)?;
        Ok(terminal)
    }
}

/// What identifies one card payment attempt.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PaymentRef {
    /// The sale's id (e.g. `till-1/42` or the idempotency key), any text.
    pub sale_id: String,
    /// Index of the tender within the sale, 0-based.
    pub tender_index: u16,
    /// 0 for the first attempt; incremented only after a definitive failure.
    pub attempt: u16,
}

/// STAN and RRN derived from a [`PaymentRef`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceIds {
    /// Field 11, 6 digits.
    pub stan: String,
    /// Field 37, 12 upper-case hex characters.
    pub rrn: String,
}

impl TraceIds {
    /// Deterministic trace numbers: SHA-256 of the reference, the STAN its first 8 bytes
    /// mod 10^6, the RRN the next 6 bytes in hex.
    pub fn derive(reference: &PaymentRef) -> TraceIds {
        let mut hash = Sha256::new();
        hash.update(b"posmesh-trace-v1\0");
        hash.update((reference.sale_id.len() as u64).to_be_bytes());
        hash.update(reference.sale_id.as_bytes());
        hash.update(reference.tender_index.to_be_bytes());
        hash.update(reference.attempt.to_be_bytes());
        let digest = hash.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        TraceIds {
            stan: format!("{:06}", u64::from_be_bytes(first) % 1_000_000),
            rrn: hex::encode_upper(&digest[8..14]),
        }
    }
}

/// A calendar date and time of day (no year: ISO 8583 fields 7, 12, 13 carry none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    /// Month 1–12.
    pub month: u8,
    /// Day 1–31.
    pub day: u8,
    /// Hour 0–23.
    pub hour: u8,
    /// Minute 0–59.
    pub minute: u8,
    /// Second 0–59.
    pub second: u8,
}

impl DateTime {
    /// Checks the ranges.
    ///
    /// # Errors
    /// [`ConnectorError::Invalid`] naming the bad part.
    pub fn new(
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
    ) -> Result<DateTime, ConnectorError> {
        if !(1..=12).contains(&month)
            || !(1..=31).contains(&day)
            || hour > 23
            || minute > 59
            || second > 59
        {
            return Err(ConnectorError::Invalid(format!(
                "date/time {month:02}-{day:02} {hour:02}:{minute:02}:{second:02} out of range"
            )));
        }
        Ok(DateTime {
            month,
            day,
            hour,
            minute,
            second,
        })
    }

    fn mmddhhmmss(&self) -> String {
        format!(
            "{:02}{:02}{:02}{:02}{:02}",
            self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// How the card was read (field 22, ISO 8583:1987 POS entry mode: PAN entry n2 + PIN
/// capability n1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryMode {
    /// Keyed in (`012`).
    Manual,
    /// Chip (`051`).
    Chip,
    /// Contactless chip (`071`).
    Contactless,
}

impl EntryMode {
    fn code(self) -> &'static str {
        match self {
            EntryMode::Manual => "012",
            EntryMode::Chip => "051",
            EntryMode::Contactless => "071",
        }
    }
}

/// One card payment to authorize or forward.
#[derive(Clone, Debug)]
pub struct CardPayment {
    /// Identity (gives STAN and RRN).
    pub reference: PaymentRef,
    /// PAN and expiry.
    pub card: ForwardingCardData,
    /// Amount, minor units of an ISO 4217 currency (`> 0`).
    pub amount: Money,
    /// When the payment was taken, UTC (field 7 of the first send; fields of a repeat keep
    /// it so the acquirer sees identical content).
    pub taken_at_utc: DateTime,
    /// When the payment was taken, store local time (fields 12, 13).
    pub taken_at_local: DateTime,
    /// How the card was read.
    pub entry_mode: EntryMode,
}

/// Errors building messages or talking to the acquirer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    /// A payment or response value is invalid.
    #[error("invalid payment: {0}")]
    Invalid(String),
    /// A field value does not fit its ISO 8583 format.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// The acquirer's response does not match the request.
    #[error("acquirer protocol error: {0}")]
    Protocol(String),
}

/// Builds the request for `payment`: `mti` is 0100, 0200, 0220 or 0221.
///
/// # Errors
/// [`ConnectorError::Invalid`] for a non-positive amount, a currency without a numeric
/// code, or an amount over 12 digits; [`ConnectorError::Field`] for bad card data.
pub fn build_request(
    terminal: &Terminal,
    payment: &CardPayment,
    mti: Mti,
) -> Result<Message, ConnectorError> {
    let mut message = transaction_message(
        mti,
        terminal,
        &payment.reference,
        payment.amount,
        payment.taken_at_utc,
        payment.taken_at_local,
    )?;
    message
        .set(2, payment.card.pan.expose())?
        .set(14, &payment.card.expiry)?
        .set(22, payment.entry_mode.code())?
        .set(25, "00")?;
    Ok(message)
}

/// A message of type `mti` with the fields naming one transaction: processing code 3
/// (purchase), amount 4, transmission time 7, STAN 11, local time 12/13, RRN 37, terminal
/// 41, merchant 42, currency 49.
fn transaction_message(
    mti: Mti,
    terminal: &Terminal,
    reference: &PaymentRef,
    amount: Money,
    taken_at_utc: DateTime,
    taken_at_local: DateTime,
) -> Result<Message, ConnectorError> {
    let minor = amount.minor;
    if minor <= 0 || minor > 999_999_999_999 {
        return Err(ConnectorError::Invalid(format!(
            "amount {amount} must be 1 to 999999999999 minor units"
        )));
    }
    let currency = currency_numeric::numeric_code(amount.currency).ok_or_else(|| {
        ConnectorError::Invalid(format!("no ISO 4217 numeric code for {}", amount.currency))
    })?;
    let ids = TraceIds::derive(reference);
    let local = taken_at_local.mmddhhmmss();
    let mut message = Message::new(mti);
    message
        .set(3, "000000")?
        .set(4, &format!("{minor:012}"))?
        .set(7, &taken_at_utc.mmddhhmmss())?
        .set(11, &ids.stan)?
        .set(12, &local[4..])?
        .set(13, &local[..4])?
        .set(37, &ids.rrn)?
        .set(41, &terminal.terminal_id)?
        .set(42, &terminal.merchant_id)?
        .set(49, currency)?;
    Ok(message)
}

/// The reversal of `original` (0400, or 0401 when `repeat`): the original's identifying
/// fields and field 90 = original MTI n4 + STAN n6 + transmission date/time n10 +
/// acquiring and forwarding institution ids n11 each (zeros: we have none).
///
/// # Errors
/// [`ConnectorError::Invalid`] if `original` lacks field 7 or 11.
pub fn build_reversal(original: &Message, repeat: bool) -> Result<Message, ConnectorError> {
    let (Some(stan), Some(sent_at)) = (original.get(11), original.get(7)) else {
        return Err(ConnectorError::Invalid(
            "original lacks field 7 or 11".into(),
        ));
    };
    let mti = if repeat {
        Mti::ReversalRequestRepeat
    } else {
        Mti::ReversalRequest
    };
    let mut reversal = Message::new(mti);
    for n in [2u8, 3, 4, 7, 11, 12, 13, 14, 22, 25, 37, 41, 42, 49] {
        if let Some(value) = original.get(n) {
            reversal.set(n, value)?;
        }
    }
    let original_data = format!("{}{stan}{sent_at}{}", original.mti().code(), "0".repeat(22));
    reversal.set(90, &original_data)?;
    Ok(reversal)
}

/// A card payment as the journal keeps it, without the card data: what a later reversal
/// (a void of the sale) needs to name the original transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedPayment {
    /// How it reached the acquirer: 0200 (online) or 0220 (a forwarded offline advice;
    /// a 0221 repeat is the same transaction).
    pub original_mti: Mti,
    /// Identity it was sent under (gives STAN and RRN, fields 11 and 37).
    pub reference: PaymentRef,
    /// Amount, minor units of an ISO 4217 currency (`> 0`).
    pub amount: Money,
    /// When it was taken, UTC (field 7 of the original, part of field 90).
    pub taken_at_utc: DateTime,
    /// When it was taken, store local time (fields 12, 13).
    pub taken_at_local: DateTime,
}

/// The reversal (0400) of a recorded payment: the original's identifying fields (3, 4, 7,
/// 11, 12, 13, 37, 41, 42, 49; no card data, which the journal does not keep) and field 90
/// naming the original (see [`build_reversal`]). The acquirer finds the original by
/// terminal, STAN and RRN, exactly as for the reversal of an unanswered request.
///
/// # Errors
/// [`ConnectorError::Invalid`] for a non-positive amount, a currency without a numeric
/// code, or an amount over 12 digits.
pub fn build_reversal_of_recorded(
    terminal: &Terminal,
    payment: &RecordedPayment,
) -> Result<Message, ConnectorError> {
    let original = transaction_message(
        payment.original_mti,
        terminal,
        &payment.reference,
        payment.amount,
        payment.taken_at_utc,
        payment.taken_at_local,
    )?;
    build_reversal(&original, false)
}

/// What the acquirer said about an authorization or an advice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Response code `00`, with the authorization id (field 38) when given.
    Approved {
        /// Field 38.
        auth_id: Option<String>,
    },
    /// Any other response code.
    Declined {
        /// Field 39.
        response_code: String,
        /// The code's meaning ([`iso8583::response_code_text`]).
        reason: &'static str,
    },
}

/// Checks that `response` answers `request` (MTI, STAN, RRN, terminal) and reads its code.
///
/// # Errors
/// [`ConnectorError::Protocol`] naming the mismatch or the missing field.
pub fn interpret_response(
    request: &Message,
    response: &Message,
) -> Result<Decision, ConnectorError> {
    let expected = request
        .mti()
        .response()
        .ok_or_else(|| ConnectorError::Protocol(format!("{} is not a request", request.mti())))?;
    if response.mti() != expected {
        return Err(ConnectorError::Protocol(format!(
            "expected {expected}, got {}",
            response.mti()
        )));
    }
    for n in [11u8, 37, 41] {
        if request.get(n) != response.get(n) {
            return Err(ConnectorError::Protocol(format!(
                "field {n} of the response is {:?}, the request's is {:?}",
                response.get(n),
                request.get(n)
            )));
        }
    }
    let code = response
        .get(39)
        .ok_or_else(|| ConnectorError::Protocol("response lacks field 39".into()))?;
    Ok(if code == "00" {
        Decision::Approved {
            auth_id: response.get(38).map(str::to_owned),
        }
    } else {
        Decision::Declined {
            response_code: code.to_owned(),
            reason: iso8583::response_code_text(code),
        }
    })
}

/// State of the reversal sent after an unanswered authorization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReversalStatus {
    /// The request never left this device: nothing to reverse.
    NotNeeded,
    /// The acquirer answered the reversal (0410) with this response code (`00` reversed,
    /// `25` it never had the original).
    Acknowledged {
        /// Field 39 of the 0410.
        response_code: String,
    },
    /// The reversal got no answer either: the caller must resend it (as 0401) later.
    Pending {
        /// The reversal message to resend.
        reversal: Message,
        /// Why it failed.
        cause: String,
    },
}

/// Result of an online authorization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthorizationOutcome {
    /// Approved: the payment is good.
    Approved {
        /// Field 38.
        auth_id: String,
        /// Field 11.
        stan: String,
        /// Field 37.
        rrn: String,
    },
    /// Declined by the acquirer/issuer.
    Declined {
        /// Field 39.
        response_code: String,
        /// Its meaning, for the cashier.
        reason: &'static str,
    },
    /// No valid answer: the payment is NOT approved (and was reversed if it may have
    /// arrived).
    NotApproved {
        /// Why (connect refused, timeout, connection closed, protocol error).
        cause: String,
        /// What happened to the reversal.
        reversal: ReversalStatus,
    },
}

/// Result of forwarding an offline payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ForwardOutcome {
    /// The acquirer took the advice and approved it (0230 with `00`): forwarding is done
    /// and the card data may be deleted.
    Accepted,
    /// The acquirer took the advice but declined the payment: forwarding is done; the
    /// decline must be surfaced to the manager.
    Declined {
        /// Field 39.
        response_code: String,
        /// Its meaning.
        reason: &'static str,
    },
    /// No answer: send again later as a 0221 repeat.
    Failed {
        /// Why.
        cause: String,
    },
    /// Nothing reached the acquirer (the connection could not be made, or the advice could
    /// not be built): the next send is still a first 0220.
    NotSent {
        /// Why.
        cause: String,
    },
}

/// A connection to an acquirer.
pub trait PaymentConnector {
    /// Authorizes `payment` online (0100; 0200 when `financial`).
    fn authorize(
        &self,
        payment: &CardPayment,
        financial: bool,
    ) -> impl Future<Output = AuthorizationOutcome> + Send;

    /// Forwards an offline payment as an advice: 0220, or 0221 when `repeat`.
    fn forward(
        &self,
        payment: &CardPayment,
        repeat: bool,
    ) -> impl Future<Output = ForwardOutcome> + Send;

    /// Sends a (repeat) reversal left pending by [`PaymentConnector::authorize`].
    fn resend_reversal(&self, reversal: &Message) -> impl Future<Output = ReversalStatus> + Send;

    /// Sends `reversal` as built (a first 0400, e.g. [`build_reversal_of_recorded`] for a
    /// void). Sending the same 0400 again is recognised by the acquirer as the same
    /// reversal.
    fn send_reversal(&self, reversal: &Message) -> impl Future<Output = ReversalStatus> + Send;
}

/// Why one request/response exchange failed.
#[derive(Debug)]
enum ExchangeError {
    /// Nothing was written: the acquirer cannot have the request.
    NotSent(String),
    /// The request may have arrived; no valid response.
    NoAnswer(String),
}

impl ExchangeError {
    fn cause(&self) -> &str {
        match self {
            ExchangeError::NotSent(c) | ExchangeError::NoAnswer(c) => c,
        }
    }
}

/// ISO 8583 over TCP: one connection per exchange, each bounded by a timeout.
#[derive(Clone, Debug)]
pub struct IsoTcpConnector {
    /// The acquirer's address.
    pub addr: SocketAddr,
    /// The card acceptor.
    pub terminal: Terminal,
    /// Bound on connect + send + receive of one exchange.
    pub timeout: Duration,
}

impl IsoTcpConnector {
    async fn exchange(&self, request: &Message) -> Result<Message, ExchangeError> {
        let deadline = Instant::now() + self.timeout;
        let frame =
            iso8583::encode_frame(request).map_err(|e| ExchangeError::NotSent(e.to_string()))?;
        let mut stream = match timeout_at(deadline, TcpStream::connect(self.addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                return Err(ExchangeError::NotSent(format!(
                    "connect to {}: {error}",
                    self.addr
                )))
            }
            Err(_) => {
                return Err(ExchangeError::NotSent(format!(
                    "connect to {}: timed out",
                    self.addr
                )))
            }
        };
        // From here on the request may reach the acquirer.
        let no_answer = |what: String| ExchangeError::NoAnswer(what);
        match timeout_at(deadline, stream.write_all(&frame)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(no_answer(format!("send: {error}"))),
            Err(_) => return Err(no_answer("send timed out".into())),
        }
        let mut prefix = [0u8; 2];
        let read = async {
            stream.read_exact(&mut prefix).await?;
            let len = iso8583::check_frame_len(prefix).map_err(std::io::Error::other)?;
            let mut body = vec![0u8; len];
            stream.read_exact(&mut body).await?;
            Ok::<_, std::io::Error>(body)
        };
        let body = match timeout_at(deadline, read).await {
            Ok(Ok(body)) => body,
            Ok(Err(error)) => return Err(no_answer(format!("no response (connection: {error})"))),
            Err(_) => {
                return Err(no_answer(format!(
                    "no response within {} ms",
                    self.timeout.as_millis()
                )))
            }
        };
        Message::decode(&body).map_err(|e| no_answer(format!("undecodable response: {e}")))
    }

    async fn reverse(&self, reversal: &Message) -> ReversalStatus {
        match self.exchange(reversal).await {
            Ok(response) => match interpret_response(reversal, &response) {
                Ok(Decision::Approved { .. }) => ReversalStatus::Acknowledged {
                    response_code: "00".into(),
                },
                Ok(Decision::Declined { response_code, .. }) => {
                    ReversalStatus::Acknowledged { response_code }
                }
                Err(error) => ReversalStatus::Pending {
                    reversal: reversal.clone(),
                    cause: error.to_string(),
                },
            },
            Err(error) => ReversalStatus::Pending {
                reversal: reversal.clone(),
                cause: error.cause().to_owned(),
            },
        }
    }
}

impl PaymentConnector for IsoTcpConnector {
    async fn authorize(&self, payment: &CardPayment, financial: bool) -> AuthorizationOutcome {
        let mti = if financial {
            Mti::FinancialRequest
        } else {
            Mti::AuthorizationRequest
        };
        let request = match build_request(&self.terminal, payment, mti) {
            Ok(request) => request,
            Err(error) => {
                return AuthorizationOutcome::NotApproved {
                    cause: error.to_string(),
                    reversal: ReversalStatus::NotNeeded,
                }
            }
        };
        let failure = match self.exchange(&request).await {
            Ok(response) => match interpret_response(&request, &response) {
                Ok(Decision::Approved { auth_id }) => {
                    return AuthorizationOutcome::Approved {
                        auth_id: auth_id.unwrap_or_default(),
                        stan: request.get(11).unwrap_or_default().to_owned(),
                        rrn: request.get(37).unwrap_or_default().to_owned(),
                    }
                }
                Ok(Decision::Declined {
                    response_code,
                    reason,
                }) => {
                    return AuthorizationOutcome::Declined {
                        response_code,
                        reason,
                    }
                }
                Err(error) => ExchangeError::NoAnswer(error.to_string()),
            },
            Err(error) => error,
        };
        let reversal = match &failure {
            ExchangeError::NotSent(_) => ReversalStatus::NotNeeded,
            ExchangeError::NoAnswer(_) => match build_reversal(&request, false) {
                Ok(reversal) => self.reverse(&reversal).await,
                // Unreachable: build_request always sets fields 7 and 11. Report the
                // original so the caller still sees what may need reversing.
                Err(error) => ReversalStatus::Pending {
                    reversal: request.clone(),
                    cause: error.to_string(),
                },
            },
        };
        tracing::warn!(
            cause = failure.cause(),
            ?reversal,
            "authorization not approved"
        );
        AuthorizationOutcome::NotApproved {
            cause: failure.cause().to_owned(),
            reversal,
        }
    }

    async fn forward(&self, payment: &CardPayment, repeat: bool) -> ForwardOutcome {
        let mti = if repeat {
            Mti::FinancialAdviceRepeat
        } else {
            Mti::FinancialAdvice
        };
        let advice = match build_request(&self.terminal, payment, mti) {
            Ok(advice) => advice,
            Err(error) => {
                return ForwardOutcome::NotSent {
                    cause: error.to_string(),
                }
            }
        };
        match self.exchange(&advice).await {
            Ok(response) => match interpret_response(&advice, &response) {
                Ok(Decision::Approved { .. }) => ForwardOutcome::Accepted,
                Ok(Decision::Declined {
                    response_code,
                    reason,
                }) => ForwardOutcome::Declined {
                    response_code,
                    reason,
                },
                Err(error) => ForwardOutcome::Failed {
                    cause: error.to_string(),
                },
            },
            Err(ExchangeError::NotSent(cause)) => ForwardOutcome::NotSent { cause },
            Err(error) => ForwardOutcome::Failed {
                cause: error.cause().to_owned(),
            },
        }
    }

    async fn resend_reversal(&self, reversal: &Message) -> ReversalStatus {
        let mut repeat = reversal.clone();
        if repeat.mti() == Mti::ReversalRequest {
            repeat.set_mti(Mti::ReversalRequestRepeat);
        }
        self.reverse(&repeat).await
    }

    async fn send_reversal(&self, reversal: &Message) -> ReversalStatus {
        self.reverse(reversal).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card_data::Pan;
    use posmesh_domain::Currency;

    fn payment(sale: &str, amount: i64) -> CardPayment {
        CardPayment {
            reference: PaymentRef {
                sale_id: sale.into(),
                tender_index: 0,
                attempt: 0,
            },
            card: ForwardingCardData::new(Pan::parse("4111111111111111").expect("pan"), "2812")
                .expect("card"),
            amount: Money::new(amount, Currency::from_code("GBP").expect("GBP")),
            taken_at_utc: DateTime::new(3, 14, 9, 26, 53).expect("time"),
            taken_at_local: DateTime::new(3, 14, 9, 26, 53).expect("time"),
            entry_mode: EntryMode::Chip,
        }
    }

    #[test]
    fn trace_ids_are_deterministic_and_distinct() {
        let a = PaymentRef {
            sale_id: "till-1/1".into(),
            tender_index: 0,
            attempt: 0,
        };
        let ids = TraceIds::derive(&a);
        assert_eq!(ids, TraceIds::derive(&a.clone()));
        assert_eq!(ids.stan.len(), 6);
        assert_eq!(ids.rrn.len(), 12);
        for other in [
            PaymentRef {
                tender_index: 1,
                ..a.clone()
            },
            PaymentRef {
                attempt: 1,
                ..a.clone()
            },
            PaymentRef {
                sale_id: "till-1/2".into(),
                ..a.clone()
            },
        ] {
            assert_ne!(TraceIds::derive(&other).rrn, ids.rrn);
        }
    }

    #[test]
    fn a_recorded_payment_s_reversal_names_the_same_original() {
        let terminal = Terminal::new("TILL1", "BREADBASKET").expect("terminal");
        let full = payment("s", 1234);
        for mti in [Mti::FinancialRequest, Mti::FinancialAdvice] {
            let request = build_request(&terminal, &full, mti).expect("request");
            let from_request = build_reversal(&request, false).expect("reversal");
            let recorded = RecordedPayment {
                original_mti: mti,
                reference: full.reference.clone(),
                amount: full.amount,
                taken_at_utc: full.taken_at_utc,
                taken_at_local: full.taken_at_local,
            };
            let from_journal = build_reversal_of_recorded(&terminal, &recorded).expect("reversal");
            assert_eq!(from_journal.mti(), Mti::ReversalRequest);
            for n in [3u8, 4, 7, 11, 12, 13, 37, 41, 42, 49, 90] {
                assert_eq!(
                    from_journal.get(n),
                    from_request.get(n),
                    "field {n} of {mti:?}"
                );
            }
            assert_eq!(
                from_journal.get(2),
                None,
                "no card data in a void's reversal"
            );
        }
        let free = RecordedPayment {
            original_mti: Mti::FinancialRequest,
            reference: full.reference.clone(),
            amount: Money::new(0, full.amount.currency),
            taken_at_utc: full.taken_at_utc,
            taken_at_local: full.taken_at_local,
        };
        assert!(matches!(
            build_reversal_of_recorded(&terminal, &free),
            Err(ConnectorError::Invalid(_))
        ));
    }

    #[test]
    fn requests_and_reversals_carry_the_standard_fields() {
        let terminal = Terminal::new("TILL1", "BREADBASKET").expect("terminal");
        assert_eq!(terminal.terminal_id, "TILL1   ");
        assert!(Terminal::new("TOO-LONG-1", "M").is_err());
        let request = build_request(&terminal, &payment("s", 1234), Mti::AuthorizationRequest)
            .expect("request");
        assert_eq!(request.get(4), Some("000000001234"));
        assert_eq!(request.get(49), Some("826"));
        assert_eq!(request.get(7), Some("0314092653"));
        assert_eq!(request.get(12), Some("092653"));
        assert_eq!(request.get(13), Some("0314"));
        let reversal = build_reversal(&request, false).expect("reversal");
        assert_eq!(reversal.mti(), Mti::ReversalRequest);
        let f90 = reversal.get(90).expect("90");
        assert_eq!(&f90[..4], "0100");
        assert_eq!(&f90[4..10], request.get(11).expect("stan"));
        assert_eq!(&f90[10..20], "0314092653");
        assert!(build_request(&terminal, &payment("s", 0), Mti::AuthorizationRequest).is_err());
        assert!(build_request(
            &terminal,
            &payment("s", 1_000_000_000_000),
            Mti::AuthorizationRequest
        )
        .is_err());
    }

    #[test]
    fn responses_are_checked_against_the_request() {
        let terminal = Terminal::new("TILL1", "M").expect("terminal");
        let request = build_request(&terminal, &payment("s", 100), Mti::AuthorizationRequest)
            .expect("request");
        let mut response = request.clone();
        response.set_mti(Mti::AuthorizationResponse);
        assert!(
            interpret_response(&request, &response).is_err(),
            "no field 39"
        );
        response
            .set(39, "00")
            .and_then(|m| m.set(38, "ABC123"))
            .expect("fields");
        assert_eq!(
            interpret_response(&request, &response),
            Ok(Decision::Approved {
                auth_id: Some("ABC123".into())
            })
        );
        response.set(39, "51").expect("39");
        assert_eq!(
            interpret_response(&request, &response),
            Ok(Decision::Declined {
                response_code: "51".into(),
                reason: "insufficient funds"
            })
        );
        response.set(11, "999999").expect("11");
        assert!(matches!(
            interpret_response(&request, &response),
            Err(ConnectorError::Protocol(_))
        ));
        response.set_mti(Mti::FinancialResponse);
        assert!(interpret_response(&request, &response).is_err());
    }
}
