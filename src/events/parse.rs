//! SQS message bodies to the keys they touch: S3's own notification records (eventVersion
//! 2.x, every record of a message), the same inside an SNS envelope, and EventBridge's
//! "Object Created" / "Object Deleted" events. Pure functions, tested with tables.
//!
//! What an event says happened is not trusted: it only names a key, and the consumer asks S3
//! for that key's current state. So the parse keeps the bucket and the key, and the event's
//! kind only for counting.

use serde_json::Value;

use crate::config::notifications::EventFormat;

/// What an event says happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Created or overwritten (put, post, copy, multipart upload, restored).
    Created,
    /// Deleted, a delete marker, or expired by a lifecycle rule.
    Removed,
    /// Another change of the object (storage class, ...): its state is read again all the same.
    Changed,
}

/// One key an event names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touch {
    /// The bucket.
    pub bucket: String,
    /// The key, decoded.
    pub key: String,
    /// What the event says happened.
    pub kind: EventKind,
}

/// What a message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// These keys changed; a message may name many (every record is read).
    Touches(Vec<Touch>),
    /// Nothing to do: `s3:TestEvent`, or an event that cannot change a document (tags, ACLs).
    Ignored(&'static str),
}

/// Why a message cannot be read. It is kept in the queue, so its redrive policy moves it to
/// the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

fn error(message: impl Into<String>) -> ParseError {
    ParseError(message.into())
}

/// Reads one SQS message body in the configured `format` (`auto`: recognised by its shape).
pub fn parse_message(body: &str, format: EventFormat) -> Result<Parsed, ParseError> {
    let value: Value =
        serde_json::from_str(body).map_err(|e| error(format!("the message is not JSON: {e}")))?;
    let format = match format {
        EventFormat::Auto => recognise(&value)?,
        chosen => chosen,
    };
    match format {
        EventFormat::Sns => parse_sns(&value),
        EventFormat::Eventbridge => parse_eventbridge(&value),
        EventFormat::S3 | EventFormat::Auto => parse_s3(&value),
    }
}

/// The format of a message, from its shape.
fn recognise(value: &Value) -> Result<EventFormat, ParseError> {
    if value.get("Type").and_then(Value::as_str) == Some("Notification")
        && value.get("Message").is_some()
    {
        Ok(EventFormat::Sns)
    } else if value.get("detail-type").is_some() && value.get("detail").is_some() {
        Ok(EventFormat::Eventbridge)
    } else if value.get("Records").is_some() || value.get("Event").is_some() {
        Ok(EventFormat::S3)
    } else {
        Err(error(
            "the message is neither S3 event records, an SNS notification nor an EventBridge event",
        ))
    }
}

/// An SNS notification whose `Message` is S3's notification JSON.
fn parse_sns(value: &Value) -> Result<Parsed, ParseError> {
    let message = value
        .get("Message")
        .and_then(Value::as_str)
        .ok_or_else(|| error("the SNS envelope has no Message string"))?;
    let inner: Value = serde_json::from_str(message)
        .map_err(|e| error(format!("the SNS Message is not JSON: {e}")))?;
    parse_s3(&inner)
}

/// S3's notification JSON: `{"Records": [...]}`, or the `s3:TestEvent` sent when a
/// notification configuration is saved.
fn parse_s3(value: &Value) -> Result<Parsed, ParseError> {
    if value.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Parsed::Ignored("s3:TestEvent"));
    }
    let records = value
        .get("Records")
        .and_then(Value::as_array)
        .ok_or_else(|| error("the message has no Records list"))?;
    if records.is_empty() {
        return Err(error("the message's Records list is empty"));
    }
    let mut touches = Vec::with_capacity(records.len());
    for (position, record) in records.iter().enumerate() {
        let field = |path: &[&str]| {
            path.iter()
                .try_fold(record, |value, name| value.get(name))
                .and_then(Value::as_str)
                .ok_or_else(|| error(format!("record {position} has no {}", path.join("."))))
        };
        let version = field(&["eventVersion"])?;
        if version.split('.').next() != Some("2") {
            return Err(error(format!(
                "record {position} has eventVersion {version:?}; only 2.x is understood"
            )));
        }
        let name = field(&["eventName"])?;
        let kind = match name.strip_prefix("s3:").unwrap_or(name) {
            n if n.starts_with("ObjectCreated:") || n == "ObjectRestore:Completed" => {
                EventKind::Created
            }
            n if n.starts_with("ObjectRemoved:") || n.starts_with("LifecycleExpiration:") => {
                EventKind::Removed
            }
            n if n.starts_with("ObjectTagging:") || n.starts_with("ObjectAcl:") => continue,
            _ => EventKind::Changed,
        };
        let bucket = field(&["s3", "bucket", "name"])?;
        let raw_key = field(&["s3", "object", "key"])?;
        let key = decode_key(raw_key)
            .map_err(|e| error(format!("record {position}: key {raw_key:?} {e}")))?;
        touches.push(Touch {
            bucket: bucket.to_owned(),
            key,
            kind,
        });
    }
    if touches.is_empty() {
        return Ok(Parsed::Ignored("tag or ACL changes only"));
    }
    Ok(Parsed::Touches(touches))
}

