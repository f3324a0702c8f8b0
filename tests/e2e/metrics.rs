//! Metrics of runs: a real Prometheus server (Debian's `prometheus`) scrapes `/metrics` of
//! an `elt sync --follow` and its query API returns the rows-loaded totals of the runs'
//! summaries; a cron run's `--metrics-file` passes `promtool check metrics` and holds the
//! summary's numbers; with `OTEL_EXPORTER_OTLP_ENDPOINT` a run sends its trace and metrics
//! over OTLP/HTTP, decoded here with the OTLP protobuf definitions (no collector binary
//! comes from a registry this machine reaches).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;

use crate::common::{Project, stream, terminate};
use crate::ui_common::{free_port, request};

const STREAMS: [&str; 3] = ["customers", "orders", "products"];

/// The rows-loaded total of each stream over `summaries`.
fn loaded(summaries: &[serde_json::Value], name: &str) -> u64 {
    summaries
        .iter()
        .map(|s| stream(s, name)["rows_loaded"].as_u64().unwrap())
        .sum()
}

#[test]
fn prometheus_scrapes_a_follow_run_and_its_totals_equal_the_summaries() {
    let project = Project::sample(3_000, 1_000, 0);
    let port = free_port();
    let mut follow = project
        .command(&[
            "sync",
            "--connection",
            "demo",
            "--follow",
            "--follow-interval",
            "1",
            "--json",
            "--quiet",
            "--metrics-listen",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start elt sync --follow");
    // Each run's summary is one pretty JSON object on stdout.
    let summaries = Arc::new(Mutex::new(Vec::new()));
    let reader = BufReader::new(follow.stdout.take().expect("stdout"));
    let collected = summaries.clone();
    std::thread::spawn(move || {
        let mut text = String::new();
        for line in reader.lines().map_while(Result::ok) {
            text.push_str(&line);
            if line == "}" {
                collected
                    .lock()
                    .unwrap()
                    .push(serde_json::from_str(&text).expect("summary"));
                text.clear();
            }
        }
    });
    let prometheus_dir = tempfile::tempdir().expect("prometheus dir");
    let config = prometheus_dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: elt\n    \
             static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
        ),
    )
    .unwrap();
    let web = free_port();
    let binary = "/usr/bin/prometheus";
    assert!(
        std::path::Path::new(binary).exists(),
        "{binary} is missing: install Debian's prometheus (scripts/test-services.sh does)"
    );
    let mut prometheus = Command::new(binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            prometheus_dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{web}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let web_addr = format!("127.0.0.1:{web}");
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last = String::new();
    let matched = loop {
        std::thread::sleep(Duration::from_millis(500));
        let done = summaries.lock().unwrap().clone();
        if done.len() >= 2 {
            let query = "/api/v1/query?query=sum%20by%20(stream)%20(elt_rows_loaded_total)";
            let answer = std::net::TcpStream::connect(&web_addr)
                .ok()
                .map(|_| request(&web_addr, "GET", query, &[], ""));
            if let Some(answer) = answer.filter(|a| a.status == 200) {
                last = answer.body.clone();
                let json: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
                let series = json["data"]["result"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let got: Vec<(String, u64)> = series
                    .iter()
                    .map(|s| {
                        let value = s["value"][1].as_str().unwrap().parse::<f64>().unwrap();
                        (
                            s["metric"]["stream"].as_str().unwrap().to_owned(),
                            value as u64,
                        )
                    })
                    .collect();
                // Totals as of the runs finished now (a later run loads nothing new).
                let now = summaries.lock().unwrap().clone();
                let want: Vec<(String, u64)> = STREAMS
                    .iter()
                    .map(|s| (s.to_string(), loaded(&now, s)))
                    .collect();
                let mut got_sorted = got.clone();
                got_sorted.sort();
                if got_sorted == want {
                    break want;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never returned the totals: {last}"
        );
    };
    assert_eq!(matched[1], ("orders".to_owned(), 3_000), "{matched:?}");
    let runs = request(
        &web_addr,
        "GET",
        "/api/v1/query?query=elt_runs_total",
        &[],
        "",
    );
    assert!(
        runs.body.contains("\"status\":\"succeeded\""),
        "{}",
        runs.body
    );
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    assert_eq!(terminate(&mut follow).code(), Some(0));
}

#[test]
fn a_cron_run_s_metrics_file_passes_promtool_and_holds_the_summary() {
    let project = Project::sample(2_000, 500, 0);
    let file = project.dir().join("elt.prom");
    let summary = project
        .elt(&[
            "sync",
            "--connection",
            "demo",
            "--json",
            "--metrics-file",
            file.to_str().unwrap(),
        ])
        .expect_code(0)
        .json();
    let text = std::fs::read_to_string(&file).expect("the metrics file");
    let check = Command::new("/usr/bin/promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(text.as_bytes())?;
            child.wait_with_output()
        })
        .expect("promtool (Debian's prometheus package)");
    assert!(
        check.status.success(),
        "promtool: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    for name in STREAMS {
        let rows = stream(&summary, name)["rows_loaded"].as_u64().unwrap();
        let line = format!("elt_rows_loaded_total{{connection=\"demo\",stream=\"{name}\"}} {rows}");
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        let last = format!("elt_last_run_succeeded{{connection=\"demo\",stream=\"{name}\"}} 1");
        assert!(text.lines().any(|l| l == last), "{last}");
    }
    assert!(text.contains("elt_runs_total{connection=\"demo\",status=\"succeeded\"} 1"));
    assert!(text.contains("elt_commit_seconds_count{connection=\"demo\",stream=\"orders\"}"));
    let refused = project
        .elt(&[
            "sync",
            "--connection",
            "demo",
            "--metrics-file",
            "/nonexistent/elt.prom",
        ])
        .expect_code(2);
    assert!(
        refused
            .stderr()
            .contains("--metrics-file: cannot write beside /nonexistent/elt.prom"),
        "{}",
        refused.stderr()
    );
    assert_eq!(
        project.query("SELECT count(DISTINCT run_id)::VARCHAR FROM raw._elt_runs"),
        ["1"],
        "refused before the run"
    );
    let leftovers: Vec<_> = std::fs::read_dir(project.dir())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "no temporary file left: {leftovers:?}"
    );
}

/// The (path, body) of each request an OTLP receiver got.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// Accepts OTLP/HTTP POSTs on `listener`, keeping (path, body) of each.
fn otlp_receiver(listener: TcpListener) -> Received {
    let received = Arc::new(Mutex::new(Vec::new()));
    let keep = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(stream);
            let mut path = String::new();
            let mut length = 0;
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                let header = line.trim_end().to_owned();
                line.clear();
                if header.is_empty() {
                    break;
                }
                if path.is_empty() {
                    path = header.split_whitespace().nth(1).unwrap_or("").to_owned();
                } else if let Some((name, value)) = header.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_ok() {
                keep.lock().unwrap().push((path, body));
            }
            let mut stream = reader.into_inner();
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    received
}

#[test]
fn a_run_sends_its_trace_and_metrics_over_otlp() {
    let project = Project::sample(2_000, 500, 0);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let received = otlp_receiver(listener);
    let summary = project
        .elt_with_env(
            &["sync", "--connection", "demo", "--json"],
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)],
        )
        .expect_code(0)
        .json();
    let received = received.lock().unwrap().clone();
    let mut spans = Vec::new();
    let mut metrics = Vec::new();
    for (path, body) in &received {
        match path.as_str() {
            "/v1/traces" => {
                let request = ExportTraceServiceRequest::decode(body.as_slice()).expect("traces");
                for resource in request.resource_spans {
                    for scope in resource.scope_spans {
                        spans.extend(scope.spans);
                    }
                }
            }
            "/v1/metrics" => {
                let request =
                    ExportMetricsServiceRequest::decode(body.as_slice()).expect("metrics");
                for resource in request.resource_metrics {
                    for scope in resource.scope_metrics {
                        metrics.extend(scope.metrics);
                    }
                }
            }
            other => panic!("unexpected OTLP path {other}"),
        }
    }
    let attribute = |span: &opentelemetry_proto::tonic::trace::v1::Span, key: &str| {
        span.attributes
            .iter()
            .find(|a| a.key == key)
            .and_then(|a| match &a.value {
                Some(v) => match &v.value {
                    Some(Value::StringValue(s)) => Some(s.clone()),
                    _ => None,
                },
                None => None,
            })
    };
    let run = spans.iter().find(|s| s.name == "sync").unwrap_or_else(|| {
        panic!(
            "a sync span among {:?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        )
    });
    assert_eq!(
        attribute(run, "run_id").as_deref(),
        summary["run_id"].as_str()
    );
    assert_eq!(attribute(run, "connection").as_deref(), Some("demo"));
    let streams: Vec<_> = spans.iter().filter(|s| s.name == "stream").collect();
    assert_eq!(streams.len(), 3);
    for s in &streams {
        assert_eq!(s.trace_id, run.trace_id, "one trace per run");
        assert_eq!(s.parent_span_id, run.span_id);
    }
    let commits: Vec<_> = spans.iter().filter(|s| s.name == "commit").collect();
    assert!(!commits.is_empty());
    for c in &commits {
        assert_eq!(c.trace_id, run.trace_id, "commits in the run's trace");
        assert!(
            streams.iter().any(|s| s.span_id == c.parent_span_id),
            "under a stream span"
        );
    }
    let rows = metrics
        .iter()
        .find(|m| m.name == "elt_rows_loaded")
        .expect("elt_rows_loaded over OTLP");
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    let Some(Data::Sum(sum)) = &rows.data else {
        panic!("a sum: {rows:?}")
    };
    for name in STREAMS {
        let point = sum
            .data_points
            .iter()
            .find(|p| {
                p.attributes.iter().any(|a| {
                    a.key == "stream"
                        && matches!(&a.value, Some(v) if v.value == Some(Value::StringValue(name.into())))
                })
            })
            .unwrap_or_else(|| panic!("a point for {name}"));
        use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as Number;
        assert_eq!(
            point.value,
            Some(Number::AsInt(
                stream(&summary, name)["rows_loaded"].as_i64().unwrap()
            )),
            "{name}"
        );
    }
}
