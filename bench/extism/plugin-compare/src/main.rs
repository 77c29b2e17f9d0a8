//! Latency of invoking one trivial command (`world` → `Hello, **world**!`), in one process:
//!
//! - `plain`: the same `format!` as a Rust function (the floor);
//! - `slashd`: slashd's runtime through `slashd::plugins::testkit::PluginTester`, a fresh
//!   Store + instance from an `InstancePre` per call, as the server does;
//! - `mirror`: the per-call path of `host/src/plugins/engine.rs` rebuilt here with the same
//!   wasmtime 48 engine settings, timed phase by phase (slashd's own path has no hooks);
//! - `extism`: an Extism PDK plugin, reusing one `extism::Plugin` (Extism's default) and with
//!   a fresh `Plugin` per call from a `CompiledPlugin` (slashd's isolation), plus a fresh
//!   `Plugin::new` from bytes (a new engine per call; the module comes from Extism's default
//!   on-disk compile cache after the first run) for reference.
//!
//! Every timed call is followed by an untimed pause, the same for every series (`--pause-us`,
//! default 100 µs; `--pause-mode sleep|spin`, default sleep: the calling thread parks between
//! commands, as a server's worker does); the `slashd back-to-back` probe calls with no pause
//! (`--pause-us 0 --only plain,mirror,extism` measures the others back to back).
//!
//! See README.md for how to build and run it.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

const INPUT: &str = "world";
const EXPECTED: &str = "Hello, **world**!";

#[derive(Clone)]
struct Args {
    hello: PathBuf,
    pdk: PathBuf,
    iters: usize,
    fresh_iters: usize,
    recompile_iters: usize,
    warmup: usize,
    pause: Pause,
    only: Option<Vec<String>>,
}

impl Args {
    /// Whether a group of series (`plain`, `slashd`, `mirror`, `extism`) is to run.
    fn runs(&self, group: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.iter().any(|g| g == group))
    }
}

impl Args {
    fn parse() -> anyhow::Result<Args> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..");
        let mut args = Args {
            hello: root.join("target/plugins/wasm32-wasip2/release/hello.wasm"),
            pdk: root.join("target/wasm32-unknown-unknown/release/pdk_hello.wasm"),
            iters: 20_000,
            fresh_iters: 5_000,
            recompile_iters: 30,
            warmup: 1_000,
            pause: Pause {
                gap: Duration::from_micros(100),
                mode: PauseMode::Sleep,
            },
            only: None,
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--hello" => args.hello = value()?.into(),
                "--pdk" => args.pdk = value()?.into(),
                "--iters" => args.iters = value()?.parse()?,
                "--fresh-iters" => args.fresh_iters = value()?.parse()?,
                "--recompile-iters" => args.recompile_iters = value()?.parse()?,
                "--warmup" => args.warmup = value()?.parse()?,
                "--pause-us" => args.pause.gap = Duration::from_micros(value()?.parse()?),
                "--pause-mode" => {
                    args.pause.mode = match value()?.as_str() {
                        "sleep" => PauseMode::Sleep,
                        "spin" => PauseMode::Spin,
                        other => bail!("--pause-mode is sleep or spin, not {other}"),
                    }
                }
                "--only" => args.only = Some(value()?.split(',').map(str::to_string).collect()),
                "-h" | "--help" => {
                    println!(
                        "plugin-compare [--hello slashd.wasm] [--pdk extism.wasm] [--iters N] \
                         [--fresh-iters N] [--recompile-iters N] [--warmup N] [--pause-us N] [--pause-mode sleep|spin] \
                         [--only plain,slashd,mirror,extism]"
                    );
                    std::process::exit(0);
                }
                other => bail!("unknown argument {other} (try --help)"),
            }
        }
        if args.iters == 0 || args.fresh_iters == 0 || args.recompile_iters == 0 {
            bail!("iteration counts must be positive");
        }
        Ok(args)
    }
}

/// Percentiles of one series of samples.
struct Stats {
    n: usize,
    min: Duration,
    median: Duration,
    p99: Duration,
    mean: Duration,
}

impl Stats {
    fn of(samples: &[Duration]) -> Stats {
        let mut v = samples.to_vec();
        v.sort_unstable();
        let n = v.len();
        let at = |q: f64| v[((n as f64 * q).ceil() as usize).clamp(1, n) - 1];
        Stats {
            n,
            min: v[0],
            median: at(0.5),
            p99: at(0.99),
            mean: v.iter().sum::<Duration>() / n as u32,
        }
    }
}

#[derive(Default)]
struct Report {
    rows: Vec<(String, Stats)>,
    notes: Vec<String>,
}

