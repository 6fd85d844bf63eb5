//! systemd integration without libsystemd: sd_notify(3) datagrams to $NOTIFY_SOCKET and
//! socket activation via $LISTEN_FDS/$LISTEN_PID (sd_listen_fds(3)).

use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixDatagram;

/// Sends one notification (READY=1, STOPPING=1, WATCHDOG=1, STATUS=...). No socket: no-op.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return };
    let Ok(sock) = UnixDatagram::unbound() else { return };
    let p = path.to_string_lossy().to_string();
    let sent = if let Some(name) = p.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .and_then(|a| sock.send_to_addr(state.as_bytes(), &a))
    } else {
        sock.send_to(state.as_bytes(), &p)
    };
    if let Err(e) = sent {
        eprintln!("sandload-serve: sd_notify to {p} failed: {e}");
    }
}

/// The watchdog interval the unit asked for, if any (half of WATCHDOG_USEC, per sd_watchdog_enabled(3)).
pub fn watchdog_interval() -> Option<std::time::Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    Some(std::time::Duration::from_micros(usec / 2))
}

pub enum Passed {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

/// The first socket systemd passed us, if it passed any to this very process.
pub fn listen_fd() -> Option<Passed> {
    let pid: u32 = std::env::var("LISTEN_PID").ok()?.parse().ok()?;
    let n: u32 = std::env::var("LISTEN_FDS").ok()?.parse().ok()?;
    if pid != std::process::id() || n < 1 {
        return None;
    }
    const FD: RawFd = 3;
    let addr = nix::sys::socket::getsockname::<nix::sys::socket::SockaddrStorage>(FD).ok()?;
    // SAFETY: systemd hands fd 3 to this process (LISTEN_PID matched); we take sole ownership.
    let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(FD) };
    Some(if addr.as_unix_addr().is_some() { Passed::Unix(owned.into()) } else { Passed::Tcp(owned.into()) })
}
