//! The HTTP surface (Open Inference Protocol V2 over HTTP/1.1). Handlers never panic on input:
//! every failure is `{"error": "..."}` with 400, 404, 413 or 503.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use super::v2;
use super::worker::{InferError, Job};
use super::App;

fn reply(code: StatusCode, body: Value) -> Response {
    let mut r = (code, body.to_string()).into_response();
    r.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
    r
}

fn error(code: StatusCode, msg: impl Into<String>) -> Response {
    reply(code, json!({ "error": msg.into() }))
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v2/health/live", get(|| async { reply(StatusCode::OK, json!({"live": true})) }))
        .route("/v2/health/ready", get(ready))
        .route("/v2", get(server_meta))
        .route("/v2/models/{m}", get(model_meta))
        .route("/v2/models/{m}/versions/{v}", get(model_meta_v))
        .route("/v2/models/{m}/ready", get(model_ready))
        .route("/v2/models/{m}/versions/{v}/ready", get(model_ready_v))
        .route("/v2/models/{m}/infer", post(infer))
        .route("/v2/models/{m}/versions/{v}/infer", post(infer_v))
        .route("/metrics", get(metrics))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(axum::extract::DefaultBodyLimit::max(app.max_body))
        .with_state(app)
}

async fn ready(State(app): State<Arc<App>>) -> Response {
    let ok = app.models.values().all(|m| m.ready());
    reply(if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, json!({"ready": ok}))
}

async fn server_meta() -> Response {
    reply(
        StatusCode::OK,
        json!({"name": "sandload", "version": env!("CARGO_PKG_VERSION"), "extensions": ["binary_tensor_data", "model_repository"]}),
    )
}

fn version_ok(v: Option<&str>) -> bool {
    v.is_none_or(|v| v == "1")
}

async fn model_meta(State(app): State<Arc<App>>, Path(m): Path<String>) -> Response {
    meta(&app, &m, None)
}

async fn model_meta_v(State(app): State<Arc<App>>, Path((m, v)): Path<(String, String)>) -> Response {
    meta(&app, &m, Some(&v))
}

fn meta(app: &App, m: &str, v: Option<&str>) -> Response {
    let Some(state) = app.models.get(m).filter(|_| version_ok(v)) else {
        return error(StatusCode::NOT_FOUND, format!("unknown model {m:?}"));
    };
    let sig = state.signature.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let Some(sig) = sig else {
        return error(StatusCode::SERVICE_UNAVAILABLE, format!("model {m:?} is not loaded yet"));
    };
    reply(
        StatusCode::OK,
        json!({
            "name": m, "versions": ["1"], "platform": "sandload_keras",
            "inputs": sig.inputs.iter().map(v2::metadata).collect::<Vec<_>>(),
            "outputs": sig.outputs.iter().map(v2::metadata).collect::<Vec<_>>(),
        }),
    )
}

async fn model_ready(State(app): State<Arc<App>>, Path(m): Path<String>) -> Response {
    mready(&app, &m, None)
}

async fn model_ready_v(State(app): State<Arc<App>>, Path((m, v)): Path<(String, String)>) -> Response {
    mready(&app, &m, Some(&v))
}

