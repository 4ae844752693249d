//! The acquirer simulator: a decision core ([`Acquirer`], sans-IO) and its TCP server
//! ([`serve`], tokio), run by the `posmesh-acquirer` binary.
//!
//! # Behaviour
//! - Approves by default (response code `00`, a 6-character authorization id).
//! - [`DeclineRule`]s (first match wins): amount over N minor units, PAN prefix, PAN range
//!   → the rule's response code. Rules apply to 0100, 0200 and 0220/0221.
//! - Faults ([`Fault`]) on the message types listed in [`AcquirerConfig::fault_mtis`]
//!   (default 0100 and 0200), optionally only for the first `fault_count` of them:
//!   `timeout` (processed, never answered), `drop` (processed, connection closed without
//!   an answer), `unreachable` (the server closes every connection at once, before
//!   reading anything). A delay (ms) applies before every answer.
//! - Exactly-once: every request is keyed by its transaction — (class, terminal 41,
//!   STAN 11, RRN 37) for 0100/0200/0220/0221, (terminal 41, original data 90, RRN 37) for
//!   reversals. A repeat (0221 after 0220, 0401 after 0400) or a duplicate (the same
//!   0100/0200 again) counts as a raw arrival only, is not processed again, and is
//!   answered with the original response. A duplicate whose content differs from the
//!   original (other amount or card) is answered `94` (duplicate transmission), and so is
//!   a duplicate of an authorization that has since been reversed (it must not be answered
//!   "approved" again). A reversal of an approved transaction un-charges it; of an unknown
//!   one it is answered `25` (unable to locate record).
//! - Undecodable frames are counted and the connection is closed.
//!
//! The counters ([`Stats`]) are what tests assert: raw and unique arrivals overall and per
//! class, charges (approved and not reversed) and their total in minor units.

use crate::iso8583::{self, FrameDecoder, Message, Mti};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Most transactions the simulator remembers; beyond it requests are answered `96`.
pub const TRANSACTIONS_MAX: usize = 100_000;
/// Most frames one connection may carry before the server closes it.
pub const FRAMES_PER_CONNECTION_MAX: usize = 10_000;
/// Most connections served at once.
pub const CONNECTIONS_MAX: usize = 64;
/// A connection idle this long is closed, seconds.
pub const IDLE_TIMEOUT_SECS: u64 = 30;

/// What a decline rule matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Matcher {
    /// Amount (field 4) strictly above this many minor units.
    AmountOver(i64),
    /// PAN (field 2) starting with these digits.
    PanPrefix(String),
    /// PAN whose first `low.len()` digits lie in `low..=high` (same length).
    PanRange {
        /// Lowest prefix, digits.
        low: String,
        /// Highest prefix, digits, same length as `low`.
        high: String,
    },
}

/// A decline rule: when `matcher` matches, answer `response_code`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeclineRule {
    /// What it matches.
    pub matcher: Matcher,
    /// ISO 8583 response code (2 alphanumerics), e.g. `51`.
    pub response_code: String,
}

/// Parses `VALUE[:CODE]`, checking the code.
fn split_code(text: &str, default: &str) -> Result<(String, String), String> {
    let (value, code) = text.split_once(':').unwrap_or((text, default));
    if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!(
            "response code {code:?} must be 2 letters or digits"
        ));
    }
    Ok((value.to_owned(), code.to_owned()))
}

fn digits(text: &str, what: &str) -> Result<String, String> {
    if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} {text:?} must be 1 to 19 digits"));
    }
    Ok(text.to_owned())
}

impl DeclineRule {
    /// Parses `MINOR[:CODE]` (default code `51`, insufficient funds).
    ///
    /// # Errors
    /// A message naming the bad part.
    pub fn amount_over(text: &str) -> Result<DeclineRule, String> {
        let (value, code) = split_code(text, "51")?;
        let minor = value
            .parse::<i64>()
            .ok()
            .filter(|m| *m >= 0)
            .ok_or_else(|| format!("amount {value:?} must be minor units >= 0"))?;
        Ok(DeclineRule {
            matcher: Matcher::AmountOver(minor),
            response_code: code,
        })
    }

