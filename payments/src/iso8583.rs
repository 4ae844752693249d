//! ISO 8583:1987 messages, sans-IO: encode a [`Message`] to bytes and decode bytes back,
//! with a precise [`DecodeError`] (which part or field, at which byte offset, and why).
//!
//! # Wire format
//! The subset of ISO 8583:1987 ("Financial transaction card originated messages —
//! Interchange message specifications", first edition) that posmesh uses, in the common
//! "ASCII fields, binary bitmap" encoding (pyiso8583's `specs.default`):
//!
//! - **MTI**: 4 ASCII digits (`0100`). Supported: 0100/0110 authorization request/response,
//!   0200/0210 financial request/response, 0220/0221/0230 advice / repeat advice /
//!   response (store-and-forward), 0400/0401/0410 reversal request / repeat / response,
//!   0420/0421/0430 reversal advice / repeat / response. See [`Mti`].
//! - **Primary bitmap**: 8 bytes, binary, bit 1 = most significant bit of the first byte
//!   = field 1 (a secondary bitmap follows). Bit *n* set means field *n* is present.
//! - **Secondary bitmap** (field 1): 8 more binary bytes for fields 65–128; present only
//!   when a field above 64 is. Its bit 65 (a tertiary bitmap) is refused.
//! - **Fields**, in ascending order, each ASCII. Fixed fields have exactly their length;
//!   `LLVAR` fields are preceded by 2 ASCII digits giving their length in characters.
//!
//! | field | name | format |
//! | --- | --- | --- |
//! | 2 | primary account number (PAN) | n..19 LLVAR |
//! | 3 | processing code | n6 |
//! | 4 | amount, transaction (minor units) | n12 |
//! | 7 | transmission date and time, UTC `MMDDhhmmss` | n10 |
//! | 11 | system trace audit number (STAN) | n6 |
//! | 12 | time, local transaction `hhmmss` | n6 |
//! | 13 | date, local transaction `MMDD` | n4 |
//! | 14 | date, expiration `YYMM` | n4 |
//! | 22 | point-of-service entry mode | n3 |
//! | 25 | point-of-service condition code | n2 |
//! | 37 | retrieval reference number (RRN) | an12 |
//! | 38 | authorization identification response | an6 |
//! | 39 | response code | an2 |
//! | 41 | card acceptor terminal identification | ans8 |
//! | 42 | card acceptor identification code (merchant) | ans15 |
//! | 49 | currency code, transaction (ISO 4217 numeric) | n3 |
//! | 90 | original data elements (MTI n4, STAN n6, date/time n10, acquirer n11, forwarder n11) | n42 |
//!
//! Character sets: `n` ASCII digits; `an` ASCII letters and digits; `ans` printable ASCII
//! (0x20–0x7E). Any other field number is refused on decode ([`DecodeReason::UnsupportedField`])
//! and cannot be set. On TCP each message is framed by a 2-byte big-endian length of the
//! message that follows ([`encode_frame`], [`FrameDecoder`]); the length counts bytes and is
//! at most [`FRAME_BODY_MAX_BYTES`].

use std::collections::BTreeMap;
use std::fmt;

/// Largest message body one frame may carry, in bytes (our largest message is ~200 bytes).
pub const FRAME_BODY_MAX_BYTES: usize = 4096;

/// Bytes of the frame length prefix (big-endian `u16`).
pub const FRAME_PREFIX_BYTES: usize = 2;

/// A message type indicator of the 1987 version that posmesh speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Mti {
    /// 0100 authorization request.
    AuthorizationRequest,
    /// 0110 authorization request response.
    AuthorizationResponse,
    /// 0200 financial transaction request.
    FinancialRequest,
    /// 0210 financial transaction request response.
    FinancialResponse,
    /// 0220 financial transaction advice (store-and-forward).
    FinancialAdvice,
    /// 0221 financial transaction advice repeat.
    FinancialAdviceRepeat,
    /// 0230 financial transaction advice response.
    FinancialAdviceResponse,
    /// 0400 reversal request.
    ReversalRequest,
    /// 0401 reversal request repeat.
    ReversalRequestRepeat,
    /// 0410 reversal request response.
    ReversalResponse,
    /// 0420 reversal advice.
    ReversalAdvice,
    /// 0421 reversal advice repeat.
    ReversalAdviceRepeat,
    /// 0430 reversal advice response.
    ReversalAdviceResponse,
}

