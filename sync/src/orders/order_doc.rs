//! One order as an Automerge document: its schema, the edits a till makes and the typed view.
//!
//! # Schema (root map)
//! | key | value |
//! | --- | --- |
//! | `order_id` | string, the order's id |
//! | `created_by` | string, the creating device |
//! | `created_at_ms` | int, ms since the Unix epoch |
//! | `table`, `customer` | string, `""` when unset (registers) |
//! | `lines` | map: line id → map `{sku: string, quantity: int, added_by: string, added_at_ms: int}` |
//!
//! Only the creating device writes the root keys `order_id`, `created_by`, `created_at_ms`
//! and the `lines` map object, once; every device edits lines, table and customer.

use super::order_id::validate_order_id;
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{
    ActorId, AutoCommit, ChangeHash, ObjId, ObjType, ReadDoc, ScalarValue, Value, ROOT,
};
use sha2::{Digest, Sha256};

/// Largest quantity of one line (the same bound as a sale line).
pub const ORDER_QUANTITY_MAX: i64 = 100_000;
/// Most lines an order may hold (the same bound as a sale).
pub const ORDER_LINES_MAX: usize = 500;
/// Longest table or customer text, characters.
pub const ORDER_TEXT_LEN_MAX: usize = 100;

/// An edit of an open order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrderEdit {
    /// Adds a line; `line_id` must be new to the order.
    AddLine {
        /// Store-unique line id (see [`super::order_id::derived_id`]).
        line_id: String,
        /// Catalog SKU (the driver checks it exists).
        sku: String,
        /// Units, `1..=ORDER_QUANTITY_MAX`.
        quantity: i64,
    },
    /// Sets a line's quantity (a register: concurrent sets resolve deterministically).
    SetQuantity {
        /// The line.
        line_id: String,
        /// Units, `1..=ORDER_QUANTITY_MAX`.
        quantity: i64,
    },
    /// Removes a line.
    RemoveLine {
        /// The line.
        line_id: String,
    },
    /// Assigns a table (`None` clears it).
    SetTable(Option<String>),
    /// Assigns a customer (`None` clears it).
    SetCustomer(Option<String>),
}

/// What went wrong with an order operation. Nothing changed when one is returned.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OrderError {
    /// No order with this id is held (or its creation has not arrived yet).
    #[error("order {0:?} not found")]
    NotFound(String),
    /// An order with this id exists already.
    #[error("order {0:?} exists already")]
    AlreadyExists(String),
    /// The order has no line with this id.
    #[error("order {order_id:?} has no line {line_id:?}")]
    LineNotFound {
        /// The order.
        order_id: String,
        /// The missing line.
        line_id: String,
    },
    /// The line id is in use.
    #[error("order {order_id:?} already has a line {line_id:?}")]
    LineExists {
        /// The order.
        order_id: String,
        /// The line.
        line_id: String,
    },
    /// The order holds [`ORDER_LINES_MAX`] lines.
    #[error("an order holds at most {ORDER_LINES_MAX} lines")]
    TooManyLines,
    /// A quantity outside `1..=ORDER_QUANTITY_MAX`.
    #[error("quantity {0} is not between 1 and {ORDER_QUANTITY_MAX}")]
    InvalidQuantity(i64),
    /// An id that [`validate_order_id`] refuses.
    #[error("invalid id: {0}")]
    InvalidId(String),
    /// A table or customer text too long or with control characters.
    #[error("{field} must be at most {ORDER_TEXT_LEN_MAX} characters without control characters")]
    InvalidText {
        /// `table` or `customer`.
        field: &'static str,
    },
    /// The document does not follow the schema (a peer running other code, or corruption).
    #[error("order {order_id:?} is malformed: {detail}")]
    Malformed {
        /// The order.
        order_id: String,
        /// What is wrong.
        detail: String,
    },
    /// Automerge refused the bytes or the operation.
    #[error("automerge: {0}")]
    Automerge(String),
    /// The node holds its maximum number of orders.
    #[error("the node holds its maximum of {0} orders")]
    TooManyOrders(usize),
}

