//! HDF5 object headers (v1 and v2 "OHDR") and the few message types the
//! scanner needs: dataspace, datatype, layout, external file list, links,
//! symbol table, link/attribute info and attributes. Assumes nothing about
//! the file: every count and size is bounded before it is used.

use super::io::{read_block, Cur, ReadAt, MAX_BLOCK};
use super::Hdf5Error;

pub const MSG_DATASPACE: u16 = 0x01;
pub const MSG_LINK_INFO: u16 = 0x02;
pub const MSG_DATATYPE: u16 = 0x03;
pub const MSG_LINK: u16 = 0x06;
pub const MSG_EXTERNAL: u16 = 0x07;
pub const MSG_LAYOUT: u16 = 0x08;
pub const MSG_ATTRIBUTE: u16 = 0x0C;
pub const MSG_CONTINUATION: u16 = 0x10;
pub const MSG_SYMBOL_TABLE: u16 = 0x11;
pub const MSG_ATTR_INFO: u16 = 0x15;

/// Continuation blocks followed per object header; a loop of continuations
/// pointing at each other would otherwise never end.
const MAX_CONTINUATIONS: usize = 256;
/// Messages kept per object header.
const MAX_MESSAGES: usize = 4096;

pub struct Message {
    pub kind: u16,
    pub flags: u8,
    pub data: Vec<u8>,
}

impl Message {
    /// Bit 1: the body is a reference to a shared message, not the message.
    pub fn is_shared(&self) -> bool {
        self.flags & 0x02 != 0
    }
}

/// Reads every message of the object header at `addr`, following
/// continuation messages.
pub fn read_object_header<R: ReadAt + ?Sized>(src: &R, addr: u64, so: u8, sl: u8) -> Result<Vec<Message>, Hdf5Error> {
    let first = read_block(src, addr, 16.min(src.size().saturating_sub(addr)), "object header")?;
    let mut out = Vec::new();
    let mut pending: Vec<(u64, u64)> = Vec::new();
    let v2 = first.starts_with(b"OHDR");
    if v2 {
        let pre = read_block(src, addr, 6.min(src.size().saturating_sub(addr)), "object header v2")?;
        let mut c = Cur::new(&pre, so, sl);
        c.skip(4)?;
        if c.u8()? != 2 {
            return Err(Hdf5Error::Unsupported("object header v2 version"));
        }
        let flags = c.u8()?;
        let mut prefix = 6u64;
        if flags & 0x20 != 0 {
            prefix += 16;
        }
        if flags & 0x10 != 0 {
            prefix += 4;
        }
        let width = 1u64 << (flags & 3);
        let sz = read_block(src, addr + prefix, width, "object header v2 size")?;
        let chunk = Cur::new(&sz, so, sl).uint(width as usize)?;
        let body = read_block(src, addr + prefix + width, chunk, "object header v2 chunk")?;
        parse_v2_messages(&body, flags, so, sl, &mut out, &mut pending)?;
        follow(src, so, sl, &mut out, &mut pending, |b, out, pend| {
            let mut c = Cur::new(b, so, sl);
            c.expect_sig(b"OCHK", "continuation block")?;
            let end = b.len().saturating_sub(4);
            parse_v2_messages(b.get(4..end).unwrap_or(&[]), flags, so, sl, out, pend)
        })?;
    } else {
        let mut c = Cur::new(&first, so, sl);
        if c.u8()? != 1 {
            return Err(Hdf5Error::BadSignature { what: "object header" });
        }
        c.skip(1)?;
        let _nmsgs = c.u16()?;
        let _refcount = c.u32()?;
        let size = u64::from(c.u32()?);
        // v1 messages start 16 bytes in: a 12-byte prefix padded to 8.
        let body = read_block(src, addr + 16, size, "object header v1")?;
        parse_v1_messages(&body, so, sl, &mut out, &mut pending)?;
        follow(src, so, sl, &mut out, &mut pending, |b, out, pend| parse_v1_messages(b, so, sl, out, pend))?;
    }
    Ok(out)
}

type ParseFn<'f> = dyn Fn(&[u8], &mut Vec<Message>, &mut Vec<(u64, u64)>) -> Result<(), Hdf5Error> + 'f;

