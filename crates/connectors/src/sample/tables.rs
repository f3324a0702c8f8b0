//! The three tables of the `sample` data set: their Arrow schemas and how a row's values
//! follow from its seed. Values are chosen to exercise loaders: unicode (including quotes,
//! tabs, newlines and emoji), empty strings, NULLs, decimals, nested JSON, and UTC
//! timestamps from before 1970 to after 2038.

use std::fmt::Write;

use elt_core::arrow::array::{
    BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int32Builder, Int64Builder,
    StringBuilder, TimestampMicrosecondBuilder,
};
use elt_core::arrow::datatypes::{DataType, Field, SchemaRef, TimeUnit};
use elt_core::batch::RowBatcher;
use elt_core::catalog::{json_field, schema};

use super::keyset::{Keyset, mix};

/// One of the sample streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// People who buy.
    Customers,
    /// Things they buy.
    Products,
    /// Who bought what.
    Orders,
}

const FIRST: &[&str] = &[
    "Zoë",
    "José",
    "Łukasz",
    "李",
    "Ólafur",
    "Saoirse",
    "Nguyễn",
    "Дмитрий",
    "Ada",
    "Chloé",
];
const LAST: &[&str] = &[
    "O'Brien",
    "Müller",
    "García",
    "雷",
    "Sigurðsson",
    "Kowalski",
    "Trần",
    "Иванов",
    "Lovelace",
    "Dupont",
];
const COUNTRIES: &[&str] = &[
    "US", "DE", "FR", "JP", "BR", "IN", "GB", "PL", "VN", "IS", "IE", "CN", "RU", "ES",
];
const TIERS: &[&str] = &["bronze", "silver", "gold", "platinum"];
const PRODUCTS: &[&str] = &[
    "Café crème ☕",
    "Überjacke",
    "寿司セット",
    "Smörgåsbord tray",
    "Piñata 🎉",
    "Desk lamp",
    "Bücherregal",
    "\"Quoted\" mug",
];
const CATEGORIES: &[&str] = &["kitchen", "apparel", "food", "party", "home", "office"];
const STATUSES: &[&str] = &["placed", "paid", "shipped", "delivered", "refunded"];
const NOTES: &[&str] = &[
    "Please leave at the door — merci!",
    "Bitte nicht knicken\nDanke",
    "配達前に電話してください",
    "He said \"fragile\"",
    "tab\tseparated",
    "🚚💨",
];
const CITIES: &[(&str, &str)] = &[
    ("Zürich", "8001"),
    ("São Paulo", "01000-000"),
    ("Kraków", "30-001"),
    ("東京", "100-0001"),
    ("Reykjavík", "101"),
];

/// 60 years in microseconds: created_at reaches back to the 1960s.
const SIXTY_YEARS_US: u64 = 60 * 365 * 86_400 * 1_000_000;
/// 2040-01-01T00:00:00Z: some deliveries are promised after 2038.
const Y2040_US: i64 = 2_208_988_800_000_000;

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// A small deterministic generator for one row's values.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 = mix(self.0);
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

impl Table {
    /// All tables, in the order the source lists them.
    pub const ALL: [Table; 3] = [Table::Customers, Table::Products, Table::Orders];

