//! Plots of a chaos run: operation latency and throughput over time, with the nemesis's faults
//! shaded behind them, as SVG files a browser opens.
//!
//! ```text
//!   history.jsonl ──┐
//!                   ├──► latency_svg    ──► latency.svg     (one dot per completed operation)
//!   nemesis.jsonl ──┴──► throughput_svg ──► throughput.svg  (ok operations per second, per f)
//! ```
//!
//! Both plots share the x axis, seconds since the run began (the history's `time_ns` clock, on
//! which the [`Timeline`] is recorded too), and draw every fault as a translucent band from its
//! start to its end, one colour per fault kind, named in the legend. A fault still in place when
//! the run ended is drawn to the right edge.
//!
//! Choices, and why:
//! - SVG only, rendered into memory and then written with one `std::fs::write`: no system fonts,
//!   no image codecs, and an I/O error names the file. Text is emitted as SVG `<text>` elements
//!   and laid out by the viewer; plotters only estimates its size (its font-free "naive" layout),
//!   so nothing here can fail for want of a font.
//! - Latency is on a log scale (the interesting range spans from sub-millisecond reads to
//!   multi-second timeouts). A latency of 0 is drawn at [`LATENCY_FLOOR_MS`].
//! - An operation with no completion (the run ended first) has no latency; it is marked by a
//!   black triangle on the top edge, at its invoke time, so that stuck operations stay visible.
//! - Throughput buckets are 1 s wide, widened to whole seconds so that there are at most
//!   [`BUCKETS_MAX`]: a history whose clock is corrupt (a `time_ns` near `u64::MAX`) then costs
//!   bounded memory instead of billions of buckets.
//!
//! The SVG grows by roughly 150 bytes per operation drawn; a run of 100 000 operations gives a
//! file of about 15 MB, which browsers still open.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::coord::ranged1d::Ranged;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::history::{EventType, History};
use crate::timeline::Timeline;

/// Width of both plots, in pixels.
const WIDTH_PX: u32 = 1200;
/// Height of both plots, in pixels.
const HEIGHT_PX: u32 = 600;
/// Opacity of a fault's band; low enough that the points behind stay visible.
const FAULT_ALPHA: f64 = 0.2;
/// The latency drawn for an operation that took no measurable time (log scales have no 0).
pub const LATENCY_FLOOR_MS: f64 = 0.001;
/// The most throughput buckets a plot has; see the [module docs](self).
pub const BUCKETS_MAX: u64 = 10_000;

const NS_PER_S: f64 = 1e9;
const NS_PER_MS: f64 = 1e6;

/// Why a plot could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlotError {
    /// plotters refused to draw (it should not, for any history; this is a bug to report).
    #[error("cannot draw the {plot} plot: {message}")]
    Draw {
        /// Which plot: `latency` or `throughput`.
        plot: &'static str,
        /// What plotters said.
        message: String,
    },
    /// The SVG could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// How an operation ended, for the latency plot's series.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Ok,
    Fail,
    Info,
}

impl Outcome {
    fn of(kind: EventType) -> Option<Outcome> {
        match kind {
            EventType::Ok => Some(Outcome::Ok),
            EventType::Fail => Some(Outcome::Fail),
            EventType::Info => Some(Outcome::Info),
            EventType::Invoke => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
        }
    }
}

/// A fault's band on the x axis, in seconds, with the colour of its kind.
#[derive(Clone, Debug)]
struct Band {
    begin_s: f64,
    end_s: f64,
    kind_index: usize,
}

/// The faults of a run as bands, and their kinds in order of first appearance.
#[derive(Clone, Debug, Default)]
struct Bands {
    bands: Vec<Band>,
    kinds: Vec<String>,
}

/// Writes the latency plot of `history` to `path` (an SVG file, replaced if it exists): one point
/// per completed operation at (invoke time in s, latency in ms on a log scale), one colour per
/// (f, outcome), with ok as filled circles, fail as crosses and info as filled triangles; open
/// operations as black triangles on the top edge; faults of `timeline` shaded behind.
///
/// # Errors
/// [`PlotError::Write`] if the file cannot be written; [`PlotError::Draw`] if plotters fails.
pub fn latency_svg(history: &History, timeline: &Timeline, path: &Path) -> Result<(), PlotError> {
    let svg = latency_svg_text(history, timeline)?;
    write(path, &svg)
}

