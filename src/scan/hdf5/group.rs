//! Old-style HDF5 groups (v1 B-tree of symbol-table nodes plus a local name
//! heap), external-file lists and global heap collections. Bounded: B-tree
//! depth and node counts are capped, and names come only from inside the heap.

use super::io::{cstr_at, read_block, Cur, ReadAt, MAX_BLOCK};
use super::Hdf5Error;

const MAX_BTREE_LEVEL: u8 = 16;
const MAX_GROUP_ENTRIES: usize = 100_000;

pub struct Entry {
    pub name: String,
    pub addr: u64,
    /// Symbol-table entries with cache type 2 are soft links.
    pub soft_target: Option<String>,
}

pub fn local_heap<R: ReadAt + ?Sized>(src: &R, base: u64, addr: u64, so: u8, sl: u8) -> Result<Vec<u8>, Hdf5Error> {
    let hdr = read_block(src, base.saturating_add(addr), 8 + 2 * u64::from(sl) + u64::from(so), "local heap")?;
    let mut c = Cur::new(&hdr, so, sl);
    c.expect_sig(b"HEAP", "local heap")?;
    c.skip(4)?;
    let size = c.length()?;
    let _free = c.length()?;
    let data = c.addr()?;
    read_block(src, base.saturating_add(data), size, "local heap data")
}

pub fn symbol_table<R: ReadAt + ?Sized>(
    src: &R,
    base: u64,
    btree: u64,
    heap: u64,
    so: u8,
    sl: u8,
) -> Result<Vec<Entry>, Hdf5Error> {
    let names = local_heap(src, base, heap, so, sl)?;
    let mut out = Vec::new();
    let mut nodes = 0usize;
    walk_btree(src, base, btree, so, sl, &names, MAX_BTREE_LEVEL, &mut nodes, &mut out)?;
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn walk_btree<R: ReadAt + ?Sized>(
    src: &R,
    base: u64,
    addr: u64,
    so: u8,
    sl: u8,
    names: &[u8],
    max_level: u8,
    nodes: &mut usize,
    out: &mut Vec<Entry>,
) -> Result<(), Hdf5Error> {
    *nodes += 1;
    if *nodes > MAX_GROUP_ENTRIES {
        return Err(Hdf5Error::Limit("B-tree nodes"));
    }
    let head = read_block(src, base.saturating_add(addr), 8 + 2 * u64::from(so), "B-tree node")?;
    let mut c = Cur::new(&head, so, sl);
    c.expect_sig(b"TREE", "B-tree node")?;
    if c.u8()? != 0 {
        return Err(Hdf5Error::Unsupported("B-tree node type (expected group)"));
    }
    let level = c.u8()?;
    // Levels must strictly decrease, or a node could point at itself.
    if level >= max_level {
        return Err(Hdf5Error::Limit("B-tree level"));
    }
    let entries = u64::from(c.u16()?);
    let body_len = (entries * 2 + 1) * u64::from(sl.max(so));
    let body = read_block(src, base.saturating_add(addr) + head.len() as u64, body_len.min(src.size()), "B-tree keys")?;
    let mut c = Cur::new(&body, so, sl);
    for _ in 0..entries {
        c.length()?;
        let child = c.addr()?;
        if level == 0 {
            symbol_node(src, base, child, so, sl, names, out)?;
        } else {
            walk_btree(src, base, child, so, sl, names, level, nodes, out)?;
        }
    }
    Ok(())
}

fn symbol_node<R: ReadAt + ?Sized>(
    src: &R,
    base: u64,
    addr: u64,
    so: u8,
    sl: u8,
    names: &[u8],
    out: &mut Vec<Entry>,
) -> Result<(), Hdf5Error> {
    let head = read_block(src, base.saturating_add(addr), 8, "symbol table node")?;
    let mut c = Cur::new(&head, so, sl);
    c.expect_sig(b"SNOD", "symbol table node")?;
    c.skip(2)?;
    let n = u64::from(c.u16()?);
    let entry = 2 * u64::from(so) + 24;
    let body = read_block(src, base.saturating_add(addr) + 8, n * entry, "symbol table entries")?;
    let mut c = Cur::new(&body, so, sl);
    for _ in 0..n {
        if out.len() >= MAX_GROUP_ENTRIES {
            return Err(Hdf5Error::Limit("group entries"));
        }
        let name_off = c.addr()?;
        let obj = c.addr()?;
        let cache = c.u32()?;
        c.skip(4)?;
        let scratch = c.take(16)?;
        let name = cstr_at(names, name_off).unwrap_or_else(|| "<bad name>".into());
        let soft_target = if cache == 2 {
            let off = u64::from(u32::from_le_bytes([scratch[0], scratch[1], scratch[2], scratch[3]]));
            Some(cstr_at(names, off).unwrap_or_else(|| "<bad target>".into()))
        } else {
            None
        };
        out.push(Entry { name, addr: obj, soft_target });
    }
    Ok(())
}

/// File names of an External Data Files message (raw data stored outside the
/// HDF5 file, read by the library from any path it names).
pub fn external_files<R: ReadAt + ?Sized>(
    src: &R,
    base: u64,
    data: &[u8],
    so: u8,
    sl: u8,
) -> Result<Vec<String>, Hdf5Error> {
    let mut c = Cur::new(data, so, sl);
    c.skip(4)?;
    let _alloc = c.u16()?;
    let used = c.u16()?;
    let heap = c.addr()?;
    let names = local_heap(src, base, heap, so, sl)?;
    let mut out = Vec::new();
    for _ in 0..used.min(64) {
        let off = c.length()?;
        c.length()?;
        c.length()?;
        out.push(cstr_at(&names, off).unwrap_or_else(|| "<bad name>".into()));
    }
    Ok(out)
}

/// Object `index` of the global heap collection at `addr` (where
/// variable-length strings such as `model_config` live).
pub fn global_heap_object<R: ReadAt + ?Sized>(
    src: &R,
    addr: u64,
    index: u32,
    so: u8,
    sl: u8,
    max: u64,
) -> Result<Vec<u8>, Hdf5Error> {
    let head = read_block(src, addr, 8 + u64::from(sl), "global heap")?;
    let mut c = Cur::new(&head, so, sl);
    c.expect_sig(b"GCOL", "global heap")?;
    c.skip(4)?;
    let size = c.length()?;
    if size > MAX_BLOCK.max(max.saturating_add(4096)) {
        return Err(Hdf5Error::TooLarge { what: "global heap collection", len: size });
    }
    let coll = read_block(src, addr, size.min(src.size().saturating_sub(addr)), "global heap collection")?;
    let mut c = Cur::new(&coll, so, sl);
    c.skip(head.len())?;
    while c.remaining() >= 8 + usize::from(sl) {
        let idx = c.u16()?;
        c.skip(6)?;
        let len = c.length()?;
        if idx == 0 {
            break;
        }
        let n = usize::try_from(len).map_err(|_| Hdf5Error::Truncated)?;
        let obj = c.take(n)?;
        if u32::from(idx) == index {
            return Ok(obj.to_vec());
        }
        c.skip((n.div_ceil(8) * 8 - n).min(c.remaining()))?;
    }
    Err(Hdf5Error::Unsupported("global heap object not found"))
}