fn follow<R: ReadAt + ?Sized>(
    src: &R,
    _so: u8,
    _sl: u8,
    out: &mut Vec<Message>,
    pending: &mut Vec<(u64, u64)>,
    parse: impl Fn(&[u8], &mut Vec<Message>, &mut Vec<(u64, u64)>) -> Result<(), Hdf5Error>,
) -> Result<(), Hdf5Error> {
    let parse: &ParseFn = &parse;
    let mut followed = 0usize;
    while let Some((off, len)) = pending.pop() {
        followed += 1;
        if followed > MAX_CONTINUATIONS {
            return Err(Hdf5Error::Limit("object header continuations"));
        }
        let block = read_block(src, off, len, "continuation block")?;
        parse(&block, out, pending)?;
    }
    Ok(())
}

fn push(
    out: &mut Vec<Message>,
    pending: &mut Vec<(u64, u64)>,
    kind: u16,
    flags: u8,
    data: &[u8],
    so: u8,
    sl: u8,
) -> Result<(), Hdf5Error> {
    if out.len() >= MAX_MESSAGES {
        return Err(Hdf5Error::Limit("messages per object header"));
    }
    if kind == MSG_CONTINUATION {
        let mut c = Cur::new(data, so, sl);
        let off = c.addr()?;
        let len = c.length()?;
        if len > MAX_BLOCK {
            return Err(Hdf5Error::TooLarge { what: "continuation block", len });
        }
        pending.push((off, len));
    }
    out.push(Message { kind, flags, data: data.to_vec() });
    Ok(())
}

fn parse_v1_messages(
    b: &[u8],
    so: u8,
    sl: u8,
    out: &mut Vec<Message>,
    pending: &mut Vec<(u64, u64)>,
) -> Result<(), Hdf5Error> {
    let mut c = Cur::new(b, so, sl);
    while c.remaining() >= 8 {
        let kind = c.u16()?;
        let size = usize::from(c.u16()?);
        let flags = c.u8()?;
        c.skip(3)?;
        let data = c.take(size)?;
        push(out, pending, kind, flags, data, so, sl)?;
    }
    Ok(())
}

fn parse_v2_messages(
    b: &[u8],
    hflags: u8,
    so: u8,
    sl: u8,
    out: &mut Vec<Message>,
    pending: &mut Vec<(u64, u64)>,
) -> Result<(), Hdf5Error> {
    let hdr = if hflags & 0x04 != 0 { 6 } else { 4 };
    let mut c = Cur::new(b, so, sl);
    // Anything shorter than a message header at the end is the gap.
    while c.remaining() >= hdr {
        let kind = u16::from(c.u8()?);
        let size = usize::from(c.u16()?);
        let flags = c.u8()?;
        if hflags & 0x04 != 0 {
            c.skip(2)?;
        }
        let data = c.take(size)?;
        push(out, pending, kind, flags, data, so, sl)?;
    }
    Ok(())
}

/// Dimensions of a dataspace message; `None` for a null dataspace.
pub fn dataspace_dims(data: &[u8], so: u8, sl: u8) -> Result<Option<Vec<u64>>, Hdf5Error> {
    let mut c = Cur::new(data, so, sl);
    let version = c.u8()?;
    let rank = usize::from(c.u8()?);
    let _flags = c.u8()?;
    match version {
        1 => c.skip(5)?,
        2 => {
            if c.u8()? == 2 {
                return Ok(None);
            }
        }
        _ => return Err(Hdf5Error::Unsupported("dataspace version")),
    }
    if rank > 32 {
        return Err(Hdf5Error::Limit("dataspace rank"));
    }
    (0..rank).map(|_| c.length()).collect::<Result<Vec<_>, _>>().map(Some)
}

/// What the scanner needs from a datatype message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    FixedString { size: u32 },
    VarString,
    Other { size: u32 },
}

pub fn datatype(data: &[u8]) -> Result<Dtype, Hdf5Error> {
    let mut c = Cur::new(data, 8, 8);
    let cv = c.u8()?;
    let bits = c.take(3)?[0];
    let size = c.u32()?;
    Ok(match cv & 0x0f {
        3 => Dtype::FixedString { size },
        9 if bits & 0x0f == 1 => Dtype::VarString,
        _ => Dtype::Other { size },
    })
}

