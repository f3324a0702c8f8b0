//! PostgreSQL's binary `numeric` (base-10000 digits, a weight, a sign, a display scale):
//! into an unscaled i128 at a column's scale (`numeric(p, s)` with p <= 38), or into the
//! exact text PostgreSQL prints (an unbounded `numeric` sent in binary by logical
//! replication). What it does not do: round; a value that does not fit is an error.

/// The header word at byte `i`.
fn word(v: &[u8], i: usize) -> Option<u16> {
    v.get(i..i + 2).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

/// Converts a binary `numeric` to an unscaled i128 at `scale`.
pub fn to_i128(v: &[u8], scale: i8) -> Result<i128, String> {
    let header = |i: usize| word(v, i);
    let (ndigits, weight, sign) = match (header(0), header(2), header(4)) {
        (Some(n), Some(w), Some(s)) => (n as usize, w as i16 as i32, s),
        _ => return Err("truncated numeric".into()),
    };
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Err("NaN does not fit a decimal column; read the column as text".into()),
        _ => return Err("infinity does not fit a decimal column; read the column as text".into()),
    }
    let mut acc: i128 = 0;
    for i in 0..ndigits {
        let digit = header(8 + 2 * i).ok_or("truncated numeric")? as i128;
        acc = acc
            .checked_mul(10_000)
            .and_then(|a| a.checked_add(digit))
            .ok_or("numeric overflows 38 digits")?;
    }
    // acc holds value * 10^exp, exp = 4 * (ndigits - 1 - weight).
    let exp = 4 * (ndigits as i32 - 1 - weight);
    let shift = i32::from(scale) - exp;
    let unscaled = if shift >= 0 {
        10i128
            .checked_pow(shift as u32)
            .and_then(|p| acc.checked_mul(p))
            .ok_or("numeric overflows 38 digits")?
    } else {
        let divisor = 10i128
            .checked_pow((-shift) as u32)
            .ok_or("numeric scale out of range")?;
        if acc % divisor != 0 {
            return Err(format!("numeric has more than {scale} decimal places"));
        }
        acc / divisor
    };
    Ok(if sign == 0x4000 { -unscaled } else { unscaled })
}

/// The text PostgreSQL's `numeric_out` prints for a binary `numeric`: every digit, the
/// display scale's decimal places, `NaN` and `±Infinity`.
pub fn to_text(v: &[u8]) -> Result<String, String> {
    let (ndigits, weight, sign, dscale) = match (word(v, 0), word(v, 2), word(v, 4), word(v, 6)) {
        (Some(n), Some(w), Some(s), Some(d)) => (n as usize, w as i16 as i32, s, d as usize),
        _ => return Err("truncated numeric".into()),
    };
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => {}
    }
    let digit = |i: i32| -> Result<u16, String> {
        if i < 0 || i as usize >= ndigits {
            return Ok(0);
        }
        word(v, 8 + 2 * i as usize).ok_or_else(|| "truncated numeric".to_owned())
    };
    let mut text = String::new();
    if sign == 0x4000 {
        text.push('-');
    }
    if weight < 0 {
        text.push('0');
    } else {
        text.push_str(&digit(0)?.to_string());
        for i in 1..=weight {
            text.push_str(&format!("{:04}", digit(i)?));
        }
    }
    if dscale > 0 {
        let mut fraction = String::new();
        let mut i = weight + 1;
        while fraction.len() < dscale {
            fraction.push_str(&format!("{:04}", digit(i)?));
            i += 1;
        }
        fraction.truncate(dscale);
        text.push('.');
        text.push_str(&fraction);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut v = Vec::new();
        for word in [digits.len() as u16, weight as u16, sign, dscale]
            .into_iter()
            .chain(digits.iter().copied())
        {
            v.extend_from_slice(&word.to_be_bytes());
        }
        v
    }

    #[test]
    fn numerics_to_decimal() {
        // 12345.67 = [1, 2345, 6700] with weight 1
        assert_eq!(
            to_i128(&numeric(1, 0, 2, &[1, 2345, 6700]), 2),
            Ok(1_234_567)
        );
        assert_eq!(
            to_i128(&numeric(1, 0x4000, 2, &[1, 2345, 6700]), 2),
            Ok(-1_234_567)
        );
        // 0.05 = [500] with weight -1
        assert_eq!(to_i128(&numeric(-1, 0, 2, &[500]), 2), Ok(5));
        // 1e8 = [1] with weight 2 (trailing zero groups stripped)
        assert_eq!(to_i128(&numeric(2, 0, 0, &[1]), 0), Ok(100_000_000));
        assert_eq!(to_i128(&numeric(0, 0, 0, &[]), 3), Ok(0));
        assert!(
            to_i128(&numeric(0, 0xC000, 0, &[]), 2)
                .unwrap_err()
                .contains("NaN")
        );
    }

    #[test]
    fn numerics_to_text_as_postgres_prints_them() {
        assert_eq!(
            to_text(&numeric(1, 0, 2, &[1, 2345, 6700])).unwrap(),
            "12345.67"
        );
        assert_eq!(
            to_text(&numeric(1, 0x4000, 3, &[1, 2345, 6700])).unwrap(),
            "-12345.670"
        );
        assert_eq!(to_text(&numeric(-1, 0, 2, &[500])).unwrap(), "0.05");
        assert_eq!(to_text(&numeric(-2, 0, 6, &[1200])).unwrap(), "0.000012");
        assert_eq!(to_text(&numeric(2, 0, 0, &[1])).unwrap(), "100000000");
        assert_eq!(to_text(&numeric(0, 0, 0, &[])).unwrap(), "0");
        assert_eq!(to_text(&numeric(0, 0xC000, 0, &[])).unwrap(), "NaN");
        assert_eq!(to_text(&numeric(0, 0xF000, 0, &[])).unwrap(), "-Infinity");
    }
}