impl Report {
    fn add(&mut self, name: &str, samples: &[Duration]) {
        if samples.is_empty() {
            self.notes.push(format!("{name}: no samples"));
            return;
        }
        let stats = Stats::of(samples);
        eprintln!("  {name}: median {}", us(stats.median));
        self.rows.push((name.to_string(), stats));
    }

    fn median(&self, name: &str) -> Option<Duration> {
        self.rows
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.median)
    }

    fn print(&self) {
        println!("| series | n | median µs | p99 µs | mean µs | min µs |");
        println!("|---|---:|---:|---:|---:|---:|");
        for (name, s) in &self.rows {
            println!(
                "| {name} | {} | {} | {} | {} | {} |",
                s.n,
                us(s.median),
                us(s.p99),
                us(s.mean),
                us(s.min)
            );
        }
        println!();
        println!("ratios of medians:");
        for (a, b) in [
            ("slashd", "plain"),
            ("extism-fresh", "slashd"),
            ("extism-reuse", "slashd"),
            ("extism-new-bytes", "slashd"),
        ] {
            if let (Some(x), Some(y)) = (self.median(a), self.median(b)) {
                let label = format!("{a} / {b}");
                println!("  {label:<28} = {:.2}x", x.as_secs_f64() / y.as_secs_f64());
            }
        }
        for note in &self.notes {
            println!("note: {note}");
        }
        // One line per series for scripts that aggregate several runs.
        for (name, s) in &self.rows {
            println!(
                "RESULT {name} median_ns={} p99_ns={}",
                s.median.as_nanos(),
                s.p99.as_nanos()
            );
        }
    }
}

fn us(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e6)
}

/// How to spend the untimed pause after each call.
#[derive(Clone, Copy, PartialEq)]
enum PauseMode {
    /// Sleep: the calling thread parks between calls, as a server's worker does between
    /// commands. The default.
    Sleep,
    /// Spin on `yield_now`: the calling core stays busy and warm; any runnable thread on it
    /// still gets the CPU.
    Spin,
}

#[derive(Clone, Copy)]
struct Pause {
    gap: Duration,
    mode: PauseMode,
}

impl Pause {
    /// The pause of a call made from a tokio worker, as the server's are: what the call
    /// queued on this worker (slashd makes the plugin's next instance so) runs first, as
    /// it does when a server worker waits, then the pause.
    async fn wait_on_worker(self) {
        if self.gap.is_zero() {
            return;
        }
        tokio::task::yield_now().await;
        self.wait();
    }

    fn wait(self) {
        if self.gap.is_zero() {
            return;
        }
        match self.mode {
            PauseMode::Sleep => std::thread::sleep(self.gap),
            PauseMode::Spin => {
                let start = Instant::now();
                while start.elapsed() < self.gap {
                    std::thread::yield_now();
                }
            }
        }
    }
}

/// Time `f` `iters` times, one sample per call, after `warmup` untimed calls; a pause after
/// every call.
fn measure(warmup: usize, iters: usize, pause: Pause, mut f: impl FnMut()) -> Vec<Duration> {
    for _ in 0..warmup {
        f();
        pause.wait();
    }
    let mut samples = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        f();
        samples.push(t.elapsed());
        pause.wait();
    }
    samples
}

