//! What the `elt ui` and metrics tests share: a running `elt ui`, plain HTTP/1.1 requests,
//! a free port, and headless Chromium (Debian's `chromium`, which scripts/test-services.sh
//! installs) loading a page for its rendered DOM or a screenshot.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::common::{DESTINATION, Project};

/// A running `elt ui` of a project, stopped on drop.
pub struct Ui {
    child: Child,
    /// `127.0.0.1:PORT` (or the `--listen` address).
    pub addr: String,
    /// The access token it printed (only for addresses other than loopback).
    pub token: Option<String>,
}

impl Ui {
    /// Starts `elt ui --port 0` (plus `args`) in `project` and waits for its address.
    pub fn start(project: &Project, args: &[&str]) -> Self {
        let mut command = project.command(&["ui", "--port", "0"]);
        command
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().expect("start elt ui");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the address");
        let (addr, rest) = line
            .trim()
            .strip_prefix("elt ui: http://")
            .and_then(|rest| rest.split_once('/'))
            .unwrap_or_else(|| panic!("elt ui printed {line:?}"));
        let token = rest.strip_prefix("?token=").map(str::to_owned);
        Self {
            child,
            addr: addr.to_owned(),
            token,
        }
    }

    /// `http://ADDR/PATH`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Ui {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response: status and body.
pub struct Response {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

/// Sends one HTTP/1.1 request to `addr` (`headers` as `Name: value` lines; `Host` is
/// `addr` unless one of them sets it) and reads the whole response.
pub fn request(addr: &str, method: &str, path: &str, headers: &[&str], body: &str) -> Response {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let mut text = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("host:"))
    {
        text.push_str(&format!("Host: {addr}\r\n"));
    }
    for header in headers {
        text.push_str(header);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    text.push_str(body);
    stream.write_all(text.as_bytes()).expect("send");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read the response");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {raw}"));
    Response {
        status,
        headers: head.to_owned(),
        body: body.to_owned(),
    }
}

/// The anti-forgery token of the first form on a page.
pub fn form_token(body: &str) -> String {
    body.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no form with a token on the page: {body}"))
        .to_owned()
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Headless Chromium with a profile of its own under `profile`, then `args`.
fn chromium(profile: &Path, args: &[&str]) -> std::process::Output {
    let binary = "/usr/bin/chromium";
    assert!(
        Path::new(binary).exists(),
        "{binary} is missing: the UI tests need Debian's chromium (scripts/test-services.sh \
         installs it: apt-get install chromium)"
    );
    Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--no-first-run",
            &format!("--user-data-dir={}", profile.display()),
        ])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run chromium")
}

/// The DOM of `url` as Chromium renders it.
pub fn rendered_dom(profile: &Path, url: &str) -> String {
    let out = chromium(profile, &["--dump-dom", url]);
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 DOM")
}

/// Saves a screenshot of `url` (1280x900) to `path`.
pub fn screenshot(profile: &Path, url: &str, path: &Path) {
    let shot = format!("--screenshot={}", path.display());
    let out = chromium(profile, &["--window-size=1280,900", &shot, url]);
    assert!(
        out.status.success() && path.exists(),
        "chromium screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The demo project at `generation`, in batches of 500 rows (10 for the failing sync:
/// its fail point comes after a full batch, and a generation changes ~1% of the rows).
pub fn demo_toml(generation: u32) -> String {
    demo_toml_in_batches(generation, 500)
}

pub fn demo_toml_in_batches(generation: u32, batch_rows: u32) -> String {
    format!(
        r#"
[sources.sample]
type = "sample"
customers = 300
products = 50
orders = 2000
batch_rows = {batch_rows}
generation = {generation}
{DESTINATION}
[connections.demo]
source = "sample"
destination = "local"
max_retries = 0

[[connections.demo.tests]]
stream = "orders"
not_null = ["customer_id", "status"]
"#
    )
}
