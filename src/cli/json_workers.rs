//! `kwire read --json` on several threads.
//!
//! Turning bodies into JSON is most of what `--json` costs, and each
//! exchange's text depends on that exchange alone. So the reading thread
//! runs the session as for lines (bodies only skimmed, see
//! `AnalyzerOptions::json_later`) and hands the exchanges, in batches, to
//! worker threads. A worker decodes each body into JSON
//! (`session::decode_for_json`), applies the filter and writes the NDJSON
//! lines; the reading thread writes the batches' text out in capture
//! order. The output is byte for byte what one thread writes.
//!
//! A body whose JSON is large is not copied into a batch's text: the
//! worker leaves its exchange for the reading thread to write, which sends
//! the body straight to the output, as one thread does.
//!
//! The reading thread is one of the threads that decode: when the workers
//! have as many batches as they may hold, it writes the next batch itself
//! instead of waiting, so `--threads N` keeps N threads busy, not N + 1
//! on N cores. Only when those batches, too, wait for an older one does
//! it wait. So at most a few batches are out at once, and memory stays
//! bounded however large the capture.

use std::collections::BTreeMap;
use std::io;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::Scope;

use kwire::codec::DecodeOptions;
use kwire::display::write_exchange_json;
use kwire::exchange::Exchange;
use kwire::filter::Filter;
use kwire::frame::DecodedFrame;
use kwire::json::JsonWriter;
use kwire::session::decode_for_json;

/// A batch is sent once it holds this many exchanges (by default) ...
pub const BATCH_EXCHANGES: usize = 64;
/// ... or this many bytes of frames.
const BATCH_BYTES: usize = 1 << 20;
/// Text buffers larger than this (made for a batch with a huge body) are
/// freed rather than kept for the next batches.
const SPARE_MAX: usize = 8 << 20;
/// Batches in flight per worker: enough that a worker still has the next
/// one when the reading thread has written one itself.
const IN_FLIGHT_PER_WORKER: usize = 6;
/// Batches the reading thread wrote itself that may wait for an older one
/// to be written.
const OWN_WAITING_MAX: usize = 6;
/// Bytes of frames in all the batches not yet written out (a few large
/// frames make a batch), which bounds memory whatever the capture holds.
const OUT_BYTES_MAX: usize = 8 << 20;
/// An exchange with a body's JSON of this many bytes or more is written by
/// the reading thread (the size from which the JSON writer passes a text
/// straight to its stream).
pub const DIRECT_BODY_MIN: usize = JsonWriter::FLUSH_AT / 4;

/// Exchanges to turn into NDJSON, each with the capture's first
/// timestamp, which times are shown relative to.
#[derive(Default)]
struct Batch {
    number: u64,
    exchanges: Vec<(Exchange, i64)>,
    bytes: usize,
}

/// A batch's NDJSON text, and its exchanges, each with whether the filter
/// kept it, stripped of what the worker made for them (see [`strip`])
/// unless the reading thread is to write them.
struct Done {
    number: u64,
    /// Bytes of the batch's frames.
    bytes: usize,
    text: Vec<u8>,
    /// Exchanges the reading thread writes, in order, each where its line
    /// goes in `text`.
    direct: Vec<Direct>,
    exchanges: Vec<(Exchange, bool)>,
}

/// An exchange of a batch that the reading thread writes.
struct Direct {
    /// Where its line goes in the batch's text.
    at: usize,
    /// Its place in the batch.
    index: usize,
    first_ns: i64,
}

/// What a worker needs besides its batches.
#[derive(Clone, Copy)]
pub struct Work<'a> {
    /// How bodies are decoded into JSON.
    pub decode: &'a DecodeOptions,
    pub filter: &'a Filter,
    /// Exchanges with a body's JSON this long are written by the reading
    /// thread ([`DIRECT_BODY_MIN`]; the tests make it small).
    pub direct_body_min: usize,
}

/// The reading thread's end of the workers.
pub struct JsonWorkers<'w> {
    jobs: Option<SyncSender<Batch>>,
    results: Receiver<Done>,
    /// Text buffers written out, for the workers and the reading thread
    /// to fill again: large buffers made afresh for every batch cost more
    /// in page faults than the text in them. The pool holds at most one
    /// per batch that can be out, and a buffer beyond that is freed.
    spare: SyncSender<Vec<u8>>,
    spares: Spares,
    batch: Batch,
    /// Exchanges that fill a batch.
    batch_exchanges: usize,
    /// Batches sent to the workers and not yet back.
    in_flight: usize,
    max_in_flight: usize,
    /// Bytes of frames in the batches not yet written out.
    out_bytes: usize,
    /// Batches finished out of order, waiting for an older one.
    waiting: BTreeMap<u64, Done>,
    next_to_write: u64,
    work: Work<'w>,
}

