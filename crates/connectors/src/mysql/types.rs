//! MySQL and MariaDB column types to Arrow: which Arrow type a column becomes, the
//! select-list expression that reads it, and how a bound value is cast to compare with it.
//!
//! Integers keep their width and signedness (`int unsigned` is `UInt32`); decimals up to
//! 38 digits are exact `Decimal128`, wider ones exact text; `time` is an interval (MySQL's
//! runs from -838:59:59 to 838:59:59); `bit(1)` is a boolean; spatial types are read as
//! WKT text. Values the driver cannot hand over exactly (decimals, dates and times) are
//! selected as text and parsed here, see `values.rs`. Unknown types are read as text, with
//! a note, never a panic.

use elt_core::arrow::datatypes::{DataType, Field, IntervalUnit, TimeUnit};
use elt_core::catalog::{json_field, uuid_field};

/// How a column is read and decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An integer of `bytes` bytes (`mediumint` is 3), signed or not.
    Int { bytes: u8, unsigned: bool },
    /// `year`.
    Year,
    /// `bit(1)`.
    Bool,
    /// `bit(2)` to `bit(64)`.
    Bits,
    /// `float`.
    Float,
    /// `double`.
    Double,
    /// `decimal(p, s)` with p <= 38.
    Decimal { precision: u8, scale: i8 },
    /// Text: `char`, `varchar`, the `text` types, `enum`, `set`, and fallbacks.
    Text,
    /// `json` (MySQL's type, or MariaDB's `longtext` checked by `json_valid`).
    Json,
    /// `binary`, `varbinary`, the `blob` types.
    Binary,
    /// `date`.
    Date,
    /// `datetime` (no zone).
    DateTime,
    /// `timestamp` (read in UTC).
    Timestamp,
    /// `time` (a signed duration).
    Time,
    /// MariaDB's `uuid`.
    Uuid,
}

impl Kind {
    /// The kind of a column from `information_schema.COLUMNS`, and why it is read as text
    /// when it is a fallback.
    pub fn of(
        data_type: &str,
        column_type: &str,
        precision: Option<u64>,
        scale: Option<u64>,
    ) -> (Kind, Option<String>) {
        let unsigned = column_type.contains("unsigned");
        let int = |bytes| Kind::Int { bytes, unsigned };
        let kind = match data_type {
            "tinyint" => int(1),
            "smallint" => int(2),
            "mediumint" => int(3),
            "int" | "integer" => int(4),
            "bigint" => int(8),
            "year" => Kind::Year,
            "bit" if column_type == "bit(1)" => Kind::Bool,
            "bit" => Kind::Bits,
            "float" => Kind::Float,
            "double" | "real" => Kind::Double,
            "decimal" | "numeric" => match (precision, scale) {
                (Some(p @ 1..=38), Some(s)) if s <= p => Kind::Decimal {
                    precision: p as u8,
                    scale: s as i8,
                },
                _ => {
                    return (
                        Kind::Text,
                        Some(format!(
                            "{column_type} is wider than 38 digits; read as exact text"
                        )),
                    );
                }
            },
            "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum"
            | "set" => Kind::Text,
            "json" => Kind::Json,
            "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
                Kind::Binary
            }
            "date" => Kind::Date,
            "datetime" => Kind::DateTime,
            "timestamp" => Kind::Timestamp,
            "time" => Kind::Time,
            "uuid" => Kind::Uuid,
            spatial if is_spatial(spatial) => {
                return (
                    Kind::Text,
                    Some(format!("{column_type} is read as WKT text")),
                );
            }
            other => {
                return (
                    Kind::Text,
                    Some(format!("type {other} has no Arrow mapping; read as text")),
                );
            }
        };
        (kind, None)
    }

    /// The Arrow field of a column of this kind.
    pub fn field(self, name: &str, nullable: bool) -> Field {
        use DataType as D;
        let data_type = match self {
            Kind::Int { bytes, unsigned } => match (bytes, unsigned) {
                (1, false) => D::Int8,
                (1, true) => D::UInt8,
                (2, false) => D::Int16,
                (2, true) => D::UInt16,
                (3 | 4, false) => D::Int32,
                (3 | 4, true) => D::UInt32,
                (_, false) => D::Int64,
                (_, true) => D::UInt64,
            },
            Kind::Year => D::Int16,
            Kind::Bool => D::Boolean,
            Kind::Bits => D::UInt64,
            Kind::Float => D::Float32,
            Kind::Double => D::Float64,
            Kind::Decimal { precision, scale } => D::Decimal128(precision, scale),
            Kind::Text => D::Utf8,
            Kind::Json => return json_field(name, nullable),
            Kind::Uuid => return uuid_field(name, nullable),
            Kind::Binary => D::Binary,
            Kind::Date => D::Date32,
            Kind::DateTime => D::Timestamp(TimeUnit::Microsecond, None),
            Kind::Timestamp => D::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Kind::Time => D::Interval(IntervalUnit::MonthDayNano),
        };
        Field::new(name, data_type, nullable)
    }

    /// Whether values of this kind can be a cursor or a key in a keyset: ordered the same
    /// way by MySQL and by their state form, and exact in state JSON.
    pub fn is_keyset_type(self) -> bool {
        matches!(
            self,
            Kind::Int { .. }
                | Kind::Year
                | Kind::Decimal { .. }
                | Kind::Text
                | Kind::Date
                | Kind::DateTime
                | Kind::Timestamp
        )
    }

    /// Whether a lookback window (seconds) applies to a cursor of this kind.
    pub fn is_temporal(self) -> bool {
        matches!(self, Kind::Date | Kind::DateTime | Kind::Timestamp)
    }

    /// The SQL that a bound text value is cast with to compare with this kind (`?` when it
    /// compares as text, under the column's collation).
    pub fn param(self) -> String {
        match self {
            Kind::Int { unsigned: true, .. } | Kind::Bool | Kind::Bits => {
                "CAST(? AS UNSIGNED)".into()
            }
            Kind::Int { .. } | Kind::Year => "CAST(? AS SIGNED)".into(),
            Kind::Decimal { precision, scale } => {
                format!("CAST(? AS DECIMAL({precision},{scale}))")
            }
            Kind::Date => "CAST(? AS DATE)".into(),
            Kind::DateTime | Kind::Timestamp => "CAST(? AS DATETIME(6))".into(),
            _ => "?".into(),
        }
    }
}

