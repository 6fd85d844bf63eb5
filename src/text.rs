//! Making child-controlled text safe to show: nothing a model prints may drive the user's
//! terminal (escape sequences, CVE-2017-5226-style injection via TIOCSTI is blocked elsewhere).

/// Escapes control characters (C0, DEL, C1) and bidi overrides; keeps `\n` and `\t`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            c if (c as u32) < 0x20 || c == '\x7f' || ('\u{80}'..='\u{9f}').contains(&c) => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' => {
                out.push_str(&format!("\\u{{{:04x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// Escapes raw bytes from the child (invalid UTF-8 becomes U+FFFD first).
pub fn escape_bytes(b: &[u8]) -> String {
    escape(&String::from_utf8_lossy(b))
}

/// A bounded tail of a byte stream: keeps the last `cap` bytes and counts the rest.
pub struct Tail {
    cap: usize,
    buf: std::collections::VecDeque<u8>,
    pub total: u64,
}

impl Tail {
    pub fn new(cap: usize) -> Self {
        Tail { cap, buf: std::collections::VecDeque::with_capacity(cap.min(4096)), total: 0 }
    }
    pub fn push(&mut self, data: &[u8]) {
        self.total = self.total.saturating_add(data.len() as u64);
        let data = if data.len() > self.cap { &data[data.len() - self.cap..] } else { data };
        let overflow = (self.buf.len() + data.len()).saturating_sub(self.cap);
        self.buf.drain(..overflow);
        self.buf.extend(data);
    }
    pub fn contents(&self) -> Vec<u8> {
        self.buf.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_terminal_sequences() {
        assert_eq!(escape("a\x1b[2Jb\r\n"), "a\\x1b[2Jb\\x0d\n");
        assert_eq!(escape("\u{9b}31m"), "\\x9b31m");
        assert_eq!(escape("x\u{202e}y"), "x\\u{202e}y");
    }

    #[test]
    fn tail_keeps_only_the_last_bytes() {
        let mut t = Tail::new(4);
        t.push(b"abc");
        t.push(b"defgh");
        assert_eq!(t.contents(), b"efgh");
        assert_eq!(t.total, 8);
        t.push(b"0123456789");
        assert_eq!(t.contents(), b"6789");
    }
}