const MTI_TABLE: &[(Mti, &str)] = &[
    (Mti::AuthorizationRequest, "0100"),
    (Mti::AuthorizationResponse, "0110"),
    (Mti::FinancialRequest, "0200"),
    (Mti::FinancialResponse, "0210"),
    (Mti::FinancialAdvice, "0220"),
    (Mti::FinancialAdviceRepeat, "0221"),
    (Mti::FinancialAdviceResponse, "0230"),
    (Mti::ReversalRequest, "0400"),
    (Mti::ReversalRequestRepeat, "0401"),
    (Mti::ReversalResponse, "0410"),
    (Mti::ReversalAdvice, "0420"),
    (Mti::ReversalAdviceRepeat, "0421"),
    (Mti::ReversalAdviceResponse, "0430"),
];

impl Mti {
    /// Every supported MTI.
    pub const ALL: [Mti; 13] = [
        Mti::AuthorizationRequest,
        Mti::AuthorizationResponse,
        Mti::FinancialRequest,
        Mti::FinancialResponse,
        Mti::FinancialAdvice,
        Mti::FinancialAdviceRepeat,
        Mti::FinancialAdviceResponse,
        Mti::ReversalRequest,
        Mti::ReversalRequestRepeat,
        Mti::ReversalResponse,
        Mti::ReversalAdvice,
        Mti::ReversalAdviceRepeat,
        Mti::ReversalAdviceResponse,
    ];

    /// The four ASCII digits, e.g. `"0100"`.
    pub fn code(self) -> &'static str {
        MTI_TABLE
            .iter()
            .find(|(mti, _)| *mti == self)
            .map_or("????", |(_, code)| code)
    }

    /// Parses four ASCII digits; `None` for an MTI posmesh does not speak.
    pub fn from_code(code: &[u8]) -> Option<Mti> {
        MTI_TABLE
            .iter()
            .find(|(_, c)| c.as_bytes() == code)
            .map(|(mti, _)| *mti)
    }

    /// The response MTI that answers this request or advice (`0100` → `0110`, `0221` →
    /// `0230`); `None` for a response.
    pub fn response(self) -> Option<Mti> {
        match self {
            Mti::AuthorizationRequest => Some(Mti::AuthorizationResponse),
            Mti::FinancialRequest => Some(Mti::FinancialResponse),
            Mti::FinancialAdvice | Mti::FinancialAdviceRepeat => Some(Mti::FinancialAdviceResponse),
            Mti::ReversalRequest | Mti::ReversalRequestRepeat => Some(Mti::ReversalResponse),
            Mti::ReversalAdvice | Mti::ReversalAdviceRepeat => Some(Mti::ReversalAdviceResponse),
            _ => None,
        }
    }

    /// `true` for the repeat variants (0221, 0401, 0421): a resend of a message the sender
    /// may already have delivered.
    pub fn is_repeat(self) -> bool {
        matches!(
            self,
            Mti::FinancialAdviceRepeat | Mti::ReversalRequestRepeat | Mti::ReversalAdviceRepeat
        )
    }
}

impl fmt::Display for Mti {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Character set of a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charset {
    /// `n`: ASCII digits `0-9`.
    Numeric,
    /// `an`: ASCII letters and digits.
    Alphanumeric,
    /// `ans`: printable ASCII, 0x20–0x7E.
    AlphanumericSpecial,
}

impl Charset {
    fn allows(self, byte: u8) -> bool {
        match self {
            Charset::Numeric => byte.is_ascii_digit(),
            Charset::Alphanumeric => byte.is_ascii_alphanumeric(),
            Charset::AlphanumericSpecial => (0x20..=0x7e).contains(&byte),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Charset::Numeric => "n",
            Charset::Alphanumeric => "an",
            Charset::AlphanumericSpecial => "ans",
        }
    }
}

/// Length rule of a field, in characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Length {
    /// Exactly this many characters.
    Fixed(usize),
    /// 2-digit ASCII length prefix, then up to this many characters.
    LlVar(usize),
}

/// The format of one supported field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldSpec {
    /// Field (data element) number, 2..=128.
    pub number: u8,
    /// Name as in ISO 8583:1987.
    pub name: &'static str,
    /// Character set.
    pub charset: Charset,
    /// Length rule.
    pub length: Length,
}

