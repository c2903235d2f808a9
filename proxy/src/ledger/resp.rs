//! A small Redis client: RESP2 over TCP or a unix socket, a pool of idle connections, pipelined
//! commands. The ledger sends two scripts and `SCRIPT LOAD` (and the response cache's shared
//! level `GET`, `PTTL` and `SET`), nothing else; the `redis` crate
//! would bring its own connection manager, a parser framework and a dozen crates for that, and
//! its reconnect and timeout behaviour would still need wrapping to say what the ledger does.
//!
//! A connection whose exchange failed or was cancelled (the caller's timeout dropped the future)
//! is never reused, so no reply can be read by the wrong caller.

use std::sync::Mutex;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufStream};

/// Connections a replica opens at once, over all its clients (one per worker thread): more
/// concurrent calls wait for one (within the caller's timeout), so 10,000 requests in flight do
/// not open 10,000 connections to Redis. Each is kept for reuse.
pub const MAX_CONNECTIONS: usize = 64;
/// Largest reply line or bulk string accepted: the ledger's replies are a few numbers; the
/// response cache's shared entries are at most `[cache] shared_max_entry_kib` (≤ 8 MiB).
const MAX_REPLY_BYTES: u64 = 9 << 20;
/// Largest reply array accepted.
const MAX_ARRAY: usize = 1024;

/// One RESP2 reply. Nested arrays are refused: no ledger script returns one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum RespError {
    #[error("redis I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("redis protocol: {0}")]
    Protocol(String),
    #[error("redis: {0}")]
    Server(String),
}

/// Where the server listens, and how to log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub addr: Addr,
    /// `AUTH [user] password`, sent on every new connection.
    pub auth: Option<(Option<String>, String)>,
    /// `SELECT db`, sent on every new connection when not 0.
    pub db: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    Tcp(String),
    Unix(std::path::PathBuf),
}

impl Target {
    /// `redis://[[user]:password@]host[:port][/db]` or `unix:///path/to/socket`. The URL may hold
    /// a password: errors never repeat it.
    pub fn parse(url: &str) -> Result<Self, String> {
        if let Some(path) = url.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err("a unix:// URL needs an absolute socket path".into());
            }
            return Ok(Self { addr: Addr::Unix(path.into()), auth: None, db: 0 });
        }
        let rest =
            url.strip_prefix("redis://").ok_or("the URL must start with redis:// or unix://")?;
        let (authority, db) = match rest.split_once('/') {
            Some((authority, "")) => (authority, 0),
            Some((authority, db)) => {
                (authority, db.parse().map_err(|_| "the database after `/` must be a number")?)
            }
            None => (rest, 0),
        };
        let (auth, host) = match authority.rsplit_once('@') {
            Some((userinfo, host)) => {
                let (user, password) = userinfo.split_once(':').unwrap_or(("", userinfo));
                let user = (!user.is_empty()).then(|| user.to_string());
                (Some((user, password.to_string())), host)
            }
            None => (None, authority),
        };
        if host.is_empty() {
            return Err("the URL names no host".into());
        }
        let host = if host.rsplit_once(':').is_some_and(|(_, port)| port.parse::<u16>().is_ok()) {
            host.to_string()
        } else {
            format!("{host}:6379")
        };
        Ok(Self { addr: Addr::Tcp(host), auth, db })
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

type Conn = BufStream<Box<dyn Stream>>;

/// A pooled client for one server.
pub struct Client {
    target: Target,
    idle: Mutex<Vec<Conn>>,
    /// Connections kept for reuse, at most.
    max_idle: usize,
    /// One permit per connection in use.
    permits: tokio::sync::Semaphore,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The target may hold a password.
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

/// Commands as they go on the wire (RESP arrays of bulk strings), one after another in one
/// buffer: no vector per argument, numbers written without a string.
#[derive(Debug, Default)]
pub struct Commands {
    bytes: Vec<u8>,
    count: usize,
}

impl Commands {
    /// `commands`, each a list of arguments, encoded.
    pub fn of(commands: &[Vec<Vec<u8>>]) -> Self {
        let mut encoded = Self::default();
        for args in commands {
            encoded.command(args.len());
            for arg in args {
                encoded.arg(arg);
            }
        }
        encoded
    }

    /// Starts a command of `args` arguments; the caller then adds exactly that many.
    pub fn command(&mut self, args: usize) -> &mut Self {
        self.count += 1;
        self.bytes.push(b'*');
        push_decimal(&mut self.bytes, args as u64);
        self.bytes.extend_from_slice(b"\r\n");
        self
    }

    /// One argument.
    pub fn arg(&mut self, arg: &[u8]) -> &mut Self {
        self.bytes.push(b'$');
        push_decimal(&mut self.bytes, arg.len() as u64);
        self.bytes.extend_from_slice(b"\r\n");
        self.bytes.extend_from_slice(arg);
        self.bytes.extend_from_slice(b"\r\n");
        self
    }

    /// One argument: `n` in decimal.
    pub fn int(&mut self, n: i64) -> &mut Self {
        let mut buf = [0u8; 21];
        let mut start = decimal(&mut buf, n.unsigned_abs());
        if n < 0 {
            start -= 1;
            buf[start] = b'-';
        }
        self.arg(&buf[start..])
    }

