//! VFIO ioctl numbers and argument layouts (docs/hardware-interface.md §6.1), pinned by
//! tests against the kernel values and rust-vmm's vfio-bindings. The DMA path itself goes
//! through vfio-ioctls; these are for what that crate does not cover (NOIOMMU detection,
//! checks).

#![forbid(unsafe_code)]

use crate::uacce::ioctl::io;

/// `VFIO_TYPE` (`';'`).
pub const VFIO_TYPE: u8 = b';';
/// `VFIO_BASE`.
pub const VFIO_BASE: u8 = 100;
/// `VFIO_API_VERSION`: what `VFIO_GET_API_VERSION` must return.
pub const VFIO_API_VERSION: i32 = 0;

/// `VFIO_GET_API_VERSION` = `_IO(';', 100)`.
pub const VFIO_GET_API_VERSION: u32 = io(VFIO_TYPE, VFIO_BASE);
/// `VFIO_CHECK_EXTENSION`.
pub const VFIO_CHECK_EXTENSION: u32 = io(VFIO_TYPE, VFIO_BASE + 1);
/// `VFIO_SET_IOMMU`.
pub const VFIO_SET_IOMMU: u32 = io(VFIO_TYPE, VFIO_BASE + 2);
/// `VFIO_GROUP_GET_STATUS`.
pub const VFIO_GROUP_GET_STATUS: u32 = io(VFIO_TYPE, VFIO_BASE + 3);
/// `VFIO_GROUP_SET_CONTAINER`.
pub const VFIO_GROUP_SET_CONTAINER: u32 = io(VFIO_TYPE, VFIO_BASE + 4);
/// `VFIO_GROUP_GET_DEVICE_FD`.
pub const VFIO_GROUP_GET_DEVICE_FD: u32 = io(VFIO_TYPE, VFIO_BASE + 6);
/// `VFIO_DEVICE_GET_INFO`.
pub const VFIO_DEVICE_GET_INFO: u32 = io(VFIO_TYPE, VFIO_BASE + 7);
/// `VFIO_DEVICE_GET_REGION_INFO`.
pub const VFIO_DEVICE_GET_REGION_INFO: u32 = io(VFIO_TYPE, VFIO_BASE + 8);
/// `VFIO_DEVICE_RESET`.
pub const VFIO_DEVICE_RESET: u32 = io(VFIO_TYPE, VFIO_BASE + 11);
/// `VFIO_IOMMU_GET_INFO`.
pub const VFIO_IOMMU_GET_INFO: u32 = io(VFIO_TYPE, VFIO_BASE + 12);
/// `VFIO_IOMMU_MAP_DMA`.
pub const VFIO_IOMMU_MAP_DMA: u32 = io(VFIO_TYPE, VFIO_BASE + 13);
/// `VFIO_IOMMU_UNMAP_DMA`.
pub const VFIO_IOMMU_UNMAP_DMA: u32 = io(VFIO_TYPE, VFIO_BASE + 14);

/// `VFIO_TYPE1_IOMMU`.
pub const VFIO_TYPE1_IOMMU: u32 = 1;
/// `VFIO_TYPE1v2_IOMMU` (what vfio-ioctls' container sets).
pub const VFIO_TYPE1V2_IOMMU: u32 = 3;
/// `VFIO_NOIOMMU_IOMMU`: no translation; only CHECK_EXTENSION works in such a container.
pub const VFIO_NOIOMMU_IOMMU: u32 = 8;
/// `VFIO_GROUP_FLAGS_VIABLE`.
pub const VFIO_GROUP_FLAGS_VIABLE: u32 = 1;
/// `VFIO_DMA_MAP_FLAG_READ`.
pub const VFIO_DMA_MAP_FLAG_READ: u32 = 1;
/// `VFIO_DMA_MAP_FLAG_WRITE`.
pub const VFIO_DMA_MAP_FLAG_WRITE: u32 = 2;
/// `VFIO_REGION_INFO_FLAG_MMAP`.
pub const VFIO_REGION_INFO_FLAG_MMAP: u32 = 4;
/// vfio-pci region index of BAR2 (QM registers, v2 doorbell).
pub const VFIO_PCI_BAR2_REGION_INDEX: u32 = 2;
/// vfio-pci region index of BAR4 (isolated doorbells on v3+).
pub const VFIO_PCI_BAR4_REGION_INDEX: u32 = 4;

/// `struct vfio_iommu_type1_dma_map`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VfioDmaMap {
    /// Size of the struct.
    pub argsz: u32,
    /// READ | WRITE.
    pub flags: u32,
    /// Process virtual address.
    pub vaddr: u64,
    /// Device address.
    pub iova: u64,
    /// Bytes.
    pub size: u64,
}

/// `struct vfio_iommu_type1_dma_unmap` (without the flexible `data[]`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VfioDmaUnmap {
    /// Size of the struct.
    pub argsz: u32,
    /// 0.
    pub flags: u32,
    /// Device address.
    pub iova: u64,
    /// Bytes; the kernel writes back how much it unmapped.
    pub size: u64,
}

