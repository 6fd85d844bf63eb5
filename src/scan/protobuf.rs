//! A tiny, bounded protobuf wire-format walker: enough to pull strings and
//! sub-messages out of `saved_model.pb` and `keras_metadata.pb` without
//! generated code. Lengths are checked against the buffer before slicing.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtoError {
    #[error("truncated protobuf")]
    Truncated,
    #[error("varint longer than 10 bytes")]
    Varint,
    #[error("unsupported wire type {0}")]
    WireType(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field<'a> {
    Varint(u64),
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32,
}

/// Iterates the top-level fields of one message.
pub struct Fields<'a> {
    b: &'a [u8],
    pos: usize,
    failed: bool,
}

pub fn fields(b: &[u8]) -> Fields<'_> {
    Fields { b, pos: 0, failed: false }
}

impl<'a> Fields<'a> {
    fn varint(&mut self) -> Result<u64, ProtoError> {
        let mut v = 0u64;
        for i in 0..10 {
            let byte = *self.b.get(self.pos).ok_or(ProtoError::Truncated)?;
            self.pos += 1;
            v |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ProtoError::Varint)
    }
    fn take(&mut self, n: u64) -> Result<&'a [u8], ProtoError> {
        let n = usize::try_from(n).map_err(|_| ProtoError::Truncated)?;
        let end = self.pos.checked_add(n).ok_or(ProtoError::Truncated)?;
        let s = self.b.get(self.pos..end).ok_or(ProtoError::Truncated)?;
        self.pos = end;
        Ok(s)
    }
    fn next_field(&mut self) -> Result<(u64, Field<'a>), ProtoError> {
        let key = self.varint()?;
        let field = key >> 3;
        let value = match (key & 7) as u8 {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Field::Fixed64
            }
            2 => {
                let n = self.varint()?;
                Field::Bytes(self.take(n)?)
            }
            5 => {
                self.take(4)?;
                Field::Fixed32
            }
            w => return Err(ProtoError::WireType(w)),
        };
        Ok((field, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Field<'a>), ProtoError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.b.len() {
            return None;
        }
        let r = self.next_field();
        self.failed = r.is_err();
        Some(r)
    }
}

/// All length-delimited values of field `n` in `msg`.
pub fn bytes_fields(msg: &[u8], n: u64) -> Result<Vec<&[u8]>, ProtoError> {
    let mut out = Vec::new();
    for f in fields(msg) {
        if let (k, Field::Bytes(b)) = f? {
            if k == n {
                out.push(b);
            }
        }
    }
    Ok(out)
}

/// The first string value of field `n`, lossily decoded.
pub fn string_field(msg: &[u8], n: u64) -> Result<Option<String>, ProtoError> {
    Ok(bytes_fields(msg, n)?.first().map(|b| String::from_utf8_lossy(b).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_nested_message_and_rejects_overlong_length() {
        // field 1 (bytes) = "ab", field 2 (varint) = 150
        let msg = [0x0a, 0x02, b'a', b'b', 0x10, 0x96, 0x01];
        let got: Vec<_> = fields(&msg).collect::<Result<_, _>>().unwrap();
        assert_eq!(got, vec![(1, Field::Bytes(b"ab")), (2, Field::Varint(150))]);
        assert_eq!(fields(&[0x0a, 0xff, 0x01]).next().unwrap(), Err(ProtoError::Truncated));
        assert_eq!(fields(&[0x0b]).next().unwrap(), Err(ProtoError::WireType(3)));
    }
}
