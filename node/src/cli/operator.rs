//! `posmesh operator unlock`: a manager lifts an operator's PIN lockout on one device,
//! through that device's API (`POST /v1/operators/{id}/unlock`).

use super::status::base_url;
use anyhow::{bail, Context};
use clap::Subcommand;
use std::io::BufRead;

/// `posmesh operator …`.
#[derive(Subcommand, Clone, Debug)]
pub enum OperatorCommand {
    /// Lift an operator's PIN lockout (after 5 wrong PINs) on the device whose API is
    /// given, before the 5 minutes are over. Needs a manager's or admin's id and PIN; the
    /// PIN is read from POSMESH_MANAGER_PIN or else from the first line of stdin.
    Unlock {
        /// The locked-out operator.
        #[arg(long)]
        operator: String,
        /// The manager (or admin) unlocking.
        #[arg(long)]
        manager: String,
        /// The manager's PIN (prefer stdin: an environment variable can be read by
        /// other processes of the same user).
        #[arg(long, env = "POSMESH_MANAGER_PIN", hide_env_values = true, hide = true)]
        manager_pin: Option<String>,
        /// Sales API address of the device the operator is locked out on.
        #[arg(long, env = "POSMESH_API", default_value = "127.0.0.1:7070")]
        api: String,
    },
}

/// Runs a `posmesh operator` command and prints its outcome.
///
/// # Errors
/// No PIN given, the node cannot be reached, or it refuses (unknown operator, not a
/// manager, wrong manager PIN, …) — the node's message is quoted.
pub async fn run_operator(command: OperatorCommand) -> anyhow::Result<()> {
    let OperatorCommand::Unlock {
        operator,
        manager,
        manager_pin,
        api,
    } = command;
    let pin = match manager_pin {
        Some(pin) => pin,
        None => read_pin_line()?,
    };
    let url = format!(
        "{}/v1/operators/{}/unlock",
        base_url(&api),
        percent_encode_segment(&operator)
    );
    let response = reqwest::Client::new()
        .post(&url)
        .json(&serde_json::json!({"manager_id": manager, "manager_pin": pin}))
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!(
            "{url}: {status}: {}",
            body["error"]["message"].as_str().unwrap_or("error")
        );
    }
    if body["was_locked"].as_bool() == Some(true) {
        println!("unlocked {operator} on this device (by {manager})");
    } else {
        println!(
            "{operator} was not locked out on this device; {} wrong PINs forgotten",
            body["failures_cleared"].as_u64().unwrap_or(0)
        );
    }
    Ok(())
}

/// The PIN from stdin's first line (without the line end).
fn read_pin_line() -> anyhow::Result<String> {
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprint!("manager PIN: ");
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the manager PIN from stdin")?;
    let pin = line.trim_end_matches(['\r', '\n']).to_owned();
    if pin.is_empty() {
        bail!("no manager PIN: set POSMESH_MANAGER_PIN or type it on stdin");
    }
    Ok(pin)
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
    fn path_segments_are_percent_encoded() {
        assert_eq!(super::percent_encode_segment("bob-1"), "bob-1");
        assert_eq!(super::percent_encode_segment("a/b c"), "a%2Fb%20c");
    }
}
