//! Seccomp rule sets as data (`policies/seccomp-*.toml`): every allowed syscall carries a
//! comment, unknown names are load errors, and the default action is always "kill".
//!
//! seccompiler gives each filter one match action, so a rule set compiles to a stack of
//! filters; the kernel applies the most restrictive verdict of all (seccomp(2), "If multiple
//! filters exist, ... the action with the highest precedence"):
//! 1. allow-by-default, answering EPERM for the `eperm` rules;
//! 2. allow-by-default, answering ENOSYS for the `enosys` rules (clone3, so glibc falls back
//!    to clone, whose flags a filter can inspect);
//! 3. kill-by-default, allowing every syscall some rule names with a non-kill action.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule, TargetArch,
};
use serde::Deserialize;

use super::syscalls;

#[derive(Debug, thiserror::Error)]
pub enum SeccompPolicyError {
    #[error("seccomp rules {file}: {source}")]
    Parse { file: String, source: toml::de::Error },
    #[error("seccomp rules {file} (built-in, JSON-encoded): {source}")]
    ParseJson { file: String, source: serde_json::Error },
    #[error("seccomp rules {file}: unknown syscall {name:?}")]
    UnknownSyscall { file: String, name: String },
    #[error("seccomp rules {file}: rule for {name} needs a comment saying why it is there")]
    MissingComment { file: String, name: String },
    #[error("seccomp rules {file}: {what}")]
    Invalid { file: String, what: String },
    #[error("seccomp compile: {0}")]
    Compile(String),
    #[error("seccomp filters are only built for x86_64 so far; this is {0}")]
    UnsupportedArch(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Eperm,
    Enosys,
    /// Documents a deliberate kill; the same as not listing the syscall.
    Kill,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Eq,
    Ne,
    MaskedEq,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arg {
    pub index: u8,
    /// 32 compares only the low half, as the kernel does for `unsigned int` arguments such as
    /// ioctl's cmd (a 64-bit compare can be dodged with high bits set, CVE-2017-5226).
    pub width: u8,
    pub op: Op,
    pub value: u64,
    #[serde(default)]
    pub mask: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub syscall: String,
    pub action: Action,
    pub comment: String,
    #[serde(default)]
    pub args: Vec<Arg>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    default: String,
    rule: Vec<Rule>,
}

#[derive(Debug, Clone)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
}

impl RuleSet {
    /// A rule set from its TOML text (policy files).
    pub fn parse(file: &str, text: &str) -> Result<RuleSet, SeccompPolicyError> {
        let f: File = toml::from_str(text).map_err(|source| SeccompPolicyError::Parse { file: file.into(), source })?;
        Self::validate(file, f)
    }

    /// A built-in rule set from the JSON that build.rs made of its TOML: the same types and
    /// checks, ~8x faster to parse on every run.
    pub fn parse_json(file: &str, text: &str) -> Result<RuleSet, SeccompPolicyError> {
        let f: File =
            serde_json::from_str(text).map_err(|source| SeccompPolicyError::ParseJson { file: file.into(), source })?;
        Self::validate(file, f)
    }

    fn validate(file: &str, f: File) -> Result<RuleSet, SeccompPolicyError> {
        let invalid = |what: String| SeccompPolicyError::Invalid { file: file.into(), what };
        if f.default != "kill" {
            return Err(invalid(format!("default must be \"kill\", not {:?}", f.default)));
        }
        for r in &f.rule {
            if syscalls::number(&r.syscall).is_none() {
                return Err(SeccompPolicyError::UnknownSyscall { file: file.into(), name: r.syscall.clone() });
            }
            if r.comment.trim().len() < 8 {
                return Err(SeccompPolicyError::MissingComment { file: file.into(), name: r.syscall.clone() });
            }
            for a in &r.args {
                if a.index > 5 || !(a.width == 32 || a.width == 64) {
                    return Err(invalid(format!("{}: arg index 0..5 and width 32|64", r.syscall)));
                }
                if (a.op == Op::MaskedEq) != a.mask.is_some() {
                    return Err(invalid(format!("{}: mask goes with op = masked_eq only", r.syscall)));
                }
            }
        }
        Ok(RuleSet { rules: f.rule })
    }

