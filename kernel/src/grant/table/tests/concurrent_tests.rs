//! Grant tables under real concurrency. A granter vCPU rewrites its entries the ways a guest
//! may while they are in use: it grants free entries, ends them (`end_foreign_access`), makes
//! them read-only or writable again, and flips a bit of its own (`GTF_PWT`), each with the
//! atomic operation `grant_table.h` prescribes. Meanwhile three mapper vCPUs (two of one domain,
//! sharing its maptrack, one of another) map, unmap and copy on the same four entries.
//!
//! The mappers run concurrently with each other and with the granter. Only their pins and unpins
//! of this granter's grants are serialized: `pin` and `unpin` take the granter's [`ActiveTable`]
//! by `&mut`, as Xen serializes them on the active entry's lock (`active_entry_acquire`,
//! grant_table.c:465). So the races under test are those on the shared entry words, where the
//! core's compare-exchange (`_set_status_v1`, :750) and atomic clear (`reduce_status_for_pin`,
//! :919) meet the guest's writes, and those between a mapper's steps (pin, translation, maptrack,
//! use, unmap), which are not atomic together.
//!
//! Checked, each while the race goes on:
//! 1. Every pin's answer is one the sequential model (the randomized test's [`Model`]) gives for
//!    some state the entry had while the pin ran. The granter publishes each state it leaves in
//!    an entry as a numbered version (a seqlock); a pin, under the granter's lock, reads the
//!    version before and after and may have met any state between. A general error with no
//!    such state is allowed only if the entry changed meanwhile: `_set_status_v1` gives up on an
//!    entry that keeps changing (:811). After every pin and unpin, under that lock, the table
//!    matches the model, pin counts included, and every entry's `GTF_reading` and
//!    `GTF_writing` are set exactly while it has a pin and a write pin.
//! 2. Every pin's holder checks, without any lock, between its steps, that its grant is still
//!    in use and granted to it with its frame: `GTF_reading` set, and for a write pin
//!    `GTF_writing` set and `GTF_readonly` clear. The granter ends an entry or makes it
//!    read-only only when its flags let it, so a revoke, or a `GTF_readonly`, that meets a live
//!    pin is caught.
//! 3. The granter checks at each of its reads and atomic operations that its own bits (all but
//!    `GTF_reading` and `GTF_writing`) are as it last left them: the core may change nothing
//!    else, and only atomically, so none of the guest's writes is ever lost.
//! 4. At the end all pins are gone, both flags clear, every entry is as its granter left it,
//!    and every granted entry can be ended.
//!
//! Check 1 is sound because under the granter's lock only the core writes `GTF_reading` and
//! `GTF_writing` (so they are the model's), and each granter write is one atomic operation, or
//! a plain store to a free entry no pin can take; checks 2 to 4 hold for any order of the
//! threads, given that the granter follows `grant_table.h`. None of them waits on a timer.
//!
//! To make the races happen rather than hope for them, a mapper holding the lock names the
//! entry it works on ([`Shared::hot`]); the granter then writes that entry, mostly flipping
//! `GTF_PWT`, its quickest write, and the mapper waits a few microseconds for its first write
//! before it calls in. Copies come in batches of segments under one lock, as the core handles
//! a hypercall's batch. (With `reduce_status`'s atomic clear made a load and a store, check 3
//! failed in 8 runs of 8 on a loaded 2-CPU machine.)
//!
//! Loom would explore the interleavings exhaustively, but it needs its own atomic types where
//! `table.rs` and the core's [`Entries`] use `core`'s.

