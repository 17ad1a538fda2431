//! Xen's public guest interface, encoded exactly as Xen 4.17's public headers give it
//! (`xen/include/public/`). Each module names the header it follows; every `#[repr(C)]` struct has
//! a layout test pinning its size and field offsets for arm64 (where Xen's layouts are the same on
//! arm32 and arm64: guest handles and `xen_ulong_t` are 64-bit).
//!
//! Operations Xen lacks get numbers in documented private ranges (see [`private`]).

/// Defines the wrapper for one of Xen's anonymous unions: `$words` 64-bit words (so 8-byte
/// aligned, as the unions' `uint64_aligned_t` members make them), members starting at byte 0,
/// read and written through typed accessors whose size is checked at compile time.
macro_rules! xen_union {
    ($(#[$doc:meta])* $name:ident, $words:literal) => {
        $(#[$doc])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
        pub struct $name([u64; $words]);

        impl $name {
            /// Size of the union in bytes.
            pub const SIZE: usize = $words * 8;

            /// A union holding `member` followed by zeros.
            pub fn new<T: IntoBytes + Immutable>(member: &T) -> Self {
                let mut union = Self([0; $words]);
                union.write(member);
                union
            }

            /// The member `T` (the union's first `size_of::<T>()` bytes).
            pub fn read<T: FromBytes>(&self) -> T {
                const { assert!(size_of::<T>() <= Self::SIZE, "member larger than the union") };
                match T::read_from_prefix(self.0.as_bytes()) {
                    Ok((member, _)) => member,
                    Err(_) => unreachable!("checked at compile time: the member fits"),
                }
            }

            /// Overwrites the union's first `size_of::<T>()` bytes with `member`; the rest keep
            /// their value.
            pub fn write<T: IntoBytes + Immutable>(&mut self, member: &T) {
                const { assert!(size_of::<T>() <= Self::SIZE, "member larger than the union") };
                self.0.as_mut_bytes()[..size_of::<T>()].copy_from_slice(member.as_bytes());
            }

            /// The union's bytes.
            pub fn as_bytes(&self) -> &[u8] {
                self.0.as_bytes()
            }
        }
    };
}

pub mod arch_arm;
pub mod console;
pub mod dm_op;
pub mod domctl;
pub mod errno;
pub mod event_channel;
pub mod grant_table;
pub mod hvm;
pub mod hypercall;
pub mod ioreq;
pub mod memory;
pub mod netif;
pub mod private;
pub mod sched;
pub mod shared_info;
pub mod sysctl;
pub mod vcpu;
pub mod version;
pub mod xenbus;
pub mod xs_wire;