    /// Names of the syscalls this set lets through (allow, eperm or enosys), sorted.
    pub fn permitted_names(&self) -> Vec<String> {
        let mut v: Vec<String> =
            self.rules.iter().filter(|r| r.action == Action::Allow).map(|r| r.syscall.clone()).collect();
        v.sort();
        v.dedup();
        v
    }

    /// The action a rule set gives a syscall with no argument conditions.
    #[cfg(test)]
    pub fn action_of(&self, name: &str) -> Action {
        self.rules
            .iter()
            .filter(|r| r.syscall == name)
            .map(|r| r.action)
            .min_by_key(|a| match a {
                Action::Kill => 0,
                Action::Eperm => 1,
                Action::Enosys => 2,
                Action::Allow => 3,
            })
            .unwrap_or(Action::Kill)
    }

    /// Compiles to the filter stack described in the module doc, in install order.
    pub fn compile(&self) -> Result<Vec<BpfProgram>, SeccompPolicyError> {
        let arch = target_arch()?;
        let (mut passes, mut eperm, mut enosys) = (Chains::default(), Chains::default(), Chains::default());
        for r in self.rules.iter().filter(|r| r.action != Action::Kill) {
            let nr = syscalls::number(&r.syscall).expect("checked at parse");
            passes.add(nr, r)?;
            match r.action {
                Action::Eperm => eperm.add(nr, r)?,
                Action::Enosys => enosys.add(nr, r)?,
                _ => {}
            }
        }
        let build = |chains: Chains, mismatch, matched| -> Result<BpfProgram, SeccompPolicyError> {
            let f = SeccompFilter::new(chains.into_map(), mismatch, matched, arch)
                .map_err(|e| SeccompPolicyError::Compile(e.to_string()))?;
            BpfProgram::try_from(f).map_err(|e| SeccompPolicyError::Compile(e.to_string()))
        };
        // The kill-by-default filter goes last: once it is in, `seccomp` itself may be denied
        // (phase 2), and the order of a stack does not change its verdicts.
        let mut stack = Vec::new();
        if !eperm.0.is_empty() {
            stack.push(build(eperm, SeccompAction::Allow, SeccompAction::Errno(libc::EPERM as u32))?);
        }
        if !enosys.0.is_empty() {
            stack.push(build(enosys, SeccompAction::Allow, SeccompAction::Errno(libc::ENOSYS as u32))?);
        }
        stack.push(build(passes, SeccompAction::KillProcess, SeccompAction::Allow)?);
        Ok(stack)
    }
}

/// Per syscall: `None` matches whatever the arguments (seccompiler's empty rule list),
/// `Some(rules)` matches when any rule's conditions all hold.
#[derive(Default)]
struct Chains(BTreeMap<i64, Option<Vec<SeccompRule>>>);

impl Chains {
    fn add(&mut self, nr: i64, r: &Rule) -> Result<(), SeccompPolicyError> {
        let slot = self.0.entry(nr).or_insert_with(|| Some(Vec::new()));
        match (slot.as_mut(), r.args.is_empty()) {
            (_, true) => *slot = None,
            (Some(rules), false) => rules.push(to_rule(r)?),
            (None, false) => {}
        }
        Ok(())
    }

