//! Identity you can trust: IAM-enforced access, assumed roles with an ExternalId, bucket-owner
//! checks, regions, and the `verify` / `trust-policy` / `external-id` commands.

use std::process::Command;

use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use s3_connector::config::{self, Config};
use s3_connector::verify::{self, Status, Step, StepResult};
use serde_json::Value;

use crate::fixture::{Setup, create_bucket, put, s3_client};
use crate::support::iam::{self, ACCOUNT_ID};
use crate::support::moto::REGION;
use crate::support::{Fault, FaultProxy, Match, MotoServer, unique_name};

/// A config with one connector `c` whose identity and options are the given YAML lines.
fn config_with(setup: &Setup, endpoint: &str, buckets: &[&str], identity: &str) -> Config {
    let buckets: Vec<String> = buckets.iter().map(|b| format!("{b:?}")).collect();
    let text = format!(
        "index:\n  kind: embedded\n  path: {}\nconnectors:\n  - id: c\n    buckets: [{}]\n    region: {REGION}\n    endpoint_url: {endpoint}\n    max_attempts: 2\n{identity}\n",
        setup.index_root().display(),
        buckets.join(", "),
    );
    let path = setup.dir.path().join("identity.yml");
    std::fs::write(&path, &text).unwrap();
    config::load(&path).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn keys(user: &iam::User) -> String {
    format!(
        "    aws_access_key_id: {}\n    aws_secret_access_key: {}",
        user.access_key_id, user.secret_access_key
    )
}

fn step<'a>(results: &'a [StepResult], step: Step, target: &str) -> &'a StepResult {
    results
        .iter()
        .find(|r| r.step == step && r.target == target)
        .unwrap_or_else(|| panic!("no {step:?} step for {target}: {results:#?}"))
}

#[tokio::test]
async fn a_user_limited_to_one_bucket_is_denied_on_another_and_verify_says_so() {
    let moto = MotoServer::start();
    let endpoint = moto.endpoint();
    let s3 = s3_client(&endpoint);
    let (allowed, forbidden) = (unique_name("allowed"), unique_name("forbidden"));
    for bucket in [&allowed, &forbidden] {
        create_bucket(&s3, bucket).await;
        put(&s3, bucket, "doc.txt", "readable words").await;
    }
    let user = iam::create_user(&moto, "limited", &iam::bucket_reader_policy(&allowed));
    moto.enable_iam_enforcement();

    let setup = Setup::new();
    let config = config_with(&setup, &endpoint, &[&allowed, &forbidden], &keys(&user));
    let results =
        verify::verify_connector(&config.connectors[0], verify::PropagationWait::default()).await;
    assert_eq!(
        step(&results, Step::Credentials, "connector identity").status,
        Status::Pass
    );
    assert_eq!(
        step(&results, Step::HeadBucket, &allowed).status,
        Status::Pass
    );
    assert_eq!(
        step(&results, Step::ListObjects, &format!("{allowed}/")).status,
        Status::Pass
    );
    assert_eq!(
        step(&results, Step::GetObject, &format!("{allowed}/doc.txt")).status,
        Status::Pass
    );
    let denied = step(&results, Step::HeadBucket, &forbidden);
    assert_eq!(denied.status, Status::Fail);
    assert!(denied.message.contains("HTTP 403"), "{}", denied.message);
    assert!(
        denied.message.contains(&format!(
            "access denied: the identity's policy does not allow s3:ListBucket on bucket {forbidden}"
        )),
        "{}",
        denied.message
    );
    assert!(!verify::all_passed(&results));

    // A sync with the same identity indexes the allowed bucket and reports the other.
    let report = setup.sync(&config).await;
    assert_eq!(report.added, 1);
    assert_eq!(report.errors, 1, "{:?}", report.error_messages);
    assert!(report.error_messages[0].contains(&forbidden));

    // Wrong keys are named as such.
    let wrong = iam::User {
        secret_access_key: "not-the-secret".into(),
        ..user.clone()
    };
    let config = config_with(&setup, &endpoint, &[&allowed], &keys(&wrong));
    let results =
        verify::verify_connector(&config.connectors[0], verify::PropagationWait::default()).await;
    // HeadBucket's bare 403 carries no code; the listing step names the cause.
    assert_eq!(
        step(&results, Step::HeadBucket, &allowed).status,
        Status::Fail
    );
    let refused = step(&results, Step::ListObjects, &format!("{allowed}/"));
    assert_eq!(refused.code.as_deref(), Some("SignatureDoesNotMatch"));
    assert!(
        refused.message.contains("the credentials were refused"),
        "{}",
        refused.message
    );
    moto.disable_iam_enforcement();
}

