//! Percentiles over raw samples (nanoseconds). Every sample is kept and sorted: exact, and
//! small enough at these counts (a few million at most).

#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub count: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// Summarize nanosecond samples; values in the summary are microseconds.
pub fn summarize(mut samples: Vec<u64>) -> Option<Summary> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let at = |q: f64| {
        let idx = ((samples.len() - 1) as f64 * q).round() as usize;
        samples[idx] as f64 / 1000.0
    };
    Some(Summary {
        count: samples.len(),
        p50: at(0.50),
        p99: at(0.99),
        max: *samples.last().unwrap() as f64 / 1000.0,
    })
}

/// Microseconds, printed with a unit that keeps 3–4 significant digits.
pub fn fmt_us(us: f64) -> String {
    if us >= 10_000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.1} µs")
    }
}

/// An integer with thousands separators.
pub fn fmt_count(v: f64) -> String {
    let n = v.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
