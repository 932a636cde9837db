//! Physical line numbers of a list file, as an editor shows them.
//!
//! The CSV reader reports where each record starts as a byte offset, and
//! that offset may point at the line breaks before the record (a CRLF's
//! LF, blank lines it skipped). This reader wrapper remembers where every
//! line-break byte is, whatever ends the lines (LF, CRLF or a lone CR), so
//! a record's line is that of its first byte of content: right for every
//! kind of file, including records whose quoted fields span lines.

use std::collections::VecDeque;
use std::io::{self, Read};

/// A reader that notes the line-break bytes it passes.
pub struct LineCounting<R> {
    inner: R,
    /// Bytes read so far.
    offset: u64,
    /// Line-break bytes not yet passed by a question: their offset, and
    /// whether they end a line (the LF of a CRLF does not: its CR did).
    breaks: VecDeque<(u64, bool)>,
    /// The line of the last offset asked about.
    line: usize,
    /// The last byte read was a CR.
    after_cr: bool,
}

impl<R: Read> LineCounting<R> {
    pub fn new(inner: R) -> Self {
        LineCounting {
            inner,
            offset: 0,
            breaks: VecDeque::new(),
            line: 1,
            after_cr: false,
        }
    }

    /// The 1-based line of the first byte at or after `offset` that is
    /// not a line break. Offsets must be asked about in increasing order
    /// (the order records are read in).
    pub fn line_of(&mut self, mut offset: u64) -> usize {
        while let Some(&(at, ends_line)) = self.breaks.front() {
            if at > offset {
                break;
            }
            if at == offset {
                offset += 1;
            }
            self.breaks.pop_front();
            if ends_line {
                self.line += 1;
            }
        }
        self.line
    }
}

impl<R: Read> Read for LineCounting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        for (index, byte) in buf[..read].iter().enumerate() {
            let at = self.offset + index as u64;
            match byte {
                b'\n' => self.breaks.push_back((at, !self.after_cr)),
                b'\r' => self.breaks.push_back((at, true)),
                _ => {}
            }
            self.after_cr = *byte == b'\r';
        }
        self.offset += read as u64;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(text: &[u8], offsets: &[u64]) -> Vec<usize> {
        let mut reader = LineCounting::new(text);
        io::copy(&mut reader, &mut io::sink()).unwrap();
        offsets.iter().map(|at| reader.line_of(*at)).collect()
    }

    #[test]
    fn lf_crlf_and_lone_cr_each_end_one_line() {
        assert_eq!(lines_of(b"a\nb\nc", &[0, 2, 4]), [1, 2, 3]);
        assert_eq!(lines_of(b"a\r\nb\r\nc", &[0, 3, 6]), [1, 2, 3]);
        assert_eq!(lines_of(b"a\rb\rc", &[0, 2, 4]), [1, 2, 3]);
    }

    #[test]
    fn an_offset_on_line_breaks_means_the_line_after_them() {
        // The LF of a CRLF, and blank lines before a record.
        assert_eq!(lines_of(b"a\r\nb", &[2]), [2]);
        assert_eq!(lines_of(b"a\r\n\r\n\r\nb", &[1]), [4]);
    }

    #[test]
    fn a_crlf_split_across_reads_is_one_line_break() {
        struct Bytewise<'a>(&'a [u8]);
        impl Read for Bytewise<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let Some((first, rest)) = self.0.split_first() else {
                    return Ok(0);
                };
                buf[0] = *first;
                self.0 = rest;
                Ok(1)
            }
        }
        let mut reader = LineCounting::new(Bytewise(b"a\r\nb\r\nc"));
        io::copy(&mut reader, &mut io::sink()).unwrap();
        assert_eq!([reader.line_of(3), reader.line_of(6)], [2, 3]);
    }
}
