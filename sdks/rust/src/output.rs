//! What a function returns: [`Output`] (owned records) and [`Records`] (records
//! written straight into the output buffer).

/// The records a function outputs for one input.
///
/// Most values convert into it with `.into()` (or `?`-free `Ok(x.into())`):
/// `()` is no record, `Vec<u8>`, `String`, `&str` and `&[u8]` are one record,
/// `Option<_>` is one or none, `Vec<Vec<u8>>` and `Vec<String>` are several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// No record for this input: the function filters it out.
    Nothing,
    /// One record.
    One(Vec<u8>),
    /// Any number of records, in this order.
    Many(Vec<Vec<u8>>),
}

impl From<()> for Output {
    fn from(_: ()) -> Self {
        Output::Nothing
    }
}

impl From<Vec<u8>> for Output {
    fn from(record: Vec<u8>) -> Self {
        Output::One(record)
    }
}

impl From<String> for Output {
    fn from(record: String) -> Self {
        Output::One(record.into_bytes())
    }
}

impl<'a> From<&'a [u8]> for Output {
    fn from(record: &'a [u8]) -> Self {
        Output::One(record.to_vec())
    }
}

impl<'a> From<&'a str> for Output {
    fn from(record: &'a str) -> Self {
        Output::One(record.as_bytes().to_vec())
    }
}

impl<T: Into<Vec<u8>>> From<Option<T>> for Output {
    fn from(record: Option<T>) -> Self {
        match record {
            Some(r) => Output::One(r.into()),
            None => Output::Nothing,
        }
    }
}

impl From<Vec<Vec<u8>>> for Output {
    fn from(records: Vec<Vec<u8>>) -> Self {
        Output::Many(records)
    }
}

impl From<Vec<String>> for Output {
    fn from(records: Vec<String>) -> Self {
        Output::Many(records.into_iter().map(String::into_bytes).collect())
    }
}

/// The output records of the current input, written straight into the
/// module's reused output buffer (see [`export_records!`](crate::export_records)).
pub struct Records<'a> {
    buf: &'a mut Vec<u8>,
    count: u32,
}

impl<'a> Records<'a> {
    pub(crate) fn new(buf: &'a mut Vec<u8>) -> Self {
        Records { buf, count: 0 }
    }

    /// Output one record (a copy of `record`).
    pub fn push<R: AsRef<[u8]>>(&mut self, record: R) {
        let record = record.as_ref();
        self.buf.reserve(4 + record.len());
        self.buf
            .extend_from_slice(&(record.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(record);
        self.count += 1;
    }

    /// How many records were pushed for this input so far.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether no record was pushed for this input so far.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub(crate) fn count(&self) -> u32 {
        self.count
    }
}
