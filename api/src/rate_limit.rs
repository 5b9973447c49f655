//! Request rate limits (`governor`, in memory per API process): per key for authenticated
//! calls (a token counts against the key it came from), per client IP for the public routes
//! and for failed authentication. Over the limit: 429 `rate_limited` with `Retry-After`; every
//! limited response carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`.
//!
//! The client IP is the socket's peer. Only when that peer is one of the configured trusted
//! proxies is `X-Forwarded-For` read (its last address not itself a trusted proxy), so a
//! client cannot pick its own bucket by forging the header.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::error::ApiError;
use crate::state::AppState;

type Limiter =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// One kind of bucket: its limiter and how it is described in headers.
#[derive(Debug)]
struct Buckets {
    limiter: Limiter,
    burst: u32,
    /// Time to earn one request back.
    interval: Duration,
}

impl Buckets {
    fn new(per_minute: u32, burst: u32) -> Self {
        let per_minute = NonZeroU32::new(per_minute.max(1)).expect("at least 1");
        let burst = NonZeroU32::new(burst.max(1)).expect("at least 1");
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        Self {
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            burst: burst.get(),
            interval: quota.replenish_interval(),
        }
    }

    /// Takes one request from `key`'s bucket: the headers to add, or the refusal.
    fn take(&self, key: String) -> Result<RateHeaders, ApiError> {
        match self.limiter.check_key(&key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Ok(RateHeaders {
                    limit: self.burst,
                    remaining,
                    reset: ceil_secs(self.interval * (self.burst - remaining)),
                })
            }
            Err(not_until) => {
                let wait = ceil_secs(not_until.wait_time_from(self.limiter.clock().now())).max(1);
                Err(ApiError::RateLimited(RateHeaders {
                    limit: self.burst,
                    remaining: 0,
                    reset: wait,
                }))
            }
        }
    }
}

/// The rate-limit headers of one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateHeaders {
    /// The bucket's size.
    pub limit: u32,
    /// Requests left in it now.
    pub remaining: u32,
    /// Seconds until it is full again (when refused: until the next request may pass).
    pub reset: u64,
}

impl RateHeaders {
    /// Adds the headers to `headers`.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for (name, value) in [
            ("ratelimit-limit", u64::from(self.limit)),
            ("ratelimit-remaining", u64::from(self.remaining)),
            ("ratelimit-reset", self.reset),
        ] {
            headers.insert(name, HeaderValue::from(value));
        }
    }
}

fn ceil_secs(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// The API's rate limits.
#[derive(Debug, Clone)]
pub struct RateLimits {
    keys: Arc<Buckets>,
    ips: Arc<Buckets>,
    trusted_proxies: Arc<Vec<IpAddr>>,
}

impl RateLimits {
    /// `per_minute` and `burst` per key; `ip_per_minute` and `ip_burst` per client IP on
    /// public routes and failed authentication; `trusted_proxies` may set the client IP.
    pub fn new(
        per_minute: u32,
        burst: u32,
        ip_per_minute: u32,
        ip_burst: u32,
        trusted_proxies: Vec<IpAddr>,
    ) -> Self {
        Self {
            keys: Arc::new(Buckets::new(per_minute, burst)),
            ips: Arc::new(Buckets::new(ip_per_minute, ip_burst)),
            trusted_proxies: Arc::new(trusted_proxies),
        }
    }

    /// Takes a request from a key's bucket.
    pub fn take_key(&self, key_id: &str) -> Result<RateHeaders, ApiError> {
        self.keys.take(key_id.to_string())
    }

    /// Takes a request from the bucket of the client that sent `request`.
    pub fn take_ip(&self, request: &Request) -> Result<RateHeaders, ApiError> {
        self.ips.take(self.client_ip(request).to_string())
    }

    /// The client's address: the peer's, or what trusted proxies say it is.
    fn client_ip(&self, request: &Request) -> IpAddr {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |info| info.0.ip());
        if !self.trusted_proxies.contains(&peer) {
            return peer;
        }
        let forwarded = request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse::<IpAddr>().ok())
            .collect::<Vec<_>>();
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !self.trusted_proxies.contains(ip))
            .unwrap_or(peer)
    }
}

/// Limits the public routes per client IP.
pub async fn by_ip(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let headers = state.rate_limits.take_ip(&request)?;
    let mut response = next.run(request).await;
    headers.apply(response.headers_mut());
    Ok(response)
}