/// An EventBridge event from S3 (`"source": "aws.s3"`).
fn parse_eventbridge(value: &Value) -> Result<Parsed, ParseError> {
    let detail_type = value
        .get("detail-type")
        .and_then(Value::as_str)
        .ok_or_else(|| error("the EventBridge event has no detail-type"))?;
    let kind = match detail_type {
        "Object Created" | "Object Restore Completed" => EventKind::Created,
        "Object Deleted" => EventKind::Removed,
        "Object Storage Class Changed"
        | "Object Restore Expired"
        | "Object Access Tier Changed" => EventKind::Changed,
        "Object Tags Added"
        | "Object Tags Deleted"
        | "Object ACL Updated"
        | "Object Restore Initiated" => return Ok(Parsed::Ignored("tag, ACL or restore start")),
        other => {
            return Err(error(format!(
                "the EventBridge event has detail-type {other:?}, not an S3 object event"
            )));
        }
    };
    let text = |path: &[&str]| {
        path.iter()
            .try_fold(value, |value, name| value.get(name))
            .and_then(Value::as_str)
            .ok_or_else(|| error(format!("the EventBridge event has no {}", path.join("."))))
    };
    let bucket = text(&["detail", "bucket", "name"])?;
    let raw_key = text(&["detail", "object", "key"])?;
    let mut touches = vec![Touch {
        bucket: bucket.to_owned(),
        key: raw_key.to_owned(),
        kind,
    }];
    // EventBridge's encoding of keys is documented less clearly than S3's own events: where
    // decoding changes the key, both readings are touched. S3 answers for each, so the one that
    // is not a key changes nothing (or removes a document of a key that does not exist).
    if let Ok(decoded) = decode_key(raw_key)
        && decoded != raw_key
    {
        touches.push(Touch {
            bucket: bucket.to_owned(),
            key: decoded,
            kind,
        });
    }
    Ok(Parsed::Touches(touches))
}

