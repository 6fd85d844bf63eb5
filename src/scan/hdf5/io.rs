//! Bounded random access to untrusted HDF5 bytes: every read names its size
//! up front and is checked against the file length before anything is allocated.

use std::fs::File;
use std::os::unix::fs::FileExt;

use super::Hdf5Error;

/// Largest single structure (object header block, heap, global heap
/// collection) the reader will pull into memory. Real Keras files stay far
/// below this; a header that claims more is hostile (CVE-2026-0897 class:
/// sizes taken from the file and trusted by the allocator).
pub const MAX_BLOCK: u64 = 64 << 20;

/// A source of bytes addressed by absolute offset.
pub trait ReadAt {
    fn size(&self) -> u64;
    fn read_exact_at_(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;
}

impl ReadAt for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_exact_at_(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| std::io::ErrorKind::UnexpectedEof)?;
        let end = start.checked_add(buf.len()).ok_or(std::io::ErrorKind::UnexpectedEof)?;
        let src = self.get(start..end).ok_or(std::io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// A file read with `pread`, so a multi-gigabyte weights file is never
/// loaded whole and no `mmap` (and so no `unsafe`) is needed.
pub struct FileSource {
    file: File,
    len: u64,
}

impl FileSource {
    pub fn new(file: File) -> std::io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(Self { file, len })
    }
}

impl ReadAt for FileSource {
    fn size(&self) -> u64 {
        self.len
    }
    fn read_exact_at_(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
}

/// Reads `len` bytes at `addr`, refusing anything past the end of the file or
/// above [`MAX_BLOCK`] before allocating.
pub fn read_block<R: ReadAt + ?Sized>(src: &R, addr: u64, len: u64, what: &'static str) -> Result<Vec<u8>, Hdf5Error> {
    if len > MAX_BLOCK {
        return Err(Hdf5Error::TooLarge { what, len });
    }
    let end = addr.checked_add(len).ok_or(Hdf5Error::OutOfBounds { what, addr })?;
    if end > src.size() {
        return Err(Hdf5Error::OutOfBounds { what, addr });
    }
    let mut buf = vec![0u8; len as usize];
    src.read_exact_at_(&mut buf, addr).map_err(|source| Hdf5Error::Io { addr, source })?;
    Ok(buf)
}

/// Little-endian cursor over a block already in memory. Every accessor
/// returns `Truncated` instead of panicking on short input.
pub struct Cur<'a> {
    pub b: &'a [u8],
    pub pos: usize,
    pub so: u8,
    pub sl: u8,
}

impl<'a> Cur<'a> {
    pub fn new(b: &'a [u8], so: u8, sl: u8) -> Self {
        Self { b, pos: 0, so, sl }
    }
    pub fn remaining(&self) -> usize {
        self.b.len().saturating_sub(self.pos)
    }
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Hdf5Error> {
        let end = self.pos.checked_add(n).ok_or(Hdf5Error::Truncated)?;
        let s = self.b.get(self.pos..end).ok_or(Hdf5Error::Truncated)?;
        self.pos = end;
        Ok(s)
    }
    pub fn skip(&mut self, n: usize) -> Result<(), Hdf5Error> {
        self.take(n).map(|_| ())
    }
    pub fn uint(&mut self, n: usize) -> Result<u64, Hdf5Error> {
        if n > 8 {
            return Err(Hdf5Error::Unsupported("integer wider than 8 bytes"));
        }
        let s = self.take(n)?;
        Ok(s.iter().rev().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }
    pub fn u8(&mut self) -> Result<u8, Hdf5Error> {
        Ok(self.take(1)?[0])
    }
    pub fn u16(&mut self) -> Result<u16, Hdf5Error> {
        Ok(self.uint(2)? as u16)
    }
    pub fn u32(&mut self) -> Result<u32, Hdf5Error> {
        Ok(self.uint(4)? as u32)
    }
    /// An address ("size of offsets" bytes). All-ones means undefined.
    pub fn addr(&mut self) -> Result<u64, Hdf5Error> {
        let n = usize::from(self.so);
        let v = self.uint(n)?;
        Ok(if n < 8 && v == (1u64 << (8 * n)) - 1 { u64::MAX } else { v })
    }
    /// A length ("size of lengths" bytes).
    pub fn length(&mut self) -> Result<u64, Hdf5Error> {
        self.uint(usize::from(self.sl))
    }
    pub fn expect_sig(&mut self, sig: &[u8; 4], what: &'static str) -> Result<(), Hdf5Error> {
        if self.take(4)? != sig {
            return Err(Hdf5Error::BadSignature { what });
        }
        Ok(())
    }
}

/// Reads a NUL-terminated string starting at `off` inside `heap`.
pub fn cstr_at(heap: &[u8], off: u64) -> Option<String> {
    let start = usize::try_from(off).ok()?;
    let tail = heap.get(start..)?;
    let end = tail.iter().position(|&c| c == 0).unwrap_or(tail.len());
    Some(String::from_utf8_lossy(&tail[..end]).into_owned())
}