    /// Commands written so far.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether none was written.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// Writes `n` in decimal at the end of `buf`; returns where its digits start.
fn decimal(buf: &mut [u8], mut n: u64) -> usize {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return i;
        }
    }
}

fn push_decimal(out: &mut Vec<u8>, n: u64) {
    let mut buf = [0u8; 20];
    let start = decimal(&mut buf, n);
    out.extend_from_slice(&buf[start..]);
}

impl Client {
    /// A client that opens at most `max_connections` (at least one) at once.
    pub fn new(target: Target, max_connections: usize) -> Self {
        let max_connections = max_connections.max(1);
        Self {
            target,
            idle: Mutex::new(Vec::new()),
            max_idle: max_connections,
            permits: tokio::sync::Semaphore::new(max_connections),
        }
    }

    /// Sends `commands` in one write and reads their replies (one round trip). A pooled
    /// connection that fails before any reply arrived (the server restarted, or closed it when
    /// idle) is replaced by a new one once.
    pub async fn pipeline(&self, commands: &[Vec<Vec<u8>>]) -> Result<Vec<Reply>, RespError> {
        self.send(&Commands::of(commands)).await
    }

    /// [`Client::pipeline`] of commands already encoded.
    pub async fn send(&self, commands: &Commands) -> Result<Vec<Reply>, RespError> {
        // The semaphore is never closed.
        let _permit = self.permits.acquire().await.map_err(|_| protocol("client closed"))?;
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let (mut conn, reused) = match pooled {
            Some(conn) => (conn, true),
            None => (self.connect().await?, false),
        };
        let replies = match exchange(&mut conn, commands).await {
            Err(RespError::Io(_)) if reused => {
                conn = self.connect().await?;
                exchange(&mut conn, commands).await?
            }
            other => other?,
        };
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
        Ok(replies)
    }

    async fn connect(&self) -> Result<Conn, RespError> {
        let stream: Box<dyn Stream> = match &self.target.addr {
            Addr::Tcp(addr) => {
                let tcp = tokio::net::TcpStream::connect(addr).await?;
                tcp.set_nodelay(true)?;
                Box::new(tcp)
            }
            Addr::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await?),
        };
        let mut conn = BufStream::new(stream);
        let mut hello = Vec::new();
        if let Some((user, password)) = &self.target.auth {
            let mut auth = vec![b"AUTH".to_vec()];
            auth.extend(user.iter().map(|u| u.as_bytes().to_vec()));
            auth.push(password.as_bytes().to_vec());
            hello.push(auth);
        }
        if self.target.db != 0 {
            hello.push(vec![b"SELECT".to_vec(), self.target.db.to_string().into_bytes()]);
        }
        for reply in exchange(&mut conn, &Commands::of(&hello)).await? {
            if let Reply::Error(e) = reply {
                // The server's words (`WRONGPASS ...`), never the password.
                return Err(RespError::Server(e));
            }
        }
        Ok(conn)
    }
}

async fn exchange(conn: &mut Conn, commands: &Commands) -> Result<Vec<Reply>, RespError> {
    if commands.is_empty() {
        return Ok(Vec::new());
    }
    conn.write_all(&commands.bytes).await?;
    conn.flush().await?;
    let mut replies = Vec::with_capacity(commands.len());
    let mut line = Vec::new();
    for _ in 0..commands.len() {
        replies.push(read_reply(conn, &mut line, 0).await?);
    }
    Ok(replies)
}

/// Most nested arrays in a reply: a batch script answers an array of arrays.
const MAX_DEPTH: u8 = 2;

/// One reply; `depth` is how many arrays it is inside. `line` is a buffer for its lines.
async fn read_reply(conn: &mut Conn, line: &mut Vec<u8>, depth: u8) -> Result<Reply, RespError> {
    read_line(conn, line).await?;
    match line.split_first() {
        Some((b'*', rest)) if depth < MAX_DEPTH => match number(rest)? {
            -1 => Ok(Reply::Array(None)),
            n if n < 0 || n as usize > MAX_ARRAY => Err(protocol("array length")),
            n => {
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    // Only an array inside costs a boxed future; the ledger's items are numbers.
                    let item = if conn.fill_buf().await?.first() == Some(&b'*') {
                        Box::pin(read_reply(conn, line, depth + 1)).await?
                    } else {
                        read_line(conn, line).await?;
                        scalar(conn, line).await?
                    };
                    items.push(item);
                }
                Ok(Reply::Array(Some(items)))
            }
        },
        _ => scalar(conn, line).await,
    }
}