use std::sync::atomic::{AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use super::*;

/// Entries, few so that the threads meet on them.
const LEN: u32 = 4;
/// A domain entries are granted to that maps nothing.
const DOM_C: DomainId = 3;
/// Operations per mapper vCPU at least; then more until the granter has written entries during
/// [`RACED_UNPINS`] unpins, or for at most [`BUDGET`]. (Only a machine that runs the granter and a
/// mapper at once lets them race; a busy one may not, and then this test checks less.)
const STEPS: u32 = if cfg!(miri) { 100 } else { 15_000 };
const RACED_UNPINS: u32 = if cfg!(miri) { 0 } else { 2000 };
const BUDGET: Duration = Duration::from_secs(10);
/// Published states kept per entry.
const RING: u64 = if cfg!(miri) { 64 } else { 1 << 14 };
/// How long a mapper waits for the granter to write the entry it works on: a few of the
/// granter's writes.
const HEAT: Duration = Duration::from_micros(5);
/// The header bits the core writes; every other bit is the granter's.
const CORE_BITS: u32 = (GTF_reading | GTF_writing) as u32;

/// The states the granter vCPU left in one entry, seqlock style: `seq` is odd while it writes
/// the entry and `2 * v` once it has finished its `v`th write, whose result (`frame << 32 |
/// header`, the header without [`CORE_BITS`]) is in `states[v % RING]`.
struct Published {
    seq: AtomicU64,
    states: Vec<AtomicU64>,
}

impl Published {
    fn new() -> Self {
        Self { seq: AtomicU64::new(0), states: (0..RING).map(|_| AtomicU64::new(0)).collect() }
    }

    /// The version the entry is at now, waiting out a write under way. (Acquire: a later
    /// operation on the entry sees that version's write or a later one.)
    fn version(&self) -> u64 {
        loop {
            let seq = self.seq.load(Acquire);
            if seq.is_multiple_of(2) {
                return seq / 2;
            }
            thread::yield_now();
        }
    }

    /// The states of versions `from..=to`, or `None` if the ring may have overwritten some.
    fn states(&self, from: u64, to: u64) -> Option<Vec<u64>> {
        if to - from >= RING {
            return None;
        }
        let states = (from..=to).map(|v| self.states[(v % RING) as usize].load(Acquire)).collect();
        // Version `v + RING`'s slot is written after `seq` went to `2 * (v + RING) - 1`.
        (self.seq.load(Acquire) < 2 * (from + RING) - 1).then_some(states)
    }

    /// Runs the granter's write `write` as version `*version + 1` and publishes the state it
    /// returns. The granter's header writes are releases, so a pin that sees one sees `seq` odd
    /// or past it.
    fn write(&self, version: &mut u64, write: impl FnOnce() -> u64) -> u64 {
        self.seq.store(2 * *version + 1, Relaxed);
        let state = write();
        *version += 1;
        self.states[(*version % RING) as usize].store(state, Release);
        self.seq.store(2 * *version, Release);
        state
    }
}

/// What the granter's lock holds: its active table and the model of it.
struct Core {
    active: ActiveTable,
    model: Model,
    counts: PinCounts,
}

#[derive(Debug, Default)]
struct PinCounts {
    /// Successful and refused map pins, successful copy pins.
    maps: u32,
    refused_maps: u32,
    copy_pins: u32,
    /// Pins during which the granter changed the entry, and those during which the change
    /// could change the answer.
    raced: u32,
    ambiguous: u32,
    /// Unpins during which the granter changed the entry.
    raced_unpins: u32,
    /// General errors explained only by the entry changing under `_set_status_v1`.
    gave_up: u32,
    /// Pins whose window of states had left the ring, checked only by the invariants.
    unchecked: u32,
}

struct Shared {
    table: Table,
    published: Vec<Published>,
    /// The granter's lock.
    core: Mutex<Core>,
    /// Each mapper domain's lock, over its maptrack.
    tracks: [Mutex<MapTrack>; 2],
    /// Mapper vCPUs still running; the granter stops when none is.
    running: AtomicU32,
    /// The entry a mapper is pinning or unpinning now, plus one (0: none), on which the granter
    /// then writes, so that its writes meet the core's.
    hot: AtomicU32,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().expect("another thread failed first")
}

/// A pin its holder knows of: on this grant, for `domid`, with `frame`.
#[derive(Clone, Copy)]
struct Held {
    gref: grant_ref_t,
    domid: DomainId,
    readonly: bool,
    frame: u32,
}

impl Held {
    /// The map pin behind `domid`'s `mapping`.
    fn mapped(mapping: &Mapping, domid: DomainId) -> Self {
        let (gref, readonly, frame) = (mapping.gref, mapping.readonly, mapping.frame);
        Self { gref, domid, readonly, frame }
    }

    /// Check 2: while the pin is held, its entry is in use, granted to its domain with its frame,
    /// and for a write pin writing and not read-only. No lock: the granter may be writing.
    fn check(&self, table: &Table, step: &str) {
        let (header_word, frame_word) = table.words(self.gref).unwrap();
        let header = header_word.load(Acquire);
        let (flags, gref, domid, readonly) = (header as u16, self.gref, self.domid, self.readonly);
        let what = || {
            format!(
                "{step}: gref {gref} pinned by d{domid} (readonly {readonly}), header {header:#x}"
            )
        };
        assert_eq!(flags & GTF_type_mask, GTF_permit_access, "{}: the grant was ended", what());
        assert_eq!(header >> 16, u32::from(domid), "{}: granted to another domain", what());
        assert_eq!(frame_word.load(Relaxed), self.frame, "{}: another frame", what());
        assert_ne!(flags & GTF_reading, 0, "{}: GTF_reading clear", what());
        if !self.readonly {
            assert_ne!(flags & GTF_writing, 0, "{}: GTF_writing clear", what());
            assert_eq!(flags & GTF_readonly, 0, "{}: GTF_readonly with a write pin", what());
        }
    }
}

impl Shared {
    /// Takes the granter's lock to work on entry `gref`, and turns the granter to that entry:
    /// waits a little for it to write there, so that it is writing while the core works (a busy
    /// machine may not run it then: no matter, that pin meets fewer writes).
    fn lock_for(&self, gref: grant_ref_t) -> Locked<'_> {
        let core = lock(&self.core);
        self.hot.store(gref + 1, Relaxed);
        let published = &self.published[gref as usize];
        let (start, since) = (published.version(), Instant::now());
        while published.version() == start && since.elapsed() < HEAT {
            std::hint::spin_loop();
        }
        Locked { shared: self, core }
    }
}

