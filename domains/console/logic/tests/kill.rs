//! Kill-anywhere: guests write numbered lines while the service loop is killed at every step
//! (before and after each take, save, line write and commit, and in the middle of a save) and
//! restarted from the preserved region; the sink must receive every line exactly once, in order.

mod common;

use common::{guest_write, page, Page, Rng, Sink};
use xenolith_console_logic::line::{format_line, MAX_LINE};
use xenolith_console_logic::{region_size, Config, Console, DomId};

const DOMAINS: [(DomId, &str); 3] = [(1, "alpha"), (2, "beta"), (7, "gamma")];

fn config() -> Config {
    // A small budget: many batches, lines split across batches and rounds.
    Config { max_domains: 4, round_budget: 61, ..Config::default() }
}

/// What guest `index` writes: numbered lines, some with `\r\n`, some longer than MAX_LINE.
fn script(index: usize, lines: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    for n in 0..lines {
        let text = if n % 7 == 3 {
            format!("{index}:{n} {}", "x".repeat(MAX_LINE + 20))
        } else {
            format!("{index}:{n} hello")
        };
        bytes.extend_from_slice(text.as_bytes());
        bytes.extend_from_slice(if n % 2 == 0 { b"\r\n" } else { b"\n" });
    }
    bytes
}

/// The lines the sink must hold for guest `index`, in order.
fn expected(name: &str, script: &[u8]) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    for raw in script.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let text: Vec<u8> = raw.iter().copied().filter(|&b| b != b'\r').collect();
        for (piece, chunk) in text.chunks(MAX_LINE).enumerate() {
            lines.push(format_line(name, chunk, piece > 0));
        }
    }
    lines
}

struct Killed;

/// Everything that survives the console domain: guests' pages, the preserved region, the
/// sink; plus the kill schedule.
struct World {
    pages: Vec<Page>,
    region: Vec<u8>,
    sink: Sink,
    step: usize,
    kills: Vec<usize>,
    restarts: usize,
}

impl World {
    /// One step of the service; `Err` if the domain is killed here.
    fn tick(&mut self) -> Result<(), Killed> {
        self.step += 1;
        if self.kills.contains(&self.step) {
            return Err(Killed);
        }
        Ok(())
    }

    /// A save that may be killed before it starts or torn half-way.
    fn save(&mut self, console: &Console) -> Result<(), Killed> {
        self.tick()?;
        self.step += 1;
        if self.kills.contains(&self.step) {
            // Torn: only some of the bytes the save changes reach the region.
            let mut done = self.region.clone();
            console.save(&mut done).expect("the region fits");
            let changed: Vec<usize> =
                (0..done.len()).filter(|&i| done[i] != self.region[i]).collect();
            let keep = changed.len() * (self.step % 5) / 5;
            for &i in &changed[..keep] {
                self.region[i] = done[i];
            }
            return Err(Killed);
        }
        console.save(&mut self.region).expect("the region fits");
        Ok(())
    }
}

fn write_batch(world: &mut World, lines: &[xenolith_console_logic::Line]) -> Result<(), Killed> {
    for line in lines {
        world.tick()?;
        world.sink.write(line);
    }
    Ok(())
}

/// One service round over every domain (after finishing a batch left pending by a kill).
fn round(world: &mut World, console: &mut Console) -> Result<(), Killed> {
    if let Some(batch) = console.pending() {
        write_batch(world, &batch.lines)?;
        world.tick()?;
        let index = DOMAINS.iter().position(|&(id, _)| id == batch.domain).unwrap();
        console.commit(batch.domain, &mut world.pages[index]).unwrap();
        world.save(console)?;
    }
    for (index, &(id, _)) in DOMAINS.iter().enumerate() {
        world.tick()?;
        let Some(batch) = console.take(id, &world.pages[index]).expect("a well-behaved guest")
        else {
            continue;
        };
        world.save(console)?;
        write_batch(world, &batch.lines)?;
        world.tick()?;
        console.commit(id, &mut world.pages[index]).unwrap();
        world.save(console)?;
    }
    Ok(())
}

