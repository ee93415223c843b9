//! Just enough of the PostgreSQL frontend/backend protocol (v3) for this
//! plugin: a trust-authenticated connection over loopback TCP and the simple
//! query protocol, with every value read as text. No dependency to build, and
//! every read and write has a deadline, so `health` never hangs on a server
//! that stopped answering.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A query result: rows of text columns (`None` is SQL NULL).
pub type Rows = Vec<Vec<Option<String>>>;

#[derive(Debug)]
pub enum PgError {
    /// The connection failed (refused, reset, timed out): the server may be down.
    Io(io::Error),
    /// The server answered with an error (its message).
    Server(String),
    /// The server said something this client does not understand.
    Protocol(String),
}

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PgError::Io(e) => write!(f, "{e}"),
            PgError::Server(m) => write!(f, "server error: {m}"),
            PgError::Protocol(m) => write!(f, "protocol error: {m}"),
        }
    }
}

impl From<io::Error> for PgError {
    fn from(e: io::Error) -> Self {
        PgError::Io(e)
    }
}

/// One open session.
pub struct Conn {
    stream: TcpStream,
}

impl Conn {
    /// Connects to `127.0.0.1:port` as `user` to `database` (trust authentication).
    pub fn connect(
        port: u16,
        user: &str,
        database: &str,
        timeout: Duration,
    ) -> Result<Conn, PgError> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        let mut conn = Conn { stream };
        let mut body = Vec::new();
        body.extend_from_slice(&196_608i32.to_be_bytes()); // protocol 3.0
        for (k, v) in [
            ("user", user),
            ("database", database),
            ("application_name", "demo-host"),
        ] {
            body.extend_from_slice(k.as_bytes());
            body.push(0);
            body.extend_from_slice(v.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut msg = ((body.len() + 4) as i32).to_be_bytes().to_vec();
        msg.extend_from_slice(&body);
        conn.stream.write_all(&msg)?;
        loop {
            let (tag, payload) = conn.read_message()?;
            match tag {
                b'R' => {
                    let code = payload
                        .get(..4)
                        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                    if code != Some(0) {
                        return Err(PgError::Protocol(format!(
                            "authentication {code:?} requested; the plugin's servers use trust on loopback"
                        )));
                    }
                }
                b'E' => return Err(PgError::Server(error_message(&payload))),
                b'Z' => return Ok(conn),
                _ => {} // ParameterStatus, BackendKeyData, notices
            }
        }
    }

    /// Runs `sql` (one or more statements) and returns the rows of its results.
    pub fn query(&mut self, sql: &str) -> Result<Rows, PgError> {
        let mut msg = vec![b'Q'];
        msg.extend_from_slice(&((sql.len() + 5) as i32).to_be_bytes());
        msg.extend_from_slice(sql.as_bytes());
        msg.push(0);
        self.stream.write_all(&msg)?;
        let mut rows = Vec::new();
        let mut error = None;
        loop {
            let (tag, payload) = self.read_message()?;
            match tag {
                b'D' => rows.push(data_row(&payload)?),
                b'E' => error = Some(error_message(&payload)),
                b'Z' => break,
                _ => {} // RowDescription, CommandComplete, notices
            }
        }
        match error {
            Some(e) => Err(PgError::Server(e)),
            None => Ok(rows),
        }
    }

    fn read_message(&mut self) -> Result<(u8, Vec<u8>), PgError> {
        let mut head = [0u8; 5];
        self.stream.read_exact(&mut head)?;
        let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]);
        if !(4..=64 * 1024 * 1024).contains(&len) {
            return Err(PgError::Protocol(format!("message length {len}")));
        }
        let mut payload = vec![0u8; len as usize - 4];
        self.stream.read_exact(&mut payload)?;
        Ok((head[0], payload))
    }
}

fn data_row(p: &[u8]) -> Result<Vec<Option<String>>, PgError> {
    let bad = || PgError::Protocol("short data row".into());
    let n = u16::from_be_bytes([*p.first().ok_or_else(bad)?, *p.get(1).ok_or_else(bad)?]);
    let mut at = 2usize;
    let mut row = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let b = p.get(at..at + 4).ok_or_else(bad)?;
        let len = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        at += 4;
        if len < 0 {
            row.push(None);
        } else {
            let v = p.get(at..at + len as usize).ok_or_else(bad)?;
            row.push(Some(String::from_utf8_lossy(v).into_owned()));
            at += len as usize;
        }
    }
    Ok(row)
}

/// The `M` (message) field of an ErrorResponse.
fn error_message(p: &[u8]) -> String {
    p.split(|b| *b == 0)
        .find(|f| f.first() == Some(&b'M'))
        .map(|f| String::from_utf8_lossy(&f[1..]).into_owned())
        .unwrap_or_else(|| "unknown error".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_rows_and_error_messages_parse() {
        // two columns: "42" and NULL
        let mut p = vec![0, 2, 0, 0, 0, 2, b'4', b'2'];
        p.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(data_row(&p).unwrap(), vec![Some("42".into()), None]);
        assert!(data_row(&[0, 1, 0, 0]).is_err());
        let e = b"SERROR\0C42P01\0Mrelation \"x\" does not exist\0\0";
        assert_eq!(error_message(e), "relation \"x\" does not exist");
    }
}