/// The granter's lock, held for some pins and unpins (as the core holds it for a batch).
struct Locked<'a> {
    shared: &'a Shared,
    core: MutexGuard<'a, Core>,
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        self.shared.hot.store(0, Relaxed);
    }
}

impl Locked<'_> {
    /// [`pin`], its answer checked against the model for each state the entry had meanwhile
    /// (check 1).
    fn pin(
        &mut self,
        domid: DomainId,
        gref: grant_ref_t,
        readonly: bool,
        usage: Usage,
    ) -> Result<Held, i16> {
        let Core { active, model, counts } = &mut *self.core;
        let (table, published) = (&self.shared.table, &self.shared.published[gref as usize]);
        let from = published.version();
        let got = pin(active, table, domid, gref, readonly, usage);
        let to = published.version();
        let map = usage == Usage::Map;
        let states = published.states(from, to).unwrap_or_else(|| {
            counts.unchecked += 1;
            // Follow the answer, whatever it is: a state that permits the pin, or one that
            // does not.
            match got {
                Ok(frame) => vec![u64::from(frame) << 32 | u64::from(domid) << 16 | u64::from(RW)],
                Err(_) => vec![0],
            }
        });
        // The granter's bits that the model looks at (not GTF_PWT), without repeats.
        let mut candidates: Vec<u64> = states.iter().map(|s| s & !u64::from(GTF_PWT)).collect();
        candidates.sort_unstable();
        candidates.dedup();
        let explained = candidates.iter().find_map(|&state| {
            let mut next = model.clone();
            let index = gref as usize;
            let header = &mut next.headers[index];
            *header = (state as u32 & !CORE_BITS) | (*header & CORE_BITS);
            next.frames[index] = (state >> 32) as u32;
            (next.pin(gref, domid, readonly, map) == got).then_some(next)
        });
        match explained {
            Some(next) => *model = next,
            // `_set_status_v1` gave up on an entry that changed under it, changing nothing.
            // (Miri fails `compare_exchange_weak` spuriously, most of the time by default.)
            None if got == Err(GNTST_general_error) && (to > from || cfg!(miri)) => {
                counts.gave_up += 1;
            }
            None => panic!(
                "pin of gref {gref} by d{domid} (readonly {readonly}, {usage:?}) answered \
                 {got:?}, which no state of the entry while it ran explains: {states:x?}"
            ),
        }
        counts.raced += u32::from(to > from);
        counts.ambiguous += u32::from(candidates.len() > 1);
        match (map, got.is_ok()) {
            (true, true) => counts.maps += 1,
            (true, false) => counts.refused_maps += 1,
            (false, true) => counts.copy_pins += 1,
            (false, false) => {}
        }
        check_locked(active, model, table);
        got.map(|frame| Held { gref, domid, readonly, frame })
    }

    /// [`unpin`], after its holder's last look at the entry.
    fn unpin(&mut self, held: Held, usage: Usage, step: &str) {
        let Core { active, model, counts } = &mut *self.core;
        let (table, published) = (&self.shared.table, &self.shared.published[held.gref as usize]);
        held.check(table, step);
        let from = published.version();
        let result = unpin(active, table, held.gref, held.readonly, usage);
        counts.raced_unpins += u32::from(published.version() > from);
        assert_eq!(result, Ok(()), "{step}: unpin of gref {}", held.gref);
        model.unpin(held.gref, held.readonly, usage == Usage::Map);
        check_locked(active, model, table);
    }
}

