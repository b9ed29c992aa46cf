//! The masking strategies of gadms.
//!
//! - `none`: every text is the clean caption; no MTP view, no scoring.
//! - `random`: IRRA's masked-token prediction, a constant rate for every eligible token; the
//!   alignment text stays clean.
//! - `gadms`: GA-DMS's dual masking. During the training step the caption tokens are scored
//!   from the text encoder's last blocks and the matched image ([`score`]); on the data side
//!   the scores of the previous epoch decide which tokens are masked as noise in the alignment
//!   text and which informative tokens the MTP view hides ([`dual`]).
//!
//! The three share one [`strategy::Strategy`]: they differ only in their options
//! ([`options`]), which decide whether a scorer exists and which views are masked how.

mod dual;
mod factory;
mod options;
mod score;
mod strategy;

#[cfg(test)]
mod tests;

use gadms_plugin::{Registry, Result};

use options::{GadmsOptions, NoneOptions, RandomOptions};

gadms_plugin::declare_plugin!(register);

fn register(registry: &mut Registry) -> Result<()> {
    factory::register::<NoneOptions>(registry);
    factory::register::<RandomOptions>(registry);
    factory::register::<GadmsOptions>(registry);
    Ok(())
}
