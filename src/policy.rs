//! IAM policies for connecting a customer's bucket: the trust policy of the customer's role and
//! the least-privilege permissions a connector needs, derived from its buckets and rules.
//!
//! Pure functions of configuration data, printed by `s3-connector trust-policy` and
//! `GET /api/v1/aws-setup`; nothing here calls AWS. Every value from outside (a bucket URI's
//! prefix, a role name, an ExternalId) comes out inert in each output: a literal in the IAM
//! policy (its wildcards and `${...}` variables escaped), a JSON string in CloudFormation, a
//! literal in Terraform (`${` and `%{` escaped) and one shell word in the AWS CLI commands.

use serde_json::{Value, json};

use crate::config::notifications::NotificationsConfig;
use crate::config::{BucketSelection, ConnectorConfig};

/// The trust policy of the customer's role: only `principal` may assume it, and only with the
/// connector's external id (the confused-deputy guard).
pub fn trust_policy(principal: &str, external_id: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AllowS3ConnectorToAssumeRole",
            "Effect": "Allow",
            "Principal": { "AWS": principal },
            "Action": "sts:AssumeRole",
            "Condition": { "StringEquals": { "sts:ExternalId": external_id } }
        }]
    })
}

/// The least-privilege permissions policy for a connector: `s3:ListBucket` on each bucket
/// (with an `s3:prefix` condition when the rules restrict prefixes), `s3:GetObject` on
/// `bucket/prefix*`, `s3:GetBucketLocation`, `s3:ListAllMyBuckets` only for `["*"]`, and with
/// `notifications` the SQS actions of the consumer on its queue.
pub fn permissions_policy(connector: &ConnectorConfig) -> Value {
    let mut statements = Vec::new();
    let wildcard = connector.buckets == BucketSelection::All;
    if wildcard {
        statements.push(json!({
            "Sid": "ListAllBuckets",
            "Effect": "Allow",
            "Action": "s3:ListAllMyBuckets",
            "Resource": "*"
        }));
    }
    let rules = &connector.rules;
    let buckets: Vec<String> = match &connector.buckets {
        _ if !rules.is_all() => rules.buckets().into_iter().map(str::to_owned).collect(),
        BucketSelection::Named(names) => names.clone(),
        BucketSelection::All => vec!["*".to_owned()],
    };
    for (index, bucket) in buckets.iter().enumerate() {
        let prefixes = rules.list_prefixes(bucket);
        let whole_bucket = prefixes.iter().any(String::is_empty);
        let bucket_arn = format!("arn:aws:s3:::{bucket}");
        let mut list = json!({
            "Sid": format!("ListBucket{index}"),
            "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
            "Resource": bucket_arn
        });
        let objects: Vec<String> = if whole_bucket {
            vec![format!("{bucket_arn}/*")]
        } else {
            list["Condition"] = json!({
                "StringLike": {
                    "s3:prefix": prefixes.iter().map(|p| format!("{}*", iam_literal(p))).collect::<Vec<_>>()
                }
            });
            // GetBucketLocation carries no prefix: it gets its own unconditioned statement.
            list["Action"] = json!("s3:ListBucket");
            statements.push(json!({
                "Sid": format!("LocateBucket{index}"),
                "Effect": "Allow",
                "Action": "s3:GetBucketLocation",
                "Resource": bucket_arn
            }));
            prefixes
                .iter()
                .map(|p| format!("{bucket_arn}/{}*", iam_literal(p)))
                .collect()
        };
        statements.push(list);
        // `index_tags` reads each downloaded object's tags too.
        let read = if connector.index_tags {
            json!(["s3:GetObject", "s3:GetObjectTagging"])
        } else {
            json!("s3:GetObject")
        };
        statements.push(json!({
            "Sid": format!("ReadObjects{index}"),
            "Effect": "Allow",
            "Action": read,
            "Resource": if objects.len() == 1 { json!(objects[0]) } else { json!(objects) }
        }));
    }
    if let Some(notifications) = &connector.notifications {
        statements.push(queue_statement(connector, notifications));
    }
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// What the event consumer does on its queue: receive, delete after commit, extend visibility,
/// and read the depth. (HeadObject is authorised by the `s3:GetObject` above.)
fn queue_statement(connector: &ConnectorConfig, notifications: &NotificationsConfig) -> Value {
    let queue = notifications.queue();
    let region = queue
        .as_ref()
        .and_then(|q| q.region.clone())
        .or_else(|| connector.region.clone())
        .unwrap_or_else(|| "*".to_owned());
    let (account, name) =
        queue.map_or_else(|| ("*".to_owned(), "*".to_owned()), |q| (q.account, q.name));
    json!({
        "Sid": "ConsumeEventNotifications",
        "Effect": "Allow",
        "Action": [
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueAttributes"
        ],
        "Resource": format!("arn:aws:sqs:{region}:{account}:{name}")
    })
}

/// The principal to trust for an identity's ARN, as sts:GetCallerIdentity reports it: an
/// assumed-role session (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`) becomes its role
/// (`arn:aws:iam::ACCOUNT:role/ROLE`); users and roles stay as they are.
pub fn principal_for_caller(caller_arn: &str) -> String {
    let parts: Vec<&str> = caller_arn.splitn(6, ':').collect();
    if let [arn, partition, "sts", _, account, resource] = parts.as_slice()
        && let Some(rest) = resource.strip_prefix("assumed-role/")
        && let Some((role, _session)) = rest.split_once('/')
    {
        return format!("{arn}:{partition}:iam::{account}:role/{role}");
    }
    caller_arn.to_owned()
}

/// The role name of a role ARN (the part after the last `/`).
pub fn role_name(role_arn: &str) -> &str {
    role_arn.rsplit('/').next().unwrap_or(role_arn)
}

/// `text` matched literally by IAM in a `Resource` or a `StringLike` condition: `*`, `?` and
/// `$` become the policy variables `${*}`, `${?}` and `${$}`, so a key prefix holding them
/// neither widens the grant nor reads a variable such as `${aws:username}`.
fn iam_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '*' | '?' | '$' => {
                out.push_str("${");
                out.push(c);
                out.push('}');
            }
            _ => out.push(c),
        }
    }
    out
}

