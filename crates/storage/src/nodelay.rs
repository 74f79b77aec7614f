//! `TCP_NODELAY` on PostgreSQL connections.
//!
//! sqlx 0.9.0 stopped setting `TCP_NODELAY` on its TCP sockets
//! (transact-rs/sqlx#4335; the fix, #4336, is merged but not released).
//! Without it, a statement larger than the socket's send buffer leaves in
//! two writes and the second waits for the server's delayed ACK: ~40 ms per
//! bulk statement (measured: 50 GitHub commits took 90 ms over TCP instead
//! of 5 ms over the Unix socket). libpq always sets the option.
//!
//! sqlx gives no access to its socket, so after each new connection we set
//! the option on every TCP socket of this process whose peer port is the
//! database's port (database connections; any other socket to that port
//! only gains the option too, which is harmless). Written by hand because no crate offers it;
//! remove once a sqlx release sets the option itself.

/// Set `TCP_NODELAY` on this process's TCP sockets connected to
/// `peer_port`. Returns how many sockets were set. Linux only (elsewhere a
/// no-op returning 0).
#[cfg(target_os = "linux")]
pub(crate) fn set_for_peer_port(peer_port: u16) -> usize {
    use std::os::fd::{BorrowedFd, RawFd};

    let dir = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir,
        Err(error) => {
            tracing::warn!(%error, "cannot list /proc/self/fd: TCP_NODELAY not set on database sockets");
            return 0;
        }
    };
    let mut set = 0;
    for entry in dir.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<RawFd>().ok())
        else {
            continue;
        };
        let is_socket = std::fs::read_link(entry.path())
            .map(|target| target.to_string_lossy().starts_with("socket:"))
            .unwrap_or(false);
        if !is_socket {
            continue;
        }
        // SAFETY: `fd` was open when listed and is only used for
        // getsockopt/getpeername/setsockopt, which never touch memory we
        // own. Should another thread close it meanwhile, the calls fail
        // with EBADF (ignored); should the number be reused at once, the
        // peer-port check below applies to the new socket, and enabling
        // TCP_NODELAY on a socket to the database is what we want anyway.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let sock = socket2::SockRef::from(&fd);
        let is_tcp_to_peer = sock.r#type().ok() == Some(socket2::Type::STREAM)
            && sock
                .peer_addr()
                .ok()
                .and_then(|a| a.as_socket())
                .is_some_and(|a| a.port() == peer_port);
        if is_tcp_to_peer
            && sock.tcp_nodelay().ok() == Some(false)
            && sock.set_tcp_nodelay(true).is_ok()
        {
            set += 1;
        }
    }
    set
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn set_for_peer_port(_peer_port: u16) -> usize {
    0
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn sets_nodelay_on_sockets_to_the_port_only() -> std::io::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let other = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let to_db = TcpStream::connect(listener.local_addr()?)?;
        let to_other = TcpStream::connect(other.local_addr()?)?;
        assert!(!to_db.nodelay()?);
        assert_eq!(super::set_for_peer_port(port), 1);
        assert!(to_db.nodelay()?);
        assert!(!to_other.nodelay()?);
        // Already set: nothing more to do.
        assert_eq!(super::set_for_peer_port(port), 0);
        Ok(())
    }
}