impl From<automerge::AutomergeError> for OrderError {
    fn from(error: automerge::AutomergeError) -> Self {
        OrderError::Automerge(error.to_string())
    }
}

/// One line of an order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderLine {
    /// Store-unique line id.
    pub line_id: String,
    /// Catalog SKU.
    pub sku: String,
    /// Units (≥ 1).
    pub quantity: i64,
    /// Device that added the line.
    pub added_by: String,
    /// When it was added, ms since the Unix epoch (that device's clock).
    pub added_at_ms: i64,
}

/// An order as read from its document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderView {
    /// The order's id.
    pub order_id: String,
    /// Device that created it.
    pub created_by: String,
    /// When it was created, ms since the Unix epoch.
    pub created_at_ms: i64,
    /// Table, if assigned.
    pub table: Option<String>,
    /// Customer, if assigned.
    pub customer: Option<String>,
    /// Lines ordered by (added_at_ms, line_id).
    pub lines: Vec<OrderLine>,
}

/// One order's Automerge document.
#[derive(Debug)]
pub struct OrderDoc {
    order_id: String,
    doc: AutoCommit,
}

impl OrderDoc {
    /// A new order created by `created_by` (whose actor is `actor`) at `at_ms`.
    ///
    /// # Errors
    /// [`OrderError::InvalidId`] or [`OrderError::InvalidText`].
    pub fn create(
        order_id: &str,
        actor: ActorId,
        created_by: &str,
        at_ms: i64,
        table: Option<&str>,
        customer: Option<&str>,
    ) -> Result<Self, OrderError> {
        validate_order_id(order_id).map_err(OrderError::InvalidId)?;
        check_text(table, "table")?;
        check_text(customer, "customer")?;
        let mut doc = AutoCommit::new().with_actor(actor);
        doc.put(ROOT, "order_id", order_id)?;
        doc.put(ROOT, "created_by", created_by)?;
        doc.put(ROOT, "created_at_ms", at_ms)?;
        doc.put(ROOT, "table", table.unwrap_or(""))?;
        doc.put(ROOT, "customer", customer.unwrap_or(""))?;
        doc.put_object(ROOT, "lines", ObjType::Map)?;
        doc.commit_with(commit_options(at_ms));
        Ok(Self {
            order_id: order_id.to_owned(),
            doc,
        })
    }

    /// An order known by id only, to be filled by sync from a peer.
    ///
    /// # Errors
    /// [`OrderError::InvalidId`].
    pub fn empty(order_id: &str, actor: ActorId) -> Result<Self, OrderError> {
        validate_order_id(order_id).map_err(OrderError::InvalidId)?;
        Ok(Self {
            order_id: order_id.to_owned(),
            doc: AutoCommit::new().with_actor(actor),
        })
    }

    /// An order from stored bytes: a [`OrderDoc::save`] followed by any number of
    /// [`OrderDoc::save_incremental`] chunks, concatenated.
    ///
    /// # Errors
    /// [`OrderError::Automerge`] for bytes Automerge refuses; [`OrderError::Malformed`] when
    /// the document names another order.
    pub fn load(order_id: &str, bytes: &[u8], actor: ActorId) -> Result<Self, OrderError> {
        let loaded = Self {
            order_id: order_id.to_owned(),
            doc: AutoCommit::load(bytes)?.with_actor(actor),
        };
        if let Some(view) = loaded.view()? {
            if view.order_id != order_id {
                return Err(OrderError::Malformed {
                    order_id: order_id.to_owned(),
                    detail: format!("the document is order {:?}", view.order_id),
                });
            }
        }
        Ok(loaded)
    }

    /// The order's id.
    pub fn order_id(&self) -> &str {
        &self.order_id
    }