/// Check 1, under the granter's lock: the active table is the model's, and each entry's
/// `GTF_reading`/`GTF_writing` say whether it has a pin and a write pin (the model's flags);
/// a pinned entry is granted to its pins' domain with their frame, and not read-only while
/// written.
fn check_locked(active: &ActiveTable, model: &Model, table: &Table) {
    for gref in 0..LEN {
        let header = table.header(gref);
        let flags = header as u16;
        let model_flags = model.headers[gref as usize] as u16 & (GTF_reading | GTF_writing);
        assert_eq!(
            flags & (GTF_reading | GTF_writing),
            model_flags,
            "gref {gref}: header {header:#x}, the model's pins want GTF_reading/GTF_writing \
             {model_flags:#x}"
        );
        let real = active.pinned.get(&gref);
        let Some(&(domid, frame)) = model.first.get(&gref) else {
            assert!(real.is_none(), "gref {gref} pinned, not in the model: {real:?}");
            continue;
        };
        let real = real.unwrap_or_else(|| panic!("gref {gref} not pinned, the model's is"));
        let count = |readonly, map| {
            model.pins_of(gref).filter(|pin| (pin.2, pin.3) == (readonly, map)).count() as u32
        };
        let want = Active {
            domid,
            frame,
            map_read: count(true, true),
            map_write: count(false, true),
            copy_read: count(true, false),
            copy_write: count(false, false),
        };
        assert_eq!(*real, want, "gref {gref}'s pins");
        assert_eq!(flags & GTF_type_mask, GTF_permit_access, "gref {gref} ended while pinned");
        assert_eq!(header >> 16, u32::from(domid), "gref {gref} granted away while pinned");
        assert_eq!(table.words(gref).unwrap().1.load(Relaxed), frame, "gref {gref}'s frame");
        if want.write_pins() > 0 {
            assert_eq!(flags & GTF_readonly, 0, "gref {gref} read-only while written");
        }
    }
}