    /// Parses `DIGITS[:CODE]` (default code `05`, do not honour).
    ///
    /// # Errors
    /// A message naming the bad part.
    pub fn pan_prefix(text: &str) -> Result<DeclineRule, String> {
        let (value, code) = split_code(text, "05")?;
        Ok(DeclineRule {
            matcher: Matcher::PanPrefix(digits(&value, "PAN prefix")?),
            response_code: code,
        })
    }

    /// Parses `LOW-HIGH[:CODE]` (equal-length digit prefixes, default code `05`).
    ///
    /// # Errors
    /// A message naming the bad part.
    pub fn pan_range(text: &str) -> Result<DeclineRule, String> {
        let (value, code) = split_code(text, "05")?;
        let (low, high) = value
            .split_once('-')
            .ok_or_else(|| format!("PAN range {value:?} must be LOW-HIGH"))?;
        let (low, high) = (
            digits(low, "PAN range low")?,
            digits(high, "PAN range high")?,
        );
        if low.len() != high.len() || low > high {
            return Err(format!(
                "PAN range {value:?}: LOW and HIGH must have the same length and LOW <= HIGH"
            ));
        }
        Ok(DeclineRule {
            matcher: Matcher::PanRange { low, high },
            response_code: code,
        })
    }

    fn matches(&self, request: &Message) -> bool {
        let pan = request.get(2).unwrap_or("");
        match &self.matcher {
            Matcher::AmountOver(limit) => request
                .get(4)
                .and_then(|a| a.parse::<i64>().ok())
                .is_some_and(|amount| amount > *limit),
            Matcher::PanPrefix(prefix) => pan.starts_with(prefix.as_str()),
            Matcher::PanRange { low, high } => pan
                .get(..low.len())
                .is_some_and(|p| p >= low.as_str() && p <= high.as_str()),
        }
    }
}

/// A fault injected on the message types of [`AcquirerConfig::fault_mtis`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Fault {
    /// No fault: answer.
    None,
    /// Process the request but never answer (the connection stays open).
    Timeout,
    /// Process the request, then close the connection without answering.
    Drop,
    /// Close every connection at once, before reading (all message types).
    Unreachable,
}

/// The simulator's behaviour.
#[derive(Clone, Debug)]
pub struct AcquirerConfig {
    /// Decline rules, first match wins.
    pub decline_rules: Vec<DeclineRule>,
    /// The fault to inject.
    pub fault: Fault,
    /// Message types the fault applies to.
    pub fault_mtis: Vec<Mti>,
    /// Only the first this-many matching messages get the fault; 0 = all.
    pub fault_count: u64,
    /// Delay before every answer, milliseconds.
    pub delay_ms: u64,
}

impl Default for AcquirerConfig {
    fn default() -> AcquirerConfig {
        AcquirerConfig {
            decline_rules: Vec::new(),
            fault: Fault::None,
            fault_mtis: vec![Mti::AuthorizationRequest, Mti::FinancialRequest],
            fault_count: 0,
            delay_ms: 0,
        }
    }
}

/// What the server does with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this response.
    Respond(Message),
    /// Send nothing; keep the connection.
    Silent,
    /// Close the connection without answering.
    Close,
}

/// Raw and unique arrivals of one class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Arrivals {
    /// Every decoded message of the class, repeats and duplicates included.
    pub raw: u64,
    /// Distinct transactions of the class.
    pub unique: u64,
}

/// One remembered transaction, as shown in the stats.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TransactionStat {
    /// `authorization`, `financial`, `advice` or `reversal`.
    pub class: &'static str,
    /// Field 41.
    pub terminal: String,
    /// Field 11.
    pub stan: String,
    /// Field 37 (empty if absent).
    pub rrn: String,
    /// Field 4 in minor units (0 if absent).
    pub amount_minor: i64,
    /// Messages that arrived for this transaction (raw).
    pub raw: u64,
    /// The response code given.
    pub response_code: String,
    /// Whether a reversal un-charged it.
    pub reversed: bool,
}