/// Writes the throughput plot of `history` to `path` (an SVG file, replaced if it exists): for
/// each `f`, the operations that completed ok per second, counted by completion time in 1 s
/// buckets `[t, t + 1)` (see [`BUCKETS_MAX`]), drawn at the bucket's middle; faults of
/// `timeline` shaded behind.
///
/// # Errors
/// [`PlotError::Write`] if the file cannot be written; [`PlotError::Draw`] if plotters fails.
pub fn throughput_svg(
    history: &History,
    timeline: &Timeline,
    path: &Path,
) -> Result<(), PlotError> {
    let svg = throughput_svg_text(history, timeline)?;
    write(path, &svg)
}

fn write(path: &Path, svg: &str) -> Result<(), PlotError> {
    std::fs::write(path, svg).map_err(|source| PlotError::Write { path: path.to_owned(), source })
}

/// The last instant of the run in ns: the last event or the last fault boundary.
fn run_end_ns(history: &History, timeline: &Timeline) -> u64 {
    let events = history.events().last().map_or(0, |e| e.time_ns);
    let faults = timeline.faults.iter().map(|f| f.start_ns.max(f.end_ns.unwrap_or(0)));
    faults.fold(events, u64::max)
}

/// The x axis: `[0, end]` in seconds, a little wider so that the last point is not on the edge.
fn x_range_s(history: &History, timeline: &Timeline) -> std::ops::Range<f64> {
    let end_s = run_end_ns(history, timeline) as f64 / NS_PER_S;
    0.0..(end_s * 1.02).max(1.0)
}

fn bands(timeline: &Timeline, x_end_s: f64) -> Bands {
    let mut out = Bands::default();
    for fault in &timeline.faults {
        let kind_index = match out.kinds.iter().position(|k| *k == fault.kind) {
            Some(i) => i,
            None => {
                out.kinds.push(fault.kind.clone());
                out.kinds.len() - 1
            }
        };
        let start_s = fault.start_ns as f64 / NS_PER_S;
        let end_s = fault.end_ns.map_or(x_end_s, |end| end as f64 / NS_PER_S);
        // A timeline is written by the harness, but read back from a file: never trust its order.
        let (begin_s, end_s) = (start_s.min(end_s), start_s.max(end_s));
        out.bands.push(Band { begin_s, end_s, kind_index });
    }
    out
}

/// The colour of fault kind `i`: warm colours, distinct from most of the series' palette.
fn fault_colour(i: usize) -> RGBColor {
    const COLOURS: [RGBColor; 6] = [
        RGBColor(230, 120, 0),
        RGBColor(200, 0, 0),
        RGBColor(140, 60, 200),
        RGBColor(120, 120, 120),
        RGBColor(0, 150, 150),
        RGBColor(160, 110, 40),
    ];
    COLOURS[i % COLOURS.len()]
}

/// Draws every fault of `bands` as a band over `[y_lo, y_hi]`, with one legend entry per kind.
fn shade_faults<DB, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, Y>>,
    bands: &Bands,
    y_lo: f64,
    y_hi: f64,
) -> Result<(), String>
where
    DB: DrawingBackend,
    Y: Ranged<ValueType = f64>,
{
    for (kind_index, kind) in bands.kinds.iter().enumerate() {
        let style = fault_colour(kind_index).mix(FAULT_ALPHA).filled();
        let rects = bands
            .bands
            .iter()
            .filter(|b| b.kind_index == kind_index)
            .map(|b| Rectangle::new([(b.begin_s, y_lo), (b.end_s, y_hi)], style));
        chart
            .draw_series(rects)
            .map_err(|e| e.to_string())?
            .label(format!("fault: {kind}"))
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], style));
    }
    Ok(())
}

/// The latency plot as SVG text.
fn latency_svg_text(history: &History, timeline: &Timeline) -> Result<String, PlotError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH_PX, HEIGHT_PX)).into_drawing_area();
        draw_latency(&root, history, timeline)
            .and_then(|()| root.present().map_err(|e| e.to_string()))
            .map_err(|message| PlotError::Draw { plot: "latency", message })?;
    }
    Ok(svg)
}

/// The points of the latency plot: per (f, outcome), (invoke s, latency ms); and per f, the
/// invoke times of operations that never completed.
type LatencyPoints = (BTreeMap<(String, Outcome), Vec<(f64, f64)>>, BTreeMap<String, Vec<f64>>);

