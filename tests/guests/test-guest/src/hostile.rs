//! The hostile domain and its witness (issue 14).
//!
//! `test=hostile seed=S calls=N witness=W` throws `N` seeded hypercalls at the core from two
//! vCPUs at once: every number 0-63, every sub-operation of the families an Arm domU reaches, and
//! adversarial arguments (pointers into, across the end of and outside its memory, into pages it
//! gave back or granted away, into MMIO; `DOMID_SELF`, its own id, other and invalid ids; maximal
//! and overflowing counts, orders and batch sizes; continuation bits it was never given; maps
//! over its own special pages). Every answer must be a Xen error code or a success; the core
//! must not panic. The same seed replays the same calls on each vCPU (the two vCPUs' interleaving
//! is the scheduler's).
//!
//! `test=witness hostile=H` sits beside it: a checksum of its memory, its grant entries, its
//! event channels and its xenstore nodes are checked every round and must never change, except
//! that the grant it offers the hostile domain read-only may be in use (`GTF_reading`) while that
//! domain lives.
//!
//! # How the hostile domain stays alive while attacking
//! Arguments that name memory the core writes, maps over or takes away come only from places the
//! domain itself never uses: its victim pages (moved to a hole at [`VICTIM_GFN`]), its special
//! pages (console and xenstore rings, grant-table and shared-info windows), the far end of the
//! address space, and each vCPU's own target pages. Structures are built in each vCPU's own
//! struct pages, zeroed before each call, from typed values of those classes only, so no byte the
//! core reads can name the domain's code, stack, heap or structure pages. Event upcalls are
//! masked (the shared-info page may be moved anywhere). What would end the domain by Xen's rules
//! (`SCHEDOP_shutdown` with a good pointer, `SCHEDOP_block` with no wake-up, a watchdog that
//! fires) is sent only with arguments that make Xen refuse or defer it.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use xenolith_abi::xen::errno::XenError;
use xenolith_abi::xen::hypercall::{
    DOMID_COW, DOMID_IDLE, DOMID_INVALID, DOMID_IO, DOMID_SELF, DOMID_XEN,
};
use xenolith_runtime::{grants, hypercall, println, StartInfo};

use crate::xenstore::Random;

/// Where the victim pages go: a hole at 2 GiB, far from RAM (1-1.016 GiB here), with nothing
/// populated after it, so ranges and orders starting there reach only holes.
const VICTIM_GFN: u64 = 0x8_0000;
/// Victim pages.
const VICTIMS: u64 = 16;
/// Per vCPU: target pages, a hole, struct pages, a hole (see [`prepare`]).
const STRUCT_BYTES: u64 = 8 * 1024;
const TARGET_BYTES: u64 = 32 * 1024;
const VCPU_BYTES: u64 = TARGET_BYTES + 4096 + STRUCT_BYTES + 4096;
/// The reserved grant entries' pages in Xen's guest layout (`arch-arm.h` `GUEST_MAGIC_BASE`), the
/// grant-table window (`GUEST_GNTTAB_BASE`), and the runtime's shared-info and grant windows.
const SPECIAL_GFNS: [u64; 10] = [
    0x3_9000, 0x3_9001, 0x3_9002, 0x3_9003, 0x3_8000, 0x3_8001, 0xF_0000, 0xF_0100, 0xF_0101,
    0xF_1000,
];
/// Frame numbers beyond any guest address (40-bit IPA: 1 << 28 frames) or at the edge.
const FAR_GFNS: [u64; 6] = [1 << 28, (1 << 28) - 1, 1 << 40, u64::MAX, u32::MAX as u64, 1 << 52];
/// Addresses with nothing (or MMIO) behind them: null, low, the GIC distributor and
/// redistributors, the PL011, past 40 bits, the top of the address space.
const BAD_ADDRESSES: [u64; 9] = [
    0,
    8,
    0x1000,
    0x0300_1000,
    0x0302_0000,
    0x2200_0000,
    1 << 40,
    u64::MAX - 7,
    0xFFFF_FFFF_FFFF_F000,
];

/// Addresses no call can ever map: beyond the 40-bit guest address space. Reads from
/// [`BAD_ADDRESSES`] may succeed once the domain has mapped something there (a grant, a
/// populated page at gfn 0), so what must fail whatever happened before uses only these.
const UNMAPPABLE: [u64; 4] = [1 << 40, (1 << 48) - 8, u64::MAX - 7, 0xFFFF_FFFF_FFFF_F000];

/// Calls made so far, both vCPUs.
static CALLS: AtomicU64 = AtomicU64::new(0);
/// Answers that were neither a success nor a Xen error code.
static NON_XEN: AtomicU64 = AtomicU64::new(0);
/// Each vCPU's call in progress: how many it made before, the number and the arguments. A vCPU
/// that has made its share watches the other's, and names a call that does not return.
static IN_PROGRESS: [[AtomicU64; 7]; 2] = [const { [const { AtomicU64::new(0) }; 7] }; 2];

/// Set when vCPU 1 has made its share.
static SECONDARY_DONE: AtomicBool = AtomicBool::new(false);
/// The run's parameters, for vCPU 1: seed, calls, own id, witness id, base, RAM end, and the
/// hypercall numbers it is limited to (a bitmap; 0: all).
static PLAN: [AtomicU64; 7] = [const { AtomicU64::new(0) }; 7];

/// One vCPU's attack: its generator and the memory classes above.
struct Chaos {
    rng: Random,
    vcpu: u64,
    me: u16,
    witness: u16,
    structs: u64,
    targets: u64,
    used: u64,
    /// Where allocations must stop in the struct pages (below a multicall's array).
    limit: u64,
    /// Building a multicall's entries.
    nested: bool,
    /// The struct pages' bytes from `used` up to here may hold an earlier call's values.
    dirty: u64,
    ram_end: u64,
    /// Hypercall numbers to make (bit n: number n), or 0 for all: `only=12+20` replays a
    /// failure with fewer families.
    only: u64,
    /// Ports this vCPU was given by successful calls (alloc_unbound, bind_*), recent first.
    ports: [u32; 8],
    calls: u64,
    successes: u64,
    per_number: [u32; 64],
}

impl Chaos {
    fn below(&mut self, n: u64) -> u64 {
        self.rng.next() % n.max(1)
    }

    fn pick<T: Copy>(&mut self, values: &[T]) -> T {
        values[self.below(values.len() as u64) as usize]
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }

