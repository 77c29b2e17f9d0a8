//! Outbound HTTP for the `http` capability: wasmtime-wasi-http's `wasi:http` types, with the
//! sending done here, behind the plugin's allow-list (`allow_list.rs`).
//!
//! The host resolves, filters and connects itself — the address checked is the address
//! connected to, so a name that resolves (or rebinds) to a private address is refused
//! unless the entry names that address. TLS is rustls with the webpki roots. Redirects are
//! not followed (the guest sees the 3xx). Per invocation: at most `max_requests` requests;
//! per request: `timeout` from connect to the body's last byte and `max_response_bytes` of
//! body. Every request is logged once and counted: plugin, method, host, status, bytes, ms.
//!
//! While a call waits for a response it gives its `max_concurrent` place up ([`CpuSlot`]):
//! that limit is about calls running wasm, not calls waiting on the network.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::host_services::HostServices;
use super::jobs::Job;
use super::secrets::Secrets;
use crate::allow_list::{split_host_port, AllowEntry, AllowList, Target};
use crate::config::PluginHttpConfig;

/// Where one plugin's requests may go, and how much.
#[derive(Debug, Clone)]
pub struct HttpPolicy {
    pub allow: AllowList,
    pub max_requests: u32,
    pub max_response_bytes: u64,
    pub timeout: Duration,
}

impl Default for HttpPolicy {
    fn default() -> Self {
        HttpPolicy::from_config(None).unwrap_or(HttpPolicy {
            allow: AllowList::default(),
            max_requests: 0,
            max_response_bytes: 0,
            timeout: Duration::ZERO,
        })
    }
}

impl HttpPolicy {
    pub fn from_config(table: Option<&PluginHttpConfig>) -> Result<HttpPolicy, String> {
        let defaults = PluginHttpConfig::default();
        let table = table.unwrap_or(&defaults);
        Ok(HttpPolicy {
            allow: AllowList::parse(&table.allow)?,
            max_requests: table.max_requests,
            max_response_bytes: table.max_response_bytes,
            timeout: Duration::from_millis(table.timeout_ms),
        })
    }
}

/// A call's place among the `max_concurrent` calls running wasm, given up while its
/// requests are in flight: released when the first one starts, taken back when the last
/// one has its response. A call never waits for a place while it holds one, so calls
/// cannot deadlock on places; a call waiting for its place back has no request in flight.
pub struct CpuSlot {
    semaphore: Arc<Semaphore>,
    state: Mutex<SlotState>,
}

struct SlotState {
    held: Option<OwnedSemaphorePermit>,
    in_flight: usize,
}

