//! Arrow batches to PostgreSQL's binary COPY format (`COPY … FROM STDIN (FORMAT binary)`).
//!
//! A batch is cast column by column to its [`PgType`]'s canonical Arrow type, then written
//! row by row: a field count, then each value as a length and its binary send format. The
//! run's `_elt_extracted_at` and `_elt_run_id` are appended to every row. Values PostgreSQL
//! cannot hold exactly (sub-microsecond intervals) are data errors, never rounded.

use elt_core::arrow::array::{Array, ArrayRef, AsArray};
use elt_core::arrow::compute::cast;
use elt_core::arrow::datatypes::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    IntervalMonthDayNanoType, Time64MicrosecondType, TimestampMicrosecondType,
};
use elt_core::arrow::record_batch::RecordBatch;
use elt_core::{Error, Result};

use super::types::PgType;

/// The file header: signature, flags, header extension length.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The file trailer: a field count of -1.
const TRAILER: [u8; 2] = (-1i16).to_be_bytes();
/// Microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_US: i64 = 946_684_800_000_000;
/// Days from 1970-01-01 to 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;

/// Encodes a whole batch, with the run's metadata values, as one COPY payload.
pub fn encode_batch(
    batch: &RecordBatch,
    types: &[PgType],
    extracted_at_us: i64,
    run_id: &[u8; 16],
) -> Result<Vec<u8>> {
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .zip(types)
        .zip(batch.schema().fields())
        .map(|((column, pg), field)| {
            let target = pg.canonical(column.data_type());
            if column.data_type() == &target {
                Ok(column.clone())
            } else {
                cast(column, &target).map_err(|e| {
                    Error::data(format!(
                        "column {}: cannot convert for PostgreSQL",
                        field.name()
                    ))
                    .caused_by(e)
                })
            }
        })
        .collect::<Result<_>>()?;
    let fields = i16::try_from(columns.len() + 2)
        .map_err(|_| Error::data("more than 32765 columns"))?
        .to_be_bytes();
    let mut out = Vec::with_capacity(HEADER.len() + batch.num_rows() * 16 * (columns.len() + 2));
    out.extend_from_slice(HEADER);
    let schema = batch.schema();
    for row in 0..batch.num_rows() {
        out.extend_from_slice(&fields);
        for ((column, pg), field) in columns.iter().zip(types).zip(schema.fields()) {
            write_value(&mut out, column.as_ref(), pg, row)
                .map_err(|e| e.at(format!("column {}, row {row} of the batch", field.name())))?;
        }
        fixed(&mut out, &(extracted_at_us - PG_EPOCH_US).to_be_bytes());
        fixed(&mut out, run_id);
    }
    out.extend_from_slice(&TRAILER);
    Ok(out)
}