fn latency_points(history: &History) -> LatencyPoints {
    let events = history.events();
    let mut done: BTreeMap<(String, Outcome), Vec<(f64, f64)>> = BTreeMap::new();
    let mut open: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for op in history.operations() {
        let invoke = &events[op.invoke];
        let x_s = invoke.time_ns as f64 / NS_PER_S;
        let completion = op.completion.map(|c| &events[c]);
        match completion.and_then(|c| Outcome::of(c.kind).map(|o| (c, o))) {
            Some((c, outcome)) => {
                let latency_ms = c.time_ns.saturating_sub(invoke.time_ns) as f64 / NS_PER_MS;
                let point = (x_s, latency_ms.max(LATENCY_FLOOR_MS));
                done.entry((invoke.f.clone(), outcome)).or_default().push(point);
            }
            None => open.entry(invoke.f.clone()).or_default().push(x_s),
        }
    }
    (done, open)
}

/// The y axis of the latency plot: a factor of 2 of room below the fastest and above the
/// slowest operation, so that no point sits on an edge (open operations go on the top edge).
fn latency_range_ms<'a>(latencies: impl Iterator<Item = &'a f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, 0.0_f64);
    for &ms in latencies {
        lo = lo.min(ms);
        hi = hi.max(ms);
    }
    if !lo.is_finite() || hi <= 0.0 {
        return (1.0, 1000.0);
    }
    // Latencies are at least LATENCY_FLOOR_MS, so lo > 0 and the log scale is defined.
    (lo / 2.0, hi * 2.0)
}

fn draw_latency<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    history: &History,
    timeline: &Timeline,
) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let x_range = x_range_s(history, timeline);
    let bands = bands(timeline, x_range.end);
    let (points, open) = latency_points(history);
    let (y_lo, y_hi) = latency_range_ms(points.values().flatten().map(|(_, ms)| ms));
    let mut chart = ChartBuilder::on(root)
        .caption("operation latency", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range, (y_lo..y_hi).log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("invoke time (s)")
        .y_desc("latency (ms, log scale)")
        .draw()
        .map_err(|e| e.to_string())?;
    shade_faults(&mut chart, &bands, y_lo, y_hi)?;
    for (i, ((f, outcome), points)) in points.iter().enumerate() {
        let colour = Palette99::pick(i).to_rgba();
        let label = format!("{f} {}", outcome.as_str());
        let series = match outcome {
            Outcome::Ok => chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 2, colour.filled()).into_dyn())),
            Outcome::Fail => chart.draw_series(
                points.iter().map(|&p| Cross::new(p, 3, colour.stroke_width(1)).into_dyn()),
            ),
            Outcome::Info => chart.draw_series(
                points.iter().map(|&p| TriangleMarker::new(p, 4, colour.filled()).into_dyn()),
            ),
        }
        .map_err(|e| e.to_string())?;
        let outcome = *outcome;
        series.label(label).legend(move |(x, y)| match outcome {
            Outcome::Ok => Circle::new((x + 6, y), 3, colour.filled()).into_dyn(),
            Outcome::Fail => Cross::new((x + 6, y), 4, colour.stroke_width(1)).into_dyn(),
            Outcome::Info => TriangleMarker::new((x + 6, y), 4, colour.filled()).into_dyn(),
        });
    }
    for (f, xs) in &open {
        let style = BLACK.stroke_width(1);
        chart
            .draw_series(xs.iter().map(|&x| TriangleMarker::new((x, y_hi), 5, style)))
            .map_err(|e| e.to_string())?
            .label(format!("{f} open (no completion)"))
            .legend(move |(x, y)| TriangleMarker::new((x + 6, y), 5, style));
    }
    draw_legend(&mut chart)
}

fn draw_legend<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    X: Ranged,
    Y: Ranged,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}

/// The throughput plot as SVG text.
fn throughput_svg_text(history: &History, timeline: &Timeline) -> Result<String, PlotError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH_PX, HEIGHT_PX)).into_drawing_area();
        draw_throughput(&root, history, timeline)
            .and_then(|()| root.present().map_err(|e| e.to_string()))
            .map_err(|message| PlotError::Draw { plot: "throughput", message })?;
    }
    Ok(svg)
}

