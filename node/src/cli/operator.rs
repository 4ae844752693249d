//! `posmesh operator …`, through a device's API:
//! - `set`: add an operator or change one's name, role or PIN (`POST /v1/operators`), on
//!   the authority of an operator (`--as`) whose role allows it; the store's first
//!   operator (an admin) is set without `--as`.
//! - `unlock`: a manager or admin (`--as`) lifts an operator's PIN lockout on one device
//!   (`POST /v1/operators/{id}/unlock`).
//!
//! PINs are never taken on the command line (where other users can see them): they are
//! read from environment variables or from stdin, one per line (with a prompt and no
//! echo at a terminal, [`super::pin_prompt`]).

use super::operator_pin::{with_operator, OperatorPinArgs};
use super::status::base_url;
use anyhow::{bail, Context};
use clap::Subcommand;

/// The environment variable `posmesh operator set` reads the operator's new PIN from
/// (else stdin).
pub const NEW_PIN_ENV: &str = "POSMESH_NEW_PIN";

/// `posmesh operator …`.
#[derive(Subcommand, Clone, Debug)]
pub enum OperatorCommand {
    /// Lift an operator's PIN lockout (after 5 wrong PINs) on the device whose API is
    /// given, before the 5 minutes are over. Needs an authorising manager or admin
    /// (`--as`, or POSMESH_OPERATOR_ID) whose role is above the operator's (an admin may
    /// unlock an admin); their PIN is read from POSMESH_OPERATOR_PIN or else from the
    /// first line of stdin.
    Unlock {
        /// The locked-out operator.
        #[arg(long)]
        operator: String,
        /// The manager (or admin) unlocking, and their PIN.
        #[command(flatten)]
        by: OperatorPinArgs,
        /// Deprecated: the old name of `--as` (its PIN is read as `--as`'s).
        #[arg(long, hide = true)]
        manager: Option<String>,
        /// Sales API address of the device the operator is locked out on.
        #[arg(long, env = "POSMESH_API", default_value = "127.0.0.1:7070")]
        api: String,
    },
    /// Add an operator, or change one's name, role or PIN, store-wide. Needs an
    /// authorising operator (`--as`, or POSMESH_OPERATOR_ID) whose role allows the
    /// change: managers and admins manage cashiers and supervisors, only admins manage
    /// managers and admins, anyone may change their own PIN. Omit `--as` only for the
    /// store's first operator, who must be an admin. PINs are read from
    /// POSMESH_OPERATOR_PIN (the authorising operator's) and POSMESH_NEW_PIN (the
    /// operator's new PIN), or else from stdin, one per line, in that order.
    Set {
        /// The operator's id (lowercase letters, digits and `-`).
        #[arg(long)]
        operator: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// The role.
        #[arg(long, value_parser = ["cashier", "supervisor", "manager", "admin"])]
        role: String,
        /// The authorising operator (manager or admin; or the operator themselves for
        /// their own PIN) and their PIN.
        #[command(flatten)]
        by: OperatorPinArgs,
        /// Sales API address of a device of the store.
        #[arg(long, env = "POSMESH_API", default_value = "127.0.0.1:7070")]
        api: String,
    },
    /// Disable an operator for good, store-wide: their PIN opens nothing any more, their
    /// id can never be set again, and their open shifts close in the same entry (all
    /// their shifts stay on record). A manager disables cashiers and supervisors, only an
    /// admin managers and admins; never the store's only admin. The authorising
    /// operator's PIN is read from POSMESH_OPERATOR_PIN or else from the first line of
    /// stdin.
    Disable {
        /// The operator to disable.
        #[arg(long)]
        operator: String,
        /// The authorising manager or admin (`--as`, required) and their PIN.
        #[command(flatten)]
        by: OperatorPinArgs,
        /// Sales API address of a device of the store.
        #[arg(long, env = "POSMESH_API", default_value = "127.0.0.1:7070")]
        api: String,
    },
}

/// Runs a `posmesh operator` command and prints its outcome.
///
/// # Errors
/// No PIN given, the node cannot be reached, or it refuses (unknown operator, not a
/// manager, wrong PIN, role insufficient, …) — the node's code and message are quoted.
pub async fn run_operator(command: OperatorCommand) -> anyhow::Result<()> {
    match command {
        OperatorCommand::Unlock {
            operator,
            mut by,
            manager,
            api,
        } => {
            if let Some(manager) = manager {
                eprintln!("warning: --manager is deprecated: use --as {manager}");
                by.authorised_by = Some(manager);
            }
            let by = by.require("unlock an operator")?;
            unlock(operator, by, api).await
        }
        OperatorCommand::Disable { operator, by, api } => {
            let by = by.require("disable an operator")?;
            let url = format!(
                "{}/v1/operators/{}/disable",
                base_url(&api),
                percent_encode_segment(&operator)
            );
            let request = by.headers(reqwest::Client::new().post(&url));
            let body = answer(&url, request).await?;
            println!("{}", disable_line(&operator, &by.id, &body));
            Ok(())
        }
        OperatorCommand::Set {
            operator,
            name,
            role,
            by,
            api,
        } => {
            let authoriser = by.resolve()?;
            let new_pin = match super::pin_prompt::env_pin(NEW_PIN_ENV)? {
                Some(pin) => pin,
                None => super::pin_prompt::read_pin_line(
                    &format!("new PIN of {operator}"),
                    NEW_PIN_ENV,
                )?,
            };
            let url = format!("{}/v1/operators", base_url(&api));
            let request = reqwest::Client::new().post(&url).json(&serde_json::json!({
                "operator_id": operator, "name": name, "role": role, "pin": new_pin,
            }));
            let request = with_operator(request, authoriser.as_ref());
            let body = answer(&url, request).await?;
            println!(
                "{}",
                set_line(
                    &operator,
                    &role,
                    authoriser.as_ref().map(|by| by.id.as_str()),
                    body["log_index"].as_u64()
                )
            );
            Ok(())
        }
    }
}