const fn spec(number: u8, name: &'static str, charset: Charset, length: Length) -> FieldSpec {
    FieldSpec {
        number,
        name,
        charset,
        length,
    }
}

/// Every field posmesh reads or writes, in ascending order (see the module table).
pub const FIELDS: &[FieldSpec] = &[
    spec(
        2,
        "primary account number",
        Charset::Numeric,
        Length::LlVar(19),
    ),
    spec(3, "processing code", Charset::Numeric, Length::Fixed(6)),
    spec(
        4,
        "amount, transaction",
        Charset::Numeric,
        Length::Fixed(12),
    ),
    spec(
        7,
        "transmission date and time",
        Charset::Numeric,
        Length::Fixed(10),
    ),
    spec(
        11,
        "system trace audit number",
        Charset::Numeric,
        Length::Fixed(6),
    ),
    spec(
        12,
        "time, local transaction",
        Charset::Numeric,
        Length::Fixed(6),
    ),
    spec(
        13,
        "date, local transaction",
        Charset::Numeric,
        Length::Fixed(4),
    ),
    spec(14, "date, expiration", Charset::Numeric, Length::Fixed(4)),
    spec(
        22,
        "point of service entry mode",
        Charset::Numeric,
        Length::Fixed(3),
    ),
    spec(
        25,
        "point of service condition code",
        Charset::Numeric,
        Length::Fixed(2),
    ),
    spec(
        37,
        "retrieval reference number",
        Charset::Alphanumeric,
        Length::Fixed(12),
    ),
    spec(
        38,
        "authorization identification response",
        Charset::Alphanumeric,
        Length::Fixed(6),
    ),
    spec(39, "response code", Charset::Alphanumeric, Length::Fixed(2)),
    spec(
        41,
        "card acceptor terminal identification",
        Charset::AlphanumericSpecial,
        Length::Fixed(8),
    ),
    spec(
        42,
        "card acceptor identification code",
        Charset::AlphanumericSpecial,
        Length::Fixed(15),
    ),
    spec(
        49,
        "currency code, transaction",
        Charset::Numeric,
        Length::Fixed(3),
    ),
    spec(
        90,
        "original data elements",
        Charset::Numeric,
        Length::Fixed(42),
    ),
];

/// The format of field `number`, if posmesh supports it.
pub fn field_spec(number: u8) -> Option<&'static FieldSpec> {
    FIELDS.iter().find(|spec| spec.number == number)
}

/// The meaning of an ISO 8583:1987 response code (field 39), for people; `"unknown
/// response code"` for codes not listed.
pub fn response_code_text(code: &str) -> &'static str {
    match code {
        "00" => "approved",
        "01" => "refer to card issuer",
        "03" => "invalid merchant",
        "04" => "pick up card",
        "05" => "do not honour",
        "12" => "invalid transaction",
        "13" => "invalid amount",
        "14" => "invalid card number",
        "25" => "unable to locate record",
        "30" => "format error",
        "41" => "lost card",
        "43" => "stolen card",
        "51" => "insufficient funds",
        "54" => "expired card",
        "57" => "transaction not permitted to cardholder",
        "61" => "exceeds withdrawal amount limit",
        "91" => "issuer or switch inoperative",
        "94" => "duplicate transmission",
        "96" => "system malfunction",
        _ => "unknown response code",
    }
}

/// Where in a message a decode error was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The message type indicator.
    Mti,
    /// The primary bitmap.
    PrimaryBitmap,
    /// The secondary bitmap (field 1).
    SecondaryBitmap,
    /// Data element `n`.
    Field(u8),
    /// Bytes after the last field.
    Trailing,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Part::Mti => f.write_str("MTI"),
            Part::PrimaryBitmap => f.write_str("primary bitmap"),
            Part::SecondaryBitmap => f.write_str("secondary bitmap"),
            Part::Field(n) => write!(f, "field {n}"),
            Part::Trailing => f.write_str("end of message"),
        }
    }
}