/// The simulator's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Address the server listens on.
    pub listen: String,
    /// Connections accepted.
    pub connections: u64,
    /// Every decoded message.
    pub raw_arrivals: u64,
    /// Distinct transactions (a repeat or duplicate adds to `raw_arrivals` only).
    pub unique_arrivals: u64,
    /// Arrivals per class (`authorization`, `financial`, `advice`, `reversal`).
    pub by_class: BTreeMap<&'static str, Arrivals>,
    /// Raw arrivals per MTI (`"0221"`: 2).
    pub raw_by_mti: BTreeMap<String, u64>,
    /// Responses sent.
    pub responses_sent: u64,
    /// Requests processed and approved (authorizations, financials, advices).
    pub approved: u64,
    /// Requests processed and declined.
    pub declined: u64,
    /// Approved transactions later reversed.
    pub reversed: u64,
    /// Approved and not reversed: what the cardholder is charged (count).
    pub charges: u64,
    /// Sum of `charges` amounts, minor units (currency per field 49; tests use one).
    pub charged_minor: i64,
    /// Frames that did not decode, or had a bad length.
    pub decode_errors: u64,
    /// Faults injected.
    pub faults_injected: u64,
    /// Every transaction, in arrival order (serialized: the first
    /// [`STATS_TRANSACTIONS_SHOWN_MAX`] only, since the stats file is rewritten after
    /// every message; the counters above cover all of them).
    #[serde(serialize_with = "serialize_first_transactions")]
    pub transactions: Vec<TransactionStat>,
}

/// Transactions listed in the serialized [`Stats`] (the stats file): rewriting a list of
/// every transaction after every message would cost O(n²) over a long run.
pub const STATS_TRANSACTIONS_SHOWN_MAX: usize = 100;

fn serialize_first_transactions<S: serde::Serializer>(
    transactions: &[TransactionStat],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(transactions.iter().take(STATS_TRANSACTIONS_SHOWN_MAX))
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct TxnKey {
    class: &'static str,
    terminal: String,
    stan: String,
    rrn: String,
}

struct Txn {
    index: usize,
    fingerprint: [u8; 32],
    response: Message,
    approved: bool,
    reversed: bool,
}

/// The simulator's decision core: feed it decoded requests, get actions. No I/O.
pub struct Acquirer {
    config: AcquirerConfig,
    txns: HashMap<TxnKey, Txn>,
    stats: Stats,
    faults_left: Option<u64>,
}

fn class_of(mti: Mti) -> Option<&'static str> {
    match mti {
        Mti::AuthorizationRequest => Some("authorization"),
        Mti::FinancialRequest => Some("financial"),
        Mti::FinancialAdvice | Mti::FinancialAdviceRepeat => Some("advice"),
        Mti::ReversalRequest
        | Mti::ReversalRequestRepeat
        | Mti::ReversalAdvice
        | Mti::ReversalAdviceRepeat => Some("reversal"),
        _ => None,
    }
}

/// The content that must be equal between a message and its repeat: every field but
/// 7 (transmission time, new on every send).
fn fingerprint(message: &Message) -> [u8; 32] {
    let mut hash = Sha256::new();
    for (n, value) in message.fields().filter(|(n, _)| *n != 7) {
        hash.update([n]);
        hash.update((value.len() as u64).to_be_bytes());
        hash.update(value.as_bytes());
    }
    hash.finalize().into()
}