impl CpuSlot {
    pub fn new(semaphore: Arc<Semaphore>, permit: OwnedSemaphorePermit) -> Arc<CpuSlot> {
        Arc::new(CpuSlot {
            semaphore,
            state: Mutex::new(SlotState {
                held: Some(permit),
                in_flight: 0,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A request starts.
    fn request_started(&self) {
        let mut state = self.lock();
        state.in_flight += 1;
        if state.in_flight == 1 {
            drop(state.held.take());
        }
    }

    /// A request has its response (or failed): the last one takes the place back.
    async fn request_answered(&self) {
        {
            let mut state = self.lock();
            state.in_flight = state.in_flight.saturating_sub(1);
            if state.in_flight > 0 || state.held.is_some() {
                return;
            }
        }
        if let Ok(permit) = self.semaphore.clone().acquire_owned().await {
            let mut state = self.lock();
            if state.held.is_none() {
                state.held = Some(permit);
            }
        }
    }

    /// The permit, if held (released with the store).
    pub fn take(&self) -> Option<OwnedSemaphorePermit> {
        self.lock().held.take()
    }
}

/// The `wasi:http` hooks of one call.
pub struct Egress {
    plugin: Arc<str>,
    /// What the log lines must not show (a secret in a URL the plugin built).
    secrets: Arc<Secrets>,
    /// Granted and inside an invocation.
    enabled: bool,
    policy: Arc<HttpPolicy>,
    services: Option<Arc<dyn HostServices>>,
    job: Option<Arc<Job>>,
    cpu: Option<Arc<CpuSlot>>,
    deadline: Instant,
    sent: u32,
}

impl Egress {
    pub fn new(
        plugin: &str,
        secrets: Arc<Secrets>,
        enabled: bool,
        policy: Arc<HttpPolicy>,
        services: Option<Arc<dyn HostServices>>,
        deadline: Instant,
    ) -> Egress {
        Egress {
            plugin: plugin.into(),
            secrets,
            enabled,
            policy,
            services,
            job: None,
            cpu: None,
            deadline,
            sent: 0,
        }
    }

    /// The call these hooks serve: its services, job (cancel), deadline and CPU place.
    pub fn begin(
        &mut self,
        services: Arc<dyn HostServices>,
        job: Option<Arc<Job>>,
        deadline: Instant,
        cpu: Arc<CpuSlot>,
    ) {
        self.services = Some(services);
        self.job = job;
        self.deadline = deadline;
        self.cpu = Some(cpu);
    }

    /// The synchronous checks: grant, count, allow-list. The matching entry, or why not.
    fn admit(&mut self, method: &str, uri: &http::Uri) -> Result<AllowEntry, String> {
        if !self.enabled {
            return Err(format!(
                "capability `http` is not granted to plugin {}",
                self.plugin
            ));
        }
        if self.sent >= self.policy.max_requests {
            return Err(format!(
                "more than {} requests in one call",
                self.policy.max_requests
            ));
        }
        self.sent += 1;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(format!("{method}: only http and https")),
        };
        let authority = uri.authority().ok_or("no host")?;
        let (host, port) = split_host_port(authority.as_str()).ok_or("a bad host or port")?;
        let target = Target {
            https,
            host,
            port: port.unwrap_or(if https { 443 } else { 80 }),
            path: uri.path_and_query().map_or("/", |p| p.as_str()),
        };
        self.policy.allow.check(&target).cloned()
    }
}

impl WasiHttpHooks for Egress {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<WasiBody>,
                        Box<dyn Future<Output = Result<(), Error>> + Send>,
                    ),
                    Error,
                >,
            > + Send,
    > {
        let started = Instant::now();
        let method = request.method().to_string();
        let host = request
            .uri()
            .host()
            .unwrap_or_default()
            .chars()
            .take(255)
            .collect::<String>();
        let record = Record {
            plugin: self.plugin.clone(),
            method,
            host: self.secrets.redact(&host),
            started,
            services: self.services.clone(),
            secrets: self.secrets.clone(),
        };
        let entry = match self.admit(record.method.as_str(), request.uri()) {
            Ok(entry) => entry,
            Err(why) => {
                record.refused(&why);
                return Box::new(async { Err(Error::HttpRequestDenied) });
            }
        };
        let timeout = self
            .policy
            .timeout
            .min(self.deadline.saturating_duration_since(started));
        let limit = self.policy.max_response_bytes;
        let job = self.job.clone();
        let cpu = self.cpu.clone();
        Box::new(async move {
            if let Some(cpu) = &cpu {
                cpu.request_started();
            }
            let deadline = tokio::time::Instant::now() + timeout;
            let exchange = exchange(request, &entry);
            let cancelled = async {
                match &job {
                    Some(job) => job.cancelled().await,
                    None => std::future::pending().await,
                }
            };
            let outcome = tokio::select! {
                outcome = tokio::time::timeout_at(deadline, exchange) => {
                    outcome.unwrap_or(Err(Failure::Error(Error::ConnectionTimeout, "timed out".into())))
                }
                () = cancelled => Err(Failure::Error(Error::ConnectionTerminated, "the command was cancelled".into())),
            };
            if let Some(cpu) = &cpu {
                cpu.request_answered().await;
            }
            match outcome {
                Ok(response) => {
                    let (parts, incoming) = response.into_parts();
                    let status = parts.status.as_u16();
                    if incoming.size_hint().lower() > limit {
                        record.finished(&format!("{status} body over {limit} bytes"), 0);
                        return Err(Error::HttpResponseBodySize(Some(limit)));
                    }
                    let body = Limited {
                        inner: incoming,
                        remaining: limit,
                        limit,
                        deadline: Box::pin(tokio::time::sleep_until(deadline)),
                        read: 0,
                        status,
                        record: Some(record),
                    };
                    let response = http::Response::from_parts(parts, body.boxed_unsync());
                    Ok((
                        response,
                        Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>,
                    ))
                }
                Err(Failure::Denied(why)) => {
                    record.refused(&why);
                    Err(Error::HttpRequestDenied)
                }
                Err(Failure::Error(error, why)) => {
                    record.finished(&why, 0);
                    Err(error)
                }
            }
        })
    }
}

enum Failure {
    Denied(String),
    Error(Error, String),
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// Resolve, filter, connect, (TLS), send, and wait for the response head.
async fn exchange(
    mut request: http::Request<WasiBody>,
    entry: &AllowEntry,
) -> Result<http::Response<hyper::body::Incoming>, Failure> {
    let addresses = resolve(&entry.host, entry.port).await?;
    let allowed: Vec<SocketAddr> = addresses
        .iter()
        .copied()
        .filter(|a| AllowList::check_address(entry, a.ip()).is_ok())
        .collect();
    let Some(first) = addresses.first() else {
        return Err(Failure::Error(
            dns_error("no address"),
            format!("{} has no address", entry.host),
        ));
    };
    if allowed.is_empty() {
        let why = AllowList::check_address(entry, first.ip())
            .err()
            .unwrap_or_default();
        return Err(Failure::Denied(why));
    }
    let mut last = None;
    let mut connected = None;
    for address in allowed {
        match tokio::net::TcpStream::connect(address).await {
            Ok(stream) => {
                connected = Some(stream);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let Some(tcp) = connected else {
        let why = last.map_or_else(|| "cannot connect".to_string(), |e| e.to_string());
        return Err(Failure::Error(Error::ConnectionRefused, why));
    };
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Stream> = if entry.https {
        let name = rustls::pki_types::ServerName::try_from(entry.host.clone())
            .map_err(|e| Failure::Error(Error::TlsProtocolError, e.to_string()))?;
        let tls = tokio_rustls::TlsConnector::from(tls_config())
            .connect(name, tcp)
            .await
            .map_err(|e| {
                let error = if e.to_string().contains("certificate") {
                    Error::TlsCertificateError
                } else {
                    Error::TlsProtocolError
                };
                Failure::Error(error, e.to_string())
            })?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| Failure::Error(Error::from(e), "handshake failed".into()))?;
    // The connection ends when the response body is dropped or read out.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    // wasi:http 0.2 leaves `Host` to the sender (and forbids the guest to set it): name the
    // entry's host, the one the connection and TLS went to.
    let host = match (entry.host.contains(':'), default_port(entry)) {
        (true, true) => format!("[{}]", entry.host),
        (true, false) => format!("[{}]:{}", entry.host, entry.port),
        (false, true) => entry.host.clone(),
        (false, false) => format!("{}:{}", entry.host, entry.port),
    };
    let host = http::HeaderValue::from_str(&host)
        .map_err(|_| Failure::Error(Error::HttpRequestUriInvalid, "a bad host".into()))?;
    request.headers_mut().insert(http::header::HOST, host);
    // Origin form on the wire: the path and query only (the Host header names the host).
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    *request.uri_mut() = http::Uri::try_from(path)
        .map_err(|_| Failure::Error(Error::HttpRequestUriInvalid, "a bad path".into()))?;
    sender
        .send_request(request)
        .await
        .map_err(|e| Failure::Error(Error::from(e), "the exchange failed".into()))
}

fn default_port(entry: &AllowEntry) -> bool {
    entry.port == if entry.https { 443 } else { 80 }
}

async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, Failure> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    tokio::net::lookup_host((host, port))
        .await
        .map(Iterator::collect)
        .map_err(|e| {
            Failure::Error(
                dns_error(&e.to_string()),
                format!("cannot resolve {host}: {e}"),
            )
        })
}

fn dns_error(why: &str) -> Error {
    Error::DnsError {
        rcode: Some(why.chars().take(100).collect()),
        info_code: None,
    }
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("ring supports rustls's default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

/// The one log line and metric of a request.
struct Record {
    plugin: Arc<str>,
    method: String,
    host: String,
    started: Instant,
    services: Option<Arc<dyn HostServices>>,
    secrets: Arc<Secrets>,
}

impl Record {
    fn refused(&self, why: &str) {
        let why = self.secrets.redact(why);
        let why = why.as_str();
        tracing::warn!(
            target: "slashd::plugin::http",
            plugin = &*self.plugin,
            method = self.method.as_str(),
            host = self.host.as_str(),
            reason = why,
            "plugin HTTP request refused"
        );
        if let Some(services) = &self.services {
            services.http_request(&self.plugin, "denied", 0);
        }
    }

    fn finished(&self, status: &str, bytes: u64) {
        let status = self.secrets.redact(status);
        let status = status.as_str();
        let ms = self.started.elapsed().as_millis() as u64;
        tracing::info!(
            target: "slashd::plugin::http",
            plugin = &*self.plugin,
            method = self.method.as_str(),
            host = self.host.as_str(),
            status,
            bytes,
            ms,
            "plugin HTTP request"
        );
        if let Some(services) = &self.services {
            let outcome = status.split(' ').next().unwrap_or("error");
            let outcome = if outcome.parse::<u16>().is_ok() {
                outcome
            } else {
                "error"
            };
            services.http_request(&self.plugin, outcome, bytes);
        }
    }
}

/// A response body cut off at the size limit and the request's deadline, which logs the
/// request when it ends.
struct Limited {
    inner: hyper::body::Incoming,
    remaining: u64,
    limit: u64,
    deadline: Pin<Box<tokio::time::Sleep>>,
    read: u64,
    status: u16,
    record: Option<Record>,
}

impl Limited {
    fn finish(&mut self, note: &str) {
        if let Some(record) = self.record.take() {
            let status = if note.is_empty() {
                self.status.to_string()
            } else {
                format!("{} {note}", self.status)
            };
            record.finished(&status, self.read);
        }
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        self.finish("body not read to the end");
    }
}

impl Body for Limited {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.finish("timed out reading the body");
            return Poll::Ready(Some(Err(Error::ConnectionReadTimeout)));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                this.finish("");
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                this.finish("body failed");
                Poll::Ready(Some(Err(Error::from(e))))
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    this.read = this.read.saturating_add(len);
                    if len > this.remaining {
                        let limit = this.limit;
                        this.finish(&format!("body over {limit} bytes"));
                        return Poll::Ready(Some(Err(Error::HttpResponseBodySize(Some(limit)))));
                    }
                    this.remaining -= len;
                }
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
