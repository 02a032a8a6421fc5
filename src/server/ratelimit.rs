//! Rate limits: token buckets per client address and per publisher key.
//!
//! A bucket holds up to `burst` tokens and gains `rate` per second; a request takes one or is
//! refused with the time until one is there ([`Limited::retry_after`], sent to the client as
//! `grpc-retry-pushback-ms`, the hint gRPC's retry policy reads). IPv6 clients are counted per
//! /64, the smallest prefix a subscriber is usually given, so that one host cannot multiply its
//! allowance by using many addresses of its own prefix.
//!
//! The table of buckets is bounded ([`MAX_TRACKED`]): a bucket that has refilled carries no
//! state and is forgotten first; a table still full of clients in debt refuses new ones until
//! some repay (a flood from more addresses than that is a job for the network in front).
//!
//! This module does no I/O and knows nothing of gRPC.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::server::config::RateConfig;

/// Most clients one limiter tracks at once.
pub const MAX_TRACKED: usize = 100_000;

/// A bucket fills from empty to `burst` in this long: `burst = rate × BURST_SECONDS`.
pub const BURST_SECONDS: f64 = 2.0;

/// A request refused by a limit.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("rate limit: at most {rate} {what} per second; retry in {} ms", retry_after.as_millis())]
pub struct Limited {
    /// What is limited, e.g. "submissions from one address".
    pub what: &'static str,
    pub rate: f64,
    pub retry_after: Duration,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets keyed by `K`, one rate for all.
pub struct RateLimiter<K> {
    what: &'static str,
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// A limiter of `rate` requests per second per key; `None` for a rate of 0 (no limit).
    pub fn new(what: &'static str, rate: f64) -> Option<RateLimiter<K>> {
        (rate > 0.0).then(|| RateLimiter {
            what,
            rate,
            burst: (rate * BURST_SECONDS).max(1.0),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a token for `key` at `now`.
    ///
    /// # Errors
    /// [`Limited`] with the time until a token is there.
    pub fn check_at(&self, key: &K, now: Instant) -> Result<(), Limited> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(key) && buckets.len() >= MAX_TRACKED {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| refilled(b, now, rate) < burst);
            if buckets.len() >= MAX_TRACKED {
                return Err(self.limited(Duration::from_secs_f64(1.0 / rate)));
            }
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        bucket.tokens = refilled(bucket, now, self.rate).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(self.limited(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate)))
        }
    }

    /// Takes a token for `key` now.
    ///
    /// # Errors
    /// As [`RateLimiter::check_at`].
    pub fn check(&self, key: &K) -> Result<(), Limited> {
        self.check_at(key, Instant::now())
    }

    fn limited(&self, retry_after: Duration) -> Limited {
        Limited {
            what: self.what,
            rate: self.rate,
            // Never "retry in 0 ms": a client that retries at once is refused again.
            retry_after: retry_after.max(Duration::from_millis(1)),
        }
    }
}

fn refilled(b: &Bucket, now: Instant, rate: f64) -> f64 {
    b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate
}

/// The key a client address is counted under: the address for IPv4, its /64 for IPv6 (an
/// IPv4-mapped IPv6 address counts as the IPv4 address).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The server's limits, each `None` when its rate is 0 (off).
pub struct Rates {
    pub submit_per_ip: Option<RateLimiter<IpAddr>>,
    /// By publisher key id (the SHA-256 of the key), counted only for keys whose signature
    /// verified: a key named in a request it did not sign costs its owner nothing.
    pub submit_per_key: Option<RateLimiter<[u8; 32]>>,
    pub reads_per_ip: Option<RateLimiter<IpAddr>>,
}

impl Rates {
    pub fn new(config: &RateConfig) -> Rates {
        Rates {
            submit_per_ip: RateLimiter::new("submissions from one address", config.submit_per_ip),
            submit_per_key: RateLimiter::new(
                "submissions by one publisher key",
                config.submit_per_key,
            ),
            reads_per_ip: RateLimiter::new("reads from one address", config.reads_per_ip),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let l = RateLimiter::new("requests", 10.0).unwrap();
        let t0 = Instant::now();
        for _ in 0..20 {
            l.check_at(&1u8, t0).unwrap();
        }
        let refused = l.check_at(&1u8, t0).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_millis(100));
        assert!(refused.to_string().contains("retry in 100 ms"), "{refused}");
        // Another key has its own bucket.
        l.check_at(&2u8, t0).unwrap();
        // A tenth of a second later, one more.
        let t1 = t0 + Duration::from_millis(100);
        l.check_at(&1u8, t1).unwrap();
        assert!(l.check_at(&1u8, t1).is_err());
        // Long idle refills to the burst, not beyond.
        let t2 = t1 + Duration::from_secs(3600);
        for _ in 0..20 {
            l.check_at(&1u8, t2).unwrap();
        }
        assert!(l.check_at(&1u8, t2).is_err());
    }

    #[test]
    fn a_zero_rate_is_no_limiter() {
        assert!(RateLimiter::<u8>::new("requests", 0.0).is_none());
    }

    #[test]
    fn the_table_is_bounded_and_forgets_refilled_buckets_first() {
        let l = RateLimiter::new("requests", 1.0).unwrap();
        let t0 = Instant::now();
        for k in 0..MAX_TRACKED as u32 {
            l.check_at(&k, t0).unwrap();
        }
        // Full of clients in debt: a new one is refused rather than tracked.
        assert!(l.check_at(&u32::MAX, t0).is_err());
        // Once they have refilled, they are forgotten to make room.
        let later = t0 + Duration::from_secs(10);
        l.check_at(&u32::MAX, later).unwrap();
        assert!(l.buckets.lock().unwrap().len() <= 1);
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }
}