/// Why decoding failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeReason {
    /// The message ended early: `needed` more bytes were expected, `available` were left.
    Truncated {
        /// Bytes the part needs.
        needed: usize,
        /// Bytes left in the message.
        available: usize,
    },
    /// The MTI is not one posmesh speaks (shown escaped).
    UnknownMti(String),
    /// The bitmap announces a field posmesh does not support.
    UnsupportedField,
    /// The 2-digit length prefix of an LLVAR field is not two ASCII digits.
    BadLengthPrefix,
    /// The LLVAR length exceeds the field's maximum.
    TooLong {
        /// Length given, characters.
        len: usize,
        /// Maximum of the field, characters.
        max: usize,
    },
    /// A byte outside the field's character set, at `index` within the field.
    BadCharacter {
        /// The byte.
        byte: u8,
        /// Index within the field's data, 0-based.
        index: usize,
        /// The field's character set (`n`, `an`, `ans`).
        charset: &'static str,
    },
    /// An LLVAR field of length 0 (a present field must carry data).
    Empty,
    /// No field is present at all (empty bitmap).
    NoFields,
    /// Bytes are left after the last field.
    TrailingBytes(usize),
}

impl fmt::Display for DecodeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeReason::Truncated { needed, available } => {
                write!(f, "truncated: needs {needed} bytes, {available} left")
            }
            DecodeReason::UnknownMti(mti) => write!(f, "unknown or unsupported MTI {mti}"),
            DecodeReason::UnsupportedField => f.write_str("field not supported"),
            DecodeReason::BadLengthPrefix => f.write_str("LLVAR length prefix is not 2 digits"),
            DecodeReason::TooLong { len, max } => {
                write!(f, "length {len} exceeds the maximum {max}")
            }
            DecodeReason::BadCharacter {
                byte,
                index,
                charset,
            } => write!(
                f,
                "byte 0x{byte:02x} at index {index} is not in character set {charset}"
            ),
            DecodeReason::Empty => f.write_str("LLVAR length 0"),
            DecodeReason::NoFields => f.write_str("bitmap announces no field"),
            DecodeReason::TrailingBytes(n) => write!(f, "{n} bytes after the last field"),
        }
    }
}

/// A precise decode error: the part (MTI, bitmap, field n), the byte offset in the message
/// where that part starts, and the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("ISO 8583 decode error in {part} at byte {offset}: {reason}")]
pub struct DecodeError {
    /// Where.
    pub part: Part,
    /// Byte offset within the message (frame prefix excluded) where `part` starts.
    pub offset: usize,
    /// Why.
    pub reason: DecodeReason,
}

/// Why a field value was refused by [`Message::set`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// posmesh does not support this field number.
    #[error("field {0} is not supported")]
    Unsupported(u8),
    /// The value has the wrong length.
    #[error("field {field}: length {len} is not allowed ({rule})")]
    BadLength {
        /// Field number.
        field: u8,
        /// Length given, bytes.
        len: usize,
        /// The rule, e.g. `"exactly 6"`, `"at most 19"`.
        rule: String,
    },
    /// The value has a character outside the field's set.
    #[error("field {field}: character {ch:?} at index {index} is not in character set {charset}")]
    BadCharacter {
        /// Field number.
        field: u8,
        /// The character.
        ch: char,
        /// Index within the value.
        index: usize,
        /// The character set.
        charset: &'static str,
    },
}

/// An ISO 8583 message: an MTI and the present fields with their ASCII values.
///
/// Values are validated by [`Message::set`] against the field's format, so every `Message`
/// encodes, and `decode(encode(m)) == m`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    mti: Mti,
    fields: BTreeMap<u8, String>,
}

impl Message {
    /// An empty message of type `mti`.
    pub fn new(mti: Mti) -> Message {
        Message {
            mti,
            fields: BTreeMap::new(),
        }
    }

    /// The message type.
    pub fn mti(&self) -> Mti {
        self.mti
    }

    /// Changes the message type (e.g. 0220 → 0221 for a repeat), keeping the fields.
    pub fn set_mti(&mut self, mti: Mti) {
        self.mti = mti;
    }