/// Ok completions per second of each `f` that was invoked, in buckets of `bucket_s` seconds.
#[derive(Debug)]
struct Throughput {
    bucket_s: u64,
    /// Per f, the rate (operations per second) of each bucket, from the run's start.
    rates: BTreeMap<String, Vec<f64>>,
}

fn throughput(history: &History, timeline: &Timeline) -> Throughput {
    let end_s = run_end_ns(history, timeline) / 1_000_000_000;
    // The smallest whole number of seconds that keeps the buckets within BUCKETS_MAX.
    let bucket_s = (end_s / BUCKETS_MAX) + 1;
    let buckets = end_s / bucket_s + 1;
    debug_assert!(buckets <= BUCKETS_MAX, "{buckets} buckets of {bucket_s} s for {end_s} s");
    let buckets = usize::try_from(buckets).unwrap_or(usize::MAX).min(BUCKETS_MAX as usize);
    let mut counts: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let events = history.events();
    for op in history.operations() {
        let f = &events[op.invoke].f;
        let bucket_counts = counts.entry(f.clone()).or_insert_with(|| vec![0; buckets]);
        let Some(done) = op.completion.map(|c| &events[c]) else { continue };
        if done.kind == EventType::Ok {
            let bucket = done.time_ns / 1_000_000_000 / bucket_s;
            let bucket = usize::try_from(bucket).unwrap_or(usize::MAX).min(buckets - 1);
            bucket_counts[bucket] += 1;
        }
    }
    let rates = counts
        .into_iter()
        .map(|(f, counts)| (f, counts.into_iter().map(|n| n as f64 / bucket_s as f64).collect()))
        .collect();
    Throughput { bucket_s, rates }
}

fn draw_throughput<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    history: &History,
    timeline: &Timeline,
) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let x_range = x_range_s(history, timeline);
    let bands = bands(timeline, x_range.end);
    let throughput = throughput(history, timeline);
    let rate_max = throughput.rates.values().flatten().fold(0.0_f64, |a, &b| a.max(b));
    let y_hi = (rate_max * 1.1).max(1.0);
    let caption = match throughput.bucket_s {
        1 => "ok operations per second (1 s buckets)".to_owned(),
        s => format!("ok operations per second ({s} s buckets)"),
    };
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range, 0.0..y_hi)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("completion time (s)")
        .y_desc("ok operations / s")
        .draw()
        .map_err(|e| e.to_string())?;
    shade_faults(&mut chart, &bands, 0.0, y_hi)?;
    let bucket_s = throughput.bucket_s as f64;
    for (i, (f, rates)) in throughput.rates.iter().enumerate() {
        let colour = Palette99::pick(i).to_rgba();
        let points = rates.iter().enumerate().map(|(b, &r)| ((b as f64 + 0.5) * bucket_s, r));
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(f.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 12, y)], colour.stroke_width(2)));
    }
    draw_legend(&mut chart)
}

