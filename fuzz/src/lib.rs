//! sandload's decoders of untrusted bytes compiled on their own for fuzzing (sandload has no
//! lib target). The modules use `crate::` paths, so the module tree mirrors src/ at this root;
//! `support` holds what the targets share: an allocation meter (libFuzzer's -malloc_limit_mb
//! needs a sanitizer's malloc hooks, so with `-s none` the bound is checked here instead), a
//! reader that returns short reads, and scratch files in /dev/shm.
#[path = "../../src/broker/mod.rs"]
pub mod broker;
#[path = "../../src/exit.rs"]
pub mod exit;
#[path = "../../src/scan/mod.rs"]
pub mod scan;
#[path = "../../src/tensors/mod.rs"]
pub mod tensors;

pub mod support {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

    /// Counts live heap bytes, their peak and the largest single request since `reset`.
    pub struct Meter;

    static LIVE: AtomicUsize = AtomicUsize::new(0);
    static BASE: AtomicUsize = AtomicUsize::new(0);
    static PEAK: AtomicUsize = AtomicUsize::new(0);
    static LARGEST: AtomicUsize = AtomicUsize::new(0);

    fn grew(by: usize) {
        let live = LIVE.fetch_add(by, Relaxed) + by;
        PEAK.fetch_max(live, Relaxed);
        LARGEST.fetch_max(by, Relaxed);
    }

    // SAFETY: every method forwards the caller's pointer and layout unchanged to `System`, which
    // upholds the GlobalAlloc contract; the counters are plain atomics and never allocate.
    unsafe impl GlobalAlloc for Meter {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            // SAFETY: the caller's layout has non-zero size (GlobalAlloc::alloc contract).
            let p = unsafe { System.alloc(l) };
            if !p.is_null() {
                grew(l.size());
            }
            p
        }
        unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
            // SAFETY: as for `alloc`.
            let p = unsafe { System.alloc_zeroed(l) };
            if !p.is_null() {
                grew(l.size());
            }
            p
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            // SAFETY: `p` was returned by `System` for this same layout (caller's contract).
            unsafe { System.dealloc(p, l) };
            LIVE.fetch_sub(l.size(), Relaxed);
        }
        unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
            // SAFETY: `p` and `l` describe a live block from `System`; `new` is the caller's.
            let q = unsafe { System.realloc(p, l, new) };
            if !q.is_null() {
                if new >= l.size() {
                    grew(new - l.size());
                    LARGEST.fetch_max(new, Relaxed);
                } else {
                    LIVE.fetch_sub(l.size() - new, Relaxed);
                }
            }
            q
        }
    }

    #[global_allocator]
    static METER: Meter = Meter;

    /// Starts measuring one input.
    pub fn reset() {
        let live = LIVE.load(Relaxed);
        BASE.store(live, Relaxed);
        PEAK.store(live, Relaxed);
        LARGEST.store(0, Relaxed);
    }

    /// (peak live bytes above the level at `reset`, largest single allocation) since `reset`.
    pub fn usage() -> (usize, usize) {
        (PEAK.load(Relaxed).saturating_sub(BASE.load(Relaxed)), LARGEST.load(Relaxed))
    }

    /// Asserts the bounds and prints each new high-water mark (log lines for docs/FUZZING.md).
    pub fn check(what: &str, input_len: usize, max_peak: usize, max_single: usize) {
        static SEEN_PEAK: AtomicUsize = AtomicUsize::new(0);
        static SEEN_SINGLE: AtomicUsize = AtomicUsize::new(0);
        let (peak, single) = usage();
        assert!(peak <= max_peak, "{what}: peak heap {peak} bytes > {max_peak} (input {input_len} bytes)");
        assert!(single <= max_single, "{what}: one allocation of {single} bytes > {max_single} (input {input_len} bytes)");
        let new_peak = peak > SEEN_PEAK.fetch_max(peak, Relaxed);
        let new_single = single > SEEN_SINGLE.fetch_max(single, Relaxed);
        if new_peak || new_single {
            eprintln!("#heap {what}: peak {peak} B, largest {single} B, input {input_len} B");
        }
    }

    /// A reader over fuzz bytes that returns short reads of 1..=`max` bytes, sized by a PRNG
    /// seeded from the input, as a pipe from a hostile child may.
    pub struct Chunked<'a> {
        data: &'a [u8],
        state: u64,
        max: usize,
    }

    impl<'a> Chunked<'a> {
        pub fn new(data: &'a [u8], seed: u8, max: usize) -> Self {
            Chunked { data, state: 0x9e37_79b9_7f4a_7c15 ^ seed as u64, max: max.max(1) }
        }
        pub fn next_len(&mut self) -> usize {
            // xorshift64: cheap and deterministic, so a crash reproduces from its input alone.
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            1 + (self.state % self.max as u64) as usize
        }
        pub fn remaining(&self) -> usize {
            self.data.len()
        }
    }

    impl std::io::Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.next_len().min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// A per-process scratch path in /dev/shm (tmpfs: no disk I/O per input).
    pub fn scratch(name: &str) -> std::path::PathBuf {
        let dir = if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm".into() } else { std::env::temp_dir() };
        dir.join(format!("sandload-fuzz-{}-{name}", std::process::id()))
    }

    /// Known, reported bugs a campaign may step over so the rest of the target keeps running:
    /// `SANDLOAD_FUZZ_KNOWN_BUGS=npy-nesting,npz-size-wrap,json-empty-nesting` (docs/FUZZING.md).
    /// Unset, each of them is a crash.
    pub fn known_bug(name: &str) -> bool {
        std::env::var("SANDLOAD_FUZZ_KNOWN_BUGS").is_ok_and(|v| v.split(',').any(|b| b.trim() == name))
    }

    /// Deepest nesting of `(`, `[`, `{` in `text` (quotes ignored: an over-estimate is fine for
    /// skipping inputs that hit npyz's exponential parse of nested brackets).
    pub fn bracket_depth(text: &[u8]) -> usize {
        let (mut depth, mut max) = (0usize, 0usize);
        for b in text {
            match b {
                b'(' | b'[' | b'{' => {
                    depth += 1;
                    max = max.max(depth);
                }
                b')' | b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        max
    }

    /// Panics raised inside `npyz` are caught by `parse_npy_header`'s `catch_unwind`, so they
    /// are not crashes of sandload; libfuzzer-sys' hook would abort on them all the same. This
    /// hook counts them (and prints the first few) and passes every other panic on to
    /// libFuzzer's hook, which aborts.
    pub fn tolerate_caught_npyz_panics() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        static CAUGHT: AtomicUsize = AtomicUsize::new(0);
        ONCE.call_once(|| {
            let fuzzer_hook = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                let in_npyz = info.location().is_some_and(|l| l.file().contains("/npyz-"));
                if !in_npyz {
                    return fuzzer_hook(info);
                }
                let n = CAUGHT.fetch_add(1, Relaxed);
                if n < 3 || n.is_power_of_two() {
                    eprintln!("#npyz panic caught by parse_npy_header (#{}): {info}", n + 1);
                }
            }));
        });
    }
}
