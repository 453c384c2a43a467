//! The naming rules of S3, IAM and this project, as pure functions.
//!
//! Each returns `Err(rule)` with a sentence describing the rule broken, ready to follow
//! "`path`: `value` ..." in a validation message.

/// S3's rules for bucket names (general purpose buckets).
pub fn check_bucket_name(name: &str) -> Result<(), String> {
    let len = name.chars().count();
    if !(3..=63).contains(&len) {
        return Err(format!(
            "is {len} characters long; bucket names have 3 to 63 characters"
        ));
    }
    if let Some((position, bad)) = name
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.'))
    {
        return Err(format!(
            "has {bad:?} at position {}; bucket names may contain only lowercase letters, digits, hyphens and periods",
            position + 1
        ));
    }
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !alnum(name.chars().next()) || !alnum(name.chars().last()) {
        return Err("must start and end with a lowercase letter or digit".to_owned());
    }
    if name.contains("..") {
        return Err("contains \"..\"; bucket names may not have two adjacent periods".to_owned());
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err("is shaped like an IP address, which bucket names may not be".to_owned());
    }
    for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if name.starts_with(prefix) {
            return Err(format!("starts with the reserved prefix {prefix:?}"));
        }
    }
    for suffix in ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"] {
        if name.ends_with(suffix) {
            return Err(format!("ends with the reserved suffix {suffix:?}"));
        }
    }
    Ok(())
}

/// A 12-digit AWS account id.
pub fn check_account_id(value: &str) -> Result<(), String> {
    if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err("must be a 12-digit AWS account id".to_owned())
    }
}

/// `arn:<partition>:iam::<12 digits>:role/<path/><name>`.
pub fn check_role_arn(value: &str) -> Result<(), String> {
    const RULE: &str =
        "must be an IAM role ARN: arn:<partition>:iam::<12-digit account>:role/<name>";
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = parts.as_slice() else {
        return Err(RULE.to_owned());
    };
    let partition_ok = !partition.is_empty()
        && partition
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let name_ok = resource.strip_prefix("role/").is_some_and(|path_and_name| {
        let name = path_and_name.rsplit('/').next().unwrap_or("");
        (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
    });
    if *arn == "arn"
        && partition_ok
        && *service == "iam"
        && region.is_empty()
        && check_account_id(account).is_ok()
        && name_ok
    {
        Ok(())
    } else {
        Err(RULE.to_owned())
    }
}

/// Connector ids and index names: `[a-z0-9][a-z0-9_-]*`, at most 64 characters.
pub fn check_identifier(value: &str) -> Result<(), String> {
    let mut bytes = value.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if first_ok
        && value.len() <= 64
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        Ok(())
    } else {
        Err("must match [a-z0-9][a-z0-9_-]* and have at most 64 characters".to_owned())
    }
}

/// An AWS region name such as `us-east-1` (lowercase letters, digits and hyphens).
pub fn check_region(value: &str) -> Result<(), String> {
    if !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        Ok(())
    } else {
        Err("must be a region name such as us-east-1".to_owned())
    }
}

/// An `http://` or `https://` URL with a host, and no user name or password in it.
pub fn check_endpoint_url(value: &str) -> Result<(), String> {
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"));
    match rest {
        Some(_) if has_user_info(value) => Err(
            "carries a user name or password (user:password@host), which would be printed wherever the URL is; this endpoint takes no credentials in its URL".to_owned(),
        ),
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => Ok(()),
        _ => Err("must be an http:// or https:// URL with a host".to_owned()),
    }
}

/// True when `url` carries user information (`user:password@`): exactly when printing it
/// through [`super::redact_urls`] would hide something.
pub fn has_user_info(url: &str) -> bool {
    super::redact_urls(url) != url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        let cases: &[(&str, Option<&str>)] = &[
            ("team-docs", None),
            ("a.b-c1", None),
            ("abc", None),
            ("ab", Some("2 characters long")),
            (&"a".repeat(64), Some("64 characters long")),
            ("Team-docs", Some("'T' at position 1")),
            ("team_docs", Some("'_' at position 5")),
            ("-team", Some("must start and end")),
            ("team.", Some("must start and end")),
            ("team..docs", Some("two adjacent periods")),
            ("192.168.5.4", Some("IP address")),
            ("xn--bucket", Some("reserved prefix")),
            ("my-bucket-s3alias", Some("reserved suffix")),
        ];
        for (name, expected) in cases {
            match (check_bucket_name(name), expected) {
                (Ok(()), None) => {}
                (Err(message), Some(fragment)) => {
                    assert!(message.contains(fragment), "{name}: {message}")
                }
                (got, _) => panic!("{name}: unexpected {got:?}"),
            }
        }
    }

    #[test]
    fn role_arns() {
        let cases = [
            ("arn:aws:iam::123456789012:role/search-reader", true),
            ("arn:aws-cn:iam::123456789012:role/path/to/reader", true),
            ("arn:aws:iam::123456789012:role/with+=,.@_-chars", true),
            ("arn:aws:iam::12345678901:role/short-account", false),
            ("arn:aws:iam::123456789012:user/not-a-role", false),
            ("arn:aws:s3:::bucket", false),
            ("arn:aws:iam:us-east-1:123456789012:role/regional", false),
            ("arn:aws:iam::123456789012:role/", false),
            ("role/reader", false),
        ];
        for (arn, ok) in cases {
            assert_eq!(check_role_arn(arn).is_ok(), ok, "{arn}");
        }
    }

    #[test]
    fn account_ids_identifiers_regions_urls() {
        assert!(check_account_id("123456789012").is_ok());
        assert!(check_account_id("12345678901").is_err());
        assert!(check_account_id("12345678901a").is_err());
        assert!(check_identifier("team-docs_2").is_ok());
        assert!(check_identifier("_team").is_err());
        assert!(check_identifier("Team").is_err());
        assert!(check_identifier("").is_err());
        assert!(check_region("eu-west-1").is_ok());
        assert!(check_region("EU West").is_err());
        assert!(check_endpoint_url("http://127.0.0.1:9000").is_ok());
        assert!(check_endpoint_url("https://s3.example.com").is_ok());
        assert!(check_endpoint_url("127.0.0.1:9000").is_err());
        assert!(check_endpoint_url("http://").is_err());
        let userinfo = check_endpoint_url("http://admin:pw@127.0.0.1:9000").unwrap_err();
        assert!(userinfo.contains("user name or password"), "{userinfo}");
        assert!(!userinfo.contains("pw"), "{userinfo}");
    }
}
