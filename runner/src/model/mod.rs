//! The CLIP encoders of GA-DMS.
