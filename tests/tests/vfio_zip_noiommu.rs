//! As `vfio_zip.rs`, with the ZIP VF in a NOIOMMU group: no MAP_DMA, every DMA buffer
//! pinned and given to the device at its (fake pagemap) physical address.

#[path = "common/vfio.rs"]
mod vfio;

#[test]
fn zip_round_trips_over_vfio_noiommu() {
    vfio::zip_round_trips(true);
}