// The tests below take this file past the ~500-line soft limit; the code above is ~330 lines,
// and the tests stay beside it as the style asks.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Event;

    const S: u64 = 1_000_000_000;
    const MS: u64 = 1_000_000;

    /// `(process, f, invoke_ns, completion)`; see [`must_history`].
    type SyntheticOp<'a> = (u64, &'a str, u64, Option<(EventType, u64)>);

    /// A history from operations `(process, f, invoke_ns, completion)`, where the completion is
    /// `(kind, time_ns)` or `None` for an operation the run never completed. Events are ordered
    /// by time, as the recorder writes them.
    fn must_history(ops: &[SyntheticOp<'_>]) -> History {
        let mut events = Vec::new();
        for &(process, f, invoke_ns, completion) in ops {
            let invoke = Event::invoke(process, f, Some("k"), None, invoke_ns);
            if let Some((kind, at_ns)) = completion {
                let error = (kind != EventType::Ok).then_some("timeout");
                events.push(Event::complete(&invoke, kind, None, error, at_ns));
            }
            events.push(invoke);
        }
        // Stable: an invoke and its completion at the same instant keep their order.
        events.sort_by_key(|e| (e.time_ns, e.kind != EventType::Invoke));
        History::from_events(events).expect("the synthetic history is well formed")
    }

    /// Ten seconds of reads and writes by 4 processes, with fails, infos and one open write.
    fn synthetic() -> (History, Timeline) {
        let mut ops = Vec::new();
        let mut next_process = 0;
        for step in 0..100_u64 {
            let at_ns = step * 100 * MS;
            // Faults (3 s to 6 s) slow everything down and make some operations time out.
            let in_fault = (3 * S..6 * S).contains(&at_ns);
            let f = if step % 3 == 0 { "write" } else { "read" };
            let (kind, latency_ns) = match step % 10 {
                _ if in_fault && step % 4 == 0 => (EventType::Info, 90 * MS),
                7 => (EventType::Fail, 2 * MS),
                _ if in_fault => (EventType::Ok, 50 * MS),
                _ => (EventType::Ok, (step % 5 + 1) * MS),
            };
            // A fresh process per operation keeps every process sequential, info or not.
            ops.push((next_process, f, at_ns, Some((kind, at_ns + latency_ns))));
            next_process += 1;
        }
        ops.push((next_process, "write", 9_950 * MS, None));
        let history = must_history(&ops);
        let mut timeline = Timeline::default();
        let partition = timeline.begin(3 * S, "partition", "isolate node 3");
        timeline.end(partition, 6 * S);
        timeline.begin(8 * S, "kill", "kill node 1 (never restarted)");
        (history, timeline)
    }

    fn must_read(path: &Path) -> String {
        std::fs::read_to_string(path).expect("the plot was written")
    }

    fn assert_svg(svg: &str) {
        assert!(
            svg.starts_with("<svg") || svg.starts_with("<?xml"),
            "{}",
            &svg[..svg.len().min(80)]
        );
        assert!(svg.trim_end().ends_with("</svg>"), "the SVG is closed");
    }

    /// The contents of the `<text>` elements; plotters writes each on the line after its tag.
    fn texts(svg: &str) -> Vec<&str> {
        let mut lines = svg.lines();
        let mut out = Vec::new();
        while let Some(line) = lines.next() {
            if line.trim_start().starts_with("<text") {
                out.extend(lines.next().map(str::trim));
            }
        }
        out
    }

    /// The `<rect>` elements drawn in fault kind `i`'s translucent colour.
    fn fault_rects(svg: &str, i: usize) -> usize {
        let RGBColor(r, g, b) = fault_colour(i);
        let fill = format!("opacity=\"{FAULT_ALPHA}\" fill=\"#{r:02X}{g:02X}{b:02X}\"");
        svg.lines().filter(|l| l.trim_start().starts_with("<rect") && l.contains(&fill)).count()
    }

    #[test]
    fn both_plots_of_a_run_are_svg_with_points_lines_and_shaded_faults() {
        let (history, timeline) = synthetic();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let latency = dir.path().join("latency.svg");
        let throughput = dir.path().join("throughput.svg");
        latency_svg(&history, &timeline, &latency).expect("the latency plot");
        throughput_svg(&history, &timeline, &throughput).expect("the throughput plot");

        // Latency: every completed operation is a mark; the faults are bands with a legend.
        let svg = must_read(&latency);
        assert_svg(&svg);
        assert!(svg.len() > 10_000, "{} bytes", svg.len());
        // One band per fault plus one legend swatch per kind.
        assert_eq!(fault_rects(&svg, 0), 2, "the partition's band and legend swatch");
        assert_eq!(fault_rects(&svg, 1), 2, "the kill's band (open-ended) and legend swatch");
        let labels = texts(&svg);
        for label in [
            "fault: partition",
            "fault: kill",
            "read ok",
            "write fail",
            "read info",
            "write open (no completion)",
            "invoke time (s)",
        ] {
            assert!(labels.contains(&label), "{label:?} is not among {labels:?}");
        }
        let ok = history
            .operations()
            .iter()
            .filter(|op| op.completion.is_some_and(|c| history.events()[c].kind == EventType::Ok))
            .count();
        // Each ok operation is a circle; the legend adds one per ok series (read, write).
        assert_eq!(svg.matches("<circle").count(), ok + 2);

        // Throughput: one line per f, the same bands.
        let svg = must_read(&throughput);
        assert_svg(&svg);
        assert!(svg.len() > 10_000, "{} bytes", svg.len());
        assert_eq!(fault_rects(&svg, 0), 2);
        assert_eq!(fault_rects(&svg, 1), 2);
        // Two series lines and their two legend lines, the only 2-pixel-wide lines.
        let wide = |l: &&str| l.starts_with("<polyline") && l.contains(r#"stroke-width="2""#);
        assert_eq!(svg.lines().filter(wide).count(), 4);
        let labels = texts(&svg);
        assert!(labels.contains(&"read") && labels.contains(&"write"), "{labels:?}");
    }

    #[test]
    fn an_empty_history_and_timeline_give_empty_but_valid_plots() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (history, timeline) = (History::new(), Timeline::default());
        for (name, plot) in [
            ("latency.svg", latency_svg as fn(&History, &Timeline, &Path) -> _),
            ("throughput.svg", throughput_svg),
        ] {
            let path = dir.path().join(name);
            plot(&history, &timeline, &path).expect("an empty plot");
            let svg = must_read(&path);
            assert_svg(&svg);
            assert_eq!(fault_rects(&svg, 0), 0, "{name}: no faults, no bands");
            assert!(!svg.contains("<circle"), "{name}: no operations, no points");
        }
    }

    #[test]
    fn degenerate_inputs_do_not_panic_and_stay_bounded() {
        // Zero latency, a clock near u64::MAX, a fault that ends before it starts, and open
        // operations only: everything must draw, in bounded memory.
        let far = u64::MAX - 10;
        let history = must_history(&[
            (0, "read", 0, Some((EventType::Ok, 0))),
            (1, "read", 5, None),
            (2, "write", far, Some((EventType::Ok, far + 1))),
        ]);
        let timeline = Timeline {
            faults: vec![crate::timeline::Fault {
                start_ns: 9 * S,
                end_ns: Some(2 * S),
                kind: "pause".into(),
                what: "backwards".into(),
            }],
        };
        let t = throughput(&history, &timeline);
        assert!(t.rates["read"].len() as u64 <= BUCKETS_MAX && t.bucket_s > 1, "{}", t.bucket_s);
        assert_eq!(t.rates["write"].last().copied(), Some(1.0 / t.bucket_s as f64));
        let svg = latency_svg_text(&history, &timeline).expect("the latency plot");
        assert_svg(&svg);
        assert_eq!(fault_rects(&svg, 0), 2, "the backwards fault is drawn as a band anyway");
        assert_svg(&throughput_svg_text(&history, &timeline).expect("the throughput plot"));
        // Only an open operation: no latency at all.
        let only_open = must_history(&[(0, "read", 5 * S, None)]);
        let svg = latency_svg_text(&only_open, &Timeline::default()).expect("the latency plot");
        assert!(svg.contains("read open (no completion)"));
    }

    #[test]
    fn throughput_counts_ok_completions_per_second_by_completion_time() {
        let history = must_history(&[
            (0, "read", 100 * MS, Some((EventType::Ok, 500 * MS))),
            (1, "read", 200 * MS, Some((EventType::Ok, 700 * MS))),
            (2, "read", 800 * MS, Some((EventType::Ok, 1_200 * MS))),
            (3, "read", 900 * MS, Some((EventType::Fail, 1_300 * MS))),
            (4, "write", 1_000 * MS, Some((EventType::Info, 2_500 * MS))),
        ]);
        let t = throughput(&history, &Timeline::default());
        assert_eq!(t.bucket_s, 1);
        assert_eq!(t.rates["read"], [2.0, 1.0, 0.0], "fail and info are not throughput");
        assert_eq!(t.rates["write"], [0.0, 0.0, 0.0], "an f with no ok still has its line");
    }

    #[test]
    fn the_latency_axis_leaves_room_around_every_point() {
        assert_eq!(latency_range_ms([0.5, 20.0].iter()), (0.25, 40.0));
        assert_eq!(latency_range_ms([1.0].iter()), (0.5, 2.0));
        assert_eq!(latency_range_ms([LATENCY_FLOOR_MS].iter()), (0.0005, 0.002));
        assert_eq!(latency_range_ms([].iter()), (1.0, 1000.0));
    }

    #[test]
    fn an_unwritable_path_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("no-such-dir").join("latency.svg");
        let e = latency_svg(&History::new(), &Timeline::default(), &path).expect_err("no dir");
        assert!(matches!(e, PlotError::Write { .. }), "{e:?}");
        assert!(e.to_string().contains("no-such-dir"), "{e}");
    }
}