#[tokio::test]
async fn an_assumed_role_needs_the_right_external_id_and_then_syncs() {
    let moto = MotoServer::start();
    let endpoint = moto.endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_name("customer");
    create_bucket(&s3, &bucket).await;
    put(&s3, &bucket, "report.txt", "customer quarterly figures").await;
    let worker = iam::create_user(
        &moto,
        "connector-worker",
        r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}"#,
    );
    let trust = format!(
        r#"{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Principal": {{"AWS": "{}"}}, "Action": "sts:AssumeRole", "Condition": {{"StringEquals": {{"sts:ExternalId": "right-external-id"}}}}}}]}}"#,
        worker.arn
    );
    let role_arn = iam::create_role(
        &moto,
        "search-reader",
        &trust,
        &iam::bucket_reader_policy(&bucket),
    );
    assert_eq!(
        role_arn,
        format!("arn:aws:iam::{ACCOUNT_ID}:role/search-reader")
    );
    moto.enable_iam_enforcement();

    let setup = Setup::new();
    let with_external_id = |external_id: &str| {
        config_with(
            &setup,
            &endpoint,
            &[&bucket],
            &format!(
                "{}\n    role_arn: {role_arn}\n    external_id: {external_id}",
                keys(&worker)
            ),
        )
    };

    let wrong = with_external_id("wrong-external-id");
    let results =
        verify::verify_connector(&wrong.connectors[0], verify::PropagationWait::default()).await;
    let credentials = step(&results, Step::Credentials, &role_arn);
    assert_eq!(credentials.status, Status::Fail);
    assert_eq!(
        credentials.code.as_deref(),
        Some("AccessDenied"),
        "{}",
        credentials.message
    );
    assert!(
        credentials
            .message
            .contains(&format!("sts:AssumeRole of {role_arn} was refused"))
            && credentials.message.contains("external_id does not match"),
        "{}",
        credentials.message
    );
    let report = setup.sync(&wrong).await;
    assert!(report.errors >= 1);
    assert_eq!(report.added, 0);

    let right = with_external_id("right-external-id");
    let results =
        verify::verify_connector(&right.connectors[0], verify::PropagationWait::default()).await;
    assert!(verify::all_passed(&results), "{results:#?}");
    assert!(
        step(&results, Step::Credentials, &role_arn)
            .message
            .contains("assumed role")
    );

    let report = setup.sync(&right).await;
    assert_eq!(
        (report.added, report.errors),
        (1, 0),
        "{:?}",
        report.error_messages
    );
    let hits = setup.index();
    let found = s3_connector::sink::Sink::search(&hits, "quarterly", 5)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].key, "report.txt");
    moto.disable_iam_enforcement();
}

#[tokio::test]
async fn an_owner_mismatch_is_named_and_deletes_nothing() {
    let moto = MotoServer::shared();
    let endpoint = moto.endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_name("owned");
    create_bucket(&s3, &bucket).await;
    put(&s3, &bucket, "a.txt", "words").await;
    let proxy = FaultProxy::start(&endpoint);
    let setup = Setup::new();
    let plain = setup.config(&proxy.endpoint(), &[&bucket], "");
    assert_eq!(setup.sync(&plain).await.added, 1);

    // S3 answers 403 to a call carrying another account as ExpectedBucketOwner.
    proxy.inject(
        Fault::access_denied(),
        Match::any().header("x-amz-expected-bucket-owner"),
        None,
    );
    let owned = setup.config(
        &proxy.endpoint(),
        &[&bucket],
        "    expected_bucket_owner: \"999999999999\"",
    );
    let report = setup.sync(&owned).await;
    assert_eq!((report.errors, report.deleted), (1, 0));
    assert!(
        report.error_messages[0].contains(&format!(
            "bucket {bucket} is not owned by account 999999999999"
        )),
        "{:?}",
        report.error_messages
    );
    assert_eq!(setup.count(), 1);

    let results =
        verify::verify_connector(&owned.connectors[0], verify::PropagationWait::default()).await;
    let head = step(&results, Step::HeadBucket, &bucket);
    assert_eq!(head.status, Status::Fail);
    assert!(
        head.message
            .contains("is not owned by account 999999999999"),
        "{}",
        head.message
    );
    assert!(head.message.contains("HTTP 403"), "{}", head.message);
}

