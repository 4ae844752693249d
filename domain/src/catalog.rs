//! [`Catalog`]: the validated items, prices and tax classes a store sells from.

use std::collections::BTreeMap;

pub use crate::catalog_error::CatalogError;
pub use crate::catalog_file::{CatalogFile, CatalogItemFile};
use crate::limits::{
    CATALOG_ITEMS_MAX, CATALOG_TAX_CLASSES_MAX, ITEM_NAME_BYTES_MAX, SKU_BYTES_MAX,
    TAX_CLASS_ID_BYTES_MAX, TAX_RATE_BP_MAX,
};
use crate::money::Currency;
use crate::tax::{Consumption, TaxClass};

/// One validated item: SKU, trimmed name, VAT-inclusive unit price (minor units) and tax class.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CatalogItem {
    /// Stock-keeping unit, `[A-Z0-9_-]`.
    pub sku: String,
    /// Display name, surrounding whitespace trimmed.
    pub name: String,
    /// Unit price including VAT, minor units of the catalog currency (`>= 0`).
    pub price_minor: i64,
    /// Id of the item's tax class (always present in the catalog).
    pub tax_class: String,
}

/// A validated catalog: every item has a valid unique SKU, a unique name, a non-negative
/// price and an existing tax class. Built only by [`Catalog::from_file`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Catalog {
    version: u64,
    currency: Currency,
    cash_rounding_increment_minor: Option<i64>,
    tax_classes: BTreeMap<String, TaxClass>,
    items: BTreeMap<String, CatalogItem>,
    sku_by_name: BTreeMap<String, String>,
    /// The store-wide tax version whose rates replaced the file's (0: the file's own rates).
    tax_version: u64,
}

impl Catalog {
    /// Validates a catalog file.
    ///
    /// Checks, in this order: `version >= 1`; `currency` is ISO 4217; the cash rounding
    /// increment, if set, is `> 0`; tax class ids are non-empty and unique and rates
    /// `<= 10 000` bp; SKUs are non-empty `[A-Z0-9_-]` and unique; names are non-empty and
    /// unique after trimming; prices are `>= 0`; every tax class referred to exists. Counts
    /// and lengths are bounded by [`crate::limits`].
    ///
    /// # Errors
    /// The first [`CatalogError`] found.
    pub fn from_file(file: CatalogFile) -> Result<Catalog, CatalogError> {
        if file.version == 0 {
            return Err(CatalogError::InvalidVersion {
                version: file.version,
            });
        }
        let currency =
            Currency::from_code(&file.currency).map_err(|_| CatalogError::UnknownCurrency {
                currency: file.currency.clone(),
            })?;
        if let Some(increment_minor) = file.cash_rounding_increment_minor {
            if increment_minor <= 0 {
                return Err(CatalogError::InvalidCashRoundingIncrement { increment_minor });
            }
        }
        let tax_classes = validate_tax_classes(file.tax_classes)?;
        let mut catalog = Catalog {
            version: file.version,
            currency,
            cash_rounding_increment_minor: file.cash_rounding_increment_minor,
            tax_classes,
            items: BTreeMap::new(),
            sku_by_name: BTreeMap::new(),
            tax_version: 0,
        };
        if file.items.len() > CATALOG_ITEMS_MAX {
            return Err(CatalogError::TooManyItems {
                count: file.items.len(),
            });
        }
        for (index, item) in file.items.into_iter().enumerate() {
            catalog.insert_item(index, item)?;
        }
        debug_assert_eq!(catalog.items.len(), catalog.sku_by_name.len());
        Ok(catalog)
    }

    /// The catalog version (`>= 1`).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The store-wide tax version whose rates this catalog's tax classes carry (set by
    /// [`Catalog::with_tax_rates`]); 0 while they are the catalog file's own rates.
    pub fn tax_version(&self) -> u64 {
        self.tax_version
    }

    /// This catalog with the VAT rates of its tax classes replaced by a store-wide tax
    /// version: for each class and [`Consumption`], `rate(class_id, consumption)` gives the
    /// new rate in basis points, or `None` to keep the catalog's. Sales priced from the
    /// result record `tax_version` ([`crate::PricedSale::tax_version`]). Items, prices and
    /// the catalog version are unchanged.
    ///
    /// # Errors
    /// [`CatalogError::TaxRateOutOfRange`] if a rate is above `TAX_RATE_BP_MAX` (100 %);
    /// nothing is replaced then.
    pub fn with_tax_rates(
        &self,
        tax_version: u64,
        rate: impl Fn(&str, Consumption) -> Option<u32>,
    ) -> Result<Catalog, CatalogError> {
        let mut catalog = self.clone();
        for class in catalog.tax_classes.values_mut() {
            let take_away = rate(&class.id, Consumption::TakeAway);
            let eat_in = rate(&class.id, Consumption::EatIn);
            for rate_bp in [take_away, eat_in].into_iter().flatten() {
                if rate_bp > TAX_RATE_BP_MAX {
                    return Err(CatalogError::TaxRateOutOfRange {
                        id: class.id.clone(),
                        rate_bp,
                    });
                }
            }
            class.take_away_rate_bp = take_away.unwrap_or(class.take_away_rate_bp);
            class.eat_in_rate_bp = eat_in.unwrap_or(class.eat_in_rate_bp);
        }
        catalog.tax_version = tax_version;
        Ok(catalog)
    }