/// Runs the scenario with kills at the given steps; returns the sink and the steps taken.
fn run(kills: Vec<usize>, lines: usize, seed: u64) -> (Sink, Vec<Vec<u8>>, usize, usize) {
    let config = config();
    let scripts: Vec<Vec<u8>> = (0..DOMAINS.len()).map(|i| script(i, lines)).collect();
    let mut written = vec![0usize; DOMAINS.len()];
    let mut world = World {
        pages: DOMAINS.iter().map(|_| page()).collect(),
        region: vec![0; region_size(&config)],
        sink: Sink::default(),
        step: 0,
        kills,
        restarts: 0,
    };
    let mut console = Console::new(config).unwrap();
    for (index, &(id, name)) in DOMAINS.iter().enumerate() {
        console.add_domain(id, name, &world.pages[index]).unwrap();
    }
    console.save(&mut world.region).unwrap();
    let mut rng = Rng(seed);
    for _ in 0..100_000 {
        // The guests write a random amount each (their progress survives the kills).
        for (index, script) in scripts.iter().enumerate() {
            let rest = &script[written[index]..];
            if !rest.is_empty() {
                let chunk = 1 + rng.below(rest.len().min(90));
                written[index] += guest_write(&mut world.pages[index], &rest[..chunk]);
            }
        }
        if round(&mut world, &mut console).is_err() {
            world.restarts += 1;
            console = Console::restore(config, &world.region).unwrap().expect("a snapshot");
            continue;
        }
        let idle = console.pending().is_none()
            && written.iter().zip(&scripts).all(|(w, s)| *w == s.len())
            && world.pages.iter().all(|p| p[3080..3084] == p[3084..3088]);
        if idle {
            let mut expected_all = Vec::new();
            for (index, &(_, name)) in DOMAINS.iter().enumerate() {
                expected_all.push(expected(name, &scripts[index]));
            }
            return (world.sink, expected_all.concat(), world.step, world.restarts);
        }
    }
    panic!("the service never drained the guests");
}

/// Checks the sink: every domain's lines exactly once, in order (domains interleave).
fn check(sink: &Sink, lines: usize, context: &str) {
    for (index, &(_, name)) in DOMAINS.iter().enumerate() {
        let prefix_a = format!("{name}: ");
        let prefix_b = format!("{name}+ ");
        let got: Vec<&Vec<u8>> = sink
            .lines
            .iter()
            .filter(|l| l.starts_with(prefix_a.as_bytes()) || l.starts_with(prefix_b.as_bytes()))
            .collect();
        let want = expected(name, &script(index, lines));
        assert_eq!(got.len(), want.len(), "{context}: {name} line count");
        for (n, (got, want)) in got.iter().zip(&want).enumerate() {
            assert_eq!(*got, want, "{context}: {name} line {n}");
        }
    }
    assert_eq!(
        sink.lines.len(),
        DOMAINS.iter().enumerate().map(|(i, &(_, n))| expected(n, &script(i, lines)).len()).sum(),
        "{context}: no foreign lines"
    );
}

#[test]
fn no_kill_delivers_everything_once() {
    let (sink, _, steps, restarts) = run(Vec::new(), 30, 1);
    assert_eq!(restarts, 0);
    assert_eq!(sink.dropped, 0);
    assert!(steps > 100);
    check(&sink, 30, "no kill");
}

#[test]
fn a_kill_at_every_step_loses_and_repeats_nothing() {
    let lines = 14;
    let (_, _, steps, _) = run(Vec::new(), lines, 2);
    let mut resent = 0;
    for kill in 1..=steps {
        let (sink, _, _, restarts) = run(vec![kill], lines, 2);
        assert!(restarts <= 1);
        resent += sink.dropped;
        check(&sink, lines, &format!("kill at step {kill}"));
    }
    // Some kills land between a write and its commit: the sink saw those lines twice and
    // dropped the second copy by sequence number.
    assert!(resent > 0);
}

#[test]
fn random_repeated_kills_lose_and_repeat_nothing() {
    let mut rng = Rng(0x5eed_c0de);
    for trial in 0..60 {
        let lines = 10 + rng.below(20);
        let seed = rng.next() | 1;
        let (_, _, steps, _) = run(Vec::new(), lines, seed);
        // Kills at random steps, sometimes in bursts (killed again during recovery).
        let mut kills = Vec::new();
        let mut at = 0;
        while at < steps * 2 {
            let gap = if rng.below(4) == 0 { 3 } else { 40 };
            at += 1 + rng.below(gap);
            kills.push(at);
        }
        let (sink, _, _, restarts) = run(kills, lines, seed);
        assert!(restarts > 0);
        check(&sink, lines, &format!("trial {trial}"));
    }
}
