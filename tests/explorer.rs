//! The web explorer end to end: the real server on loopback with `--http-listen`, real model and
//! dataset declarations (lineage, a long manifest, an injection corpus), its JSON API and headers
//! over plain HTTP, and its pages in a real headless Chromium driven through WebDriver: search,
//! entry pages, lineage links, the in-browser verification (and its failure when the server
//! tampers with a proof), and hostile text rendered inert.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/dev test` installs them); without them
//! the browser tests fail, saying so.
//!
//! `cargo test --features fault-injection --test explorer screenshots -- --ignored` writes the
//! README's screenshots to `docs/img/` (see docs/explorer.md).

mod common;

use std::time::Duration;

use common::http::{get, get_with};
use common::statements::sha;
use common::webdriver::Browser;
use common::{Publisher, TestServer};
use glasslog::admission::declaration::{self, PAYLOAD_TYPE};
use glasslog::admission::dsse::Envelope;
use glasslog::admission::keys::KeyType;
use glasslog::tlog::checkpoint::Origin;
use glasslog::tlog::merkle::{self, Hash};
use glasslog::tlog::note::LogSigner;
use serde_json::{json, Value};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A manifest of `n` files named `weights/part-NNNNN.bin` whose contents are `tag` and the
/// number, and its root digest.
fn manifest(tag: &str, n: usize) -> (Value, [u8; 32]) {
    let mut resources = Vec::new();
    let mut concat = Vec::new();
    for i in 0..n {
        let d = sha(format!("{tag} {i}").as_bytes());
        resources.push(json!({"name": format!("weights/part-{i:05}.bin"), "algorithm": "sha256", "digest": hex::encode(d)}));
        concat.extend(d);
    }
    let m = json!({
        "serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": false,
            "ignore_paths": [".git", ".gitattributes", ".github", ".gitignore"]},
        "resources": resources,
    });
    (m, sha(&concat))
}

fn statement(predicate_type: &str, name: &str, root: &[u8; 32], predicate: Value) -> Value {
    common::statements::in_toto(predicate_type, name, root, predicate)
}

fn dataset(name: &str, version: &str, extra: Value) -> (Value, [u8; 32]) {
    let (m, root) = manifest(&format!("{name}@{version}"), 2);
    let mut p = json!({
        "name": name, "version": version, "license": "CC-BY-4.0",
        "releaseTime": "2026-01-02T03:04:05Z",
        "sources": [{"category": "publicDataset", "name": "a public corpus",
                     "uri": "https://data.example/corpus", "license": "CC0-1.0",
                     "collectionPeriod": {"start": "2025-01-01T00:00:00Z", "end": "2025-06-30T00:00:00Z"}}],
        "processing": "deduplicated, filtered for quality",
        "personalData": {"containsPersonalData": "no", "handling": "none present"},
        "manifest": m,
    });
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    (statement(declaration::TRAINING_DATA, name, &root, p), root)
}

fn model(name: &str, version: &str, files: usize, extra: Value) -> (Value, [u8; 32]) {
    let (m, root) = manifest(&format!("{name}@{version}"), files);
    let mut p = json!({
        "name": name, "version": version, "license": "Apache-2.0",
        "releaseTime": "2026-02-03T04:05:06Z", "manifest": m, "dataDisclosure": "withheld",
    });
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    (statement(declaration::MODEL_RELEASE, name, &root, p), root)
}

fn submit(server: &TestServer, p: &Publisher, st: &Value) -> u64 {
    let env = Envelope::sign(PAYLOAD_TYPE, &serde_json::to_vec(st).unwrap(), &[&p.key]).to_json();
    runtime().block_on(async {
        server
            .client()
            .await
            .submit(env, vec![p.pem.clone()])
            .await
            .unwrap_or_else(|e| panic!("submit {}: {e}", st["predicate"]["name"]))
            .index
    })
}

fn digest_ref(d: &[u8; 32]) -> Value {
    json!({"sha256": hex::encode(d)})
}

/// What the corpus logged, by role.
struct Corpus {
    corpus_v1: u64,
    corpus_v1_digest: [u8; 32],
    corpus_v2: u64,
    model_v1: u64,
    model_v2: u64,
    model_v2_file: [u8; 32],
    evil_data: u64,
    evil_model: u64,
    publisher_key_id: String,
    size: u64,
}

/// Hostile text, each of which must render as text.
const SCRIPT: &str = "<script>alert('desc')</script>";
const IMG: &str = "<img src=x onerror=alert('img')>";
const ATTR: &str = "\"><svg onload=alert('attr')>";
const BIDI: &str = "invoice\u{202E}fdp.exe";

