//! The host devices of QEMU's `virt` machine a boot domain can be given with a
//! `hardware:<device>` capability: what the host tool runs QEMU with, and the node the domain's
//! device tree gets. The domain's `iomem` and `irqs` must cover the device's registers and
//! interrupt (the core maps only what they name).
//!
//! Facts from QEMU 7.2's `hw/arm/virt.c`: 32 virtio-mmio transports of 0x200 bytes from
//! 0x0a00_0000 (`VIRT_MMIO`), transport `n` on SPI 16 + n (INTID 48 + n), edge-triggered in its
//! tree; the first `-device virtio-*-device` of the command line is plugged into the highest
//! transport, 31 (0x0a00_3e00, INTID 79).

use xenolith_builder::GuestDevice;

/// A device the host tool knows how to give a domain.
#[derive(Clone, Copy, Debug)]
pub struct Device {
    /// The name after `hardware:`.
    pub name: &'static str,
    /// Its node in the domain's tree (at its host address: passthrough is 1:1).
    pub node: GuestDevice<'static>,
}

/// `virtio-console`: a virtio console on QEMU's first virtio-mmio transport, its other end a
/// unix socket on the host (`cargo xtask xl` talks to the control domain through it).
pub const VIRTIO_CONSOLE: Device = Device {
    name: "virtio-console",
    node: GuestDevice {
        node: "virtio_mmio",
        compatible: "virtio,mmio",
        reg: (0x0a00_3e00, 0x200),
        intid: 79,
        // QEMU's tree: GIC_FDT_IRQ_FLAGS_EDGE_LO_HI.
        trigger: 1,
    },
};

/// Every device the host tool knows.
pub const DEVICES: [Device; 1] = [VIRTIO_CONSOLE];

/// The known device called `name`.
pub fn find(name: &str) -> Option<&'static Device> {
    DEVICES.iter().find(|device| device.name == name)
}
