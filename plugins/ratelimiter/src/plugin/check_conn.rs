//! One keep-alive HTTP/1.1 connection to a node that sends `POST /check` the
//! way a load generator does: the request is built from parts parsed and
//! serialised once per node, and the answer is classified exactly as
//! `load::send_check` classifies it. The burst's workers use it, and so does
//! the benchmark's open-loop client.

use super::load::{Outcome, CHECK_TIMEOUT};
use crate::wire::{CheckRequest, CheckResponse};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::{timeout_at, Instant};

/// The body of a check for `key`.
pub fn check_body(key: &str) -> Bytes {
    Bytes::from(
        serde_json::to_vec(&CheckRequest {
            key: key.to_string(),
        })
        .expect("a struct of one string serialises"),
    )
}

/// Connections opened to one node at once, each until the node first
/// answers on it: half the accept backlog of 128 that a tokio listener gets.
/// A full backlog makes Linux drop the handshake's last ACK, and the first
/// request on that connection then waits for the 1 s SYN-ACK retransmission.
pub const OPENING_PER_NODE: usize = 64;

/// How long a worker waits for a connection, as the plugin's HTTP client does
/// (`RateLimiterSubject::create`): a check whose connection fails is not delivered.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);

/// Where and what one node's workers send, parsed and serialised once.
pub struct Target {
    /// `host:port`, connected by name when it did not resolve up front.
    addr: String,
    resolved: Vec<SocketAddr>,
    /// Path and query of `{url}/check`, as reqwest would send them.
    uri: Uri,
    host: HeaderValue,
    body: Bytes,
    /// Connections being opened to the node and not yet answered on.
    pub(crate) opening: Semaphore,
}

impl Target {
    /// `None` unless `url` is a plain `http://` URL, the only kind a node serves:
    /// every check to it is then not delivered.
    pub async fn new(url: &str, body: &Bytes) -> Option<Arc<Target>> {
        let u = reqwest::Url::parse(&format!("{url}/check")).ok()?;
        if u.scheme() != "http" {
            return None;
        }
        let host = u.host_str()?;
        let addr = format!("{host}:{}", u.port_or_known_default()?);
        let path = match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        };
        let host = match u.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        // Resolved once, not per connection; a failure is retried by each connect.
        let resolved =
            match tokio::time::timeout(CHECK_TIMEOUT, tokio::net::lookup_host(&addr)).await {
                Ok(Ok(addrs)) => addrs.collect(),
                _ => Vec::new(),
            };
        Some(Arc::new(Target {
            addr,
            resolved,
            uri: path.parse().ok()?,
            host: HeaderValue::from_str(&host).ok()?,
            body: body.clone(),
            opening: Semaphore::new(OPENING_PER_NODE),
        }))
    }

    /// A check from the pre-built parts: nothing is parsed or serialised per check.
    fn request(&self) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(self.body.clone()));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = self.uri.clone();
        let h = req.headers_mut();
        h.insert(HOST, self.host.clone());
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        req
    }
}

/// One check on the worker's connection, opened (again) first when there is
/// none. Outcomes as in `load::send_check`: never connected is not delivered,
/// sent without a whole answer in time is unknown.
pub async fn check(conn: &mut Option<Conn>, t: &Target) -> (Outcome, Option<u64>) {
    let deadline = Instant::now() + CHECK_TIMEOUT;
    // A kept-alive connection the node has closed fails before the request
    // leaves: the check is then retried once on a new connection.
    for _ in 0..2 {
        let c = match conn {
            Some(c) => c,
            None => match tokio::time::timeout(CONNECT_TIMEOUT, Conn::open(t)).await {
                Ok(Ok(c)) => conn.insert(c),
                Ok(Err(_)) | Err(_) => return (Outcome::NotDelivered, None),
            },
        };
        match timeout_at(deadline, c.exchange(t.request())).await {
            Ok(Ok((status, Some(body)))) => {
                if !c.is_open() {
                    *conn = None;
                }
                return classify(status, Some(&body));
            }
            Ok(Ok((status, None))) => {
                *conn = None;
                return classify(status, None);
            }
            Ok(Err(Exchange::NotSent)) => *conn = None,
            Ok(Err(Exchange::Lost)) | Err(_) => {
                *conn = None;
                return (Outcome::Unknown, None);
            }
        }
    }
    (Outcome::NotDelivered, None)
}

/// The outcome of an answer, decided as `load::send_check` does: a body that is
/// not a check answer makes a 4xx rejected and anything else unknown.
fn classify(status: StatusCode, body: Option<&[u8]>) -> (Outcome, Option<u64>) {
    match body.and_then(|b| serde_json::from_slice::<CheckResponse>(b).ok()) {
        Some(answer) => {
            let outcome = match status.as_u16() {
                200 => Outcome::Allowed,
                429 => Outcome::Denied,
                _ => Outcome::Error,
            };
            (outcome, Some(answer.instance))
        }
        None if status.is_client_error() => (Outcome::Rejected, None),
        None => (Outcome::Unknown, None),
    }
}