    /// Applies one edit as one Automerge change stamped `at_ms` (ms since the Unix epoch).
    ///
    /// # Errors
    /// [`OrderError::NotFound`] when the document has not arrived yet; line, quantity and text
    /// errors as [`OrderEdit`] documents them. Nothing changes on error.
    pub fn apply(
        &mut self,
        edit: &OrderEdit,
        device_id: &str,
        at_ms: i64,
    ) -> Result<(), OrderError> {
        match self.stage(edit, device_id, at_ms) {
            Ok(()) => {
                self.doc.commit_with(commit_options(at_ms));
                Ok(())
            }
            Err(error) => {
                self.doc.rollback();
                Err(error)
            }
        }
    }

    /// Puts the operations of `edit` into the open transaction (checks first).
    fn stage(&mut self, edit: &OrderEdit, device_id: &str, at_ms: i64) -> Result<(), OrderError> {
        let lines = self.lines_obj()?;
        match edit {
            OrderEdit::AddLine {
                line_id,
                sku,
                quantity,
            } => {
                validate_order_id(line_id).map_err(OrderError::InvalidId)?;
                check_quantity(*quantity)?;
                if self.doc.get(&lines, line_id.as_str())?.is_some() {
                    return Err(OrderError::LineExists {
                        order_id: self.order_id.clone(),
                        line_id: line_id.clone(),
                    });
                }
                if self.doc.length(&lines) >= ORDER_LINES_MAX {
                    return Err(OrderError::TooManyLines);
                }
                let line = self
                    .doc
                    .put_object(&lines, line_id.as_str(), ObjType::Map)?;
                self.doc.put(&line, "sku", sku.as_str())?;
                self.doc.put(&line, "quantity", *quantity)?;
                self.doc.put(&line, "added_by", device_id)?;
                self.doc.put(&line, "added_at_ms", at_ms)?;
            }
            OrderEdit::SetQuantity { line_id, quantity } => {
                check_quantity(*quantity)?;
                let line = self.line_obj(&lines, line_id)?;
                self.doc.put(&line, "quantity", *quantity)?;
            }
            OrderEdit::RemoveLine { line_id } => {
                self.line_obj(&lines, line_id)?;
                self.doc.delete(&lines, line_id.as_str())?;
            }
            OrderEdit::SetTable(table) => {
                check_text(table.as_deref(), "table")?;
                self.doc
                    .put(ROOT, "table", table.as_deref().unwrap_or(""))?;
            }
            OrderEdit::SetCustomer(customer) => {
                check_text(customer.as_deref(), "customer")?;
                self.doc
                    .put(ROOT, "customer", customer.as_deref().unwrap_or(""))?;
            }
        }
        Ok(())
    }

    /// The typed order, `None` while its creation has not arrived from a peer.
    ///
    /// # Errors
    /// [`OrderError::Malformed`] naming the first key that breaks the schema.
    pub fn view(&self) -> Result<Option<OrderView>, OrderError> {
        if self.doc.get(ROOT, "order_id")?.is_none() {
            return Ok(None);
        }
        let order_id = self.string(&ROOT, "order_id")?;
        let lines_obj = self.lines_obj()?;
        let mut lines = Vec::new();
        for line_id in self.doc.keys(&lines_obj) {
            let Some((Value::Object(ObjType::Map), line)) =
                self.doc.get(&lines_obj, line_id.as_str())?
            else {
                return Err(self.malformed(format!("line {line_id:?} is not a map")));
            };
            lines.push(OrderLine {
                sku: self.string(&line, "sku")?,
                quantity: self.int(&line, "quantity")?,
                added_by: self.string(&line, "added_by")?,
                added_at_ms: self.int(&line, "added_at_ms")?,
                line_id,
            });
        }
        lines.sort_by(|a, b| (a.added_at_ms, &a.line_id).cmp(&(b.added_at_ms, &b.line_id)));
        let optional = |text: String| (!text.is_empty()).then_some(text);
        Ok(Some(OrderView {
            order_id,
            created_by: self.string(&ROOT, "created_by")?,
            created_at_ms: self.int(&ROOT, "created_at_ms")?,
            table: optional(self.string(&ROOT, "table")?),
            customer: optional(self.string(&ROOT, "customer")?),
            lines,
        }))
    }