/// Layout class: 0 compact, 1 contiguous, 2 chunked, 3 virtual.
pub fn layout_class(data: &[u8]) -> Result<u8, Hdf5Error> {
    let mut c = Cur::new(data, 8, 8);
    match c.u8()? {
        1 | 2 => {
            c.skip(1)?;
            c.u8()
        }
        3 | 4 => c.u8(),
        _ => Err(Hdf5Error::Unsupported("layout version")),
    }
}

/// A parsed attribute message.
pub struct Attribute<'a> {
    pub name: String,
    pub dtype: Dtype,
    pub dims: Option<Vec<u64>>,
    pub value: &'a [u8],
}

pub fn attribute(data: &[u8], so: u8, sl: u8) -> Result<Attribute<'_>, Hdf5Error> {
    let mut c = Cur::new(data, so, sl);
    let version = c.u8()?;
    let flags = c.u8()?;
    let name_len = usize::from(c.u16()?);
    let dt_len = usize::from(c.u16()?);
    let ds_len = usize::from(c.u16()?);
    if version == 3 {
        c.skip(1)?;
    }
    if flags & 0x03 != 0 {
        return Err(Hdf5Error::Unsupported("attribute with shared datatype or dataspace"));
    }
    // Version 1 pads each part to a multiple of 8 bytes.
    let pad = |n: usize| if version == 1 { n.div_ceil(8) * 8 } else { n };
    let name_raw = c.take(pad(name_len))?;
    let name_raw = &name_raw[..name_len.min(name_raw.len())];
    let name_end = name_raw.iter().position(|&b| b == 0).unwrap_or(name_raw.len());
    let name = String::from_utf8_lossy(&name_raw[..name_end]).into_owned();
    let dtype = datatype(c.take(pad(dt_len))?)?;
    let dims = dataspace_dims(c.take(pad(ds_len))?, so, sl)?;
    let value = &data[c.pos.min(data.len())..];
    Ok(Attribute { name, dtype, dims, value })
}

/// A link message (new-style groups).
pub enum Link {
    Hard { name: String, addr: u64 },
    Soft { name: String, target: String },
    External { name: String, file: String, path: String },
    Other { name: String, kind: u8 },
}

pub fn link(data: &[u8], so: u8, sl: u8) -> Result<Link, Hdf5Error> {
    let mut c = Cur::new(data, so, sl);
    if c.u8()? != 1 {
        return Err(Hdf5Error::Unsupported("link message version"));
    }
    let flags = c.u8()?;
    let kind = if flags & 0x08 != 0 { c.u8()? } else { 0 };
    if flags & 0x04 != 0 {
        c.skip(8)?;
    }
    if flags & 0x10 != 0 {
        c.skip(1)?;
    }
    let name_len = c.uint(1 << (flags & 3))?;
    let name =
        String::from_utf8_lossy(c.take(usize::try_from(name_len).map_err(|_| Hdf5Error::Truncated)?)?).into_owned();
    Ok(match kind {
        0 => Link::Hard { name, addr: c.addr()? },
        1 => {
            let n = usize::from(c.u16()?);
            Link::Soft { name, target: String::from_utf8_lossy(c.take(n)?).into_owned() }
        }
        64 => {
            let n = usize::from(c.u16()?);
            let v = c.take(n)?;
            let mut parts = v.get(1..).unwrap_or(&[]).split(|&b| b == 0);
            let file = String::from_utf8_lossy(parts.next().unwrap_or(&[])).into_owned();
            let path = String::from_utf8_lossy(parts.next().unwrap_or(&[])).into_owned();
            Link::External { name, file, path }
        }
        k => Link::Other { name, kind: k },
    })
}

/// Fractal heap address from a link-info or attribute-info message; defined
/// means the group (or attribute set) uses dense storage, which this reader
/// does not walk.
pub fn dense_heap_addr(data: &[u8], kind: u16, so: u8, sl: u8) -> Result<u64, Hdf5Error> {
    let mut c = Cur::new(data, so, sl);
    c.skip(1)?;
    let flags = c.u8()?;
    if flags & 1 != 0 {
        c.skip(if kind == MSG_LINK_INFO { 8 } else { 2 })?;
    }
    c.addr()
}
