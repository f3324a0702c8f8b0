//! `elt ui`'s actions and access rules: cross-site and forged POSTs are refused and the
//! page's own "Sync now" syncs; dead letters show their reasons and "Replay" loads those
//! that now pass; an address other than loopback needs the token printed at start.

use crate::common::Project;
use crate::ui_common::{Ui, demo_toml, form_token, request};

#[test]
fn cross_origin_and_forged_posts_are_refused_and_the_page_s_own_form_syncs() {
    let project = Project::new(&demo_toml(0));
    project
        .elt(&["sync", "--connection", "demo"])
        .expect_code(0);
    let ui = Ui::start(&project, &[]);
    let page = request(&ui.addr, "GET", "/connections/demo", &[], "");
    assert_eq!(page.status, 200);
    let csrf = form_token(&page.body);
    let form = format!("csrf={csrf}");
    let ty = "Content-Type: application/x-www-form-urlencoded";
    let own = format!("Origin: http://{}", ui.addr);
    let refused = [
        vec![ty, "Origin: http://evil.example"],
        vec![ty, "Sec-Fetch-Site: cross-site"],
        vec![ty],
    ];
    for headers in &refused {
        let r = request(&ui.addr, "POST", "/connections/demo/sync", headers, &form);
        assert_eq!(r.status, 403, "{headers:?}: {}", r.body);
        assert!(r.body.contains("cross-site request refused"), "{}", r.body);
    }
    let forged = request(
        &ui.addr,
        "POST",
        "/connections/demo/sync",
        &[ty, &own],
        "csrf=not-the-token",
    );
    assert_eq!(forged.status, 403);
    let unknown = request(&ui.addr, "GET", "/connections/nope", &[], "");
    assert_eq!(unknown.status, 404);
    assert!(
        unknown.body.contains("no connection named nope"),
        "{}",
        unknown.body
    );
    let rebound = request(&ui.addr, "GET", "/", &["Host: evil.example"], "");
    assert_eq!(rebound.status, 403, "a DNS-rebinding Host is refused");
    // The refusals started nothing: one run in the file. The page's own form syncs.
    assert_eq!(
        project.query("SELECT count(DISTINCT run_id)::VARCHAR FROM raw._elt_runs"),
        ["1"]
    );
    let ok = request(
        &ui.addr,
        "POST",
        "/connections/demo/sync",
        &[ty, &own],
        &form,
    );
    assert_eq!(ok.status, 303, "{}", ok.headers);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let page = request(&ui.addr, "GET", "/connections/demo", &[], "");
        if page.body.matches("data-run=").count() == 6 && !page.body.contains(">running<") {
            assert!(page.body.contains("succeeded"), "{}", page.body);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sync did not show up"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn dead_letters_show_their_reasons_and_the_replay_button_loads_them() {
    let toml = crate::common::sample_toml(1_000, 500, 0).replace(
        "[connections.demo]\nsource = \"sample\"\ndestination = \"local\"\n",
        "[connections.demo]\nsource = \"sample\"\ndestination = \"local\"\nstreams = [\n  { name = \"orders\", json_schema_path = \"orders.json\" },\n]\n",
    );
    let project = Project::new(&toml);
    let schema = |maximum: u32| {
        let text = format!(
            r#"{{"type": "object", "properties": {{"quantity": {{"type": "integer", "maximum": {maximum}}}}}}}"#
        );
        std::fs::write(project.dir().join("orders.json"), text).unwrap();
    };
    schema(7);
    project
        .elt(&["sync", "--connection", "demo"])
        .expect_code(0);
    let dead: usize = project.query("SELECT count(*)::VARCHAR FROM raw._elt_dead_letter")[0]
        .parse()
        .unwrap();
    assert!(dead > 0);
    let ui = Ui::start(&project, &[]);
    let page = request(&ui.addr, "GET", "/connections/demo/dead-letters", &[], "");
    assert_eq!(page.status, 200);
    assert_eq!(page.body.matches("<td class=\"reason\">").count(), dead);
    assert!(
        page.body
            .contains("/quantity: 8 is greater than the maximum of 7"),
        "{}",
        page.body
    );
    let csrf = form_token(&page.body);

    schema(9);
    let own = format!("Origin: http://{}", ui.addr);
    let replayed = request(
        &ui.addr,
        "POST",
        "/connections/demo/dead-letters/replay",
        &["Content-Type: application/x-www-form-urlencoded", &own],
        &format!("csrf={csrf}&stream=orders"),
    );
    assert_eq!(replayed.status, 303, "{}", replayed.body);
    let after = request(&ui.addr, "GET", "/connections/demo/dead-letters", &[], "");
    assert!(
        after.body.contains(&format!("orders: {dead} replayed")),
        "{}",
        after.body
    );
    assert!(
        after.body.contains("no dead letters"),
        "the page reads the replay's snapshot"
    );
    assert_eq!(
        project.query("SELECT count(*)::VARCHAR FROM raw.orders"),
        ["1000"]
    );
}

#[test]
fn another_address_needs_the_printed_token() {
    let project = Project::new(&demo_toml(0));
    project
        .elt(&["sync", "--connection", "demo"])
        .expect_code(0);
    let ui = Ui::start(&project, &["--listen", "0.0.0.0"]);
    let token = ui.token.clone().expect("a token is printed for 0.0.0.0");
    assert_eq!(request(&ui.addr, "GET", "/", &[], "").status, 401);
    assert_eq!(
        request(&ui.addr, "GET", "/?token=wrong", &[], "").status,
        401
    );
    let opened = request(&ui.addr, "GET", &format!("/?token={token}"), &[], "");
    assert_eq!(opened.status, 200);
    assert!(
        opened
            .headers
            .contains(&format!("elt_ui_token={token}; HttpOnly; SameSite=Strict")),
        "{}",
        opened.headers
    );
    let cookie = format!("Cookie: elt_ui_token={token}");
    assert_eq!(
        request(&ui.addr, "GET", "/connections/demo", &[&cookie], "").status,
        200
    );
    let bearer = format!("Authorization: Bearer {token}");
    let metrics = request(&ui.addr, "GET", "/metrics", &[&bearer], "");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.headers.contains("text/plain; version=0.0.4"),
        "{}",
        metrics.headers
    );
}