    /// Sets field `number` to `value` after checking its format.
    ///
    /// # Errors
    /// [`FieldError`] naming the field and what is wrong.
    pub fn set(&mut self, number: u8, value: &str) -> Result<&mut Message, FieldError> {
        let spec = field_spec(number).ok_or(FieldError::Unsupported(number))?;
        let len = value.len();
        match spec.length {
            Length::Fixed(n) if len != n => {
                return Err(FieldError::BadLength {
                    field: number,
                    len,
                    rule: format!("exactly {n}"),
                })
            }
            Length::LlVar(max) if len > max || len == 0 => {
                return Err(FieldError::BadLength {
                    field: number,
                    len,
                    rule: format!("1 to {max}"),
                })
            }
            _ => {}
        }
        if let Some((index, ch)) = value
            .char_indices()
            .find(|(_, ch)| !ch.is_ascii() || !spec.charset.allows(*ch as u8))
        {
            return Err(FieldError::BadCharacter {
                field: number,
                ch,
                index,
                charset: spec.charset.name(),
            });
        }
        self.fields.insert(number, value.to_owned());
        Ok(self)
    }

    /// Builder form of [`Message::set`].
    ///
    /// # Errors
    /// As [`Message::set`].
    pub fn with(mut self, number: u8, value: &str) -> Result<Message, FieldError> {
        self.set(number, value)?;
        Ok(self)
    }

    /// The value of field `number`, if present.
    pub fn get(&self, number: u8) -> Option<&str> {
        self.fields.get(&number).map(String::as_str)
    }

    /// Removes field `number`, returning its value.
    pub fn remove(&mut self, number: u8) -> Option<String> {
        self.fields.remove(&number)
    }

    /// Present field numbers with values, ascending.
    pub fn fields(&self) -> impl Iterator<Item = (u8, &str)> {
        self.fields.iter().map(|(n, v)| (*n, v.as_str()))
    }

    /// Encodes the message (no frame prefix): MTI, bitmap(s), fields.
    pub fn encode(&self) -> Vec<u8> {
        let mut bitmap = [0u8; 16];
        let secondary = self.fields.keys().any(|n| *n > 64);
        if secondary {
            bitmap[0] |= 0x80;
        }
        for n in self.fields.keys() {
            let bit = usize::from(*n) - 1;
            bitmap[bit / 8] |= 0x80 >> (bit % 8);
        }
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(self.mti.code().as_bytes());
        out.extend_from_slice(&bitmap[..if secondary { 16 } else { 8 }]);
        for (n, value) in &self.fields {
            if let Some(Length::LlVar(_)) = field_spec(*n).map(|s| s.length) {
                out.extend_from_slice(format!("{:02}", value.len()).as_bytes());
            }
            out.extend_from_slice(value.as_bytes());
        }
        out
    }

    /// Decodes one message (no frame prefix).
    ///
    /// # Errors
    /// [`DecodeError`] naming the part, its offset and the reason; never panics.
    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        let mut reader = Reader { bytes, pos: 0 };
        let mti_bytes = reader.take(Part::Mti, 4)?;
        let mti = Mti::from_code(mti_bytes).ok_or_else(|| DecodeError {
            part: Part::Mti,
            offset: 0,
            reason: DecodeReason::UnknownMti(mti_bytes.escape_ascii().to_string()),
        })?;
        let mut bitmap = [0u8; 16];
        bitmap[..8].copy_from_slice(reader.take(Part::PrimaryBitmap, 8)?);
        if bitmap[0] & 0x80 != 0 {
            let offset = reader.pos;
            bitmap[8..].copy_from_slice(reader.take(Part::SecondaryBitmap, 8)?);
            if bitmap[8] & 0x80 != 0 {
                return Err(DecodeError {
                    part: Part::Field(65),
                    offset,
                    reason: DecodeReason::UnsupportedField,
                });
            }
        }
        let present: Vec<u8> = (2..=128u8)
            .filter(|n| {
                let bit = usize::from(*n) - 1;
                bitmap[bit / 8] & (0x80 >> (bit % 8)) != 0
            })
            .collect();
        if present.is_empty() {
            return Err(DecodeError {
                part: Part::PrimaryBitmap,
                offset: 4,
                reason: DecodeReason::NoFields,
            });
        }
        let mut message = Message::new(mti);
        for n in present {
            let part = Part::Field(n);
            let offset = reader.pos;
            let error = |reason| DecodeError {
                part,
                offset,
                reason,
            };
            let spec = field_spec(n).ok_or_else(|| error(DecodeReason::UnsupportedField))?;
            let len = match spec.length {
                Length::Fixed(len) => len,
                Length::LlVar(max) => {
                    let prefix = reader.take(part, 2)?;
                    if !prefix.iter().all(u8::is_ascii_digit) {
                        return Err(error(DecodeReason::BadLengthPrefix));
                    }
                    let len = usize::from(prefix[0] - b'0') * 10 + usize::from(prefix[1] - b'0');
                    if len > max {
                        return Err(error(DecodeReason::TooLong { len, max }));
                    }
                    if len == 0 {
                        return Err(error(DecodeReason::Empty));
                    }
                    len
                }
            };
            let data = reader.take(part, len)?;
            if let Some((index, byte)) = data
                .iter()
                .enumerate()
                .find(|(_, b)| !spec.charset.allows(**b))
            {
                return Err(error(DecodeReason::BadCharacter {
                    byte: *byte,
                    index,
                    charset: spec.charset.name(),
                }));
            }
            // Every allowed byte is ASCII, so this is valid UTF-8.
            let value = String::from_utf8_lossy(data).into_owned();
            message.fields.insert(n, value);
        }
        if reader.pos != bytes.len() {
            return Err(DecodeError {
                part: Part::Trailing,
                offset: reader.pos,
                reason: DecodeReason::TrailingBytes(bytes.len() - reader.pos),
            });
        }
        Ok(message)
    }
}

