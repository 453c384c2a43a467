//! The HTTP surface against a fake worker, in-process: routes, status codes, the tokens (the
//! operator's and tenants'), 404 and 405 (with `Allow`), 413, error bodies, the console's
//! headers, and the OpenAPI document against the router. The fake keeps each connector's
//! tenant and answers another tenant's as missing, as the worker does; the table of routes ×
//! callers checks the surface hands every route its caller.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::{Request, Response};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::handle::{Answer, ApiAccess, ApiError, Caller, StatusCode, WorkerHandle};
use super::model::{
    AwsSetup, Connector, ConnectorList, Credentials, Deleted, FieldProblem, Hit, HitPassage,
    Origin, SearchResult, SyncList, SyncStarted, Tenant, TenantCreated, TenantDeleted, TenantList,
};
use crate::config::Secret;
use crate::sink::passages::SearchMode;

const TOKEN: &str = "fake-token-0123456789";
/// The tokens of the fake's two tenants, `a` and `b`.
const TENANT_TOKENS: [(&str, &str); 2] = [("tenant-a-token", "a"), ("tenant-b-token", "b")];

/// A worker that keeps connectors in a map and remembers what it was asked.
#[derive(Default)]
struct FakeWorker {
    api_on: bool,
    max_body_bytes: usize,
    ready: bool,
    connectors: Mutex<BTreeMap<String, Connector>>,
    asked: Mutex<Vec<String>>,
}

impl FakeWorker {
    fn with_api() -> Arc<Self> {
        Arc::new(Self {
            api_on: true,
            max_body_bytes: 1024,
            ready: true,
            ..Self::default()
        })
    }

    fn asked(&self, what: String) {
        self.asked.lock().unwrap().push(what);
    }

    fn connector(id: &str, tenant: Option<&str>) -> Connector {
        Connector {
            id: id.to_owned(),
            tenant: tenant.map(str::to_owned),
            origin: Origin::Api,
            read_only: false,
            index_name: id.to_owned(),
            buckets: vec!["b".to_owned()],
            role_arn: None,
            expected_bucket_owner: None,
            credentials: Credentials::AssumedRole,
            schedule: None,
            running: None,
            next_run: None,
            last_sync: None,
            last_success_at: None,
            skipped: 0,
            notifications: None,
            inventory: None,
            embedding: None,
            verified_bucket_uri: None,
            verified_role_arn: None,
            verified_bucket_owner_account_id: None,
            verified_at: None,
            sync_rules: None,
            steps: None,
            probed: None,
            retarget_pending: None,
            model_change: None,
        }
    }

    /// The connector `id` if `caller` sees it; else 404, as the worker answers.
    fn found(&self, caller: &Caller, id: &str) -> Answer<Connector> {
        self.connectors
            .lock()
            .unwrap()
            .get(id)
            .filter(|c| caller.sees(c.tenant.as_deref()))
            .cloned()
            .ok_or_else(|| ApiError::no_connector(id))
    }

    fn tenant_view(id: &str) -> Tenant {
        Tenant {
            id: id.to_owned(),
            external_id: format!("s3c-{id}"),
            created_at: "2026-12-07T00:00:00Z".to_owned(),
            connectors: Vec::new(),
        }
    }
}

impl WorkerHandle for FakeWorker {
    fn api(&self) -> Option<ApiAccess> {
        self.api_on.then(|| ApiAccess {
            token: Secret::new(TOKEN),
            max_body_bytes: self.max_body_bytes,
        })
    }

    fn tenant_of(&self, token: &str) -> Option<String> {
        TENANT_TOKENS
            .iter()
            .find(|(t, _)| *t == token)
            .map(|(_, id)| (*id).to_owned())
    }

    fn readiness(&self, caller: &Caller) -> Result<(), Vec<String>> {
        if self.ready {
            Ok(())
        } else {
            Err(vec![
                "shutting down".to_owned(),
                format!("index of {caller:?}"),
            ])
        }
    }

    fn status(&self, caller: &Caller) -> Result<Vec<u8>, String> {
        Ok(
            json!({"worker_running": true, "caller": format!("{caller:?}")})
                .to_string()
                .into_bytes(),
        )
    }

