//! The store mesh (placeholder until the mesh milestone lands).