    /// A domain id: the system's, its own, reserved and invalid ones.
    fn domid(&mut self) -> u64 {
        let ids = [
            0,
            1,
            u64::from(self.witness),
            u64::from(self.me),
            u64::from(DOMID_SELF),
            u64::from(DOMID_SELF),
            u64::from(DOMID_IO),
            u64::from(DOMID_XEN),
            u64::from(DOMID_COW),
            u64::from(DOMID_INVALID),
            u64::from(DOMID_IDLE),
            u64::from(self.me) + 1,
            63,
            64,
            0x7FEF,
            0xFFFF,
        ];
        self.pick(&ids)
    }

    /// A port: ones it holds, small ones (the witness's among them), limits.
    fn port(&mut self) -> u64 {
        match self.below(4) {
            0 => u64::from(self.ports[self.below(8) as usize]),
            1 => self.pick(&[1023, 1024, 4095, 4096, 0x7FFF_FFFF, u64::from(u32::MAX)]),
            _ => self.below(40),
        }
    }

    /// A grant reference: reserved, small, around frame ends, beyond every table.
    fn gref(&mut self) -> u64 {
        match self.below(3) {
            0 => self.pick(&[
                510,
                511,
                512,
                513,
                2047,
                2048,
                8191,
                8192,
                1 << 20,
                u64::from(u32::MAX),
            ]),
            _ => self.below(20),
        }
    }

    /// A grant of someone's: a third of the time one the witness offers (ref 10 read-only to
    /// this domain, 11-13 to others), else any id with any reference.
    fn grant_of(&mut self) -> (u16, u32) {
        if self.chance(3) {
            (self.witness, 10 + self.below(4) as u32)
        } else {
            (self.domid() as u16, self.gref() as u32)
        }
    }

    /// A port of someone's: a third of the time one of the witness's (2-5), else any.
    fn port_of(&mut self) -> (u16, u32) {
        if self.chance(3) {
            (self.witness, 2 + self.below(4) as u32)
        } else {
            (self.domid() as u16, self.port() as u32)
        }
    }

    /// A count or size: none, small, maximal and overflowing ones.
    fn count(&mut self) -> u64 {
        match self.below(3) {
            0 => self.pick(&[
                64,
                512,
                1 << 16,
                1 << 31,
                u64::from(u32::MAX),
                u64::MAX,
                1 << 32,
                0x8000_0000_0000_0000,
            ]),
            _ => self.below(6),
        }
    }

    /// A frame number the core may write, map over or take away.
    fn gfn(&mut self) -> u64 {
        match self.below(8) {
            0..=3 => VICTIM_GFN + self.below(VICTIMS + 2),
            4 | 5 => self.pick(&SPECIAL_GFNS),
            6 => self.pick(&FAR_GFNS),
            _ => self.ram_end >> 12,
        }
    }

    /// An address the core may write (an output buffer or an area it registers). Writes run
    /// up from here into holes, never into anything the domain uses.
    fn target(&mut self) -> u64 {
        match self.below(10) {
            0..=3 => self.targets + self.below(TARGET_BYTES - 64) / 8 * 8,
            // Across a boundary between two of its target pages, or into the hole after them.
            4 => self.targets + 4096 * (1 + self.below(TARGET_BYTES / 4096)) - 8 * self.below(4),
            5 | 6 => (VICTIM_GFN << 12) + self.below(VICTIMS * 4096 + 8192),
            7 => self.pick(&[self.ram_end - 8, self.ram_end, self.ram_end - 4096]),
            8 => self.gfn().wrapping_shl(12),
            _ => self.pick(&BAD_ADDRESSES),
        }
    }

    /// Where a structure is not: nothing, MMIO, or across the end of its struct pages (into a
    /// hole) or of its RAM, 4 bytes before it (so no structure of 8 bytes or more fits, and a
    /// zeroed watchdog cannot start). Never a page the core writes: read as a structure, what
    /// the core wrote there (times, frame numbers) could name the domain's own pages.
    fn not_a_structure(&mut self) -> u64 {
        match self.below(3) {
            0 => self.structs + STRUCT_BYTES - 4,
            _ => self.pick(&UNMAPPABLE),
        }
    }

    /// A value for an argument nothing else describes.
    fn word(&mut self) -> u64 {
        match self.below(6) {
            0 => self.domid(),
            1 => self.port(),
            2 => self.count(),
            // Random, but never an address of this domain's RAM.
            3 => self.rng.next() | (1 << 40),
            4 => self.pick(&BAD_ADDRESSES),
            _ => self.below(16),
        }
    }

    /// Room for `bytes` in the struct pages, zeroed; `None` when a call's structures fill them.
    fn alloc(&mut self, bytes: u64) -> Option<u64> {
        let start = (self.used + 7) & !7;
        if start + bytes > self.limit {
            return None;
        }
        self.used = start + bytes;
        let address = self.structs + start;
        for offset in (0..bytes).step_by(8) {
            put(address + offset, 0u64);
        }
        self.dirty = self.dirty.max(self.used);
        Some(address)
    }

    /// A structure of `bytes` built by `fill`, or an address that is not one.
    fn structure(&mut self, bytes: u64, fill: impl FnOnce(&mut Self, u64)) -> u64 {
        if self.chance(12) {
            return self.not_a_structure();
        }
        match self.alloc(bytes) {
            Some(address) => {
                fill(self, address);
                address
            }
            None => self.not_a_structure(),
        }
    }

    /// A list of `count` values from `each` (capped at 64 built), or an address that is not one.
    fn list(&mut self, count: u64, width: u64, each: fn(&mut Self) -> u64) -> u64 {
        let built = count.min(64);
        self.structure(built.max(1) * width, |chaos, address| {
            for index in 0..built {
                let value = each(chaos);
                match width {
                    8 => put(address + index * 8, value),
                    4 => put(address + index * 4, value as u32),
                    _ => put(address + index * 2, value as u16),
                }
            }
        })
    }