/// The reply that the line just read (`line`) begins, unless it is an array.
async fn scalar(conn: &mut Conn, line: &[u8]) -> Result<Reply, RespError> {
    let (kind, rest) = line.split_first().ok_or_else(|| protocol("empty reply line"))?;
    // Lengths and integers are checked by `number`; only status and error text is kept as text.
    let text = || {
        std::str::from_utf8(rest)
            .map(str::to_string)
            .map_err(|_| protocol("reply line is not UTF-8"))
    };
    Ok(match kind {
        b'+' => Reply::Status(text()?),
        b'-' => Reply::Error(text()?),
        b':' => Reply::Int(number(rest)?),
        b'$' => match number(rest)? {
            -1 => Reply::Bulk(None),
            n if n < 0 || n as u64 > MAX_REPLY_BYTES => return Err(protocol("bulk length")),
            n => {
                let mut data = vec![0; n as usize + 2];
                conn.read_exact(&mut data).await?;
                data.truncate(n as usize);
                Reply::Bulk(Some(data))
            }
        },
        _ => return Err(protocol("unexpected reply type")),
    })
}

/// A length or integer reply's digits.
fn number(digits: &[u8]) -> Result<i64, RespError> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| protocol("bad length or integer"))
}

/// Reads one reply line into `line`, without its `\r\n`.
async fn read_line(conn: &mut Conn, line: &mut Vec<u8>) -> Result<(), RespError> {
    line.clear();
    (&mut *conn).take(MAX_REPLY_BYTES).read_until(b'\n', line).await?;
    if line.is_empty() {
        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
    }
    if !line.ends_with(b"\r\n") {
        return Err(protocol("reply line not terminated"));
    }
    line.truncate(line.len() - 2);
    Ok(())
}

fn protocol(what: &str) -> RespError {
    RespError::Protocol(what.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_written_as_resp_arrays_of_bulk_strings() {
        let mut c = Commands::default();
        c.command(4).arg(b"SET").arg(b"").int(-1).int(0);
        c.command(2).int(i64::MAX).int(i64::MIN);
        let expected = "*4\r\n$3\r\nSET\r\n$0\r\n\r\n$2\r\n-1\r\n$1\r\n0\r\n\
                        *2\r\n$19\r\n9223372036854775807\r\n$20\r\n-9223372036854775808\r\n";
        assert_eq!(String::from_utf8_lossy(&c.bytes), expected);
        assert_eq!(c.len(), 2);
    }

    /// Replies read from `wire`, `count` of them (or the first error).
    async fn replies(wire: &[u8], count: usize) -> Result<Vec<Reply>, RespError> {
        let (client, mut server) = tokio::io::duplex(1 << 16);
        server.write_all(wire).await.unwrap();
        drop(server);
        let mut conn: Conn = BufStream::new(Box::new(client));
        let mut line = Vec::new();
        let mut out = Vec::new();
        for _ in 0..count {
            out.push(read_reply(&mut conn, &mut line, 0).await?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn replies_of_every_kind_are_read_in_order() {
        let wire = b"+OK\r\n-ERR no\r\n:-7\r\n$3\r\nabc\r\n$-1\r\n*-1\r\n\
                     *3\r\n:1\r\n*2\r\n$0\r\n\r\n:2\r\n+x\r\n";
        let got = replies(wire, 7).await.unwrap();
        let expected = [
            Reply::Status("OK".into()),
            Reply::Error("ERR no".into()),
            Reply::Int(-7),
            Reply::Bulk(Some(b"abc".to_vec())),
            Reply::Bulk(None),
            Reply::Array(None),
            Reply::Array(Some(vec![
                Reply::Int(1),
                Reply::Array(Some(vec![Reply::Bulk(Some(Vec::new())), Reply::Int(2)])),
                Reply::Status("x".into()),
            ])),
        ];
        assert_eq!(got, expected);
    }

    #[tokio::test]
    async fn malformed_replies_are_refused() {
        for wire in [
            &b"*1\r\n*1\r\n*1\r\n:1\r\n"[..], // nested deeper than any script answers
            b":12x\r\n",
            b"$-2\r\n",
            b"*2000\r\n",
            b"?what\r\n",
            b":1\n",
            b"+\xff\r\n",
            b"*2\r\n:1\r\n", // cut short
        ] {
            assert!(replies(wire, 1).await.is_err(), "{:?}", String::from_utf8_lossy(wire));
        }
    }

    #[test]
    fn urls_name_a_socket_or_a_host() {
        let unix = Target::parse("unix:///run/redis.sock").unwrap();
        assert_eq!(unix.addr, Addr::Unix("/run/redis.sock".into()));
        let plain = Target::parse("redis://cache").unwrap();
        assert_eq!((plain.addr, plain.auth, plain.db), (Addr::Tcp("cache:6379".into()), None, 0));
        let full = Target::parse("redis://app:s3cret@10.0.0.5:6380/2").unwrap();
        assert_eq!(full.addr, Addr::Tcp("10.0.0.5:6380".into()));
        assert_eq!(full.auth, Some((Some("app".into()), "s3cret".into())));
        assert_eq!(full.db, 2);
        let password_only = Target::parse("redis://:pw@h:1/").unwrap();
        assert_eq!(password_only.auth, Some((None, "pw".into())));
    }

    #[test]
    fn bad_urls_say_why_without_the_password() {
        for url in ["http://h", "redis://", "redis://:hunter2@", "unix://rel", "redis://h/x"] {
            let err = Target::parse(url).unwrap_err();
            assert!(!err.contains("hunter2"), "{url}: {err}");
        }
    }
}
