//! The authorising operator of a guarded command (`posmesh operator set/disable`,
//! `posmesh store remove-device/revoke-certificate`): `--as` (or `POSMESH_OPERATOR_ID`)
//! and their PIN from `POSMESH_OPERATOR_PIN` or else the first line of stdin — never the
//! command line, where other users can see it. Sent as the API's `X-Operator-Id` /
//! `X-Operator-Pin` headers ([`crate::api::operator_auth`]).

use clap::Args;

/// The environment variable an authorising operator's PIN may come from (else stdin).
pub const OPERATOR_PIN_ENV: &str = "POSMESH_OPERATOR_PIN";

/// `--as OPERATOR`, flattened into every guarded command; the operator's PIN comes from
/// [`OPERATOR_PIN_ENV`] or stdin, never from a flag ([`super::pin_prompt`]).
#[derive(Args, Clone, Debug, Default)]
pub struct OperatorPinArgs {
    /// The authorising operator, whose role allows the command (see the README's role
    /// matrix); their PIN is read from POSMESH_OPERATOR_PIN or else from the first line
    /// of stdin (typed unseen at a terminal). Omit only while the store has no operator.
    #[arg(long = "as", env = "POSMESH_OPERATOR_ID", value_name = "OPERATOR")]
    pub authorised_by: Option<String>,
}

/// An authorising operator's id and PIN, ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorPin {
    /// The operator's id.
    pub id: String,
    /// Their PIN.
    pub pin: String,
}

impl OperatorPinArgs {
    /// The operator and PIN (`None` without `--as`), the PIN from [`OPERATOR_PIN_ENV`] or
    /// else read from stdin.
    ///
    /// # Errors
    /// The variable not UTF-8; stdin unreadable or empty while a PIN is needed.
    pub fn resolve(self) -> anyhow::Result<Option<OperatorPin>> {
        if self.authorised_by.is_none() {
            return Ok(None);
        }
        let pin = super::pin_prompt::env_pin(OPERATOR_PIN_ENV)?;
        self.resolve_with(pin)
    }

    /// [`OperatorPinArgs::resolve`] with the PIN `pin` if given, else read from stdin.
    fn resolve_with(self, pin: Option<String>) -> anyhow::Result<Option<OperatorPin>> {
        let Some(id) = self.authorised_by else {
            return Ok(None);
        };
        let pin = match pin {
            Some(pin) => pin,
            None => super::pin_prompt::read_pin_line(&format!("PIN of {id}"), OPERATOR_PIN_ENV)?,
        };
        Ok(Some(OperatorPin { id, pin }))
    }

    /// [`OperatorPinArgs::resolve`] for a command that always needs an operator.
    ///
    /// # Errors
    /// No `--as` (naming what needs it), or those of [`OperatorPinArgs::resolve`].
    pub fn require(self, operation: &str) -> anyhow::Result<OperatorPin> {
        self.resolve()?.ok_or_else(|| {
            anyhow::anyhow!(
                "to {operation}, name the authorising operator with --as (or POSMESH_OPERATOR_ID)"
            )
        })
    }
}

impl OperatorPin {
    /// `request` with the `X-Operator-Id` / `X-Operator-Pin` headers.
    pub fn headers(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request
            .header(crate::api::operator_auth::OPERATOR_ID_HEADER, &self.id)
            .header(crate::api::operator_auth::OPERATOR_PIN_HEADER, &self.pin)
    }
}

/// `request` with the operator's headers, if there is one.
pub fn with_operator(
    request: reqwest::RequestBuilder,
    operator: Option<&OperatorPin>,
) -> reqwest::RequestBuilder {
    match operator {
        Some(operator) => operator.headers(request),
        None => request,
    }
}

#[cfg(test)]
mod tests {
    use super::OperatorPinArgs;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        operator: OperatorPinArgs,
    }

    #[test]
    fn as_and_a_pin_given_without_stdin() {
        let cli = Cli::try_parse_from(["x", "--as", "mia"]).expect("parses");
        let operator = cli
            .operator
            .resolve_with(Some("2468".into()))
            .expect("resolves")
            .expect("an operator");
        assert_eq!(
            (operator.id.as_str(), operator.pin.as_str()),
            ("mia", "2468")
        );
        let cli = Cli::try_parse_from(["x"]).expect("parses");
        if std::env::var_os("POSMESH_OPERATOR_ID").is_none() {
            assert_eq!(cli.operator.authorised_by, None);
            let missing = OperatorPinArgs::default()
                .require("revoke a certificate")
                .expect_err("needs --as");
            assert!(missing.to_string().contains("--as"), "{missing}");
        }
    }

    /// A PIN on the command line is visible to every user of the machine (`ps`): no flag
    /// takes one.
    #[test]
    fn no_flag_takes_a_pin() {
        let refused = Cli::try_parse_from(["x", "--as", "mia", "--operator-pin", "2468"])
            .expect_err("no --operator-pin");
        assert_eq!(refused.kind(), clap::error::ErrorKind::UnknownArgument);
    }
}
