//! Capabilities (capabilities(7)) and no_new_privs. Securebits are locked first (that needs
//! CAP_SETPCAP), then the bounding set is cleared, then every other set; all are read back.

use caps::CapSet;

use super::status::StepError;

// <linux/securebits.h>: no root privilege on exec, no capability fix-up on uid change, no
// keeping capabilities, no ambient raise; each with its lock bit.
const SECURE_ALL_BITS_AND_LOCKS: libc::c_ulong = 0x3f | 0xc0;

pub fn drop_all() -> Result<(), StepError> {
    // SAFETY: prctl with integer arguments only; no memory is passed.
    let rc = unsafe { libc::prctl(libc::PR_SET_SECUREBITS, SECURE_ALL_BITS_AND_LOCKS, 0, 0, 0) };
    if rc != 0 {
        return Err(StepError::new("caps.securebits", nix::errno::Errno::last(), "PR_SET_SECUREBITS"));
    }
    fn fail(set: &'static str) -> impl Fn(caps::errors::CapsError) -> StepError {
        move |e| StepError::check("caps.clear", format!("{set}: {e}"))
    }
    caps::clear(None, CapSet::Bounding).map_err(fail("bounding"))?;
    caps::clear(None, CapSet::Ambient).map_err(fail("ambient"))?;
    caps::clear(None, CapSet::Inheritable).map_err(fail("inheritable"))?;
    caps::clear(None, CapSet::Effective).map_err(fail("effective"))?;
    caps::clear(None, CapSet::Permitted).map_err(fail("permitted"))?;
    for set in [CapSet::Bounding, CapSet::Ambient, CapSet::Inheritable, CapSet::Effective, CapSet::Permitted] {
        let left = caps::read(None, set).map_err(|e| StepError::check("caps.verify", e.to_string()))?;
        if !left.is_empty() {
            return Err(StepError::check("caps.verify", format!("{set:?} still holds {left:?}")));
        }
    }
    // SAFETY: as above.
    let bits = unsafe { libc::prctl(libc::PR_GET_SECUREBITS, 0, 0, 0, 0) };
    if bits < 0 || (bits as libc::c_ulong & SECURE_ALL_BITS_AND_LOCKS) != SECURE_ALL_BITS_AND_LOCKS {
        return Err(StepError::check("caps.verify", format!("securebits read back as {bits:#x}")));
    }
    Ok(())
}

/// prctl(PR_SET_NO_NEW_PRIVS): execve can never grant privileges again (setuid binaries, file
/// capabilities); required for unprivileged seccomp and Landlock.
pub fn set_no_new_privs() -> Result<(), StepError> {
    nix::sys::prctl::set_no_new_privs().map_err(|e| StepError::new("no_new_privs", e, "PR_SET_NO_NEW_PRIVS"))?;
    match nix::sys::prctl::get_no_new_privs() {
        Ok(true) => Ok(()),
        _ => Err(StepError::check("no_new_privs", "did not read back as set")),
    }
}