/// `text` as one POSIX shell word: as it is when it holds only characters the shell leaves
/// alone (every valid role name does), else in single quotes.
fn shell_word(text: &str) -> String {
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"+=,.@_-/:".contains(&b);
    if !text.is_empty() && text.bytes().all(plain) {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// `text` as Terraform reads it literally, in a heredoc or a quoted string: `${` would start an
/// interpolation and `%{` a directive; `$${` and `%%{` are their literal forms.
fn terraform_literal(text: &str) -> String {
    text.replace("${", "$${").replace("%{", "%%{")
}

/// `text` as a Terraform quoted string: JSON's string escapes are Terraform's, plus
/// [`terraform_literal`].
fn terraform_string(text: &str) -> String {
    terraform_literal(&Value::from(text).to_string())
}

/// Shell commands that create the role with both policies.
pub fn aws_cli_commands(role_name: &str, trust: &Value, permissions: &Value) -> String {
    let pretty = |value: &Value| serde_json::to_string_pretty(value).unwrap_or_default();
    let role_name = shell_word(role_name);
    format!(
        "cat > trust-policy.json <<'JSON'\n{trust}\nJSON\ncat > permissions-policy.json <<'JSON'\n{permissions}\nJSON\n\
aws iam create-role --role-name {role_name} --assume-role-policy-document file://trust-policy.json\n\
aws iam put-role-policy --role-name {role_name} --policy-name s3-connector-read --policy-document file://permissions-policy.json\n",
        trust = pretty(trust),
        permissions = pretty(permissions),
    )
}

/// A CloudFormation template (JSON) that creates the role with both policies and outputs its
/// ARN: `aws cloudformation deploy --template-file role.json --stack-name s3-connector
/// --capabilities CAPABILITY_NAMED_IAM`.
pub fn cloudformation(role_name: &str, trust: &Value, permissions: &Value) -> Value {
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "A read-only role that s3-connector assumes with an ExternalId to index the bucket.",
        "Resources": {
            "S3ConnectorRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": role_name,
                    "AssumeRolePolicyDocument": trust,
                    "Policies": [{
                        "PolicyName": "s3-connector-read",
                        "PolicyDocument": permissions
                    }]
                }
            }
        },
        "Outputs": {
            "RoleArn": {
                "Description": "Send this as role_arn when creating the connector.",
                "Value": { "Fn::GetAtt": ["S3ConnectorRole", "Arn"] }
            }
        }
    })
}

