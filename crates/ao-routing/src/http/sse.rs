//! A server-sent events reader: bytes in, `data:` payloads out.

/// The largest event accepted: a backend that sends more without ending an event is broken (or
/// hostile), and its stream is cut rather than buffered without bound.
pub const MAX_EVENT_BYTES: usize = 1 << 20;

/// An event grew past [`MAX_EVENT_BYTES`] without ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a server-sent event grew past {MAX_EVENT_BYTES} bytes without ending")]
pub struct EventTooLarge;

/// Collects bytes and yields the `data` of each complete event.
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: Vec<u8>,
    /// How much of `buffer` is known to hold no event boundary.
    scanned: usize,
}

impl SseParser {
    /// Adds `bytes`; returns the data of every event they complete, in order. Each byte is
    /// looked at a bounded number of times, however the stream is split.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<String>, EventTooLarge> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        // A boundary may straddle the previous feed: look back three bytes.
        while let Some((end, sep)) = find_boundary(&self.buffer, self.scanned.saturating_sub(3)) {
            let raw: Vec<u8> = self.buffer.drain(..end + sep).collect();
            self.scanned = 0;
            let text = String::from_utf8_lossy(&raw[..end]);
            let data: Vec<&str> = text
                .lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            if !data.is_empty() {
                events.push(data.join("\n"));
            }
        }
        self.scanned = self.buffer.len();
        if self.buffer.len() > MAX_EVENT_BYTES {
            return Err(EventTooLarge);
        }
        Ok(events)
    }

    /// Bytes held for an event not yet complete.
    pub fn pending_bytes(&self) -> usize {
        self.buffer.len()
    }
}

/// The end of the first event in `buffer`, looking from `from`, and the length of the blank
/// line that ends it.
fn find_boundary(buffer: &[u8], from: usize) -> Option<(usize, usize)> {
    let tail = buffer.get(from..)?;
    let lf = tail
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|p| (from + p, 2));
    let crlf = tail
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| (from + p, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_reads_and_line_endings() {
        let mut p = SseParser::default();
        assert!(p.feed(b"data: {\"a\"").unwrap().is_empty());
        assert_eq!(
            p.feed(b":1}\n\ndata: [DONE]\n\n").unwrap(),
            ["{\"a\":1}", "[DONE]"]
        );
        assert_eq!(
            p.feed(b": comment\r\ndata: x\r\ndata: y\r\n\r\n").unwrap(),
            ["x\ny"]
        );
        assert_eq!(p.feed(b"event: ping\n\n").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn a_boundary_split_byte_by_byte_is_found() {
        let mut p = SseParser::default();
        let mut events = Vec::new();
        for byte in b"data: one\r\n\r\ndata: two\n\n" {
            events.extend(p.feed(&[*byte]).unwrap());
        }
        assert_eq!(events, ["one", "two"]);
        assert_eq!(p.pending_bytes(), 0);
    }

    #[test]
    fn an_event_that_never_ends_is_refused_past_the_limit() {
        let mut p = SseParser::default();
        let chunk = vec![b'x'; 64 * 1024];
        let mut refused = false;
        for _ in 0..(MAX_EVENT_BYTES / chunk.len() + 2) {
            if p.feed(&chunk).is_err() {
                refused = true;
                break;
            }
        }
        assert!(refused);
    }
}
