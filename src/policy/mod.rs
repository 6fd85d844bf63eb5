//! Confinement policy as data: paths, limits and identity from TOML (`policies/default.toml`
//! is embedded), seccomp rules from their own files. Unknown keys are load errors.

pub mod seccomp;
pub mod syscalls;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const DEFAULT_POLICY: &str = include_str!("../../policies/default.toml");
/// The built-in seccomp rule sets as written (tests check them and their JSON encoding).
#[cfg(test)]
pub const DEFAULT_PHASE1: &str = include_str!("../../policies/seccomp-phase1.toml");
#[cfg(test)]
pub const DEFAULT_PHASE2: &str = include_str!("../../policies/seccomp-phase2.toml");
/// The same two rule sets, re-encoded as JSON by build.rs: what the binary parses at run time.
pub const DEFAULT_PHASE1_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/seccomp-phase1.json"));
pub const DEFAULT_PHASE2_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/seccomp-phase2.json"));

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("policy {path}: {source}")]
    Parse { path: String, source: toml::de::Error },
    #[error("policy {path}: {what}")]
    Invalid { path: String, what: String },
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompPolicyError),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub filesystem: Filesystem,
    pub identity: Identity,
    pub limits: Limits,
    pub landlock: LandlockPolicy,
    pub env: EnvPolicy,
    pub seccomp: SeccompFiles,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filesystem {
    /// Host paths shown read-only at the same place (missing ones are skipped).
    pub system_paths: Vec<PathBuf>,
    /// Size of the private writable /tmp (a tmpfs, charged to the child's memory).
    pub tmp_size: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// Host uid/gid the child runs as when sandload runs as root.
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub memory: String,
    pub max_procs: u64,
    pub open_files: u64,
    pub file_size: String,
    /// 0 means the timeout times the number of online CPUs.
    pub cpu_seconds: u64,
    /// Bytes of child stdout/stderr kept (the tail).
    pub output_tail: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LandlockPolicy {
    /// Lowest Landlock ABI accepted; 6 brings abstract-socket and signal scoping.
    pub min_abi: u8,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvPolicy {
    /// Host variables passed through unchanged (never secrets: CPU tuning only).
    pub pass: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeccompFiles {
    pub phase1: String,
    pub phase2: String,
}

/// A policy plus its compiled seccomp rule sets.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub policy: Policy,
    pub origin: String,
    pub phase1: seccomp::RuleSet,
    pub phase2: seccomp::RuleSet,
}

impl Loaded {
    pub fn load(path: Option<&Path>) -> Result<Loaded, PolicyError> {
        match path {
            None => Self::from_parts("built-in default", DEFAULT_POLICY, None),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| PolicyError::Read { path: p.into(), source })?;
                Self::from_parts(&p.display().to_string(), &text, p.parent())
            }
        }
    }

    fn from_parts(origin: &str, text: &str, dir: Option<&Path>) -> Result<Loaded, PolicyError> {
        let policy: Policy =
            toml::from_str(text).map_err(|source| PolicyError::Parse { path: origin.into(), source })?;
        // The built-in policy uses the built-in rule sets, read from their JSON encoding
        // (build.rs); a policy file names rule files beside it, read as TOML.
        let read_rules = |name: &str, embedded_json: &str| -> Result<seccomp::RuleSet, PolicyError> {
            match dir {
                None => Ok(seccomp::RuleSet::parse_json(name, embedded_json)?),
                Some(d) => {
                    let p = d.join(name);
                    let body =
                        std::fs::read_to_string(&p).map_err(|source| PolicyError::Read { path: p.clone(), source })?;
                    Ok(seccomp::RuleSet::parse(&p.display().to_string(), &body)?)
                }
            }
        };
        let phase1 = read_rules(&policy.seccomp.phase1, DEFAULT_PHASE1_JSON)?;
        let phase2 = read_rules(&policy.seccomp.phase2, DEFAULT_PHASE2_JSON)?;
        for (name, value) in [
            ("filesystem.tmp_size", &policy.filesystem.tmp_size),
            ("limits.memory", &policy.limits.memory),
            ("limits.file_size", &policy.limits.file_size),
            ("limits.output_tail", &policy.limits.output_tail),
        ] {
            parse_size(value)
                .map_err(|what| PolicyError::Invalid { path: origin.into(), what: format!("{name}: {what}") })?;
        }
        Ok(Loaded { policy, origin: origin.into(), phase1, phase2 })
    }
}

/// Parses sizes such as `512M`, `2G`, `64K` or plain bytes (binary units).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let mult: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(format!("bad size unit in {s:?} (use K, M, G or T)")),
            };
            (&s[..i], mult)
        }
        _ => (s, 1),
    };
    let n: u64 = num.trim().parse().map_err(|_| format!("bad size {s:?} (e.g. 512M, 2G)"))?;
    n.checked_mul(mult).ok_or_else(|| format!("size {s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_policy_file_in_policies_loads_and_compiles() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with("seccomp-") && name.ends_with(".toml") {
                let set = seccomp::RuleSet::parse(&name, &std::fs::read_to_string(&path).unwrap())
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                set.compile().unwrap_or_else(|e| panic!("{name}: {e}"));
                seen += 1;
            } else if name.ends_with(".toml") {
                let loaded = Loaded::load(Some(&path)).unwrap_or_else(|e| panic!("{name}: {e}"));
                loaded.phase1.compile().unwrap();
                loaded.phase2.compile().unwrap();
                seen += 1;
            }
        }
        assert!(seen >= 3, "expected the default policy and two seccomp files, saw {seen}");
        Loaded::load(None).unwrap();
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let bad = DEFAULT_POLICY.replace("[limits]", "[limits]\nmemroy = \"1G\"");
        assert!(Loaded::from_parts("t", &bad, None).is_err());
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("2g").unwrap(), 2 << 30);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert!(parse_size("1Q").is_err());
        assert!(parse_size("99999999999T").is_err());
    }
}
