//! Writes an S3 Inventory of a bucket as AWS lays it out (a gzip CSV or Snappy Parquet data
//! file, `manifest.json` naming it with its size and MD5, `manifest.checksum`), built from the
//! bucket's own listing, so that a connector with `inventory:` can be tried on a local S3 server
//! (moto, MinIO, SeaweedFS) without waiting a day for AWS to deliver a real one. The layout is
//! the one the tests use (`s3_connector::source::inventory::testing`).
//!
//! ```sh
//! AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo-secret \
//!   cargo run --example write_inventory -- --endpoint http://127.0.0.1:5000 \
//!   --source demo-docs --destination s3://inventories/reports --config-id daily
//! ```
//!
//! It writes `reports/demo-docs/daily/data/<time>.csv.gz` and
//! `reports/demo-docs/daily/<YYYY-MM-DDTHH-MMZ>/manifest.json` (+ `manifest.checksum`) into
//! the destination bucket, which must exist: what a connector with
//! `inventory: {destination: s3://inventories/reports, config_id: daily}` reads. Run it again
//! after changing the bucket for a newer inventory (a minute later: folders are per minute).

use anyhow::{Context as _, bail};
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use clap::Parser;
use s3_connector::source::inventory::manifest::md5_hex;
use s3_connector::source::inventory::testing::{self, Format, InventoryRow};
use time::OffsetDateTime;

/// Writes the S3 Inventory of a bucket, from its listing.
#[derive(Debug, Parser)]
struct Args {
    /// The S3 endpoint, e.g. http://127.0.0.1:5000 (path-style addressing is used).
    #[arg(long)]
    endpoint: String,
    /// The region to sign for.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// The bucket to take the inventory of.
    #[arg(long)]
    source: String,
    /// Where to write it: s3://BUCKET or s3://BUCKET/PREFIX (the connector's
    /// `inventory.destination`).
    #[arg(long)]
    destination: String,
    /// The inventory configuration's id (the connector's `inventory.config_id`).
    #[arg(long, default_value = "daily")]
    config_id: String,
    /// The data file's format: csv or parquet.
    #[arg(long, default_value = "csv")]
    format: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let format = match args.format.as_str() {
        "csv" => Format::Csv,
        "parquet" => Format::Parquet,
        other => bail!("--format {other}: write csv or parquet"),
    };
    let Some(rest) = args.destination.strip_prefix("s3://") else {
        bail!(
            "--destination {}: write s3://BUCKET or s3://BUCKET/PREFIX",
            args.destination
        );
    };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let prefix = prefix.trim_matches('/');
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(args.region.clone()))
        .endpoint_url(&args.endpoint)
        .load()
        .await;
    let s3 = Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );

    let created = OffsetDateTime::now_utc();
    let rows = listing_rows(&s3, &args.source).await?;
    let folder = match prefix {
        "" => format!("{}/{}", args.source, args.config_id),
        prefix => format!("{prefix}/{}/{}", args.source, args.config_id),
    };
    // The dated folder's name, as S3 Inventory writes it.
    let stamp = format!(
        "{:04}-{:02}-{:02}T{:02}-{:02}Z",
        created.year(),
        u8::from(created.month()),
        created.day(),
        created.hour(),
        created.minute()
    );
    let data_key = format!(
        "{folder}/data/{}.{}",
        created.unix_timestamp(),
        format.extension()
    );
    let data = testing::data_file(format, &rows);
    let manifest = testing::manifest(
        &args.source,
        bucket,
        created,
        format,
        &[(data_key.clone(), data.as_slice())],
    );
    let checksum = md5_hex(manifest.as_bytes());
    for (key, body) in [
        (data_key, data),
        (
            format!("{folder}/{stamp}/manifest.json"),
            manifest.into_bytes(),
        ),
        (
            format!("{folder}/{stamp}/manifest.checksum"),
            checksum.into_bytes(),
        ),
    ] {
        s3.put_object()
            .bucket(bucket)
            .key(&key)
            .body(ByteStream::from(body))
            .send()
            .await
            .with_context(|| format!("cannot write s3://{bucket}/{key}"))?;
        println!("wrote s3://{bucket}/{key}");
    }
    println!(
        "inventory of s3://{} ({} objects, {}) created {stamp}",
        args.source,
        rows.len(),
        format.name()
    );
    Ok(())
}

/// One inventory row per object the bucket lists now.
async fn listing_rows(s3: &Client, bucket: &str) -> anyhow::Result<Vec<InventoryRow>> {
    let mut rows = Vec::new();
    let mut pages = s3.list_objects_v2().bucket(bucket).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.with_context(|| format!("cannot list s3://{bucket}"))?;
        for object in page.contents() {
            let modified = object.last_modified().context("an object without a date")?;
            rows.push(InventoryRow::object(
                bucket,
                object.key().unwrap_or_default(),
                object
                    .size()
                    .unwrap_or_default()
                    .try_into()
                    .unwrap_or_default(),
                OffsetDateTime::from_unix_timestamp_nanos(modified.as_nanos())?,
                object.e_tag().unwrap_or_default(),
                object
                    .storage_class()
                    .map_or("STANDARD", |class| class.as_str()),
            ));
        }
    }
    Ok(rows)
}