#[tokio::test]
async fn a_wrong_region_error_names_the_buckets_region() {
    let moto = MotoServer::shared();
    let endpoint = moto.endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_name("elsewhere");
    create_bucket(&s3, &bucket).await;
    let proxy = FaultProxy::start(&endpoint);
    proxy.inject(Fault::permanent_redirect("eu-west-1"), Match::any(), None);
    let setup = Setup::new();
    let config = setup.config(&proxy.endpoint(), &[&bucket], "");
    let report = setup.sync(&config).await;
    assert_eq!(report.errors, 1);
    assert!(
        report.error_messages[0].contains(&format!(
            "bucket {bucket} is in region eu-west-1; set region: eu-west-1"
        )),
        "{:?}",
        report.error_messages
    );
    let results =
        verify::verify_connector(&config.connectors[0], verify::PropagationWait::default()).await;
    let head = step(&results, Step::HeadBucket, &bucket);
    assert!(
        head.message.contains("is in region eu-west-1"),
        "{}",
        head.message
    );
}

#[tokio::test]
async fn wildcard_buckets_are_synced_through_their_own_region() {
    let moto = MotoServer::start();
    let endpoint = moto.endpoint();
    let s3 = s3_client(&endpoint);
    let (home, abroad) = (unique_name("home"), unique_name("abroad"));
    create_bucket(&s3, &home).await;
    s3.create_bucket()
        .bucket(&abroad)
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .unwrap();
    put(&s3, &home, "a.txt", "home words").await;
    put(&s3, &abroad, "b.txt", "abroad words").await;
    let setup = Setup::new();
    let config = setup.config(&endpoint, &["*"], "");
    moto.start_recording();
    let report = setup.sync(&config).await;
    moto.stop_recording();
    assert_eq!(
        (report.added, report.errors),
        (2, 0),
        "{:?}",
        report.error_messages
    );
    let requests = moto.recorded_requests();
    let scope_of = |bucket: &str| -> Vec<String> {
        requests
            .iter()
            .filter(|r| {
                r.path().starts_with(&format!("/{bucket}"))
                    && r.query().unwrap_or("").contains("list-type=2")
            })
            .map(|r| r.header("authorization").unwrap_or("").to_owned())
            .collect()
    };
    let abroad_lists = scope_of(&abroad);
    assert!(!abroad_lists.is_empty());
    assert!(
        abroad_lists
            .iter()
            .all(|auth| auth.contains("/eu-west-1/s3/aws4_request")),
        "{abroad_lists:?}"
    );
    assert!(
        scope_of(&home)
            .iter()
            .all(|auth| auth.contains("/us-east-1/s3/aws4_request"))
    );
}

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_s3-connector"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run s3-connector")
}

/// The JSON documents printed after each `# N.` heading.
fn printed_policies(stdout: &str) -> Vec<Value> {
    stdout
        .split("\n# ")
        .filter_map(|section| section.find('{').map(|start| &section[start..]))
        .filter_map(|json| {
            let end = json.find("\n}")?;
            serde_json::from_str(&json[..end + 2]).ok()
        })
        .collect()
}