impl Acquirer {
    /// A simulator with `config`.
    pub fn new(config: AcquirerConfig) -> Acquirer {
        let faults_left = (config.fault_count > 0).then_some(config.fault_count);
        Acquirer {
            config,
            txns: HashMap::new(),
            stats: Stats::default(),
            faults_left,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &AcquirerConfig {
        &self.config
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Mutable counters (for the server's connection and decode-error counts).
    pub fn stats_mut(&mut self) -> &mut Stats {
        &mut self.stats
    }

    /// Decides what to do with one decoded message.
    pub fn handle(&mut self, request: &Message) -> Action {
        let mti = request.mti();
        self.stats.raw_arrivals += 1;
        *self
            .stats
            .raw_by_mti
            .entry(mti.code().to_owned())
            .or_default() += 1;
        let (Some(class), Some(response_mti)) = (class_of(mti), mti.response()) else {
            // A response sent to the acquirer: a protocol error.
            return Action::Close;
        };
        self.stats.by_class.entry(class).or_default().raw += 1;
        let response = self.process(request, class, response_mti);
        if self.config.fault_mtis.contains(&mti) && self.take_fault() {
            self.stats.faults_injected += 1;
            return match self.config.fault {
                Fault::Timeout => Action::Silent,
                Fault::Drop | Fault::Unreachable => Action::Close,
                Fault::None => Action::Respond(response),
            };
        }
        self.stats.responses_sent += 1;
        Action::Respond(response)
    }

    fn take_fault(&mut self) -> bool {
        if self.config.fault == Fault::None {
            return false;
        }
        match &mut self.faults_left {
            None => true,
            Some(0) => false,
            Some(left) => {
                *left -= 1;
                true
            }
        }
    }

    fn process(&mut self, request: &Message, class: &'static str, response_mti: Mti) -> Message {
        let mut response = echo(request, response_mti);
        let (Some(terminal), Some(stan)) = (request.get(41), request.get(11)) else {
            return with_code(response, "30");
        };
        let rrn = request.get(37).unwrap_or("").to_owned();
        let key = if class == "reversal" {
            let Some(original) = request.get(90) else {
                return with_code(response, "30");
            };
            TxnKey {
                class,
                terminal: terminal.to_owned(),
                stan: original.to_owned(),
                rrn: rrn.clone(),
            }
        } else {
            TxnKey {
                class,
                terminal: terminal.to_owned(),
                stan: stan.to_owned(),
                rrn: rrn.clone(),
            }
        };
        let print = fingerprint(request);
        if let Some(txn) = self.txns.get(&key) {
            let index = txn.index;
            let answer = if txn.fingerprint != print || txn.reversed {
                with_code(response, "94")
            } else {
                let mut original = txn.response.clone();
                original.set_mti(response_mti);
                original
            };
            if let Some(stat) = self.stats.transactions.get_mut(index) {
                stat.raw += 1;
            }
            return answer;
        }
        if self.txns.len() >= TRANSACTIONS_MAX {
            return with_code(response, "96");
        }
        self.stats.unique_arrivals += 1;
        self.stats.by_class.entry(class).or_default().unique += 1;
        let amount_minor = request
            .get(4)
            .and_then(|a| a.parse::<i64>().ok())
            .unwrap_or(0);
        let (code, approved) = if class == "reversal" {
            (self.reverse(request, terminal, &rrn), false)
        } else {
            let rule = self
                .config
                .decline_rules
                .iter()
                .find(|r| r.matches(request));
            match rule {
                Some(rule) => {
                    self.stats.declined += 1;
                    (rule.response_code.clone(), false)
                }
                None => {
                    self.stats.approved += 1;
                    self.stats.charges += 1;
                    self.stats.charged_minor =
                        self.stats.charged_minor.saturating_add(amount_minor);
                    let auth_id = authorization_id(&key);
                    // Six alphanumerics: always valid for field 38.
                    let _ = response.set(38, &auth_id);
                    ("00".to_owned(), true)
                }
            }
        };
        response = with_code(response, &code);
        let index = self.stats.transactions.len();
        self.stats.transactions.push(TransactionStat {
            class,
            terminal: terminal.to_owned(),
            stan: stan.to_owned(),
            rrn,
            amount_minor,
            raw: 1,
            response_code: code,
            reversed: false,
        });
        self.txns.insert(
            key,
            Txn {
                index,
                fingerprint: print,
                response: response.clone(),
                approved,
                reversed: false,
            },
        );
        response
    }

    /// Un-charges the original of a reversal; returns the response code.
    fn reverse(&mut self, reversal: &Message, terminal: &str, rrn: &str) -> String {
        let original = reversal.get(90).unwrap_or("");
        let (Some(original_mti), Some(original_stan)) = (
            original.get(..4).and_then(|m| Mti::from_code(m.as_bytes())),
            original.get(4..10),
        ) else {
            return "30".to_owned();
        };
        let Some(class) = class_of(original_mti) else {
            return "12".to_owned();
        };
        let key = TxnKey {
            class,
            terminal: terminal.to_owned(),
            stan: original_stan.to_owned(),
            rrn: rrn.to_owned(),
        };
        let Some(txn) = self.txns.get_mut(&key) else {
            return "25".to_owned();
        };
        if txn.approved && !txn.reversed {
            txn.reversed = true;
            self.stats.reversed += 1;
            self.stats.charges = self.stats.charges.saturating_sub(1);
            if let Some(stat) = self.stats.transactions.get_mut(txn.index) {
                stat.reversed = true;
                self.stats.charged_minor =
                    self.stats.charged_minor.saturating_sub(stat.amount_minor);
            }
        }
        "00".to_owned()
    }
}

/// The response skeleton: the request's fields that a response echoes.
fn echo(request: &Message, mti: Mti) -> Message {
    let mut response = Message::new(mti);
    for n in [2u8, 3, 4, 7, 11, 12, 13, 37, 41, 42, 49, 90] {
        if let Some(value) = request.get(n) {
            // The request's values passed the same format checks on decode.
            let _ = response.set(n, value);
        }
    }
    response
}

fn with_code(mut response: Message, code: &str) -> Message {
    // Codes come from validated rules or constants: 2 alphanumerics.
    let _ = response.set(39, code);
    response
}

fn authorization_id(key: &TxnKey) -> String {
    let digest = Sha256::digest(format!(
        "{}|{}|{}|{}",
        key.class, key.terminal, key.stan, key.rrn
    ));
    hex::encode_upper(&digest[..3])
}

/// Where the server writes what it does.
#[derive(Clone, Debug, Default)]
pub struct ServerFiles {
    /// Stats JSON, rewritten (atomically) at start and after every message.
    pub stats_file: Option<PathBuf>,
    /// Every frame received and sent, one line each: `recv <hex>` / `sent <hex>`
    /// (length prefix included).
    pub capture_file: Option<PathBuf>,
}

struct Shared {
    acquirer: Mutex<Acquirer>,
    files: ServerFiles,
    capture: Mutex<Option<std::fs::File>>,
}

impl Shared {
    fn with<T>(&self, f: impl FnOnce(&mut Acquirer) -> T) -> T {
        let mut guard = self
            .acquirer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let out = f(&mut guard);
        if let Some(path) = &self.files.stats_file {
            if let Err(error) = write_stats(path, guard.stats()) {
                tracing::warn!(%error, "cannot write stats file");
            }
        }
        out
    }

    fn capture(&self, direction: &str, frame: &[u8]) {
        use std::io::Write;
        let mut guard = self
            .capture
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(file) = guard.as_mut() {
            let line = format!("{direction} {}\n", hex::encode(frame));
            if let Err(error) = file.write_all(line.as_bytes()).and_then(|()| file.flush()) {
                tracing::warn!(%error, "cannot write capture file");
            }
        }
    }
}

fn write_stats(path: &std::path::Path, stats: &Stats) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(stats).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, json)?;
    std::fs::rename(&tmp, path)
}

/// Serves the simulator on `listener` until `max_duration` has passed.
///
/// # Errors
/// Only if the capture file cannot be created; connection errors are logged and counted.
pub async fn serve(
    listener: TcpListener,
    acquirer: Acquirer,
    files: ServerFiles,
    max_duration: Duration,
) -> anyhow::Result<Stats> {
    let capture = match &files.capture_file {
        Some(path) => Some(std::fs::File::create(path)?),
        None => None,
    };
    let shared = Arc::new(Shared {
        acquirer: Mutex::new(acquirer),
        files,
        capture: Mutex::new(capture),
    });
    let listen = listener.local_addr()?;
    shared.with(|a| a.stats_mut().listen = listen.to_string());
    let permits = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS_MAX));
    let accept_loop = async {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                tracing::warn!(%peer, "too many connections; closing");
                continue;
            };
            let shared = shared.clone();
            tokio::spawn(async move {
                if let Err(error) = connection(stream, &shared).await {
                    tracing::debug!(%peer, %error, "connection ended");
                }
                drop(permit);
            });
        }
    };
    // The accept loop never ends by itself; the time bound ends it.
    let _ = tokio::time::timeout(max_duration, accept_loop).await;
    let stats = shared.with(|a| a.stats().clone());
    Ok(stats)
}

