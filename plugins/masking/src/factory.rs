//! One generic factory for every strategy: parse the options, validate them, build.

use std::fmt::Debug;
use std::marker::PhantomData;

use gadms_plugin::masking::{MaskingContext, MaskingFactory, MaskingStrategy};
use gadms_plugin::{parse_options, PluginError, Registry, Result};
use serde::de::DeserializeOwned;

use crate::strategy::Strategy;

/// The options of one registered strategy.
pub trait StrategyOptions: DeserializeOwned {
    /// The registered name; option errors name it.
    const NAME: &'static str;
    /// One line for `gadms-run plugins`.
    const DESCRIPTION: &'static str;

    /// Validates the options and builds the strategy.
    fn build(self, ctx: &MaskingContext) -> Result<Strategy>;
}

/// Registers the strategy configured by `O`.
pub fn register<O: StrategyOptions + 'static>(registry: &mut Registry) {
    registry.masking(O::NAME, O::DESCRIPTION, Factory::<O>(PhantomData));
}

/// Parses the TOML options of the named strategy and builds it.
pub fn create<O: StrategyOptions>(ctx: &MaskingContext, options: &str) -> Result<Strategy> {
    parse_options::<O>(O::NAME, options)?.build(ctx)
}

/// An options error of strategy `O`, naming `key`, unless `ok`.
pub fn require<O: StrategyOptions>(ok: bool, key: &str, expected: &str, got: impl Debug) -> Result<()> {
    if ok {
        return Ok(());
    }
    Err(PluginError::Options {
        component: O::NAME.to_string(),
        message: format!("`{key}` must be {expected}, got {got:?}"),
    })
}

struct Factory<O>(PhantomData<fn() -> O>);

impl<O: StrategyOptions> MaskingFactory for Factory<O> {
    fn create(&self, ctx: &MaskingContext, options: &str) -> Result<Box<dyn MaskingStrategy>> {
        Ok(Box::new(create::<O>(ctx, options)?))
    }
}