impl<'w> JsonWorkers<'w> {
    /// Starts `workers` threads in `scope`, to be sent batches of
    /// `batch_exchanges` exchanges.
    pub fn start<'scope>(
        scope: &'scope Scope<'scope, 'w>,
        workers: usize,
        batch_exchanges: usize,
        work: Work<'w>,
    ) -> JsonWorkers<'w> {
        let workers = workers.max(1);
        let max_in_flight = IN_FLIGHT_PER_WORKER * workers;
        let (jobs, inbox) = mpsc::sync_channel::<Batch>(max_in_flight);
        let (done, results) = mpsc::channel();
        let (spare, spares) = mpsc::sync_channel(max_in_flight + OWN_WAITING_MAX + 1);
        let inbox = Arc::new(Mutex::new(inbox));
        let spares = Arc::new(Mutex::new(spares));
        for _ in 0..workers {
            let (inbox, spares, done) = (Arc::clone(&inbox), Arc::clone(&spares), done.clone());
            scope.spawn(move || {
                // Each lock is held only to take one item.
                let next = || inbox.lock().ok()?.recv().ok();
                let buffer = || take_spare(&spares);
                while let Some(batch) = next() {
                    let text = buffer().unwrap_or_default();
                    if done.send(write_batch(batch, text, work)).is_err() {
                        return;
                    }
                }
            });
        }
        JsonWorkers {
            jobs: Some(jobs),
            results,
            spare,
            spares,
            batch: Batch::default(),
            batch_exchanges: batch_exchanges.max(1),
            in_flight: 0,
            max_in_flight,
            out_bytes: 0,
            waiting: BTreeMap::new(),
            next_to_write: 0,
            work,
        }
    }

    /// Adds an exchange; text of earlier ones that is ready is written to
    /// `out`, and the exchanges kept for `--write` passed to `keep`.
    pub fn push(
        &mut self,
        exchange: Exchange,
        first_ns: i64,
        out: &mut JsonWriter<'_>,
        keep: &mut dyn FnMut(&Exchange),
    ) -> io::Result<()> {
        self.batch.bytes += [&exchange.request, &exchange.response]
            .into_iter()
            .flatten()
            .map(|message| message.frame.size)
            .sum::<usize>();
        self.batch.exchanges.push((exchange, first_ns));
        if self.batch.exchanges.len() >= self.batch_exchanges || self.batch.bytes >= BATCH_BYTES {
            self.send(out, keep)?;
        }
        // Whatever is ready meanwhile.
        while let Ok(done) = self.results.try_recv() {
            self.in_flight -= 1;
            self.write_in_order(done, out, keep)?;
        }
        Ok(())
    }

    /// Sends the last batch, and writes everything still to come.
    pub fn finish(
        mut self,
        out: &mut JsonWriter<'_>,
        keep: &mut dyn FnMut(&Exchange),
    ) -> io::Result<()> {
        if !self.batch.exchanges.is_empty() {
            self.send(out, keep)?;
        }
        // Workers stop once the batches are gone.
        self.jobs = None;
        while self.in_flight > 0 {
            self.wait_for_one(out, keep)?;
        }
        Ok(())
    }

    /// Waits for a batch to be done, and writes what is then in order.
    fn wait_for_one(
        &mut self,
        out: &mut JsonWriter<'_>,
        keep: &mut dyn FnMut(&Exchange),
    ) -> io::Result<()> {
        let Ok(done) = self.results.recv() else {
            return Err(io::Error::other("a --json worker thread stopped"));
        };
        self.in_flight -= 1;
        self.write_in_order(done, out, keep)
    }

    fn send(
        &mut self,
        out: &mut JsonWriter<'_>,
        keep: &mut dyn FnMut(&Exchange),
    ) -> io::Result<()> {
        // While the workers hold all they may, the reading thread writes
        // batches itself, as many as may wait for an older one; then it
        // waits for the oldest.
        while self.in_flight > 0
            && (self.in_flight >= self.max_in_flight && self.waiting.len() >= OWN_WAITING_MAX
                || self.out_bytes >= OUT_BYTES_MAX)
        {
            self.wait_for_one(out, keep)?;
        }
        let number = self.batch.number;
        let batch = std::mem::replace(
            &mut self.batch,
            Batch {
                number: number + 1,
                exchanges: Vec::with_capacity(self.batch_exchanges),
                bytes: 0,
            },
        );
        self.out_bytes += batch.bytes;
        if self.in_flight >= self.max_in_flight {
            let text = take_spare(&self.spares).unwrap_or_default();
            let done = write_batch(batch, text, self.work);
            return self.write_in_order(done, out, keep);
        }
        let sent = self
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(batch).is_ok());
        if !sent {
            return Err(io::Error::other("the --json worker threads stopped"));
        }
        self.in_flight += 1;
        Ok(())
    }

    fn write_in_order(
        &mut self,
        done: Done,
        out: &mut JsonWriter<'_>,
        keep: &mut dyn FnMut(&Exchange),
    ) -> io::Result<()> {
        self.waiting.insert(done.number, done);
        while let Some(done) = self.waiting.remove(&self.next_to_write) {
            self.next_to_write += 1;
            self.out_bytes -= done.bytes;
            for (exchange, kept) in &done.exchanges {
                if *kept {
                    keep(exchange);
                }
            }
            let mut from = 0;
            for direct in &done.direct {
                out.lines(done.text.get(from..direct.at).unwrap_or_default())?;
                if let Some((exchange, _)) = done.exchanges.get(direct.index) {
                    write_exchange_json(out, exchange, &exchange.summary(), direct.first_ns);
                    out.end_line()?;
                }
                from = direct.at;
            }
            out.lines(done.text.get(from..).unwrap_or_default())?;
            let mut text = done.text;
            if text.capacity() <= SPARE_MAX {
                text.clear();
                // A full pool, or workers that have stopped, need no more.
                let _ = self.spare.try_send(text);
            }
        }
        Ok(())
    }
}

