# Shortcuts to the host tool; each recipe is what CI runs for that step. `cargo xtask help` lists more.

# Build and boot images/default.toml in QEMU (Ctrl-A X quits).
run manifest="images/default.toml":
    cargo xtask run {{manifest}}

# Everything CI runs.
test:
    cargo xtask test

# Host unit and integration tests.
test-host:
    cargo xtask test-host

# QEMU system tests.
test-qemu:
    cargo xtask test-qemu

# cargo fmt --check and clippy -D warnings on host, bare-metal and the Linux guest tools' targets.
lint:
    cargo xtask lint

# Deterministic figures under QEMU -icount shift=0.
bench:
    cargo xtask bench