#[tokio::test]
async fn trust_policy_and_external_id_commands() {
    let moto = MotoServer::shared();
    let endpoint = moto.endpoint();
    let setup = Setup::new();
    let path = setup.dir.path().join("role.yml");
    let text = setup.config_text(
        &endpoint,
        &["customer-docs"],
        "    role_arn: arn:aws:iam::111122223333:role/search-reader\n    external_id: ext-2f9c\n    sync_rules: [{\"bucket\": \"customer-docs\", \"prefix\": \"shared/\"}]",
    );
    std::fs::write(&path, text).unwrap();
    let path = path.to_str().unwrap();

    let output = cli(&["trust-policy", "--config", path, "--connector", "c"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let policies = printed_policies(&stdout);
    // Sections 1 and 2, then the trust policy again inside the commands of section 3.
    assert_eq!(policies.len(), 3, "{stdout}");
    assert_eq!(policies[2], policies[0]);
    let trust = &policies[0]["Statement"][0];
    // moto's sts:GetCallerIdentity answer for keys it has no user for.
    assert_eq!(
        trust["Principal"]["AWS"],
        "arn:aws:sts::123456789012:user/moto"
    );
    assert_eq!(
        trust["Condition"]["StringEquals"]["sts:ExternalId"],
        "ext-2f9c"
    );
    let permissions = policies[1]["Statement"].to_string();
    assert!(
        permissions.contains("arn:aws:s3:::customer-docs/shared/*"),
        "{permissions}"
    );
    assert!(stdout.contains("aws iam create-role --role-name search-reader"));

    let with_principal = |format: &str| {
        cli(&[
            "trust-policy",
            "--config",
            path,
            "--connector",
            "c",
            "--principal",
            "arn:aws:iam::444455556666:role/s3-connector",
            "--format",
            format,
        ])
    };
    let output = with_principal("text");
    let policies = printed_policies(&String::from_utf8_lossy(&output.stdout));
    assert_eq!(
        policies[0]["Statement"][0]["Principal"]["AWS"],
        "arn:aws:iam::444455556666:role/s3-connector"
    );

    for format in ["json", "cloudformation", "terraform"] {
        let output = with_principal(format);
        assert_eq!(output.status.code(), Some(0), "{format}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let (trust, permissions) = match format {
            "json" => {
                let all: Value = serde_json::from_str(&stdout).unwrap();
                (
                    all["trust_policy"].clone(),
                    all["permissions_policy"].to_string(),
                )
            }
            "cloudformation" => {
                let template: Value = serde_json::from_str(&stdout).unwrap();
                let role = &template["Resources"]["S3ConnectorRole"]["Properties"];
                assert_eq!(role["RoleName"], "search-reader");
                (
                    role["AssumeRolePolicyDocument"].clone(),
                    role["Policies"][0]["PolicyDocument"].to_string(),
                )
            }
            _ => {
                assert!(
                    stdout.contains("resource \"aws_iam_role\" \"s3_connector\""),
                    "{stdout}"
                );
                let policies: Vec<Value> = stdout
                    .split("<<-JSON\n")
                    .skip(1)
                    .map(|rest| {
                        serde_json::from_str(rest.split("\n  JSON").next().unwrap()).unwrap()
                    })
                    .collect();
                (policies[0].clone(), policies[1].to_string())
            }
        };
        assert_eq!(
            trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"], "ext-2f9c",
            "{format}: {stdout}"
        );
        assert!(
            permissions.contains("arn:aws:s3:::customer-docs/shared/*"),
            "{format}: {permissions}"
        );
    }

    let first = String::from_utf8_lossy(&cli(&["external-id"]).stdout)
        .trim()
        .to_owned();
    let second = String::from_utf8_lossy(&cli(&["external-id"]).stdout)
        .trim()
        .to_owned();
    assert_eq!(first.len(), 36, "{first}");
    assert_eq!(first.as_bytes()[14], b'4', "a version-4 UUID: {first}");
    assert_ne!(first, second);
}

#[tokio::test]
async fn verify_command_prints_rows_and_exit_codes() {
    let moto = MotoServer::shared();
    let endpoint = moto.endpoint();
    let s3 = s3_client(&endpoint);
    let (present, missing) = (unique_name("present"), unique_name("missing"));
    create_bucket(&s3, &present).await;
    put(&s3, &present, "x.txt", "x").await;
    let setup = Setup::new();
    let path = setup.dir.path().join("verify.yml");
    std::fs::write(&path, setup.config_text(&endpoint, &[&present], "")).unwrap();
    let output = cli(&["verify", "--config", path.to_str().unwrap(), "--json"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let rows: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let steps: Vec<&str> = rows.iter().map(|r| r["step"].as_str().unwrap()).collect();
    assert_eq!(
        steps,
        ["credentials", "head_bucket", "list_objects", "get_object"]
    );
    assert!(rows.iter().all(|r| r["status"] == "pass"));

    std::fs::write(&path, setup.config_text(&endpoint, &[&missing], "")).unwrap();
    let output = cli(&["verify", "--config", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("FAIL  head-bucket         {missing}")),
        "{stdout}"
    );
    assert!(stdout.contains("does not exist"), "{stdout}");
}