/// One mapper vCPU of `domid`: maps, unmaps and copies at random, checking its pins between
/// its steps; at the end it unmaps whatever its domain still has mapped.
fn mapper(shared: &Shared, domid: DomainId, seed: u64, started: Instant) {
    let track = &shared.tracks[usize::from(domid - 1)];
    let mut rng = Rng(seed);
    for step in 0.. {
        if step >= STEPS
            && (step - STEPS).is_multiple_of(256)
            && (lock(&shared.core).counts.raced_unpins >= RACED_UNPINS
                || started.elapsed() > BUDGET)
        {
            break;
        }
        let (gref, readonly) = (rng.below(u64::from(LEN)), rng.coin());
        let mapped = lock(track).iter().count();
        match rng.below(9) {
            // Map, as `map_grant_ref`: a handle is free, pin, translate the frame (sometimes
            // failing: undo the pin), record the mapping.
            0..=2 if mapped < 8 => {
                lock(track).free_handle().unwrap();
                let pinned = shared.lock_for(gref).pin(domid, gref, readonly, Usage::Map);
                let Ok(held) = pinned else { continue };
                held.check(&shared.table, "mapping");
                if rng.below(16) == 0 {
                    shared.lock_for(gref).unpin(held, Usage::Map, "translation failed");
                    continue;
                }
                let (host_addr, frame) = (u64::from(rng.below(1 << 16)) << 12, held.frame);
                lock(track).insert(super::mapping_at(gref, readonly, host_addr, frame)).unwrap();
            }
            // Unmap one of the domain's mappings (perhaps the other vCPU's).
            0..=5 => {
                let mapping = {
                    let mut track = lock(track);
                    let handles: Vec<_> = track.iter().map(|(handle, _)| handle).collect();
                    if handles.is_empty() {
                        continue;
                    }
                    track.remove(handles[rng.below(handles.len() as u64) as usize]).unwrap()
                };
                let held = Held::mapped(&mapping, domid);
                shared.lock_for(held.gref).unpin(held, Usage::Map, "unmapping");
            }
            // Copy, as `gnttab_copy_one`: pin the source, then the destination (perhaps the same
            // grant), copy, release the destination, then the source; up to 8 such segments in
            // one batch, which the core handles under one lock.
            6 | 7 => {
                let dest_gref = if rng.coin() { gref } else { rng.below(u64::from(LEN)) };
                let mut locked = shared.lock_for(gref);
                for _ in 0..=rng.below(8) {
                    let Ok(source) = locked.pin(domid, gref, true, Usage::Copy) else { break };
                    if let Ok(dest) = locked.pin(domid, dest_gref, false, Usage::Copy) {
                        source.check(&shared.table, "copying from");
                        locked.unpin(dest, Usage::Copy, "copied to");
                    }
                    locked.unpin(source, Usage::Copy, "copied from");
                }
            }
            // Look at every live mapping of the domain (held still by its maptrack's lock).
            _ => {
                for (_, mapping) in lock(track).iter() {
                    let held = Held::mapped(mapping, domid);
                    held.check(&shared.table, "mapped");
                }
            }
        }
    }
    loop {
        let mapping = {
            let mut track = lock(track);
            let Some((handle, _)) = track.iter().next() else { break };
            track.remove(handle).unwrap()
        };
        let held = Held::mapped(&mapping, domid);
        shared.lock_for(held.gref).unpin(held, Usage::Map, "unmapping at the end");
    }
}

#[derive(Debug, Default)]
struct GranterCounts {
    grants: u32,
    ends: u32,
    refused_ends: u32,
    readonly: u32,
    refused_readonly: u32,
    writable: u32,
    flips: u32,
}

/// Check 3: a value the granter read from entry `gref` has its bits as it left them.
fn check_mine(gref: grant_ref_t, seen: u32, mine: u32) -> Result<(), String> {
    match seen & !CORE_BITS == mine {
        true => Ok(()),
        false => Err(format!(
            "gref {gref}: the granter read {seen:#x} where it left {mine:#x}: the core changed \
             more than GTF_reading/GTF_writing, or lost one of the granter's writes"
        )),
    }
}

