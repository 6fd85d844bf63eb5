//! Prometheus text-format metrics: requests and errors by model and code, a latency
//! histogram, queue depth, worker restarts and violations by kind.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

const BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Per model: bucket counts, sum of seconds, count.
type Histogram = (Vec<u64>, f64, u64);

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    restarts: Mutex<BTreeMap<(String, String), u64>>,
    violations: Mutex<BTreeMap<(String, String), u64>>,
    ids: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Metrics {
    pub fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }

    pub fn request(&self, model: &str, code: u16, seconds: f64) {
        *lock(&self.requests).entry((model.to_string(), code)).or_default() += 1;
        let mut l = lock(&self.latency);
        let e = l.entry(model.to_string()).or_insert_with(|| (vec![0; BUCKETS.len()], 0.0, 0));
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                e.0[i] += 1;
            }
        }
        e.1 += seconds;
        e.2 += 1;
    }

    pub fn restart(&self, model: &str, why: &str) {
        *lock(&self.restarts).entry((model.to_string(), why.to_string())).or_default() += 1;
    }

    pub fn violation(&self, model: &str, kind: &str) {
        *lock(&self.violations).entry((model.to_string(), kind.to_string())).or_default() += 1;
    }

    /// `queues`: (model, depth, ready).
    pub fn render(&self, queues: &[(String, i64, bool)]) -> String {
        let mut o = String::new();
        o.push_str("# HELP sandload_requests_total Inference requests by model and HTTP status.\n# TYPE sandload_requests_total counter\n");
        for ((m, c), n) in lock(&self.requests).iter() {
            o.push_str(&format!("sandload_requests_total{{model=\"{m}\",code=\"{c}\"}} {n}\n"));
        }
        o.push_str("# HELP sandload_request_duration_seconds Inference latency.\n# TYPE sandload_request_duration_seconds histogram\n");
        for (m, (b, sum, count)) in lock(&self.latency).iter() {
            for (i, le) in BUCKETS.iter().enumerate() {
                o.push_str(&format!(
                    "sandload_request_duration_seconds_bucket{{model=\"{m}\",le=\"{le}\"}} {}\n",
                    b[i]
                ));
            }
            o.push_str(&format!("sandload_request_duration_seconds_bucket{{model=\"{m}\",le=\"+Inf\"}} {count}\n"));
            o.push_str(&format!("sandload_request_duration_seconds_sum{{model=\"{m}\"}} {sum}\n"));
            o.push_str(&format!("sandload_request_duration_seconds_count{{model=\"{m}\"}} {count}\n"));
        }
        o.push_str("# HELP sandload_queue_depth Requests waiting for a worker.\n# TYPE sandload_queue_depth gauge\n");
        for (m, d, _) in queues {
            o.push_str(&format!("sandload_queue_depth{{model=\"{m}\"}} {d}\n"));
        }
        o.push_str(
            "# HELP sandload_model_ready Whether the model has a ready worker.\n# TYPE sandload_model_ready gauge\n",
        );
        for (m, _, r) in queues {
            o.push_str(&format!("sandload_model_ready{{model=\"{m}\"}} {}\n", *r as u8));
        }
        o.push_str("# HELP sandload_worker_restarts_total Worker restarts by model and reason.\n# TYPE sandload_worker_restarts_total counter\n");
        for ((m, w), n) in lock(&self.restarts).iter() {
            o.push_str(&format!("sandload_worker_restarts_total{{model=\"{m}\",reason=\"{w}\"}} {n}\n"));
        }
        o.push_str("# HELP sandload_violations_total Worker failures by model and kind.\n# TYPE sandload_violations_total counter\n");
        for ((m, k), n) in lock(&self.violations).iter() {
            o.push_str(&format!("sandload_violations_total{{model=\"{m}\",kind=\"{k}\"}} {n}\n"));
        }
        o
    }
}