/// (a) The floor: the plugin's logic as a plain function.
#[inline(never)]
fn hello_plain(name: &str) -> String {
    format!("Hello, **{name}**!")
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse()?;
    let hello_wasm = std::fs::read(&args.hello)
        .with_context(|| format!("cannot read {} (build slashd first)", args.hello.display()))?;
    let pdk_wasm = std::fs::read(&args.pdk).with_context(|| {
        format!(
            "cannot read {} (build pdk-hello for wasm32-unknown-unknown first)",
            args.pdk.display()
        )
    })?;
    let mut report = Report {
        rows: Vec::new(),
        notes: Vec::new(),
    };
    eprintln!(
        "plugin-compare: {} iterations ({} for extism-fresh, {} for extism-new-bytes), {} warm-up, \
         {:?} pause ({}) after each call",
        args.iters,
        args.fresh_iters,
        args.recompile_iters,
        args.warmup,
        args.pause.gap,
        match args.pause.mode {
            PauseMode::Sleep => "sleep",
            PauseMode::Spin => "spin",
        }
    );

    // The timer's own cost, to read the sub-microsecond rows against.
    if args.runs("plain") {
        report.add(
            "timer-overhead",
            &measure(args.warmup, args.iters, args.pause, || {}),
        );

        // (a) plain Rust.
        assert_eq!(hello_plain(INPUT), EXPECTED);
        report.add(
            "plain",
            &measure(args.warmup, args.iters, args.pause, || {
                black_box(hello_plain(black_box(INPUT)));
            }),
        );
    }

    // (b) slashd's runtime, as the server calls it (async, on tokio).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if args.runs("slashd") {
        // On a worker, as the server's command calls are (not on `block_on`'s thread).
        let series_args = args.clone();
        let mut series_report = std::mem::take(&mut report);
        series_report = rt.block_on(async move {
            tokio::spawn(async move {
                slashd_series(&series_args, &mut series_report).await?;
                anyhow::Ok(series_report)
            })
            .await
        })??;
        report = series_report;
    }
    // (b') the same command from the same source, built as a native library (issue 6).
    if args.runs("native") {
        rt.block_on(native_series(&args, &mut report))?;
    }

    // The same path, phase by phase (a rebuild of engine.rs's per-call path), with slashd's
    // engine settings and with the pooling allocator told to keep memory resident.
    if args.runs("mirror") {
        rt.block_on(mirror::run(&hello_wasm, &args, false, &mut report))?;
        rt.block_on(mirror::run(&hello_wasm, &args, true, &mut report))?;
    }

    // (c) Extism.
    if args.runs("extism") {
        extism_bench::run(&pdk_wasm, &args, &mut report)?;
    }

    println!();
    report.print();
    Ok(())
}

/// (b') The template built as a native library (`export_native_plugin!`), through the
/// same harness: parse, role check, JSON across the C ABI on a blocking thread.
async fn native_series(args: &Args, report: &mut Report) -> anyhow::Result<()> {
    let path = args
        .hello
        .parent()
        .and_then(|p| p.parent())
        .and_then(|p| p.parent())
        .map(|p| p.join("release/libhello.so"));
    let Some(path) = path.filter(|p| p.exists()) else {
        bail!("libhello.so not found next to hello.wasm (build slashd: host/build.rs builds it)");
    };
    let tester = slashd::plugins::testkit::PluginTester::builder(&path)
        .native()
        .build()
        .await?;
    let line = format!("/hello {INPUT}");
    let reply = tester
        .run(&line)
        .await
        .map_err(|e| anyhow::anyhow!("native call failed: {e}"))?;
    if reply.body != EXPECTED {
        bail!("native answered {:?}", reply.body);
    }
    for _ in 0..args.warmup {
        black_box(
            tester
                .run(&line)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        );
        args.pause.wait();
    }
    let mut samples = Vec::with_capacity(args.iters);
    for _ in 0..args.iters {
        let t = Instant::now();
        let reply = tester.run(&line).await;
        samples.push(t.elapsed());
        black_box(reply.map_err(|e| anyhow::anyhow!("{e}"))?);
        args.pause.wait();
    }
    report.add("slashd-native", &samples);
    Ok(())
}

/// (b) `PluginTester::run`: parse, role check, then `Runtime::invoke` (fresh Store and
/// instance from the `InstancePre`, limits, deadline; the Store dropped where the call ran).
async fn slashd_series(args: &Args, report: &mut Report) -> anyhow::Result<()> {
    let tester = slashd::plugins::testkit::PluginTester::builder(&args.hello)
        .build()
        .await?;
    let line = format!("/hello {INPUT}");
    let reply = tester
        .run(&line)
        .await
        .map_err(|e| anyhow::anyhow!("slashd call failed: {e}"))?;
    if reply.body != EXPECTED {
        bail!("slashd answered {:?}", reply.body);
    }
    for i in 0..args.warmup {
        let reply = tester.run(&line).await;
        black_box(reply.map_err(|e| anyhow::anyhow!("slashd warm-up call {i} failed: {e}"))?);
        args.pause.wait_on_worker().await;
    }
    let mut samples = Vec::with_capacity(args.iters);
    for i in 0..args.iters {
        let t = Instant::now();
        let reply = tester.run(&line).await;
        samples.push(t.elapsed());
        black_box(reply.map_err(|e| anyhow::anyhow!("slashd call {i} failed: {e}"))?);
        args.pause.wait_on_worker().await;
    }
    report.add("slashd", &samples);

    // Back to back, no pause: every call must still find a pool slot (a store once waited
    // for another thread to drop it, and back-to-back calls ran out of slots).
    std::thread::sleep(Duration::from_millis(200));
    let mut samples = Vec::new();
    let mut failure = None;
    for i in 0..args.iters {
        let t = Instant::now();
        let reply = tester.run(&line).await;
        let elapsed = t.elapsed();
        match reply {
            Ok(reply) => {
                samples.push(elapsed);
                black_box(reply);
            }
            Err(e) => {
                failure = Some(format!("call {} of {} failed: {e}", i + 1, args.iters));
                break;
            }
        }
    }
    report.add("slashd back-to-back (until a failure)", &samples);
    report.notes.push(format!(
        "slashd back-to-back probe (no pause): {}",
        failure.unwrap_or_else(|| format!("all {} calls succeeded", args.iters))
    ));
    std::thread::sleep(Duration::from_millis(200));
    Ok(())
}