/// Why an exchange gave no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exchange {
    /// The request never left: the connection was closed before it was written.
    NotSent,
    /// The request may have reached the node, which may have counted it.
    Lost,
}

type Driver = Connection<TokioIo<TcpStream>, Full<Bytes>>;

/// One keep-alive HTTP/1.1 connection, driven by the worker's own task while
/// it waits on it, which saves a wake-up of a connection task per check.
pub struct Conn {
    send: SendRequest<Full<Bytes>>,
    /// `None` once the connection has ended.
    driver: Option<Pin<Box<Driver>>>,
}

impl Conn {
    /// With TCP_NODELAY: each request is one small write that must not wait
    /// for the ACK of the previous answer.
    pub async fn open(t: &Target) -> std::io::Result<Conn> {
        let tcp = if t.resolved.is_empty() {
            TcpStream::connect(t.addr.as_str()).await?
        } else {
            TcpStream::connect(&t.resolved[..]).await?
        };
        tcp.set_nodelay(true)?;
        let (send, driver) = http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(std::io::Error::other)?;
        Ok(Conn {
            send,
            driver: Some(Box::pin(driver)),
        })
    }

    fn is_open(&self) -> bool {
        self.driver.is_some() && !self.send.is_closed()
    }

    /// Sends `req` and reads the whole answer: its status and, unless reading
    /// it failed, its body.
    async fn exchange(
        &mut self,
        req: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Option<Bytes>), Exchange> {
        let Conn { send, driver } = self;
        let exchange = async {
            send.ready().await.map_err(|_| Exchange::NotSent)?;
            let resp = send.try_send_request(req).await.map_err(|mut e| {
                if e.take_message().is_some() {
                    Exchange::NotSent
                } else {
                    Exchange::Lost
                }
            })?;
            let status = resp.status();
            let body = resp.into_body().collect().await.ok();
            Ok((status, body.map(|b| b.to_bytes())))
        };
        let mut exchange = std::pin::pin!(exchange);
        std::future::poll_fn(|cx| {
            if let Some(d) = driver {
                if d.as_mut().poll(cx).is_ready() {
                    *driver = None;
                }
            }
            exchange.as_mut().poll(cx)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(instance: u64) -> Vec<u8> {
        serde_json::to_vec(&CheckResponse {
            allowed: true,
            current_count: 1,
            remaining: 0,
            limit: 1,
            node: "node-1".into(),
            instance,
            retry_after: None,
            reason: None,
        })
        .unwrap()
    }

    #[test]
    fn answers_are_classified_as_send_check_classifies_them() {
        let code = |c: u16| StatusCode::from_u16(c).unwrap();
        let ok = answer(7);
        assert_eq!(classify(code(200), Some(&ok)), (Outcome::Allowed, Some(7)));
        assert_eq!(classify(code(429), Some(&ok)), (Outcome::Denied, Some(7)));
        assert_eq!(classify(code(503), Some(&ok)), (Outcome::Error, Some(7)));
        // An API error carries an instance too, but is not a check's answer.
        let api_error = br#"{"error":"no limit","node":"node-1","instance":7}"#;
        assert_eq!(
            classify(code(400), Some(api_error)),
            (Outcome::Rejected, None)
        );
        assert_eq!(classify(code(404), None), (Outcome::Rejected, None));
        assert_eq!(classify(code(500), Some(b"oops")), (Outcome::Unknown, None));
        assert_eq!(classify(code(200), Some(b"")), (Outcome::Unknown, None));
        assert_eq!(classify(code(503), None), (Outcome::Unknown, None));
    }

    #[test]
    fn a_node_url_becomes_the_request_reqwest_would_send() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let body = Bytes::from_static(br#"{"key":"k"}"#);
        let t = rt
            .block_on(Target::new("http://127.0.0.1:8001", &body))
            .unwrap();
        assert_eq!(t.addr, "127.0.0.1:8001");
        assert_eq!(t.resolved, vec!["127.0.0.1:8001".parse().unwrap()]);
        let req = t.request();
        assert_eq!(req.method(), Method::POST);
        assert_eq!(req.uri(), "/check");
        assert_eq!(req.headers()[HOST], "127.0.0.1:8001");
        assert_eq!(req.headers()[CONTENT_TYPE], "application/json");
        let t = rt
            .block_on(Target::new("http://127.0.0.1/base", &body))
            .unwrap();
        assert_eq!(
            (t.addr.as_str(), t.uri.path()),
            ("127.0.0.1:80", "/base/check")
        );
        assert_eq!(t.host, "127.0.0.1");
        assert!(rt
            .block_on(Target::new("https://127.0.0.1:8001", &body))
            .is_none());
    }
}