impl fmt::Display for Message {
    /// One line, PAN masked: `0100 2=411111******1111 3=000000 4=000000001234 …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.mti)?;
        for (n, value) in &self.fields {
            if *n == 2 {
                write!(f, " 2={}", crate::card_data::mask_pan_digits(value))?;
            } else {
                write!(f, " {n}={value}")?;
            }
        }
        Ok(())
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, part: Part, n: usize) -> Result<&'a [u8], DecodeError> {
        let available = self.bytes.len() - self.pos;
        if available < n {
            return Err(DecodeError {
                part,
                offset: self.pos,
                reason: DecodeReason::Truncated {
                    needed: n,
                    available,
                },
            });
        }
        let slice = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }
}

/// Errors of TCP framing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix is 0.
    #[error("frame length 0")]
    Empty,
    /// The length prefix exceeds [`FRAME_BODY_MAX_BYTES`].
    #[error("frame length {0} exceeds the maximum {FRAME_BODY_MAX_BYTES} bytes")]
    TooLong(usize),
    /// The length prefix is two printable ASCII characters (e.g. `HT` of `HTTP/1.1`): the
    /// peer speaks a text protocol, so the configured address is not an ISO 8583 acquirer.
    #[error(
        "the peer sent text ({0:?}…), not an ISO 8583 length prefix: is this address the acquirer's ISO 8583 port?"
    )]
    Text(String),
}

/// The message framed for TCP: 2-byte big-endian length, then the encoded message.
///
/// # Errors
/// [`FrameError::TooLong`] if the encoding exceeds [`FRAME_BODY_MAX_BYTES`] (impossible
/// with the supported fields, whose total is under 300 bytes).
pub fn encode_frame(message: &Message) -> Result<Vec<u8>, FrameError> {
    let body = message.encode();
    let len = u16::try_from(body.len())
        .ok()
        .filter(|len| usize::from(*len) <= FRAME_BODY_MAX_BYTES)
        .ok_or(FrameError::TooLong(body.len()))?;
    let mut out = Vec::with_capacity(body.len() + FRAME_PREFIX_BYTES);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Checks a frame length prefix.
///
/// # Errors
/// [`FrameError`] for 0 or more than [`FRAME_BODY_MAX_BYTES`]; [`FrameError::Text`] when an
/// over-long prefix is printable text (an HTTP server answering, for instance).
pub fn check_frame_len(prefix: [u8; 2]) -> Result<usize, FrameError> {
    let len = usize::from(u16::from_be_bytes(prefix));
    if len == 0 {
        Err(FrameError::Empty)
    } else if len > FRAME_BODY_MAX_BYTES {
        if prefix.iter().all(u8::is_ascii_graphic) {
            Err(FrameError::Text(
                String::from_utf8_lossy(&prefix).into_owned(),
            ))
        } else {
            Err(FrameError::TooLong(len))
        }
    } else {
        Ok(len)
    }
}

/// Sans-IO frame splitter: push received bytes, pop complete message bodies.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buffer: Vec<u8>,
}