    /// The stream name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Customers => "customers",
            Self::Products => "products",
            Self::Orders => "orders",
        }
    }

    /// Tells the streams' hashes apart.
    pub fn salt(self) -> u64 {
        self as u64 + 1
    }

    /// The Arrow schema; `updated_at` is always the last column.
    pub fn schema(self) -> SchemaRef {
        let id = Field::new("id", DataType::Int64, false);
        let updated_at = Field::new("updated_at", ts(), false);
        let fields = match self {
            Self::Customers => vec![
                id,
                Field::new("name", DataType::Utf8, false),
                Field::new("email", DataType::Utf8, true),
                Field::new("country", DataType::Utf8, false),
                Field::new("is_active", DataType::Boolean, false),
                Field::new("lifetime_value", DataType::Decimal128(12, 2), true),
                json_field("attributes", false),
                Field::new("created_at", ts(), false),
                updated_at,
            ],
            Self::Products => vec![
                id,
                Field::new("sku", DataType::Utf8, false),
                Field::new("name", DataType::Utf8, false),
                Field::new("category", DataType::Utf8, false),
                Field::new("price", DataType::Decimal128(10, 2), false),
                Field::new("weight_kg", DataType::Float64, true),
                json_field("attributes", false),
                Field::new("created_at", ts(), false),
                updated_at,
            ],
            Self::Orders => vec![
                id,
                Field::new("customer_id", DataType::Int64, false),
                Field::new("product_id", DataType::Int64, false),
                Field::new("quantity", DataType::Int32, false),
                Field::new("unit_price", DataType::Decimal128(10, 2), false),
                Field::new("total", DataType::Decimal128(12, 2), false),
                Field::new("status", DataType::Utf8, false),
                Field::new("note", DataType::Utf8, true),
                json_field("shipping", true),
                Field::new("placed_at", ts(), false),
                Field::new("promised_on", DataType::Date32, true),
                updated_at,
            ],
        };
        schema(fields)
    }

    /// Appends row `id` at `version` to `rows`. `counts` are the base customer and product
    /// counts that orders refer to.
    pub fn append_row(
        self,
        rows: &mut RowBatcher,
        keys: &Keyset,
        id: u64,
        version: u32,
        counts: (u64, u64),
    ) {
        let mut d = Draw(keys.row_seed(id, version));
        let updated_at = Keyset::updated_at(id, version);
        // Creation does not change with updates: it is drawn from the id alone.
        let created_at =
            Keyset::updated_at(id, 0) - (mix(keys.row_seed(id, 0)) % SIXTY_YEARS_US) as i64;
        rows.column::<Int64Builder>(0).append_value(id as i64);
        match self {
            Self::Customers => {
                let (first, last) = (d.pick(FIRST), d.pick(LAST));
                let name = rows.column::<StringBuilder>(1);
                let _ = write!(name, "{first} {last}");
                name.append_value("");
                let email = rows.column::<StringBuilder>(2);
                if d.chance(5) {
                    email.append_null();
                } else {
                    let _ = write!(email, "customer{id}@example.com");
                    email.append_value("");
                }
                rows.column::<StringBuilder>(3)
                    .append_value(d.pick(COUNTRIES));
                rows.column::<BooleanBuilder>(4).append_value(!d.chance(10));
                let ltv = (!d.chance(3)).then(|| d.below(10_000_000) as i128);
                rows.column::<Decimal128Builder>(5).append_option(ltv);
                let (tier, score, news) = (d.pick(TIERS), d.below(1000), d.chance(50));
                let attributes = rows.column::<StringBuilder>(6);
                let _ = write!(
                    attributes,
                    r#"{{"tier":"{tier}","score":{score},"tags":["v{version}","c{}"],"prefs":{{"newsletter":{news},"language":null}}}}"#,
                    id % 7
                );
                attributes.append_value("");
                rows.column::<TimestampMicrosecondBuilder>(7)
                    .append_value(created_at);
                rows.column::<TimestampMicrosecondBuilder>(8)
                    .append_value(updated_at);
            }
            Self::Products => {
                let sku = rows.column::<StringBuilder>(1);
                let _ = write!(sku, "SKU-{id:06}");
                sku.append_value("");
                rows.column::<StringBuilder>(2)
                    .append_value(d.pick(PRODUCTS));
                rows.column::<StringBuilder>(3)
                    .append_value(d.pick(CATEGORIES));
                rows.column::<Decimal128Builder>(4)
                    .append_value(100 + d.below(99_900) as i128);
                let weight = (!d.chance(10)).then(|| d.below(50_000) as f64 / 1000.0);
                rows.column::<Float64Builder>(5).append_option(weight);
                let (w, h) = (d.below(200), d.below(200));
                let attributes = rows.column::<StringBuilder>(6);
                let _ = write!(
                    attributes,
                    r#"{{"dimensions_cm":{{"w":{w},"h":{h}}},"fragile":{}}}"#,
                    w < 20
                );
                attributes.append_value("");
                rows.column::<TimestampMicrosecondBuilder>(7)
                    .append_value(created_at);
                rows.column::<TimestampMicrosecondBuilder>(8)
                    .append_value(updated_at);
            }
            Self::Orders => {
                let (customers, products) = counts;
                rows.column::<Int64Builder>(1)
                    .append_value(1 + d.below(customers.max(1)) as i64);
                rows.column::<Int64Builder>(2)
                    .append_value(1 + d.below(products.max(1)) as i64);
                let quantity = 1 + d.below(9) as i32;
                let unit = 100 + d.below(49_900) as i128;
                rows.column::<Int32Builder>(3).append_value(quantity);
                rows.column::<Decimal128Builder>(4).append_value(unit);
                rows.column::<Decimal128Builder>(5)
                    .append_value(unit * i128::from(quantity));
                let status =
                    STATUSES[(version as usize + d.below(2) as usize).min(STATUSES.len() - 1)];
                rows.column::<StringBuilder>(6).append_value(status);
                let note = match d.below(20) {
                    0..=7 => None,
                    8 => Some(""),
                    _ => Some(d.pick(NOTES)),
                };
                rows.column::<StringBuilder>(7).append_option(note);
                let shipping = rows.column::<StringBuilder>(8);
                if d.chance(30) {
                    shipping.append_null();
                } else {
                    let (city, zip) = CITIES[d.below(CITIES.len() as u64) as usize];
                    let express = d.chance(25);
                    let _ = write!(
                        shipping,
                        r#"{{"method":"{}","address":{{"city":"{city}","zip":"{zip}"}},"gift":{}}}"#,
                        if express { "express" } else { "standard" },
                        d.chance(5)
                    );
                    shipping.append_value("");
                }
                let placed_at = updated_at - d.below(86_400_000_000) as i64;
                rows.column::<TimestampMicrosecondBuilder>(9)
                    .append_value(placed_at);
                // A few promises far in the future (after 2038), some unknown.
                let promised = match d.below(50) {
                    0 => Some(
                        ((Y2040_US + placed_at - Keyset::updated_at(0, 0)) / 86_400_000_000) as i32,
                    ),
                    1..=5 => None,
                    _ => Some((placed_at / 86_400_000_000) as i32 + 3),
                };
                rows.column::<Date32Builder>(10).append_option(promised);
                rows.column::<TimestampMicrosecondBuilder>(11)
                    .append_value(updated_at);
            }
        }
    }
}
