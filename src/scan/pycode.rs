//! Judges the Python bytecode a Lambda layer carries (Keras `func_dump`
//! output: base64 of a marshalled code object) by the names and constants it
//! references. Nothing is executed: `marshal` is decoded by [`super::marshal`].

use super::marshal::{self, Layout, Refs};
use super::Severity;

/// Names whose mere presence means the code can run commands, load code or
/// reach the network: the CVE-2024-3660 payloads use exactly these.
const CRITICAL: &[&str] = &[
    "exec",
    "eval",
    "compile",
    "__import__",
    "os",
    "posix",
    "nt",
    "system",
    "popen",
    "Popen",
    "spawnv",
    "spawnve",
    "spawnl",
    "spawnlp",
    "execv",
    "execve",
    "execl",
    "execlp",
    "execvp",
    "execvpe",
    "fork",
    "forkpty",
    "subprocess",
    "_posixsubprocess",
    "check_output",
    "check_call",
    "getoutput",
    "getstatusoutput",
    "socket",
    "create_connection",
    "ctypes",
    "cdll",
    "CDLL",
    "pickle",
    "cPickle",
    "_pickle",
    "dill",
    "cloudpickle",
    "marshal",
    "importlib",
    "import_module",
    "builtins",
    "__builtins__",
    "__builtin__",
    "pty",
    "shutil",
    "urllib",
    "urlopen",
    "urlretrieve",
    "requests",
    "http",
    "httplib",
    "webbrowser",
    "ftplib",
    "telnetlib",
    "smtplib",
    "runpy",
    "run_path",
    "run_module",
    "__subclasses__",
    "__globals__",
    "__code__",
    "__reduce__",
    "__reduce_ex__",
    "commands",
    "load_library",
    "load_op_library",
    "execfile",
];

/// Names that reach files, reflection or Python escape hatches in TF.
const HIGH: &[&str] = &[
    "open",
    "getattr",
    "setattr",
    "delattr",
    "globals",
    "locals",
    "vars",
    "sys",
    "io",
    "pathlib",
    "Path",
    "file",
    "write_file",
    "read_file",
    "gfile",
    "GFile",
    "py_function",
    "numpy_function",
    "py_func",
    "input",
    "breakpoint",
    "__class__",
    "__bases__",
    "__base__",
    "__mro__",
    "__dict__",
    "__getattribute__",
    "__loader__",
    "__spec__",
    "tempfile",
    "glob",
    "listdir",
    "scandir",
    "remove",
    "unlink",
    "rmtree",
    "rmdir",
    "makedirs",
    "environ",
    "getenv",
    "putenv",
    "threading",
    "multiprocessing",
    "signal",
    "b64decode",
    "codecs",
    "zlib",
    "exit",
    "quit",
    "_exit",
    "get_file",
    "load_model",
    "load_weights",
    "inspect",
    "types",
    "FunctionType",
    "CodeType",
    "kill",
];

/// What a Lambda's code was found to reference.
pub struct Verdict {
    pub severity: Severity,
    pub summary: String,
}

/// Decodes the base64 (newlines allowed, as `codecs.encode` inserts every
/// 76 chars) and judges the code object.
pub fn judge_b64(b64: &str, max_len: usize) -> Verdict {
    match base64_decode(b64, max_len) {
        Some(raw) => judge_raw(&raw),
        None => Verdict {
            severity: Severity::High,
            summary: "its bytecode is not valid base64, so what it runs is unknown".into(),
        },
    }
}

pub fn judge_raw(raw: &[u8]) -> Verdict {
    let (refs, how) = match marshal::decode_code(raw) {
        Ok((layout, v)) => (marshal::references(&v), Decoded::Code(layout)),
        Err(e) => {
            // Without a layout, every identifier-looking token counts as a
            // name: over-reporting beats calling unknown code arithmetic.
            let strings = marshal::printable_strings(raw);
            let mut names: Vec<String> = Vec::new();
            for tok in strings.iter().flat_map(|s| s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))) {
                if !tok.is_empty() && names.len() < 4096 && !names.iter().any(|n| n == tok) {
                    names.push(tok.to_string());
                }
            }
            (Refs { names, strings, numbers: Vec::new() }, Decoded::Strings(e.to_string()))
        }
    };
    judge_refs(&refs, how)
}