async fn unlock(
    operator: String,
    by: super::operator_pin::OperatorPin,
    api: String,
) -> anyhow::Result<()> {
    let url = format!(
        "{}/v1/operators/{}/unlock",
        base_url(&api),
        percent_encode_segment(&operator)
    );
    let request = by.headers(reqwest::Client::new().post(&url));
    let body = answer(&url, request).await?;
    println!(
        "{}",
        unlock_line(
            &operator,
            &by.id,
            body["was_locked"].as_bool().unwrap_or(false),
            body["failures_cleared"].as_u64().unwrap_or(0)
        )
    );
    Ok(())
}

/// Sends `request` and returns the JSON answer of a 2xx, or an error quoting the node's
/// code and message.
pub(super) async fn answer(
    url: &str,
    request: reqwest::RequestBuilder,
) -> anyhow::Result<serde_json::Value> {
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!(
            "{url}: {status}: {}: {}",
            body["error"]["code"].as_str().unwrap_or("error"),
            body["error"]["message"].as_str().unwrap_or("")
        );
    }
    Ok(body)
}

/// What `posmesh operator unlock` prints: one shape whether the operator was locked out
/// or only had wrong PINs counted (or none).
fn unlock_line(operator: &str, manager: &str, was_locked: bool, failures_cleared: u64) -> String {
    format!(
        "unlocked {operator} on this device (by {manager}): was locked out: {}; wrong PINs cleared: {failures_cleared}",
        if was_locked { "yes" } else { "no" }
    )
}

/// What `posmesh operator disable` prints: who, by whom, at which log index, and the
/// shifts the disable closed (the API's `outcome.shifts_closed`).
fn disable_line(operator: &str, by: &str, body: &serde_json::Value) -> String {
    let closed: Vec<&str> = body["outcome"]["shifts_closed"]
        .as_array()
        .map(|ids| ids.iter().filter_map(|id| id.as_str()).collect())
        .unwrap_or_default();
    let shifts = if closed.is_empty() {
        "no open shift".to_owned()
    } else {
        format!("closed open shift(s) {}", closed.join(", "))
    };
    format!(
        "operator {operator} disabled for good by {by} (log index {}); {shifts}",
        body["log_index"]
    )
}

/// What `posmesh operator set` prints.
fn set_line(
    operator: &str,
    role: &str,
    authorised_by: Option<&str>,
    log_index: Option<u64>,
) -> String {
    let by = authorised_by.map_or_else(
        || "as the store's first operator".to_owned(),
        |id| format!("authorised by {id}"),
    );
    let index = log_index.map_or_else(String::new, |i| format!(", log index {i}"));
    format!("set {operator} as {role} ({by}{index})")
}

/// `value` safe as one URL path segment (RFC 3986 unreserved characters kept).
fn percent_encode_segment(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn unlock_prints_one_shape_locked_or_not() {
        let locked = super::unlock_line("bob", "mia", true, 5);
        let not = super::unlock_line("bob", "mia", false, 2);
        assert_eq!(
            locked,
            "unlocked bob on this device (by mia): was locked out: yes; wrong PINs cleared: 5"
        );
        assert_eq!(
            not,
            "unlocked bob on this device (by mia): was locked out: no; wrong PINs cleared: 2"
        );
    }

    #[test]
    fn set_says_who_authorised() {
        assert_eq!(
            super::set_line("bob", "cashier", Some("mia"), Some(7)),
            "set bob as cashier (authorised by mia, log index 7)"
        );
        assert_eq!(
            super::set_line("ada", "admin", None, None),
            "set ada as admin (as the store's first operator)"
        );
    }

    #[test]
    fn disable_names_the_shifts_it_closed() {
        let body =
            serde_json::json!({"log_index": 9, "outcome": {"shifts_closed": ["s-1", "s-2"]}});
        assert_eq!(
            super::disable_line("cat", "mia", &body),
            "operator cat disabled for good by mia (log index 9); closed open shift(s) s-1, s-2"
        );
        let body = serde_json::json!({"log_index": 9, "outcome": {"shifts_closed": []}});
        assert!(super::disable_line("cat", "mia", &body).ends_with("; no open shift"));
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(super::percent_encode_segment("bob-1"), "bob-1");
        assert_eq!(super::percent_encode_segment("a/b c"), "a%2Fb%20c");
    }
}