    fn metrics(&self) -> (&'static str, String) {
        (
            "text/plain; version=0.0.4; charset=utf-8",
            "s3c_up 1\n".to_owned(),
        )
    }

    fn exists(&self, caller: &Caller, id: &str) -> bool {
        self.found(caller, id).is_ok()
    }

    fn list(&self, caller: &Caller) -> Answer<ConnectorList> {
        Ok(ConnectorList {
            connectors: self
                .connectors
                .lock()
                .unwrap()
                .values()
                .filter(|c| caller.sees(c.tenant.as_deref()))
                .cloned()
                .collect(),
            conflicts: Vec::new(),
        })
    }

    fn get(&self, caller: &Caller, id: &str) -> Answer<Connector> {
        self.found(caller, id)
    }

    async fn create(&self, caller: &Caller, body: Bytes) -> Answer<Connector> {
        let sent: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let Some(id) = sent["id"].as_str() else {
            return Err(ApiError::problems(vec![FieldProblem::new(
                "id",
                None,
                "is missing",
            )]));
        };
        let connector = Self::connector(id, caller.tenant());
        self.connectors
            .lock()
            .unwrap()
            .insert(id.to_owned(), connector.clone());
        Ok(connector)
    }

    async fn update(&self, caller: &Caller, id: &str, body: Bytes) -> Answer<Connector> {
        let found = self.found(caller, id)?;
        self.asked(format!("update {id} {}", String::from_utf8_lossy(&body)));
        Ok(found)
    }

    async fn delete(&self, caller: &Caller, id: &str, delete_index: bool) -> Answer<Deleted> {
        self.found(caller, id)?;
        self.connectors.lock().unwrap().remove(id);
        Ok(Deleted {
            id: id.to_owned(),
            deleted: true,
            documents_deleted: u64::from(delete_index),
        })
    }

    fn sync_now(
        &self,
        caller: &Caller,
        id: &str,
        retarget: bool,
        reembed: bool,
    ) -> Answer<SyncStarted> {
        self.found(caller, id)?;
        Ok(SyncStarted {
            id: id.to_owned(),
            started: true,
            retarget,
            reembed,
        })
    }

    fn history(&self, caller: &Caller, id: &str, limit: usize) -> Answer<SyncList> {
        self.found(caller, id)?;
        self.asked(format!("history {id} {limit}"));
        Ok(SyncList {
            id: id.to_owned(),
            syncs: Vec::new(),
        })
    }

    async fn search(
        &self,
        caller: &Caller,
        id: &str,
        query: &str,
        mode: Option<SearchMode>,
        limit: usize,
    ) -> Answer<SearchResult> {
        self.found(caller, id)?;
        match mode {
            None => self.asked(format!("search {id} {query} {limit}")),
            Some(mode) => self.asked(format!("search {id} {query} {mode:?} {limit}")),
        }
        Ok(SearchResult {
            id: id.to_owned(),
            query: query.to_owned(),
            mode: "keyword".to_owned(),
            hits: vec![
                Hit {
                    id: "0e".to_owned(),
                    bucket: "b".to_owned(),
                    key: "guide.md".to_owned(),
                    score: 2.5,
                    title: Some("Guide".to_owned()),
                    passage: Some(HitPassage {
                        ordinal: 1,
                        start: 12,
                        end: 47,
                        heading: Some("Install".to_owned()),
                        page: None,
                        text: "## Install\n\nRun the quarterly installer.".to_owned(),
                    }),
                    snippet: Some("Install Run the quarterly installer.".to_owned()),
                    highlights: vec![[16, 25]],
                },
                Hit {
                    id: "0f".to_owned(),
                    bucket: "b".to_owned(),
                    key: "k".to_owned(),
                    score: 1.5,
                    title: None,
                    passage: None,
                    snippet: Some("text".to_owned()),
                    highlights: Vec::new(),
                },
            ],
        })
    }