async fn connection(mut stream: TcpStream, shared: &Shared) -> anyhow::Result<()> {
    let (fault, delay) = shared.with(|a| {
        a.stats_mut().connections += 1;
        (a.config().fault, Duration::from_millis(a.config().delay_ms))
    });
    if fault == Fault::Unreachable {
        shared.with(|a| a.stats_mut().faults_injected += 1);
        return Ok(());
    }
    let mut decoder = FrameDecoder::default();
    let mut buffer = [0u8; 1024];
    let mut frames = 0usize;
    while frames < FRAMES_PER_CONNECTION_MAX {
        let body = match decoder.next_frame() {
            Ok(Some(body)) => body,
            Ok(None) => {
                let read = tokio::time::timeout(
                    Duration::from_secs(IDLE_TIMEOUT_SECS),
                    stream.read(&mut buffer),
                )
                .await??;
                if read == 0 {
                    return Ok(());
                }
                decoder.push(&buffer[..read]);
                continue;
            }
            Err(error) => {
                shared.with(|a| a.stats_mut().decode_errors += 1);
                anyhow::bail!("bad frame: {error}");
            }
        };
        frames += 1;
        let mut frame = (body.len() as u16).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        shared.capture("recv", &frame);
        let message = match Message::decode(&body) {
            Ok(message) => message,
            Err(error) => {
                shared.with(|a| a.stats_mut().decode_errors += 1);
                anyhow::bail!("{error}");
            }
        };
        tracing::info!(%message, "received");
        match shared.with(|a| a.handle(&message)) {
            Action::Respond(response) => {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                let frame = iso8583::encode_frame(&response)?;
                stream.write_all(&frame).await?;
                shared.capture("sent", &frame);
                tracing::info!(%response, "sent");
            }
            Action::Silent => tracing::info!("fault: not answering"),
            Action::Close => {
                tracing::info!("fault: closing the connection");
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Parses a comma-separated MTI list (`0100,0200`).
///
/// # Errors
/// Names the first unknown MTI.
pub fn parse_mtis(text: &str) -> Result<Vec<Mti>, String> {
    text.split(',')
        .map(|code| {
            Mti::from_code(code.trim().as_bytes()).ok_or_else(|| format!("unknown MTI {code:?}"))
        })
        .collect()
}

/// `true` if `addr` is a loopback address.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(mti: Mti, stan: &str, amount: &str, pan: &str) -> Message {
        Message::new(mti)
            .with(2, pan)
            .and_then(|m| m.with(4, amount))
            .and_then(|m| m.with(11, stan))
            .and_then(|m| m.with(37, "ABCDEF123456"))
            .and_then(|m| m.with(41, "TILL0001"))
            .expect("valid")
    }

    fn code(action: &Action) -> Option<&str> {
        match action {
            Action::Respond(m) => m.get(39),
            _ => None,
        }
    }

    #[test]
    fn rules_parse_and_match() {
        assert!(DeclineRule::amount_over("5000:5x1").is_err());
        assert!(DeclineRule::pan_range("4000-39").is_err());
        let mut a = Acquirer::new(AcquirerConfig {
            decline_rules: vec![
                DeclineRule::amount_over("5000").expect("rule"),
                DeclineRule::pan_prefix("5555:14").expect("rule"),
                DeclineRule::pan_range("400000-400099:43").expect("rule"),
            ],
            ..AcquirerConfig::default()
        });
        let r = |stan, amount, pan| request(Mti::AuthorizationRequest, stan, amount, pan);
        assert_eq!(
            code(&a.handle(&r("000001", "000000005000", "4111111111111111"))),
            Some("00")
        );
        assert_eq!(
            code(&a.handle(&r("000002", "000000005001", "4111111111111111"))),
            Some("51")
        );
        assert_eq!(
            code(&a.handle(&r("000003", "000000000100", "5555555555554444"))),
            Some("14")
        );
        assert_eq!(
            code(&a.handle(&r("000004", "000000000100", "4000000000000002"))),
            Some("43")
        );
        assert_eq!(a.stats().charges, 1);
        assert_eq!(a.stats().declined, 3);
    }

    #[test]
    fn duplicates_repeats_and_reversals_are_exactly_once() {
        let mut a = Acquirer::new(AcquirerConfig::default());
        let auth = request(
            Mti::AuthorizationRequest,
            "000001",
            "000000001000",
            "4111111111111111",
        );
        let first = a.handle(&auth);
        assert_eq!(
            a.handle(&auth),
            first,
            "a duplicate gets the original response"
        );
        let mut other = auth.clone();
        other.set(4, "000000002000").expect("amount");
        assert_eq!(code(&a.handle(&other)), Some("94"));
        assert_eq!(a.stats().charges, 1);
        assert_eq!(
            a.stats().by_class["authorization"],
            Arrivals { raw: 3, unique: 1 }
        );

        let advice = request(
            Mti::FinancialAdvice,
            "000002",
            "000000000500",
            "4111111111111111",
        );
        let mut repeat = advice.clone();
        repeat.set_mti(Mti::FinancialAdviceRepeat);
        assert_eq!(code(&a.handle(&advice)), Some("00"));
        assert_eq!(code(&a.handle(&repeat)), Some("00"));
        assert_eq!(a.stats().by_class["advice"], Arrivals { raw: 2, unique: 1 });
        assert_eq!(a.stats().charged_minor, 1500);

        let mut reversal = Message::new(Mti::ReversalRequest)
            .with(11, "000003")
            .and_then(|m| m.with(37, "ABCDEF123456"))
            .and_then(|m| m.with(41, "TILL0001"))
            .and_then(|m| m.with(90, &format!("0100000001{}", "0".repeat(32))))
            .expect("valid");
        assert_eq!(code(&a.handle(&reversal)), Some("00"));
        reversal.set_mti(Mti::ReversalRequestRepeat);
        assert_eq!(code(&a.handle(&reversal)), Some("00"));
        assert_eq!(a.stats().reversed, 1);
        assert_eq!(a.stats().charges, 1);
        assert_eq!(a.stats().charged_minor, 500);
        // The reversed authorization is not approved again.
        assert_eq!(code(&a.handle(&auth)), Some("94"));
        // A reversal of an unknown transaction.
        reversal
            .set(90, &format!("0100999999{}", "0".repeat(32)))
            .expect("90");
        assert_eq!(code(&a.handle(&reversal)), Some("25"));
    }

    #[test]
    fn faults_apply_to_the_listed_types_and_count() {
        let mut a = Acquirer::new(AcquirerConfig {
            fault: Fault::Timeout,
            fault_count: 1,
            ..AcquirerConfig::default()
        });
        let auth = request(
            Mti::AuthorizationRequest,
            "000001",
            "000000001000",
            "4111111111111111",
        );
        assert_eq!(a.handle(&auth), Action::Silent);
        assert_eq!(code(&a.handle(&auth)), Some("00"));
        let advice = request(
            Mti::FinancialAdvice,
            "000002",
            "000000000500",
            "4111111111111111",
        );
        assert_eq!(code(&a.handle(&advice)), Some("00"));
        assert_eq!(a.stats().faults_injected, 1);
        assert_eq!(a.stats().charges, 2);
    }
}
