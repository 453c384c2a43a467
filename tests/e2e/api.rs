//! The management API of `s3-connector run` as a process, against moto with IAM enforcement:
//! a connector is created only after its probe passes with the deployment's ExternalId (201
//! and a sync; 422 naming the cause and nothing stored otherwise), keys and bad bodies are 400,
//! no token is 401, API connectors survive a restart beside the file's (conflicts reported),
//! file connectors are read-only, a sync never runs twice at once, DELETE drops the documents.
//! Updates: a good change is stored (re-probed when the source changed), a bad role is 422 with
//! nothing stored, pointing the index elsewhere is 409 unless re-targeted (then the next sync
//! re-targets), a new schedule applies at once, the probe waits for a refused AssumeRole to
//! propagate, a deleted connector's metrics go. Notifications on an API connector deliver
//! events, and its consumer stops with it. Also the retarget guard on both sinks.

use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use s3_connector::sink::IndexSource;
use s3_connector::sink::Sink;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::fixture::{Backend, Setup, create_bucket, put, s3_client, sqs_client};
use crate::support::http::{self, HttpResponse};
use crate::support::iam::{self, ACCOUNT_ID};
use crate::support::moto::{REGION, free_port};
use crate::support::{Fault, FaultProxy, Match, MotoServer, unique_name};
use crate::worker::{parse_metrics, sample, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_s3-connector");
pub(crate) const TOKEN: &str = "test-token-0123456789abcdef";
pub(crate) const EXTERNAL_ID: &str = "deployment-external-id";
/// `api.probe_wait` of the test workers: two retries (a pause is 3 s) need 6 s; the rest is room
/// for a loaded machine, where 7 s once let the third try start too late.
const PROBE_WAIT: &str = "12s";

/// A worker with the API on: its directory, config and credentials.
pub(crate) struct ApiWorker {
    dir: TempDir,
    listen: SocketAddr,
    user: iam::User,
    child: Option<Child>,
    /// More lines of the `api:` block (indented), e.g. `tenant_embedding_endpoints`.
    api_lines: String,
}

impl ApiWorker {
    /// Writes the config: the API, `defaults` pointing at `endpoint`, and `file_connectors`
    /// (YAML list items).
    pub(crate) fn new(endpoint: &str, user: iam::User, file_connectors: &str) -> Self {
        Self::with_api_lines(endpoint, user, file_connectors, "")
    }

    /// [`ApiWorker::new`], with `api_lines` (each `  field: value\n`) added to the `api:` block.
    pub(crate) fn with_api_lines(
        endpoint: &str,
        user: iam::User,
        file_connectors: &str,
        api_lines: &str,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let worker = Self {
            dir,
            listen,
            user,
            child: None,
            api_lines: api_lines.to_owned(),
        };
        worker.write_config(endpoint, file_connectors);
        worker
    }

    fn write_config(&self, endpoint: &str, file_connectors: &str) {
        let text = format!(
            "index:\n  kind: embedded\n  path: {index}\nstate_dir: {state}\nlisten: {listen}\napi:\n  token: ${{TEST_API_TOKEN}}\n  external_id: {EXTERNAL_ID}\n  probe_wait: {PROBE_WAIT}\n{api_lines}defaults:\n  region: {REGION}\n  endpoint_url: {endpoint}\n  max_attempts: 2\nconnectors: [{file_connectors}]\n",
            index = self.dir.path().join("index").display(),
            state = self.dir.path().join("state").display(),
            listen = self.listen,
            api_lines = self.api_lines,
        );
        std::fs::write(self.config(), text).unwrap();
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config.yml")
    }

    /// `http://` and the address it listens on.
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.listen)
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("worker.log")).unwrap_or_default()
    }

    /// Starts `run`, with the IAM user's keys as the default credential chain.
    pub(crate) fn start(&mut self) {
        let child = Command::new(BIN)
            .args(["--log-format", "json", "run", "--config"])
            .arg(self.config())
            .env_remove("RUST_LOG")
            .env_remove("S3C_LISTEN")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .env("TEST_API_TOKEN", TOKEN)
            .env("AWS_ACCESS_KEY_ID", &self.user.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &self.user.secret_access_key)
            .env("AWS_REGION", REGION)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(self.dir.path().join("worker.log")).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
        wait_for("the worker's /healthz", || {
            self.try_call("GET", "/healthz", None, &[])
                .filter(|r| r.status == 200)
        });
    }

    /// SIGTERM, then waits for the exit.
    pub(crate) fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-s", "TERM", &child.id().to_string()])
            .status();
        let status = child.wait().unwrap();
        assert!(
            status.success(),
            "worker exited with {status}; log:\n{}",
            self.log()
        );
    }

    pub(crate) fn try_call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Option<HttpResponse> {
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut all = vec![("Content-Type", "application/json")];
        all.extend_from_slice(headers);
        http::send(
            &self.base_url(),
            method,
            path,
            &all,
            body.as_bytes(),
            Duration::from_secs(60),
        )
        .ok()
    }

    /// An authorised API call of the operator; the status and the JSON answer.
    pub(crate) fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.call_as(TOKEN, method, path, body)
    }

    /// An API call with `token`; the status and the JSON answer.
    pub(crate) fn call_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let bearer = format!("Bearer {token}");
        let response = self
            .try_call(method, path, body, &[("Authorization", &bearer)])
            .unwrap_or_else(|| panic!("{method} {path} failed; log:\n{}", self.log()));
        let json = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        (response.status, json)
    }

    pub(crate) fn stored_file(&self) -> PathBuf {
        self.dir.path().join("state").join("api-connectors.json")
    }
}

