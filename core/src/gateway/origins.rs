//! Several origin replicas behind one edge: which to try for a request, and whether a request the
//! first could not take may go to a second. The edge does the sending; this decides, so both
//! edges spread and retry the same way. Nothing pins a client or a session to an origin: the
//! origins share their state through PostgreSQL.
//!
//! An origin that could not be reached is passed over for [`DOWN_MS`] by the requests that follow
//! in the same isolate or instance (unless every origin is down), so a replica that died costs
//! its share of requests only until the edge notices, not for as long as it stays down.

use crate::time::Timestamp;

/// How long an unreachable origin is passed over.
pub const DOWN_MS: u64 = 10_000;

/// The origins' base URLs (no trailing slash), in configured order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origins {
    urls: Vec<String>,
    /// Per origin: until when it is passed over (unix ms; 0 when it is not).
    down_until_ms: Vec<u64>,
}

/// Why an origin list cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginsError {
    #[error("names no origin")]
    Empty,
    #[error("{0:?} is not an http(s) URL")]
    NotHttp(String),
}

impl Origins {
    /// A comma- or whitespace-separated list of `http(s)://` base URLs.
    pub fn parse(list: &str) -> Result<Self, OriginsError> {
        let urls: Vec<String> = list
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|u| !u.is_empty())
            .map(|u| {
                if u.starts_with("https://") || u.starts_with("http://") {
                    Ok(u.trim_end_matches('/').to_owned())
                } else {
                    Err(OriginsError::NotHttp(u.to_owned()))
                }
            })
            .collect::<Result<_, _>>()?;
        if urls.is_empty() {
            return Err(OriginsError::Empty);
        }
        let down_until_ms = vec![0; urls.len()];
        Ok(Self { urls, down_until_ms })
    }

    /// The first configured origin.
    pub fn first(&self) -> &str {
        &self.urls[0]
    }

    pub fn all(&self) -> &[String] {
        &self.urls
    }

    /// The origins to try for one request at `now`, in order: the one `spread` picks (any number
    /// the edge draws per request, so load spreads evenly), or the next that is not passed over;
    /// then, for a request that may be sent twice, one more, once.
    pub fn attempts(&self, spread: u64, retryable: bool, now: Timestamp) -> Vec<&str> {
        let n = self.urls.len();
        let start = usize::try_from(spread % n as u64).unwrap_or(0);
        let now_ms = now.as_unix_millis();
        let order = (0..n).map(|i| (start + i) % n);
        let (up, down): (Vec<usize>, Vec<usize>) = order.partition(|&i| self.down_until_ms[i] <= now_ms);
        let tries = if retryable { n.min(2) } else { 1 };
        up.into_iter().chain(down).take(tries).map(|i| self.urls[i].as_str()).collect()
    }

    /// `url` could not be reached at `now`: pass it over for a while.
    pub fn failed(&mut self, url: &str, now: Timestamp) {
        if let Some(i) = self.urls.iter().position(|u| u == url) {
            self.down_until_ms[i] = now.as_unix_millis().saturating_add(DOWN_MS);
        }
    }

    /// `url` answered: it is up again.
    pub fn answered(&mut self, url: &str) {
        if let Some(i) = self.urls.iter().position(|u| u == url) {
            self.down_until_ms[i] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_bad_ones_are_refused() {
        let o = Origins::parse(" http://a:1/, https://b:2  http://c:3").unwrap();
        assert_eq!(o.all(), ["http://a:1", "https://b:2", "http://c:3"]);
        assert_eq!(o.first(), "http://a:1");
        assert_eq!(Origins::parse(" , "), Err(OriginsError::Empty));
        assert_eq!(Origins::parse("http://a, ftp://b"), Err(OriginsError::NotHttp("ftp://b".into())));
    }

    const NOW: Timestamp = Timestamp::from_unix_millis(1_000_000);

    #[test]
    fn requests_spread_over_all_and_only_retryable_ones_get_a_second_origin() {
        let o = Origins::parse("http://a,http://b,http://c").unwrap();
        let firsts: Vec<&str> = (0..6).map(|s| o.attempts(s, false, NOW)[0]).collect();
        assert_eq!(firsts, ["http://a", "http://b", "http://c", "http://a", "http://b", "http://c"]);
        assert_eq!(o.attempts(2, true, NOW), ["http://c", "http://a"]);
        assert_eq!(o.attempts(2, false, NOW), ["http://c"]);
        let one = Origins::parse("http://a").unwrap();
        assert_eq!(one.attempts(7, true, NOW), ["http://a"]);
        assert_eq!(o.attempts(u64::MAX, true, NOW).len(), 2);
    }

    #[test]
    fn an_unreachable_origin_is_passed_over_for_a_while() {
        let mut o = Origins::parse("http://a,http://b").unwrap();
        o.failed("http://a", NOW);
        let soon = Timestamp::from_unix_millis(NOW.as_unix_millis() + DOWN_MS - 1);
        // Even a request that cannot be retried goes to the live one.
        assert_eq!(o.attempts(0, false, soon), ["http://b"]);
        assert_eq!(o.attempts(0, true, soon), ["http://b", "http://a"]);
        let later = Timestamp::from_unix_millis(NOW.as_unix_millis() + DOWN_MS);
        assert_eq!(o.attempts(0, false, later), ["http://a"]);
        // All down: tried anyway.
        o.failed("http://b", NOW);
        assert_eq!(o.attempts(1, false, soon), ["http://b"]);
        o.answered("http://a");
        assert_eq!(o.attempts(1, false, soon), ["http://a"]);
    }
}
