//! The scenarios, one module each: its flags (`Args`, a subcommand of `bench`), its run
//! and its report.

pub mod all;
pub mod chaos;
pub mod cluster;
pub mod complete;
pub mod db_floor;
pub mod durability;
pub mod fanout;
pub mod floor;
pub mod hostile;
pub mod idle;
pub mod load;
pub mod message;
pub mod ping;
pub mod soak;
pub mod throughput;
pub mod waiting;