impl Drop for ApiWorker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A role trusting `principal` under `external_id`, reading `bucket`.
pub(crate) fn role(
    moto: &MotoServer,
    name: &str,
    principal: &str,
    external_id: &str,
    bucket: &str,
) -> String {
    let trust = format!(
        r#"{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Principal": {{"AWS": "{principal}"}}, "Action": "sts:AssumeRole", "Condition": {{"StringEquals": {{"sts:ExternalId": "{external_id}"}}}}}}]}}"#
    );
    iam::create_role(moto, name, &trust, &iam::bucket_reader_policy(bucket))
}

pub(crate) fn body(id: &str, bucket_uri: &str, role_arn: &str, owner: &str) -> Value {
    json!({ "id": id, "bucket_uri": bucket_uri, "role_arn": role_arn, "expected_bucket_owner": owner, "interval": "1h" })
}

/// The ids of a `{"connectors": [...]}` answer, in order.
pub(crate) fn connector_ids(answer: &Value) -> Vec<&str> {
    answer["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect()
}

/// The message of an error answer.
pub(crate) fn message(answer: &Value) -> String {
    answer["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn connectors_are_stored_only_after_their_probe_passes() {
    let moto = MotoServer::start();
    let upstream = moto.endpoint();
    let proxy = FaultProxy::start(&upstream);
    let s3 = s3_client(&upstream);
    let (bucket, elsewhere) = (unique_name("customer"), unique_name("elsewhere"));
    for name in [&bucket, &elsewhere] {
        create_bucket(&s3, name).await;
    }
    put(
        &s3,
        &bucket,
        "reports/q3.txt",
        "the quarterly figures of the customer",
    )
    .await;
    let user = iam::create_user(
        &moto,
        "platform-worker",
        r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}"#,
    );
    let good_role = role(&moto, "reader", &user.arn, EXTERNAL_ID, &bucket);
    let other_id_role = role(&moto, "other-id", &user.arn, "someone-elses-id", &bucket);
    let owner_role = role(&moto, "owner-check", &user.arn, EXTERNAL_ID, &elsewhere);
    // A role for a bucket that was never created (a typo in the bucket's name).
    let missing = unique_name("missing");
    let missing_role = role(&moto, "missing-bucket", &user.arn, EXTERNAL_ID, &missing);
    moto.enable_iam_enforcement();
    // moto ignores ExpectedBucketOwner; real S3 answers 403 for a bucket of another account.
    proxy.inject(
        Fault::access_denied(),
        Match::any()
            .path_prefix(&format!("/{elsewhere}"))
            .header("x-amz-expected-bucket-owner"),
        None,
    );
    let file_connector = format!(
        "{{id: from-file, buckets: [{bucket}], role_arn: \"{good_role}\", external_id: {EXTERNAL_ID}}}"
    );
    let mut worker = ApiWorker::new(&proxy.endpoint(), user, &file_connector);
    worker.start();

    // Without the token, or with another, nothing is answered.
    let anonymous = worker
        .try_call("GET", "/api/v1/connectors", None, &[])
        .unwrap();
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.header("www-authenticate"), Some("Bearer"));
    let wrong = worker
        .try_call(
            "GET",
            "/api/v1/connectors",
            None,
            &[("Authorization", "Bearer not-the-token-at-all")],
        )
        .unwrap();
    assert_eq!(wrong.status, 401);
    assert!(!wrong.text().contains(TOKEN));
    // Health and metrics stay open.
    assert_eq!(
        worker
            .try_call("GET", "/metrics", None, &[])
            .unwrap()
            .status,
        200
    );

    // Keys in the body: 400, the secret not repeated.
    let mut with_keys = body("keys", &format!("s3://{bucket}"), &good_role, ACCOUNT_ID);
    with_keys["aws_access_key_id"] = json!("AKIAEXAMPLE");
    with_keys["aws_secret_access_key"] = json!("wJalrXUtnFEMI-very-secret");
    let (status, answer) = worker.call("POST", "/api/v1/connectors", Some(&with_keys));
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer["error"]["problems"][0]["field"], "aws_access_key_id",
        "{answer}"
    );
    assert!(!answer.to_string().contains("very-secret"), "{answer}");
    // Bad JSON says where; a bad field names field, value and rule.
    let bearer = format!("Bearer {TOKEN}");
    let broken = worker
        .try_call(
            "POST",
            "/api/v1/connectors",
            None,
            &[("Authorization", &bearer)],
        )
        .unwrap();
    assert_eq!(broken.status, 400, "{}", broken.text());
    assert!(
        broken.text().contains("line 1, column"),
        "{}",
        broken.text()
    );
    let (status, answer) = worker.call(
        "POST",
        "/api/v1/connectors",
        Some(&body(
            "bad-owner",
            &format!("s3://{bucket}"),
            &good_role,
            "42",
        )),
    );
    assert_eq!(status, 400);
    assert_eq!(
        answer["error"]["problems"][0]["field"],
        "expected_bucket_owner"
    );
    assert!(message(&answer).contains("12-digit"), "{answer}");

    // Bodies are size-limited.
    let mut huge = body("huge", &format!("s3://{bucket}"), &good_role, ACCOUNT_ID);
    huge["index_name"] = json!("x".repeat(70_000));
    let (status, answer) = worker.call("POST", "/api/v1/connectors", Some(&huge));
    assert_eq!(status, 413, "{answer}");

    // Probes that fail: 422 naming the cause; nothing stored.
    let failing = [
        (
            body(
                "wrong-id",
                &format!("s3://{bucket}"),
                &other_id_role,
                ACCOUNT_ID,
            ),
            "credentials",
            "external_id does not match",
        ),
        (
            body(
                "no-bucket",
                &format!("s3://{missing}"),
                &missing_role,
                ACCOUNT_ID,
            ),
            "head_bucket",
            "does not exist",
        ),
        (
            body(
                "wrong-owner",
                &format!("s3://{elsewhere}"),
                &owner_role,
                "999999999999",
            ),
            "head_bucket",
            "is not owned by account 999999999999",
        ),
    ];
    for (request, step, cause) in &failing {
        let (status, answer) = worker.call("POST", "/api/v1/connectors", Some(request));
        assert_eq!(status, 422, "{request}: {answer}");
        // Only a refused AssumeRole is waited for (IAM propagation); S3's refusals answer at once.
        let waited = answer["error"]["cause"]
            .as_str()
            .unwrap()
            .contains("still refused after");
        assert_eq!(waited, *step == "credentials", "{answer}");
        assert!(
            answer["error"]["cause"].as_str().unwrap().contains(cause),
            "{answer}"
        );
        let steps = answer["error"]["steps"].as_array().unwrap();
        assert!(
            steps
                .iter()
                .any(|s| s["step"] == *step && s["status"] == "fail"),
            "{answer}"
        );
    }
    // A client that knows its role is not new skips the wait.
    let mut no_wait = failing[0].0.clone();
    no_wait["wait"] = json!(false);
    let (status, answer) = worker.call("POST", "/api/v1/connectors", Some(&no_wait));
    assert_eq!(status, 422, "{answer}");
    assert!(!message(&answer).contains("waiting for IAM"), "{answer}");
    let (_, listed) = worker.call("GET", "/api/v1/connectors", None);
    assert_eq!(connector_ids(&listed), ["from-file"], "{listed}");
    assert!(
        !worker.stored_file().exists(),
        "a failed probe stored something"
    );

    // A good role: 201 with what was verified, then a sync at once.
    let good = body(
        "acme",
        &format!("s3://{bucket}/reports/"),
        &good_role,
        ACCOUNT_ID,
    );
    let (status, created) = worker.call("POST", "/api/v1/connectors", Some(&good));
    assert_eq!(status, 201, "{created}\n{}", worker.log());
    assert_eq!(
        created["verified_bucket_uri"],
        format!("s3://{bucket}/reports")
    );
    assert_eq!(created["verified_role_arn"], good_role);
    assert_eq!(created["verified_bucket_owner_account_id"], ACCOUNT_ID);
    assert_eq!(created["origin"], "api");
    let synced = wait_for("the new connector's first sync", || {
        let (_, history) = worker.call("GET", "/api/v1/connectors/acme/syncs", None);
        history["syncs"].as_array().and_then(|s| s.first().cloned())
    });
    assert_eq!(
        (synced["outcome"].as_str(), synced["added"].as_u64()),
        (Some("succeeded"), Some(1)),
        "{synced}"
    );
    assert_eq!(synced["trigger"], "api");
    let (status, found) = worker.call(
        "GET",
        "/api/v1/connectors/acme/search?q=quarterly&limit=5",
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(found["hits"][0]["key"], "reports/q3.txt", "{found}");
    assert!(
        found["hits"][0]["snippet"]
            .as_str()
            .unwrap()
            .contains("quarterly"),
        "{found}"
    );
    // The same id again: 409.
    let (status, _) = worker.call("POST", "/api/v1/connectors", Some(&good));
    assert_eq!(status, 409);

    // Never two syncs at once: the second request while the first lists is refused.
    let slow = proxy.inject(
        Fault::Delay(Duration::from_secs(3)),
        Match::any()
            .path_prefix(&format!("/{bucket}"))
            .query_contains("list-type=2"),
        Some(1),
    );
    let (status, started) = worker.call("POST", "/api/v1/connectors/acme/sync", None);
    assert_eq!(status, 202, "{started}");
    wait_for("the slowed listing", || (slow.applied() == 1).then_some(()));
    let (status, refused) = worker.call("POST", "/api/v1/connectors/acme/sync", None);
    assert_eq!(status, 409, "{refused}");
    wait_for("the second sync's record", || {
        let (_, history) = worker.call("GET", "/api/v1/connectors/acme/syncs", None);
        (history["syncs"].as_array()?.len() == 2).then_some(())
    });

    // File connectors are read-only.
    let (status, answer) = worker.call("DELETE", "/api/v1/connectors/from-file", None);
    assert_eq!(status, 409, "{answer}");
    assert!(message(&answer).contains("config file"), "{answer}");

    // A restart keeps the API connector; a file connector taking its id is reported.
    worker.stop();
    worker.start();
    let (_, one) = worker.call("GET", "/api/v1/connectors/acme", None);
    assert_eq!(one["verified_role_arn"], good_role, "{one}");
    assert_eq!(one["last_sync"]["outcome"], "succeeded", "{one}");
    worker.stop();
    // `status` without a worker reads the stored API connectors too.
    let offline = Command::new(BIN)
        .args(["status", "--json", "--config"])
        .arg(worker.config())
        .env("TEST_API_TOKEN", TOKEN)
        .env_remove("S3C_LISTEN")
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&offline.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&offline.stderr)));
    assert_eq!(connector_ids(&report), ["from-file", "acme"], "{report}");
    worker.write_config(
        &proxy.endpoint(),
        &format!("{file_connector}, {{id: acme, index_name: file-acme, buckets: [{bucket}], role_arn: \"{good_role}\", external_id: {EXTERNAL_ID}}}"),
    );
    worker.start();
    let (_, listed) = worker.call("GET", "/api/v1/connectors", None);
    assert_eq!(listed["conflicts"][0]["id"], "acme", "{listed}");
    assert!(
        listed["conflicts"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("already exists"),
        "{listed}"
    );
    assert_eq!(listed["connectors"][1]["origin"], "file", "{listed}");
    worker.stop();
    worker.write_config(&proxy.endpoint(), &file_connector);
    worker.start();

    // DELETE stops it and drops its documents; it is gone after a restart too.
    let (status, deleted) =
        worker.call("DELETE", "/api/v1/connectors/acme?delete_index=true", None);
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["documents_deleted"], 1, "{deleted}");
    assert_eq!(worker.call("GET", "/api/v1/connectors/acme", None).0, 404);
    worker.stop();
    worker.start();
    assert_eq!(worker.call("GET", "/api/v1/connectors/acme", None).0, 404);
    worker.stop();
    moto.disable_iam_enforcement();
}

