//! `s3-connector trust-policy` and `s3-connector external-id`: what a customer installs to let
//! a connector read their bucket through a role.

use std::process::ExitCode;

use clap::Args;

use super::{ConfigArg, EXIT_CONFIG, EXIT_FAILED, load_with_connector};
use crate::{credentials, policy};

#[derive(Debug, Args)]
pub(super) struct TrustPolicyArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The connector whose role to describe.
    #[arg(long)]
    connector: String,
    /// The principal (ARN) the role must trust. Default: the connector's source identity, as
    /// sts:GetCallerIdentity reports it (an assumed-role session becomes its role).
    #[arg(long, value_name = "ARN")]
    principal: Option<String>,
}

/// Prints the trust policy, the permissions policy and the AWS CLI commands.
pub(super) async fn run(args: TrustPolicyArgs) -> anyhow::Result<ExitCode> {
    let (config, position) = match load_with_connector(&args.config.config, &args.connector) {
        Ok(found) => found,
        Err(code) => return Ok(code),
    };
    let connector = &config.connectors[position];
    let (Some(role_arn), Some(external_id)) = (connector.role(), connector.external_id.as_deref())
    else {
        eprintln!(
            "error: connector {} has no role_arn and external_id; add them (s3-connector external-id prints a fresh external id)",
            connector.id
        );
        return Ok(ExitCode::from(EXIT_CONFIG));
    };
    let principal = match args.principal {
        Some(principal) => principal,
        None => match credentials::caller_arn(connector).await {
            Ok(arn) => policy::principal_for_caller(&arn),
            Err(problem) => {
                eprintln!(
                    "error: cannot find our principal with sts:GetCallerIdentity: {problem}; pass --principal ARN"
                );
                return Ok(ExitCode::from(EXIT_FAILED));
            }
        },
    };
    let trust = policy::trust_policy(&principal, external_id);
    let permissions = policy::permissions_policy(connector);
    let role_name = policy::role_name(role_arn);
    println!(
        "# 1. Trust policy of role {role_name}: only {principal} may assume it, with the external id"
    );
    println!("{}", serde_json::to_string_pretty(&trust)?);
    println!();
    println!(
        "# 2. Permissions policy of role {role_name}: read-only, limited to the connector's buckets and prefixes"
    );
    println!("{}", serde_json::to_string_pretty(&permissions)?);
    println!();
    println!("# 3. Commands that create the role (run in the bucket owner's account)");
    print!(
        "{}",
        policy::aws_cli_commands(role_name, &trust, &permissions)
    );
    Ok(ExitCode::SUCCESS)
}

/// Prints a fresh random external id for a new connector.
pub(super) fn external_id() -> ExitCode {
    println!("{}", uuid::Uuid::new_v4());
    ExitCode::SUCCESS
}