    fn into_map(self) -> BTreeMap<i64, Vec<SeccompRule>> {
        self.0.into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect()
    }
}

fn to_rule(r: &Rule) -> Result<SeccompRule, SeccompPolicyError> {
    let conds = r
        .args
        .iter()
        .map(|a| {
            let len = if a.width == 32 { SeccompCmpArgLen::Dword } else { SeccompCmpArgLen::Qword };
            let op = match a.op {
                Op::Eq => SeccompCmpOp::Eq,
                Op::Ne => SeccompCmpOp::Ne,
                Op::MaskedEq => SeccompCmpOp::MaskedEq(a.mask.unwrap_or(0)),
            };
            SeccompCondition::new(a.index, len, op, a.value)
                .map_err(|e| SeccompPolicyError::Compile(format!("{}: {e}", r.syscall)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    SeccompRule::new(conds).map_err(|e| SeccompPolicyError::Compile(format!("{}: {e}", r.syscall)))
}

fn target_arch() -> Result<TargetArch, SeccompPolicyError> {
    if cfg!(target_arch = "x86_64") {
        Ok(TargetArch::x86_64)
    } else {
        Err(SeccompPolicyError::UnsupportedArch(std::env::consts::ARCH))
    }
}

/// Packs a filter as the kernel's `struct sock_filter` array (8 bytes each, native endian),
/// the form the Python loader hands to seccomp(2) for phase 2.
pub fn to_bytes(prog: &BpfProgram) -> Vec<u8> {
    let mut out = Vec::with_capacity(prog.len() * 8);
    for ins in prog {
        out.extend_from_slice(&ins.code.to_ne_bytes());
        out.push(ins.jt);
        out.push(ins.jf);
        out.extend_from_slice(&ins.k.to_ne_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_syscall_names_are_rejected() {
        let t = "default = \"kill\"\n[[rule]]\nsyscall = \"reed\"\naction = \"allow\"\ncomment = \"a typo here\"\n";
        assert!(matches!(RuleSet::parse("t", t), Err(SeccompPolicyError::UnknownSyscall { .. })));
    }

    #[test]
    fn rules_without_a_reason_are_rejected() {
        let t = "default = \"kill\"\n[[rule]]\nsyscall = \"read\"\naction = \"allow\"\ncomment = \"\"\n";
        assert!(matches!(RuleSet::parse("t", t), Err(SeccompPolicyError::MissingComment { .. })));
    }

    #[test]
    fn a_default_other_than_kill_is_rejected() {
        let t = "default = \"allow\"\n[[rule]]\nsyscall = \"read\"\naction = \"allow\"\ncomment = \"reads pipes\"\n";
        assert!(RuleSet::parse("t", t).is_err());
    }

    #[test]
    fn built_in_json_rules_equal_the_toml_rules_they_were_made_from() {
        use super::super::{DEFAULT_PHASE1, DEFAULT_PHASE1_JSON, DEFAULT_PHASE2, DEFAULT_PHASE2_JSON};
        for (toml_text, json_text) in [(DEFAULT_PHASE1, DEFAULT_PHASE1_JSON), (DEFAULT_PHASE2, DEFAULT_PHASE2_JSON)] {
            let (a, b) = (RuleSet::parse("toml", toml_text).unwrap(), RuleSet::parse_json("json", json_text).unwrap());
            assert_eq!(format!("{:?}", a.rules), format!("{:?}", b.rules));
            assert_eq!(a.compile().unwrap(), b.compile().unwrap());
        }
    }

    #[test]
    fn json_rules_get_the_same_checks() {
        let unknown = r#"{"default": "kill", "rule": [{"syscall": "nosuchcall", "action": "allow", "comment": "a reason here"}]}"#;
        assert!(matches!(RuleSet::parse_json("t", unknown), Err(SeccompPolicyError::UnknownSyscall { .. })));
        let extra = r#"{"default": "kill", "rule": [], "surprise": 1}"#;
        assert!(matches!(RuleSet::parse_json("t", extra), Err(SeccompPolicyError::ParseJson { .. })));
        let allow = r#"{"default": "allow", "rule": []}"#;
        assert!(matches!(RuleSet::parse_json("t", allow), Err(SeccompPolicyError::Invalid { .. })));
    }

    #[test]
    fn default_phases_deny_the_kernel_attack_surface() {
        for (name, text) in [("phase1", super::super::DEFAULT_PHASE1), ("phase2", super::super::DEFAULT_PHASE2)] {
            let set = RuleSet::parse(name, text).unwrap();
            for sc in [
                "io_uring_setup",
                "io_uring_enter",
                "bpf",
                "ptrace",
                "process_vm_readv",
                "process_vm_writev",
                "userfaultfd",
                "perf_event_open",
                "keyctl",
                "add_key",
                "request_key",
                "mount",
                "umount2",
                "pivot_root",
                "unshare",
                "setns",
                "kexec_load",
                "init_module",
                "finit_module",
                "open_by_handle_at",
                "personality",
                "fsopen",
                "move_mount",
                "open_tree",
            ] {
                assert_eq!(set.action_of(sc), Action::Kill, "{name} must not permit {sc}");
            }
            assert_eq!(set.action_of("clone3"), Action::Enosys, "{name}: clone3 must answer ENOSYS");
        }
        let p2 = RuleSet::parse("p2", super::super::DEFAULT_PHASE2).unwrap();
        for sc in ["execve", "execveat", "socket", "connect", "vfork", "fork"] {
            assert_ne!(p2.action_of(sc), Action::Allow, "phase 2 must not allow {sc}");
        }
    }
}
