//! gRPC service of greenness tracking.

/// Generated messages and service (`bdc.greenness.v1`).
pub mod pb {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("bdc.greenness.v1");

    /// The file descriptor set served by reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("greenness_descriptor");
}