impl FrameDecoder {
    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete frame's body, `Ok(None)` if more bytes are needed.
    ///
    /// # Errors
    /// [`FrameError`] on a bad length prefix; the stream cannot be resynchronised after it.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if self.buffer.len() < FRAME_PREFIX_BYTES {
            return Ok(None);
        }
        let len = check_frame_len([self.buffer[0], self.buffer[1]])?;
        if self.buffer.len() < FRAME_PREFIX_BYTES + len {
            return Ok(None);
        }
        let body = self.buffer[FRAME_PREFIX_BYTES..FRAME_PREFIX_BYTES + len].to_vec();
        self.buffer.drain(..FRAME_PREFIX_BYTES + len);
        Ok(Some(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn auth() -> Message {
        Message::new(Mti::AuthorizationRequest)
            .with(2, "4111111111111111")
            .and_then(|m| m.with(3, "000000"))
            .and_then(|m| m.with(4, "000000001234"))
            .and_then(|m| m.with(11, "000042"))
            .and_then(|m| m.with(41, "TILL0001"))
            .and_then(|m| m.with(49, "826"))
            .expect("valid")
    }

    #[test]
    fn known_encoding() {
        let bytes = auth().encode();
        assert_eq!(&bytes[..4], b"0100");
        // Fields 2, 3, 4 → bits 2,3,4 of byte 0; 11 → byte 1 bit 3; 41 → byte 5 bit 1;
        // 49 → byte 6 bit 1.
        assert_eq!(&bytes[4..12], &[0x70, 0x20, 0, 0, 0, 0x80, 0x80, 0]);
        assert_eq!(
            &bytes[12..],
            b"164111111111111111000000000000001234000042TILL0001826"
        );
        assert_eq!(Message::decode(&bytes), Ok(auth()));
    }

    #[test]
    fn secondary_bitmap_for_field_90() {
        let msg = Message::new(Mti::ReversalRequest)
            .with(11, "000001")
            .and_then(|m| m.with(90, &"0".repeat(42)))
            .expect("valid");
        let bytes = msg.encode();
        assert_eq!(bytes[4] & 0x80, 0x80);
        // Field 90 is bit 26 of the secondary bitmap → byte 3 of it, mask 0x40.
        assert_eq!(bytes[12 + 3], 0x40);
        assert_eq!(Message::decode(&bytes), Ok(msg));
    }

    #[test]
    fn set_refuses_bad_values_precisely() {
        let mut m = Message::new(Mti::AuthorizationRequest);
        assert_eq!(m.set(5, "1").err(), Some(FieldError::Unsupported(5)));
        assert!(matches!(
            m.set(4, "12"),
            Err(FieldError::BadLength {
                field: 4,
                len: 2,
                ..
            })
        ));
        assert!(matches!(
            m.set(3, "00a000"),
            Err(FieldError::BadCharacter {
                field: 3,
                index: 2,
                ..
            })
        ));
        assert!(matches!(
            m.set(2, &"4".repeat(20)),
            Err(FieldError::BadLength { field: 2, .. })
        ));
        assert!(m.set(41, "TILL 01 ").is_ok());
        assert!(m.set(37, "ABC DEF12345").is_err());
    }

    #[test]
    fn decode_errors_name_part_offset_and_reason() {
        let good = auth().encode();
        let err = |bytes: &[u8]| Message::decode(bytes).expect_err("must fail");
        let e = err(b"01");
        assert_eq!((e.part, e.offset), (Part::Mti, 0));
        let e = err(b"0999\x00\x00\x00\x00\x00\x00\x00\x00");
        assert_eq!(e.reason, DecodeReason::UnknownMti("0999".into()));
        let e = err(&good[..10]);
        assert_eq!(e.part, Part::PrimaryBitmap);
        let e = err(&good[..good.len() - 1]);
        assert_eq!(e.part, Part::Field(49));
        assert_eq!(
            e.reason,
            DecodeReason::Truncated {
                needed: 3,
                available: 2
            }
        );
        let mut bad = good.clone();
        bad[12] = b'x'; // LLVAR prefix of field 2
        let e = err(&bad);
        assert_eq!(
            (e.part, e.offset, e.reason),
            (Part::Field(2), 12, DecodeReason::BadLengthPrefix)
        );
        let mut bad = good.clone();
        bad[12] = b'2'; // length 26 > 19
        assert_eq!(err(&bad).reason, DecodeReason::TooLong { len: 26, max: 19 });
        bad[12..14].copy_from_slice(b"00");
        assert_eq!(err(&bad).reason, DecodeReason::Empty);
        let mut bad = good.clone();
        let amount_at = 12 + 2 + 16 + 6;
        bad[amount_at + 3] = b'A';
        let e = err(&bad);
        assert_eq!(e.part, Part::Field(4));
        assert_eq!(e.offset, amount_at);
        assert!(matches!(
            e.reason,
            DecodeReason::BadCharacter {
                byte: b'A',
                index: 3,
                ..
            }
        ));
        let mut bad = good.clone();
        bad[4] |= 0x08; // field 5
        assert_eq!(err(&bad).part, Part::Field(5));
        let mut long = good.clone();
        long.push(b'0');
        assert_eq!(err(&long).reason, DecodeReason::TrailingBytes(1));
        let e = err(b"0100\x00\x00\x00\x00\x00\x00\x00\x00");
        assert_eq!(e.reason, DecodeReason::NoFields);
        // The message text names the field.
        assert!(err(&bad).to_string().contains("field 5"));
    }

    #[test]
    fn frames_split_and_refuse_bad_lengths() {
        let frame = encode_frame(&auth()).expect("frame");
        assert_eq!(
            usize::from(u16::from_be_bytes([frame[0], frame[1]])),
            frame.len() - 2
        );
        let mut decoder = FrameDecoder::default();
        let two: Vec<u8> = frame.iter().chain(frame.iter()).copied().collect();
        for chunk in two.chunks(5) {
            decoder.push(chunk);
        }
        assert_eq!(decoder.next_frame(), Ok(Some(auth().encode())));
        assert_eq!(decoder.next_frame(), Ok(Some(auth().encode())));
        assert_eq!(decoder.next_frame(), Ok(None));
        decoder.push(&[0, 0]);
        assert_eq!(decoder.next_frame(), Err(FrameError::Empty));
        assert_eq!(
            check_frame_len([0xff, 0xff]),
            Err(FrameError::TooLong(65535))
        );
        // What an HTTP server sends first: "HTTP/1.1 …" reads as length 0x4854.
        assert_eq!(
            check_frame_len(*b"HT"),
            Err(FrameError::Text("HT".to_owned()))
        );
    }

    fn value_for(spec: &FieldSpec) -> BoxedStrategy<String> {
        let chars: &'static [u8] = match spec.charset {
            Charset::Numeric => b"0123456789",
            Charset::Alphanumeric => {
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
            }
            Charset::AlphanumericSpecial => {
                b" !\"#$%&'()*+,-./0123456789:;<=>?@ABCXYZ[\\]^_`abcxyz{|}~"
            }
        };
        let (min, max) = match spec.length {
            Length::Fixed(n) => (n, n),
            Length::LlVar(max) => (1, max),
        };
        proptest::collection::vec(proptest::sample::select(chars), min..=max)
            .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .boxed()
    }

    fn message() -> impl Strategy<Value = Message> {
        let fields: Vec<_> = FIELDS
            .iter()
            .map(|spec| proptest::option::of(value_for(spec)).prop_map(move |v| (spec.number, v)))
            .collect();
        (proptest::sample::select(Mti::ALL.to_vec()), fields).prop_filter_map(
            "at least one field",
            |(mti, fields)| {
                let mut message = Message::new(mti);
                for (n, value) in fields {
                    if let Some(value) = value {
                        message.set(n, &value).ok()?;
                    }
                }
                (message.fields().count() > 0).then_some(message)
            },
        )
    }

    proptest! {
        #[test]
        fn round_trip(message in message()) {
            let bytes = message.encode();
            prop_assert_eq!(Message::decode(&bytes), Ok(message.clone()));
            let frame = encode_frame(&message).expect("frame");
            let mut decoder = FrameDecoder::default();
            decoder.push(&frame);
            prop_assert_eq!(decoder.next_frame(), Ok(Some(bytes)));
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Message::decode(&bytes);
            let mut decoder = FrameDecoder::default();
            decoder.push(&bytes);
            for _ in 0..bytes.len() {
                if !matches!(decoder.next_frame(), Ok(Some(_))) { break; }
            }
        }

        #[test]
        fn mutated_messages_never_panic(
            message in message(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = message.encode();
            for (at, byte) in edits {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            let _ = Message::decode(&bytes);
            let keep = cut.index(bytes.len() + 1);
            let _ = Message::decode(&bytes[..keep]);
        }
    }
}