/// A value of known length.
fn fixed(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Writes value `i` of `array` (already of `pg`'s canonical type) with its length.
fn write_value(out: &mut Vec<u8>, array: &dyn Array, pg: &PgType, i: usize) -> Result<()> {
    if array.is_null(i) {
        out.extend_from_slice(&(-1i32).to_be_bytes());
        return Ok(());
    }
    match pg {
        PgType::Bool => fixed(out, &[u8::from(array.as_boolean().value(i))]),
        PgType::Int16 => fixed(
            out,
            &array.as_primitive::<Int16Type>().value(i).to_be_bytes(),
        ),
        PgType::Int32 => fixed(
            out,
            &array.as_primitive::<Int32Type>().value(i).to_be_bytes(),
        ),
        PgType::Int64 => fixed(
            out,
            &array.as_primitive::<Int64Type>().value(i).to_be_bytes(),
        ),
        PgType::Float32 => fixed(
            out,
            &array.as_primitive::<Float32Type>().value(i).to_be_bytes(),
        ),
        PgType::Float64 => fixed(
            out,
            &array.as_primitive::<Float64Type>().value(i).to_be_bytes(),
        ),
        PgType::Numeric { scale, .. } => {
            let value = array.as_primitive::<Decimal128Type>().value(i);
            fixed(out, &numeric(value, *scale as u32));
        }
        PgType::Text => fixed(out, array.as_string::<i32>().value(i).as_bytes()),
        PgType::Jsonb => {
            let text = array.as_string::<i32>().value(i);
            out.extend_from_slice(&(text.len() as i32 + 1).to_be_bytes());
            out.push(1); // jsonb format version
            out.extend_from_slice(text.as_bytes());
        }
        PgType::Bytea => fixed(out, array.as_binary::<i32>().value(i)),
        PgType::Uuid => fixed(out, array.as_fixed_size_binary().value(i)),
        PgType::Date => {
            let days = array.as_primitive::<Date32Type>().value(i);
            fixed(out, &(days - PG_EPOCH_DAYS).to_be_bytes());
        }
        PgType::Time => {
            let us = array.as_primitive::<Time64MicrosecondType>().value(i);
            fixed(out, &us.to_be_bytes());
        }
        PgType::Timestamp | PgType::TimestampTz => {
            let us = array.as_primitive::<TimestampMicrosecondType>().value(i);
            fixed(out, &(us - PG_EPOCH_US).to_be_bytes());
        }
        PgType::Interval => {
            let v = array.as_primitive::<IntervalMonthDayNanoType>().value(i);
            if v.nanoseconds % 1000 != 0 {
                return Err(Error::data(format!(
                    "interval with {} ns: PostgreSQL keeps whole microseconds",
                    v.nanoseconds
                )));
            }
            out.extend_from_slice(&16i32.to_be_bytes());
            out.extend_from_slice(&(v.nanoseconds / 1000).to_be_bytes());
            out.extend_from_slice(&v.days.to_be_bytes());
            out.extend_from_slice(&v.months.to_be_bytes());
        }
        PgType::Array(item) => {
            let list = array.as_list::<i32>();
            let values = list.value(i);
            let len_at = out.len();
            out.extend_from_slice(&0i32.to_be_bytes());
            let has_nulls = i32::from(values.null_count() > 0);
            let dims = i32::from(!values.is_empty());
            out.extend_from_slice(&dims.to_be_bytes());
            out.extend_from_slice(&has_nulls.to_be_bytes());
            out.extend_from_slice(&item.oid().to_be_bytes());
            if dims == 1 {
                out.extend_from_slice(&(values.len() as i32).to_be_bytes());
                out.extend_from_slice(&1i32.to_be_bytes());
            }
            for j in 0..values.len() {
                write_value(out, values.as_ref(), item, j)?;
            }
            let len = (out.len() - len_at - 4) as i32;
            out[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
        }
    }
    Ok(())
}

/// A decimal (unscaled `value`, `scale` fraction digits) in numeric's send format: digit
/// count, weight of the first base-10000 digit, sign, display scale, then the digits.
fn numeric(value: i128, scale: u32) -> Vec<u8> {
    let negative = value < 0;
    let magnitude = value.unsigned_abs();
    let pow = 10u128.pow(scale);
    let (int_part, frac_part) = (magnitude / pow, magnitude % pow);
    // Base-10000 digits of the integer part, most significant first.
    let mut int_digits = Vec::new();
    let mut rest = int_part;
    while rest > 0 {
        int_digits.push((rest % 10_000) as i16);
        rest /= 10_000;
    }
    int_digits.reverse();
    // The fraction's decimal digits, padded on the right to whole groups of four (as text:
    // scaling a 38-digit fraction up would overflow).
    let mut frac_text = format!("{frac_part:0width$}", width = scale as usize);
    while frac_text.len() % 4 != 0 {
        frac_text.push('0');
    }
    let frac_digits: Vec<i16> = frac_text
        .as_bytes()
        .chunks(4)
        .map(|chunk| chunk.iter().fold(0i16, |n, d| n * 10 + i16::from(d - b'0')))
        .collect();
    let mut weight = int_digits.len() as i16 - 1;
    let mut digits: Vec<i16> = int_digits.into_iter().chain(frac_digits).collect();
    while digits.first() == Some(&0) {
        digits.remove(0);
        weight -= 1;
    }
    while digits.last() == Some(&0) {
        digits.pop();
    }
    if digits.is_empty() {
        weight = 0;
    }
    let mut out = Vec::with_capacity(8 + 2 * digits.len());
    out.extend_from_slice(&(digits.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(
        &(if negative && !digits.is_empty() {
            0x4000u16
        } else {
            0
        })
        .to_be_bytes(),
    );
    out.extend_from_slice(&(scale as i16).to_be_bytes());
    for d in digits {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::numeric;

    fn decode(bytes: &[u8]) -> (i16, i16, u16, i16, Vec<i16>) {
        let word = |i: usize| i16::from_be_bytes([bytes[i], bytes[i + 1]]);
        let n = word(0);
        let digits = (0..n as usize).map(|k| word(8 + 2 * k)).collect();
        (n, word(2), word(4) as u16, word(6), digits)
    }

    #[test]
    fn numerics_in_send_format() {
        // 12345.678 = 1 2345 . 6780
        assert_eq!(
            decode(&numeric(12_345_678, 3)),
            (3, 1, 0, 3, vec![1, 2345, 6780])
        );
        // -0.05 = 0 . 0500
        assert_eq!(decode(&numeric(-5, 2)), (1, -1, 0x4000, 2, vec![500]));
        // 0.00000001 (scale 8): 0 . 0000 0001
        assert_eq!(decode(&numeric(1, 8)), (1, -2, 0, 8, vec![1]));
        // 100000000 = 1 0000 0000
        assert_eq!(decode(&numeric(100_000_000, 0)), (1, 2, 0, 0, vec![1]));
        assert_eq!(decode(&numeric(0, 2)), (0, 0, 0, 2, vec![]));
        // 38 fraction digits: 0.12345678901234567890123456789012345678
        let (n, weight, _, dscale, digits) = decode(&numeric(
            12_345_678_901_234_567_890_123_456_789_012_345_678,
            38,
        ));
        assert_eq!((n, weight, dscale), (10, -1, 38));
        assert_eq!(digits[0], 1234);
        assert_eq!(digits[9], 7800);
    }
}
