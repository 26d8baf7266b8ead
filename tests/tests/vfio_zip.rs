//! Compression through the public hisi-zip API on VFIO queues: the process's devices are
//! `WD_DEVICES=fake-vfio:<pci tree>` (the `vfio` backend over the fake vfio kernel, the
//! model's VF behind it), a ZIP VF in an IOMMU group (TYPE1: every DMA buffer mapped with
//! MAP_DMA at an IOVA). One-shot and streaming, checked against the input and the
//! counters: offloaded, no device error, no fallback. NOIOMMU: `vfio_zip_noiommu.rs`.
//! (Its own test binary: the device selection is process-wide.)

#[path = "common/vfio.rs"]
mod vfio;

#[test]
fn zip_round_trips_over_vfio_type1() {
    vfio::zip_round_trips(false);
}
