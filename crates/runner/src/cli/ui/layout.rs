//! The pieces every page of `elt ui` is built from: the frame (title, navigation, the
//! stylesheet built into the binary), HTML escaping, times, and charts as inline SVG drawn
//! here (no script, no CDN: the page works offline). No data access.

/// The stylesheet, inlined in every page.
const STYLE: &str = include_str!("style.css");

/// `text` safe inside HTML text and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` as a path segment of a link (connection and stream names).
pub fn segment(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => out.push(b as char),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A whole page: `title`, the navigation of `connection` (when the page is one of its),
/// and `body` (HTML).
pub fn page(title: &str, connection: Option<&str>, body: &str) -> String {
    let nav = match connection {
        Some(c) => {
            let base = format!("/connections/{}", segment(c));
            format!(
                "<nav><a href=\"/\">all connections</a> · <a href=\"{base}\">runs</a> · \
                 <a href=\"{base}/tests\">tests</a> · <a href=\"{base}/dead-letters\">dead letters</a> · \
                 <a href=\"{base}/plan\">schema plan</a></nav>"
            )
        }
        None => "<nav><a href=\"/\">all connections</a> · <a href=\"/metrics\">metrics</a></nav>"
            .to_owned(),
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} · elt</title><style>{STYLE}</style></head>\
         <body><header><span class=\"brand\">elt</span> <h1>{t}</h1>{nav}</header>\
         <main>{body}</main></body></html>",
        t = esc(title)
    )
}

/// A failed read, shown where its content would be.
pub fn error(what: &str, error: &elt_core::Error) -> String {
    format!(
        "<p class=\"error\">Could not read {}: {}</p>",
        esc(what),
        esc(&format!("{error:#}"))
    )
}

/// Microseconds since the epoch as `2026-12-06 21:30:05 UTC`.
pub fn time(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| us.to_string())
}

/// A span of seconds, short: `42 s`, `7 min`, `3.5 h`, `12 d`.
pub fn ago(secs: f64) -> String {
    match secs {
        s if s < 90.0 => format!("{s:.0} s"),
        s if s < 5400.0 => format!("{:.0} min", s / 60.0),
        s if s < 172_800.0 => format!("{:.1} h", s / 3600.0),
        s => format!("{:.0} d", s / 86_400.0),
    }
}

/// The outcome of the last action on a page, when there is one.
pub fn flash(message: Option<&str>) -> String {
    message
        .map(|m| format!("<p class=\"flash\">{}</p>", esc(m)))
        .unwrap_or_default()
}

/// A form that POSTs to `action` with the page's anti-forgery token.
pub fn button(action: &str, csrf: &str, label: &str, fields: &[(&str, &str)]) -> String {
    let hidden: String = fields
        .iter()
        .map(|(name, value)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                esc(name),
                esc(value)
            )
        })
        .collect();
    format!(
        "<form method=\"post\" action=\"{}\" class=\"inline\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">{hidden}\
         <button type=\"submit\">{}</button></form>",
        esc(action),
        esc(csrf),
        esc(label)
    )
}

/// One bar of a chart: its height, its tooltip and its class (`ok`, `failed`, …).
pub struct Bar {
    pub value: f64,
    pub label: String,
    pub class: &'static str,
}

/// A bar chart, oldest bar on the left, scaled to its largest value (`unit` after it).
pub fn bars(title: &str, unit: &str, bars: &[Bar]) -> String {
    const W: f64 = 640.0;
    const H: f64 = 120.0;
    let max = bars.iter().map(|b| b.value).fold(0.0_f64, f64::max);
    let step = W / bars.len().max(1) as f64;
    let mut svg = format!(
        "<figure><figcaption>{} (max {} {})</figcaption>\
         <svg class=\"chart\" viewBox=\"0 0 {W} {H}\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"{}\">",
        esc(title),
        number(max),
        esc(unit),
        esc(title)
    );
    for (i, bar) in bars.iter().enumerate() {
        let height = if max > 0.0 {
            (bar.value / max * (H - 4.0)).max(1.0)
        } else {
            1.0
        };
        svg.push_str(&format!(
            "<rect class=\"{}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{height:.1}\">\
             <title>{}</title></rect>",
            bar.class,
            i as f64 * step + 1.0,
            H - height,
            (step - 2.0).max(1.0),
            esc(&bar.label)
        ));
    }
    svg.push_str("</svg></figure>");
    svg
}

/// Passed and failed results, oldest first, as a strip of squares.
pub fn strip(passed: &[(bool, String)]) -> String {
    let mut svg = format!(
        "<svg class=\"strip\" viewBox=\"0 0 {} 12\" width=\"{}\" height=\"12\">",
        passed.len() * 12,
        passed.len() * 12
    );
    for (i, (ok, label)) in passed.iter().enumerate() {
        svg.push_str(&format!(
            "<rect class=\"{}\" x=\"{}\" y=\"1\" width=\"10\" height=\"10\"><title>{}</title></rect>",
            if *ok { "ok" } else { "failed" },
            i * 12 + 1,
            esc(label)
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// A count or a measure, readable: `1,234,567`, `12.5`.
pub fn number(value: f64) -> String {
    if value.fract() != 0.0 && value.abs() < 1e6 {
        return format!("{value:.2}");
    }
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0.0 {
        out.insert(0, '-');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_formats() {
        assert_eq!(
            esc("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(segment("my conn/é"), "my%20conn%2F%C3%A9");
        assert_eq!(number(1_234_567.0), "1,234,567");
        assert_eq!(number(999.0), "999");
        assert_eq!(number(-1000.0), "-1,000");
        assert_eq!(number(0.5), "0.50");
        assert_eq!(ago(30.0), "30 s");
        assert_eq!(ago(600.0), "10 min");
        assert_eq!(ago(7200.0), "2.0 h");
        assert_eq!(ago(864_000.0), "10 d");
    }
}
