//! The schema parts this build uses beyond the foundation (each domain
//! crate that owns tables exports one). `bdc migrate` applies them in this
//! order; every command checks them before touching the database.

use bdc_storage::SchemaPart;

pub fn parts() -> Vec<&'static SchemaPart> {
    Vec::new()
}
