//! The shipped `github` manifest against recorded-style responses (`fixtures/github/`)
//! served locally: issues over two `Link` pages and each issue's comments.

use super::*;

#[test]
fn the_shipped_github_manifest_reads_issues_and_comments() {
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/fixtures/github");
    let read = |name: &str| std::fs::read_to_string(fixtures.join(name)).unwrap();
    let (issues_1, issues_2, comments_1, comments_2) = (
        read("issues-page-1.json"),
        read("issues-page-2.json"),
        read("comments-1347.json"),
        read("comments-1348.json"),
    );
    let url = Arc::new(Mutex::new(String::new()));
    let base = url.clone();
    let server = TestServer::start(move |request, _| {
        if request.header("authorization") != Some("Bearer gh-secret") {
            return Reply::status(401, json!({ "message": "Bad credentials" }));
        }
        let base = base.lock().unwrap().clone();
        match (request.path(), request.param("page").as_deref()) {
            ("/repos/octo/hello/issues", None) => Reply::json(&issues_1).with_header(
                "link",
                format!("<{base}/repos/octo/hello/issues?state=all&page=2>; rel=\"next\", <{base}/repos/octo/hello/issues?state=all&page=2>; rel=\"last\""),
            ),
            ("/repos/octo/hello/issues", Some("2")) => Reply::json(&issues_2),
            ("/repos/octo/hello/issues/1347/comments", _) => Reply::json(&comments_1),
            ("/repos/octo/hello/issues/1348/comments", _) => Reply::json(&comments_2),
            ("/repos/octo/hello/issues/1349/comments", _) => Reply::json("[]"),
            _ => Reply::status(404, json!({ "message": "Not Found" })),
        }
    });
    *url.lock().unwrap() = server.url();
    let project = Project::new(&format!(
        r#"
[sources.github]
type = "http"
manifest = "github"
base_url = "{}"
allow_insecure = true
vars = {{ owner = "octo", repo = "hello" }}
auth = {{ kind = "bearer", token = "${{GH_TOKEN}}" }}

{DESTINATION}
[connections.github]
source = "github"
destination = "local"
"#,
        server.url()
    ));
    let run = project
        .command(&["sync", "--connection", "github", "--json"])
        .env("GH_TOKEN", "gh-secret")
        .output()
        .unwrap();
    let run = crate::common::Run(run).expect_code(0).json();
    assert_eq!(stream(&run, "issues")["rows_loaded"], 3);
    assert_eq!(stream(&run, "comments")["rows_loaded"], 3);
    assert_eq!(
        project.query("SELECT string_agg(number || ':' || state || ':' || (pull_request IS NOT NULL), ',' ORDER BY number) FROM raw.issues"),
        ["1347:open:false,1348:closed:true,1349:open:false"]
    );
    assert_eq!(
        project.query("SELECT string_agg(issue_number || ':' || (user->>'$.login'), ',' ORDER BY id) FROM raw.comments"),
        ["1347:octocat,1347:hubot,1348:octocat"]
    );
    let state = project
        .query("SELECT stream || '=' || (state->>'$.cursor') FROM raw._elt_state ORDER BY stream");
    assert_eq!(
        state,
        [
            "comments=2024-03-03T11:00:00Z",
            "issues=2024-03-05T08:30:00Z"
        ]
    );
}