fn is_spatial(data_type: &str) -> bool {
    matches!(
        data_type,
        "geometry"
            | "point"
            | "linestring"
            | "polygon"
            | "multipoint"
            | "multilinestring"
            | "multipolygon"
            | "geometrycollection"
            | "geomcollection"
    )
}

/// A column as it is read.
#[derive(Debug, Clone)]
pub struct Column {
    /// The column name.
    pub name: String,
    /// How it is read and decoded.
    pub kind: Kind,
    /// Whether it may be NULL.
    pub nullable: bool,
    /// The type as MySQL prints it (`COLUMN_TYPE`), for messages.
    pub sql_type: String,
    /// The select-list expression.
    pub select: String,
    /// Why it is read as text instead of its own type, if it is.
    pub fallback: Option<String>,
}

impl Column {
    /// A column from its catalog row.
    pub fn new(
        name: String,
        data_type: &str,
        sql_type: String,
        nullable: bool,
        precision: Option<u64>,
        scale: Option<u64>,
    ) -> Self {
        let (kind, fallback) = Kind::of(data_type, &sql_type, precision, scale);
        let quoted = quote_mysql(&name);
        let select = match kind {
            _ if fallback.is_some() && is_spatial(data_type) => format!("ST_AsText({quoted})"),
            Kind::Year => format!("CAST({quoted} AS SIGNED)"),
            Kind::Bool | Kind::Bits => format!("CAST({quoted} AS UNSIGNED)"),
            Kind::Int { .. } | Kind::Float | Kind::Double | Kind::Binary => quoted,
            Kind::Text if fallback.is_none() && !matches!(data_type, "enum" | "set") => quoted,
            _ => format!("CAST({quoted} AS CHAR)"),
        };
        Column {
            name,
            kind,
            nullable,
            sql_type,
            select,
            fallback,
        }
    }

    /// The quoted column name.
    pub fn quoted(&self) -> String {
        quote_mysql(&self.name)
    }
}

impl elt_core::sql::SqlColumn for Column {
    fn name(&self) -> &str {
        &self.name
    }

    fn sql_type(&self) -> &str {
        &self.sql_type
    }

    fn orders_keyset(&self) -> bool {
        self.kind.is_keyset_type() && self.fallback.is_none()
    }

    fn field(&self) -> Field {
        self.kind.field(&self.name, self.nullable)
    }

    fn fallback(&self) -> Option<&str> {
        self.fallback.as_deref()
    }
}

/// A MySQL identifier in backquotes, a backquote doubled.
pub fn quote_mysql(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// `database`.`table`.
pub fn qualified(database: &str, table: &str) -> String {
    format!("{}.{}", quote_mysql(database), quote_mysql(table))
}