/// `struct vfio_region_info`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VfioRegionInfo {
    /// Size of the struct.
    pub argsz: u32,
    /// `VFIO_REGION_INFO_FLAG_*`.
    pub flags: u32,
    /// Region index.
    pub index: u32,
    /// Offset of the first capability.
    pub cap_offset: u32,
    /// Region size.
    pub size: u64,
    /// mmap offset of the region on the device fd.
    pub offset: u64,
}

/// `struct vfio_group_status`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VfioGroupStatus {
    /// Size of the struct.
    pub argsz: u32,
    /// `VFIO_GROUP_FLAGS_*`.
    pub flags: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};
    use vfio_bindings::bindings::vfio as rv;

    #[test]
    fn numbers_match_hw_spec_6_1() {
        assert_eq!(VFIO_GET_API_VERSION, 0x3B64);
        assert_eq!(VFIO_CHECK_EXTENSION, 0x3B65);
        assert_eq!(VFIO_SET_IOMMU, 0x3B66);
        assert_eq!(VFIO_GROUP_GET_STATUS, 0x3B67);
        assert_eq!(VFIO_GROUP_SET_CONTAINER, 0x3B68);
        assert_eq!(VFIO_GROUP_GET_DEVICE_FD, 0x3B6A);
        assert_eq!(VFIO_DEVICE_GET_INFO, 0x3B6B);
        assert_eq!(VFIO_DEVICE_GET_REGION_INFO, 0x3B6C);
        assert_eq!(VFIO_DEVICE_RESET, 0x3B6F);
        assert_eq!(VFIO_IOMMU_GET_INFO, 0x3B70);
        assert_eq!(VFIO_IOMMU_MAP_DMA, 0x3B71);
        assert_eq!(VFIO_IOMMU_UNMAP_DMA, 0x3B72);
    }

    #[test]
    fn constants_match_rust_vmm_bindings() {
        assert_eq!(VFIO_TYPE, rv::VFIO_TYPE);
        assert_eq!(u32::from(VFIO_BASE), rv::VFIO_BASE);
        assert_eq!(VFIO_API_VERSION as u32, rv::VFIO_API_VERSION);
        assert_eq!(VFIO_TYPE1_IOMMU, rv::VFIO_TYPE1_IOMMU);
        assert_eq!(VFIO_TYPE1V2_IOMMU, rv::VFIO_TYPE1v2_IOMMU);
        assert_eq!(VFIO_NOIOMMU_IOMMU, rv::VFIO_NOIOMMU_IOMMU);
        assert_eq!(VFIO_GROUP_FLAGS_VIABLE, rv::VFIO_GROUP_FLAGS_VIABLE);
        assert_eq!(VFIO_DMA_MAP_FLAG_READ, rv::VFIO_DMA_MAP_FLAG_READ);
        assert_eq!(VFIO_DMA_MAP_FLAG_WRITE, rv::VFIO_DMA_MAP_FLAG_WRITE);
        assert_eq!(VFIO_REGION_INFO_FLAG_MMAP, rv::VFIO_REGION_INFO_FLAG_MMAP);
        assert_eq!(VFIO_PCI_BAR2_REGION_INDEX, rv::VFIO_PCI_BAR2_REGION_INDEX);
        assert_eq!(VFIO_PCI_BAR4_REGION_INDEX, rv::VFIO_PCI_BAR4_REGION_INDEX);
    }

    #[test]
    fn struct_layouts_match_the_uapi_and_bindings() {
        assert_eq!(size_of::<VfioDmaMap>(), 32);
        assert_eq!(
            size_of::<VfioDmaMap>(),
            size_of::<rv::vfio_iommu_type1_dma_map>()
        );
        assert_eq!(offset_of!(VfioDmaMap, vaddr), 8);
        assert_eq!(offset_of!(VfioDmaMap, iova), 16);
        assert_eq!(offset_of!(VfioDmaMap, size), 24);
        assert_eq!(size_of::<VfioDmaUnmap>(), 24);
        assert_eq!(
            size_of::<VfioDmaUnmap>(),
            size_of::<rv::vfio_iommu_type1_dma_unmap>()
        );
        assert_eq!(offset_of!(VfioDmaUnmap, iova), 8);
        assert_eq!(offset_of!(VfioDmaUnmap, size), 16);
        assert_eq!(size_of::<VfioRegionInfo>(), 32);
        assert_eq!(
            size_of::<VfioRegionInfo>(),
            size_of::<rv::vfio_region_info>()
        );
        assert_eq!(offset_of!(VfioRegionInfo, size), 16);
        assert_eq!(offset_of!(VfioRegionInfo, offset), 24);
        assert_eq!(size_of::<VfioGroupStatus>(), 8);
        assert_eq!(
            size_of::<VfioGroupStatus>(),
            size_of::<rv::vfio_group_status>()
        );
    }
}