fn populate(server: &TestServer) -> Corpus {
    let p = Publisher::new(KeyType::Ed25519);
    let (st, corpus_v1_digest) = dataset("acme/corpus", "1", json!({}));
    let corpus_v1 = submit(server, &p, &st);
    let (st, corpus_v2_digest) = dataset(
        "acme/corpus",
        "2",
        json!({"supersedes": {"logIndex": corpus_v1, "digest": digest_ref(&corpus_v1_digest)}}),
    );
    let corpus_v2 = submit(server, &p, &st);
    // The injection corpus in a dataset: every free-text field and every URI.
    let (st, evil_digest) = dataset(
        "evil/data",
        &format!("1{BIDI}"),
        json!({
            "description": format!("{SCRIPT} {IMG}"),
            "processing": ATTR,
            "supplier": BIDI,
            "knownLimitations": "<iframe src=javascript:alert('iframe')></iframe>",
            "intendedUse": "<a href=javascript:alert('a')>click</a>",
            "downloadLocation": "javascript:alert('download')",
            "sources": [
                {"category": "webCrawl", "name": IMG, "uri": "javascript:alert('source')"},
                {"category": "other", "name": "data uri", "uri": "data:text/html,<script>alert('data')</script>"},
                {"category": "other", "name": "mixed case", "uri": "JaVaScRiPt:alert('case')"},
            ],
            "personalData": {"containsPersonalData": "unknown", "handling": format!("{SCRIPT}\u{2066}x")},
        }),
    );
    let evil_data = submit(server, &p, &st);
    let (st, model_v1_digest) = model(
        "acme/model",
        "1.0",
        3,
        json!({"dataDisclosure": "full", "trainingData": [
            {"name": "acme/corpus", "digest": digest_ref(&corpus_v1_digest), "role": "pretraining", "logIndex": corpus_v1}]}),
    );
    let model_v1 = submit(server, &p, &st);
    // Version 2: a manifest long enough to be paged, trained on corpus v2 (no logIndex: found by
    // digest) and on the hostile dataset.
    let (st, _) = model(
        "acme/model",
        "2.0",
        250,
        json!({
            "dataDisclosure": "partial",
            "trainingData": [
                {"name": "acme/corpus", "digest": digest_ref(&corpus_v2_digest), "role": "pretraining"},
                {"name": "evil/data", "digest": digest_ref(&evil_digest), "role": "finetuning", "logIndex": evil_data}],
            "supersedes": {"logIndex": model_v1, "digest": digest_ref(&model_v1_digest)},
            "downloadLocation": "https://models.example/acme/model",
            "modelCard": {"uri": "https://models.example/acme/model/card", "digest": digest_ref(&sha(b"card"))},
            "description": "A demonstration model.\nSecond line.",
            "supplier": "ACME Research",
        }),
    );
    let model_v2 = submit(server, &p, &st);
    let model_v2_file = sha(b"acme/model@2.0 17");
    let (st, _) = model(
        "evil/model",
        "<script>alert('version')</script>",
        1,
        json!({
            "description": format!("{SCRIPT}{ATTR}{IMG}{BIDI}"),
            "downloadLocation": "javascript:alert('download')",
            "modelCard": {"uri": "data:text/html,<script>alert('card')</script>", "digest": digest_ref(&sha(b"x"))},
            "supplier": "<b onmouseover=alert('b')>bold</b>",
        }),
    );
    let evil_model = submit(server, &p, &st);
    let publisher_key_id = glasslog::admission::keys::PublicKey::from_pem(&p.pem)
        .unwrap()
        .key_id()
        .to_string();
    Corpus {
        corpus_v1,
        corpus_v1_digest,
        corpus_v2,
        model_v1,
        model_v2,
        model_v2_file,
        evil_data,
        evil_model,
        publisher_key_id,
        size: evil_model + 1,
    }
}

fn start_server(dir: &std::path::Path, env: &[(&str, String)]) -> (TestServer, String) {
    let port = common::free_port();
    let listen = format!("127.0.0.1:{port}");
    let server = TestServer::try_start_env(dir, &["--http-listen", &listen], env)
        .unwrap_or_else(|e| panic!("server did not start: {e}"));
    let http = server.http_url.clone().expect("an HTTP listener");
    (server, http)
}

fn api(http: &str, path: &str) -> Value {
    let r = get(http, path);
    assert_eq!(
        r.status,
        200,
        "{path}: {}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8"),
        "{path}"
    );
    assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{path}");
    serde_json::from_slice(&r.body).unwrap()
}

fn indexes(v: &Value) -> Vec<u64> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["index"].as_u64().unwrap())
        .collect()
}

