//! PostgreSQL column types to Arrow: which Arrow type a column becomes and how its binary
//! COPY value is decoded. Types without a native mapping are selected as `::text` (logged,
//! never a panic); arrays of types without a typed mapping become JSON.

use std::sync::Arc;

use elt_core::arrow::datatypes::{DataType, Field, IntervalUnit, TimeUnit};
use elt_core::catalog::{json_field, uuid_field};
use elt_core::quote_ident;

/// How a column's binary COPY value is decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `bool`.
    Bool,
    /// `int2`.
    Int16,
    /// `int4`.
    Int32,
    /// `int8`.
    Int64,
    /// `float4`.
    Float32,
    /// `float8` (NaN and ±Infinity kept).
    Float64,
    /// `numeric(p, s)` with p <= 38.
    Decimal { precision: u8, scale: i8 },
    /// UTF-8 text: `text`, `varchar`, `char`, `name`, and everything selected as `::text`.
    Text,
    /// `json` (text).
    Json,
    /// `jsonb` (a version byte, then text).
    Jsonb,
    /// `bytea`.
    Bytea,
    /// `date`.
    Date,
    /// `time` (microseconds).
    Time,
    /// `timestamp` (microseconds, no zone).
    Timestamp,
    /// `timestamptz` (microseconds, UTC).
    TimestampTz,
    /// `interval`.
    Interval,
    /// `uuid`.
    Uuid,
    /// A one-dimensional array of a typed element.
    List(Box<Kind>),
    /// An unbounded `numeric` sent in binary (logical replication), as its exact text; a
    /// COPY reads such a column as `::text` ([`Kind::Text`]) instead.
    NumericText,
}

impl Kind {
    /// The Arrow field of a column of this kind.
    pub fn field(&self, name: &str, nullable: bool) -> Field {
        match self {
            Kind::Json | Kind::Jsonb => json_field(name, nullable),
            Kind::Uuid => uuid_field(name, nullable),
            other => Field::new(name, other.data_type(), nullable),
        }
    }

    fn data_type(&self) -> DataType {
        match self {
            Kind::Bool => DataType::Boolean,
            Kind::Int16 => DataType::Int16,
            Kind::Int32 => DataType::Int32,
            Kind::Int64 => DataType::Int64,
            Kind::Float32 => DataType::Float32,
            Kind::Float64 => DataType::Float64,
            Kind::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale),
            Kind::Text | Kind::Json | Kind::Jsonb | Kind::NumericText => DataType::Utf8,
            Kind::Bytea => DataType::Binary,
            Kind::Date => DataType::Date32,
            Kind::Time => DataType::Time64(TimeUnit::Microsecond),
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Kind::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Kind::Interval => DataType::Interval(IntervalUnit::MonthDayNano),
            Kind::Uuid => DataType::FixedSizeBinary(16),
            Kind::List(item) => DataType::List(Arc::new(item.field("item", true))),
        }
    }

    /// Whether values of this kind can be a cursor or a key in a keyset (ordered, and
    /// representable in state JSON exactly).
    pub fn is_keyset_type(&self) -> bool {
        matches!(
            self,
            Kind::Int16
                | Kind::Int32
                | Kind::Int64
                | Kind::Decimal { .. }
                | Kind::Text
                | Kind::Date
                | Kind::Timestamp
                | Kind::TimestampTz
                | Kind::Uuid
        )
    }
}