    /// The currency of every price.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// Cash rounding step in minor units (`> 0`), if cash totals are rounded.
    pub fn cash_rounding_increment_minor(&self) -> Option<i64> {
        self.cash_rounding_increment_minor
    }

    /// The item with this SKU (exact match).
    pub fn item(&self, sku: &str) -> Option<&CatalogItem> {
        self.items.get(sku)
    }

    /// The item with this name, compared after trimming surrounding whitespace (tills write
    /// trailing spaces); case-sensitive.
    pub fn item_by_name(&self, name: &str) -> Option<&CatalogItem> {
        let sku = self.sku_by_name.get(name.trim())?;
        self.items.get(sku)
    }

    /// All items, in SKU order (byte-wise).
    pub fn items(&self) -> impl Iterator<Item = &CatalogItem> {
        self.items.values()
    }

    /// The tax class with this id.
    pub fn tax_class(&self, id: &str) -> Option<&TaxClass> {
        self.tax_classes.get(id)
    }

    /// The item with this SKU and its tax class. Always both or neither: `from_file`
    /// guarantees every item's tax class exists.
    pub fn item_with_tax_class(&self, sku: &str) -> Option<(&CatalogItem, &TaxClass)> {
        let item = self.items.get(sku)?;
        let tax_class = self.tax_classes.get(&item.tax_class);
        debug_assert!(
            tax_class.is_some(),
            "validated catalog: tax class of {sku} exists"
        );
        Some((item, tax_class?))
    }

    /// All tax classes, in id order.
    pub fn tax_classes(&self) -> impl Iterator<Item = &TaxClass> {
        self.tax_classes.values()
    }

    /// The catalog as a file again (items in SKU order, names trimmed); `from_file` of the
    /// result gives an equal catalog.
    pub fn to_file(&self) -> CatalogFile {
        CatalogFile {
            version: self.version,
            currency: self.currency.code().to_owned(),
            cash_rounding_increment_minor: self.cash_rounding_increment_minor,
            tax_classes: self.tax_classes.values().cloned().collect(),
            items: self.items.values().map(item_to_file).collect(),
        }
    }

    fn insert_item(&mut self, index: usize, item: CatalogItemFile) -> Result<(), CatalogError> {
        if !is_valid_sku(&item.sku) {
            return Err(CatalogError::InvalidSku {
                index,
                sku: item.sku,
            });
        }
        if self.items.contains_key(&item.sku) {
            return Err(CatalogError::DuplicateSku { sku: item.sku });
        }
        let name = item.name.trim();
        if name.is_empty() || name.len() > ITEM_NAME_BYTES_MAX {
            return Err(CatalogError::InvalidName {
                sku: item.sku,
                name: item.name,
            });
        }
        if let Some(other_sku) = self.sku_by_name.get(name) {
            let (name, other_sku) = (name.to_owned(), other_sku.clone());
            return Err(CatalogError::DuplicateName {
                sku: item.sku,
                name,
                other_sku,
            });
        }
        if item.price_minor < 0 {
            let price_minor = item.price_minor;
            return Err(CatalogError::NegativePrice {
                sku: item.sku,
                price_minor,
            });
        }
        if !self.tax_classes.contains_key(&item.tax_class) {
            let tax_class = item.tax_class;
            return Err(CatalogError::UnknownTaxClass {
                sku: item.sku,
                tax_class,
            });
        }
        let name = name.to_owned();
        self.sku_by_name.insert(name.clone(), item.sku.clone());
        let validated = CatalogItem {
            sku: item.sku.clone(),
            name,
            price_minor: item.price_minor,
            tax_class: item.tax_class,
        };
        self.items.insert(item.sku, validated);
        Ok(())
    }
}

fn item_to_file(item: &CatalogItem) -> CatalogItemFile {
    CatalogItemFile {
        sku: item.sku.clone(),
        name: item.name.clone(),
        price_minor: item.price_minor,
        tax_class: item.tax_class.clone(),
    }
}

fn is_valid_sku(sku: &str) -> bool {
    !sku.is_empty()
        && sku.len() <= SKU_BYTES_MAX
        && sku
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn validate_tax_classes(
    classes: Vec<TaxClass>,
) -> Result<BTreeMap<String, TaxClass>, CatalogError> {
    if classes.len() > CATALOG_TAX_CLASSES_MAX {
        return Err(CatalogError::TooManyTaxClasses {
            count: classes.len(),
        });
    }
    let mut by_id = BTreeMap::new();
    for (index, class) in classes.into_iter().enumerate() {
        if class.id.is_empty() || class.id.len() > TAX_CLASS_ID_BYTES_MAX {
            return Err(CatalogError::InvalidTaxClassId {
                index,
                id: class.id,
            });
        }
        for rate_bp in [class.take_away_rate_bp, class.eat_in_rate_bp] {
            if rate_bp > TAX_RATE_BP_MAX {
                return Err(CatalogError::TaxRateOutOfRange {
                    id: class.id,
                    rate_bp,
                });
            }
        }
        if by_id.contains_key(&class.id) {
            return Err(CatalogError::DuplicateTaxClass { id: class.id });
        }
        by_id.insert(class.id.clone(), class);
    }
    Ok(by_id)
}
