//! The lookups an alert pays for: the nearest office, the office whose district holds the point,
//! and what an R-tree would change. `cargo bench -p alert-button-directory --bench lookup`.
//!
//! The R-trees index points as unit vectors, where the straight-line (chord) distance grows with
//! the great-circle distance, so the nearest by chord is the nearest on the sphere.

use std::hint::black_box;

use alert_button_directory::consulate::{Directory, distance_km};
use alert_button_directory::districts::{BUNDLED_PLACES, Districts, route};
use alert_button_directory::geography::GeoPoint;
use criterion::{Bencher, BenchmarkId, Criterion, criterion_group, criterion_main};
use rstar::RTree;
use rstar::primitives::GeomWithData;

type Indexed = GeomWithData<[f64; 3], usize>;

fn unit_vector(point: GeoPoint) -> [f64; 3] {
    let (lat, lon) = (point.lat.to_radians(), point.lon.to_radians());
    [lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()]
}

fn rtree(points: &[GeoPoint]) -> RTree<Indexed> {
    RTree::bulk_load(
        points
            .iter()
            .enumerate()
            .map(|(index, &point)| GeomWithData::new(unit_vector(point), index))
            .collect(),
    )
}

/// Points spread over the contiguous US, the same every run (a fixed linear congruential
/// sequence, so the benchmark needs no random source).
fn synthetic(count: usize, mut seed: u64) -> Vec<GeoPoint> {
    let mut next = move || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..count)
        .map(|_| GeoPoint {
            lat: 25.0 + 24.0 * next(),
            lon: -124.0 + 57.0 * next(),
        })
        .collect()
}

fn nearest_by_scan(points: &[GeoPoint], query: GeoPoint) -> usize {
    points
        .iter()
        .enumerate()
        .map(|(index, &point)| (distance_km(query, point), index))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map_or(usize::MAX, |(_, index)| index)
}

fn nearest_by_rtree(tree: &RTree<Indexed>, query: GeoPoint) -> usize {
    tree.nearest_neighbor(&unit_vector(query))
        .map_or(usize::MAX, |found| found.data)
}

/// Times `lookup` over the queries in turn, so no one point's answer is cached by the CPU.
fn cycling<T>(b: &mut Bencher, queries: &[GeoPoint], lookup: impl Fn(GeoPoint) -> T) {
    let mut at = 0;
    b.iter(|| {
        at = (at + 1) % queries.len();
        black_box(lookup(black_box(queries[at])))
    })
}

fn offices(c: &mut Criterion) {
    let directory = Directory::bundled();
    let queries = synthetic(1024, 7);
    let points: Vec<GeoPoint> = directory.all().iter().map(|c| c.point()).collect();
    let tree = rtree(&points);
    // The two must agree before their speed means anything.
    for &query in &queries {
        assert_eq!(
            nearest_by_scan(&points, query),
            nearest_by_rtree(&tree, query)
        );
    }
    let mut group = c.benchmark_group("nearest office (53)");
    for limit in [1, 10] {
        group.bench_function(BenchmarkId::new("Directory::nearest", limit), |b| {
            cycling(b, &queries, |query| directory.nearest(query, limit).len())
        });
    }
    group.bench_function("scan, nearest only", |b| {
        cycling(b, &queries, |query| nearest_by_scan(&points, query))
    });
    group.bench_function("rstar", |b| {
        cycling(b, &queries, |query| nearest_by_rtree(&tree, query))
    });
    group.finish();
}

fn many_points(c: &mut Criterion) {
    let points = synthetic(100_000, 42);
    let queries = synthetic(1024, 7);
    let tree = rtree(&points);
    for &query in queries.iter().take(32) {
        assert_eq!(
            nearest_by_scan(&points, query),
            nearest_by_rtree(&tree, query)
        );
    }
    let mut group = c.benchmark_group("nearest of 100,000 points");
    group.bench_function("scan", |b| {
        cycling(b, &queries, |query| nearest_by_scan(&points, query))
    });
    group.bench_function("rstar", |b| {
        cycling(b, &queries, |query| nearest_by_rtree(&tree, query))
    });
    group.bench_function("rstar bulk load", |b| {
        b.iter(|| black_box(rtree(black_box(&points)).size()))
    });
    group.finish();
}

fn districts(c: &mut Criterion) {
    let directory = Directory::bundled();
    let districts = Districts::bundled();
    let queries = synthetic(1024, 7);
    let places: Vec<GeoPoint> = csv::Reader::from_reader(BUNDLED_PLACES.as_bytes())
        .records()
        .map(|record| {
            let record = record.expect("the bundled places parse");
            GeoPoint {
                lat: record[0].parse().expect("a latitude"),
                lon: record[1].parse().expect("a longitude"),
            }
        })
        .collect();
    let tree = rtree(&places);
    let mut group = c.benchmark_group(format!("district routing ({} places)", places.len()));
    group.bench_function("route", |b| {
        cycling(b, &queries, |query| {
            route(&directory, &districts, query).is_some()
        })
    });
    group.bench_function("Districts::locate", |b| {
        cycling(b, &queries, |query| districts.locate(query).is_some())
    });
    group.bench_function("rstar nearest place", |b| {
        cycling(b, &queries, |query| nearest_by_rtree(&tree, query))
    });
    group.bench_function("Districts::bundled (start-up)", |b| {
        b.iter(|| black_box(Districts::bundled().place_count()))
    });
    group.bench_function("rstar bulk load of the places", |b| {
        b.iter(|| black_box(rtree(black_box(&places)).size()))
    });
    group.finish();
}

criterion_group!(benches, offices, many_points, districts);
criterion_main!(benches);
