//! Request identity across hops: a request id for logs and a W3C `traceparent` (Trace Context
//! level 1) for spans. The core draws no random numbers; the caller hands in entropy.

use crate::digest::hex;

/// A parsed `traceparent` header: `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub parent_id: [u8; 8],
    pub flags: u8,
}

impl TraceParent {
    /// Parses a header value. Versions other than `00` are read by their first four fields, as
    /// the specification asks; all-zero ids are invalid.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let mut parts = value.split('-');
        let version = parts.next()?;
        let trace = parts.next()?;
        let parent = parts.next()?;
        let flags = parts.next()?;
        if version.len() != 2 || version == "ff" || !is_lower_hex(version) {
            return None;
        }
        if version == "00" && (parts.next().is_some() || value.len() != 55) {
            return None;
        }
        let trace_id: [u8; 16] = decode_hex(trace)?;
        let parent_id: [u8; 8] = decode_hex(parent)?;
        let [flags]: [u8; 1] = decode_hex(flags)?;
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(Self { trace_id, parent_id, flags })
    }

    /// Continues the incoming trace with a new span of ours, or starts one, from caller entropy.
    pub fn next_hop(incoming: Option<&TraceParent>, entropy: &[u8; 24]) -> Self {
        let mut trace_id = [0u8; 16];
        trace_id.copy_from_slice(&entropy[..16]);
        let mut parent_id = [0u8; 8];
        parent_id.copy_from_slice(&entropy[16..]);
        // A zero id is invalid; entropy that happens to be all zero still yields a valid one.
        if parent_id == [0; 8] {
            parent_id[7] = 1;
        }
        match incoming {
            Some(t) => Self { trace_id: t.trace_id, parent_id, flags: t.flags },
            None => {
                if trace_id == [0; 16] {
                    trace_id[15] = 1;
                }
                Self { trace_id, parent_id, flags: 0x01 }
            }
        }
    }

    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }
}

impl std::fmt::Display for TraceParent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "00-{}-{}-{:02x}", hex(&self.trace_id), hex(&self.parent_id), self.flags)
    }
}

/// The trace context an MCP request carries in `params._meta` (SEP-414's `traceparent`), if
/// valid; a malformed one is ignored, never an error.
pub fn from_meta(params: Option<&serde_json::Value>) -> Option<TraceParent> {
    TraceParent::parse(params?.get("_meta")?.get("traceparent")?.as_str()?)
}

/// A client-supplied request id is kept when it is short and plain, so a caller can correlate
/// its own logs; otherwise the trace id stands in.
pub fn request_id(incoming: Option<&str>, trace: &TraceParent) -> String {
    match incoming {
        Some(id)
            if !id.is_empty()
                && id.len() <= 128
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)) =>
        {
            id.to_owned()
        }
        _ => trace.trace_id_hex(),
    }
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn decode_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !is_lower_hex(s) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, chunk) in s.as_bytes().chunks_exact(2).enumerate() {
        let text = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_and_prints_the_specification_example() {
        let t = TraceParent::parse(SAMPLE).unwrap();
        assert_eq!(t.to_string(), SAMPLE);
        assert_eq!(t.flags, 1);
    }

    #[test]
    fn rejects_malformed_headers() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
        // A future version may append fields.
        assert!(TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what").is_some());
    }

    #[test]
    fn next_hop_keeps_the_trace_and_makes_a_new_span() {
        let incoming = TraceParent::parse(SAMPLE).unwrap();
        let next = TraceParent::next_hop(Some(&incoming), &[7; 24]);
        assert_eq!(next.trace_id, incoming.trace_id);
        assert_eq!(next.parent_id, [7; 8]);
        let fresh = TraceParent::next_hop(None, &[0; 24]);
        assert!(TraceParent::parse(&fresh.to_string()).is_some());
    }

    #[test]
    fn request_ids() {
        let t = TraceParent::parse(SAMPLE).unwrap();
        assert_eq!(request_id(Some("abc-123"), &t), "abc-123");
        assert_eq!(request_id(Some("bad id\n"), &t), t.trace_id_hex());
        assert_eq!(request_id(None, &t), t.trace_id_hex());
    }
}
