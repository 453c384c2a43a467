//! What the embedded index's vector search costs: the 8-bit exact scan of
//! `s3_connector::sink::vectors` against the `f32` exact scan, at 10^5 and 10^6 vectors of 384
//! dimensions (all-MiniLM-L6-v2's size).
//!
//! The vectors are clustered like sentence embeddings (2,000 centroids, each vector its
//! centroid plus noise, normalised), the queries other points of the same clusters. For each
//! size it prints the memory of both representations, the mean and p95 latency of one query
//! over every vector (one thread), and recall@10 of the 8-bit scan against the `f32` one.
//!
//! ```text
//! cargo run --release --example vector_search [-- SIZES...]     # default: 100000 1000000
//! ```
//!
//! The figures are in docs/search.md ("Vector search: measured").

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use s3_connector::sink::vectors::{VectorSet, exact_top_k};

const DIMENSIONS: usize = 384;
const CLUSTERS: usize = 2_000;
const QUERIES: usize = 100;
const K: usize = 10;
/// Noise around a centroid, per component (centroid components are in [-1, 1]).
const NOISE: f32 = 0.6;

fn unit(mut vector: Vec<f32>) -> Vec<f32> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    vector.iter_mut().for_each(|x| *x /= norm);
    vector
}

fn around(centroid: &[f32], rng: &mut ChaCha8Rng) -> Vec<f32> {
    unit(
        centroid
            .iter()
            .map(|c| c + rng.random_range(-NOISE..NOISE))
            .collect(),
    )
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|arg| arg.parse().expect("a size is a number of vectors"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100_000, 1_000_000]
    } else {
        sizes
    };
    println!(
        "| vectors | f32 memory | int8 memory | f32 scan mean / p95 | int8 scan mean / p95 | recall@10 |"
    );
    println!("|---|---|---|---|---|---|");
    for size in sizes {
        let mut rng = ChaCha8Rng::seed_from_u64(24);
        let centroids: Vec<Vec<f32>> = (0..CLUSTERS)
            .map(|_| {
                (0..DIMENSIONS)
                    .map(|_| rng.random_range(-1.0f32..1.0))
                    .collect()
            })
            .collect();
        let mut exact = Vec::with_capacity(size * DIMENSIONS);
        let mut set = VectorSet::new(DIMENSIONS);
        for row in 0..size {
            let vector = around(&centroids[row % CLUSTERS], &mut rng);
            set.push(&vector);
            exact.extend_from_slice(&vector);
        }
        let queries: Vec<Vec<f32>> = (0..QUERIES)
            .map(|_| around(&centroids[rng.random_range(0..CLUSTERS)], &mut rng))
            .collect();
        let mut exact_times = Vec::new();
        let mut int8_times = Vec::new();
        let mut found = 0;
        for query in &queries {
            let started = Instant::now();
            let truth = exact_top_k(&exact, query, K);
            exact_times.push(started.elapsed().as_secs_f64() * 1000.0);
            let started = Instant::now();
            let approximate = set.top_k(query, K, |_| true);
            int8_times.push(started.elapsed().as_secs_f64() * 1000.0);
            found += approximate
                .iter()
                .filter(|(row, _)| truth.iter().any(|(r, _)| r == row))
                .count();
        }
        let summary = |times: &mut Vec<f64>| {
            times.sort_by(f64::total_cmp);
            let mean = times.iter().sum::<f64>() / times.len() as f64;
            format!("{mean:.1} / {:.1} ms", times[times.len() * 95 / 100])
        };
        println!(
            "| {size} | {} MB | {} MB | {} | {} | {:.4} |",
            exact.len() * 4 / 1_000_000,
            set.memory_bytes() / 1_000_000,
            summary(&mut exact_times),
            summary(&mut int8_times),
            found as f64 / (QUERIES * K) as f64,
        );
    }
}