/// The pool of text buffers, shared by the workers and the reading thread.
type Spares = Arc<Mutex<Receiver<Vec<u8>>>>;

/// A text buffer from the pool, if it holds one.
fn take_spare(spares: &Spares) -> Option<Vec<u8>> {
    spares.lock().ok()?.try_recv().ok()
}

/// A worker's job: the batch's exchanges the filter keeps, as NDJSON,
/// written into `text`.
fn write_batch(batch: Batch, text: Vec<u8>, work: Work<'_>) -> Done {
    let mut json = JsonWriter::in_buffer(text);
    let mut exchanges = Vec::with_capacity(batch.exchanges.len());
    let mut direct = Vec::new();
    for (index, (mut exchange, first_ns)) in batch.exchanges.into_iter().enumerate() {
        decode_for_json(&mut exchange, work.decode);
        let summary = exchange.summary();
        let kept = work.filter.matches_with(&exchange, Some(&summary));
        let by_reader = kept && largest_body_json(&exchange) >= work.direct_body_min;
        if by_reader {
            direct.push(Direct {
                at: json.buffered(),
                index,
                first_ns,
            });
        } else if kept {
            write_exchange_json(&mut json, &exchange, &summary, first_ns);
            // In memory, ending a line cannot fail.
            let _ = json.end_line();
        }
        drop(summary);
        if !by_reader {
            strip(&mut exchange);
        }
        exchanges.push((exchange, kept));
    }
    Done {
        number: batch.number,
        bytes: batch.bytes,
        text: json.into_bytes(),
        direct,
        exchanges,
    }
}

/// The length of the longest body's JSON text an exchange holds.
fn largest_body_json(exchange: &Exchange) -> usize {
    [&exchange.request, &exchange.response]
        .into_iter()
        .flatten()
        .filter_map(|message| message.frame.body_json.as_ref())
        .map(Vec::len)
        .max()
        .unwrap_or(0)
}

/// Frees what the worker made for an exchange (its frames decoded again,
/// and its summary), and leaves the rest, which the reading thread made,
/// for the reading thread to free: with the system allocator, memory
/// freed by another thread than the one that took it contends for that
/// thread's heap, and that cost more than the JSON saved.
fn strip(exchange: &mut Exchange) {
    exchange.summary = None;
    for message in [&mut exchange.request, &mut exchange.response]
        .into_iter()
        .flatten()
    {
        // The frame's bytes go back with it.
        let raw = std::mem::take(&mut message.frame.raw);
        message.frame = DecodedFrame {
            raw,
            body_start: message.frame.body_start,
            ..DecodedFrame::default()
        };
    }
}