/// STS's answer to an AssumeRole the role's trust policy does not (yet) allow.
fn assume_role_denied() -> Fault {
    Fault::Respond {
        status: 403,
        headers: vec![("content-type".into(), "text/xml".into())],
        body: b"<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User is not authorized to perform: sts:AssumeRole</Message></Error><RequestId>FAULTPROXY</RequestId></ErrorResponse>".to_vec(),
    }
}

/// Requests to STS (their signature names the service).
fn sts_calls() -> Match {
    Match::any().header_contains("authorization", "/sts/aws4_request")
}

/// A policy reading `buckets`, plus `extra` statements (JSON objects, comma-separated).
fn reader_policy(buckets: &[&str], extra: &str) -> String {
    let statements: Vec<String> = buckets
        .iter()
        .map(|bucket| {
            format!(
                r#"{{"Effect": "Allow", "Action": ["s3:ListBucket", "s3:HeadBucket", "s3:GetBucketLocation", "s3:GetBucketNotification"], "Resource": "arn:aws:s3:::{bucket}"}}, {{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::{bucket}/*"}}"#
            )
        })
        .chain((!extra.is_empty()).then(|| extra.to_owned()))
        .collect();
    format!(
        r#"{{"Version": "2012-10-17", "Statement": [{}]}}"#,
        statements.join(", ")
    )
}