/// The granter vCPU's write on entry `gref`, whose header it read as `seen`, having left its
/// own bits `mine` there: grants a free entry, else ends it, makes it read-only or writable, or
/// flips `GTF_PWT`, each with the atomic operation `grant_table.h` prescribes. Returns the bits
/// it leaves there, or a failure of check 3.
fn granter_write(
    (header, frame_word): (&AtomicU32, &AtomicU32),
    (gref, seen, mine): (grant_ref_t, u32, u32),
    rng: &mut Rng,
    round: &mut u32,
    counts: &mut GranterCounts,
) -> Result<u32, String> {
    check_mine(gref, seen, mine)?;
    if seen as u16 & (GTF_type_mask | GTF_reading | GTF_writing) == 0 {
        // "Introducing a valid entry": the frame, then domid and flags.
        *round += 1;
        let domid = [DOM_A, DOM_B, DOM_C][rng.below(3) as usize];
        let mut flags = if rng.coin() { RO } else { RW };
        if rng.coin() {
            flags |= GTF_PWT;
        }
        if rng.below(8) == 0 {
            flags |= GTF_sub_page;
        }
        let new = u32::from(domid) << 16 | u32::from(flags);
        frame_word.store(*round, Relaxed);
        header.store(new, Release);
        counts.grants += 1;
        return Ok(new);
    }
    let (readonly, pwt) = (u32::from(GTF_readonly), u32::from(GTF_PWT));
    match rng.below(6) {
        // "Read-only to writable: SMP-safe bit-setting instruction" (here, clearing).
        2 => {
            counts.writable += 1;
            check_mine(gref, header.fetch_and(!readonly, Release), mine)?;
            Ok(mine & !readonly)
        }
        // A bit of the guest's own, flipped the same way.
        3.. => {
            counts.flips += 1;
            check_mine(gref, header.fetch_xor(pwt, Release), mine)?;
            Ok(mine ^ pwt)
        }
        // "Invalidating an unused GTF_permit_access entry" (0): compare-exchange the flags to
        // 0 while neither GTF_reading nor GTF_writing is set, as Linux's
        // `gnttab_end_foreign_access_ref`. "Writable to read-only" (1): compare-exchange
        // GTF_readonly in while GTF_writing is clear.
        op => {
            let end = op == 0;
            let busy = if end { GTF_reading | GTF_writing } else { GTF_writing };
            let mut seen = seen;
            loop {
                check_mine(gref, seen, mine)?;
                if seen as u16 & busy != 0 {
                    match end {
                        true => counts.refused_ends += 1,
                        false => counts.refused_readonly += 1,
                    }
                    return Ok(mine);
                }
                let new = if end { seen & !0xFFFF } else { seen | readonly };
                match header.compare_exchange(seen, new, Release, Acquire) {
                    Ok(_) => {
                        match end {
                            true => counts.ends += 1,
                            false => counts.readonly += 1,
                        }
                        return Ok(new & !CORE_BITS);
                    }
                    Err(now) => seen = now,
                }
            }
        }
    }
}