/// Decodes a key as S3 writes it into event records: URL-encoded, `+` for a space (some
/// emulators also encode `/` as `%2F`).
pub fn decode_key(raw: &str) -> Result<String, &'static str> {
    let mut bytes = Vec::with_capacity(raw.len());
    let mut input = raw.bytes();
    while let Some(byte) = input.next() {
        match byte {
            b'+' => bytes.push(b' '),
            b'%' => {
                let digit = |b: Option<u8>| {
                    b.and_then(|b| char::from(b).to_digit(16))
                        .ok_or("has a % that is not followed by two hex digits")
                };
                let high = digit(input.next())?;
                let low = digit(input.next())?;
                bytes.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
            }
            other => bytes.push(other),
        }
    }
    String::from_utf8(bytes).map_err(|_| "decodes to bytes that are not UTF-8")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::assert_outcome;

    fn s3_record(name: &str, bucket: &str, key: &str) -> Value {
        json!({
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2026-11-29T10:00:00.000Z", "eventName": name,
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "c",
                   "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
                   "object": {"key": key, "size": 3, "eTag": "abc", "sequencer": "0A1B"}}
        })
    }

    fn touch(bucket: &str, key: &str, kind: EventKind) -> Touch {
        Touch {
            bucket: bucket.into(),
            key: key.into(),
            kind,
        }
    }

    #[test]
    fn keys_decode_as_s3_encodes_them() {
        let decoded = [
            ("docs/a.txt", "docs/a.txt"),
            ("my+report.txt", "my report.txt"),
            ("a%2Bb.txt", "a+b.txt"),
            ("100%25.txt", "100%.txt"),
            ("docs%2Fsub%2Fa.txt", "docs/sub/a.txt"),
            ("caf%C3%A9+%E2%82%AC.md", "café €.md"),
            ("%e2%82%ac", "€"),
            ("", ""),
        ];
        let refused = [
            ("50%", "two hex digits"),
            ("50%4", "two hex digits"),
            ("50%zz", "two hex digits"),
            ("%FF%FE", "not UTF-8"),
        ];
        for (raw, key) in decoded {
            assert_outcome(raw, decode_key(raw), Ok::<_, &str>(key));
        }
        for (raw, why) in refused {
            assert_outcome(raw, decode_key(raw), Err::<&str, _>(why));
        }
    }

    #[test]
    fn messages_table() {
        use EventKind::{Changed, Created, Removed};
        let two_records = json!({"Records": [
            s3_record("ObjectCreated:Put", "b", "new+file.txt"),
            s3_record("ObjectRemoved:Delete", "b", "gone%2Fold.txt"),
            s3_record("ObjectRemoved:DeleteMarkerCreated", "b", "marked.txt"),
        ]})
        .to_string();
        let sns = json!({
            "Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
            "Message": json!({"Records": [s3_record("ObjectCreated:Copy", "b", "c.txt")]}).to_string(),
        })
        .to_string();
        let eventbridge = |detail_type: &str, key: &str| {
            json!({
                "version": "0", "id": "e", "detail-type": detail_type, "source": "aws.s3",
                "account": "123456789012", "time": "2026-11-29T10:00:00Z", "region": "us-east-1",
                "resources": ["arn:aws:s3:::b"],
                "detail": {"version": "0", "bucket": {"name": "b"},
                           "object": {"key": key, "size": 3, "etag": "abc"}, "reason": "PutObject"}
            })
            .to_string()
        };
        let test_event = json!({"Service": "Amazon S3", "Event": "s3:TestEvent",
            "Time": "2026-11-29T10:00:00Z", "Bucket": "b", "RequestId": "r", "HostId": "h"})
        .to_string();
        let sns_test_event =
            json!({"Type": "Notification", "Message": test_event.clone()}).to_string();
        let tags_only =
            json!({"Records": [s3_record("ObjectTagging:Put", "b", "a.txt")]}).to_string();
        let lifecycle = json!({"Records": [s3_record("LifecycleExpiration:Delete", "b", "old.log"),
                               s3_record("ObjectRestore:Completed", "b", "cold.pdf"),
                               s3_record("ReducedRedundancyLostObject", "b", "rr.txt")]})
        .to_string();
        let version_1 =
            json!({"Records": [{"eventVersion": "1.0", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "b"}, "object": {"key": "a"}}}]})
            .to_string();
        let no_key = json!({"Records": [{"eventVersion": "2.2", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "b"}, "object": {}}}]})
        .to_string();
        let bad_escape =
            json!({"Records": [s3_record("ObjectCreated:Put", "b", "100%.txt")]}).to_string();

        type Expected = Result<Parsed, &'static str>;
        use EventFormat::{Auto, Eventbridge, S3, Sns};
        let touches = |keys: &[(&str, EventKind)]| -> Expected {
            let touches = keys.iter().map(|(key, kind)| touch("b", key, *kind));
            Ok(Parsed::Touches(touches.collect()))
        };
        let ignored = |what| -> Expected { Ok(Parsed::Ignored(what)) };
        let records = [
            ("new file.txt", Created),
            ("gone/old.txt", Removed),
            ("marked.txt", Removed),
        ];
        let sns_not_json = json!({"Type": "Notification", "Message": "x"}).to_string();
        let (created, deleted) = ("Object Created", "Object Deleted");
        #[rustfmt::skip]
        let cases: Vec<(&str, String, EventFormat, Expected)> = vec![
            ("every record of a message", two_records.clone(), Auto, touches(&records)),
            ("records with format s3", two_records.clone(), S3, touches(&records)),
            ("records where sns was configured", two_records, Sns, Err("no Message")),
            ("sns envelope", sns.clone(), Auto, touches(&[("c.txt", Created)])),
            ("sns envelope, format sns", sns, Sns, touches(&[("c.txt", Created)])),
            ("eventbridge created, plain key", eventbridge(created, "docs/a.txt"), Auto,
                touches(&[("docs/a.txt", Created)])),
            ("eventbridge deleted, a key that may be encoded: both readings",
                eventbridge(deleted, "a+b%2Fc.txt"), Eventbridge,
                touches(&[("a+b%2Fc.txt", Removed), ("a b/c.txt", Removed)])),
            ("eventbridge key with a lone %: only the raw key", eventbridge(created, "100%.txt"),
                Auto, touches(&[("100%.txt", Created)])),
            ("eventbridge tags (moto sends one per put)", eventbridge("Object Tags Added", "a.txt"),
                Auto, ignored("tag, ACL or restore start")),
            ("eventbridge of another service",
                eventbridge("EC2 Instance State-change Notification", "a"), Auto,
                Err("not an S3 object event")),
            ("test event", test_event, Auto, ignored("s3:TestEvent")),
            ("test event through sns", sns_test_event, Auto, ignored("s3:TestEvent")),
            ("tag changes only", tags_only, Auto, ignored("tag or ACL changes only")),
            ("lifecycle, restore and other object events", lifecycle, Auto,
                touches(&[("old.log", Removed), ("cold.pdf", Created), ("rr.txt", Changed)])),
            ("eventVersion 1", version_1, Auto, Err("only 2.x")),
            ("no key", no_key, Auto, Err("s3.object.key")),
            ("a key that does not decode", bad_escape, Auto, Err("two hex digits")),
            ("not json", "hello".into(), Auto, Err("not JSON")),
            ("json of another kind", "{\"hello\": 1}".into(), Auto, Err("neither")),
            ("empty records", "{\"Records\": []}".into(), Auto, Err("empty")),
            ("sns message that is not json", sns_not_json, Auto, Err("SNS Message is not JSON")),
        ];
        for (name, body, format, expected) in cases {
            assert_outcome(name, parse_message(&body, format), expected);
        }
    }
}