fn trusting(principal: &str, external_id: &str) -> String {
    format!(
        r#"{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Principal": {{"AWS": "{principal}"}}, "Action": "sts:AssumeRole", "Condition": {{"StringEquals": {{"sts:ExternalId": "{external_id}"}}}}}}]}}"#
    )
}

pub(crate) const ASSUME_ANY_ROLE: &str = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}"#;

/// The newest record of a connector's history with `trigger`, once there is one.
fn newest_sync(worker: &ApiWorker, id: &str, trigger: &str, after: usize) -> Value {
    wait_for(&format!("a sync of {id} triggered by {trigger}"), || {
        let (_, history) = worker.call("GET", &format!("/api/v1/connectors/{id}/syncs"), None);
        let syncs = history["syncs"].as_array()?;
        (syncs.len() > after && syncs[0]["trigger"] == trigger).then(|| syncs[0].clone())
    })
}

fn metrics_text(worker: &ApiWorker) -> String {
    worker
        .try_call("GET", "/metrics", None, &[])
        .unwrap()
        .text()
}

#[tokio::test]
async fn updates_are_validated_probed_and_bound_to_the_index_source() {
    let moto = MotoServer::start();
    let proxy = FaultProxy::start(&moto.endpoint());
    let s3 = s3_client(&moto.endpoint());
    let (first, second) = (unique_name("first"), unique_name("second"));
    for name in [&first, &second] {
        create_bucket(&s3, name).await;
        put(&s3, name, "a.txt", format!("words of {name}")).await;
    }
    let user = iam::create_user(&moto, "platform-worker", ASSUME_ANY_ROLE);
    let both = iam::create_role(
        &moto,
        "reader-both",
        &trusting(&user.arn, EXTERNAL_ID),
        &reader_policy(&[&first, &second], ""),
    );
    let other_id = iam::create_role(
        &moto,
        "other-id",
        &trusting(&user.arn, "someone-elses-id"),
        &reader_policy(&[&first, &second], ""),
    );
    moto.enable_iam_enforcement();
    let file_connector = format!(
        "{{id: from-file, buckets: [{first}], index_name: file-index, role_arn: \"{both}\", external_id: {EXTERNAL_ID}}}"
    );
    let mut worker = ApiWorker::new(&proxy.endpoint(), user, &file_connector);
    worker.start();

    // A role just created: STS refuses it twice, and the probe waits for it.
    let propagating = proxy.inject(assume_role_denied(), sts_calls(), Some(2));
    let (status, created) = worker.call(
        "POST",
        "/api/v1/connectors",
        Some(&body("acme", &format!("s3://{first}"), &both, ACCOUNT_ID)),
    );
    assert_eq!(status, 201, "{created}\n{}", worker.log());
    assert_eq!(propagating.applied(), 2);
    assert!(
        created["steps"][0]["message"]
            .as_str()
            .unwrap()
            .contains("waiting for IAM to propagate"),
        "{created}"
    );
    let synced = newest_sync(&worker, "acme", "api", 0);
    assert_eq!(synced["added"], 1, "{synced}");
    let stored_before = std::fs::read(worker.stored_file()).unwrap();

    // Bad updates: 400 naming the field, 409 for the file's connector; nothing stored.
    for (path, patch, expected, part) in [
        (
            "acme",
            json!({"expected_bucket_owner": "42"}),
            400,
            "expected_bucket_owner",
        ),
        ("acme", json!({"id": "renamed"}), 400, "cannot be changed"),
        (
            "acme",
            json!({"aws_secret_access_key": "wJalr-secret"}),
            400,
            "accepts no AWS keys",
        ),
        (
            "acme",
            json!({"index_name": "file-index"}),
            409,
            "already written by connector from-file",
        ),
        ("from-file", json!({"interval": "2h"}), 409, "read-only"),
        ("nobody", json!({"interval": "2h"}), 404, "no connector"),
    ] {
        let (status, answer) =
            worker.call("PATCH", &format!("/api/v1/connectors/{path}"), Some(&patch));
        assert_eq!(status, expected, "{patch}: {answer}");
        assert!(answer.to_string().contains(part), "{patch}: {answer}");
        assert!(!answer.to_string().contains("wJalr"), "{answer}");
    }
    // A role that trusts another ExternalId: 422 with the failing step; the old role stays.
    let (status, refused) = worker.call(
        "PATCH",
        "/api/v1/connectors/acme",
        Some(&json!({"role_arn": other_id, "wait": false})),
    );
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["error"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["step"] == "credentials" && s["status"] == "fail"),
        "{refused}"
    );
    let (_, acme) = worker.call("GET", "/api/v1/connectors/acme", None);
    assert_eq!(acme["role_arn"], both, "{acme}");
    assert_eq!(std::fs::read(worker.stored_file()).unwrap(), stored_before);

    // A new schedule applies at once; a change the probe does not check is not probed.
    let (status, updated) = worker.call(
        "PATCH",
        "/api/v1/connectors/acme",
        Some(&json!({"interval": "2s"})),
    );
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["probed"], false, "{updated}");
    assert_eq!(updated["schedule"], "every 2s", "{updated}");
    let scheduled = newest_sync(&worker, "acme", "interval", 1);
    assert_eq!(scheduled["outcome"], "succeeded", "{scheduled}");
    let (status, hourly) = worker.call(
        "PATCH",
        "/api/v1/connectors/acme",
        Some(&json!({"interval": "1h"})),
    );
    assert_eq!(status, 200);
    // The answer shows the new schedule's next run, the one a later read shows too.
    let next_run = |connector: &Value| {
        time::OffsetDateTime::parse(
            connector["next_run"].as_str().unwrap_or_default(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap_or_else(|e| panic!("{e}: {connector}"))
    };
    let soonest = time::OffsetDateTime::now_utc() + time::Duration::minutes(59);
    assert!(next_run(&hourly) > soonest, "{hourly}");
    let (_, read) = worker.call("GET", "/api/v1/connectors/acme", None);
    assert_eq!(next_run(&read), next_run(&hourly), "{read}");
    wait_for("acme's syncs to stop", || {
        let (_, one) = worker.call("GET", "/api/v1/connectors/acme", None);
        one["running"].is_null().then_some(())
    });

    // Pointing the index, which holds documents of `first`, at `second`: refused, naming both.
    let moved = json!({"bucket_uri": format!("s3://{second}")});
    let (status, refused) = worker.call("PATCH", "/api/v1/connectors/acme", Some(&moved));
    assert_eq!(status, 409, "{refused}");
    let said = message(&refused);
    assert!(
        said.contains(&format!("bucket(s) {first}"))
            && said.contains(&format!("bucket(s) {second}")),
        "{said}"
    );
    assert!(said.contains("\"retarget\": true"), "{said}");
    let (_, acme) = worker.call("GET", "/api/v1/connectors/acme", None);
    assert_eq!(acme["buckets"], json!([first]), "{acme}");

    // With "retarget": true it is stored (re-probed), and the next sync re-targets, also after
    // a restart.
    let mut retarget = moved.clone();
    retarget["retarget"] = json!(true);
    let (status, updated) = worker.call("PATCH", "/api/v1/connectors/acme", Some(&retarget));
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        (&updated["probed"], &updated["retarget_pending"]),
        (&json!(true), &json!(true)),
        "{updated}"
    );
    assert_eq!(updated["verified_bucket_uri"], format!("s3://{second}"));
    // The permission to re-target is stored: it survives a restart.
    worker.stop();
    worker.start();
    let before = {
        let (_, history) = worker.call("GET", "/api/v1/connectors/acme/syncs", None);
        history["syncs"].as_array().unwrap().len()
    };
    let (status, started) = worker.call("POST", "/api/v1/connectors/acme/sync", None);
    assert_eq!(status, 202, "{started}");
    let retargeted = newest_sync(&worker, "acme", "api", before);
    assert_eq!(
        (
            &retargeted["added"],
            &retargeted["deleted"],
            &retargeted["errors"]
        ),
        (&json!(1), &json!(1), &json!(0)),
        "{retargeted}"
    );
    let (_, found) = worker.call("GET", "/api/v1/connectors/acme/search?q=words", None);
    let keys: Vec<&str> = found["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["bucket"].as_str().unwrap())
        .collect();
    assert_eq!(keys, [second.as_str()], "{found}");
    let stored: Value =
        serde_json::from_slice(&std::fs::read(worker.stored_file()).unwrap()).unwrap();
    assert!(
        stored["connectors"][0].get("retarget_pending").is_none(),
        "the re-target was not recorded as done: {stored}"
    );

    // Deleting the connector takes its metric series with it, at once.
    let series = "connector=\"acme\"";
    assert!(metrics_text(&worker).contains(series));
    let (status, _) = worker.call("DELETE", "/api/v1/connectors/acme", None);
    assert_eq!(status, 200);
    let scrape = metrics_text(&worker);
    assert!(!scrape.contains(series), "{scrape}");
    let parsed = parse_metrics(&scrape);
    assert_eq!(
        sample(
            &parsed,
            "s3c_syncs_total",
            &[("connector", "from-file"), ("outcome", "succeeded")]
        ),
        Some(0.0),
        "{scrape}"
    );
    worker.stop();
    moto.disable_iam_enforcement();
}

#[tokio::test]
async fn notifications_of_an_api_connector_deliver_events_until_it_is_deleted() {
    let moto = MotoServer::start();
    let s3 = s3_client(&moto.endpoint());
    let sqs = sqs_client(&moto.endpoint());
    let bucket = unique_name("events");
    create_bucket(&s3, &bucket).await;
    let queue_url = sqs
        .create_queue()
        .queue_name(unique_name("events"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    let queue = aws_sdk_s3::types::QueueConfiguration::builder()
        .queue_arn(&queue_arn)
        .events(aws_sdk_s3::types::Event::from("s3:ObjectCreated:*"))
        .events(aws_sdk_s3::types::Event::from("s3:ObjectRemoved:*"))
        .build()
        .unwrap();
    s3.put_bucket_notification_configuration()
        .bucket(&bucket)
        .notification_configuration(
            aws_sdk_s3::types::NotificationConfiguration::builder()
                .queue_configurations(queue)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let user = iam::create_user(&moto, "platform-worker", ASSUME_ANY_ROLE);
    let role = iam::create_role(
        &moto,
        "reader",
        &trusting(&user.arn, EXTERNAL_ID),
        &reader_policy(
            &[&bucket],
            &format!(r#"{{"Effect": "Allow", "Action": "sqs:*", "Resource": "{queue_arn}"}}"#),
        ),
    );
    moto.enable_iam_enforcement();
    let mut worker = ApiWorker::new(&moto.endpoint(), user, "");
    worker.start();

    let mut request = body("events", &format!("s3://{bucket}"), &role, ACCOUNT_ID);
    request["notifications"] =
        json!({"queue_url": queue_url, "wait_time": 1, "visibility_timeout": 30});
    let (status, created) = worker.call("POST", "/api/v1/connectors", Some(&request));
    assert_eq!(status, 201, "{created}\n{}", worker.log());
    // The probe covered the queue too.
    assert!(
        created["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["step"] == "queue_receive" && s["status"] == "pass"),
        "{created}"
    );
    assert_eq!(created["notifications"]["queue_url"], queue_url.as_str());
    newest_sync(&worker, "events", "api", 0);

    // An object put now arrives by its event: no sync is due for an hour.
    moto.disable_iam_enforcement();
    put(&s3, &bucket, "fresh.txt", "a freshly uploaded memo").await;
    moto.enable_iam_enforcement();
    wait_for("the event's document", || {
        let (_, found) = worker.call("GET", "/api/v1/connectors/events/search?q=memo", None);
        (found["hits"][0]["key"] == "fresh.txt").then_some(())
    });
    // The round records its counts just after its commit makes the document searchable.
    wait_for("the applied event in /status", || {
        let (_, status_report) = worker.call("GET", "/status", None);
        (status_report["connectors"][0]["notifications"]["events_applied"].as_u64() >= Some(1))
            .then_some(())
    });

    // Deleted: its consumer stops, so a new event stays in the queue.
    let (status, _) = worker.call("DELETE", "/api/v1/connectors/events", None);
    assert_eq!(status, 200);
    moto.disable_iam_enforcement();
    put(&s3, &bucket, "late.txt", "after the connector was deleted").await;
    // Longer than a receive (wait_time 1 s) and a round.
    std::thread::sleep(Duration::from_secs(4));
    let waiting = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages]
        .clone();
    assert_eq!(
        waiting, "1",
        "a deleted connector's consumer still receives"
    );
    worker.stop();
}

#[tokio::test]
async fn an_api_connector_with_an_inventory_is_probed_at_its_destination() {
    let moto = MotoServer::start();
    let s3 = s3_client(&moto.endpoint());
    let (bucket, inventories) = (unique_name("inv-source"), unique_name("inventories"));
    for name in [&bucket, &inventories] {
        create_bucket(&s3, name).await;
    }
    put(&s3, &bucket, "a.txt", "listed while no inventory exists").await;
    let user = iam::create_user(&moto, "platform-worker", ASSUME_ANY_ROLE);
    let trust = trusting(&user.arn, EXTERNAL_ID);
    let both = iam::create_role(
        &moto,
        "both",
        &trust,
        &reader_policy(&[&bucket, &inventories], ""),
    );
    let source_only =
        iam::create_role(&moto, "source-only", &trust, &reader_policy(&[&bucket], ""));
    moto.enable_iam_enforcement();
    let mut worker = ApiWorker::new(&moto.endpoint(), user, "");
    worker.start();
    let with_inventory = |id: &str, role: &str| {
        let mut request = body(id, &format!("s3://{bucket}"), role, ACCOUNT_ID);
        request["inventory"] =
            json!({"destination": format!("s3://{inventories}/reports"), "config_id": "daily"});
        request
    };
    // A 201 carries the probe's steps, a 422 its error with them.
    let inventory_step = |answer: &Value| {
        let steps = answer.get("steps").unwrap_or(&answer["error"]["steps"]);
        steps
            .as_array()
            .and_then(|steps| steps.iter().find(|step| step["step"] == "inventory"))
            .cloned()
            .unwrap_or_else(|| panic!("no inventory step: {answer}"))
    };

    // A role that cannot read the destination: 422 from the inventory step, nothing stored.
    let (status, refused) = worker.call(
        "POST",
        "/api/v1/connectors",
        Some(&with_inventory("blind", &source_only)),
    );
    assert_eq!(status, 422, "{refused}\n{}", worker.log());
    assert_eq!(inventory_step(&refused)["status"], "fail", "{refused}");
    let (_, listed) = worker.call("GET", "/api/v1/connectors", None);
    assert!(connector_ids(&listed).is_empty(), "{listed}");

    // One that can: stored; no inventory yet is a warning, and the sync lists the bucket.
    let (status, created) = worker.call(
        "POST",
        "/api/v1/connectors",
        Some(&with_inventory("inventoried", &both)),
    );
    assert_eq!(status, 201, "{created}\n{}", worker.log());
    assert_eq!(inventory_step(&created)["status"], "warn", "{created}");
    assert_eq!(
        created["inventory"],
        json!({"destination": format!("s3://{inventories}/reports"), "config_id": "daily",
               "max_age": "9days", "deletion_grace": "1day"})
    );
    let first = newest_sync(&worker, "inventoried", "api", 0);
    assert_eq!(first["inventory_fallbacks"], 1, "{first}");
    assert_eq!(first["added"], 1, "{first}");

    // A patch that takes the inventory away is stored; the connector shows none.
    let (status, changed) = worker.call(
        "PATCH",
        "/api/v1/connectors/inventoried",
        Some(&json!({"inventory": null})),
    );
    assert_eq!(status, 200, "{changed}\n{}", worker.log());
    assert_eq!(changed["inventory"], Value::Null, "{changed}");
    worker.stop();
}

/// Syncs the config's first connector, re-targeting when asked.
async fn sync(
    setup: &Setup,
    config: &s3_connector::config::Config,
    retarget: bool,
) -> s3_connector::sync::SyncReport {
    if retarget {
        setup.sync_retargeting(config, false).await
    } else {
        setup.sync(config).await
    }
}

/// The source the setup's index records.
async fn recorded_source(setup: &Setup) -> IndexSource {
    let index = setup.sink().await;
    s3_connector::with_sink!(&index, sink => sink.recorded_source().await)
        .unwrap()
        .expect("a recorded source")
}

async fn retarget_guard(backend: Backend) {
    let moto = MotoServer::shared();
    let endpoint = moto.endpoint();
    let s3 = s3_client(&endpoint);
    let (first, second) = (unique_name("first"), unique_name("second"));
    for name in [&first, &second] {
        create_bucket(&s3, name).await;
        put(&s3, name, "a.txt", format!("words of {name}")).await;
    }
    let setup = Setup::for_backend(&backend);
    let owner = "    expected_bucket_owner: \"123456789012\"";
    let original = setup.config(&endpoint, &[&first], owner);
    assert_eq!(sync(&setup, &original, false).await.added, 1);
    let recorded = recorded_source(&setup).await;
    assert_eq!(recorded.buckets, std::slice::from_ref(&first));

    // Pointing the index at another bucket is refused, naming both; nothing changes.
    let moved = setup.config(&endpoint, &[&second], owner);
    let report = sync(&setup, &moved, false).await;
    assert_eq!((report.added, report.deleted, report.errors), (0, 0, 1));
    let error = &report.error_messages[0];
    assert!(
        error.contains(&format!("bucket(s) {first} of account 123456789012")),
        "{error}"
    );
    assert!(
        error.contains(&format!("bucket(s) {second} of account 123456789012")),
        "{error}"
    );
    assert!(error.contains("--retarget"), "{error}");
    assert!(setup.doc(&first, "a.txt").is_some());
    // So is another owner for the same bucket.
    let other_owner = setup.config(
        &endpoint,
        &[&first],
        "    expected_bucket_owner: \"999999999999\"",
    );
    assert_eq!(sync(&setup, &other_owner, false).await.errors, 1);

    // Re-targeted explicitly: the old documents go, the new source is recorded.
    let report = sync(&setup, &moved, true).await;
    assert_eq!(
        (report.added, report.deleted, report.errors),
        (1, 1, 0),
        "{:?}",
        report.error_messages
    );
    assert!(setup.doc(&first, "a.txt").is_none());
    assert!(setup.doc(&second, "a.txt").is_some());
    let recorded = recorded_source(&setup).await;
    assert_eq!(recorded.buckets, std::slice::from_ref(&second));
    assert_eq!(sync(&setup, &moved, false).await.errors, 0);

    // Adding a bucket of the same owner is not a retarget; the record follows.
    let widened = setup.config(&endpoint, &[&first, &second], owner);
    let report = sync(&setup, &widened, false).await;
    assert_eq!(
        (report.added, report.errors),
        (1, 0),
        "{:?}",
        report.error_messages
    );
    let recorded = recorded_source(&setup).await;
    let mut both = vec![first.clone(), second.clone()];
    both.sort();
    assert_eq!(recorded.buckets, both);
}

#[tokio::test]
async fn the_retarget_guard_keeps_an_embedded_index_bound_to_its_source() {
    retarget_guard(Backend::Embedded).await;
}

#[tokio::test]
async fn the_retarget_guard_keeps_an_opensearch_index_bound_to_its_source() {
    retarget_guard(Backend::Osmem).await;
}