/// A Terraform snippet that creates the role with both policies and outputs its ARN. The
/// policies are JSON in heredocs, with `${` and `%{` escaped ([`terraform_literal`]).
pub fn terraform(role_name: &str, trust: &Value, permissions: &Value) -> String {
    let pretty =
        |value: &Value| terraform_literal(&serde_json::to_string_pretty(value).unwrap_or_default());
    format!(
        "resource \"aws_iam_role\" \"s3_connector\" {{\n  name               = {role_name}\n  assume_role_policy = <<-JSON\n{trust}\n  JSON\n}}\n\n\
resource \"aws_iam_role_policy\" \"s3_connector_read\" {{\n  name   = \"s3-connector-read\"\n  role   = aws_iam_role.s3_connector.id\n  policy = <<-JSON\n{permissions}\n  JSON\n}}\n\n\
output \"s3_connector_role_arn\" {{\n  description = \"Send this as role_arn when creating the connector.\"\n  value       = aws_iam_role.s3_connector.arn\n}}\n",
        role_name = terraform_string(role_name),
        trust = indent(&pretty(trust), "    "),
        permissions = indent(&pretty(permissions), "    "),
    )
}

fn indent(text: &str, by: &str) -> String {
    text.lines()
        .map(|line| format!("{by}{line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::rules::SyncRules;
    use crate::testing::{config_of, connector_of};

    fn connector(buckets: &str, rules: Option<&str>) -> ConnectorConfig {
        let rules = rules
            .map(|r| format!("    sync_rules: {r}\n"))
            .unwrap_or_default();
        let text = format!("connectors:\n  - id: c\n    buckets: {buckets}\n{rules}");
        connector_of(&text)
    }

    /// The statements granting `action`, as (resource, condition) pairs.
    fn grants(policy: &Value, action: &str) -> Vec<(Value, Value)> {
        policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| {
                s["Effect"] == "Allow"
                    && (s["Action"] == action
                        || s["Action"]
                            .as_array()
                            .is_some_and(|a| a.iter().any(|x| x == action)))
            })
            .map(|s| (s["Resource"].clone(), s["Condition"].clone()))
            .collect()
    }

    #[test]
    fn permissions_follow_buckets_and_rules() {
        struct Case {
            buckets: &'static str,
            rules: Option<&'static str>,
            list: Vec<(Value, Value)>,
            get: Vec<Value>,
            list_all: bool,
        }
        let cases = [
            Case {
                buckets: r#"["docs-a", "docs-b"]"#,
                rules: None,
                list: vec![
                    (json!("arn:aws:s3:::docs-a"), Value::Null),
                    (json!("arn:aws:s3:::docs-b"), Value::Null),
                ],
                get: vec![
                    json!("arn:aws:s3:::docs-a/*"),
                    json!("arn:aws:s3:::docs-b/*"),
                ],
                list_all: false,
            },
            Case {
                buckets: r#"["docs-a"]"#,
                rules: Some(
                    r#"[{"bucket": "docs-a", "prefix": "team/"}, {"bucket": "docs-a", "prefix": "public/", "extension": [".md"]}]"#,
                ),
                list: vec![(
                    json!("arn:aws:s3:::docs-a"),
                    json!({"StringLike": {"s3:prefix": ["public/*", "team/*"]}}),
                )],
                get: vec![json!([
                    "arn:aws:s3:::docs-a/public/*",
                    "arn:aws:s3:::docs-a/team/*"
                ])],
                list_all: false,
            },
            Case {
                buckets: r#"["*"]"#,
                rules: None,
                list: vec![(json!("arn:aws:s3:::*"), Value::Null)],
                get: vec![json!("arn:aws:s3:::*/*")],
                list_all: true,
            },
            Case {
                buckets: r#"["*"]"#,
                rules: Some(r#"[{"bucket": "logs-x"}]"#),
                list: vec![(json!("arn:aws:s3:::logs-x"), Value::Null)],
                get: vec![json!("arn:aws:s3:::logs-x/*")],
                list_all: true,
            },
        ];
        for case in cases {
            let policy = permissions_policy(&connector(case.buckets, case.rules));
            assert_eq!(policy["Version"], "2012-10-17");
            assert_eq!(
                grants(&policy, "s3:ListBucket"),
                case.list,
                "{}",
                case.buckets
            );
            let get: Vec<Value> = grants(&policy, "s3:GetObject")
                .into_iter()
                .map(|g| g.0)
                .collect();
            assert_eq!(get, case.get, "{}", case.buckets);
            assert_eq!(
                !grants(&policy, "s3:ListAllMyBuckets").is_empty(),
                case.list_all
            );
            let locate = grants(&policy, "s3:GetBucketLocation");
            assert_eq!(locate.len(), case.list.len(), "every bucket can be located");
            assert!(locate.iter().all(|(_, condition)| condition.is_null()));
            for action in ["s3:PutObject", "s3:DeleteObject", "s3:*"] {
                assert!(grants(&policy, action).is_empty(), "never grants {action}");
            }
        }
    }

    #[test]
    fn trust_policy_names_the_principal_and_requires_the_external_id() {
        let policy = trust_policy("arn:aws:iam::111122223333:role/worker", "ext-123");
        let statement = &policy["Statement"][0];
        assert_eq!(statement["Effect"], "Allow");
        assert_eq!(statement["Action"], "sts:AssumeRole");
        assert_eq!(
            statement["Principal"]["AWS"],
            "arn:aws:iam::111122223333:role/worker"
        );
        assert_eq!(
            statement["Condition"]["StringEquals"]["sts:ExternalId"],
            "ext-123"
        );
    }

    #[test]
    fn principals_from_caller_identities() {
        let cases = [
            (
                "arn:aws:sts::111122223333:assumed-role/worker/i-0abc",
                "arn:aws:iam::111122223333:role/worker",
            ),
            (
                "arn:aws:iam::111122223333:user/ci",
                "arn:aws:iam::111122223333:user/ci",
            ),
            (
                "arn:aws:iam::111122223333:role/x",
                "arn:aws:iam::111122223333:role/x",
            ),
            (
                "arn:aws-cn:sts::111122223333:assumed-role/r/s",
                "arn:aws-cn:iam::111122223333:role/r",
            ),
        ];
        for (caller, principal) in cases {
            assert_eq!(principal_for_caller(caller), principal);
        }
        assert_eq!(
            role_name("arn:aws:iam::123456789012:role/path/reader"),
            "reader"
        );
    }

    #[test]
    fn cloudformation_and_terraform_carry_both_policies() {
        let trust = trust_policy("arn:aws:iam::111122223333:role/worker", "ext-1");
        let permissions = permissions_policy(&connector("[\"docs\"]", None));
        let template = cloudformation("reader", &trust, &permissions);
        let role = &template["Resources"]["S3ConnectorRole"]["Properties"];
        assert_eq!(role["RoleName"], "reader");
        assert_eq!(role["AssumeRolePolicyDocument"], trust);
        assert_eq!(role["Policies"][0]["PolicyDocument"], permissions);
        let snippet = terraform("reader", &trust, &permissions);
        assert!(
            snippet.contains("name               = \"reader\""),
            "{snippet}"
        );
        assert!(
            snippet.contains("\"sts:ExternalId\": \"ext-1\""),
            "{snippet}"
        );
        assert!(snippet.contains("arn:aws:s3:::docs/*"), "{snippet}");
        assert_eq!(snippet.matches("<<-JSON").count(), 2);
    }

    /// What Terraform reads in a template that should hold no interpolation or directive (a
    /// heredoc's body, a quoted string's text): `$${` and `%%{` are literal `${` and `%{`, a
    /// `$` or `%` before anything else is itself; `None` where `${` or `%{` would evaluate.
    /// (HCL's scanner: `TemplateNotInterp = '$' (TemplateIgnoredNonBrace | TemplateInterp)`.)
    fn terraform_reads(template: &str) -> Option<String> {
        let mut out = String::new();
        let mut rest = template;
        while let Some(c) = rest.chars().next() {
            if rest.starts_with("$${") || rest.starts_with("%%{") {
                out.push(c);
                out.push('{');
                rest = &rest[3..];
            } else if rest.starts_with("${") || rest.starts_with("%{") {
                return None;
            } else {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        Some(out)
    }

    /// The role name and both policies of a Terraform snippet, as Terraform reads them;
    /// panics where something would be evaluated or a heredoc would end early.
    fn terraform_values(snippet: &str) -> (String, Value, Value) {
        let line = snippet
            .lines()
            .find_map(|l| l.strip_prefix("  name               = "))
            .unwrap();
        let name: String = serde_json::from_str(&terraform_reads(line).unwrap()).unwrap();
        let heredocs: Vec<Value> = snippet
            .split("<<-JSON\n")
            .skip(1)
            .map(|rest| {
                let (body, _) = rest.split_once("\n  JSON\n").unwrap();
                assert!(body.lines().all(|l| l.trim() != "JSON"), "{body}");
                let read = terraform_reads(body).unwrap_or_else(|| panic!("evaluates: {body}"));
                serde_json::from_str(&read).unwrap()
            })
            .collect();
        let [trust, permissions] = <[Value; 2]>::try_from(heredocs).unwrap();
        (name, trust, permissions)
    }

    /// The word a POSIX shell reads from `word` (plain characters, `'...'`, `\\x`).
    fn shell_reads(word: &str) -> String {
        let mut out = String::new();
        let mut chars = word.chars();
        while let Some(c) = chars.next() {
            match c {
                '\'' => out.extend(chars.by_ref().take_while(|&c| c != '\'')),
                '\\' => out.extend(chars.next()),
                _ => out.push(c),
            }
        }
        out
    }

    /// The role name and both policies of the AWS CLI commands, as the shell reads them.
    fn cli_values(commands: &str) -> (String, Value, Value) {
        let heredoc = |file: &str| {
            let start = format!("cat > {file} <<'JSON'\n");
            let body = commands.split(&start).nth(1).unwrap();
            serde_json::from_str::<Value>(body.split("\nJSON\n").next().unwrap()).unwrap()
        };
        let (_, after) = commands
            .split_once("aws iam create-role --role-name ")
            .unwrap();
        let (word, _) = after
            .rsplit_once(" --assume-role-policy-document file://trust-policy.json\n")
            .unwrap();
        (
            shell_reads(word),
            heredoc("trust-policy.json"),
            heredoc("permissions-policy.json"),
        )
    }

    /// What IAM matches for a `Resource` or `StringLike` pattern: the literal text, and `true`
    /// for a wildcard after it; panics on any other wildcard or variable.
    fn iam_reads(pattern: &str) -> (String, bool) {
        let (body, wildcard) = match pattern.strip_suffix('*') {
            Some(body) if !body.ends_with("${") => (body, true),
            _ => (pattern, false),
        };
        let mut out = String::new();
        let mut rest = body;
        while let Some(c) = rest.chars().next() {
            if let Some(after) = rest.strip_prefix("${") {
                let (special, tail) = after.split_at(after.find('}').unwrap());
                assert!(
                    matches!(special, "*" | "?" | "$"),
                    "a variable in {pattern}"
                );
                out.push_str(special);
                rest = &tail[1..];
            } else {
                assert!(!matches!(c, '*' | '?'), "a wildcard inside {pattern}");
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        (out, wildcard)
    }

    #[test]
    fn a_crafted_prefix_or_role_name_stays_inert_in_every_output() {
        let hostile = "x%{ for k in local.secrets }${k}%{ endfor }${file(\"/etc/passwd\")}*?$\"\n  JSON\n'; rm -rf /";
        let mut config = connector(r#"["docs"]"#, None);
        config.rules =
            SyncRules::from_value(&json!([{ "bucket": "docs", "prefix": hostile }])).unwrap();
        let trust = trust_policy("arn:aws:iam::111122223333:role/worker", hostile);
        let permissions = permissions_policy(&config);
        let snippet = terraform(hostile, &trust, &permissions);
        assert_eq!(
            terraform_values(&snippet),
            (hostile.to_owned(), trust.clone(), permissions.clone()),
            "{snippet}"
        );
        assert!(snippet.contains("x%%{ for k in local.secrets }$${k}%%{ endfor }"));
        let commands = aws_cli_commands(hostile, &trust, &permissions);
        assert_eq!(
            cli_values(&commands),
            (hostile.to_owned(), trust.clone(), permissions.clone()),
            "{commands}"
        );
        assert_eq!(
            grants(&permissions, "s3:GetObject"),
            vec![(
                json!(format!("arn:aws:s3:::docs/{}*", iam_literal(hostile))),
                Value::Null
            )]
        );
        let template = cloudformation(hostile, &trust, &permissions);
        let read: Value = serde_json::from_str(&template.to_string()).unwrap();
        let role = &read["Resources"]["S3ConnectorRole"]["Properties"];
        assert_eq!(role["RoleName"], hostile);
        assert_eq!(role["Policies"][0]["PolicyDocument"], permissions);
        assert_eq!(read["Resources"].as_object().unwrap().len(), 1);
    }

    #[test]
    fn the_shell_reads_a_quoted_role_name_as_one_word() {
        for name in [
            "reader",
            "it's; rm -rf / #",
            "$(id) `id` ${HOME}",
            "a\nb",
            "",
        ] {
            let output = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", shell_word(name)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(output.stdout).unwrap(), name);
            assert_eq!(shell_reads(&shell_word(name)), name);
        }
    }

    proptest! {
        #![proptest_config(crate::proptest_config::config())]

        #[test]
        fn any_prefix_role_name_or_external_id_comes_out_as_written(
            prefix in "[a-z/ *?$%{}~\"'\\\\\n\t\u{e9}\u{1F600}-]{1,16}",
            role in "[A-Za-z0-9 $%{}\"'\\\\\n;&|`*-]{0,16}",
            external_id in "[a-z0-9$%{}\"\\\\\n]{0,12}",
        ) {
            let mut config = connector(r#"["docs"]"#, None);
            config.rules =
                SyncRules::from_value(&json!([{ "bucket": "docs", "prefix": prefix }])).unwrap();
            let trust = trust_policy("arn:aws:iam::111122223333:role/worker", &external_id);
            let permissions = permissions_policy(&config);
            prop_assert_eq!(
                terraform_values(&terraform(&role, &trust, &permissions)),
                (role.clone(), trust.clone(), permissions.clone())
            );
            prop_assert_eq!(
                cli_values(&aws_cli_commands(&role, &trust, &permissions)),
                (role.clone(), trust.clone(), permissions.clone())
            );
            let template = cloudformation(&role, &trust, &permissions);
            let read: Value = serde_json::from_str(&serde_json::to_string_pretty(&template).unwrap()).unwrap();
            prop_assert_eq!(&read, &template);
            prop_assert_eq!(&read["Resources"]["S3ConnectorRole"]["Properties"]["RoleName"], &json!(role));
            // IAM matches the prefix literally, then anything.
            let objects = grants(&permissions, "s3:GetObject");
            let resource = objects[0].0.as_str().unwrap();
            prop_assert_eq!(iam_reads(resource), (format!("arn:aws:s3:::docs/{prefix}"), true));
            let listed = grants(&permissions, "s3:ListBucket");
            let condition = listed[0].1["StringLike"]["s3:prefix"][0].as_str().unwrap();
            prop_assert_eq!(iam_reads(condition), (prefix.clone(), true));
        }
    }

    #[test]
    fn cli_commands_embed_both_policies() {
        let trust = trust_policy("arn:aws:iam::111122223333:user/ci", "e-1");
        let permissions = permissions_policy(&connector(r#"["docs-a"]"#, None));
        let commands = aws_cli_commands("reader", &trust, &permissions);
        assert!(commands.contains("aws iam create-role --role-name reader --assume-role-policy-document file://trust-policy.json"));
        assert!(commands.contains("aws iam put-role-policy --role-name reader"));
        let embedded: Value = serde_json::from_str(
            commands
                .split("cat > trust-policy.json <<'JSON'\n")
                .nth(1)
                .and_then(|rest| rest.split("\nJSON\n").next())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(embedded, trust);
    }

    #[test]
    fn notifications_add_the_consumers_sqs_actions_on_its_queue_only() {
        let text = "connectors:\n  - id: c\n    buckets: [\"docs-a\"]\n    region: eu-west-1\n    notifications:\n      queue_url: https://sqs.us-east-2.amazonaws.com/111122223333/docs-events\n";
        let mut config = config_of(text);
        let with_queue = permissions_policy(&config.connectors[0]);
        let queue_arn = json!("arn:aws:sqs:us-east-2:111122223333:docs-events");
        for action in [
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueAttributes",
        ] {
            assert_eq!(
                grants(&with_queue, action),
                vec![(queue_arn.clone(), Value::Null)],
                "{action}"
            );
        }
        // HeadObject is authorised by s3:GetObject, which the policy already grants.
        assert_eq!(grants(&with_queue, "s3:GetObject").len(), 1);
        config.connectors[0].notifications = None;
        let without = permissions_policy(&config.connectors[0]);
        assert!(grants(&without, "sqs:ReceiveMessage").is_empty());
    }

    #[test]
    fn index_tags_adds_get_object_tagging_on_the_objects_read() {
        let text = "connectors:\n  - id: c\n    buckets: [\"docs-a\"]\n";
        let mut config = config_of(text);
        assert!(
            grants(
                &permissions_policy(&config.connectors[0]),
                "s3:GetObjectTagging"
            )
            .is_empty()
        );
        config.connectors[0].index_tags = true;
        let policy = permissions_policy(&config.connectors[0]);
        let objects = vec![(json!("arn:aws:s3:::docs-a/*"), Value::Null)];
        assert_eq!(grants(&policy, "s3:GetObjectTagging"), objects);
        assert_eq!(grants(&policy, "s3:GetObject"), objects);
    }
}