    /// One call: a hypercall number and its five arguments, with any structure built.
    fn call(&mut self, depth: u32) -> (u64, [u64; 5]) {
        let number = match self.below(100) {
            0..=14 => 12,  // memory_op
            15..=29 => 20, // grant_table_op
            30..=44 => 32, // event_channel_op
            45..=52 => 29, // sched_op
            53..=58 => 24, // vcpu_op
            59..=63 => 34, // hvm_op
            64..=68 => 17, // xen_version
            69..=71 => 18, // console_io
            72..=76 => 13, // multicall
            77..=79 => 36, // domctl
            80..=82 => 35, // sysctl
            83..=84 => 33, // physdev_op
            85..=86 => 21, // vm_assist
            87..=88 => 15, // set_timer_op
            _ => self.below(64),
        };
        if depth == 0 && self.only != 0 && self.only & (1 << number) == 0 {
            return self.call(depth);
        }
        let args = match number {
            12 => self.memory_op(),
            20 => self.grant_table_op(),
            32 => self.event_channel_op(),
            29 => self.sched_op(),
            24 => [
                self.pick(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 64]),
                self.pick(&[0, 0, 1, 1, 2, 7, 8, 0xFFFF_FFFF]),
                self.vcpu_op_arg(),
                0,
                0,
            ],
            34 => self.hvm_op(),
            17 => [self.below(22), self.target(), 0, 0, 0],
            18 => self.console_io(),
            13 if depth == 0 => self.multicall(),
            36 | 35 => [self.control_op(), 0, 0, 0, 0],
            15 => [self.pick(&[0, 1, 1000, u64::MAX, 1 << 63, (1 << 63) - 1]), 0, 0, 0, 0],
            _ => [self.word(), self.word(), self.target(), self.word(), self.word()],
        };
        (number, args)
    }

    /// `memory_op` (`memory.h`): every `XENMEM_*` with its structure; continuation bits on some.
    fn memory_op(&mut self) -> [u64; 5] {
        let cmd = self.pick(&[
            0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
            25, 26, 27, 28, 29, 63,
        ]);
        // MEMOP_EXTENT_SHIFT is 6: a start extent the caller was never given.
        let cmd = if self.chance(8) { cmd | (self.count() << 6) } else { cmd };
        let arg = match cmd & 63 {
            // xen_memory_reservation: extent_start, nr_extents, extent_order, mem_flags, domid.
            0 | 1 | 6 => self.reservation(),
            // XENMEM_current_reservation / maximum_reservation / maximum_gpfn: a domid_t.
            3 | 4 | 14 => self.structure(2, |c, a| put(a, c.domid() as u16)),
            // xen_memory_exchange: in, out, nr_exchanged (a continuation field).
            11 => self.structure(72, |c, a| {
                c.fill_reservation(a);
                c.fill_reservation(a + 32);
                put(a + 64, if c.chance(2) { 0 } else { c.count() });
            }),
            // xen_add_to_physmap: domid, size, space, idx, gpfn.
            7 => self.structure(24, |c, a| {
                put(a, c.domid() as u16);
                let space = c.pick(&[0u64, 1, 2, 3, 4, 5, 6, 0xFFFF]);
                // XENMAPSPACE_gmfn_range moves `size` pages: long only from the hole.
                let (idx, size) = if space == 3 && c.chance(4) {
                    (VICTIM_GFN + c.below(4), 0xFFFF)
                } else {
                    let idx = if space == 1 || space == 0 { c.count() } else { c.gfn() };
                    (idx, c.below(17))
                };
                put(a + 2, size as u16);
                put(a + 4, space as u32);
                put(a + 8, idx);
                put(a + 16, c.gfn());
            }),
            // xen_add_to_physmap_batch: domid, space, size, foreign domid, idxs, gpfns, errs.
            23 => self.structure(32, |c, a| {
                let size = c.pick(&[0u64, 1, 2, 5, 16, 0xFFFF]);
                put(a, c.domid() as u16);
                put(a + 2, c.pick(&[0u16, 1, 2, 3, 4, 5, 9]));
                put(a + 4, size as u16);
                put(a + 6, c.domid() as u16);
                let idxs = c.list(size, 8, Self::gfn);
                put(a + 8, idxs);
                let gpfns = c.list(size, 8, Self::gfn);
                put(a + 16, gpfns);
                let errs = c.target();
                put(a + 24, errs);
            }),
            // xen_remove_from_physmap: domid, gpfn.
            15 => self.structure(16, |c, a| {
                put(a, c.domid() as u16);
                put(a + 8, c.gfn());
            }),
            // xen_mem_acquire_resource: domid, type, id, nr_frames, frame, frame_list.
            28 => self.structure(32, |c, a| {
                put(a, c.domid() as u16);
                put(a + 2, c.below(4) as u16);
                put(a + 8, c.below(4) as u32);
                let frames = c.count();
                put(a + 12, frames as u32);
                put(a + 16, c.count());
                let list = c.list(frames, 8, Self::gfn);
                put(a + 24, list);
            }),
            // XENMEM_memory_map and the rest: a count and a buffer.
            _ => self.structure(64, |c, a| {
                put(a, c.count() as u32);
                put(a + 4, c.domid() as u16);
                let buffer = c.target();
                put(a + 8, buffer);
                let more = c.word();
                put(a + 16, more);
            }),
        };
        [cmd, arg, 0, 0, 0]
    }

    fn reservation(&mut self) -> u64 {
        self.structure(32, Self::fill_reservation)
    }

    fn fill_reservation(&mut self, a: u64) {
        let extents = self.count();
        let list = self.list(extents, 8, Self::gfn);
        put(a, list);
        put(a + 8, extents);
        put(a + 16, self.pick(&[0u32, 0, 1, 2, 9, 10, 18, 63, u32::MAX]));
        put(a + 20, self.pick(&[0u32, 1 << 8, 0xFF << 8, u32::MAX]));
        put(a + 24, self.domid() as u16);
    }

    /// `grant_table_op` (`grant_table.h`): each `GNTTABOP_*` with an array of its structures.
    fn grant_table_op(&mut self) -> [u64; 5] {
        // Maps and copies, the calls that reach other domains' pages, weigh most.
        let cmd = match self.below(10) {
            0..=2 => 0,
            3 | 4 => 5,
            5 => 1,
            _ => self.below(14),
        };
        // In a multicall, no count beyond what is built: a batch that writes its results over
        // its own multicall entry would continue for good (Xen's would too), which stops this
        // vCPU and tests nothing of the core.
        let count = if self.chance(6) && !self.nested { self.count() } else { 1 + self.below(4) };
        let built = count.min(8);
        // GNTTABOP_CMD_MASK: bits above 12 are a continuation's, never given to this caller.
        let cmd_word = if self.chance(10) { cmd | (self.count() << 12) } else { cmd };
        let size = [32, 24, 24, 4, 24, 40, 16, 24, 4, 8, 16, 8, 12, 16][cmd as usize];
        let array = self.structure(size * built.max(1), |c, a| {
            for index in 0..built {
                c.fill_grant(cmd, a + index * size);
            }
        });
        [cmd_word, array, count, 0, 0]
    }

    fn fill_grant(&mut self, cmd: u64, a: u64) {
        match cmd {
            // gnttab_map_grant_ref: host_addr, flags, ref, dom.
            0 => {
                let host = self.target();
                put(a, host);
                put(a + 8, self.pick(&[1u32, 1, 5, 2, 3, 0, 8, 16, 0xFF, u32::MAX]));
                let (dom, gref) = self.grant_of();
                put(a + 12, gref);
                put(a + 16, dom);
            }
            // gnttab_unmap_grant_ref / unmap_and_replace: host_addr, dev_bus_addr or new_addr, handle.
            1 | 7 => {
                let host = self.target();
                put(a, host);
                let other = self.target();
                put(a + 8, other);
                put(a + 16, self.pick(&[0u32, 1, 2, 3, 1023, 1024, u32::MAX]));
            }
            // gnttab_setup_table: dom, nr_frames, frame_list.
            2 => {
                put(a, self.domid() as u16);
                put(a + 4, self.count() as u32);
                let list = self.target();
                put(a + 16, list);
            }
            // gnttab_dump_table, set_version, get_version: dom or version.
            3 | 8 | 9 => put(a, self.pick(&[0u32, 1, 2, 3, 0x7FF0, u32::MAX])),
            // gnttab_transfer: mfn, domid, ref.
            4 => {
                put(a, self.gfn());
                put(a + 8, self.domid() as u16);
                put(a + 12, self.gref() as u32);
            }
            // gnttab_copy: source and dest (ref or gmfn, domid, offset), len, flags.
            // GNTCOPY_source_gref is 1, GNTCOPY_dest_gref 2; now and then flags that do not
            // match the ends, or unknown ones.
            5 => {
                let mut flags = 0;
                for (side, gref_flag) in [(a, 1u16), (a + 16, 2)] {
                    let (dom, gref) = self.grant_of();
                    let by_ref = self.chance(2);
                    put(side, if by_ref { u64::from(gref) } else { self.gfn() });
                    put(side + 8, if by_ref { dom } else { self.domid() as u16 });
                    put(side + 10, self.pick(&[0u16, 0, 8, 2048, 4095, 4096, 0xFFFF]));
                    flags |= if by_ref { gref_flag } else { 0 };
                }
                put(a + 32, self.pick(&[0u16, 1, 8, 8, 2048, 4096, 4097, 0xFFFF]));
                let flags = if self.chance(8) { self.pick(&[3u16, 4, 0xFFFF]) } else { flags };
                put(a + 34, flags);
            }
            // gnttab_query_size: dom.
            6 => put(a, self.domid() as u16),
            // gnttab_get_status_frames: nr_frames, dom, frame_list.
            10 => {
                put(a, self.count() as u32);
                put(a + 4, self.domid() as u16);
                let list = self.target();
                put(a + 8, list);
            }
            // gnttab_swap_grant_ref: ref_a, ref_b.
            12 => {
                put(a, self.gref() as u32);
                put(a + 4, self.gref() as u32);
            }
            // gnttab_cache_flush: address or ref, length, offset, op.
            _ => {
                put(a, if self.chance(2) { self.gref() } else { self.target() });
                put(a + 8, self.pick(&[0u16, 1, 4096, 0xFFFF]));
                put(a + 10, self.pick(&[0u16, 8, 4095]));
                put(a + 12, self.pick(&[0u32, 1, 2, 4, 7, u32::MAX]));
            }
        }
    }

    /// `event_channel_op` (`event_channel.h`): each `EVTCHNOP_*` with its structure.
    fn event_channel_op(&mut self) -> [u64; 5] {
        let cmd = self.pick(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 99]);
        let arg = self.structure(24, |c, a| match cmd {
            // evtchn_init_control: control_gfn, offset, vcpu, link_bits.
            11 => {
                put(a, c.gfn());
                put(a + 8, c.pick(&[0u32, 8, 4032, 4095, 4096]));
                put(a + 12, c.pick(&[0u32, 1, 2, 8, u32::MAX]));
            }
            // evtchn_expand_array: array_gfn.
            12 => put(a, c.gfn()),
            // evtchn_alloc_unbound: dom, remote_dom, port.
            6 => {
                put(a, c.domid() as u16);
                put(a + 2, c.domid() as u16);
            }
            // evtchn_bind_interdomain: remote_dom, remote_port; evtchn_status: dom, port.
            0 | 5 => {
                let (dom, port) = c.port_of();
                put(a, dom);
                put(a + 4, port);
            }
            // evtchn_bind_virq: virq, vcpu; the others: port or vCPU words.
            _ => {
                put(
                    a,
                    c.pick(&[0u32, 1, 2, 3, 5, 7, 8, 9, 13, 16, 23, 24, 100, u32::MAX])
                        ^ (c.port() as u32 * u32::from(c.chance(2))),
                );
                put(a + 4, c.pick(&[0u32, 1, 2, 8, u32::MAX]));
                put(a + 8, c.port() as u32);
                put(a + 12, c.pick(&[0u32, 1, 15, 16, u32::MAX]));
            }
        });
        [cmd, arg, 0, 0, 0]
    }

    /// `sched_op` (`sched.h`). `SCHEDOP_shutdown` only with a pointer Xen refuses, no
    /// `SCHEDOP_block` (it would sleep for good with upcalls masked), polls whose timeout has
    /// passed, watchdogs that would fire in no less than a day, and shutdown codes that do not
    /// make its destruction look like a crash, a reboot or a suspend.
    fn sched_op(&mut self) -> [u64; 5] {
        // No watchdog inside a multicall: an earlier entry with a count beyond what was built
        // writes its results over the structures after its own, and a watchdog structure
        // zeroed that way is id 0 with timeout 0, which starts a timer that fires at once, as
        // Xen's `domain_watchdog` does (seed 38785540578473 did: the core logged the zeroed
        // structure's address, inside the struct pages).
        let cmd = if self.nested {
            self.pick(&[0, 2, 3, 4, 5, 7, 8, 9, 99, u64::from(u32::MAX)])
        } else {
            self.pick(&[0, 2, 3, 4, 5, 6, 7, 8, 9, 99, u64::from(u32::MAX)])
        };
        let arg = match cmd {
            2 => self.pick(&UNMAPPABLE),
            // sched_poll: ports, nr_ports, timeout (absolute ns; these have passed).
            3 => self.structure(24, |c, a| {
                let nr = c.count();
                let ports = c.list(nr, 4, Self::port);
                put(a, ports);
                put(a + 8, nr as u32);
                put(a + 16, c.pick(&[1u64, 2, 1000]));
            }),
            // sched_remote_shutdown: domain_id, reason.
            4 => self.structure(8, |c, a| {
                put(a, c.domid() as u16);
                put(a + 4, c.pick(&[0u32, 1, 2, 3, 4, 5, 99]));
            }),
            // sched_shutdown (for SCHEDOP_shutdown_code): poweroff or no known reason.
            5 => self.structure(4, |c, a| put(a, c.pick(&[0u32, 6, 99, 255, u32::MAX]))),
            // sched_watchdog: id, timeout (0 is only a stop, of an existing id). Never the
            // structure that straddles the end of its struct pages: once a random
            // populate_physmap has filled the hole after them, it reads as id 0 (a new
            // watchdog) with timeout 0, which fires at once as in Xen (`domain_watchdog`) and
            // ends the domain (seed 38785540578473 did).
            6 => {
                let address = self.structure(8, |c, a| {
                    let id = c.pick(&[0u32, 1, 2, 3, 99, u32::MAX]);
                    put(a, id);
                    let timeout = if id == 0 {
                        c.pick(&[86_400u32, u32::MAX])
                    } else {
                        c.pick(&[0u32, 86_400, u32::MAX])
                    };
                    put(a + 4, timeout);
                });
                if address == self.structs + STRUCT_BYTES - 4 {
                    self.pick(&UNMAPPABLE)
                } else {
                    address
                }
            }
            _ => self.structure(8, |c, a| {
                put(a, c.word() as u32);
                put(a + 4, c.word() as u32);
            }),
        };
        [cmd, arg, 0, 0, 0]
    }

    /// `vcpu_op`'s structure: a `vcpu_register_vcpu_info` (mfn, offset) or an address.
    fn vcpu_op_arg(&mut self) -> u64 {
        self.structure(16, |c, a| {
            let word = if c.chance(2) { c.gfn() } else { c.target() };
            put(a, word);
            put(a + 8, c.pick(&[0u32, 8, 64, 4048, 4056, 4095, 4096, u32::MAX]));
        })
    }

    /// `hvm_op` (`hvm_op.h`): `xen_hvm_param` (domid, index, value) for get and set, and others.
    fn hvm_op(&mut self) -> [u64; 5] {
        let op = self
            .pick(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 24, 99]);
        let arg = self.structure(16, |c, a| {
            put(a, c.domid() as u16);
            put(
                a + 4,
                c.pick(&[0u32, 1, 2, 4, 5, 17, 18, 19, 25, 31, 35, 38, 39, 40, 99, u32::MAX]),
            );
            put(a + 8, c.word());
        });
        [op, arg, 0, 0, 0]
    }

    /// `console_io`: writes only from where nothing is (a write from its memory would print
    /// whatever is there), reads and Xenolith's sub-ops into its targets.
    fn console_io(&mut self) -> [u64; 5] {
        let cmd = self.pick(&[0, 1, 2, 0xe000, 0xe001, 99]);
        let pointer = if cmd == 0 { self.pick(&BAD_ADDRESSES) } else { self.target() };
        [cmd, self.count(), pointer, self.word(), 0]
    }

    /// `multicall`: up to 8 entries (op, result, args[6]) of other calls, or bad arrays and counts.
    fn multicall(&mut self) -> [u64; 5] {
        let count = if self.chance(5) { self.count() } else { 1 + self.below(8) };
        let built = count.min(8);
        // The array sits at the top of the struct pages, so a count beyond what was built runs
        // into the hole after them (-EFAULT), never into other structures read as entries: a
        // word 29 followed by a 1 there would be SCHEDOP_block, asleep for good with upcalls
        // masked.
        let array = self.structs + STRUCT_BYTES - 64 * built.max(1);
        self.limit = array - self.structs;
        self.nested = true;
        let mut entries = [(0u64, [0u64; 5]); 8];
        for entry in entries.iter_mut().take(built as usize) {
            let (number, args) = self.call(1);
            *entry = (if self.chance(16) { 13 } else { number }, args);
        }
        self.nested = false;
        self.limit = STRUCT_BYTES;
        for (index, (number, args)) in entries.iter().take(built as usize).enumerate() {
            let entry = array + index as u64 * 64;
            put(entry, *number);
            put(entry + 8, 0u64);
            for (slot, value) in args.iter().enumerate() {
                put(entry + 16 + slot as u64 * 8, *value);
            }
            put(entry + 56, 0u64);
        }
        self.used = STRUCT_BYTES;
        self.dirty = STRUCT_BYTES;
        [if self.chance(12) { self.not_a_structure() } else { array }, count, 0, 0, 0]
    }

    /// `domctl` / `sysctl`: cmd, interface_version (right or wrong), domain, then random words.
    fn control_op(&mut self) -> u64 {
        self.structure(256, |c, a| {
            put(a, c.below(80) as u32);
            put(a + 4, c.pick(&[0x15u32, 0x15, 0x14, 0x13, 0, u32::MAX]));
            put(a + 8, c.domid() as u16);
            for offset in (16..256).step_by(8) {
                let word = c.word();
                put(a + offset, word);
            }
        })
    }

    /// Makes `calls` calls; checks every answer.
    fn run(&mut self, calls: u64) {
        for _ in 0..calls {
            self.used = 0;
            let (number, args) = self.call(0);
            // Whatever an earlier call left above this call's structures reads as all ones, so
            // a count beyond what was built reads ids, ports, frames and addresses that are
            // invalid (not gfn 0, which populating would map) up to the hole.
            for offset in (((self.used + 7) & !7)..self.dirty).step_by(8) {
                put(self.structs + offset, u64::MAX);
            }
            self.dirty = self.used;
            let record = &IN_PROGRESS[self.vcpu as usize & 1];
            for (slot, value) in record.iter().zip([self.calls + 1, number].into_iter().chain(args))
            {
                slot.store(value, Ordering::Relaxed);
            }
            let answer = hypercall::raw(number, args);
            self.calls += 1;
            self.per_number[number as usize] += 1;
            if answer >= 0 {
                self.successes += 1;
                if number == 32 && matches!(args[0], 0 | 1 | 2 | 6 | 7) {
                    // A port from bind_virq, bind_pirq, alloc_unbound or bind_ipi: its out field.
                    self.remember_port(args[0], args[1]);
                }
            } else if XenError::from_return(answer).is_none()
                && NON_XEN.fetch_add(1, Ordering::AcqRel) < 5
            {
                println!(
                        "hostile: FAIL vCPU {} call {number} ({:#x}, {:#x}, {:#x}) answered {answer}, not a Xen error code",
                        self.vcpu, args[0], args[1], args[2]
                );
            }
            let total = CALLS.fetch_add(1, Ordering::AcqRel) + 1;
            if total.is_multiple_of(100_000) {
                println!("hostile: {total} calls");
            }
        }
    }

    fn remember_port(&mut self, cmd: u64, arg: u64) {
        let offset = match cmd {
            0..=2 => 8,
            _ => 4,
        };
        if arg < self.structs || arg >= self.structs + STRUCT_BYTES {
            return;
        }
        self.ports.rotate_right(1);
        self.ports[0] = get_u32(arg + offset);
    }
}