    /// The whole document, compacted (replaces every stored chunk).
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// The changes since the last `save` or `save_incremental` (empty when none).
    pub fn save_incremental(&mut self) -> Vec<u8> {
        self.doc.save_incremental()
    }

    /// SHA-256 over the document's sorted heads: equal on two devices exactly when they
    /// hold the same changes.
    pub fn heads_digest(&mut self) -> [u8; 32] {
        let mut heads: Vec<ChangeHash> = self.doc.get_heads();
        heads.sort();
        let mut hasher = Sha256::new();
        for head in heads {
            hasher.update(head.0);
        }
        hasher.finalize().into()
    }

    /// The Automerge document (for the sync protocol).
    pub(crate) fn automerge(&mut self) -> &mut AutoCommit {
        &mut self.doc
    }

    fn lines_obj(&self) -> Result<ObjId, OrderError> {
        match self.doc.get(ROOT, "lines")? {
            Some((Value::Object(ObjType::Map), id)) => Ok(id),
            Some(_) => Err(self.malformed("lines is not a map".to_owned())),
            None => Err(OrderError::NotFound(self.order_id.clone())),
        }
    }

    fn line_obj(&self, lines: &ObjId, line_id: &str) -> Result<ObjId, OrderError> {
        match self.doc.get(lines, line_id)? {
            Some((Value::Object(ObjType::Map), id)) => Ok(id),
            Some(_) => Err(self.malformed(format!("line {line_id:?} is not a map"))),
            None => Err(OrderError::LineNotFound {
                order_id: self.order_id.clone(),
                line_id: line_id.to_owned(),
            }),
        }
    }

    fn string(&self, obj: &ObjId, key: &str) -> Result<String, OrderError> {
        match self.doc.get(obj, key)? {
            Some((Value::Scalar(value), _)) => match value.as_ref() {
                ScalarValue::Str(text) => Ok(text.to_string()),
                other => Err(self.malformed(format!("{key} is {other:?}, not a string"))),
            },
            _ => Err(self.malformed(format!("{key} is missing"))),
        }
    }

    fn int(&self, obj: &ObjId, key: &str) -> Result<i64, OrderError> {
        match self.doc.get(obj, key)? {
            Some((Value::Scalar(value), _)) => match value.as_ref() {
                ScalarValue::Int(n) => Ok(*n),
                other => Err(self.malformed(format!("{key} is {other:?}, not an integer"))),
            },
            _ => Err(self.malformed(format!("{key} is missing"))),
        }
    }

    fn malformed(&self, detail: String) -> OrderError {
        OrderError::Malformed {
            order_id: self.order_id.clone(),
            detail,
        }
    }
}

/// Automerge stamps changes in seconds; the time is informational (merge never uses it).
fn commit_options(at_ms: i64) -> CommitOptions {
    CommitOptions::default().with_time(at_ms.div_euclid(1000))
}

fn check_quantity(quantity: i64) -> Result<(), OrderError> {
    if (1..=ORDER_QUANTITY_MAX).contains(&quantity) {
        Ok(())
    } else {
        Err(OrderError::InvalidQuantity(quantity))
    }
}

fn check_text(text: Option<&str>, field: &'static str) -> Result<(), OrderError> {
    match text {
        Some(text)
            if text.chars().count() > ORDER_TEXT_LEN_MAX || text.chars().any(char::is_control) =>
        {
            Err(OrderError::InvalidText { field })
        }
        _ => Ok(()),
    }
}
