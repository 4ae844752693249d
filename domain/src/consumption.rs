//! [`Consumption`]: where the customer consumes the goods, which decides the VAT rate.

/// Where food and drink are consumed. In the UK this decides the VAT liability of catering:
/// cold food taken away is zero-rated, the same food eaten on the premises is standard-rated
/// (HMRC VAT Notice 709/1 "Catering and take-away food", s.3 and s.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Consumption {
    /// Taken off the premises (`"take_away"`).
    TakeAway,
    /// Consumed on the premises (`"eat_in"`).
    EatIn,
}

impl Consumption {
    /// Human label used on receipts: `"Take away"` or `"Eat in"`.
    pub fn label(self) -> &'static str {
        match self {
            Consumption::TakeAway => "Take away",
            Consumption::EatIn => "Eat in",
        }
    }
}