/// A column as it is read: its kind, and the expression that selects it.
#[derive(Debug, Clone)]
pub struct Column {
    /// The column name.
    pub name: String,
    /// How it is decoded.
    pub kind: Kind,
    /// Whether it may be NULL.
    pub nullable: bool,
    /// The SQL type as PostgreSQL prints it (`format_type`), for casts of bound values.
    pub sql_type: String,
    /// The select-list expression.
    pub select: String,
    /// Why it is read as text or JSON instead of its own type, if it is.
    pub fallback: Option<String>,
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

/// What the catalog says of a column's type (a domain already resolved to its base).
#[derive(Debug, Clone)]
pub struct TypeInfo {
    /// The base type's name (`int4`, `numeric`, `_int4` for arrays ...).
    pub name: String,
    /// `b` base, `e` enum, `d` domain, `c` composite, `r` range ...
    pub typtype: String,
    /// The type modifier (numeric precision and scale), -1 when none.
    pub typmod: i32,
    /// For arrays, the element type's name.
    pub element: Option<String>,
}

fn scalar_kind(name: &str, typmod: i32) -> Option<Kind> {
    Some(match name {
        "bool" => Kind::Bool,
        "int2" => Kind::Int16,
        "int4" => Kind::Int32,
        "int8" => Kind::Int64,
        "float4" => Kind::Float32,
        "float8" => Kind::Float64,
        "numeric" => numeric_kind(typmod)?,
        "text" | "varchar" | "bpchar" | "name" | "citext" => Kind::Text,
        "json" => Kind::Json,
        "jsonb" => Kind::Jsonb,
        "bytea" => Kind::Bytea,
        "date" => Kind::Date,
        "time" => Kind::Time,
        "timestamp" => Kind::Timestamp,
        "timestamptz" => Kind::TimestampTz,
        "interval" => Kind::Interval,
        "uuid" => Kind::Uuid,
        _ => return None,
    })
}

/// `numeric(p, s)` fits Decimal128 when p <= 38 and 0 <= s <= p; unbounded numeric does
/// not (it can hold 131072 digits) and is read as exact text.
fn numeric_kind(typmod: i32) -> Option<Kind> {
    if typmod < 4 {
        return None;
    }
    let precision = ((typmod - 4) >> 16) & 0xffff;
    // PostgreSQL 15 stores the scale as an 11-bit signed number.
    let scale = ((((typmod - 4) & 0x7ff) ^ 1024) - 1024) as i64;
    (precision <= 38 && (0..=precision as i64).contains(&scale)).then_some(Kind::Decimal {
        precision: precision as u8,
        scale: scale as i8,
    })
}

/// Decides how a column is read.
pub fn column(name: &str, ty: &TypeInfo, nullable: bool, sql_type: &str) -> Column {
    let quoted = quote_ident(name);
    let (kind, select, fallback) = if ty.typtype == "e" {
        (Kind::Text, format!("{quoted}::text"), None)
    } else if let Some(element) = &ty.element {
        match scalar_kind(element, ty.typmod).filter(|k| !matches!(k, Kind::Json | Kind::Jsonb)) {
            Some(item) => (Kind::List(Box::new(item)), quoted, None),
            None => (
                Kind::Json,
                format!("to_jsonb({quoted})::text"),
                Some(format!("array of {element} read as JSON")),
            ),
        }
    } else {
        match scalar_kind(&ty.name, ty.typmod) {
            Some(kind) => (kind, quoted, None),
            None if ty.name == "numeric" => (Kind::Text, format!("{quoted}::text"), None),
            // `inet::text` always adds the mask (`10.0.1.1/32`); the type's own output
            // function omits a full-length one, as psql and every client show it.
            None if ty.name == "inet" => (
                Kind::Text,
                format!("inet_out({quoted})::text"),
                Some("type inet read as text".to_owned()),
            ),
            None => (
                Kind::Text,
                format!("{quoted}::text"),
                Some(format!("type {} read as text", ty.name)),
            ),
        }
    };
    Column {
        name: name.to_owned(),
        kind,
        nullable,
        sql_type: sql_type.to_owned(),
        select,
        fallback,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, typmod: i32) -> TypeInfo {
        TypeInfo {
            name: name.into(),
            typtype: "b".into(),
            typmod,
            element: None,
        }
    }

    #[test]
    fn numeric_precision_and_scale() {
        // numeric(12, 2): typmod = (12 << 16 | 2) + 4
        assert_eq!(
            numeric_kind((12 << 16 | 2) + 4),
            Some(Kind::Decimal {
                precision: 12,
                scale: 2
            })
        );
        assert_eq!(numeric_kind(-1), None);
        assert_eq!(numeric_kind((60 << 16) + 4), None);
        let unbounded = column("n", &info("numeric", -1), true, "numeric");
        assert_eq!(
            (unbounded.kind, unbounded.select.as_str()),
            (Kind::Text, "\"n\"::text")
        );
    }

    #[test]
    fn fallbacks_are_text_or_json() {
        let inet = column("ip", &info("inet", -1), true, "inet");
        assert_eq!(inet.kind, Kind::Text);
        assert!(inet.fallback.is_some());
        let arr = TypeInfo {
            name: "_int4".into(),
            typtype: "b".into(),
            typmod: -1,
            element: Some("int4".into()),
        };
        assert_eq!(
            column("a", &arr, true, "integer[]").kind,
            Kind::List(Box::new(Kind::Int32))
        );
        let inets = TypeInfo {
            element: Some("inet".into()),
            ..arr
        };
        assert_eq!(column("a", &inets, true, "inet[]").kind, Kind::Json);
    }
}