fn html(http: &str, path: &str) -> String {
    let r = get(http, path);
    assert_eq!(r.status, 200, "{path}");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    String::from_utf8(r.body).unwrap()
}

#[test]
fn json_api_headers_and_escaping_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let (server, http) = start_server(dir.path(), &[]);
    let c = populate(&server);

    // Every explorer response carries the security headers, pages and JSON alike.
    for path in [
        "/",
        "/search?q=acme/model",
        &format!("/entry/{}", c.model_v2),
        "/lineage/acme/model",
        "/api/log",
        "/entry/999999",
        "/static/verify.js",
    ] {
        let r = get(&http, path);
        assert_eq!(r.header("content-security-policy"), Some(CSP), "{path}");
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{path}");
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(r.header("vary"), Some("Accept"), "{path}");
    }

    // The log: its checkpoint is the one /checkpoint serves, signed by the log's key.
    let log = api(&http, "/api/log");
    assert_eq!(log["origin"], json!(server.origin));
    assert_eq!(log["verifier_key"], json!(server.verifier_key));
    assert_eq!(log["checkpoint"]["size"], json!(c.size));
    let note = log["checkpoint"]["note"].as_str().unwrap();
    assert_eq!(note.as_bytes(), &get(&http, "/checkpoint").body[..]);
    let cp = server.verifier().verify(note).unwrap();
    assert_eq!(hex::encode(cp.root.0), log["checkpoint"]["root_hash"]);
    assert_eq!(log["checkpoint"]["signatures"][0]["by_log"], json!(true));
    let newest: Vec<u64> = log["newest"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["index"].as_u64().unwrap())
        .collect();
    assert_eq!(newest, (0..c.size).rev().collect::<Vec<_>>());

    // Search: every form the box takes finds what the index holds.
    assert_eq!(
        indexes(&api(&http, "/api/search?q=acme/model")),
        [c.model_v1, c.model_v2]
    );
    assert_eq!(
        indexes(&api(&http, "/api/search?q=acme/model@2.0")),
        [c.model_v2]
    );
    assert_eq!(
        indexes(&api(
            &http,
            &format!("/api/search?q={}", hex::encode(c.model_v2_file))
        )),
        [c.model_v2]
    );
    // A dataset's digest finds it and the model trained on it.
    assert_eq!(
        indexes(&api(
            &http,
            &format!("/api/search?q=sha256:{}", hex::encode(c.corpus_v1_digest))
        )),
        [c.corpus_v1, c.model_v1]
    );
    assert_eq!(
        indexes(&api(
            &http,
            &format!("/api/search?q=key:{}", c.publisher_key_id)
        )),
        (0..c.size).collect::<Vec<_>>()
    );
    assert_eq!(
        indexes(&api(
            &http,
            &format!("/api/search?q={}", c.publisher_key_id.to_uppercase())
        )),
        (0..c.size).collect::<Vec<_>>()
    );
    assert_eq!(indexes(&api(&http, "/api/search?q=3")), [3]);
    assert!(indexes(&api(&http, "/api/search?q=nobody/nothing")).is_empty());
    // A leaf hash finds its entry.
    let entry = api(&http, &format!("/api/entry/{}", c.evil_data));
    let leaf_hash = entry["leaf_hash"].as_str().unwrap();
    assert_eq!(
        indexes(&api(&http, &format!("/api/search?q=leaf:{leaf_hash}"))),
        [c.evil_data]
    );

    // An entry: its leaf hashes to its leaf hash, its proof leads to the checkpoint's root.
    let e = api(&http, &format!("/api/entry/{}", c.model_v2));
    use base64::Engine as _;
    let leaf = base64::engine::general_purpose::STANDARD
        .decode(e["leaf_data"].as_str().unwrap())
        .unwrap();
    assert_eq!(hex::encode(merkle::leaf_hash(&leaf).0), e["leaf_hash"]);
    let path: Vec<Hash> = e["proof"]["hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| merkle::hash_from_slice(&hex::decode(h.as_str().unwrap()).unwrap()).unwrap())
        .collect();
    let cp = server
        .verifier()
        .verify(e["checkpoint"]["note"].as_str().unwrap())
        .unwrap();
    glasslog::tlog::proof::verify_inclusion(
        c.model_v2,
        cp.size,
        &merkle::leaf_hash(&leaf),
        &path,
        &cp.root,
    )
    .unwrap();
    assert_eq!(e["summary"]["kind"], "model");
    assert_eq!(e["summary"]["name"], "acme/model");
    assert_eq!(e["predicate"]["version"], "2.0");
    assert_eq!(
        e["training_data_indexes"],
        json!([c.corpus_v2, c.evil_data])
    );
    let corpus = api(&http, &format!("/api/entry/{}", c.corpus_v1));
    assert_eq!(corpus["trained_models"][0]["index"], json!(c.model_v1));
    assert_eq!(corpus["superseded_by"][0]["index"], json!(c.corpus_v2));
    let m1 = api(&http, &format!("/api/entry/{}", c.model_v1));
    assert_eq!(m1["superseded_by"][0]["index"], json!(c.model_v2));

    // The page paths answer JSON when asked for it, the same JSON.
    let r = get_with(
        &http,
        &format!("/entry/{}", c.model_v2),
        &[("Accept", "application/json")],
    );
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(serde_json::from_slice::<Value>(&r.body).unwrap(), e);
    let r = get_with(
        &http,
        "/search?q=acme/model",
        &[("Accept", "application/json")],
    );
    assert_eq!(
        indexes(&serde_json::from_slice(&r.body).unwrap()),
        [c.model_v1, c.model_v2]
    );

    // Lineage as JSON: model releases, supersedes, datasets.
    let g = api(&http, "/api/lineage/acme/model");
    assert_eq!(g["kind"], "model");
    let nodes = g["nodes"].as_array().unwrap();
    let at = |i: u64| nodes.iter().position(|n| n["index"] == json!(i)).unwrap();
    let edges = g["edges"].as_array().unwrap();
    let has = |from: u64, to: u64, rel: &str| {
        edges.iter().any(|e| {
            e["from"] == json!(at(from)) && e["to"] == json!(at(to)) && e["relation"] == rel
        })
    };
    assert!(has(c.model_v2, c.model_v1, "supersedes"));
    assert!(has(c.model_v1, c.corpus_v1, "trained_on"));
    assert!(has(c.model_v2, c.corpus_v2, "trained_on"));
    assert!(has(c.model_v2, c.evil_data, "trained_on"));
    let g = api(&http, "/api/lineage/acme/corpus");
    assert_eq!(g["kind"], "dataset");
    assert_eq!(g["nodes"].as_array().unwrap().len(), 4, "{g}");

    // Many versions of one name: search pages of 50, a lineage capped at 12 with "show more".
    let many: Vec<u64> = (0..55)
        .map(|v| {
            submit(
                &server,
                &Publisher::new(KeyType::Ed25519),
                &dataset("acme/many", &v.to_string(), json!({})).0,
            )
        })
        .collect();
    let first = api(&http, "/api/search?q=acme/many");
    assert_eq!(indexes(&first), many[..50]);
    let token = first["next_page"].as_str().unwrap();
    let second = api(&http, &format!("/api/search?q=acme/many&page={token}"));
    assert_eq!(indexes(&second), many[50..]);
    assert_eq!(second["next_page"], Value::Null);
    let page = html(&http, &format!("/search?q=acme/many&page={token}"));
    assert!(page.contains(&format!("href=\"/entry/{}\"", many[54])));
    let page = html(&http, "/search?q=acme/many");
    assert!(
        page.contains(&format!(
            "rel=\"next\" href=\"/search?q=acme%2Fmany&amp;page={token}\""
        )),
        "next link"
    );
    let capped = html(&http, "/lineage/acme/many");
    assert_eq!(
        capped.matches("<a href=\"/entry/").count(),
        12 + 12,
        "12 boxes and 12 list items"
    );
    assert!(capped.contains("id=\"show-more\" href=\"/lineage/acme/many?limit=24\""));
    let more = html(&http, "/lineage/acme/many?limit=24");
    assert_eq!(more.matches("<a href=\"/entry/").count(), 24 + 24);
    let all = html(&http, "/lineage/acme/many?limit=100");
    assert_eq!(all.matches("<a href=\"/entry/").count(), 55 + 55);
    assert!(!all.contains("id=\"show-more\""));

    // Errors: status codes, in JSON for the API.
    let r = get(&http, "/api/entry/999999");
    assert_eq!(r.status, 404);
    assert!(serde_json::from_slice::<Value>(&r.body).unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("not in the log"));
    assert_eq!(get(&http, "/api/search?q=%3Cscript%3E").status, 400);
    assert_eq!(get(&http, "/api/lineage/nobody/nothing").status, 404);
    assert_eq!(get(&http, "/entry/abc").status, 404);
    assert_eq!(get(&http, "/search?q=acme/model&page=!!").status, 400);
    // A log index typed in the box is its page.
    let r = get(&http, "/search?q=%233");
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/entry/3"));

    // Hostile text is escaped in the HTML as served (the browser test checks it renders inert).
    let bad_query = get(&http, "/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E");
    assert_eq!(bad_query.status, 400);
    let body = String::from_utf8(bad_query.body).unwrap();
    assert!(!body.contains("<script>alert(1)"), "{body}");
    assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    for path in [
        format!("/entry/{}", c.evil_data),
        format!("/entry/{}", c.evil_model),
        "/lineage/evil/model".to_string(),
        "/lineage/acme/model".to_string(),
        "/".to_string(),
    ] {
        let page = html(&http, &path);
        for needle in [
            "<script>alert",
            "<img",
            "<svg onload",
            "<iframe",
            "<b onmouseover",
        ] {
            assert!(!page.contains(needle), "{path} holds {needle:?}");
        }
        assert!(!page.contains("href=\"javascript:"), "{path}");
        assert!(!page.contains("href=\"data:"), "{path}");
        assert!(
            !page.to_ascii_lowercase().contains("href=\"javascript"),
            "{path}"
        );
        // The one script is ours; the one inline block is non-executable JSON.
        assert!(page.matches("<script").count() <= 2, "{path}");
    }
    let page = html(&http, &format!("/entry/{}", c.evil_data));
    assert!(page.contains("&lt;script&gt;alert(&#39;desc&#39;)&lt;/script&gt;"));
    let at = page
        .find("javascript:alert(&#39;download&#39;)")
        .expect("the URI shown");
    assert!(
        page[at..].contains("(not linked)"),
        "{}",
        &page[at - 200..at + 200]
    );
    assert!(page.contains("<bdi class=\"cp\" data-cp=\"U+202E\""));
    let page = html(&http, &format!("/entry/{}", c.model_v2));
    assert!(page.contains("<a class=\"ext\" href=\"https://models.example/acme/model\""));
    assert!(page.contains("page 1 of 3"), "250 files are paged by 100");
    // A page beyond the last is the last.
    let page9 = html(&http, &format!("/entry/{}?files=9", c.model_v2));
    assert!(page9.contains("page 3 of 3") && page9.contains("weights/part-00249.bin"));
    let page3 = html(&http, &format!("/entry/{}?files=3", c.model_v2));
    let files = &page3[page3.find("id=\"files\"").unwrap()..];
    let files = &files[..files.find("</table>").unwrap()];
    assert!(
        files.contains("weights/part-00249.bin") && !files.contains("weights/part-00000.bin"),
        "{files}"
    );

    // The render histogram counts what was served.
    let metrics = String::from_utf8(get(&http, "/metrics").body).unwrap();
    let count = |labels: &str| -> f64 {
        let series = format!("glasslog_explorer_render_seconds_count{{{labels}}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&series))
            .unwrap_or_else(|| panic!("no {series}"))
            .parse()
            .unwrap()
    };
    assert!(count("page=\"entry\",format=\"html\"") >= 8.0);
    assert!(count("page=\"entry\",format=\"json\"") >= 5.0);
    assert!(count("page=\"search\",format=\"json\"") >= 10.0);
    assert!(count("page=\"lineage\",format=\"html\"") >= 2.0);
}

/// Waits for the page's in-browser check and returns `(result, verdict text)`.
fn verdict(b: &Browser) -> (String, String) {
    b.wait_for("the in-browser check", Duration::from_secs(30), || {
        let v = b.find("#verify-verdict");
        let result = b.attribute(&v, "data-result").unwrap_or_default();
        (result != "pending").then(|| (result, b.text(&v)))
    })
}

/// The page holds nothing the corpus tried to inject, and no dialog opened.
fn assert_inert(b: &Browser) {
    assert_eq!(b.alert_text(), None, "a dialog opened on {}", b.url());
    let injected = b.execute(
        "const bad = [];
         for (const e of document.querySelectorAll('*')) {
           for (const a of e.attributes) if (a.name.toLowerCase().startsWith('on')) bad.push(e.outerHTML.slice(0, 80));
         }
         for (const e of document.querySelectorAll('iframe, img, object, embed, b, main svg[onload]')) bad.push(e.outerHTML.slice(0, 80));
         for (const a of document.querySelectorAll('a[href]')) {
           const p = new URL(a.href, location.href).protocol;
           if (p !== 'http:' && p !== 'https:') bad.push(a.outerHTML.slice(0, 80));
         }
         const scripts = [...document.scripts].map(s => s.src ? new URL(s.src).pathname : s.type);
         return {bad, scripts};",
    );
    assert_eq!(injected["bad"], json!([]), "injected markup on {}", b.url());
    for s in injected["scripts"].as_array().unwrap() {
        assert!(
            s == "/static/verify.js" || s == "application/json",
            "unexpected script {s} on {}",
            b.url()
        );
    }
}

#[test]
fn browser_search_entry_lineage_verification_and_injection() {
    let dir = tempfile::tempdir().unwrap();
    let (server, http) = start_server(dir.path(), &[]);
    let c = populate(&server);
    let b = Browser::start(1280, 1000);

    // Home: the log's size, and the search box.
    b.goto(&format!("{http}/"));
    assert!(b.title().contains("Transparency log"));
    assert_eq!(b.text(&b.find("#log-size")), c.size.to_string());
    assert_inert(&b);
    let q = b.find("#q");
    b.type_text(&q, "acme/model");
    b.click(&b.find("form.search button[type=submit]"));
    b.wait_for("search results", Duration::from_secs(10), || {
        b.url().contains("/search?q=acme%2Fmodel").then_some(())
    });
    let links: Vec<String> = b
        .find_all("table.entries tbody tr td:first-child a")
        .iter()
        .map(|a| b.text(a))
        .collect();
    assert_eq!(
        links,
        [format!("#{}", c.model_v1), format!("#{}", c.model_v2)]
    );

    // Open an entry from the results: the release, verified in the browser.
    b.click(&b.find(&format!(
        "table.entries td:first-child a[href='/entry/{}']",
        c.model_v2
    )));
    b.wait_for("the entry page", Duration::from_secs(10), || {
        b.url()
            .ends_with(&format!("/entry/{}", c.model_v2))
            .then_some(())
    });
    assert_eq!(b.text(&b.find("#entry-name")), "acme/model");
    let (result, text) = verdict(&b);
    assert_eq!(result, "verified", "{text}");
    assert!(text.starts_with("Verified"), "{text}");
    let steps = b.text(&b.find("#verify-steps"));
    assert!(
        steps.contains("The leaf hashes to the proof's leaf hash"),
        "{steps}"
    );
    assert!(
        steps.contains("The statement shown under \"Raw\" is the one in the leaf"),
        "{steps}"
    );
    assert!(steps.contains("leads from entry"), "{steps}");
    assert!(
        steps.contains("signature verifies under the pinned key"),
        "{steps}"
    );
    let limits = b.text(&b.find("#verify-limits"));
    assert!(
        limits.contains("consistent with one you saw earlier"),
        "{limits}"
    );

    // Pin a key that is not the log's: the check fails and says why; forget it: verified again.
    let other = LogSigner::generate(&Origin::new(&server.origin).unwrap()).verifier_key();
    let key = b.find("#log-key");
    b.clear(&key);
    b.type_text(&key, &other);
    b.click(&b.find("#pin-form button[type=submit]"));
    let (result, text) = b.wait_for(
        "the check under another key",
        Duration::from_secs(30),
        || {
            let (r, t) = verdict(&b);
            (r == "failed").then_some((r, t))
        },
    );
    assert!(
        text.contains("no signature by the pinned key"),
        "{result}: {text}"
    );
    // The pinned key is remembered by the browser.
    b.goto(&format!("{http}/entry/{}", c.model_v1));
    assert_eq!(b.property(&b.find("#log-key"), "value"), json!(other));
    assert_eq!(verdict(&b).0, "failed");
    b.click(&b.find("#unpin"));
    let (result, text) = b.wait_for(
        "the check under the server's key",
        Duration::from_secs(30),
        || {
            let (r, t) = verdict(&b);
            (r == "verified").then_some((r, t))
        },
    );
    assert_eq!(result, "verified", "{text}");

    // Follow the release's links: what it supersedes, and a training dataset.
    b.goto(&format!("{http}/entry/{}", c.model_v2));
    b.click(&b.find("#supersedes-link"));
    b.wait_for("the superseded release", Duration::from_secs(10), || {
        b.url()
            .ends_with(&format!("/entry/{}", c.model_v1))
            .then_some(())
    });
    assert!(b
        .text(&b.find("a.superseded-by"))
        .contains(&c.model_v2.to_string()));
    b.click(&b.find_all("a.training-link")[0]);
    b.wait_for("the dataset page", Duration::from_secs(10), || {
        b.url()
            .ends_with(&format!("/entry/{}", c.corpus_v1))
            .then_some(())
    });
    assert_eq!(verdict(&b).0, "verified");

    // Lineage: the SVG's nodes link to entry pages.
    b.goto(&format!("{http}/lineage/acme/model"));
    assert_inert(&b);
    for i in [
        c.model_v1,
        c.model_v2,
        c.corpus_v1,
        c.corpus_v2,
        c.evil_data,
    ] {
        assert_eq!(
            b.find_all(&format!("svg a[href='/entry/{i}']")).len(),
            1,
            "node {i}"
        );
    }
    b.click(&b.find(&format!("svg a[href='/entry/{}'] rect", c.corpus_v2)));
    b.wait_for("the node's page", Duration::from_secs(10), || {
        b.url()
            .ends_with(&format!("/entry/{}", c.corpus_v2))
            .then_some(())
    });
    assert_eq!(verdict(&b).0, "verified");

    // The injection corpus renders inert: no dialog, no injected element, no script URL linked,
    // the text visible as text, direction overrides boxed.
    for (i, visible) in [
        (
            c.evil_data,
            vec![
                SCRIPT,
                IMG,
                ATTR.trim_start_matches('"'),
                "javascript:alert('download')",
            ],
        ),
        (
            c.evil_model,
            vec![
                SCRIPT,
                "<script>alert('version')</script>",
                "<b onmouseover=alert('b')>bold</b>",
            ],
        ),
    ] {
        b.goto(&format!("{http}/entry/{i}"));
        assert_inert(&b);
        let body = b.text(&b.find("main"));
        for v in visible {
            assert!(body.contains(v), "entry {i} does not show {v:?} as text");
        }
        assert!(
            !b.find_all("bdi.cp[data-cp='U+202E']").is_empty(),
            "entry {i}"
        );
        // The boxed characters are still in the text the check compares with the leaf.
        let (result, text) = verdict(&b);
        assert_eq!(result, "verified", "entry {i}: {text}");
    }
    b.goto(&format!("{http}/lineage/evil/model"));
    assert_inert(&b);
    b.goto(&format!("{http}/lineage/evil/data"));
    assert_inert(&b);
    assert!(b.text(&b.find("main")).contains("\u{27E8}U+202E\u{27E9}"));
    b.goto(&format!(
        "{http}/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E"
    ));
    assert_inert(&b);
    assert!(b
        .text(&b.find("main"))
        .contains("<script>alert(1)</script>"));
    drop(server);
}

#[test]
fn a_tampered_proof_fails_in_the_browser() {
    let dir = tempfile::tempdir().unwrap();
    let (server, http) = start_server(dir.path(), &[("GLASSLOG_FAULT", "explorer-proof".into())]);
    let p = Publisher::new(KeyType::Ed25519);
    for n in 0..5 {
        let (st, _) = dataset(&format!("acme/d{n}"), "1", json!({}));
        submit(&server, &p, &st);
    }
    // The gRPC face stays honest; the explorer serves a proof with one bit flipped.
    let served = api(&http, "/api/entry/2");
    use base64::Engine as _;
    let leaf = base64::engine::general_purpose::STANDARD
        .decode(served["leaf_data"].as_str().unwrap())
        .unwrap();
    let honest = runtime().block_on(async {
        let client = server.client().await;
        let (cp, _) = client.checkpoint().await.unwrap();
        client.verify_inclusion(2, &leaf, &cp).await.unwrap()
    });
    let honest: Vec<String> = honest.iter().map(|h| hex::encode(h.0)).collect();
    assert_ne!(served["proof"]["hashes"], json!(honest));
    assert_eq!(served["proof"]["hashes"][1], json!(honest[1]));
    let b = Browser::start(1280, 1000);
    b.goto(&format!("{http}/entry/2"));
    let (result, text) = verdict(&b);
    assert_eq!(result, "failed", "{text}");
    assert!(text.starts_with("Check failed"), "{text}");
    assert!(text.contains("inclusion proof leads to root"), "{text}");
    drop(server);
}

/// Writes the README's screenshots: `cargo test --features fault-injection --test explorer
/// screenshots -- --ignored` (GLASSLOG_SCREENSHOTS sets the directory, `docs/img` by default).
#[test]
#[ignore = "writes docs/img; run by hand"]
fn screenshots() {
    let out = std::env::var("GLASSLOG_SCREENSHOTS")
        .unwrap_or_else(|_| format!("{}/docs/img", env!("CARGO_MANIFEST_DIR")));
    std::fs::create_dir_all(&out).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (server, http) = start_server(dir.path(), &[]);
    let c = populate(&server);
    let b = Browser::start(1280, 1000);
    for (size, w, h) in [("desktop", 1280, 1000), ("phone", 390, 844)] {
        b.set_window(w, h);
        for (page, path) in [
            ("home", "/".to_string()),
            ("entry", format!("/entry/{}", c.model_v2)),
            ("lineage", "/lineage/acme/model".to_string()),
        ] {
            b.goto(&format!("{http}{path}"));
            if page == "entry" {
                assert_eq!(verdict(&b).0, "verified");
                b.execute(
                    "document.getElementById('verify-heading').scrollIntoView(); return null;",
                );
            }
            std::fs::write(format!("{out}/explorer-{page}-{size}.png"), b.screenshot()).unwrap();
        }
    }
    drop(server);
}

/// Render time and throughput at a large log: `GLASSLOG_MEASURE_SIZE` entries (default
/// 1,000,000; filled with `glasslog bench`, kept in `GLASSLOG_MEASURE_DIR` between runs if set),
/// then the corpus and a 20-release model on top. Prints client-side p50/p99 of 500 sequential
/// requests for an entry page and a lineage page, the server's own histogram for them, and
/// `wrk` requests/s for the JSON search at 16 connections.
///
/// `GLASSLOG_MEASURE_SIZE=1000000 cargo test --release …` needs a release build; in the debug
/// build it measures unoptimised code (RocksDB's C++ included).
#[test]
#[ignore = "fills a large log; run by hand"]
fn measure() {
    let size: u64 =
        std::env::var("GLASSLOG_MEASURE_SIZE").map_or(1_000_000, |s| s.parse().unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::env::var("GLASSLOG_MEASURE_DIR")
        .map_or_else(|_| tmp.path().to_path_buf(), std::path::PathBuf::from);
    let (server, http) = start_server(&dir, &[]);
    let now = common::log::current_size(&server);
    let started = std::time::Instant::now();
    if now + 100 < size {
        common::log::fill_to(&server, size - 100);
        eprintln!(
            "filled {} entries in {:?}",
            size - 100 - now,
            started.elapsed()
        );
    }
    let c = populate(&server);
    let p = Publisher::new(KeyType::Ed25519);
    let mut previous: Option<(u64, [u8; 32])> = None;
    let mut big = 0;
    // A name of its own for each run, so that a log kept between runs measures 20 releases
    // (and a search that finds 20) every time.
    let big_name = format!("acme/big-{}", common::log::current_size(&server));
    for v in 0..20 {
        let mut extra = json!({"dataDisclosure": "full", "trainingData": [
            {"name": "acme/corpus", "digest": digest_ref(&c.corpus_v1_digest), "role": "pretraining", "logIndex": c.corpus_v1}]});
        if let Some((i, d)) = previous {
            extra["supersedes"] = json!({"logIndex": i, "digest": digest_ref(&d)});
        }
        let (st, d) = model(&big_name, &format!("{v}.0"), 20, extra);
        big = submit(&server, &p, &st);
        previous = Some((big, d));
    }
    let size = big + 1;
    let time = |path: &str| -> (f64, f64) {
        for _ in 0..20 {
            assert_eq!(get(&http, path).status, 200);
        }
        let mut ms: Vec<f64> = (0..500)
            .map(|_| {
                let t = std::time::Instant::now();
                assert_eq!(get(&http, path).status, 200);
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        (ms[249], ms[494])
    };
    let entry = format!("/entry/{big}");
    let proof_len = api(&http, &format!("/api/entry/{big}"))["proof"]["hashes"]
        .as_array()
        .unwrap()
        .len();
    let (e50, e99) = time(&entry);
    let (l50, l99) = time(&format!("/lineage/{big_name}"));
    let metrics = String::from_utf8(get(&http, "/metrics").body).unwrap();
    let quantiles = |page: &str| -> (f64, f64) {
        let prefix = format!(
            "glasslog_explorer_render_seconds_bucket{{page=\"{page}\",format=\"html\",le=\""
        );
        let buckets: Vec<(f64, f64)> = metrics
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .filter_map(|l| {
                let (le, n) = l.split_once("\"} ")?;
                Some((le.parse().ok()?, n.parse().ok()?))
            })
            .collect();
        let total = buckets.last().unwrap().1;
        let q = |f: f64| buckets.iter().find(|(_, n)| *n >= f * total).unwrap().0 * 1e3;
        (q(0.5), q(0.99))
    };
    let (se50, se99) = quantiles("entry");
    let (sl50, sl99) = quantiles("lineage");
    let wrk = std::process::Command::new("wrk")
        .args(["-t2", "-c16", "-d15s", "--latency"])
        .arg(format!("{http}/api/search?q={big_name}"))
        .output();
    let rps = wrk
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .and_then(|out| {
            out.lines()
                .find_map(|l| l.strip_prefix("Requests/sec:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| "wrk not run".into());
    eprintln!(
        "log size {size}\n\
         entry page   (/entry/{big}, {proof_len}-hash proof): client p50 {e50:.2} ms p99 {e99:.2} ms; server histogram p50 <= {se50} ms p99 <= {se99} ms\n\
         lineage page (/lineage/{big_name}, 20 releases, capped at 12): client p50 {l50:.2} ms p99 {l99:.2} ms; server histogram p50 <= {sl50} ms p99 <= {sl99} ms\n\
         JSON search /api/search?q={big_name} (20 results), wrk -c16: {rps} requests/s"
    );
    drop(server);
}