fn mready(app: &App, m: &str, v: Option<&str>) -> Response {
    match app.models.get(m).filter(|_| version_ok(v)) {
        None => error(StatusCode::NOT_FOUND, format!("unknown model {m:?}")),
        Some(s) => {
            let r = s.ready();
            reply(if r { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, json!({"name": m, "ready": r}))
        }
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let q: Vec<(String, i64, bool)> =
        app.models.iter().map(|(n, s)| (n.clone(), s.queue_depth.load(Ordering::SeqCst) as i64, s.ready())).collect();
    let mut r = app.metrics.render(&q).into_response();
    r.headers_mut().insert("content-type", HeaderValue::from_static("text/plain; version=0.0.4"));
    r
}

async fn infer(State(app): State<Arc<App>>, Path(m): Path<String>, h: HeaderMap, body: Bytes) -> Response {
    timed(&app, &m, None, h, body).await
}

async fn infer_v(
    State(app): State<Arc<App>>,
    Path((m, v)): Path<(String, String)>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    timed(&app, &m, Some(v), h, body).await
}

async fn timed(app: &Arc<App>, m: &str, v: Option<String>, h: HeaderMap, body: Bytes) -> Response {
    let t = Instant::now();
    let r = do_infer(app, m, v.as_deref(), &h, &body).await;
    if app.models.contains_key(m) {
        app.metrics.request(m, r.status().as_u16(), t.elapsed().as_secs_f64());
    }
    r
}

async fn do_infer(app: &Arc<App>, m: &str, v: Option<&str>, h: &HeaderMap, body: &[u8]) -> Response {
    let Some(state) = app.models.get(m).filter(|_| version_ok(v)) else {
        return error(StatusCode::NOT_FOUND, format!("unknown model {m:?}"));
    };
    let json_len = match h.get("inference-header-content-length") {
        None => body.len(),
        Some(l) => match l.to_str().ok().and_then(|s| s.parse::<usize>().ok()).filter(|n| *n <= body.len()) {
            Some(n) => n,
            None => return error(StatusCode::BAD_REQUEST, "bad Inference-Header-Content-Length"),
        },
    };
    let (head, binary) = body.split_at(json_len);
    if let Err(e) = v2::check_depth(head, v2::MAX_JSON_DEPTH) {
        return error(StatusCode::BAD_REQUEST, e);
    }
    let req: v2::InferRequest = match serde_json::from_slice(head) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid request JSON: {e}")),
    };
    let sig = state.signature.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let Some(sig) = sig.filter(|_| state.ready()) else {
        return error(StatusCode::SERVICE_UNAVAILABLE, format!("model {m:?} is not ready"));
    };
    let inputs = match v2::to_inputs(&req, &sig, binary, app.max_tensor_bytes) {
        Ok(i) => i,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    state.queue_depth.fetch_add(1, Ordering::SeqCst);
    let queue = state.queue.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let Some(queue) = queue else { return error(StatusCode::SERVICE_UNAVAILABLE, "server shutting down") };
    if queue.try_send(Job { inputs, reply: tx }).is_err() {
        state.queue_depth.fetch_sub(1, Ordering::SeqCst);
        let mut r = error(StatusCode::SERVICE_UNAVAILABLE, "queue full, retry later");
        r.headers_mut().insert("retry-after", HeaderValue::from_static("1"));
        return r;
    }
    let outs = match rx.await {
        Ok(Ok(o)) => o,
        Ok(Err(InferError::Model(e))) => return error(StatusCode::BAD_REQUEST, crate::text::escape(&e)),
        Ok(Err(InferError::Worker(e))) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the sandboxed worker failed and was replaced: {}", crate::text::escape(&e)),
            )
        }
        Ok(Err(InferError::Timeout)) => {
            return error(StatusCode::GATEWAY_TIMEOUT, "request timed out; the worker was replaced")
        }
        Err(_) => return error(StatusCode::SERVICE_UNAVAILABLE, "server shutting down"),
    };
    respond(m, &req, outs)
}

fn respond(m: &str, req: &v2::InferRequest, outs: super::worker::Tensors) -> Response {
    let all_binary = v2::param_bool(&req.parameters, "binary_data_output");
    let wanted = |name: &str| -> Option<bool> {
        match &req.outputs {
            None => Some(all_binary),
            Some(list) => {
                list.iter().find(|o| o.name == name).map(|o| all_binary || v2::param_bool(&o.parameters, "binary_data"))
            }
        }
    };
    let mut outputs = Vec::new();
    let mut blob = Vec::new();
    for (meta, bytes) in &outs {
        let Some(binary) = wanted(&meta.name) else { continue };
        let mut o = json!({"name": meta.name, "datatype": v2::v2_name(meta.dtype), "shape": meta.shape});
        if binary {
            o["parameters"] = json!({"binary_data_size": bytes.len()});
            blob.extend_from_slice(bytes);
        } else {
            o["data"] = Value::Array(v2::json_data(meta, bytes));
        }
        outputs.push(o);
    }
    let mut head = json!({"model_name": m, "model_version": "1", "outputs": outputs});
    if let Some(id) = &req.id {
        head["id"] = json!(id);
    }
    let head = head.to_string().into_bytes();
    if blob.is_empty() {
        let mut r = (StatusCode::OK, head).into_response();
        r.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
        return r;
    }
    let len = head.len();
    let mut body = head;
    body.extend_from_slice(&blob);
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert("content-type", HeaderValue::from_static("application/octet-stream"));
    r.headers_mut().insert("inference-header-content-length", HeaderValue::from(len));
    r
}
