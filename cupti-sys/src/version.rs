//! Which CUDA release a libcupti belongs to, from the number `cuptiGetVersion` reports.
//!
//! Up to CUDA 12.9 CUPTI numbered its API with a counter (17 = CUDA 11.6, 20 = CUDA
//! 12.2, 28 = CUDA 12.9 Update 1); from CUDA 13.0 on it reports `xxyyzz`: CUDA major,
//! CUDA minor, CUPTI update (130001 = CUDA 13.0, update 1). The table below is the one
//! in `cupti_version.h`, with one correction: the header says 19 is CUDA 12.0, but the
//! libraries of CUDA 11.8, 12.0 and 12.1 all report 18 and CUDA 12.2's reports 20
//! (checked on the libraries of the PyPI wheels nvidia-cuda-cupti-cu11 11.8.87 and
//! nvidia-cuda-cupti-cu12 12.0.146, 12.1.105 and 12.2.142). So 18 alone cannot tell
//! CUDA 11.8 from 12.0; the library's ELF symbol versions can: a CUDA 12 libcupti tags
//! its symbols `libcupti.so.12`, CUDA 11.8's `libcupti.so.11.8`. The loader asks for that
//! tag and passes the answer to [`CuptiVersion::new`].

use std::fmt;

/// A CUDA toolkit release, `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CudaRelease {
    /// Major version, e.g. 12.
    pub major: u32,
    /// Minor version, e.g. 4.
    pub minor: u32,
}

impl CudaRelease {
    /// The oldest release cutrace works with: the record layouts it decodes
    /// (`CUpti_ActivityKernel9` and its kin) first appear in CUDA 12.0.
    pub const MINIMUM: CudaRelease = CudaRelease::new(12, 0);

    /// The release `major.minor`.
    pub const fn new(major: u32, minor: u32) -> Self {
        CudaRelease { major, minor }
    }
}

impl fmt::Display for CudaRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// What `cuptiGetVersion` reported, with the CUDA release it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CuptiVersion {
    api: u32,
    cuda: CudaRelease,
}

/// The counter values `cupti_version.h` lists, each with the first release that
/// reports it. A value the table skips (25) or one newer than the table (29 up to
/// the switch to `xxyyzz`) stands for at least the release listed just below it.
const COUNTER_RELEASES: [(u32, CudaRelease); 25] = [
    (1, CudaRelease::new(4, 0)),
    (2, CudaRelease::new(4, 1)),
    (3, CudaRelease::new(5, 0)),
    (4, CudaRelease::new(5, 5)),
    (5, CudaRelease::new(6, 0)),
    (6, CudaRelease::new(6, 5)),
    (8, CudaRelease::new(7, 0)),
    (9, CudaRelease::new(8, 0)),
    (10, CudaRelease::new(9, 0)),
    (11, CudaRelease::new(9, 1)),
    (12, CudaRelease::new(10, 0)),
    (13, CudaRelease::new(11, 0)),
    (14, CudaRelease::new(11, 1)),
    (15, CudaRelease::new(11, 2)),
    (16, CudaRelease::new(11, 5)),
    (17, CudaRelease::new(11, 6)),
    (18, CudaRelease::new(11, 8)),
    (19, CudaRelease::new(12, 0)),
    (20, CudaRelease::new(12, 2)),
    (21, CudaRelease::new(12, 3)),
    (22, CudaRelease::new(12, 4)),
    (23, CudaRelease::new(12, 5)),
    (24, CudaRelease::new(12, 6)),
    (26, CudaRelease::new(12, 8)),
    (27, CudaRelease::new(12, 9)),
];

/// The first `xxyyzz` value (CUDA 13.0).
const FIRST_XXYYZZ: u32 = 130_000;

/// The counter value that CUDA 11.8, 12.0 and 12.1 share.
const SHARED_BY_11_8_AND_12_0: u32 = 18;

impl CuptiVersion {
    /// Interprets the number `cuptiGetVersion` reported. `tagged_cuda12` says whether
    /// the library's symbols carry the `libcupti.so.12` version tag; it only matters
    /// for 18, which CUDA 11.8 and 12.0 share.
    pub fn new(api: u32, tagged_cuda12: bool) -> Self {
        let cuda = if api >= FIRST_XXYYZZ {
            CudaRelease::new(api / 10_000, api / 100 % 100)
        } else if api == SHARED_BY_11_8_AND_12_0 && tagged_cuda12 {
            CudaRelease::MINIMUM
        } else {
            COUNTER_RELEASES
                .iter()
                .rev()
                .find(|(counter, _)| *counter <= api)
                .map_or(CudaRelease::new(0, 0), |(_, release)| *release)
        };
        CuptiVersion { api, cuda }
    }

    /// The number `cuptiGetVersion` reported.
    pub fn api(&self) -> u32 {
        self.api
    }

    /// The CUDA release this library belongs to; where several releases report the
    /// same number, the first of them.
    pub fn cuda(&self) -> CudaRelease {
        self.cuda
    }

    /// Whether cutrace can work with this library (CUDA 12.0 or newer).
    pub fn is_supported(&self) -> bool {
        self.cuda >= CudaRelease::MINIMUM
    }
}

impl fmt::Display for CuptiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CUPTI API version {} (CUDA {})", self.api, self.cuda)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cuda(api: u32, tagged_cuda12: bool) -> (u32, u32) {
        let release = CuptiVersion::new(api, tagged_cuda12).cuda();
        (release.major, release.minor)
    }

    #[test]
    fn xxyyzz_numbers_give_major_and_minor() {
        assert_eq!(cuda(130_000, false), (13, 0));
        assert_eq!(cuda(130_001, false), (13, 0));
        assert_eq!(cuda(130_102, true), (13, 1));
        assert_eq!(cuda(140_000, false), (14, 0));
    }

    #[test]
    fn counter_numbers_follow_the_header_table() {
        assert_eq!(cuda(17, false), (11, 6));
        assert_eq!(cuda(20, true), (12, 2));
        assert_eq!(cuda(24, true), (12, 6));
        assert_eq!(cuda(26, true), (12, 8));
        assert_eq!(cuda(28, true), (12, 9));
    }

    #[test]
    fn eighteen_is_cuda_12_only_with_the_libcupti_so_12_tag() {
        assert_eq!(cuda(18, true), (12, 0));
        assert_eq!(cuda(18, false), (11, 8));
        assert!(CuptiVersion::new(18, true).is_supported());
        assert!(!CuptiVersion::new(18, false).is_supported());
    }

    #[test]
    fn unlisted_numbers_stand_for_the_release_below_them() {
        assert_eq!(cuda(7, false), (6, 5));
        assert_eq!(cuda(25, true), (12, 6));
        assert_eq!(cuda(29, true), (12, 9));
        assert_eq!(cuda(0, false), (0, 0));
    }

    #[test]
    fn support_starts_at_cuda_12_0() {
        assert!(!CuptiVersion::new(17, true).is_supported());
        assert!(CuptiVersion::new(19, false).is_supported());
        assert!(CuptiVersion::new(130_001, false).is_supported());
        assert!(!CuptiVersion::new(0, false).is_supported());
    }

    #[test]
    fn display_names_the_number_and_the_release() {
        assert_eq!(
            CuptiVersion::new(130_001, false).to_string(),
            "CUPTI API version 130001 (CUDA 13.0)"
        );
        assert_eq!(
            CuptiVersion::new(18, false).to_string(),
            "CUPTI API version 18 (CUDA 11.8)"
        );
    }
}