/// Writes `value` at `address` in this vCPU's struct pages.
fn put<T: Copy>(address: u64, value: T) {
    // SAFETY: every caller passes an address inside the calling vCPU's struct pages (from
    // `Chaos::alloc`, with the offset inside the size it asked for), which this domain owns,
    // never gives away and identity-maps; the core may write them too, hence volatile.
    unsafe { core::ptr::write_unaligned(address as *mut T, value) };
}

fn get_u32(address: u64) -> u32 {
    // SAFETY: as in `put`: an address inside the calling vCPU's struct pages.
    unsafe { core::ptr::read_volatile(address as *const u32) }
}

/// Masks IRQs on this vCPU: the shared-info page and the vcpu_info may be moved anywhere.
fn mask_interrupts() {
    // SAFETY: setting PSTATE.I only masks this vCPU's IRQs.
    unsafe { core::arch::asm!("msr daifset, #2", options(nomem, nostack)) };
}

fn chaos(vcpu: u64) -> Chaos {
    let [seed, _, me, witness, base, ram_end, only] =
        PLAN.each_ref().map(|w| w.load(Ordering::Acquire));
    let targets = base + vcpu * VCPU_BYTES;
    let structs = targets + TARGET_BYTES + 4096;
    Chaos {
        rng: Random(seed ^ vcpu.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
        vcpu,
        me: me as u16,
        witness: witness as u16,
        structs,
        targets,
        used: 0,
        limit: STRUCT_BYTES,
        nested: false,
        dirty: STRUCT_BYTES,
        ram_end,
        only,
        ports: [1; 8],
        calls: 0,
        successes: 0,
        per_number: [0; 64],
    }
}

fn secondary(_index: usize) -> ! {
    mask_interrupts();
    let calls = PLAN[1].load(Ordering::Acquire);
    let mut chaos = chaos(1);
    chaos.run(calls / 2);
    println!("hostile: vCPU 1 made {} calls, {} succeeded", chaos.calls, chaos.successes);
    SECONDARY_DONE.store(true, Ordering::Release);
    watch_other(0)
}

/// Yields for good, saying once which call vCPU `other` is in if it makes no progress for 10 s.
fn watch_other(other: usize) -> ! {
    let record = &IN_PROGRESS[other];
    let (mut seen, mut since) = (record[0].load(Ordering::Relaxed), xenolith_runtime::now_ns());
    loop {
        hypercall::sched_op(xenolith_abi::xen::sched::SCHEDOP_yield, 0);
        let now = record[0].load(Ordering::Relaxed);
        if now != seen {
            (seen, since) = (now, xenolith_runtime::now_ns());
        } else if xenolith_runtime::now_ns() > since + 10_000_000_000 {
            let [count, number, a, b, c, d, e] =
                record.each_ref().map(|w| w.load(Ordering::Relaxed));
            // A multicall's entries, as far as they lie in that vCPU's struct pages (the array
            // may also be elsewhere, or end in the hole after them).
            let structs =
                PLAN[4].load(Ordering::Acquire) + other as u64 * VCPU_BYTES + TARGET_BYTES + 4096;
            let pages = structs..structs + STRUCT_BYTES;
            let in_pages = (0..b.min(8)).map(|index| a.wrapping_add(index * 64));
            for (index, entry) in
                in_pages.take_while(|e| pages.contains(e) && e + 64 <= pages.end).enumerate()
            {
                if number != 13 {
                    break;
                }
                let words: [u64; 5] = core::array::from_fn(|i| {
                    let address = entry + if i == 0 { 0 } else { 8 + i as u64 * 8 };
                    // SAFETY: `entry..entry + 64` lies inside vCPU `other`'s struct pages
                    // (checked just above against the layout `chaos` gives them), which this
                    // domain owns, identity-maps and never gives away; only read.
                    unsafe { core::ptr::read_volatile(address as *const u64) }
                });
                println!("hostile: entry {index}: {words:x?}");
            }
            println!(
                "hostile: FAIL vCPU {other}'s call {count} has not returned for 10 s: {number}({a:#x}, {b:#x}, {c:#x}, {d:#x}, {e:#x})"
            );
            since = u64::MAX / 2;
        }
    }
}

/// Gives back the victim pages (at `victims`) and the page after each vCPU's targets and after
/// its structs (from `base`), making holes that stop any run of the core's reads or writes, and
/// populates the victim pages again in the hole at [`VICTIM_GFN`]; grants some of them away.
/// `false` (said) if it could not.
fn prepare(victims: u64, base: u64, me: u16, witness: u16) -> bool {
    use xenolith_abi::xen::hypercall::GuestHandle;
    use xenolith_abi::xen::memory::{
        xen_memory_reservation, XENMEM_decrease_reservation, XENMEM_populate_physmap,
    };
    let mut old = [0u64; VICTIMS as usize + 4];
    for (index, slot) in old.iter_mut().enumerate() {
        *slot = if index < VICTIMS as usize {
            (victims >> 12) + index as u64
        } else {
            let vcpu = (index as u64 - VICTIMS) / 2;
            let after = if index % 2 == 0 { TARGET_BYTES } else { VCPU_BYTES - 4096 };
            (base + vcpu * VCPU_BYTES + after) >> 12
        };
    }
    let new: [u64; VICTIMS as usize] = core::array::from_fn(|i| VICTIM_GFN + i as u64);
    for (cmd, list) in
        [(XENMEM_decrease_reservation, &old[..]), (XENMEM_populate_physmap, &new[..])]
    {
        // While the control domain has the mailbox mapped to read it, the core refuses to take
        // any page back (-EBUSY): go on from where it stopped, a while later (bounded).
        let mut done = 0;
        for _ in 0..1000 {
            let rest = &list[done..];
            let reservation = xen_memory_reservation {
                extent_start: GuestHandle::new(rest.as_ptr() as u64),
                nr_extents: rest.len() as u64,
                extent_order: 0,
                mem_flags: 0,
                domid: DOMID_SELF,
                _pad: [0; 6],
            };
            let now = hypercall::memory_op(cmd, (&raw const reservation) as u64);
            done += usize::try_from(now).unwrap_or(0);
            if done == list.len() {
                break;
            }
            crate::xenstore::sleep(1_000_000);
        }
        if done != list.len() {
            println!(
                "hostile: FAIL memory_op {cmd} on the victim pages did {done} of {}",
                list.len()
            );
            return false;
        }
    }
    if let Err(error) = grants::init(1) {
        println!("hostile: FAIL mapping its grant table: {error}");
        return false;
    }
    // Victim pages granted away: to the witness, to dom0, to itself, to nobody.
    let owners = [witness, witness, 0, me, DOMID_SELF, DOMID_INVALID, 1, witness];
    for (index, owner) in owners.into_iter().enumerate() {
        let gfn = (VICTIM_GFN + index as u64) as u32;
        if let Err(error) = grants::grant_access(8 + index as u32, owner, gfn, index % 2 == 1) {
            println!("hostile: FAIL granting ref {}: {error}", 8 + index);
            return false;
        }
    }
    true
}

/// `test=hostile`.
pub fn hostile(info: &StartInfo) {
    let seed = info.bootarg("seed").and_then(|v| v.parse::<u64>().ok()).unwrap_or(1);
    let calls = info.bootarg("calls").and_then(|v| v.parse::<u64>().ok()).unwrap_or(1_000_000);
    let witness = crate::xenstore::arg(info, "witness", 2) as u16;
    let Some(me) = crate::xenstore::own_domid() else {
        println!("hostile: FAIL cannot learn its own id");
        return;
    };
    let (start, end) = xenolith_runtime::free_memory();
    // Victims, then two vCPUs' pages, below the mailbox page at `end - 4096`.
    let victims = (start + 0xFFFF) & !0xFFFF;
    let base = victims + VICTIMS * 4096;
    if base + 2 * VCPU_BYTES > end - 4096 {
        println!("hostile: FAIL too little free memory ({start:#x}..{end:#x})");
        return;
    }
    let ram_end = info.first_bank().0 + info.first_bank().1;
    let only = info
        .bootarg("only")
        .unwrap_or("")
        .split('+')
        .filter_map(|n| n.parse::<u32>().ok())
        .filter(|&n| n < 64)
        .fold(0u64, |bits, n| bits | 1 << n);
    for (slot, value) in
        PLAN.iter().zip([seed, calls, u64::from(me), u64::from(witness), base, ram_end, only])
    {
        slot.store(value, Ordering::Release);
    }
    if !prepare(victims, base, me, witness) {
        return;
    }
    println!(
        "hostile: seed {seed}, {calls} calls from 2 vCPUs, as d{me} beside witness d{witness}"
    );
    mask_interrupts();
    if let Err(error) = xenolith_runtime::smp::start_vcpu(1, secondary) {
        println!("hostile: FAIL starting vCPU 1: {}", error.0);
        return;
    }
    let mut chaos = chaos(0);
    chaos.run(calls - calls / 2);
    println!("hostile: vCPU 0 made {} calls, {} succeeded", chaos.calls, chaos.successes);
    while !SECONDARY_DONE.load(Ordering::Acquire) {
        hypercall::sched_op(xenolith_abi::xen::sched::SCHEDOP_yield, 0);
    }
    let mut numbers = alloc::string::String::new();
    for (number, count) in chaos.per_number.iter().enumerate().filter(|(_, &c)| c > 0) {
        use core::fmt::Write;
        let _ = write!(numbers, " {number}:{count}");
    }
    println!("hostile: vCPU 0 calls by number:{numbers}");
    let non_xen = NON_XEN.load(Ordering::Acquire);
    let total = CALLS.load(Ordering::Acquire);
    if non_xen == 0 {
        println!("hostile: done {total} calls, every answer a success or a Xen error code");
    } else {
        println!("hostile: FAIL {non_xen} of {total} answers were not Xen error codes");
    }
    // Tell the builder (the mailbox page just below the DTB, which nothing above touched).
    // SAFETY: `end - 4096` is this domain's own RAM, identity-mapped, never given away here.
    unsafe { core::ptr::write_volatile((end - 4096) as *mut u64, total.max(1)) };
    loop {
        hypercall::sched_op(xenolith_abi::xen::sched::SCHEDOP_yield, 0);
    }
}

/// The witness's checked memory: 256 KiB of its free memory, filled from a seed.
const WITNESS_BYTES: u64 = 256 * 1024;
/// Its grants: ref → (page of the checked memory, grantee, read-only). Ref 10 goes to the
/// hostile domain (filled in at run time), the others to domains that never map them.
const WITNESS_GRANTS: [(u32, u64, u16, bool); 4] =
    [(10, 0, 0, true), (11, 1, 0, false), (12, 2, 1, true), (13, 3, DOMID_SELF, false)];

/// What the witness checks every round.
struct Witness {
    memory: u64,
    checksum: u64,
    grants: [(u32, u32, u32); 4],
    ports: [(u32, [u8; 20]); 4],
    nodes: [(alloc::string::String, alloc::string::String); 4],
}

fn checksum(memory: u64) -> u64 {
    let mut sum = 0xCBF2_9CE4_8422_2325u64;
    for offset in (0..WITNESS_BYTES).step_by(8) {
        // SAFETY: the witness's own checked memory (free RAM it identity-maps), only read here.
        let word = unsafe { core::ptr::read_volatile((memory + offset) as *const u64) };
        sum = (sum ^ word).wrapping_mul(0x100_0000_01B3);
    }
    sum
}

/// Grant entry `gref`'s two words in the witness's table, mapped by `grants::init`.
fn grant_words(gref: u32) -> (u32, u32) {
    let entry = grants::GRANT_TABLE_ADDRESS + u64::from(gref) * 8;
    // SAFETY: the witness's first grant frame, mapped at GRANT_TABLE_ADDRESS by `grants::init`
    // and never moved; entry `gref` < 512 lies inside it. Read only.
    let header = unsafe { core::ptr::read_volatile(entry as *const u32) };
    // SAFETY: as above, the entry's second word.
    let frame = unsafe { core::ptr::read_volatile((entry + 4) as *const u32) };
    (header, frame)
}

fn port_status(port: u32) -> Option<[u8; 20]> {
    use zerocopy::IntoBytes;
    let status = xenolith_runtime::events::status(DOMID_SELF, port).ok()?;
    status.as_bytes()[4..24].try_into().ok()
}

impl Witness {
    /// The first difference from what was set up, if any; whether ref 10 is in use.
    fn check(
        &self,
        bus: &mut xenolith_runtime::xenbus::Xenbus,
    ) -> Result<bool, alloc::string::String> {
        use alloc::format;
        let sum = checksum(self.memory);
        if sum != self.checksum {
            return Err(format!("memory checksum {sum:#x}, was {:#x}", self.checksum));
        }
        let mut in_use = false;
        for (index, &(gref, header, frame)) in self.grants.iter().enumerate() {
            let (now_header, now_frame) = grant_words(gref);
            // The hostile domain's read-only grant may be mapped (GTF_reading) while it lives.
            let reading = u32::from(xenolith_abi::xen::grant_table::GTF_reading);
            let expected =
                if index == 0 && now_header == header | reading { now_header } else { header };
            in_use |= index == 0 && now_header & reading != 0;
            if (now_header, now_frame) != (expected, frame) {
                return Err(format!(
                    "grant {gref} is {now_header:#x}/{now_frame:#x}, was {header:#x}/{frame:#x}"
                ));
            }
        }
        for &(port, status) in &self.ports {
            if port_status(port) != Some(status) {
                return Err(format!(
                    "port {port} status is {:?}, was {status:?}",
                    port_status(port)
                ));
            }
        }
        for (path, value) in &self.nodes {
            match bus.read(path) {
                Ok(now) if now == value.as_bytes() => {}
                other => return Err(format!("{path} reads {other:?}, was {value:?}")),
            }
        }
        Ok(in_use)
    }
}

/// `test=witness hostile=H seed=S`.
pub fn witness(info: &StartInfo) {
    use alloc::format;
    use xenolith_runtime::events;
    let hostile = crate::xenstore::arg(info, "hostile", 3) as u16;
    let mut rng = Random(u64::from(crate::xenstore::arg(info, "seed", 7)) | 1);
    let (start, end) = xenolith_runtime::free_memory();
    let memory = (start + 4095) & !4095;
    if memory + WITNESS_BYTES > end {
        println!("witness: FAIL too little free memory");
        return;
    }
    for offset in (0..WITNESS_BYTES).step_by(8) {
        // SAFETY: the witness's own free RAM, identity-mapped; nothing else uses it.
        unsafe { core::ptr::write_volatile((memory + offset) as *mut u64, rng.next()) };
    }
    let Some((mut bus, me)) = crate::xenstore::connect("witness") else { return };
    if let Err(error) = grants::init(1) {
        println!("witness: FAIL mapping its grant table: {error}");
        return;
    }
    let mut grants = [(0, 0, 0); 4];
    for (slot, &(gref, page, grantee, readonly)) in grants.iter_mut().zip(&WITNESS_GRANTS) {
        let grantee = if gref == 10 { hostile } else { grantee };
        let gfn = ((memory >> 12) + page) as u32;
        if let Err(error) = grants::grant_access(gref, grantee, gfn, readonly) {
            println!("witness: FAIL granting ref {gref}: {error}");
            return;
        }
        let (header, frame) = grant_words(gref);
        *slot = (gref, header, frame);
    }
    // Ports: offered to dom0, to the control domain, to itself, and the last bound to that one.
    let offered = [0, 1, me].map(|remote| events::alloc_unbound(DOMID_SELF, remote));
    let [Ok(a), Ok(b), Ok(c)] = offered else {
        println!("witness: FAIL allocating ports: {offered:?}");
        return;
    };
    let d = match events::bind_interdomain(me, c.0) {
        Ok(port) => port,
        Err(error) => {
            println!("witness: FAIL binding its loopback port: {error}");
            return;
        }
    };
    let mut ports = [(0, [0; 20]); 4];
    for (slot, port) in ports.iter_mut().zip([a, b, c, d]) {
        let Some(status) = port_status(port.0) else {
            println!("witness: FAIL reading port {}'s status", port.0);
            return;
        };
        *slot = (port.0, status);
    }
    let mut nodes: [(alloc::string::String, alloc::string::String); 4] = Default::default();
    for (index, node) in nodes.iter_mut().enumerate() {
        *node = (format!("data/witness-{index}"), format!("{:x}", rng.next()));
        if let Err(error) = bus.write(&node.0, node.1.as_bytes()) {
            println!("witness: FAIL writing {}: {error}", node.0);
            return;
        }
    }
    let witness = Witness { memory, checksum: checksum(memory), grants, ports, nodes };
    // Tell the control domain that its setting-up is over (the mailbox page below the DTB).
    // SAFETY: `end - 4096` is this domain's own RAM, identity-mapped, above the checked memory.
    unsafe { core::ptr::write_volatile((end - 4096) as *mut u64, 1) };
    println!(
        "witness: ready: {} KiB checked, grants 10-13 (10 read-only to d{hostile}), ports {}-{}, 4 xenstore nodes",
        WITNESS_BYTES / 1024,
        a.0,
        d.0
    );
    for round in 1.. {
        crate::xenstore::sleep(500_000_000);
        match witness.check(&mut bus) {
            Ok(in_use) => println!(
                "witness: round {round} unchanged, ref 10 {}",
                if in_use { "mapped" } else { "idle" }
            ),
            Err(what) => {
                println!("witness: FAIL round {round}: {what}");
                return;
            }
        }
    }
}
