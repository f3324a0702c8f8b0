//! A local HTTP/1.1 server for tests of HTTP sources: it listens on 127.0.0.1 on an
//! ephemeral port, records every request (method, target, headers, time), and answers
//! each with what the test's handler returns, faults included: a status with headers and
//! body, a connection reset without an answer, a response that stalls, or a body cut off
//! mid-way. One request per connection (`Connection: close`).
//!
//! Plain threads and `std::net`, no async runtime and no HTTP library: what it sends is
//! exactly what the test wrote.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST` ...
    pub method: String,
    /// The path and query, as sent.
    pub target: String,
    /// Header names (lower case) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body (as text).
    pub body: String,
    /// When it arrived.
    pub at: Instant,
}

impl Request {
    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// A query parameter's value (percent-decoding `%XX` and `+`).
    pub fn param(&self, name: &str) -> Option<String> {
        let query = self.target.split_once('?')?.1;
        query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k) == name).then(|| decode(v))
        })
    }

    /// A header's value (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn decode(text: &str) -> String {
    let bytes = text.replace('+', " ").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        if let (b'%', Some(b)) = (bytes[i], hex) {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the server does with a request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A response: status, extra headers, body.
    Respond(u16, Vec<(String, String)>, String),
    /// Resets the connection (TCP RST) without answering.
    Reset,
    /// Waits this long, then closes without answering.
    Stall(Duration),
    /// Sends the headers and the first half of the body, announcing all of it, then closes.
    CutOff(String),
}

impl Reply {
    /// `200 OK` with a JSON body.
    pub fn json(body: impl ToString) -> Self {
        Reply::Respond(200, vec![], body.to_string())
    }

    /// A status with a JSON body.
    pub fn status(status: u16, body: impl ToString) -> Self {
        Reply::Respond(status, vec![], body.to_string())
    }

    /// Adds a header to a `Respond`.
    pub fn with_header(self, name: &str, value: impl ToString) -> Self {
        match self {
            Reply::Respond(status, mut headers, body) => {
                headers.push((name.to_owned(), value.to_string()));
                Reply::Respond(status, headers, body)
            }
            other => other,
        }
    }
}

type Handler = dyn Fn(&Request, &[Request]) -> Reply + Send + Sync;

/// A running server; it stops when the test process ends.
pub struct TestServer {
    port: u16,
    log: Arc<Mutex<Vec<Request>>>,
}

impl TestServer {
    /// Starts a server whose `handler` gets each request and every earlier one.
    pub fn start(handler: impl Fn(&Request, &[Request]) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("address").port();
        let log: Arc<Mutex<Vec<Request>>> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let shared = log.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (log, handler) = (shared.clone(), handler.clone());
                std::thread::spawn(move || serve(stream, &log, handler.as_ref()));
            }
        });
        Self { port, log }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().expect("log").clone()
    }
}

fn serve(stream: TcpStream, log: &Mutex<Vec<Request>>, handler: &Handler) {
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or("").to_owned(),
        parts.next().unwrap_or("").to_owned(),
    );
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let request = Request {
        method,
        target,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    };
    let earlier = {
        let mut log = log.lock().expect("log");
        let earlier = log.clone();
        log.push(request.clone());
        earlier
    };
    let mut stream = stream;
    match handler(&request, &earlier) {
        Reply::Respond(status, extra, body) => {
            let mut head = format!(
                "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                reason(status),
                body.len()
            );
            for (name, value) in extra {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body.as_bytes());
        }
        Reply::Reset => {
            // Linger 0: closing sends RST instead of FIN.
            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
            drop(stream);
            return;
        }
        Reply::Stall(wait) => std::thread::sleep(wait),
        Reply::CutOff(body) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body.as_bytes()[..body.len() / 2]);
        }
    }
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
