//! Rebuilds the crate when a migration is added or changed. The migrations are embedded in the
//! binary (`embed_migrations!` in src/store/mod.rs), and a proc macro cannot ask cargo to watch a
//! directory, so without this a new migration is silently missing from an incremental build
//! (diesel_migrations' documentation of `embed_migrations!`, "Automatic rebuilds").
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