/// The granter vCPU, until no mapper runs: returns what it did and the entries as it left them
/// (`frame << 32 | header` without [`CORE_BITS`]).
fn granter(shared: &Shared) -> (GranterCounts, Vec<u64>) {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let mut counts = GranterCounts::default();
    let mut versions = vec![0u64; LEN as usize];
    let mut states = vec![0u64; LEN as usize];
    let mut round = 0u32;
    while shared.running.load(Acquire) > 0 {
        let hot = shared.hot.load(Relaxed);
        let gref = if hot == 0 { rng.below(u64::from(LEN)) } else { hot - 1 };
        let index = gref as usize;
        let (published, words) = (&shared.published[index], shared.table.words(gref).unwrap());
        // On the entry a mapper works on, a burst of `GTF_PWT` flips after each other write:
        // the quickest write, so that more of them meet the core's.
        let flips = if hot == 0 { 0 } else { 8 };
        for flip in 0..=flips {
            if flip > 0 && shared.hot.load(Relaxed) != hot {
                break;
            }
            let mine = states[index] as u32;
            let mut failure = None;
            states[index] = published.write(&mut versions[index], || {
                let new = if flip == 0 {
                    let seen = (gref, words.0.load(Acquire), mine);
                    granter_write(words, seen, &mut rng, &mut round, &mut counts)
                } else {
                    counts.flips += 1;
                    let old = words.0.fetch_xor(u32::from(GTF_PWT), Release);
                    check_mine(gref, old, mine).map(|()| mine ^ u32::from(GTF_PWT))
                };
                let new = new.unwrap_or_else(|error| {
                    failure = Some(error);
                    mine
                });
                u64::from(words.1.load(Relaxed)) << 32 | u64::from(new)
            });
            // Published first, so that no mapper waits for this version forever.
            if let Some(failure) = failure {
                panic!("{failure}");
            }
        }
    }
    (counts, states)
}

/// Runs the granter and three mapper vCPUs to the end of the mappers' steps, then checks that
/// nothing is left pinned or flagged and that every entry is as the granter left it (check 4).
#[test]
fn concurrent_pins_and_granter_writes_match_the_model() {
    let shared = Shared {
        table: Table::new(LEN),
        published: (0..LEN).map(|_| Published::new()).collect(),
        core: Mutex::new(Core {
            active: ActiveTable::new(1),
            model: Model {
                headers: vec![0; LEN as usize],
                frames: vec![0; LEN as usize],
                scribbled: vec![false; LEN as usize],
                ..Model::default()
            },
            counts: PinCounts::default(),
        }),
        tracks: [Mutex::new(MapTrack::default()), Mutex::new(MapTrack::default())],
        running: AtomicU32::new(3),
        hot: AtomicU32::new(0),
    };
    /// Counts a mapper out when it ends, even by a panic, so that the granter stops.
    struct Running<'a>(&'a AtomicU32);
    impl Drop for Running<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Release);
        }
    }

    let started = Instant::now();
    let (granted, states) = thread::scope(|scope| {
        let granter = scope.spawn(|| granter(&shared));
        for (domid, seed) in
            [(DOM_A, 0x2545_F491_4F6C_DD1D), (DOM_A, 0x9E37_79B9), (DOM_B, 0x5851_F42D)]
        {
            let shared = &shared;
            scope.spawn(move || {
                let _running = Running(&shared.running);
                mapper(shared, domid, seed, started);
            });
        }
        granter.join().unwrap()
    });
    let core = lock(&shared.core);
    println!("{:?} in {:?}; {granted:?}", core.counts, started.elapsed());
    if core.counts.raced_unpins < RACED_UNPINS {
        eprintln!("the granter and the mappers seldom ran at once: few races were tried");
    }
    assert!(core.active.pinned.is_empty() && core.model.pins.is_empty(), "pins left");
    assert!(shared.tracks.iter().all(|track| lock(track).iter().next().is_none()));
    for gref in 0..LEN {
        let header = shared.table.header(gref);
        let (state, frame) =
            (states[gref as usize], shared.table.words(gref).unwrap().1.load(Relaxed));
        assert_eq!(header, state as u32, "gref {gref} at the end");
        assert_eq!(u64::from(frame), state >> 32, "gref {gref}'s frame at the end");
        if header as u16 & GTF_type_mask == GTF_permit_access {
            assert!(shared.table.revoke(gref), "gref {gref} cannot be ended at the end");
        }
    }
    if !cfg!(miri) {
        let pins = &core.counts;
        assert!(pins.maps > 1000 && pins.refused_maps > 1000 && pins.copy_pins > 1000, "{pins:?}");
        assert!(granted.ends > 100 && granted.refused_ends > 100, "{granted:?}");
        assert!(granted.readonly > 100 && granted.refused_readonly > 100, "{granted:?}");
    }
}
