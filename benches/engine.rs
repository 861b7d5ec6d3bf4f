//! Micro-benchmarks of rocklog's hot paths: measurements, not tests.
//!
//! `cargo bench --bench engine`. Appends are synced (the real path), so their figures are
//! mostly this disk's fsync latency; compare 1 / 64 / 1024 entries per call to see what
//! one fsync carries.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;
use rocklog::{Config, Entry, LogStore};

fn entries(first: u64, n: u64, bytes: usize) -> Vec<Entry> {
    (first..first + n).map(|i| Entry::new(i, 1, vec![(i % 251) as u8; bytes])).collect()
}

fn encode(c: &mut Criterion) {
    let batch = entries(1, 64, 256);
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(64));
    g.bench_function("64 entries of 256 B", |b| {
        b.iter(|| batch.iter().map(|e| e.encode_to_vec().len()).sum::<usize>());
    });
    g.finish();
}

fn append(c: &mut Criterion) {
    let Ok(rt) = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build() else { return };
    let Ok(dir) = tempfile::tempdir() else { return };
    let Ok(store) = LogStore::start(Config::new(dir.path())) else { return };
    let mut g = c.benchmark_group("append (synced)");
    for per_call in [1u64, 64, 1024] {
        g.throughput(Throughput::Elements(per_call));
        let group = store.group(per_call);
        let mut next = 1u64;
        g.bench_with_input(BenchmarkId::from_parameter(per_call), &per_call, |b, &n| {
            b.to_async(&rt).iter(|| {
                let batch = entries(next, n, 256);
                next += n;
                let group = group.clone();
                async move { group.append(&batch).await }
            });
        });
    }
    g.finish();
}

fn range_read(c: &mut Criterion) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() else { return };
    let Ok(dir) = tempfile::tempdir() else { return };
    let Ok(store) = LogStore::start(Config::new(dir.path())) else { return };
    let group = store.group(1);
    if rt.block_on(group.append(&entries(1, 10_000, 256))).is_err() {
        return;
    }
    let mut g = c.benchmark_group("read");
    g.throughput(Throughput::Elements(100));
    let mut lo = 1u64;
    g.bench_function("range of 100 entries", |b| {
        b.iter(|| {
            lo = if lo > 9_800 { 1 } else { lo + 100 };
            group.entries(lo..lo + 100, None).map(|v| v.len())
        });
    });
    g.finish();
}

criterion_group!(benches, encode, append, range_read);
criterion_main!(benches);
