//! Fixtures shared by the integration tests: hand-written catalogs and request builders.
#![allow(dead_code)]

use posmesh_domain::{
    Catalog, CatalogFile, CatalogItemFile, Consumption, Currency, Discount, LineRequest,
    SaleRequest, TaxClass, TenderKind, TenderRequest,
};

pub fn currency(code: &str) -> Currency {
    Currency::from_code(code).expect("known currency")
}

pub fn tax_class(id: &str, take_away_rate_bp: u32, eat_in_rate_bp: u32) -> TaxClass {
    TaxClass {
        id: id.to_owned(),
        take_away_rate_bp,
        eat_in_rate_bp,
    }
}

pub fn item(sku: &str, name: &str, price_minor: i64, tax_class: &str) -> CatalogItemFile {
    CatalogItemFile {
        sku: sku.to_owned(),
        name: name.to_owned(),
        price_minor,
        tax_class: tax_class.to_owned(),
    }
}

/// A UK café (HMRC VAT Notice 709/1): hot drinks standard-rated both ways, cold food
/// zero-rated take-away and standard-rated eat-in, bread zero-rated.
pub fn uk_file() -> CatalogFile {
    CatalogFile {
        version: 7,
        currency: "GBP".to_owned(),
        cash_rounding_increment_minor: None,
        tax_classes: vec![
            tax_class("hot_drink", 2000, 2000),
            tax_class("cold_food", 0, 2000),
            tax_class("zero", 0, 0),
        ],
        items: vec![
            item("TEA", "Tea", 120, "hot_drink"),
            item("COFFEE", "Coffee", 99, "hot_drink"),
            item("SANDWICH", "Sandwich", 350, "cold_food"),
            item("BREAD", "Bread", 210, "zero"),
            item("MUFFIN", "Muffin   ", 250, "cold_food"),
            item("HUGE", "Huge", i64::MAX / 2 + 1, "zero"),
        ],
    }
}

pub fn uk() -> Catalog {
    Catalog::from_file(uk_file()).expect("valid UK catalog")
}

/// A Swiss café: cash rounded to 5 Rappen; VAT 8.1 % eat-in, 2.6 % take-away food.
pub fn chf() -> Catalog {
    Catalog::from_file(CatalogFile {
        version: 1,
        currency: "CHF".to_owned(),
        cash_rounding_increment_minor: Some(5),
        tax_classes: vec![tax_class("food", 260, 810)],
        items: vec![
            item("KAFFEE", "Kaffee", 433, "food"),
            item("GIPFELI", "Gipfeli", 432, "food"),
        ],
    })
    .expect("valid CHF catalog")
}

/// A Japanese konbini: yen have no minor unit; food 8 % take-away, 10 % eat-in.
pub fn jpy() -> Catalog {
    Catalog::from_file(CatalogFile {
        version: 3,
        currency: "JPY".to_owned(),
        cash_rounding_increment_minor: None,
        tax_classes: vec![tax_class("food", 800, 1000)],
        items: vec![item("ONIGIRI", "Onigiri", 150, "food")],
    })
    .expect("valid JPY catalog")
}

pub fn line(sku: &str, quantity: i64) -> LineRequest {
    LineRequest {
        sku: sku.to_owned(),
        quantity,
        unit_price_override_minor: None,
        discount: None,
        consumption: None,
    }
}

pub fn tender(kind: TenderKind, amount_minor: i64) -> TenderRequest {
    TenderRequest {
        kind,
        amount_minor,
        reference: None,
    }
}

pub fn sale(code: &str, lines: Vec<LineRequest>, tenders: Vec<TenderRequest>) -> SaleRequest {
    SaleRequest {
        currency: currency(code),
        consumption: Consumption::TakeAway,
        lines,
        discount: None,
        tenders,
    }
}

pub fn with_discount(mut req: SaleRequest, discount: Discount) -> SaleRequest {
    req.discount = Some(discount);
    req
}