/// The per-invocation path of `host/src/plugins/engine.rs` (`Runtime::new`, `new_store`,
/// `run`), rebuilt on the same wasmtime 48 with the same engine settings, so each phase can
/// be timed without hooks in the server. Differences: the store's data is smaller (no
/// identity, call context or host services), the linker has only WASI (the template plugin
/// imports nothing else).
mod mirror {
    use std::hint::black_box;
    use std::time::{Duration, Instant};

    use wasmtime::component::{Component, Linker, ResourceTable};
    use wasmtime::{
        Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits,
        StoreLimitsBuilder, UpdateDeadline,
    };
    use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
    use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

    use super::{Args, Report, EXPECTED, INPUT};

    // The template plugin's API version; only its exports are called here (the template
    // imports nothing of slashd's, so the linker holds WASI alone).
    wasmtime::component::bindgen!({
        path: "../../../plugin-api/wit/since_v0.2.0",
        world: "plugin",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        },
    });

    use self::slashd::plugin::types;

    struct State {
        wasi: WasiCtx,
        table: ResourceTable,
        limits: StoreLimits,
        deadline: Instant,
        _stdout: MemoryOutputPipe,
        _stderr: MemoryOutputPipe,
    }

    impl WasiView for State {
        fn ctx(&mut self) -> WasiCtxView<'_> {
            WasiCtxView {
                ctx: &mut self.wasi,
                table: &mut self.table,
            }
        }
    }

    /// slashd's engine (`Runtime::new`), without (`keep_resident = false`) or with (as
    /// slashd has it) the pooling allocator keeping a warm slot's first pages resident.
    fn engine(keep_resident: bool) -> anyhow::Result<Engine> {
        let defaults = ::slashd::config::CommandsConfig::default();
        let slots = (defaults.max_concurrent as u32).saturating_mul(2).max(8) + 8;
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(slots)
            .total_core_instances(slots * 8)
            .total_memories(slots)
            .total_tables(slots * 8)
            .total_stacks(slots)
            .max_core_instances_per_component(32)
            .max_memories_per_component(2)
            .max_tables_per_component(16)
            .max_memory_size((::slashd::config::MAX_PLUGIN_MEMORY_MB as usize) << 20);
        if keep_resident {
            // Reset the touched pages of a slot with memset instead of madvise, so the next
            // instance in that slot takes no page faults (PAGEMAP_SCAN finds the touched
            // pages; Linux 6.7+).
            pool.linear_memory_keep_resident(2 << 20)
                .table_keep_resident(64 << 10)
                .max_unused_warm_slots(16)
                .pagemap_scan(wasmtime::Enabled::Auto);
        }
        let mut config = wasmtime::Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(512 * 1024)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)?;
        let weak = engine.weak();
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(1));
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => return,
            }
        });
        Ok(engine)
    }

    fn new_store(engine: &Engine, deadline: Instant) -> Store<State> {
        let stdout = MemoryOutputPipe::new(64 * 1024);
        let stderr = MemoryOutputPipe::new(64 * 1024);
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        let limits = StoreLimitsBuilder::new()
            .memory_size(64 << 20)
            .trap_on_grow_failure(true)
            .build();
        let state = State {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limits,
            deadline,
            _stdout: stdout,
            _stderr: stderr,
        };
        let mut store = Store::new(engine, state);
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
    }

    fn invocation() -> types::Invocation {
        types::Invocation {
            id: "00000000-0000-7000-8000-000000000002".into(),
            command: "hello".into(),
            args: vec![INPUT.into()],
            raw_args: INPUT.into(),
            // The template's typed argument, as the host binds it.
            values: vec![types::NamedValue {
                name: "name".into(),
                value: types::Value::Text(INPUT.into()),
            }],
            caller: types::Caller {
                id: "user-tester".into(),
                name: "tester".into(),
                role: types::Role::Admin,
            },
            session: types::SessionRef {
                id: "00000000-0000-7000-8000-000000000001".into(),
                title: "test session".into(),
            },
            connection_id: "test-connection".into(),
        }
    }

    pub async fn run(
        wasm: &[u8],
        args: &Args,
        keep_resident: bool,
        report: &mut Report,
    ) -> anyhow::Result<()> {
        let (warmup, iters) = (args.warmup, args.iters);
        let engine = engine(keep_resident)?;
        let mut linker = Linker::<State>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        let component = Component::new(&engine, wasm)?;
        let pre = PluginPre::new(linker.instantiate_pre(&component)?)?;

        let mut phases: [Vec<Duration>; 5] = Default::default();
        for i in 0..warmup + iters {
            let invocation = invocation();
            let t0 = Instant::now();
            let mut store = new_store(&engine, t0 + Duration::from_secs(2));
            let t1 = Instant::now();
            let instance = pre.instantiate_async(&mut store).await?;
            let t2 = Instant::now();
            let reply = instance.call_invoke(&mut store, &invocation).await?;
            let t3 = Instant::now();
            drop(store);
            let t4 = Instant::now();
            let reply = reply.map_err(|e| anyhow::anyhow!("mirror call failed: {e:?}"))?;
            if reply.body != EXPECTED {
                anyhow::bail!("mirror answered {:?}", reply.body);
            }
            black_box(reply);
            args.pause.wait();
            if i >= warmup {
                phases[0].push(t1 - t0);
                phases[1].push(t2 - t1);
                phases[2].push(t3 - t2);
                phases[3].push(t4 - t3);
                phases[4].push(t3 - t0);
            }
        }
        let name = if keep_resident {
            "mirror+keep-resident"
        } else {
            "mirror"
        };
        report.add(&format!("{name}: new store"), &phases[0]);
        report.add(&format!("{name}: instantiate"), &phases[1]);
        report.add(&format!("{name}: call invoke"), &phases[2]);
        report.add(&format!("{name}: drop store"), &phases[3]);
        report.add(&format!("{name}: store+inst+call"), &phases[4]);
        Ok(())
    }
}

