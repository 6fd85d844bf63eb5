//! Finding the interpreter to run inside the sandbox, before confining: which file to
//! execve, which host directories it needs (its prefix, its venv) and its ELF loader (the
//! one other file Landlock lets the sandbox execute).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::exit::Failure;

#[derive(Debug, Clone)]
pub struct Runtime {
    /// What to execve (absolute; a venv's `bin/python` symlink stays as is, so Python finds
    /// its `pyvenv.cfg`).
    pub exe: PathBuf,
    /// The real ELF file behind it.
    pub canonical: PathBuf,
    /// Directories to show read-only: the venv and the interpreter's prefix.
    pub roots: Vec<PathBuf>,
    pub elf_interp: PathBuf,
    pub source: &'static str,
}

pub fn resolve(cli: Option<&Path>) -> Result<Runtime, Failure> {
    let (path, source) = if let Some(p) = cli {
        (p.to_path_buf(), "--python")
    } else if let Some(p) = std::env::var_os("SANDLOAD_PYTHON").filter(|v| !v.is_empty()) {
        (PathBuf::from(p), "$SANDLOAD_PYTHON")
    } else if let Some(p) = checkout_venv() {
        (p, "the checkout's .venv")
    } else {
        (python_on_path()?, "python3 on PATH")
    };
    let exe = std::path::absolute(&path).map_err(|e| Failure::usage(format!("interpreter {}: {e}", path.display())))?;
    // Resolve the directories (a symlinked venv must appear at its real place inside the view)
    // but keep the file name: Python finds pyvenv.cfg from the path it was started by.
    let exe = match (exe.parent().map(Path::canonicalize), exe.file_name()) {
        (Some(Ok(dir)), Some(name)) => dir.join(name),
        _ => exe,
    };
    let canonical = exe.canonicalize().map_err(|e| {
        Failure::usage(format!(
            "interpreter {} (from {source}) not found: {e}; run scripts/setup-python.sh or pass --python",
            exe.display()
        ))
    })?;
    let mut roots = Vec::new();
    if let Some(venv) = exe.parent().and_then(Path::parent) {
        if let Ok(cfg) = std::fs::read_to_string(venv.join("pyvenv.cfg")) {
            roots.push(venv.canonicalize().unwrap_or_else(|_| venv.to_path_buf()));
            if let Some(home) =
                cfg.lines().find_map(|l| l.strip_prefix("home").map(|r| r.trim_start_matches([' ', '=']).trim()))
            {
                if let Some(prefix) = Path::new(home).parent() {
                    roots.push(prefix.canonicalize().unwrap_or_else(|_| prefix.to_path_buf()));
                }
            }
        }
    }
    if let Some(prefix) = canonical.parent().and_then(Path::parent) {
        roots.push(prefix.to_path_buf());
    }
    let interp = elf_interp(&canonical).map_err(|e| {
        Failure::usage(format!("interpreter {}: {e} (it must be an ELF executable, not a script)", canonical.display()))
    })?;
    let elf_interp =
        interp.canonicalize().map_err(|e| Failure::usage(format!("ELF loader {}: {e}", interp.display())))?;
    Ok(Runtime { exe, canonical, roots, elf_interp, source })
}

fn checkout_venv() -> Option<PathBuf> {
    // Only when this binary was built from a checkout that has run scripts/setup-python.sh.
    let me = std::env::current_exe().ok()?;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv_python = repo.join(".venv/bin/python");
    (me.starts_with(repo) && venv_python.exists()).then_some(venv_python)
}

/// `python3` on PATH, resolved to the real interpreter. Version-manager shims (pyenv) are
/// scripts that cannot run inside the sandbox, so a script is asked for `sys.executable`.
fn python_on_path() -> Result<PathBuf, Failure> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|d| d.join("python3"))
        .find(|p| p.is_file())
        .ok_or_else(|| Failure::usage("no python3 on PATH; pass --python or set SANDLOAD_PYTHON"))?;
    let head = std::fs::read(&found).map(|b| b.starts_with(b"#!")).unwrap_or(false);
    if !head {
        return Ok(found);
    }
    let mut child = std::process::Command::new(&found)
        .args(["-c", "import sys; print(sys.executable)"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| Failure::usage(format!("{}: {e}", found.display())))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().ok().flatten().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill(); // not a confinement call: a stuck shim outside the sandbox
            return Err(Failure::usage(format!("{} did not answer; pass --python", found.display())));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().map_err(|e| Failure::usage(e.to_string()))?;
    let exe = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if exe.is_empty() {
        return Err(Failure::usage(format!("{} did not report sys.executable; pass --python", found.display())));
    }
    Ok(PathBuf::from(exe))
}

/// Reads PT_INTERP from a 64-bit little-endian ELF file (bounded reads only).
pub fn elf_interp(path: &Path) -> Result<PathBuf, String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut eh = [0u8; 64];
    f.read_exact(&mut eh).map_err(|_| "not an ELF file".to_string())?;
    if &eh[..4] != b"\x7fELF" || eh[4] != 2 || eh[5] != 1 {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let u16at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as u64;
    let u64at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8"));
    let (phoff, phentsize, phnum) = (u64at(&eh, 32), u16at(&eh, 54), u16at(&eh, 56));
    if phentsize < 56 || phnum > 512 {
        return Err("bad program headers".into());
    }
    for i in 0..phnum {
        let mut ph = [0u8; 56];
        f.seek(SeekFrom::Start(phoff + i * phentsize)).map_err(|e| e.to_string())?;
        f.read_exact(&mut ph).map_err(|e| e.to_string())?;
        if u32::from_le_bytes(ph[..4].try_into().expect("4")) == 3 {
            let (off, size) = (u64at(&ph, 8), u64at(&ph, 32));
            if size == 0 || size > 4096 {
                return Err("bad PT_INTERP".into());
            }
            let mut s = vec![0u8; size as usize];
            f.seek(SeekFrom::Start(off)).map_err(|e| e.to_string())?;
            f.read_exact(&mut s).map_err(|e| e.to_string())?;
            let s = s.split(|b| *b == 0).next().unwrap_or_default();
            return Ok(PathBuf::from(String::from_utf8_lossy(s).into_owned()));
        }
    }
    Err("statically linked or no PT_INTERP; only dynamically linked interpreters are supported".into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_elf_loader_of_a_real_binary() {
        let interp = super::elf_interp(std::path::Path::new("/bin/sh")).unwrap();
        assert!(interp.to_string_lossy().contains("ld-linux"), "{interp:?}");
    }
}