    async fn aws_setup(
        &self,
        caller: &Caller,
        bucket_uri: &str,
        role_name: &str,
    ) -> Answer<AwsSetup> {
        Ok(AwsSetup {
            principal_arn: "arn:aws:iam::111122223333:user/p".to_owned(),
            external_id: caller
                .tenant()
                .map_or("x".to_owned(), |t| format!("s3c-{t}")),
            role_name: role_name.to_owned(),
            bucket_uri: bucket_uri.to_owned(),
            trust_policy: json!({}),
            permissions_policy: json!({}),
            cloudformation: json!({}),
            terraform: String::new(),
            aws_cli: String::new(),
            next: String::new(),
        })
    }

    async fn create_tenant(&self, body: Bytes) -> Answer<TenantCreated> {
        let sent: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let id = sent["id"].as_str().unwrap_or("t");
        self.asked(format!("create tenant {id}"));
        Ok(TenantCreated {
            id: id.to_owned(),
            token: "new-token".to_owned(),
            external_id: format!("s3c-{id}"),
            created_at: "2026-12-07T00:00:00Z".to_owned(),
        })
    }

    fn tenants(&self) -> Answer<TenantList> {
        Ok(TenantList {
            tenants: TENANT_TOKENS
                .iter()
                .map(|(_, id)| Self::tenant_view(id))
                .collect(),
        })
    }

    fn tenant(&self, id: &str) -> Answer<Tenant> {
        TENANT_TOKENS
            .iter()
            .any(|(_, t)| *t == id)
            .then(|| Self::tenant_view(id))
            .ok_or_else(|| ApiError::no_tenant(id))
    }

    async fn delete_tenant(&self, id: &str, delete_index: bool) -> Answer<TenantDeleted> {
        self.tenant(id)?;
        self.asked(format!("delete tenant {id} {delete_index}"));
        Ok(TenantDeleted {
            id: id.to_owned(),
            deleted: true,
            connectors_deleted: Vec::new(),
            documents_deleted: 0,
        })
    }
}