mod extism_bench {
    use std::hint::black_box;
    use std::time::{Duration, Instant};

    use extism::{CompiledPlugin, Manifest, Plugin, PluginBuilder, Wasm};

    use super::{measure, Args, Report, EXPECTED, INPUT};

    fn call(plugin: &mut Plugin) -> String {
        plugin
            .call::<&str, String>("hello", INPUT)
            .expect("extism call")
    }

    pub fn run(wasm: &[u8], args: &Args, report: &mut Report) -> anyhow::Result<()> {
        let manifest = Manifest::new([Wasm::data(wasm.to_vec())]);

        // Extism's default: one plugin instance, called again and again (state persists).
        let mut plugin = Plugin::new(&manifest, [], false)?;
        let out = call(&mut plugin);
        if out != EXPECTED {
            anyhow::bail!("extism answered {out:?}");
        }
        report.add(
            "extism-reuse",
            &measure(args.warmup, args.iters, args.pause, || {
                black_box(call(&mut plugin));
            }),
        );
        drop(plugin);

        // slashd's isolation: compile once, a fresh Plugin (store + instances) per call.
        let compiled = CompiledPlugin::new(PluginBuilder::new(manifest.clone()).with_wasi(false))?;
        let fresh = |compiled: &CompiledPlugin| -> (Duration, Duration, Duration) {
            let t0 = Instant::now();
            let mut plugin = Plugin::new_from_compiled(compiled).expect("extism instantiate");
            let t1 = Instant::now();
            black_box(call(&mut plugin));
            let t2 = Instant::now();
            drop(plugin);
            (t1 - t0, t2 - t1, t2.elapsed())
        };
        for _ in 0..args.warmup.min(args.fresh_iters) {
            fresh(&compiled);
            args.pause.wait();
        }
        let mut phases: [Vec<Duration>; 4] = Default::default();
        for _ in 0..args.fresh_iters {
            let (new, call, drop) = fresh(&compiled);
            args.pause.wait();
            phases[0].push(new + call + drop);
            phases[1].push(new);
            phases[2].push(call);
            phases[3].push(drop);
        }
        report.add("extism-fresh", &phases[0]);
        report.add("extism-fresh: new_from_compiled", &phases[1]);
        report.add("extism-fresh: call", &phases[2]);
        report.add("extism-fresh: drop", &phases[3]);

        // For reference: a fresh Plugin from bytes builds a new engine and finds the module in
        // Extism's default on-disk cache (wasmtime's, under ~/.cache/wasmtime) or compiles it.
        report.add(
            "extism-new-bytes",
            &measure(2, args.recompile_iters, args.pause, || {
                let mut plugin = Plugin::new(&manifest, [], false).expect("extism plugin");
                black_box(call(&mut plugin));
            }),
        );
        Ok(())
    }
}