enum Decoded {
    Code(Layout),
    Strings(String),
}

fn judge_refs(refs: &Refs, how: Decoded) -> Verdict {
    let words = || refs.names.iter().chain(refs.strings.iter()).map(String::as_str);
    let crit: Vec<&str> = dedup(words().filter(|w| CRITICAL.contains(w)));
    let high: Vec<&str> = dedup(words().filter(|w| HIGH.contains(w)));
    let mut severity = if !crit.is_empty() {
        Severity::Critical
    } else if !high.is_empty() {
        Severity::High
    } else {
        Severity::Low
    };
    let names = if refs.names.is_empty() { "none".to_string() } else { refs.names.join(", ") };
    let consts: Vec<String> = refs.strings.iter().filter(|s| !is_boring(s)).take(8).map(|s| format!("{s:?}")).collect();
    let mut summary = match severity {
        Severity::Critical => format!("references {} (can run commands or load code)", join_dotted(&crit, &refs.names)),
        Severity::High => format!("references {} (files, reflection or escape hatches)", high.join(", ")),
        _ => "runs code, looks arithmetic".to_string(),
    };
    match how {
        Decoded::Code(layout) => {
            summary.push_str(&format!("; names: {names}"));
            if !consts.is_empty() {
                summary.push_str(&format!("; string constants: {}", consts.join(", ")));
            }
            if !refs.numbers.is_empty() {
                let nums: Vec<&str> = refs.numbers.iter().take(8).map(String::as_str).collect();
                summary.push_str(&format!("; numeric constants: {}", nums.join(", ")));
            }
            summary.push_str(&format!(" (bytecode layout Python {})", layout.describe()));
        }
        Decoded::Strings(why) => {
            // Undecodable bytecode is never "looks arithmetic".
            severity = severity.max(Severity::Medium);
            if severity == Severity::Medium {
                summary = "runs code that could not be decoded".into();
            }
            summary.push_str(&format!("; marshal decoding failed ({why}); strings found: {}", consts.join(", ")));
        }
    }
    Verdict { severity, summary }
}

/// Shows `os.system` rather than `os, system` when both names occur.
fn join_dotted(hits: &[&str], names: &[String]) -> String {
    let has = |n: &str| names.iter().any(|x| x == n);
    let mut out: Vec<String> = Vec::new();
    for h in hits {
        if *h == "system" && has("os") {
            continue;
        }
        if *h == "os" && has("system") {
            out.push("os.system".into());
        } else {
            out.push((*h).to_string());
        }
    }
    out.join(", ")
}

fn dedup<'a>(it: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = Vec::new();
    for w in it {
        if !v.contains(&w) {
            v.push(w);
        }
    }
    v
}

/// File names, `<lambda>` and similar noise that does not help a reader.
fn is_boring(s: &str) -> bool {
    s.starts_with('<') || s.ends_with(".py") || s.is_empty() || s.len() > 200
}

/// Minimal standard base64 decoder; whitespace is skipped, anything else
/// invalid returns `None`. Refuses input that would decode above `max_len`.
pub fn base64_decode(s: &str, max_len: usize) -> Option<Vec<u8>> {
    if s.len() / 4 * 3 > max_len.saturating_mul(2) {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            b'\n' | b'\r' | b' ' | b'\t' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    (out.len() <= max_len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip_with_newlines() {
        assert_eq!(base64_decode("aGVs\nbG8=\n", 100).unwrap(), b"hello");
        assert!(base64_decode("not base64!", 100).is_none());
    }

    #[test]
    fn undecodable_bytes_are_at_least_medium() {
        let v = judge_raw(b"\x00\x01 garbage os system");
        assert_eq!(v.severity, Severity::Critical);
        let v = judge_raw(b"\x00\x01 nothing here");
        assert_eq!(v.severity, Severity::Medium);
    }
}