/// An answer, read whole.
struct Answered {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Answered {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn send(worker: &Arc<FakeWorker>, request: Request<Body>) -> Answered {
    let response: Response<Body> = super::router(Arc::clone(worker))
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answered {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// An authorised request of the operator.
async fn call(worker: &Arc<FakeWorker>, method: &str, uri: &str, body: &str) -> Answered {
    call_as(worker, TOKEN, method, uri, body).await
}

/// A request with `token`.
async fn call_as(
    worker: &Arc<FakeWorker>,
    token: &str,
    method: &str,
    uri: &str,
    body: &str,
) -> Answered {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    send(worker, request).await
}

/// An authorised GET.
async fn get(worker: &Arc<FakeWorker>, uri: &str) -> Answered {
    call(worker, "GET", uri, "").await
}

/// A request without a token.
async fn anonymous(worker: &Arc<FakeWorker>, method: &str, uri: &str) -> Answered {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap();
    send(worker, request).await
}

#[tokio::test]
async fn health_status_and_metrics_are_open_and_plain() {
    let worker = FakeWorker::with_api();
    let ok = anonymous(&worker, "GET", "/healthz").await;
    assert_eq!((ok.status, ok.body.as_str()), (StatusCode::OK, "ok\n"));
    assert_eq!(anonymous(&worker, "GET", "/readyz").await.body, "ready\n");
    // With the API on, /status needs a token.
    let status = get(&worker, "/status").await;
    assert_eq!(status.json()["worker_running"], true);
    assert_eq!(status.header("content-type"), Some("application/json"));
    let metrics = anonymous(&worker, "GET", "/metrics").await;
    assert_eq!(metrics.body, "s3c_up 1\n");
    assert_eq!(
        metrics.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    // Without an api: block all four are open, as before.
    let not_ready = Arc::new(FakeWorker::default());
    let answer = anonymous(&not_ready, "GET", "/readyz").await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.body, "not ready: shutting down; index of Admin\n");
    let status = anonymous(&not_ready, "GET", "/status").await;
    assert_eq!(status.json()["caller"], "Admin");
    // Other methods and paths: plain text.
    let post = anonymous(&worker, "POST", "/healthz").await;
    assert_eq!(
        (post.status, post.body.as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n")
    );
    let post = anonymous(&worker, "POST", "/nope").await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    let missing = anonymous(&worker, "GET", "/nope").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("try /healthz"), "{}", missing.body);
}

#[tokio::test]
async fn without_an_api_block_neither_the_api_nor_the_console_is_served() {
    let worker = Arc::new(FakeWorker {
        ready: true,
        ..FakeWorker::default()
    });
    let api = get(&worker, "/api/v1/connectors").await;
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    assert!(
        api.body.contains("the management API is off"),
        "{}",
        api.body
    );
    assert_eq!(
        anonymous(&worker, "GET", "/").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        anonymous(&worker, "GET", "/healthz").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn every_api_path_needs_the_token() {
    let worker = FakeWorker::with_api();
    for (method, path) in [
        ("GET", "/api/v1/connectors"),
        ("POST", "/api/v1/connectors"),
        ("GET", "/api/v1/openapi.json"),
        ("DELETE", "/api/v1/connectors/a"),
        ("GET", "/api/v1/nothing-here"),
        ("GET", "/api"),
        ("PUT", "/api/v1/connectors"),
        ("GET", "/api/v1/tenants"),
        ("GET", "/status"),
    ] {
        let answer = anonymous(&worker, method, path).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
        assert_eq!(answer.json()["error"]["status"], 401);
    }
    let request = Request::get("/api/v1/connectors")
        .header("authorization", "Bearer not-the-token")
        .body(Body::empty())
        .unwrap();
    let wrong = send(&worker, request).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(!wrong.body.contains(TOKEN));
    assert!(worker.connectors.lock().unwrap().is_empty());
}

#[tokio::test]
async fn routes_answer_their_status_codes() {
    let worker = FakeWorker::with_api();
    let created = call(&worker, "POST", "/api/v1/connectors", r#"{"id": "acme"}"#).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.json()["id"], "acme");
    let listed = get(&worker, "/api/v1/connectors").await;
    assert_eq!(listed.json()["connectors"][0]["id"], "acme");
    assert_eq!(listed.json()["conflicts"], json!([]));
    let got = get(&worker, "/api/v1/connectors/acme").await;
    assert_eq!(got.status, StatusCode::OK);
    // Optional fields of a connector are null, the extras of some answers absent.
    assert_eq!(got.json()["next_run"], Value::Null);
    assert!(got.json().get("steps").is_none(), "{}", got.body);
    let patched = call(
        &worker,
        "PATCH",
        "/api/v1/connectors/acme",
        r#"{"interval": "2h"}"#,
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK);
    let synced = call(
        &worker,
        "POST",
        "/api/v1/connectors/acme/sync?retarget=true&reembed=true",
        "",
    )
    .await;
    assert_eq!(synced.status, StatusCode::ACCEPTED);
    assert_eq!(synced.json()["retarget"], true);
    assert_eq!(synced.json()["reembed"], true);
    let history = get(&worker, "/api/v1/connectors/acme/syncs?limit=5").await;
    assert_eq!(history.status, StatusCode::OK);
    let found = get(
        &worker,
        "/api/v1/connectors/acme/search?q=quarterly+figures",
    )
    .await;
    assert_eq!(found.json()["query"], "quarterly figures");
    // A passage hit carries its whole text; a whole-document hit no passage and no text.
    let hits = &found.json()["hits"];
    assert_eq!(
        hits[0]["passage"],
        json!({"ordinal": 1, "start": 12, "end": 47, "heading": "Install", "page": null,
               "text": "## Install\n\nRun the quarterly installer."})
    );
    assert_eq!(hits[1]["passage"], Value::Null);
    let setup = get(
        &worker,
        "/api/v1/aws-setup?bucket_uri=s3%3A%2F%2Fb%2Fp&flag&bad=%zz%4",
    )
    .await;
    assert_eq!(setup.json()["bucket_uri"], "s3://b/p");
    assert_eq!(setup.json()["role_name"], "s3-connector-read");
    let deleted = call(
        &worker,
        "DELETE",
        "/api/v1/connectors/acme?delete_index=1",
        "",
    )
    .await;
    assert_eq!(deleted.json()["documents_deleted"], 1);
    assert_eq!(
        *worker.asked.lock().unwrap(),
        [
            r#"update acme {"interval": "2h"}"#,
            "history acme 5",
            "search acme quarterly figures 10",
        ]
    );
    // Gone: 404 in the error shape.
    let gone = get(&worker, "/api/v1/connectors/acme").await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(
        gone.json(),
        json!({"error": {"status": 404, "message": "no connector with id \"acme\""}})
    );
}

#[tokio::test]
async fn bad_query_parameters_and_bodies_are_400_in_the_error_shape() {
    let worker = FakeWorker::with_api();
    call(&worker, "POST", "/api/v1/connectors", r#"{"id": "acme"}"#).await;
    for (method, uri, message) in [
        (
            "GET",
            "/api/v1/connectors/acme/syncs?limit=0",
            "query parameter limit=\"0\" must be a number from 1 to 1000",
        ),
        (
            "GET",
            "/api/v1/connectors/acme/search?limit=5",
            "query parameter q (the search text) is missing",
        ),
        (
            "GET",
            "/api/v1/connectors/acme/search?q=x&limit=101",
            "query parameter limit=\"101\" must be a number from 1 to 100",
        ),
        (
            "GET",
            "/api/v1/connectors/acme/search?q=x&mode=fuzzy",
            "query parameter mode=\"fuzzy\" must be keyword, semantic or hybrid",
        ),
        (
            "DELETE",
            "/api/v1/connectors/acme?delete_index=maybe",
            "query parameter delete_index=\"maybe\" must be true or false",
        ),
        (
            "POST",
            "/api/v1/connectors/acme/sync?retarget=yes",
            "query parameter retarget=\"yes\" must be true or false",
        ),
    ] {
        let answer = call(&worker, method, uri, "").await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(answer.json()["error"]["message"], message, "{uri}");
    }
    // An unknown connector is 404 before its parameters are looked at.
    let answer = get(&worker, "/api/v1/connectors/nobody/syncs?limit=0").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    // The worker's problems pass through with their fields.
    let answer = call(&worker, "POST", "/api/v1/connectors", "{}").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.json()["error"],
        json!({"status": 400, "message": "the connector is not valid: id: is missing", "problems": [{"field": "id", "rule": "is missing"}]})
    );
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_with_allow() {
    let worker = FakeWorker::with_api();
    let answer = get(&worker, "/api/v1/nothing").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(
        answer.json()["error"]["message"],
        "no route /api/v1/nothing; see /api/v1/openapi.json"
    );
    for (method, path, allowed) in [
        ("PUT", "/api/v1/connectors", "GET, POST"),
        ("POST", "/api/v1/connectors/a", "GET, PATCH, DELETE"),
        ("GET", "/api/v1/connectors/a/sync", "POST"),
        ("DELETE", "/api/v1/connectors/a/syncs", "GET"),
        ("POST", "/api/v1/aws-setup", "GET"),
        ("PATCH", "/api/v1/openapi.json", "GET"),
    ] {
        let answer = call(&worker, method, path, "").await;
        assert_eq!(
            answer.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(answer.header("allow"), Some(allowed), "{method} {path}");
        assert_eq!(
            answer.json()["error"]["message"],
            format!("{path} allows {allowed}")
        );
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_in_the_error_shape() {
    let worker = FakeWorker::with_api();
    let huge = format!(r#"{{"id": "acme", "index_name": "{}"}}"#, "x".repeat(2000));
    // With a Content-Length (refused before it is read), and streamed without one.
    let sized = call(&worker, "POST", "/api/v1/connectors", &huge).await;
    let chunks: Vec<Result<Bytes, std::io::Error>> = huge
        .as_bytes()
        .chunks(100)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let request = Request::patch("/api/v1/connectors/acme")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap();
    let streamed = send(&worker, request).await;
    for answer in [sized, streamed] {
        assert_eq!(
            answer.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{}",
            answer.body
        );
        assert_eq!(
            answer.json()["error"]["message"],
            "the body is larger than 1024 bytes (api.max_body_bytes)"
        );
    }
    assert!(worker.connectors.lock().unwrap().is_empty());
    assert!(worker.asked.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_console_is_served_with_its_security_headers() {
    let worker = FakeWorker::with_api();
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/index.html", "text/html; charset=utf-8"),
        ("/console/app.js", "text/javascript; charset=utf-8"),
        ("/console/app.css", "text/css; charset=utf-8"),
        ("/favicon.ico", "image/svg+xml"),
    ] {
        let answer = anonymous(&worker, "GET", path).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        assert_eq!(answer.header("content-type"), Some(content_type));
        assert!(
            answer
                .header("content-security-policy")
                .is_some_and(|csp| csp.contains("default-src 'self'")),
            "{path}"
        );
        assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
    }
}

/// The document's operations: (METHOD, path).
fn documented(document: &Value) -> Vec<(String, String)> {
    let mut operations = Vec::new();
    for (path, methods) in document["paths"].as_object().unwrap() {
        for method in methods.as_object().unwrap().keys() {
            if method != "parameters" {
                operations.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    operations
}

#[tokio::test]
async fn the_openapi_document_describes_exactly_the_routes() {
    let worker = FakeWorker::with_api();
    call(
        &worker,
        "POST",
        "/api/v1/connectors",
        r#"{"id": "some-id"}"#,
    )
    .await;
    let served = get(&worker, "/api/v1/openapi.json").await;
    assert_eq!(served.status, StatusCode::OK);
    let document = served.json();
    assert_eq!(
        document,
        serde_json::from_str::<Value>(&super::openapi::document()).unwrap()
    );
    let operations = documented(&document);
    // Two on the collection, three on one connector, five more, four of tenants.
    assert_eq!(operations.len(), 14, "{operations:?}");
    let paths: std::collections::BTreeSet<&str> =
        operations.iter().map(|(_, path)| path.as_str()).collect();
    for path in paths {
        let concrete = if path.starts_with("/api/v1/tenants/") {
            path.replace("{id}", "a")
        } else {
            path.replace("{id}", "some-id")
        };
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let is_documented = operations.contains(&(method.to_owned(), path.to_owned()));
            let answer = call(&worker, method, &format!("{concrete}?q=x"), "{}").await;
            if is_documented {
                assert!(
                    answer.status != StatusCode::METHOD_NOT_ALLOWED
                        && !answer.body.contains("no route"),
                    "{method} {path} is documented but not routed: {}",
                    answer.body
                );
            } else {
                assert_eq!(
                    answer.status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is routed but not documented"
                );
            }
            // Deleting the connector would leave the rest 404.
            if method == "DELETE" && is_documented {
                call(
                    &worker,
                    "POST",
                    "/api/v1/connectors",
                    r#"{"id": "some-id"}"#,
                )
                .await;
            }
        }
    }
}

#[test]
fn the_openapi_links_name_operations_and_their_parameters() {
    let document: Value = serde_json::from_str(&super::openapi::document()).unwrap();
    // operationId -> the path parameters of its path.
    let mut operations = std::collections::HashMap::new();
    for (path, methods) in document["paths"].as_object().unwrap() {
        for (method, operation) in methods.as_object().unwrap() {
            if let Some(id) = operation["operationId"].as_str() {
                let parameters: Vec<String> = path
                    .split('/')
                    .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                    .map(str::to_owned)
                    .collect();
                operations.insert(id.to_owned(), (method.clone(), parameters));
            }
        }
    }
    let mut links = 0;
    for methods in document["paths"].as_object().unwrap().values() {
        for operation in methods.as_object().unwrap().values() {
            let Some(responses) = operation["responses"].as_object() else {
                continue;
            };
            for response in responses.values() {
                for (name, link) in response["links"].as_object().into_iter().flatten() {
                    let target = link["operationId"].as_str().unwrap();
                    let (_, parameters) = operations
                        .get(target)
                        .unwrap_or_else(|| panic!("link {name} names no operation {target}"));
                    let given: Vec<&String> =
                        link["parameters"].as_object().unwrap().keys().collect();
                    assert_eq!(given, parameters.iter().collect::<Vec<_>>(), "{name}");
                    links += 1;
                }
            }
        }
    }
    // create -> get, update, sync, syncs, search, delete; update -> all but itself; get ->
    // update, sync, delete; sync -> get, syncs, delete; create tenant -> get, delete.
    assert_eq!(links, 6 + 5 + 3 + 3 + 2);
}

#[test]
fn the_document_describes_the_bodies_from_their_types() {
    let document: Value = serde_json::from_str(&super::openapi::document()).unwrap();
    let schemas = &document["components"]["schemas"];
    let create = &schemas["CreateConnector"];
    let mut required: Vec<&str> = create["required"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    required.sort_unstable();
    assert_eq!(
        required,
        ["bucket_uri", "expected_bucket_owner", "id", "role_arn"]
    );
    assert_eq!(create["additionalProperties"], false);
    assert!(schemas["UpdateConnector"].get("required").is_none());
    for schema in [
        "Connector",
        "ConnectorList",
        "Error",
        "FieldProblem",
        "SearchResult",
        "AwsSetup",
    ] {
        assert!(schemas[schema].is_object(), "{schema}");
    }
    // A hit's passage always has its text (a whole-document hit has no passage).
    let passage = &schemas["HitPassage"];
    assert_eq!(passage["properties"]["text"]["type"], "string");
    assert!(
        passage["required"]
            .as_array()
            .unwrap()
            .contains(&json!("text")),
        "{passage}"
    );
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[test]
fn query_strings_are_decoded() {
    use super::params::{Params, param};
    let uri: axum::http::Uri = "/x?q=quarterly+figures&bucket_uri=s3%3A%2F%2Fb%2Fp&flag&bad=%zz%4"
        .parse()
        .unwrap();
    let axum::extract::Query(query) = Params::try_from_uri(&uri).unwrap();
    assert_eq!(param(&query, "q"), Some("quarterly figures"));
    assert_eq!(param(&query, "bucket_uri"), Some("s3://b/p"));
    assert_eq!(param(&query, "flag"), Some(""));
    assert_eq!(param(&query, "bad"), Some("%zz%4"));
}

/// The routes of one connector, from the OpenAPI document: (METHOD, path with `{id}`).
fn connector_routes() -> Vec<(String, String)> {
    let document: Value = serde_json::from_str(&super::openapi::document()).unwrap();
    documented(&document)
        .into_iter()
        .filter(|(_, path)| path.starts_with("/api/v1/connectors/{id}"))
        .collect()
}

#[tokio::test]
async fn a_tenant_gets_404_for_another_tenants_connector_on_every_route() {
    let worker = FakeWorker::with_api();
    let (a, b) = (TENANT_TOKENS[0].0, TENANT_TOKENS[1].0);
    for (token, id) in [(a, "of-a"), (b, "of-b"), (TOKEN, "of-operator")] {
        let body = json!({ "id": id }).to_string();
        let created = call_as(&worker, token, "POST", "/api/v1/connectors", &body).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    }
    let routes = connector_routes();
    // Get, update, delete, sync, history, search.
    assert_eq!(routes.len(), 6, "{routes:?}");
    // Who sees which: a tenant its own; the operator all.
    let table = [
        (a, "of-a", true),
        (a, "of-b", false),
        (a, "of-operator", false),
        (b, "of-a", false),
        (b, "of-b", true),
        (TOKEN, "of-a", true),
        (TOKEN, "of-b", true),
        (TOKEN, "of-operator", true),
    ];
    for (token, id, sees) in table {
        for (method, path) in &routes {
            // DELETE last: it would leave the rest 404.
            if method == "DELETE" {
                continue;
            }
            let uri = format!("{}?q=x", path.replace("{id}", id));
            let answer = call_as(&worker, token, method, &uri, "{}").await;
            let missing = call_as(
                &worker,
                token,
                method,
                &format!("{}?q=x", path.replace("{id}", "nobody")),
                "{}",
            )
            .await;
            if sees {
                assert!(
                    answer.status.is_success(),
                    "{token} {method} {uri}: {}",
                    answer.body
                );
            } else {
                // Exactly as a missing one: status and body, the id aside.
                assert_eq!(
                    answer.status,
                    StatusCode::NOT_FOUND,
                    "{token} {method} {uri}"
                );
                assert_eq!(
                    answer.body.replace(id, "nobody"),
                    missing.body,
                    "{token} {method} {uri}"
                );
            }
        }
        let deleted = call_as(
            &worker,
            token,
            "DELETE",
            &format!("/api/v1/connectors/{id}"),
            "",
        )
        .await;
        if sees {
            assert_eq!(deleted.status, StatusCode::OK);
            let again = json!({ "id": id }).to_string();
            let owner = match id {
                "of-a" => a,
                "of-b" => b,
                _ => TOKEN,
            };
            call_as(&worker, owner, "POST", "/api/v1/connectors", &again).await;
        } else {
            assert_eq!(deleted.status, StatusCode::NOT_FOUND);
        }
    }
    // The list: a tenant's own; the operator's all, each with its tenant.
    let listed = call_as(&worker, a, "GET", "/api/v1/connectors", "").await;
    assert_eq!(listed.json()["connectors"].as_array().unwrap().len(), 1);
    assert_eq!(listed.json()["connectors"][0]["tenant"], "a");
    let all = get(&worker, "/api/v1/connectors").await;
    let tenants: Vec<Value> = all.json()["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["tenant"].clone())
        .collect();
    assert_eq!(tenants, [json!("a"), json!("b"), Value::Null]);
    // aws-setup answers the caller's ExternalId.
    let setup = call_as(&worker, b, "GET", "/api/v1/aws-setup", "").await;
    assert_eq!(setup.json()["external_id"], "s3c-b");
}

#[tokio::test]
async fn only_the_operator_manages_tenants_and_status_is_per_caller() {
    let worker = FakeWorker::with_api();
    let tenant = TENANT_TOKENS[0].0;
    for (method, path) in [
        ("GET", "/api/v1/tenants"),
        ("POST", "/api/v1/tenants"),
        ("GET", "/api/v1/tenants/a"),
        ("DELETE", "/api/v1/tenants/a"),
    ] {
        let refused = call_as(&worker, tenant, method, path, r#"{"id": "c"}"#).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{method} {path}");
        assert_eq!(
            refused.json()["error"]["message"],
            "managing tenants needs the operator's token (api.token), not a tenant's"
        );
    }
    assert!(worker.asked.lock().unwrap().is_empty());
    let created = call(&worker, "POST", "/api/v1/tenants", r#"{"id": "c"}"#).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.json()["token"], "new-token");
    assert_eq!(
        get(&worker, "/api/v1/tenants").await.json()["tenants"][1]["id"],
        "b"
    );
    assert_eq!(
        get(&worker, "/api/v1/tenants/a").await.status,
        StatusCode::OK
    );
    let missing = get(&worker, "/api/v1/tenants/zz").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let deleted = call(&worker, "DELETE", "/api/v1/tenants/b?delete_index=true", "").await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(
        *worker.asked.lock().unwrap(),
        ["create tenant c", "delete tenant b true"]
    );
    // /status: 401 without a token, the caller's view with one.
    assert_eq!(
        anonymous(&worker, "GET", "/status").await.status,
        StatusCode::UNAUTHORIZED
    );
    let status = call_as(&worker, tenant, "GET", "/status", "").await;
    assert_eq!(status.json()["caller"], "Tenant(\"a\")");
    // /readyz: the reasons only to a caller with a token.
    let not_ready = Arc::new(FakeWorker {
        api_on: true,
        max_body_bytes: 1024,
        ..FakeWorker::default()
    });
    let answer = anonymous(&not_ready, "GET", "/readyz").await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!answer.body.contains("index"), "{}", answer.body);
    let answer = call_as(&not_ready, tenant, "GET", "/readyz", "").await;
    assert_eq!(
        answer.body,
        "not ready: shutting down; index of Tenant(\"a\")\n"
    );
}
